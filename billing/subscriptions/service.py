"""Subscriptions storage: subscribe, change plan, cancel (the session is passed in; the caller commits).

A subscription is one row in ``subscriptions`` plus its plan history in ``subscription_phases``:
one phase per plan, ``[start, end)``. The rules (pure, in :mod:`.proration` and :mod:`.periods`):

- ``change_plan`` between monthly plans takes effect at the given moment; the base fee of each plan
  is prorated by the second on that month's invoice, usage is never prorated (the plan active at
  the end of the month prices the whole month's usage).
- A change to or from a yearly plan is scheduled for the end of the current yearly term (a phase
  that starts in the future), so a yearly fee is never split.
- ``cancel(at_period_end=True)`` ends the subscription at the end of the current billing period
  (status ``canceled_at_period_end`` until then, ``canceled`` after); ``at_period_end=False`` ends
  it now, prorating that month's base fee.
- Nothing may take effect inside the billing of an invoice that is no longer a draft (a backdated
  start, a plan or seat change, an end): :class:`~spanledger.billing.errors.FinalizedPeriodError`
  names the invoice and the earliest allowed date (:mod:`.closed`).

A customer has at most one subscription that has not ended. One that ended mid-month may be followed
by a new one in the same month: the invoice run bills both on the month's one invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from spanledger.billing.catalog.schema import plan_from_json
from spanledger.billing.customers import get_customer
from spanledger.billing.db import storage_errors
from spanledger.billing.errors import ConflictError, NotFoundError
from spanledger.billing.models import Customer, PlanRecord, SubscriptionPhase, SubscriptionRecord
from spanledger.billing.plans import Interval, Plan
from spanledger.billing.subscriptions.closed import check_open
from spanledger.billing.subscriptions.periods import Period, billing_period_containing
from spanledger.billing.subscriptions.proration import PlanSegment
from spanledger.billing.subscriptions.status import SubscriptionStatus, status_at

__all__ = [
    "PhaseView",
    "SubscriptionView",
    "cancel",
    "change_plan",
    "get_plan",
    "get_subscription",
    "list_plans",
    "list_subscriptions",
    "plan_segments",
    "subscribe",
    "subscription_view",
]


@dataclass(frozen=True, slots=True)
class PhaseView:
    plan: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """A subscription as people read it: who, which plan now, status and the current period."""

    id: int
    customer: str
    plan: str | None
    status: SubscriptionStatus | None
    seats: int
    anchor: datetime
    started_at: datetime
    ends_at: datetime | None
    current_period: Period | None
    phases: tuple[PhaseView, ...]


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConflictError(f"{what} must be a timezone-aware time (UTC)")
    return moment.astimezone(UTC)


def get_plan(session: Session, code: str) -> tuple[PlanRecord, Plan]:
    """The stored plan ``code`` and its definition; :class:`NotFoundError` if unknown."""
    with storage_errors():
        record = session.scalar(select(PlanRecord).where(PlanRecord.code == code))
    if record is None:
        raise NotFoundError(f"no plan {code!r}; see `spanledger plans list` or apply a catalog")
    return record, plan_from_json(record.definition, f"plan {code}")


def list_plans(session: Session) -> list[tuple[PlanRecord, Plan]]:
    with storage_errors():
        records = list(session.scalars(select(PlanRecord).order_by(PlanRecord.code)))
    return [(r, plan_from_json(r.definition, f"plan {r.code}")) for r in records]


def get_subscription(session: Session, subscription_id: int) -> SubscriptionRecord:
    with storage_errors():
        record = session.get(SubscriptionRecord, subscription_id)
    if record is None:
        raise NotFoundError(f"no subscription {subscription_id}; see `spanledger subscriptions list`")
    return record


def _phases(session: Session, subscription_id: int) -> list[SubscriptionPhase]:
    return list(
        session.scalars(
            select(SubscriptionPhase)
            .where(SubscriptionPhase.subscription_id == subscription_id)
            .order_by(SubscriptionPhase.start, SubscriptionPhase.id)
        )
    )


def _plans_by_id(session: Session, ids: set[int]) -> dict[int, tuple[PlanRecord, Plan]]:
    records = session.scalars(select(PlanRecord).where(PlanRecord.id.in_(ids))) if ids else []
    return {r.id: (r, plan_from_json(r.definition, f"plan {r.code}")) for r in records}


def plan_segments(session: Session, subscription: SubscriptionRecord) -> list[PlanSegment]:
    """The subscription's plan history as pure :class:`PlanSegment` values (seats: the current count)."""
    phases = _phases(session, subscription.id)
    plans = _plans_by_id(session, {p.plan_id for p in phases})
    return [PlanSegment(plans[p.plan_id][1], p.start, p.end, subscription.seats) for p in phases]


