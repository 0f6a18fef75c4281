"""Margin report over the database: revenue from invoices (usage lines allocated to the events they
cover), upstream cost from events, grouped per customer, model, provider and time."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from spanledger.billing.catalog import apply_catalog, parse_catalog
from spanledger.billing.cost_report import RepriceResult, cost_report, reprice_unknown_costs
from spanledger.billing.customers import create_customer
from spanledger.billing.errors import ConfigurationError
from spanledger.billing.ingest import ingest
from spanledger.billing.invoices.service import finalize, list_invoices, run_invoices, void
from spanledger.billing.margin_report import MarginGrouping, margin_report, negative_margin_customers
from spanledger.billing.subscriptions import subscribe
from spanledger.billing.usage_event import UsageEvent

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)

CATALOG = {
    "meters": [{"name": "tokens", "aggregation": "sum", "field": "total_tokens"}],
    "plans": [
        {
            "code": "writer",
            "name": "Writer",
            "base_fee": 29,
            "prices": [
                {
                    "meter": "tokens",
                    "model": "per_unit",
                    "unit_price": "0.02",
                    "unit_size": 1000,
                    "included_units": 50000,
                }
            ],
        }
    ],
    # Negotiated prices per million tokens, so every cost below is checkable by hand.
    "price_overrides": [
        {"provider": "vllm", "model": "llama-70b", "valid_from": "2026-01-01", "input_per_million": 1,
         "output_per_million": 2},
        {"provider": "selfhost", "model": "mistral", "valid_from": "2026-01-01", "input_per_million": 10,
         "output_per_million": 20},
    ],
}  # fmt: skip


def event(key, customer, provider, model, day, input_tokens, output_tokens):
    return UsageEvent(
        dedupe_key=key,
        occurred_at=datetime(2026, 11, day, 12, tzinfo=UTC),
        customer_external_id=customer,
        provider=provider,
        request_model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


@pytest.fixture
def ledger(session):
    apply_catalog(session, parse_catalog(CATALOG))
    create_customer(session, "acme")
    subscribe(session, "acme", "writer", start=NOV)
    result = ingest(
        session,
        [
            # acme: 100,000 tokens → 50,000 billable × $0.02/1K = $1.00 usage + $29 base fee = $30.00
            event("a1", "acme", "vllm", "llama-70b", 3, 60_000, 10_000),  # cost 0.06 + 0.02 = 0.08
            event("a2", "acme", "selfhost", "mistral", 10, 20_000, 10_000),  # cost 0.20 + 0.20 = 0.40
            # globex: no subscription, so no revenue; one known cost, one unknown model
            event("g1", "globex", "vllm", "llama-70b", 3, 1_000_000, 0),  # cost 1.00
            event("g2", "globex", "openai", "gpt-unknown-9", 4, 10, 10),  # cost unknown (NULL)
        ],
    )
    assert len(result.rejected) == 0
    run_invoices(session, "2026-11")
    session.flush()
    return session


def rows(session, by, **kwargs):
    return {
        r.key: (r.revenue, r.upstream_cost, r.gross_margin, r.margin_percent, r.unknown_cost_events)
        for r in margin_report(session, by, **kwargs)
    }


def test_per_customer(ledger):
    assert rows(ledger, "customer") == {
        "acme": (Decimal("30.00"), Decimal("0.48"), Decimal("29.52"), Decimal("98.40"), 0),
        "globex": (Decimal(0), Decimal("1.00"), Decimal("-1.00"), None, 1),
    }


def test_per_model_allocates_the_usage_line_by_tokens(ledger):
    assert rows(ledger, MarginGrouping.MODEL) == {
        "(base fee)": (Decimal("29.00"), Decimal(0), Decimal("29.00"), Decimal("100.00"), 0),
        "llama-70b": (Decimal("0.70"), Decimal("1.08"), Decimal("-0.38"), Decimal("-54.29"), 0),
        "mistral": (Decimal("0.30"), Decimal("0.40"), Decimal("-0.10"), Decimal("-33.33"), 0),
        "gpt-unknown-9": (Decimal(0), Decimal(0), Decimal(0), None, 1),
    }


def test_per_provider(ledger):
    result = rows(ledger, "provider")
    assert result["vllm"][:2] == (Decimal("0.70"), Decimal("1.08"))
    assert result["selfhost"][:2] == (Decimal("0.30"), Decimal("0.40"))
    assert result["openai"][4] == 1


def test_over_time(ledger):
    by_day = rows(ledger, "day")
    assert by_day["2026-11-01"][:2] == (Decimal("29.00"), Decimal(0))  # the base fee: the month's start
    assert by_day["2026-11-03"][:2] == (Decimal("0.70"), Decimal("1.08"))
    assert by_day["2026-11-10"][:2] == (Decimal("0.30"), Decimal("0.40"))
    assert rows(ledger, "month") == {
        "2026-11-01": (Decimal("30.00"), Decimal("1.48"), Decimal("28.52"), Decimal("95.07"), 1)
    }
    weeks = rows(ledger, "week")
    assert sorted(weeks) == ["2026-10-26", "2026-11-02", "2026-11-09"]  # ISO weeks start on Monday
    assert sum((v[0] for v in weeks.values()), Decimal(0)) == Decimal("30.00")


def test_window_and_negative_customers(ledger):
    assert [r.key for r in negative_margin_customers(ledger)] == ["globex"]
    assert rows(ledger, "customer", start=DEC) == {}
    assert rows(ledger, "customer", start=NOV, end=DEC)["acme"][0] == Decimal("30.00")


def test_void_invoices_bring_no_revenue(ledger):
    invoice, _customer = list_invoices(ledger)[0]
    finalize(ledger, invoice.id)
    void(ledger, invoice.id)
    assert rows(ledger, "customer")["acme"][:2] == (Decimal(0), Decimal("0.48"))
    assert [r.key for r in negative_margin_customers(ledger)] == ["globex", "acme"]  # worst first


def test_unknown_grouping_is_a_sentence(ledger):
    with pytest.raises(ConfigurationError, match="cannot group margins by 'planet'"):
        margin_report(ledger, "planet")


def test_cost_report_groups_and_reprice_fills_only_unknown_costs(ledger):
    by_customer = {r.key: (r.events, r.upstream_cost, r.unknown_cost_events) for r in cost_report(ledger)}
    assert by_customer == {"acme": (2, Decimal("0.48"), 0), "globex": (2, Decimal("1.00"), 1)}
    by_provider = {r.key: r.upstream_cost for r in cost_report(ledger, "provider")}
    assert by_provider == {"openai": Decimal(0), "selfhost": Decimal("0.40"), "vllm": Decimal("1.08")}
    assert [r.key for r in cost_report(ledger, "model", start=datetime(2026, 11, 4, tzinfo=UTC))] == [
        "gpt-unknown-9",
        "mistral",
    ]

    assert reprice_unknown_costs(ledger) == RepriceResult(examined=1, priced=0)  # still unknown
    # An override for the unknown model, and a changed one for a model whose events are priced already.
    apply_catalog(
        ledger,
        parse_catalog(
            {
                "price_overrides": [
                    {"provider": "openai", "model": "gpt-unknown-9", "valid_from": "2026-01-01",
                     "input_per_million": 100, "output_per_million": 200},
                    {"provider": "vllm", "model": "llama-70b", "valid_from": "2026-01-01",
                     "input_per_million": 5, "output_per_million": 5},
                ]
            }
        ),
    )  # fmt: skip
    result = reprice_unknown_costs(ledger)
    assert (result.examined, result.priced, result.still_unknown) == (1, 1, 0)
    costs = {r.key: r.upstream_cost for r in cost_report(ledger, "model")}
    assert costs["gpt-unknown-9"] == Decimal("0.003")  # 10 × 100/M + 10 × 200/M
    assert costs["llama-70b"] == Decimal("1.08")  # already priced: kept, so past invoices reproduce
    with pytest.raises(ConfigurationError, match="cannot group costs by 'day'"):
        cost_report(ledger, "day")
