"""cost_totals: several groupings of the rollup costs at once, each exactly the sum of daily_costs'
full cells; and the anomaly rule read off a sorted history equals the nearest-rank percentile."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from portal_ledger import NOW, OCT

from spanledger.billing.portal import Anomaly, nearest_rank_percentile, usage_anomalies
from spanledger.billing.rollups.queries import COST_AXES, cost_totals, daily_costs

GROUPINGS = [("customer", "day"), ("model",), ("day",), ("provider", "customer")]


def _projected(cells, by):
    summed = defaultdict(lambda: [Decimal(0), 0, 0, 0])
    for key, values in cells.items():
        entry = summed[tuple(key[COST_AXES.index(axis)] for axis in by)]
        for index, value in enumerate(values):
            entry[index] += value
    return dict(summed)


@pytest.mark.parametrize(
    "start, end",
    [(OCT, NOW), (OCT + timedelta(hours=5, minutes=17), NOW - timedelta(days=3, minutes=41)), (None, None)],
)
def test_each_grouping_is_the_sum_of_the_full_cells(session, ledger, start, end):
    full = daily_costs(session, "USD", start, end)
    assert full  # the ledger has costs in every window
    for by, cells in zip(GROUPINGS, cost_totals(session, "USD", start, end, GROUPINGS), strict=True):
        assert cells == _projected(full, by), by


def test_a_grouping_by_an_unknown_axis_is_refused(session):
    with pytest.raises(ValueError, match="cannot group costs by"):
        cost_totals(session, "USD", OCT, NOW, [("customer",), ("region",)])
    with pytest.raises(ValueError, match="cannot group costs by"):
        daily_costs(session, "USD", OCT, NOW, by=())


def _brute_force(daily, min_history=7):
    found = []
    for customer, days in daily.items():
        ordered = sorted(days)
        for index, (day, usage) in enumerate(ordered):
            if index >= min_history:
                p99 = nearest_rank_percentile([value for _, value in ordered[:index]], 99)
                if usage > p99:
                    found.append(Anomaly(customer, day, usage, p99, index))
    return sorted(found, key=lambda a: (-(a.usage - a.p99), a.customer, a.day))


def test_anomalies_match_the_nearest_rank_percentile_of_the_earlier_days():
    rng = random.Random(11)
    daily = {
        f"customer-{c}": [(f"2026-{1 + d // 28:02d}-{1 + d % 28:02d}", Decimal(rng.randint(1, 60)))
                          for d in rng.sample(range(300), rng.randint(0, 250))]
        for c in range(12)
    }  # fmt: skip
    found = usage_anomalies(daily)
    assert found and found == _brute_force(daily)
