"""Catalog as code: meters, credit meters, plans, credit packs and price overrides from one YAML file."""

from spanledger.billing.catalog.apply import (
    Action,
    CatalogChange,
    CatalogDiff,
    apply_catalog,
    load_catalog_file,
)
from spanledger.billing.catalog.schema import (
    Catalog,
    CatalogError,
    CreditMeterSpec,
    pack_from_json,
    pack_to_json,
    parse_catalog,
    plan_from_json,
    plan_to_json,
    price_from_json,
    price_to_json,
)

__all__ = [
    "Action",
    "Catalog",
    "CatalogChange",
    "CatalogDiff",
    "CatalogError",
    "CreditMeterSpec",
    "apply_catalog",
    "load_catalog_file",
    "pack_from_json",
    "pack_to_json",
    "parse_catalog",
    "plan_from_json",
    "plan_to_json",
    "price_from_json",
    "price_to_json",
]
