"""The shared active days (userops_lib.activity): their rows in a hand-made Beijing world, and the analyses that
read them giving what the events give (the gaps of churn survival at snapshots inside a day, the users seen)."""

from __future__ import annotations

import pandas as pd
import pytest

from userops_lib import activity
from userops_lib.analyses.churn_survival import durations
from userops_lib.data import load_dataset


def _world() -> dict[str, pd.DataFrame]:
    # UTC instants; Beijing is UTC+8, so 16:00 UTC is the next local day's midnight.
    rows = [
        (1, "2025-03-01 15:59:59", 0.0),  # local 03-01 23:59:59
        (1, "2025-03-01 16:00:00", 5.0),  # local 03-02 00:00: a second local day
        (1, "2025-03-01 17:00:00", 2.5),  # same local day: revenue added
        (1, "2025-03-10 01:00:00", None),  # local 03-10
        (2, "2025-03-05 02:00:00", 0.0),
        (2, "2025-03-05 03:00:00", 0.0),
        (3, "2025-03-20 12:00:00", 1.25),  # local 03-20 20:00, a single day
    ]
    events = pd.DataFrame(rows, columns=["user_id", "event_at", "revenue"]).assign(
        event="visit", event_at=lambda f: pd.to_datetime(f.event_at)
    )
    users = pd.DataFrame({"user_id": [1, 2, 3], "signup_at": pd.to_datetime(["2025-02-01"] * 3)})
    return {"users": users, "events": events}


def test_active_days_hold_one_row_per_user_and_local_day_with_its_neighbours():
    ds = load_dataset(_world(), calendar="Asia/Shanghai", snapshot_at="2025-04-01")
    days = activity.days(ds).execute().sort_values(["user_id", "day"]).reset_index(drop=True)
    assert list(days.columns) == list(activity.COLUMNS)
    assert days.day.dt.strftime("%Y-%m-%d").tolist() == [
        "2025-03-01",
        "2025-03-02",
        "2025-03-10",
        "2025-03-05",
        "2025-03-20",
    ]
    assert days.first_at.dt.strftime("%m-%d %H:%M").tolist() == [
        "03-01 15:59",
        "03-01 16:00",
        "03-10 01:00",
        "03-05 02:00",
        "03-20 12:00",
    ]
    assert days.revenue.tolist() == [0.0, 7.5, 0.0, 0.0, 1.25]
    assert days.paid.tolist() == [False, True, False, False, True]
    assert days.previous_day.dt.strftime("%m-%d").fillna("-").tolist() == ["-", "03-01", "03-02", "-", "-"]
    assert days.next_day.dt.strftime("%m-%d").fillna("-").tolist() == ["03-02", "03-10", "-", "-", "-"]
    assert days.next_first_at.dt.strftime("%m-%d %H:%M").fillna("-").tolist() == [
        "03-01 16:00",
        "03-10 01:00",
        "-",
        "-",
        "-",
    ]


def test_the_active_days_are_computed_once_and_not_reused_for_other_events():
    ds = load_dataset(_world(), calendar="Asia/Shanghai", snapshot_at="2025-04-01")
    assert activity.days(ds) is activity.days(ds)
    ds.tables["events"] = ds.events.filter(ds.events.user_id != 1)  # other events: other days
    assert int(activity.days(ds).count().execute()) == 2


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai"])
def test_churn_gaps_from_the_active_days_equal_those_from_the_events_at_any_snapshot(zone):
    """``active_events`` naming every event takes the events' own path; without it the shared days are read.
    Snapshots inside a day (a day with events on both sides of it) and at the day's first event."""
    from userops_lib.synth import make_world

    world = make_world(users=400, seed=11)
    ds = load_dataset({"users": world["users"], "events": world["events"]}, calendar=zone)
    names = ds.event_names()
    snapshot = pd.Timestamp(ds.snapshot_at)
    first_event = pd.Timestamp(ds.events.event_at.min().execute())
    for moment in (
        snapshot,
        snapshot - pd.Timedelta(days=40, hours=7, minutes=13),
        first_event + pd.Timedelta(days=90),
    ):
        for window in (1, 14):  # 1: gaps counted up to two days before the moment, many cut by it
            shared = durations.gap_counts(ds, snapshot=moment, churn_after_days=window)
            from_events = durations.gap_counts(ds, snapshot=moment, churn_after_days=window, active_events=names)
            assert len(shared) > 5 and shared.n.sum() > 100
            pd.testing.assert_frame_equal(shared, from_events)
    events = ds.events
    assert durations.users_seen(ds) == int(events.filter(events.event_at < ds.snapshot_at).user_id.nunique().execute())
