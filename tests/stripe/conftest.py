"""Fixtures for the Stripe tests: the fake Stripe API on loopback, settings pointing at it, and
builders for finalized invoices and usage events in the test ledger."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_stripe import FakeStripe
from stripe_ledger import WEBHOOK_SECRET

from spanledger.billing.db import make_session_factory
from spanledger.billing.stripe import StripeSettings


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(fake_stripe: FakeStripe) -> StripeSettings:
    return StripeSettings(
        api_key="sk_test_fake",
        api_base=fake_stripe.url,
        network_retries=1,
        backoff_seconds=0.0,
        webhook_secret=WEBHOOK_SECRET,
    )


@pytest.fixture
def sessions(engine):
    return make_session_factory(engine)
