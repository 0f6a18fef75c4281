"""Signed portal tokens: round trip, and every kind of refusal looks the same."""

from datetime import UTC, datetime, timedelta

import pytest

from spanledger.billing.errors import ConfigurationError
from spanledger.billing.portal import (
    PortalAccessDenied,
    parse_duration,
    require_secret_key,
    sign_portal_token,
    verify_portal_token,
)

KEY = require_secret_key("0123456789abcdef-portal")
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
LATER = NOW + timedelta(days=7)


def test_a_signed_token_grants_its_customer_until_it_expires():
    token = sign_portal_token(KEY, "acme", LATER)
    grant = verify_portal_token(KEY, token, "acme", NOW)
    assert grant.customer == "acme" and grant.expires_at == LATER


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: _flip(t, 3),  # payload changed
        lambda t: _flip(t, len(t) - 3),  # signature changed
        lambda t: t.split(".")[0],  # signature dropped
        lambda t: t + ".x",
        lambda t: "",
        lambda t: "not a token",
        lambda t: "%%%.%%%",
    ],
)
def test_a_tampered_token_is_refused(mangle):
    token = sign_portal_token(KEY, "acme", LATER)
    with pytest.raises(PortalAccessDenied) as refused:
        verify_portal_token(KEY, mangle(token), "acme", NOW)
    assert str(refused.value) == str(PortalAccessDenied())


def test_a_payload_re_signed_for_another_customer_does_not_verify():
    acme = sign_portal_token(KEY, "acme", LATER)
    globex = sign_portal_token(KEY, "globex", LATER)
    franken = acme.split(".")[0] + "." + globex.split(".")[1]
    with pytest.raises(PortalAccessDenied):
        verify_portal_token(KEY, franken, "acme", NOW)


def test_expired_other_customer_and_other_key_are_refused_with_the_same_error():
    messages = set()
    cases = [
        (KEY, sign_portal_token(KEY, "acme", NOW), "acme"),  # expires exactly now
        (KEY, sign_portal_token(KEY, "acme", LATER), "globex"),
        (require_secret_key("another-key-0123456789"), sign_portal_token(KEY, "acme", LATER), "acme"),
    ]
    for key, token, customer in cases:
        with pytest.raises(PortalAccessDenied) as refused:
            verify_portal_token(key, token, customer, NOW)
        messages.add(str(refused.value))
    assert len(messages) == 1


def test_a_customer_id_with_separators_round_trips():
    customer = 'a.b|c/"d" é'
    token = sign_portal_token(KEY, customer, LATER)
    assert verify_portal_token(KEY, token, customer, NOW).customer == customer


@pytest.mark.parametrize("value", [None, "", "   ", "short"])
def test_a_missing_or_short_secret_key_is_a_clear_error(value):
    with pytest.raises(ConfigurationError, match="SPANLEDGER_SECRET_KEY"):
        require_secret_key(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7)),
     ("2w", timedelta(weeks=2)), ("45s", timedelta(seconds=45))],
)  # fmt: skip
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "0d", "-1d", "1y", "d7", "1.5h"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ConfigurationError, match="duration"):
        parse_duration(text)


def test_a_naive_expiry_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_portal_token(KEY, "acme", datetime(2026, 11, 27))
