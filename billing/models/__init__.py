"""The tables of spanledger, one module per table, all on one :class:`Base`."""

from spanledger.billing.models.base import Base
from spanledger.billing.models.credit_entry import CreditEntryRecord
from spanledger.billing.models.credit_meter import CreditMeter
from spanledger.billing.models.credit_pack import CreditPackRecord
from spanledger.billing.models.customer import Customer
from spanledger.billing.models.ingest_state import INGEST_STATE_ID, IngestState
from spanledger.billing.models.invoice import InvoiceRecord
from spanledger.billing.models.invoice_line import InvoiceLineRecord
from spanledger.billing.models.invoice_line_weight import InvoiceLineWeight
from spanledger.billing.models.invoice_number import InvoiceNumber
from spanledger.billing.models.meter import Meter
from spanledger.billing.models.plan import PlanRecord
from spanledger.billing.models.price_override import PriceOverrideRecord
from spanledger.billing.models.stripe_customer import StripeCustomerLink
from spanledger.billing.models.stripe_invoice import StripeInvoiceSync
from spanledger.billing.models.stripe_invoice_item import StripeInvoiceItem
from spanledger.billing.models.stripe_usage_mark import StripeUsageMark
from spanledger.billing.models.stripe_webhook_event import StripeWebhookEvent
from spanledger.billing.models.subscription import SubscriptionRecord
from spanledger.billing.models.subscription_phase import SubscriptionPhase
from spanledger.billing.models.types import ExactDecimal, UTCDateTime
from spanledger.billing.models.usage_event import JSON_DOCUMENT, EventRecord
from spanledger.billing.models.usage_rollup import ROLLUP_DIMENSIONS, ROLLUP_MEASURED_FIELDS, UsageRollup
from spanledger.billing.models.usage_rollup_daily import UsageRollupDaily

__all__ = [
    "INGEST_STATE_ID",
    "JSON_DOCUMENT",
    "ROLLUP_DIMENSIONS",
    "ROLLUP_MEASURED_FIELDS",
    "Base",
    "CreditEntryRecord",
    "CreditMeter",
    "CreditPackRecord",
    "Customer",
    "EventRecord",
    "ExactDecimal",
    "IngestState",
    "InvoiceLineRecord",
    "InvoiceLineWeight",
    "InvoiceNumber",
    "InvoiceRecord",
    "Meter",
    "PlanRecord",
    "PriceOverrideRecord",
    "StripeCustomerLink",
    "StripeInvoiceItem",
    "StripeInvoiceSync",
    "StripeUsageMark",
    "StripeWebhookEvent",
    "SubscriptionPhase",
    "SubscriptionRecord",
    "UTCDateTime",
    "UsageRollup",
    "UsageRollupDaily",
]