def _phase_at(phases: list[SubscriptionPhase], moment: datetime) -> SubscriptionPhase | None:
    for phase in reversed(phases):
        if phase.start <= moment and (phase.end is None or moment < phase.end):
            return phase
    return None


def subscribe(
    session: Session,
    customer: str,
    plan_code: str,
    *,
    start: datetime,
    anchor: datetime | None = None,
    seats: int = 0,
) -> SubscriptionRecord:
    """Subscribe ``customer`` to ``plan_code`` from ``start``; billing periods start at ``anchor``
    (default: ``start``). :class:`ConflictError` if the customer already has a live subscription."""
    start = _aware(start, "the start")
    anchor = start if anchor is None else _aware(anchor, "the anchor")
    if seats < 0:
        raise ConflictError(f"a subscription cannot have {seats} seats")
    customer_row: Customer = get_customer(session, customer)
    plan_record, _plan = get_plan(session, plan_code)
    with storage_errors():
        check_open(
            session, customer_row.id, start, f"subscribing {customer!r} to plan {plan_code!r}",
            anchor=None if anchor == start else anchor,
        )  # fmt: skip
        live = session.scalar(
            select(SubscriptionRecord.id).where(
                SubscriptionRecord.customer_id == customer_row.id,
                or_(SubscriptionRecord.ends_at.is_(None), SubscriptionRecord.ends_at > start),
            )
        )
        if live is not None:
            raise ConflictError(
                f"customer {customer!r} already has subscription {live}; change its plan with "
                f"`spanledger subscriptions change {live} PLAN` or cancel it first"
            )
        record = SubscriptionRecord(
            customer_id=customer_row.id,
            anchor=anchor,
            started_at=start,
            ends_at=None,
            seats=seats,
            created_at=datetime.now(UTC),
        )
        session.add(record)
        session.flush()
        session.add(
            SubscriptionPhase(subscription_id=record.id, plan_id=plan_record.id, start=start, end=None)
        )
        session.flush()
    return record


def change_plan(
    session: Session,
    subscription_id: int,
    plan_code: str,
    *,
    at: datetime,
    seats: int | None = None,
) -> datetime:
    """Move the subscription to ``plan_code``; returns when the change takes effect (see the module
    docstring: ``at`` for monthly plans, the end of the yearly term when a yearly plan is involved)."""
    at = _aware(at, "the change time")
    record = get_subscription(session, subscription_id)
    new_record, new_plan = get_plan(session, plan_code)
    with storage_errors():
        phases = _phases(session, record.id)
        current = _phase_at(phases, at)
        if current is None or (record.ends_at is not None and at >= record.ends_at):
            raise ConflictError(f"subscription {subscription_id} is not active at {at.isoformat()}")
        if any(p.start > at for p in phases):
            raise ConflictError(f"subscription {subscription_id} already has a scheduled plan change")
        current_plan = _plans_by_id(session, {current.plan_id})[current.plan_id][1]
        if current.plan_id == new_record.id and seats is None:
            raise ConflictError(f"subscription {subscription_id} is already on plan {plan_code!r}")
        if current_plan.currency != new_plan.currency:
            raise ConflictError(
                f"plan {plan_code!r} is in {new_plan.currency} but the subscription bills in "
                f"{current_plan.currency}; cancel and subscribe instead"
            )
        effective = at
        if Interval.YEAR in (current_plan.interval, new_plan.interval):
            effective = billing_period_containing(record.anchor, Interval.YEAR, at).end
        if record.ends_at is not None and effective >= record.ends_at:
            raise ConflictError(
                f"subscription {subscription_id} ends on {record.ends_at.isoformat()}, before the change "
                "would take effect"
            )
        if seats is not None and seats < 0:
            raise ConflictError(f"a subscription cannot have {seats} seats")
        # The seat count is not versioned: a new count bills every open month from ``at`` on.
        seats_change = seats is not None and seats != record.seats
        check_open(
            session, record.customer_id, at if seats_change else effective,
            f"changing subscription {subscription_id} to plan {plan_code!r}"
            + (f" with {seats} seats" if seats_change else ""),
            anchor=record.anchor,
        )  # fmt: skip
        if seats is not None:
            record.seats = seats
        if current.plan_id != new_record.id:
            current.end = effective
            session.add(
                SubscriptionPhase(subscription_id=record.id, plan_id=new_record.id, start=effective, end=None)
            )
        session.flush()
    return effective


