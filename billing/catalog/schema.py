"""The catalog file format (YAML or JSON) → validated plain definitions, errors with their YAML path.

A catalog declares meters, the meters that consume credits, plans, credit packs and upstream price
overrides (see ``examples/catalog.yaml`` and ``docs/billing.md``). Money and unit prices may be
written as numbers or strings; a YAML float is read through its shortest decimal form (``0.015`` is
exactly ``Decimal("0.015")``), never as a binary fraction. Plans and packs are stored as the same
JSON (:func:`plan_to_json`, :func:`pack_to_json`), so what was applied is what is billed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from spanledger.billing.costs import PriceOverride
from spanledger.billing.credits import CreditPack
from spanledger.billing.errors import ConfigurationError, SpanledgerError
from spanledger.billing.meters import MeterDefinition
from spanledger.billing.plans import CreditGrantRule, Plan, PlanPrice, SeatPricing
from spanledger.billing.pricing import (
    CostPlus,
    Graduated,
    Package,
    PerUnit,
    Price,
    Tier,
    Volume,
)

__all__ = [
    "Catalog",
    "CatalogError",
    "CreditMeterSpec",
    "pack_from_json",
    "pack_to_json",
    "parse_catalog",
    "plan_from_json",
    "plan_to_json",
    "price_from_json",
    "price_to_json",
]


class CatalogError(ConfigurationError):
    """A catalog entry is invalid; the message starts with its path, e.g. ``plans[1].prices[0]``."""


@dataclass(frozen=True, slots=True)
class CreditMeterSpec:
    meter: str
    units_per_credit: Decimal


@dataclass(frozen=True, slots=True)
class Catalog:
    meters: tuple[MeterDefinition, ...] = ()
    credit_meters: tuple[CreditMeterSpec, ...] = ()
    plans: tuple[Plan, ...] = ()
    credit_packs: tuple[CreditPack, ...] = ()
    price_overrides: tuple[PriceOverride, ...] = ()


def _decimal(value: object, path: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise CatalogError(f"{path}: expected a number, got {value!r}")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = (
            Decimal(str(value).replace("_", "").replace(",", ""))
            if isinstance(value, str)
            else Decimal(value)
        )
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise CatalogError(f"{path}: {value!r} is not a number") from exc
    if not result.is_finite():
        raise CatalogError(f"{path}: {value!r} is not a finite number")
    return result


def _optional_decimal(data: Mapping[str, Any], key: str, path: str) -> Decimal | None:
    value = data.get(key)
    return None if value is None else _decimal(value, f"{path}.{key}")


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CatalogError(f"{path}: expected a mapping of keys to values")
    return value


def _list(value: object, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CatalogError(f"{path}: expected a list")
    return value


def _text(data: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{path}.{key}: required text is missing")
    return value.strip()


def _known_keys(data: Mapping[str, Any], allowed: set[str], path: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise CatalogError(
            f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


_PRICE_KEYS = {
    "meter", "model", "currency", "unit_price", "unit_size", "package_price", "package_size", "tiers",
    "markup_percent", "fee_per_unit", "included_units", "minimum", "maximum",
}  # fmt: skip


def _tiers(value: object, path: str) -> tuple[Tier, ...]:
    tiers = []
    for index, raw in enumerate(_list(value, path)):
        tier_path = f"{path}[{index}]"
        tier = _mapping(raw, tier_path)
        _known_keys(tier, {"up_to", "unit_price", "flat_fee"}, tier_path)
        up_to = tier.get("up_to")
        tiers.append(
            Tier(
                None if up_to is None else _decimal(up_to, f"{tier_path}.up_to"),
                _decimal(tier.get("unit_price"), f"{tier_path}.unit_price"),
                _decimal(tier.get("flat_fee", 0), f"{tier_path}.flat_fee"),
            )
        )
    return tuple(tiers)


def price_from_json(data: object, path: str = "price", currency: str = "USD") -> Price:
    """A :class:`Price` from its catalog/JSON form."""
    raw = _mapping(data, path)
    _known_keys(raw, _PRICE_KEYS, path)
    kind = raw.get("model")
    unit_size = _decimal(raw.get("unit_size", 1), f"{path}.unit_size")
    try:
        if kind == "per_unit":
            model: Any = PerUnit(_decimal(raw.get("unit_price"), f"{path}.unit_price"), unit_size)
        elif kind == "package":
            model = Package(
                _decimal(raw.get("package_price"), f"{path}.package_price"),
                _decimal(raw.get("package_size"), f"{path}.package_size"),
            )
        elif kind == "graduated":
            model = Graduated(_tiers(raw.get("tiers"), f"{path}.tiers"), unit_size)
        elif kind == "volume":
            model = Volume(_tiers(raw.get("tiers"), f"{path}.tiers"), unit_size)
        elif kind == "cost_plus":
            model = CostPlus(
                _decimal(raw.get("markup_percent", 0), f"{path}.markup_percent"),
                _decimal(raw.get("fee_per_unit", 0), f"{path}.fee_per_unit"),
                unit_size,
            )
        else:
            raise CatalogError(
                f"{path}.model: {kind!r} is not one of per_unit, package, graduated, volume, cost_plus"
            )
        return Price(
            model,
            currency=raw.get("currency", currency),
            included_units=_decimal(raw.get("included_units", 0), f"{path}.included_units"),
            minimum_amount=_optional_decimal(raw, "minimum", path),
            maximum_amount=_optional_decimal(raw, "maximum", path),
        )
    except CatalogError:
        raise
    except SpanledgerError as exc:
        raise CatalogError(f"{path}: {exc}") from exc


def _tiers_to_json(tiers: tuple[Tier, ...]) -> list[dict[str, Any]]:
    return [
        {
            "up_to": None if t.up_to is None else str(t.up_to),
            "unit_price": str(t.unit_price),
            "flat_fee": str(t.flat_fee),
        }
        for t in tiers
    ]


def price_to_json(price: Price) -> dict[str, Any]:
    """The JSON form of ``price`` that :func:`price_from_json` reads back equal."""
    model = price.model
    data: dict[str, Any]
    if isinstance(model, PerUnit):
        data = {"model": "per_unit", "unit_price": str(model.unit_price), "unit_size": str(model.unit_size)}
    elif isinstance(model, Package):
        data = {
            "model": "package",
            "package_price": str(model.package_price),
            "package_size": str(model.package_size),
        }
    elif isinstance(model, Graduated | Volume):
        data = {
            "model": "graduated" if isinstance(model, Graduated) else "volume",
            "tiers": _tiers_to_json(model.tiers),
            "unit_size": str(model.unit_size),
        }
    else:
        data = {
            "model": "cost_plus",
            "markup_percent": str(model.markup_percent),
            "fee_per_unit": str(model.fee_per_unit),
            "unit_size": str(model.unit_size),
        }
    data["currency"] = price.currency
    data["included_units"] = str(price.included_units)
    if price.minimum_amount is not None:
        data["minimum"] = str(price.minimum_amount)
    if price.maximum_amount is not None:
        data["maximum"] = str(price.maximum_amount)
    return data


_PLAN_KEYS = {
    "code",
    "name",
    "currency",
    "base_fee",
    "interval",
    "prices",
    "credit_grants",
    "seats",
    "allows_overage",
}


def plan_from_json(data: object, path: str = "plan") -> Plan:
    """A :class:`Plan` from its catalog/JSON form."""
    raw = _mapping(data, path)
    _known_keys(raw, _PLAN_KEYS, path)
    code = _text(raw, "code", path)
    currency = raw.get("currency", "USD")
    prices = []
    for index, item in enumerate(_list(raw.get("prices"), f"{path}.prices")):
        item_path = f"{path}.prices[{index}]"
        item = _mapping(item, item_path)
        prices.append(PlanPrice(_text(item, "meter", item_path), price_from_json(item, item_path, currency)))
    grants = []
    for index, item in enumerate(_list(raw.get("credit_grants"), f"{path}.credit_grants")):
        item_path = f"{path}.credit_grants[{index}]"
        item = _mapping(item, item_path)
        _known_keys(item, {"meter", "credits", "every", "rollover_limit"}, item_path)
        try:
            grants.append(
                CreditGrantRule(
                    _text(item, "meter", item_path),
                    _decimal(item.get("credits"), f"{item_path}.credits"),
                    item.get("every", "month"),
                    _decimal(item.get("rollover_limit", 0), f"{item_path}.rollover_limit"),
                )
            )
        except ValueError as exc:
            if isinstance(exc, CatalogError):
                raise
            raise CatalogError(f"{item_path}: {exc}") from exc
    seats = None
    if raw.get("seats") is not None:
        seat_path = f"{path}.seats"
        seat_data = _mapping(raw["seats"], seat_path)
        _known_keys(seat_data, {"included", "price_per_seat"}, seat_path)
        included = seat_data.get("included")
        if included is not None and (isinstance(included, bool) or not isinstance(included, int)):
            raise CatalogError(f"{seat_path}.included: a whole number of seats, or null for unlimited")
        seats = SeatPricing(
            included, _decimal(seat_data.get("price_per_seat", 0), f"{seat_path}.price_per_seat")
        )
    try:
        return Plan(
            code,
            _text(raw, "name", path, default=code),
            currency,
            _decimal(raw.get("base_fee", 0), f"{path}.base_fee"),
            raw.get("interval", "month"),
            tuple(prices),
            tuple(grants),
            seats,
            bool(raw.get("allows_overage", True)),
        )
    except CatalogError:
        raise
    except ValueError as exc:
        raise CatalogError(f"{path}: {exc}") from exc


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The JSON form of ``plan`` that :func:`plan_from_json` reads back equal."""
    return {
        "code": plan.code,
        "name": plan.name,
        "currency": plan.currency,
        "base_fee": str(plan.base_fee),
        "interval": plan.interval.value,
        "prices": [{"meter": p.meter, **price_to_json(p.price)} for p in plan.prices],
        "credit_grants": [
            {
                "meter": g.meter,
                "credits": str(g.credits),
                "every": g.every.value,
                "rollover_limit": str(g.rollover_limit),
            }
            for g in plan.credit_grants
        ],
        "seats": None
        if plan.seats is None
        else {"included": plan.seats.included, "price_per_seat": str(plan.seats.price_per_seat)},
        "allows_overage": plan.allows_overage,
    }


