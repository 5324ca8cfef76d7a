"""Segment profiling's reductions, in the engine (Ibis only): per-user features, lifecycle counts per
period, and recent activity per user for core users. Pandas sees one row per user or period."""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib import activity, engine
from userops_lib.calendar import OFFSET, Calendar
from userops_lib.data import Dataset, with_revenue

_MONDAY = pd.Timestamp("2000-01-03")


def lifecycle_counts(ds: Dataset, *, period: str = "week", dormant_after_periods: int = 1) -> pd.DataFrame:
    """New / returning / resurrecting / dormant users per calendar period (engine).

    A user is dormant in period p when their last active period was p - k (k = dormant_after_periods)
    and they are not active in p - k + 1 .. p; resurrecting when active again after such a gap.
    """
    calendar: Calendar = ds.calendar
    # A user's periods from their active days (:func:`userops_lib.activity.days`): a day opens the user's
    # period when their previous active day lies in an earlier one, and closes it when the next lies later.
    days = activity.days(ds)
    i, before, after = (_day_index(days[c], period, calendar) for c in ("day", "previous_day", "next_day"))
    opens = days.previous_day.isnull() | (before != i)
    closes = days.next_day.isnull() | (after != i)
    gap_before = i - before
    # One pass: each period's new / returning / resurrecting users (on the day that opens it) and the users
    # whose last active period before a gap it is (on the day that closes it); dormancy is then shifted.
    gone = closes & (days.next_day.isnull() | (after - i > dormant_after_periods))
    one, zero = ibis.literal(1), ibis.literal(0)
    counts = (
        days.group_by(i=i)
        .aggregate(
            new=ibis.ifelse(opens & days.previous_day.isnull(), one, zero).sum(),
            returning=ibis.ifelse(opens & (gap_before <= dormant_after_periods), one, zero).sum(),
            resurrecting=ibis.ifelse(opens & (gap_before > dormant_after_periods), one, zero).sum(),
            users=ibis.ifelse(gone, one, zero).sum(),
        )
        .execute()
    )
    active = counts[["i", "new", "returning", "resurrecting"]]
    left = counts[counts.users > 0]
    dormant = pd.DataFrame({"i": left.i + dormant_after_periods, "dormant": left.users})
    frame = active.merge(dormant, on="i", how="outer").sort_values("i")
    # Every period of the range is a row: a period in which nobody was active is a row of zeros, not a gap.
    frame = (
        frame.set_index("i").reindex(range(int(frame.i.min()), int(frame.i.max()) + 1)).rename_axis("i").reset_index()
    )
    step = OFFSET[period]
    frame["period_start"] = [_start_of(int(i), period, calendar) for i in frame.i]
    frame = frame.fillna({"new": 0, "returning": 0, "resurrecting": 0, "dormant": 0})
    # Local wall times: the first local day of data and the snapshot, as the periods are.
    start_day = calendar.floor(calendar.to_local(days.first_at.min().execute()), "day")
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


def _day_index(day: ir.TimestampValue, period: str, calendar: Calendar) -> ir.IntegerValue:
    """The number of the period holding a local day (a value of :meth:`Calendar.day`), counted from
    :func:`_origin` (months from year 0), without truncating the day to its period first."""
    if period == "month":
        return day.year() * 12 + day.month()
    days = calendar.days_between(day, ibis.literal(_origin(period, calendar).to_pydatetime()))
    if period == "day":
        return days
    # Floor division also before the origin (data from the 1990s): shift by whole weeks to stay positive.
    shift = 7 * 100_000
    return (days + shift) // 7 - shift // 7


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
