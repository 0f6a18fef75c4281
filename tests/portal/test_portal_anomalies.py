"""Usage anomalies: a day above the customer's own p99 of their earlier days."""

from decimal import Decimal as D

import pytest

from spanledger.billing.portal import nearest_rank_percentile, usage_anomalies


def _days(values):
    return [(f"2026-11-{index + 1:02d}", D(value)) for index, value in enumerate(values)]


def test_nearest_rank_percentile():
    values = [D(v) for v in range(1, 201)]
    assert nearest_rank_percentile(values, 99) == D(198)
    assert nearest_rank_percentile([D(5)], 99) == D(5)
    assert nearest_rank_percentile([D(3), D(1), D(2)], 50) == D(2)
    with pytest.raises(ValueError):
        nearest_rank_percentile([], 99)


def test_a_spike_after_a_steady_week_is_an_anomaly():
    [anomaly] = usage_anomalies({"acme": _days([10, 12, 11, 10, 12, 11, 10, 95, 11])})
    assert (anomaly.customer, anomaly.day, anomaly.usage, anomaly.p99) == ("acme", "2026-11-08", D(95), D(12))
    assert anomaly.history_days == 7


def test_no_anomaly_without_enough_history_or_without_a_spike():
    assert usage_anomalies({"acme": _days([1, 1, 1, 1, 1, 1, 50])}) == []  # six earlier days only
    assert usage_anomalies({"acme": _days([10] * 20)}) == []  # equal to p99 is not above it


def test_each_customer_is_judged_against_its_own_history():
    big = _days([1000] * 8 + [1200])
    small = _days([10] * 8 + [50])
    found = usage_anomalies({"big": big, "small": small})
    assert [(a.customer, a.usage) for a in found] == [("big", D(1200)), ("small", D(50))]
