"""``spanledger invoices …`` through the real CLI app."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from test_invoices_support import NOV, call, store, writer_setup
from typer.testing import CliRunner

from spanledger.billing.cli import app


def cli(database_url, *args):
    return CliRunner().invoke(app, ["--database-url", database_url, "invoices", *args])


def _with_november(session, database_url):
    writer_setup(session)
    store(
        session,
        call("a", "acme", 600_000, NOV + timedelta(days=2)),
        call("b", "acme", 634_567, NOV + timedelta(days=20)),
        call("stray", "nobody", 1, NOV),
    )
    session.close()
    return database_url


def test_run_prints_a_summary_and_json_is_quiet(session, database_url):
    url = _with_november(session, database_url)
    result = cli(url, "run", "--period", "2026-11")
    assert result.exit_code == 0, result.output
    assert "Period 2026-11: 1 created, 0 updated, 1 skipped." in result.output
    assert "Total USD: 52.69" in result.output
    assert "Skipped nobody: has usage but no subscription in 2026-11" in result.output
    again = cli(url, "run", "--period", "2026-11", "--json")
    assert again.exit_code == 0, again.output
    summary = json.loads(again.output)
    assert (summary["created"], summary["updated"], summary["totals"]) == (0, 1, {"USD": "52.69"})


def test_list_show_explain_finalize_pay(session, database_url):
    url = _with_november(session, database_url)
    assert cli(url, "run", "--period", "2026-11", "--json").exit_code == 0
    listed = json.loads(cli(url, "list", "--json").output)
    assert [(i["customer"], i["status"], i["total"]) for i in listed] == [("acme", "draft", "52.69")]
    shown = cli(url, "show", str(listed[0]["id"]))
    assert shown.exit_code == 0 and "tokens usage" in shown.output and "52.69" in shown.output
    assert "upstream" not in shown.output
    explained = json.loads(cli(url, "explain", str(listed[0]["id"]), "2", "--json").output)
    assert explained["matches"] and explained["amount"] == explained["recomputed_amount"] == "23.69"
    assert [e["sequence"] for e in explained["events"]] == [1, 2]
    assert all(e["trace_id"] and e["span_id"] for e in explained["events"])
    finalized = json.loads(cli(url, "finalize", str(listed[0]["id"]), "--json").output)
    assert (finalized["number"], finalized["status"]) == ("USD-000001", "finalized")
    human = cli(url, "explain", "USD-000001", "2")
    assert human.exit_code == 0 and "recomputed 23.69, stored 23.69: matches." in human.output
    paid = cli(url, "pay", "USD-000001")
    assert paid.exit_code == 0 and "Invoice USD-000001 marked paid (paid)." in paid.output


def test_errors_are_one_sentence(session, database_url):
    url = _with_november(session, database_url)
    assert cli(url, "run", "--period", "2026-11", "--json").exit_code == 0
    missing = cli(url, "show", "USD-000404")
    assert missing.exit_code == 1 and "Error: no invoice 'USD-000404'" in missing.output
    assert "Traceback" not in missing.output
    draft_pay = cli(url, "pay", "1")
    assert draft_pay.exit_code == 1 and "Error: invoice 1 is draft" in draft_pay.output
    bad_period = cli(url, "run", "--period", "November")
    assert bad_period.exit_code == 1 and "YYYY-MM" in bad_period.output
    bad_format = cli(url, "export", "1", "--format", "xml")
    assert bad_format.exit_code == 1 and "is not json or csv" in bad_format.output


def test_export_invoice_and_events_as_json_and_csv(session, database_url):
    url = _with_november(session, database_url)
    assert cli(url, "run", "--period", "2026-11", "--json").exit_code == 0
    document = json.loads(cli(url, "export", "1").output)
    assert document["total"] == "52.69" and document["admin"]["margin"] is not None
    rows = list(csv.DictReader(io.StringIO(cli(url, "export", "1", "--format", "csv").output)))
    assert [r["amount"] for r in rows] == ["29.00", "23.69"]
    events = json.loads(cli(url, "export", "1", "--events").output)
    assert [(e["sequence"], e["upstream_cost"]) for e in events] == [(1, "1.5"), (2, "1.5864175")]
    event_rows = list(
        csv.DictReader(io.StringIO(cli(url, "export", "1", "--events", "--format", "csv").output))
    )
    assert [r["input_tokens"] for r in event_rows] == ["600000", "634567"]
