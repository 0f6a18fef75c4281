"""Apply a parsed catalog to the database: create or update meters, credit meters, plans (with their
prices), credit packs and price overrides, and say what changed.

Declarative and idempotent: each object is compared with what is stored (by meter name, plan or pack
code, and ``(provider, model, valid_from)`` for overrides); equal objects are left alone and reported
``unchanged``, so a second apply of the same file writes nothing. Objects stored but absent from the
file are left alone too (apply never deletes: invoices and subscriptions refer to them).
``dry_run`` computes the same diff without writing anything.

Changing a plan that has subscribers is safe because:

- finalized invoices keep a snapshot of every price they used and never change, so a new price
  only affects draft invoices (recomputed at the next ``invoices run``) and later periods;
- the diff says how many subscriptions are on each updated plan, so ``--dry-run`` shows who is
  affected before anything is written;
- changes that would re-cut existing billing periods (``currency`` or ``interval``) are refused for a
  plan with subscribers: declare a new plan code and move customers with ``subscriptions change``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spanledger.billing.catalog.schema import (
    Catalog,
    CatalogError,
    pack_to_json,
    parse_catalog,
    plan_to_json,
)
from spanledger.billing.db import storage_errors
from spanledger.billing.errors import ConflictError
from spanledger.billing.meters import MeterDefinition, create_meter, to_definition
from spanledger.billing.meters.filters import filter_to_json
from spanledger.billing.models import (
    CreditMeter,
    CreditPackRecord,
    Meter,
    PlanRecord,
    PriceOverrideRecord,
    SubscriptionPhase,
)

__all__ = ["Action", "CatalogChange", "CatalogDiff", "apply_catalog", "load_catalog_file"]


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class CatalogChange:
    """What apply does (or did) to one object. ``kind`` is meter, credit_meter, plan, price, …"""

    kind: str
    name: str
    action: Action
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "action": self.action.value, "detail": self.detail}


@dataclass(slots=True)
class CatalogDiff:
    dry_run: bool
    changes: list[CatalogChange] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything is (or would be) created or updated."""
        return any(change.action is not Action.UNCHANGED for change in self.changes)

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action is action)

    def summary(self) -> str:
        """One sentence, e.g. ``3 created, 1 updated, 9 unchanged``."""
        if not self.changed:
            return f"Nothing to change: the {len(self.changes)} object(s) in the catalog are already applied."
        outcome = "dry run: nothing was written" if self.dry_run else "applied"
        return (
            f"{self.count(Action.CREATED)} created, {self.count(Action.UPDATED)} updated, "
            f"{self.count(Action.UNCHANGED)} unchanged ({outcome})."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "changed": self.changed,
            "changes": [change.to_json() for change in self.changes],
        }


