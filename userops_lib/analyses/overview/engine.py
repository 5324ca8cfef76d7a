"""The overview's reductions, in the engine (Ibis only): every function returns a small pandas table,
at most one row per day, period, arm or attribute value, whatever the size of the event log."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib import engine
from userops_lib.calendar import Calendar
from userops_lib.data import Dataset

RETENTION_DAYS = (1, 7, 30)
_DAY_SECONDS = 86_400


def first_seen(ds: Dataset) -> ir.Table:
    """One row per user: when they were first seen (signup, else first event)."""
    events = ds.table("events")
    first_event = events.group_by("user_id").aggregate(first_seen=events.event_at.min())
    if ds.users is not None and "signup_at" in ds.users.columns:
        users = ds.users.select("user_id", signup=ds.users.signup_at)
        joined = users.left_join(first_event, "user_id")
        return joined.select("user_id", first_seen=ibis.coalesce(joined.signup, joined.first_seen)).filter(
            lambda t: t.first_seen.notnull()
        )
    return first_event


def span(seen: ir.Table) -> tuple[pd.Timestamp, pd.Timestamp]:
    """When the first and the last user were first seen."""
    row = seen.aggregate(first=seen.first_seen.min(), last=seen.first_seen.max()).execute().iloc[0]
    return pd.Timestamp(row["first"]), pd.Timestamp(row["last"])


def new_users(seen: ir.Table, calendar: Calendar) -> pd.DataFrame:
    """New users per local day: ``day, new_users``."""
    frame = seen.group_by(day=calendar.day(seen.first_seen)).aggregate(new_users=seen.count()).order_by("day").execute()
    frame["day"] = pd.to_datetime(frame.day)
    return frame


def activity_changes(days: ir.Table, calendar: Calendar) -> pd.DataFrame:
    """Per day, how DAU, WAU and MAU change: ``day, dau, wau, mau`` (their running sums are the counts).

    Each active user-day at ``a`` covers the window days ``[a, min(a + W, next active day))``; these
    intervals do not overlap within a user, so the number of users active in the W days ending on
    ``d`` is the running sum of interval starts minus ends. One pass over the user-days of
    :func:`userops_lib.activity.days` (with each one's next active day) instead of a W-fold self-join.
    """
    one, zero = ibis.literal(1), ibis.literal(0)
    streams = [days.select(day=days.day, dau=one, wau=one, mau=one)]
    for name, width in (("wau", 7), ("mau", 30)):
        horizon = days.day + ibis.interval(days=width)
        end = ibis.least(horizon, ibis.coalesce(days.next_day, horizon))
        streams.append(
            days.select(day=end, dau=zero, wau=-one if name == "wau" else zero, mau=-one if name == "mau" else zero)
        )
    stream = ibis.union(*streams, distinct=False)
    changes = (
        stream.group_by("day").aggregate(dau=stream.dau.sum(), wau=stream.wau.sum(), mau=stream.mau.sum()).execute()
    )
    changes["day"] = pd.to_datetime(changes.day)
    return changes


def money_by(days: ir.Table, period: str, calendar: Calendar) -> pd.DataFrame:
    """Per local calendar period: ``start, active_users, paying_users, revenue`` (paying: revenue > 0), from
    :func:`userops_lib.activity.days`. A user is counted in a period on their first active day in it (their previous active
    day falls in an earlier period), which is ``count(distinct user_id)`` without hashing every user-day;
    paying users are counted distinctly among the paid user-days only."""
    start = calendar.start_of_day(days.day, period)
    if period == "day":
        active = days.count()
    else:
        before = calendar.start_of_day(days.previous_day, period)
        active = ibis.ifelse(days.previous_day.isnull() | (before != start), 1, 0).sum()
    totals = days.group_by(start=start).aggregate(active_users=active, revenue=engine.exact_sum(days.revenue))
    paid = days.filter(days.paid)
    paid_start = calendar.start_of_day(paid.day, period)
    paying = paid.group_by(start=paid_start).aggregate(
        paying_users=paid.count() if period == "day" else paid.user_id.nunique()
    )
    joined = totals.left_join(paying, "start")
    frame = (
        joined.select(
            start=joined.start,
            active_users=joined.active_users,
            paying_users=joined.paying_users.fill_null(0),
            revenue=joined.revenue,
        )
        .order_by("start")
        .execute()
    )
    frame["start"] = pd.to_datetime(frame.start)
    return frame


def paying_within(events: ir.Table, seen: ir.Table, snapshot: pd.Timestamp, days: int) -> tuple[int, int]:
    """Users first seen at least ``days`` before the snapshot, and how many of them paid within ``days``."""
    horizon = ibis.interval(days=days)
    eligible = seen.filter(seen.first_seen + horizon <= snapshot.to_pydatetime())
    payments = events.filter(events.revenue.fill_null(0) > 0)
    joined = eligible.left_join(payments.select("user_id", "event_at"), "user_id")
    in_window = (joined.event_at >= joined.first_seen) & (joined.event_at < joined.first_seen + horizon)
    per_user = joined.group_by("user_id").aggregate(paid=in_window.fill_null(False).any())
    row = per_user.aggregate(users=per_user.count(), paying=per_user.paid.sum()).execute().iloc[0]
    return int(row["users"]), int(row["paying"] or 0)


def returning(
    seen: ir.Table, days: ir.Table, calendar: Calendar, offsets: tuple[int, ...] = RETENTION_DAYS
) -> pd.DataFrame:
    """Of each day's new users, how many were active exactly N days after their first day:
    ``first_day, offset, users`` for N in ``offsets`` (local calendar days: the offset is counted between
    local midnights, so a 23- or 25-hour day is one day); ``days`` from :func:`userops_lib.activity.days`."""
    cohort = seen.select("user_id", first_day=calendar.day(seen.first_seen))
    days = days.select("user_id", "day")
    joined = cohort.inner_join(days, "user_id")
    offset = ((joined.day.epoch_seconds() - joined.first_day.epoch_seconds()) / _DAY_SECONDS).round().cast("int64")
    joined = joined.mutate(offset=offset)
    kept = joined.filter(joined.offset.isin(list(offsets)))
    frame = kept.group_by(["first_day", "offset"]).aggregate(users=kept.count()).execute()
    frame["first_day"] = pd.to_datetime(frame.first_day)
    return frame


def durations(users: ir.Table) -> pd.DataFrame:
    """Users by whole duration: ``duration, users, churned``."""
    duration = users.duration.round().cast("int64")
    return (
        users.group_by(duration=duration)
        .aggregate(churned=users.churned.sum(), users=users.count())
        .order_by("duration")
        .execute()
    )


def arms(assignments: ir.Table) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users per campaign arm, and the mean of each numeric column per arm."""
    sizes = (
        assignments.group_by(["campaign", "arm"])
        .aggregate(users=assignments.count())
        .order_by(["campaign", "arm"])
        .execute()
    )
    numeric = [c for c, t in assignments.schema().items() if c != "user_id" and (t.is_numeric() or t.is_boolean())]
    if not numeric:
        return sizes, pd.DataFrame(columns=["campaign", "arm"])
    metrics = {c: assignments[c].cast("float64").mean() for c in numeric}
    return sizes, assignments.group_by(["campaign", "arm"]).aggregate(**metrics).order_by(["campaign", "arm"]).execute()


def value_counts(users: ir.Table, columns: list[str], *, most: int = 50) -> dict[str, pd.DataFrame]:
    """``value, users`` per text attribute, most common first; attributes with more than ``most`` values
    (ids, free text) or fewer than two are left out."""
    out = {}
    for column in columns:
        if not users.schema()[column].is_string():
            continue
        counts = (
            users.group_by(value=users[column])
            .aggregate(users=users.count())
            .order_by([ibis.desc("users"), "value"])
            .limit(most + 1)
            .execute()
        )
        if 2 <= len(counts) <= most:
            out[column] = counts
    return out
