"""Overview KPIs against counts worked out independently (brute force in pandas, or by hand)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from userops_lib.analyses import overview
from userops_lib.data import load_dataset


@pytest.fixture(scope="module")
def random_log():
    rng = np.random.default_rng(11)
    rows = []
    for user in range(1, 41):
        start = rng.integers(0, 60)
        for day in range(start, 75):
            if rng.random() < 0.3 or day == start:
                rows.append(
                    {
                        "user_id": user,
                        "event_at": pd.Timestamp("2024-03-01")
                        + pd.Timedelta(days=int(day), hours=int(rng.integers(0, 24))),
                        "revenue": float(rng.choice([0, 0, 0, 9.99])),
                    }
                )
    events = pd.DataFrame(rows)
    ds = load_dataset({"events": events}, snapshot_at="2024-05-15")
    return events, ds


def test_dau_wau_mau_equal_a_brute_force_count(random_log):
    events, ds = random_log
    result = overview.run(ds, overview.Params())
    active = result.frames["active_users"].set_index("day")
    days = events.assign(day=events.event_at.dt.floor("D"))[["user_id", "day"]].drop_duplicates()
    for day in active.index:
        for name, width in (("dau", 1), ("wau", 7), ("mau", 30)):
            window = days[(days.day > day - pd.Timedelta(days=width)) & (days.day <= day)]
            assert active.loc[day, name] == window.user_id.nunique(), (day, name)
    assert not active.loc[pd.Timestamp("2024-03-29"), "mau_complete"]
    assert active.loc[pd.Timestamp("2024-03-30"), "mau_complete"]
    assert active.index.max() == pd.Timestamp("2024-05-14")


def test_monthly_arpu_and_arppu_by_hand(random_log):
    events, ds = random_log
    monthly = overview.run(ds, overview.Params()).frames["monthly"].set_index("month")
    april = events[(events.event_at >= "2024-04-01") & (events.event_at < "2024-05-01")]
    paying = april[april.revenue > 0].user_id.nunique()
    assert monthly.loc["2024-04-01", "revenue"] == pytest.approx(april.revenue.sum())
    assert monthly.loc["2024-04-01", "arpu"] == pytest.approx(april.revenue.sum() / april.user_id.nunique())
    assert monthly.loc["2024-04-01", "arppu"] == pytest.approx(april.revenue.sum() / paying)
    assert bool(monthly.loc["2024-04-01", "complete"]) is True
    assert bool(monthly.loc["2024-05-01", "complete"]) is False  # the snapshot is mid-May


def test_paying_conversion_counts_only_users_observed_for_the_whole_window():
    events = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c", "c", "d"],
            "event_at": pd.to_datetime(
                ["2024-01-01", "2024-01-11", "2024-01-01", "2024-02-15", "2024-03-20", "2024-03-21", "2024-01-05"]
            ),
            "revenue": [0, 5.0, 0, 5.0, 0, 5.0, 0],
        }
    )
    ds = load_dataset({"events": events}, snapshot_at="2024-03-31")
    conversion = overview.run(ds, overview.Params()).paying_conversion
    # a paid on day 10 (yes), b on day 45 (no), d never (no); c was first seen 11 days before the snapshot.
    assert (conversion["users"], conversion["paying_users"]) == (3, 1)
    assert conversion["rate"] == pytest.approx(1 / 3)
    # Wilson interval for 1 of 3 at 95%, worked out from the formula.
    z, n, p = 1.959963984540054, 3, 1 / 3
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert conversion["ci_low"] == pytest.approx(centre - half)
    assert conversion["ci_high"] == pytest.approx(centre + half)


def test_new_users_per_week_flag_incomplete_weeks():
    users = pd.DataFrame(
        {"user_id": [1, 2, 3, 4], "signup_at": pd.to_datetime(["2024-01-03", "2024-01-08", "2024-01-09", "2024-01-15"])}
    )
    events = pd.DataFrame({"user_id": [1, 2, 3, 4], "event_at": users.signup_at + pd.Timedelta(hours=1)})
    ds = load_dataset({"users": users, "events": events}, snapshot_at=dt.datetime(2024, 1, 17))
    weeks = overview.run(ds, overview.Params()).frames["new_users"]
    assert weeks.period_start.dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-08", "2024-01-15"]
    assert weeks.new_users.tolist() == [1, 2, 1]
    # Data starts on Wednesday 3 Jan and the snapshot is Wednesday 17 Jan: only the middle week is whole.
    assert weeks.complete.tolist() == [False, True, False]


def test_a_user_table_gets_churn_share_and_no_activity():
    users = pd.DataFrame({"user_id": list("abcd"), "duration": [1, 5, 5, 12], "churned": [True, False, True, False]})
    ds = load_dataset({"users": users}, columns={"users": {"duration": {"column": "duration", "unit": "months"}}})
    result = overview.run(ds, overview.Params())
    assert "active_users" not in result.frames
    assert result.frames["durations"].set_index("duration").loc[5, "churned"] == 1
    assert ("churned", "50.0%") in result.headlines


def test_hillstrom_overview_lists_arms_and_outcome_means():
    from tests.conftest import DATA

    result = overview.run(load_dataset(DATA / "hillstrom"), overview.Params())
    outcomes = result.frames["arm_outcomes"].set_index("arm")
    assert outcomes.loc["No E-Mail", "visit"] == pytest.approx(0.106167, abs=5e-7)
    assert result.frames["arms"].users.sum() == 64_000


def test_periods_with_zero_new_users_are_rows_of_zero():
    """A week (or month) without new users disappeared from new_users.csv, so averages and the 'last complete
    week' headline skipped it. Hand-worked: sign-ups in the weeks of 1 and 15 January, none in the week of
    8 January nor in the weeks up to the snapshot (5 February); revenue in January and March only."""
    users = pd.DataFrame(
        {"user_id": [1, 2, 3], "signup_at": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-16"])}
    )
    events = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 1],
            "revenue": [5.0, 0.0, 7.0, 3.0],
            "event_at": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-16", "2024-03-04"]),
        }
    )
    ds = load_dataset({"users": users, "events": events}, snapshot_at=dt.datetime(2024, 3, 6))
    result = overview.run(ds, overview.Params())
    weeks = result.frames["new_users"]
    assert weeks.period_start.dt.strftime("%m-%d").tolist()[:4] == ["01-01", "01-08", "01-15", "01-22"]
    assert weeks.new_users.tolist() == [2, 0, 1] + [0] * 7  # through the week of 4 March, the snapshot's
    assert weeks.complete.tolist() == [False] + [True] * 8 + [False]
    assert "a complete week brought 0 new users on average (last complete week: 0)" in " ".join(result.findings)
    months = result.frames["monthly"]
    assert months.month.dt.month.tolist() == [1, 2, 3]
    assert months.active_users.tolist() == [3, 0, 1] and months.revenue.tolist() == [12.0, 0.0, 3.0]