def pack_from_json(data: object, path: str = "credit_pack") -> CreditPack:
    """A :class:`CreditPack` from its catalog/JSON form (``credits: unlimited`` or null = unlimited)."""
    raw = _mapping(data, path)
    _known_keys(raw, {"code", "name", "meter", "credits", "price", "currency", "valid_days"}, path)
    code = _text(raw, "code", path)
    credits_value = raw.get("credits")
    credits = None if credits_value in (None, "unlimited") else _decimal(credits_value, f"{path}.credits")
    valid_days = raw.get("valid_days")
    if valid_days is not None and (isinstance(valid_days, bool) or not isinstance(valid_days, int)):
        raise CatalogError(f"{path}.valid_days: a whole number of days")
    try:
        return CreditPack(
            code,
            _text(raw, "name", path, default=code),
            _text(raw, "meter", path),
            credits,
            _decimal(raw.get("price"), f"{path}.price"),
            raw.get("currency", "USD"),
            valid_days,
        )
    except CatalogError:
        raise
    except ValueError as exc:
        raise CatalogError(f"{path}: {exc}") from exc


def pack_to_json(pack: CreditPack) -> dict[str, Any]:
    return {
        "code": pack.code,
        "name": pack.name,
        "meter": pack.meter,
        "credits": None if pack.credits is None else str(pack.credits),
        "price": str(pack.price),
        "currency": pack.currency,
        "valid_days": pack.valid_days,
    }


