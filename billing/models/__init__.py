"""The tables of spanledger, one module per table, all on one :class:`Base`."""

from spanledger.billing.models.base import Base
from spanledger.billing.models.customer import Customer
from spanledger.billing.models.ingest_state import INGEST_STATE_ID, IngestState
from spanledger.billing.models.meter import Meter
from spanledger.billing.models.types import ExactDecimal, UTCDateTime
from spanledger.billing.models.usage_event import JSON_DOCUMENT, EventRecord

__all__ = [
    "INGEST_STATE_ID",
    "JSON_DOCUMENT",
    "Base",
    "Customer",
    "EventRecord",
    "ExactDecimal",
    "IngestState",
    "Meter",
    "UTCDateTime",
]
