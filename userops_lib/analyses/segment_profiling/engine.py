"""Segment profiling's reductions, in the engine (Ibis only): per-user features, lifecycle counts per
period, and recent activity per user for core users. Pandas sees one row per user or period."""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib import engine
from userops_lib.calendar import OFFSET, Calendar
from userops_lib.data import Dataset, with_revenue

_MONDAY = pd.Timestamp("2000-01-03")


def lifecycle_counts(ds: Dataset, *, period: str = "week", dormant_after_periods: int = 1) -> pd.DataFrame:
    """New / returning / resurrecting / dormant users per calendar period (engine).

    A user is dormant in period p when their last active period was p - k (k = dormant_after_periods)
    and they are not active in p - k + 1 .. p; resurrecting when active again after such a gap.
    """
    events = ds.table("events")
    calendar: Calendar = ds.calendar
    user_periods = events.select("user_id", p=calendar.start(events.event_at, period)).distinct()
    index = _index(user_periods.p, period, calendar)
    user_periods = user_periods.mutate(i=index)
    window = ibis.window(group_by="user_id", order_by="i")
    user_periods = user_periods.mutate(prev=user_periods.i.lag().over(window), nxt=user_periods.i.lead().over(window))
    gap_before = user_periods.i - user_periods.prev
    kind = ibis.cases(
        (user_periods.prev.isnull(), "new"), (gap_before <= dormant_after_periods, "returning"), else_="resurrecting"
    )
    # One pass: counts per period and "last active period before a gap" flag; dormancy is then shifted.
    gone = user_periods.nxt.isnull() | (user_periods.nxt - user_periods.i > dormant_after_periods)
    counts = (
        user_periods.group_by(["i", "p", gone.name("gone")])
        .aggregate(
            new=(kind == "new").sum(),
            returning=(kind == "returning").sum(),
            resurrecting=(kind == "resurrecting").sum(),
            users=user_periods.count(),
        )
        .execute()
    )
    active = counts.groupby(["i", "p"], as_index=False)[["new", "returning", "resurrecting"]].sum()
    left = counts[counts.gone.astype(bool)]
    dormant = (
        (left.i + dormant_after_periods)
        .to_frame("i")
        .assign(dormant=left.users)
        .groupby("i", as_index=False)
        .dormant.sum()
    )
    frame = active.merge(dormant, on="i", how="outer").sort_values("i")
    # Every period of the range is a row: a period in which nobody was active is a row of zeros, not a gap.
    frame = (
        frame.set_index("i")
        .reindex(range(int(frame.i.min()), int(frame.i.max()) + 1))
        .rename_axis("i")
        .reset_index()
        .drop(columns="p")
    )
    step = OFFSET[period]
    frame["period_start"] = [_start_of(int(i), period, calendar) for i in frame.i]
    frame = frame.fillna({"new": 0, "returning": 0, "resurrecting": 0, "dormant": 0})
    # Local wall times: the first local day of data and the snapshot, as the periods are.
    start_day = calendar.floor(calendar.to_local(events.event_at.min().execute()), "day")
    snapshot = calendar.to_local(ds.snapshot_at)
    frame["complete"] = (frame.period_start >= start_day) & (frame.period_start + step <= snapshot)
    for column in ("new", "returning", "resurrecting", "dormant"):
        frame[column] = frame[column].astype("int64")
    return frame[["period_start", "new", "returning", "resurrecting", "dormant", "complete"]].reset_index(drop=True)


def _origin(period: str, calendar: Calendar) -> pd.Timestamp:
    """A period start that numbers the periods (0): a week start of the calendar for weeks."""
    return calendar.floor(_MONDAY, period)


def _start_of(i: int, period: str, calendar: Calendar) -> pd.Timestamp:
    if period == "month":
        return pd.Timestamp(year=(i - 1) // 12, month=(i - 1) % 12 + 1, day=1)
    return _origin(period, calendar) + pd.Timedelta(days=i * (7 if period == "week" else 1))


def _index(p: ir.Value, period: str, calendar: Calendar) -> ir.IntegerValue:
    if period == "month":
        return p.year() * 12 + p.month()
    return calendar.periods_between(p, ibis.literal(_origin(period, calendar).to_pydatetime()), period)


def recent_activity(ds: Dataset, window_days: int) -> pd.DataFrame:
    """Per user active in the last ``window_days`` before the snapshot: active days, events and revenue."""
    events = ds.table("events")
    calendar: Calendar = ds.calendar
    snapshot = pd.Timestamp(ds.snapshot_at).to_pydatetime()
    recent = events.filter(
        (events.event_at < snapshot) & (events.event_at >= snapshot - dt.timedelta(days=window_days))
    )
    recent = with_revenue(recent)
    return (
        recent.group_by("user_id")
        .aggregate(
            days=calendar.date(recent.event_at).nunique(),
            events=recent.count(),
            revenue=engine.exact_sum(recent.revenue),
        )
        .execute()
    )
