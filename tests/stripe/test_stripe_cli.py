import json

from stripe_ledger import add_customer, add_invoice
from typer.testing import CliRunner

from spanledger.billing.cli import app


def test_stripe_sync_dry_run_and_real_run_from_the_cli(
    engine, database_url, sessions, fake_stripe, monkeypatch
):
    customer_id = add_customer(sessions, "acme")
    add_invoice(sessions, customer_id, [("usage", "10", "1.5", "15.00")], sequence=1)
    runner = CliRunner()
    base = ["--database-url", database_url, "stripe", "sync"]
    dry = runner.invoke(app, [*base, "--dry-run", "--json"], env={"SPANLEDGER_STRIPE_API_KEY": ""})
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert report["dry_run"] and report["invoices"][0]["items"][0]["amount_minor"] == 1500
    assert fake_stripe.requests == []
    env = {"SPANLEDGER_STRIPE_API_KEY": "sk_test_fake", "SPANLEDGER_STRIPE_API_BASE": fake_stripe.url}
    real = runner.invoke(app, [*base, "--json"], env=env)
    assert real.exit_code == 0, real.output
    assert json.loads(real.stdout)["invoices"][0]["outcome"] == "charged"
    assert len(fake_stripe.state.invoices) == 1


def test_stripe_sync_without_a_key_says_what_to_set(engine, database_url):
    result = CliRunner().invoke(
        app, ["--database-url", database_url, "stripe", "sync"], env={"SPANLEDGER_STRIPE_API_KEY": ""}
    )
    assert result.exit_code == 1 and "SPANLEDGER_STRIPE_API_KEY" in result.output
