"""Local calendars: every bucket an analysis makes is a day, week or month of the dataset's calendar zone.

The tiny log below has events on both sides of UTC midnight and of Beijing midnight (UTC+8); each
expected number is worked out by hand from the times written next to the rows. With ``timezone: UTC``
the same log gives the UTC-day numbers userops gave before calendars existed.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from userops_lib import load_dataset, rfm
from userops_lib.analyses import cohort_retention, funnel, overview
from userops_lib.analyses.campaign_uplift.experiment import experiment
from userops_lib.analyses.churn_survival import durations
from userops_lib.analyses.customer_value import engine as customer_value_engine
from userops_lib.calendar import Calendar
from userops_lib.errors import DataError

# user, UTC instant (Beijing wall time), event, revenue
EVENTS = """user_id,event_at,event,revenue
1,2025-01-01T23:30:00Z,signup,
1,2025-01-02T17:00:00Z,purchase,10
2,2025-01-01T15:30:00Z,signup,
2,2025-01-01T16:30:00Z,purchase,5
2,2025-01-03T10:00:00Z,purchase,7
3,2025-01-02T03:00:00Z,signup,
"""
# Beijing wall times: user 1 at 01-02 07:30 and 01-03 01:00; user 2 at 01-01 23:30, 01-02 00:30 and
# 01-03 18:00; user 3 at 01-02 11:00.
ASSIGNMENTS = """user_id,campaign,arm,assigned_at
1,spring,control,2025-01-01T12:00:00Z
2,spring,treatment,2025-01-01T12:00:00Z
3,spring,control,2025-01-01T12:00:00Z
"""
MANIFEST = {
    "snapshot_at": "2025-01-10T00:00:00+00:00",
    "tables": {
        "events": {"path": "events.csv"},
        "assignments": {"path": "assignments.csv", "control_arm": "control"},
    },
}
DAY = pd.Timestamp


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    from tests.conftest import write_dataset

    return write_dataset(
        tmp_path_factory.mktemp("straddle"), {"events.csv": EVENTS, "assignments.csv": ASSIGNMENTS}, MANIFEST
    )


def _load(log: Path, zone: str):
    return load_dataset(log, calendar=zone)


# zone -> expected numbers, by hand from the log above
EXPECTED = {
    "UTC": {
        "new_users": {DAY("2025-01-01"): 2, DAY("2025-01-02"): 1},
        "dau": {DAY("2025-01-01"): 2, DAY("2025-01-02"): 2, DAY("2025-01-03"): 1},
        "d1_users": {DAY("2025-01-01"): 1, DAY("2025-01-02"): 0},
        "cohort_sizes": {DAY("2025-01-01"): 2, DAY("2025-01-02"): 1},
        "cohort_day1": {DAY("2025-01-01"): 1},
        "purchase_days": {
            ("1", dt.date(2025, 1, 2)): 10.0,
            ("2", dt.date(2025, 1, 1)): 5.0,
            ("2", dt.date(2025, 1, 3)): 7.0,
        },
        "since_seen": {"1": 8, "2": 7, "3": 8},
        "gaps": {1: 1, 2: 1},
        "entries": {DAY("2025-01-01"): 2, DAY("2025-01-02"): 1},
        "active_days": {"1": 2.0, "2": 2.0, "3": 1.0},
    },
    "Asia/Shanghai": {
        "new_users": {DAY("2025-01-01"): 1, DAY("2025-01-02"): 2},
        "dau": {DAY("2025-01-01"): 1, DAY("2025-01-02"): 3, DAY("2025-01-03"): 2},
        "d1_users": {DAY("2025-01-01"): 1, DAY("2025-01-02"): 1},
        "cohort_sizes": {DAY("2025-01-01"): 1, DAY("2025-01-02"): 2},
        "cohort_day1": {DAY("2025-01-01"): 1, DAY("2025-01-02"): 1},
        "purchase_days": {
            ("1", dt.date(2025, 1, 3)): 10.0,
            ("2", dt.date(2025, 1, 2)): 5.0,
            ("2", dt.date(2025, 1, 3)): 7.0,
        },
        "since_seen": {"1": 7, "2": 7, "3": 8},
        "gaps": {1: 3},
        "entries": {DAY("2025-01-01"): 1, DAY("2025-01-02"): 2},
        "active_days": {"1": 2.0, "2": 3.0, "3": 1.0},
    },
}


@pytest.mark.parametrize("zone", list(EXPECTED))
def test_the_overview_counts_local_days(log, zone):
    ds = _load(log, zone)
    result = overview.run(ds, overview.Params(period="day"))
    daily = result.frames["daily"].set_index("day")
    want = EXPECTED[zone]
    assert {d: n for d, n in daily.new_users.items() if n} == want["new_users"]
    assert {d: n for d, n in daily.dau.items() if n and d <= DAY("2025-01-03")} == want["dau"]
    first_days = daily[daily.new_users > 0]
    assert first_days.d1_users.to_dict() == want["d1_users"]


@pytest.mark.parametrize("zone", list(EXPECTED))
def test_cohorts_are_local_days(log, zone):
    ds = _load(log, zone)
    sizes, counted = cohort_retention.counts(ds, period="day")
    sizes = sizes.assign(cohort=pd.to_datetime(sizes.cohort))
    assert dict(zip(sizes.cohort, sizes.cohort_size, strict=True)) == EXPECTED[zone]["cohort_sizes"]
    day1 = counted[counted.k == 1].assign(cohort=lambda f: pd.to_datetime(f.cohort))
    assert dict(zip(day1.cohort, day1.active_users, strict=True)) == EXPECTED[zone]["cohort_day1"]


@pytest.mark.parametrize("zone", list(EXPECTED))
def test_purchase_days_recency_and_gaps_are_local_days(log, zone):
    ds = _load(log, zone)
    days = customer_value_engine.purchase_days(
        ds.table("events"), snapshot=ds.snapshot_at, purchase_event=None, calendar=ds.calendar
    ).execute()
    got = {(str(u), pd.Timestamp(d).date()): r for u, d, r in zip(days.user_id, days.day, days.revenue, strict=True)}
    assert got == EXPECTED[zone]["purchase_days"]

    features = rfm.features(ds, basis="active_days").execute()
    assert dict(zip(features.user_id.astype(str), features.since_seen, strict=True)) == EXPECTED[zone]["since_seen"]

    gaps = durations.gap_counts(ds, snapshot=ds.snapshot_at, churn_after_days=1)
    assert dict(zip(gaps.gap, gaps.n, strict=True)) == EXPECTED[zone]["gaps"]


@pytest.mark.slow
@pytest.mark.parametrize("zone", list(EXPECTED))
def test_funnel_entries_and_campaign_active_days_are_local(log, zone):
    ds = _load(log, zone)
    result = funnel.run(ds, funnel.Params(steps=["signup", "purchase"], period="day", window_days=3.0))
    trend = result.trend.set_index("period_start").entered
    assert trend[trend > 0].to_dict() == EXPECTED[zone]["entries"]

    outcomes = experiment(ds, window_days=14).frame
    assert dict(zip(outcomes.user_id.astype(str), outcomes.active_days, strict=True)) == EXPECTED[zone]["active_days"]


def test_the_snapshot_and_its_last_complete_day_are_local(make_dataset):
    """A dated log (every time at local midnight) ends at the next local midnight; a snapshot given without an
    offset is a wall time of the calendar."""
    events = "user_id,event_at\n1,2025-01-01\n2,2025-01-02\n"
    manifest = {"timezone": "Asia/Shanghai", "tables": {"events": {"path": "e.csv"}}}
    ds = load_dataset(make_dataset({"e.csv": events}, manifest))
    assert ds.calendar == Calendar("Asia/Shanghai")
    # 2025-01-02 Beijing midnight is 2025-01-01 16:00 UTC; its day ends at 2025-01-02 16:00 UTC.
    assert ds.snapshot_at == dt.datetime(2025, 1, 2, 16, 0)
    assert load_dataset(ds.source, snapshot_at="2025-01-02").snapshot_at == dt.datetime(2025, 1, 1, 16, 0)
    # --timezone overrides the calendar, not how the file's times are read.
    utc = load_dataset(ds.source, calendar="UTC")
    assert utc.table("events").event_at.max().execute() == pd.Timestamp("2025-01-01 16:00")
    assert utc.calendar.timezone == "UTC"


def test_a_calendar_given_in_the_manifest_wins_over_its_timezone(make_dataset):
    events = "user_id,event_at\n1,2025-01-01 23:30:00\n"
    manifest = {
        "timezone": "UTC",
        "calendar": {"timezone": "Asia/Shanghai", "week_start": "sunday"},
        "tables": {"events": {"path": "e.csv"}},
    }
    ds = load_dataset(make_dataset({"e.csv": events}, manifest))
    assert ds.calendar == Calendar("Asia/Shanghai", "sunday")
    assert ds.table("events").event_at.execute().iloc[0] == pd.Timestamp("2025-01-01 23:30")  # read as UTC
    assert ds.calendar.day(ds.table("events").event_at).execute().iloc[0] == pd.Timestamp("2025-01-02")
    # Weeks from Sunday: Thursday 2 January 2025 is in the week of Sunday 29 December 2024.
    assert ds.calendar.start(ds.table("events").event_at, "week").execute().iloc[0] == pd.Timestamp("2024-12-29")
    assert ds.calendar.floor(pd.Timestamp("2025-01-02"), "week") == pd.Timestamp("2024-12-29")


@pytest.mark.parametrize(
    ("zone", "bad"),
    [("Mars/Olympus", "calendar.timezone"), ("Asia/Shanghai", "week_start")],
)
def test_a_bad_calendar_is_refused(make_dataset, zone, bad):
    calendar = {"timezone": zone} if bad == "calendar.timezone" else {"timezone": zone, "week_start": "someday"}
    manifest = {"calendar": calendar, "tables": {"events": {"path": "e.csv"}}}
    with pytest.raises(DataError) as error:
        load_dataset(make_dataset({"e.csv": "user_id,event_at\n1,2025-01-01\n"}, manifest))
    assert ("Mars/Olympus" if bad == "calendar.timezone" else "someday") in str(error.value)


# -- summer time ----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("zone", "wall", "utc"),
    [
        # spring: 02:30 does not exist; read with the offset before the change (= 03:30 summer time)
        ("Europe/Berlin", "2025-03-30 02:30:00", "2025-03-30 01:30:00"),
        ("America/New_York", "2025-03-09 02:30:00", "2025-03-09 07:30:00"),
        # autumn: the hour exists twice; the first occurrence (still summer time)
        ("Europe/Berlin", "2025-10-26 02:30:00", "2025-10-26 00:30:00"),
        ("America/New_York", "2025-11-02 01:30:00", "2025-11-02 05:30:00"),
        # ordinary times on either side of the changes
        ("Europe/Berlin", "2025-10-26 03:30:00", "2025-10-26 02:30:00"),
        ("Europe/Berlin", "2025-03-30 04:00:00", "2025-03-30 02:00:00"),
        ("America/New_York", "2025-11-02 02:30:00", "2025-11-02 07:30:00"),
    ],
)
def test_wall_times_that_do_not_exist_or_exist_twice_follow_one_rule(make_dataset, zone, wall, utc):
    manifest = {"timezone": zone, "tables": {"events": {"path": "e.csv"}}}
    ds = load_dataset(make_dataset({"e.csv": f"user_id,event_at\n1,{wall}\n"}, manifest), snapshot_at="2026-01-01")
    assert ds.table("events").event_at.execute().iloc[0] == pd.Timestamp(utc)
    assert Calendar(zone).to_utc(wall) == pd.Timestamp(utc)  # the same rule in Python


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [("Europe/Berlin", "2025-03-30", 23), ("Europe/Berlin", "2025-10-26", 25), ("America/New_York", "2025-11-02", 25)],
)
def test_a_local_day_may_last_23_or_25_hours(make_dataset, zone, day, hours):
    """Events at 00:10 and 23:50 local time of a day with a clock change are one local day apart from neither."""
    start, end = Calendar(zone).to_utc(f"{day} 00:10"), Calendar(zone).to_utc(f"{day} 23:50")
    assert (end - start) == pd.Timedelta(hours=hours - 1, minutes=40)
    events = f"user_id,event_at\n1,{start:%Y-%m-%dT%H:%M:%SZ}\n1,{end:%Y-%m-%dT%H:%M:%SZ}\n"
    manifest = {"calendar": {"timezone": zone}, "tables": {"events": {"path": "e.csv"}}}
    ds = load_dataset(make_dataset({"e.csv": events}, manifest), snapshot_at="2026-01-01")
    days = ds.calendar.day(ds.table("events").event_at).execute()
    assert set(days) == {pd.Timestamp(day)}


# -- one module owns bucketing ------------------------------------------------------------------
_BUCKETING = {"truncate", "date", "floor", "ceil", "normalize", "to_period", "round"}
_PACKAGE = Path(__file__).resolve().parents[1] / "userops_lib"
# Receivers whose methods of these names are not timestamps: numbers and the calendar itself.
_NOT_TIMESTAMPS = {"np", "math", "dt", "datetime", "calendar", "Calendar", "cal"}
# Formatting an already-local day for Babel is not bucketing.
_ALLOWED = {("narrative.py", "date")}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _BUCKETING:
            receiver = node.func.value
            if isinstance(receiver, ast.Name) and receiver.id in _NOT_TIMESTAMPS:
                continue
            if isinstance(receiver, ast.Attribute) and receiver.attr == "calendar":  # ds.calendar.date(...)
                continue
            if isinstance(receiver, ast.Call) and getattr(receiver.func, "id", None) == "Calendar":
                continue
            yield node


def test_no_analysis_code_truncates_a_timestamp_except_through_the_calendar():
    found = []
    for path in sorted(_PACKAGE.rglob("*.py")):
        relative = path.relative_to(_PACKAGE).as_posix()
        if relative == "calendar.py":
            continue
        for node in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            if (relative, node.func.attr) in _ALLOWED:
                continue
            if node.func.attr == "round" and not node.args:
                continue  # rounding a number (x.round()), not a timestamp to a unit
            found.append(f"{relative}:{node.lineno} .{node.func.attr}()")
    assert not found, "bucket timestamps through userops_lib.calendar, not:\n" + "\n".join(found)


def test_the_bucketing_check_sees_a_truncation():
    """The check above is not vacuous: it flags the ways timestamps were truncated before calendars."""
    code = 'a = events.event_at.truncate("D")\nb = events.event_at.date()\nc = first.floor("D")\nd = np.floor(x)\n'
    assert [n.func.attr for n in _calls(ast.parse(code))] == ["truncate", "date", "floor"]


# -- a synthetic world that lives in Beijing ---------------------------------------------------------
@pytest.fixture(scope="module")
def beijing_world(tmp_path_factory):
    from userops_lib.synth import WorldParameters, make_world
    from userops_lib.synth_files import write_world

    folder = write_world(tmp_path_factory.mktemp("beijing") / "world", users=600, seed=7, timezone="Asia/Shanghai")
    return folder, make_world(users=600, seed=7, params=WorldParameters())


def _truth_by_day(world) -> tuple[dict, dict]:
    """New users and active users per day of the world, from its generator (its days are wall-clock days)."""
    events = world["events"]
    first = events.groupby("user_id").event_at.min().dt.normalize().value_counts()
    active = events.assign(day=events.event_at.dt.normalize()).groupby("day").user_id.nunique()
    return first.to_dict(), active.to_dict()


@pytest.mark.slow
def test_a_world_written_with_a_timezone_is_recovered_in_its_local_days(beijing_world):
    folder, world = beijing_world
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["timezone"] == "Asia/Shanghai"
    ds = load_dataset(folder)
    assert ds.calendar.timezone == "Asia/Shanghai"
    assert ds.snapshot_at == dt.datetime(2025, 12, 31, 16, 0)  # Beijing midnight of 2026-01-01
    new, active = _truth_by_day(world)
    daily = overview.run(ds, overview.Params(period="day")).frames["daily"].set_index("day")
    # Users sign up on their first event's day (the users table's signup_at is that moment).
    assert {d: int(n) for d, n in daily.new_users.items() if n} == {d: int(n) for d, n in new.items()}
    assert {d: int(n) for d, n in daily.dau.items() if n} == {d: int(n) for d, n in active.items()}
    # The same files counted in UTC days are another world: a third of the days move.
    utc = overview.run(load_dataset(folder, calendar="UTC"), overview.Params(period="day")).frames["daily"]
    assert {d: int(n) for d, n in utc.set_index("day").dau.items() if n} != {d: int(n) for d, n in active.items()}
