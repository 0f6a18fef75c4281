"""A small, fully priced ledger for the portal tests: a catalog, four customers (one without a plan),
October invoiced (acme's finalized and paid, globex's finalized), November still running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from spanledger.billing.catalog import apply_catalog, parse_catalog
from spanledger.billing.customers import create_customer
from spanledger.billing.ingest import ingest
from spanledger.billing.invoices import finalize, find_invoice, pay, run_invoices
from spanledger.billing.subscriptions.service import subscribe
from spanledger.billing.usage_event import UsageEvent

#: The portal routes' signing key and admin token in the tests.
SECRET = "portal-test-secret-key-0123456789"
ADMIN = "admin-test-token-abcdef"
OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
#: "Now" for every portal test: November 20th, 2026, noon UTC.
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
#: A customer id that would break the page if it were not escaped.
EVIL = '<script>alert("x")</script>&co'

CATALOG = {
    "meters": [
        {"name": "tokens", "aggregation": "sum", "field": "total_tokens"},
        {
            "name": "agent-tokens", "aggregation": "sum", "field": "total_tokens",
            "filter": {"field": "metadata.feature", "op": "eq", "value": "agent"},
        },
    ],
    "credit_meters": [{"meter": "agent-tokens", "units_per_credit": 1000}],
    "plans": [
        {
            "code": "writer", "name": "Writer", "base_fee": 29,
            "prices": [{"meter": "tokens", "model": "per_unit", "unit_price": 0.02, "unit_size": 1000,
                        "included_units": 50000}],
        },
        {
            "code": "agency", "name": "Agency", "base_fee": 299,
            "prices": [
                {"meter": "tokens", "model": "per_unit", "unit_price": 0.01, "unit_size": 1000,
                 "included_units": 1000000},
                {"meter": "agent-tokens", "model": "per_unit", "unit_price": 0.05, "unit_size": 1000},
            ],
            "credit_grants": [{"meter": "agent-tokens", "credits": 100, "every": "month"}],
        },
    ],
}  # fmt: skip


def call(
    key: str, customer: str, when: datetime, tokens: int, *, model: str = "gpt-4o", feature: str | None = None
) -> UsageEvent:
    """An LLM call of ``tokens`` tokens (a quarter input, the rest output)."""
    return UsageEvent(
        dedupe_key=key, occurred_at=when, customer_external_id=customer, provider="openai",
        request_model=model, response_model=model, input_tokens=tokens // 4,
        output_tokens=tokens - tokens // 4, metadata={"feature": feature} if feature else {},
    )  # fmt: skip


def october_and_november() -> list[UsageEvent]:
    events = []
    for day in range(0, 31, 3):
        when = OCT + timedelta(days=day, hours=9)
        events.append(call(f"oct-acme-{day}", "acme", when, 12_000 + day * 1000))
        events.append(call(f"oct-globex-{day}", "globex", when, 90_000, feature="agent"))
    for day in range(0, 19):
        when = NOV + timedelta(days=day, hours=10)
        model = "gpt-4o-mini" if day % 2 else "gpt-4o"
        events.append(call(f"nov-acme-{day}", "acme", when, 4_000 + day * 500, model=model))
        events.append(call(f"nov-globex-{day}", "globex", when, 40_000, feature="agent"))
        events.append(call(f"nov-evil-{day}", EVIL, when, 1_000))
        events.append(call(f"nov-free-{day}", "freeloader", when, 200_000, model="gpt-4.1"))
    # 120 small calls in one day: enough requests for the drill-down to need three pages.
    for index in range(120):
        when = NOV + timedelta(days=19, minutes=index)
        events.append(call(f"nov-acme-burst-{index}", "acme", when, 100 + index))
    return events


def build_ledger(session: Session) -> dict[str, int]:
    """Catalog, customers, subscriptions and events; October invoiced. Returns invoice ids."""
    with session.begin():
        apply_catalog(session, parse_catalog(CATALOG))
        create_customer(session, "acme", name="Acme Inc.")
        create_customer(session, "globex", name="Globex")
        create_customer(session, EVIL, name=None)
        create_customer(session, "freeloader", name="Uses without a plan")
        subscribe(session, "acme", "writer", start=OCT)
        subscribe(session, "globex", "agency", start=OCT)
        subscribe(session, EVIL, "writer", start=OCT)
        ingest(session, october_and_november(), received_at=NOW)
    with session.begin():
        run_invoices(session, "2026-10")
    ids = {}
    with session.begin():
        for customer in ("acme", "globex"):
            [invoice] = [i for i in _invoices(session) if i[1] == customer]
            ids[customer] = finalize(session, invoice[0]).id
        pay(session, ids["acme"], at=NOV + timedelta(days=3))
    return ids


def _invoices(session: Session) -> list[tuple[int, str]]:
    from spanledger.billing.invoices import list_invoices

    return [(invoice.id, customer) for invoice, customer in list_invoices(session, period="2026-10")]


def money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))} USD"


__all__ = ["ADMIN", "EVIL", "NOV", "NOW", "OCT", "SECRET", "build_ledger", "call", "find_invoice", "money"]