def _override(data: object, path: str) -> PriceOverride:
    raw = _mapping(data, path)
    allowed = {
        "provider", "model", "valid_from", "currency", "input_per_million", "output_per_million",
        "cache_read_per_million", "cache_write_per_million", "reasoning_per_million",
    }  # fmt: skip
    _known_keys(raw, allowed, path)
    valid_from = raw.get("valid_from")
    if isinstance(valid_from, str):
        try:
            valid_from = date.fromisoformat(valid_from)
        except ValueError as exc:
            raise CatalogError(f"{path}.valid_from: {valid_from!r} is not a date like 2026-11-01") from exc
    if not isinstance(valid_from, date):
        raise CatalogError(f"{path}.valid_from: a date like 2026-11-01 is required")
    try:
        return PriceOverride(
            _text(raw, "provider", path),
            _text(raw, "model", path),
            valid_from,
            _decimal(raw.get("input_per_million"), f"{path}.input_per_million"),
            _decimal(raw.get("output_per_million"), f"{path}.output_per_million"),
            _optional_decimal(raw, "cache_read_per_million", path),
            _optional_decimal(raw, "cache_write_per_million", path),
            _optional_decimal(raw, "reasoning_per_million", path),
            raw.get("currency", "USD"),
        )
    except CatalogError:
        raise
    except ValueError as exc:
        raise CatalogError(f"{path}: {exc}") from exc