def load_catalog_file(path: str | Path) -> Catalog:
    """Read and validate a YAML (or JSON) catalog file; problems raise :class:`CatalogError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot read the catalog file {str(path)!r} ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise CatalogError(f"{path.name} is not valid YAML{where}") from exc
    return parse_catalog(data)


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
    return "changed: " + ", ".join(keys) if keys else ""


def _check_references(session: Session, catalog: Catalog) -> None:
    """Every meter a plan, pack or credit meter names must exist (in the file or the database)."""
    stored = set(session.scalars(select(Meter.name)))
    meters = stored | {m.name for m in catalog.meters}
    stored_credit = set(
        session.scalars(select(Meter.name).join(CreditMeter, CreditMeter.meter_id == Meter.id))
    )
    credit_meters = stored_credit | {c.meter for c in catalog.credit_meters}

    def need(name: str, path: str, credited: bool = False) -> None:
        if name not in meters:
            raise CatalogError(f"{path}: no meter named {name!r} in the catalog or the database")
        if credited and name not in credit_meters:
            raise CatalogError(f"{path}: meter {name!r} is not listed under credit_meters")

    for index, spec in enumerate(catalog.credit_meters):
        need(spec.meter, f"credit_meters[{index}].meter")
    for index, plan in enumerate(catalog.plans):
        for price_index, plan_price in enumerate(plan.prices):
            need(plan_price.meter, f"plans[{index}].prices[{price_index}].meter")
        for grant_index, grant in enumerate(plan.credit_grants):
            need(grant.meter, f"plans[{index}].credit_grants[{grant_index}].meter", credited=True)
    for index, pack in enumerate(catalog.credit_packs):
        need(pack.meter, f"credit_packs[{index}].meter", credited=True)


def _apply_meter(session: Session, definition: MeterDefinition, dry_run: bool) -> CatalogChange:
    stored = session.scalar(select(Meter).where(Meter.name == definition.name))
    if stored is None:
        if not dry_run:
            create_meter(session, definition)
        return CatalogChange("meter", definition.name, Action.CREATED)
    old, new = to_definition(stored).to_json(), definition.to_json()
    if old == new:
        return CatalogChange("meter", definition.name, Action.UNCHANGED)
    if not dry_run:
        # Invoice lines keep a snapshot of the meter they were computed with, so this is safe.
        stored.description = definition.description
        stored.event_name = definition.event_name
        stored.aggregation = definition.aggregation.value
        stored.field = definition.field
        stored.filter = filter_to_json(definition.filter)
    return CatalogChange("meter", definition.name, Action.UPDATED, _changed_keys(old, new))


def _apply_credit_meter(session: Session, meter: str, units_per_credit: Any, dry_run: bool) -> CatalogChange:
    meter_id = session.scalar(select(Meter.id).where(Meter.name == meter))
    stored = (
        None
        if meter_id is None
        else session.scalar(select(CreditMeter).where(CreditMeter.meter_id == meter_id))
    )
    if stored is None:
        if not dry_run:
            assert meter_id is not None  # meters are applied first
            session.add(CreditMeter(meter_id=meter_id, units_per_credit=units_per_credit))
        return CatalogChange("credit_meter", meter, Action.CREATED, f"{units_per_credit} units per credit")
    if stored.units_per_credit == units_per_credit:
        return CatalogChange("credit_meter", meter, Action.UNCHANGED)
    detail = f"units per credit {stored.units_per_credit} → {units_per_credit}"
    if not dry_run:
        stored.units_per_credit = units_per_credit
    return CatalogChange("credit_meter", meter, Action.UPDATED, detail)


def _subscriber_count(session: Session, plan_id: int) -> int:
    count = session.scalar(
        select(func.count(func.distinct(SubscriptionPhase.subscription_id))).where(
            SubscriptionPhase.plan_id == plan_id
        )
    )
    return int(count or 0)


def _price_changes(code: str, old: dict[str, Any] | None, new: dict[str, Any]) -> list[CatalogChange]:
    old_prices = {p["meter"]: p for p in (old or {}).get("prices", [])}
    changes = []
    for price in new["prices"]:
        name = f"{code}/{price['meter']}"
        before = old_prices.get(price["meter"])
        if before is None:
            changes.append(CatalogChange("price", name, Action.CREATED))
        elif before == price:
            changes.append(CatalogChange("price", name, Action.UNCHANGED))
        else:
            changes.append(CatalogChange("price", name, Action.UPDATED, _changed_keys(before, price)))
    return changes


def _apply_plan(session: Session, index: int, plan: Any, now: datetime, dry_run: bool) -> list[CatalogChange]:
    definition = plan_to_json(plan)
    stored = session.scalar(select(PlanRecord).where(PlanRecord.code == plan.code))
    if stored is None:
        if not dry_run:
            record = PlanRecord(code=plan.code, name=plan.name, currency=plan.currency, definition=definition)
            record.updated_at = now
            session.add(record)
        created = CatalogChange("plan", plan.code, Action.CREATED)
        return [created, *_price_changes(plan.code, None, definition)]
    prices = _price_changes(plan.code, stored.definition, definition)
    if stored.definition == definition and stored.name == plan.name:
        return [CatalogChange("plan", plan.code, Action.UNCHANGED), *prices]
    subscribers = _subscriber_count(session, stored.id)
    if subscribers:
        for key in ("currency", "interval"):
            if stored.definition.get(key) != definition[key]:
                raise ConflictError(
                    f"plans[{index}].{key}: plan {plan.code!r} has {subscribers} subscription(s), so its "
                    f"{key} cannot change from {stored.definition.get(key)} to {definition[key]}; declare "
                    "a new plan code and move customers with `spanledger subscriptions change`"
                )
    detail = _changed_keys(stored.definition, definition)
    if subscribers:
        detail += f" ({subscribers} subscription(s) affected from their next invoice run)"
    if not dry_run:
        stored.name = plan.name
        stored.currency = plan.currency
        stored.definition = definition
        stored.updated_at = now
    return [CatalogChange("plan", plan.code, Action.UPDATED, detail.strip()), *prices]


def _apply_pack(session: Session, pack: Any, now: datetime, dry_run: bool) -> CatalogChange:
    definition = pack_to_json(pack)
    stored = session.scalar(select(CreditPackRecord).where(CreditPackRecord.code == pack.code))
    if stored is None:
        if not dry_run:
            session.add(CreditPackRecord(code=pack.code, definition=definition, updated_at=now))
        return CatalogChange("credit_pack", pack.code, Action.CREATED)
    if stored.definition == definition:
        return CatalogChange("credit_pack", pack.code, Action.UNCHANGED)
    # Past purchases keep the pack's price and credits on their ledger entry; only new ones change.
    detail = _changed_keys(stored.definition, definition)
    if not dry_run:
        stored.definition = definition
        stored.updated_at = now
    return CatalogChange("credit_pack", pack.code, Action.UPDATED, detail)


_OVERRIDE_PRICES = (
    "currency",
    "input_per_million",
    "output_per_million",
    "cache_read_per_million",
    "cache_write_per_million",
    "reasoning_per_million",
)


def _apply_override(session: Session, override: Any, dry_run: bool) -> CatalogChange:
    name = f"{override.provider}/{override.model}@{override.valid_from.isoformat()}"
    stored = session.scalar(
        select(PriceOverrideRecord).where(
            PriceOverrideRecord.provider == override.provider,
            PriceOverrideRecord.model == override.model,
            PriceOverrideRecord.valid_from == override.valid_from,
        )
    )
    new = {key: getattr(override, key) for key in _OVERRIDE_PRICES}
    if stored is None:
        if not dry_run:
            session.add(
                PriceOverrideRecord(
                    provider=override.provider, model=override.model, valid_from=override.valid_from, **new
                )
            )
        return CatalogChange("price_override", name, Action.CREATED)
    old = {key: getattr(stored, key) for key in _OVERRIDE_PRICES}
    if old == new:
        return CatalogChange("price_override", name, Action.UNCHANGED)
    if not dry_run:
        for key, value in new.items():
            setattr(stored, key, value)
    # Events already priced keep their stored cost; `spanledger costs --reprice` fills NULL ones.
    return CatalogChange("price_override", name, Action.UPDATED, _changed_keys(old, new))


def apply_catalog(session: Session, catalog: Catalog, dry_run: bool = False) -> CatalogDiff:
    """Create or update everything ``catalog`` declares; return what changed (or would change).

    Runs in the caller's transaction: on any error nothing the call wrote should be committed.
    Raises :class:`CatalogError` (with the YAML path) for a reference to an unknown meter, and
    :class:`ConflictError` for a change the subscribers of a plan cannot absorb.
    """
    now = datetime.now(UTC)
    diff = CatalogDiff(dry_run=dry_run)
    with storage_errors():
        _check_references(session, catalog)
        for definition in catalog.meters:
            diff.changes.append(_apply_meter(session, definition, dry_run))
        if not dry_run:
            session.flush()
        for spec in catalog.credit_meters:
            diff.changes.append(_apply_credit_meter(session, spec.meter, spec.units_per_credit, dry_run))
        for index, plan in enumerate(catalog.plans):
            diff.changes.extend(_apply_plan(session, index, plan, now, dry_run))
        for pack in catalog.credit_packs:
            diff.changes.append(_apply_pack(session, pack, now, dry_run))
        for override in catalog.price_overrides:
            diff.changes.append(_apply_override(session, override, dry_run))
        if not dry_run:
            session.flush()
    return diff
