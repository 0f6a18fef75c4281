"""The CLI frame: import/list events, customers, meters usage, and errors without tracebacks."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spanledger.billing.cli import app

SAMPLE = Path(__file__).parents[2] / "examples" / "quickstart" / "events.jsonl"


def run(url: str, *args: str, input: str | None = None):
    result = CliRunner().invoke(app, ["--database-url", url, *args], input=input)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def db(database_url):
    assert run(database_url, "db", "upgrade").exit_code == 0
    return database_url


def event_line(key: str, customer: str = "acme", **extra) -> str:
    values = {
        "dedupe_key": key,
        "occurred_at": "2026-11-03T10:00:00Z",
        "customer_external_id": customer,
        "provider": "openai",
        "request_model": "gpt-4o",
        "input_tokens": 1000,
        "output_tokens": 100,
        **extra,
    }
    return json.dumps(values)


def test_importing_the_same_file_twice_stores_each_event_once(db, tmp_path):
    file = tmp_path / "events.jsonl"
    file.write_text("\n".join(event_line(f"k{i}") for i in range(5)) + "\n")
    first = run(db, "events", "import", str(file), "--json")
    second = run(db, "events", "import", str(file), "--json")
    assert first.exit_code == second.exit_code == 0
    assert json.loads(first.stdout) == {"inserted": 5, "duplicates": 0, "merged": 0, "rejected": []}
    assert json.loads(second.stdout) == {"inserted": 0, "duplicates": 5, "merged": 0, "rejected": []}
    human = run(db, "events", "import", str(file))
    assert "0 stored, 5 already present (duplicates)" in human.stdout


def test_a_malformed_line_is_named_and_the_good_lines_are_stored(db, tmp_path):
    file = tmp_path / "events.jsonl"
    lines = [event_line("a"), "{not json", event_line("b", input_tokens=-3), "", event_line("c")]
    file.write_text("\n".join(lines) + "\n")
    result = run(db, "events", "import", str(file), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["inserted"] == 2
    assert [r["line"] for r in report["rejected"]] == [2, 3]
    assert "not valid JSON" in report["rejected"][0]["reason"]
    assert "input_tokens is negative" in report["rejected"][1]["reason"]
    listed = run(db, "events", "list", "--json")
    assert [json.loads(line)["dedupe_key"] for line in listed.stdout.splitlines()] == ["a", "c"]


def test_events_list_output_imports_back_unchanged(db, tmp_path, database_url):
    run(db, "events", "import", "-", input=event_line("x", metadata={"service.name": "app"}) + "\n")
    exported = run(db, "events", "list", "--json", "--customer", "acme").stdout
    assert json.loads(exported)["metadata"] == {"service.name": "app"}
    again = run(db, "events", "import", "-", "--json", input=exported)
    assert json.loads(again.stdout)["duplicates"] == 1


def test_events_list_filters_by_customer_and_window(db):
    lines = [
        event_line("a", "acme"),
        event_line("b", "globex"),
        event_line("c", "acme", occurred_at="2026-12-01T00:00:00Z"),
    ]
    run(db, "events", "import", "-", input="\n".join(lines))
    listed = run(
        db, "events", "list", "--json", "--customer", "acme", "--from", "2026-11-01", "--to", "2026-12-01"
    )
    assert [json.loads(line)["dedupe_key"] for line in listed.stdout.splitlines()] == ["a"]
    assert "globex" in run(db, "events", "list").stdout


def test_customers_create_list_show_update(db):
    assert run(db, "customers", "create", "acme", "--name", "Acme Inc", "--currency", "eur").exit_code == 0
    shown = json.loads(run(db, "customers", "show", "acme", "--json").stdout)
    assert shown["name"] == "Acme Inc" and shown["currency"] == "EUR"
    duplicate = run(db, "customers", "create", "acme")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    run(db, "customers", "update", "acme", "--email", "billing@acme.test")
    listed = json.loads(run(db, "customers", "list", "--json").stdout)
    assert [(c["external_id"], c["email"]) for c in listed] == [("acme", "billing@acme.test")]
    reserved = run(db, "customers", "create", "(unattributed)")
    assert reserved.exit_code == 1 and "reserved" in reserved.output
    bad = run(db, "customers", "create", "x", "--currency", "dollars")
    assert bad.exit_code == 1 and "ISO 4217" in bad.output


def _usage(db: str, *args: str) -> dict:
    result = run(db, "meters", "usage", *args, "--from", "2026-11-01", "--to", "2026-12-01", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_meters_usage_from_the_cli(db):
    run(
        db,
        "events",
        "import",
        "-",
        input="\n".join(
            [
                event_line("a", "acme", input_tokens=1000),
                event_line("b", "acme", input_tokens=500, request_model="gpt-4o-mini"),
                event_line(
                    "c", "globex", input_tokens=10, provider="anthropic", request_model="claude-haiku-4-5"
                ),
            ]
        ),
    )
    created = run(db, "meters", "create", "input", "-a", "sum", "-f", "input_tokens")
    assert created.exit_code == 0
    run(
        db,
        "meters",
        "create",
        "openai-calls",
        "-a",
        "count",
        "--filter",
        '{"field": "provider", "op": "eq", "value": "openai"}',
    )
    usage = _usage(db, "input")
    assert usage["rows"] == [
        {"customer": "acme", "group": None, "value": "1500"},
        {"customer": "globex", "group": None, "value": "10"},
    ]
    grouped = _usage(db, "input", "--customer", "acme", "--group-by", "model")
    assert [(r["group"], r["value"]) for r in grouped["rows"]] == [("gpt-4o", "1000"), ("gpt-4o-mini", "500")]
    assert _usage(db, "openai-calls")["rows"] == [{"customer": "acme", "group": None, "value": "2"}]
    assert "input" in run(db, "meters", "list").stdout
    assert (
        json.loads(run(db, "meters", "show", "openai-calls", "--json").stdout)["filter"]["value"] == "openai"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("meters", "usage", "missing"), "no meter named 'missing'"),
        (("meters", "create", "m", "-a", "median"), "unknown aggregation"),
        (("meters", "create", "m", "-a", "count", "--filter", "{oops"), "--filter is not valid JSON"),
        (("meters", "usage", "m", "--from", "last tuesday"), "is not a date"),
        (("events", "import", "/no/such/file.jsonl"), "no such file"),
    ],
)
def test_user_mistakes_get_one_sentence_and_exit_1(db, args, message):
    run(db, "meters", "create", "m", "-a", "count")
    result = run(db, *args)
    assert result.exit_code == 1
    assert message in result.output


def test_a_bad_database_url_is_one_sentence(tmp_path):
    result = run("mysql://nowhere/db", "customers", "list")
    assert result.exit_code == 1 and "supports sqlite and postgresql" in result.output
    missing_schema = run(f"sqlite:///{tmp_path / 'empty.db'}", "customers", "list")
    assert missing_schema.exit_code == 1 and "spanledger db upgrade" in missing_schema.output


def test_the_quickstart_sample_file_imports_cleanly(db):
    result = run(db, "events", "import", str(SAMPLE), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rejected"] == []


MATRIX = [
    ("tokens", "sum", "input_tokens", None, "model"),
    ("calls", "count", None, '{"field": "provider", "op": "in", "value": ["openai", "anthropic"]}', None),
    ("peak", "max", "output_tokens", None, "provider"),
    ("smallest", "min", "input_tokens", '{"field": "metadata.feature", "op": "eq", "value": "draft"}', None),
    ("mean", "avg", "total_tokens", None, "metadata.feature"),
    (
        "models",
        "unique",
        "model",
        '{"or": [{"field": "input_tokens", "op": "gte", "value": 2400},'
        ' {"field": "model", "op": "like", "value": "gpt%"}]}',
        None,
    ),
]


def _matrix_results(url: str) -> list[dict]:
    assert run(url, "db", "upgrade").exit_code == 0
    assert run(url, "events", "import", str(SAMPLE)).exit_code == 0
    results = []
    for name, aggregation, field, filter_json, group_by in MATRIX:
        args = ["meters", "create", name, "-a", aggregation]
        args += ["-f", field] if field else []
        args += ["--filter", filter_json] if filter_json else []
        assert run(url, *args).exit_code == 0
        extra = ["--group-by", group_by] if group_by else []
        results.append(_usage(url, name, *extra)["rows"])
    return results


@pytest.mark.postgres
def test_meters_usage_json_is_identical_on_sqlite_and_postgresql(tmp_path, postgres_url):
    on_postgres = _matrix_results(postgres_url)
    on_sqlite = _matrix_results(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert on_sqlite == on_postgres
    assert all(rows for rows in on_sqlite)