def parse_catalog(data: object) -> Catalog:
    """Validate a decoded catalog document; the first problem raises :class:`CatalogError`."""
    raw = _mapping(data if data is not None else {}, "catalog")
    _known_keys(raw, {"meters", "credit_meters", "plans", "credit_packs", "price_overrides"}, "catalog")
    meters = []
    for index, item in enumerate(_list(raw.get("meters"), "meters")):
        path = f"meters[{index}]"
        item = _mapping(item, path)
        _known_keys(item, {"name", "aggregation", "field", "event_name", "filter", "description"}, path)
        try:
            meters.append(
                MeterDefinition.parse(
                    item.get("name"),
                    item.get("aggregation"),
                    item.get("field"),
                    event_name=item.get("event_name"),
                    filter=item.get("filter"),
                    description=item.get("description"),
                )
            )
        except SpanledgerError as exc:
            raise CatalogError(f"{path}: {exc}") from exc
    credit_meters = []
    for index, item in enumerate(_list(raw.get("credit_meters"), "credit_meters")):
        path = f"credit_meters[{index}]"
        item = _mapping(item, path)
        _known_keys(item, {"meter", "units_per_credit"}, path)
        units = _decimal(item.get("units_per_credit"), f"{path}.units_per_credit")
        if units <= 0:
            raise CatalogError(f"{path}.units_per_credit: must be positive")
        credit_meters.append(CreditMeterSpec(_text(item, "meter", path), units))
    plans = [plan_from_json(item, f"plans[{i}]") for i, item in enumerate(_list(raw.get("plans"), "plans"))]
    packs = [
        pack_from_json(item, f"credit_packs[{i}]")
        for i, item in enumerate(_list(raw.get("credit_packs"), "credit_packs"))
    ]
    overrides = [
        _override(item, f"price_overrides[{i}]")
        for i, item in enumerate(_list(raw.get("price_overrides"), "price_overrides"))
    ]
    _check_unique([m.name for m in meters], "meters", "name")
    _check_unique([p.code for p in plans], "plans", "code")
    _check_unique([p.code for p in packs], "credit_packs", "code")
    return Catalog(tuple(meters), tuple(credit_meters), tuple(plans), tuple(packs), tuple(overrides))


def _check_unique(values: list[str], section: str, key: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise CatalogError(f"{section}[{index}].{key}: {value!r} is declared twice")
        seen.add(value)
