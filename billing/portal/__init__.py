"""The customer usage portal and the admin's Cost Insights view: server-rendered HTML on
``spanledger serve`` (no JavaScript, no CDN), reading the ledger with SQL aggregates.

Customers reach their page through a signed, expiring link (:func:`sign_portal_token`,
``spanledger portal-link``); upstream cost and margin never appear on customer pages. The admin view
sits behind ``SPANLEDGER_ADMIN_TOKEN``. See docs/portal.md.
"""

from spanledger.billing.portal.admin_data import AdminView, admin_view
from spanledger.billing.portal.anomalies import Anomaly, nearest_rank_percentile, usage_anomalies
from spanledger.billing.portal.customer_data import CustomerPortalView, customer_portal_view, estimate
from spanledger.billing.portal.drilldown import (
    CURRENT,
    PAGE_SIZE,
    RequestsPage,
    line_selection,
    requests_page,
)
from spanledger.billing.portal.environment_variables import (
    SPANLEDGER_ADMIN_TOKEN,
    SPANLEDGER_PORTAL_BASE_URL,
    SPANLEDGER_SECRET_KEY,
)
from spanledger.billing.portal.links import portal_url
from spanledger.billing.portal.routes import ADMIN_COOKIE, PORTAL_PATH, portal_routes
from spanledger.billing.portal.tokens import (
    PortalAccessDenied,
    PortalGrant,
    parse_duration,
    require_secret_key,
    sign_portal_token,
    verify_portal_token,
)

__all__ = [
    "ADMIN_COOKIE",
    "CURRENT",
    "PAGE_SIZE",
    "PORTAL_PATH",
    "SPANLEDGER_ADMIN_TOKEN",
    "SPANLEDGER_PORTAL_BASE_URL",
    "SPANLEDGER_SECRET_KEY",
    "AdminView",
    "Anomaly",
    "CustomerPortalView",
    "PortalAccessDenied",
    "PortalGrant",
    "RequestsPage",
    "admin_view",
    "customer_portal_view",
    "estimate",
    "line_selection",
    "nearest_rank_percentile",
    "parse_duration",
    "portal_routes",
    "portal_url",
    "requests_page",
    "require_secret_key",
    "sign_portal_token",
    "usage_anomalies",
    "verify_portal_token",
]