def cancel(session: Session, subscription_id: int, *, at: datetime, at_period_end: bool = True) -> datetime:
    """End the subscription at the end of the current billing period (default) or at ``at``.

    Returns the end. Scheduled plan changes after the end are dropped.
    """
    at = _aware(at, "the cancellation time")
    record = get_subscription(session, subscription_id)
    with storage_errors():
        if record.ends_at is not None and record.ends_at <= at:
            raise ConflictError(f"subscription {subscription_id} was already canceled")
        phases = _phases(session, record.id)
        current = _phase_at(phases, at) or phases[0]
        plan = _plans_by_id(session, {current.plan_id})[current.plan_id][1]
        moment = max(at, record.started_at)
        end = billing_period_containing(record.anchor, plan.interval, moment).end if at_period_end else moment
        if record.ends_at is not None and end > record.ends_at:
            raise ConflictError(
                f"subscription {subscription_id} is already canceled at period end "
                f"({record.ends_at.isoformat()})"
            )
        what = f"ending subscription {subscription_id}"
        check_open(session, record.customer_id, end, what, anchor=record.anchor)
        record.ends_at = end
        for phase in phases:
            if phase.start >= end:
                session.delete(phase)
            elif phase.end is None or phase.end > end:
                phase.end = end
        session.flush()
    return end


def subscription_view(
    session: Session, record: SubscriptionRecord, *, now: datetime | None = None
) -> SubscriptionView:
    moment = _aware(now, "now") if now is not None else datetime.now(UTC)
    phases = _phases(session, record.id)
    plans = _plans_by_id(session, {p.plan_id for p in phases})
    active = _phase_at(phases, moment) or (phases[-1] if phases else None)
    customer = session.scalar(select(Customer.external_id).where(Customer.id == record.customer_id))
    status = status_at(record.started_at, record.ends_at, moment)
    period = None
    if active is not None and status in (
        SubscriptionStatus.ACTIVE,
        SubscriptionStatus.CANCELED_AT_PERIOD_END,
    ):
        period = billing_period_containing(record.anchor, plans[active.plan_id][1].interval, moment)
    return SubscriptionView(
        id=record.id,
        customer=customer or "",
        plan=None if active is None else plans[active.plan_id][0].code,
        status=status,
        seats=record.seats,
        anchor=record.anchor,
        started_at=record.started_at,
        ends_at=record.ends_at,
        current_period=period,
        phases=tuple(PhaseView(plans[p.plan_id][0].code, p.start, p.end) for p in phases),
    )


def list_subscriptions(
    session: Session,
    customer: str | None = None,
    *,
    status: SubscriptionStatus | str | None = None,
    now: datetime | None = None,
) -> list[SubscriptionRecord]:
    """Subscriptions by id, optionally of one ``customer`` and with ``status`` at ``now`` (default: now).

    The status is the one :func:`~.status.status_at` gives, expressed on the stored dates.
    """
    statement = select(SubscriptionRecord).order_by(SubscriptionRecord.id)
    if customer is not None:
        statement = statement.where(SubscriptionRecord.customer_id == get_customer(session, customer).id)
    if status is not None:
        statement = statement.where(_status_condition(_status(status), _moment(now)))
    with storage_errors():
        return list(session.scalars(statement))


def _status(value: SubscriptionStatus | str) -> SubscriptionStatus:
    try:
        return SubscriptionStatus(value)
    except ValueError:
        choices = ", ".join(s.value for s in SubscriptionStatus)
        raise ConflictError(f"unknown subscription status {value!r}; use one of {choices}") from None


def _moment(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else _aware(now, "now")


def _status_condition(status: SubscriptionStatus, moment: datetime) -> ColumnElement[bool]:
    started = SubscriptionRecord.started_at <= moment
    ends_at = SubscriptionRecord.ends_at
    if status is SubscriptionStatus.ACTIVE:
        return and_(started, ends_at.is_(None))
    if status is SubscriptionStatus.CANCELED_AT_PERIOD_END:
        return and_(started, ends_at.is_not(None), ends_at > moment)
    return and_(ends_at.is_not(None), ends_at <= moment)
