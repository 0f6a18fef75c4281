"""Portal fixtures: the priced test ledger and a Starlette test client on the portal routes."""

from __future__ import annotations

import pytest
from portal_ledger import ADMIN, NOW, SECRET, build_ledger
from starlette.applications import Starlette
from starlette.testclient import TestClient

from spanledger.billing.db import make_session_factory
from spanledger.billing.portal import portal_routes


@pytest.fixture
def ledger(session):
    """The invoice ids of the built ledger (``acme`` paid, ``globex`` finalized)."""
    return build_ledger(session)


@pytest.fixture
def sessions(engine):
    return make_session_factory(engine)


@pytest.fixture
def client(sessions, ledger):
    app = Starlette(routes=portal_routes(sessions, secret_key=SECRET, admin_token=ADMIN, clock=lambda: NOW))
    with TestClient(app) as test_client:
        yield test_client
