"""The funnel's reductions, in the engine (Ibis only): each entered user's step times, then small tables
of counts (users by the last step reached), minute histograms of the time to each step, and entries by
period. Nothing here runs per user in Python.

Definitions (the report states them):

* Steps are sets of event names in order (``"cart|wishlist"``: either). A user **enters** at their first
  step-1 event in ``[start, snapshot)``; their **window** is ``window_days`` from that moment.
* ``ordered`` (the default): step k counts at its first event at or after step k-1's time and within the
  window; other events may come between. When step k shares an event name with step k-1 it must come
  strictly later (one event is not two steps).
* ``strict``: step k must be the user's very next event after step k-1 (events ordered by time, then
  name), within the window.
* ``any``: steps 2..k may come in any order after entering, within the window; step k is reached when
  the last of them has happened.
* ``exclude_events``: a user who does one of these after step k-1 and before step k leaves the funnel at
  step k-1.
* A user's window is **complete** when it ended by the snapshot. Conversion counts complete users only;
  users still in their window are counted apart (how many, and how many converted already), never as a
  drop.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib.calendar import Calendar

ORDERS = ("ordered", "strict", "any")
_MINUTE = 60


def step_times(
    events: ir.Table,
    steps: list[list[str]],
    *,
    window_days: float,
    order: str = "ordered",
    exclude: list[str] | None = None,
    start: dt.datetime | None = None,
    starts: ir.Table | None = None,
    snapshot: dt.datetime,
) -> ir.Table:
    """One row per entered user: ``user_id, t1 .. tK`` (null from the first step not reached),
    ``deadline`` (end of the window) and ``complete`` (the window ended by the snapshot).

    ``starts`` (``user_id, start_at``, e.g. campaign assignments): only these users, entering at their
    first step-1 event at or after their own start."""
    events = events.filter(events.event_at < snapshot).select("user_id", "event_at", "event")
    first = events.filter(events.event.isin(steps[0]))
    if start is not None:
        first = first.filter(first.event_at >= start)
    if starts is not None:
        first = first.join(starts, "user_id")
        first = first.filter(first.event_at >= first.start_at).select("user_id", "event_at", "event")
    users = first.group_by("user_id").aggregate(t1=first.event_at.min())
    users = users.mutate(deadline=users.t1 + ibis.interval(seconds=int(round(window_days * 86400))))
    numbered = None
    if order == "strict":
        numbered = events.mutate(
            pos=ibis.row_number().over(ibis.window(group_by="user_id", order_by=["event_at", "event"]))
        )
        entry = users.join(numbered, [users.user_id == numbered.user_id, users.t1 == numbered.event_at])
        entry = entry.filter(entry.event.isin(steps[0])).group_by("user_id").aggregate(p1=entry.pos.min())
        users = users.join(entry, "user_id")
    excluded = events.filter(events.event.isin(list(exclude))) if exclude else None
    for k in range(2, len(steps) + 1):
        users = _next_step(users, events, steps, k, order, numbered)
        if excluded is not None:
            users = _leave_on_exclusion(users, excluded, k)
    columns = ["user_id", *[f"t{k}" for k in range(1, len(steps) + 1)], "deadline"]
    return users.select(*columns, complete=users.deadline <= snapshot)


def _next_step(users: ir.Table, events: ir.Table, steps, k: int, order: str, numbered) -> ir.Table:
    """``users`` with ``t{k}``: when step k was reached (null if not)."""
    previous, names = users[f"t{k - 1}"], steps[k - 1]
    candidates = events.filter(events.event.isin(names))
    if order == "strict":
        at = numbered.filter(numbered.event.isin(names))
        joined = users.join(at, [users.user_id == at.user_id, at.pos == users[f"p{k - 1}"] + 1])
        joined = joined.filter(joined.event_at <= joined.deadline)
        found = joined.select("user_id", **{f"t{k}": joined.event_at, f"p{k}": joined.pos})
        return users.left_join(found, "user_id").drop("user_id_right")
    joined = users.select("user_id", "t1", "deadline", previous=previous).join(candidates, "user_id")
    if order == "any":
        inside = (joined.event_at >= joined.t1) & (joined.event_at <= joined.deadline) & joined.previous.notnull()
    else:
        later = (
            joined.event_at > joined.previous if set(names) & set(steps[k - 2]) else joined.event_at >= joined.previous
        )
        inside = later & (joined.event_at <= joined.deadline)
    firsts = joined.filter(inside).group_by("user_id").aggregate(found=joined.event_at.min())
    users = users.left_join(firsts, "user_id").drop("user_id_right")
    # greatest() skips nulls: a step not found must stay null, not become step k-1's time
    reached = (
        ibis.ifelse(users.found.isnull(), ibis.null("timestamp"), ibis.greatest(users.found, users[f"t{k - 1}"]))
        if order == "any"
        else users.found
    )
    return users.mutate(**{f"t{k}": reached}).drop("found")


def _leave_on_exclusion(users: ir.Table, excluded: ir.Table, k: int) -> ir.Table:
    """``t{k}`` set to null when an excluded event came after step k-1 and before step k."""
    previous = users[f"t{k - 1}"]
    joined = users.select("user_id", "deadline", previous=previous).join(excluded, "user_id")
    joined = joined.filter((joined.event_at > joined.previous) & (joined.event_at <= joined.deadline))
    firsts = joined.group_by("user_id").aggregate(left_at=joined.event_at.min())
    users = users.left_join(firsts, "user_id").drop("user_id_right")
    reached = users[f"t{k}"]
    left = users.left_at.notnull() & (reached.isnull() | (users.left_at < reached))
    return users.mutate(**{f"t{k}": ibis.ifelse(left, ibis.null("timestamp"), reached)}).drop("left_at")


def reached_counts(times: ir.Table, steps: int, group: ir.Value | None = None) -> pd.DataFrame:
    """Users by ``group, complete, reached`` (the last step reached, 1..K): one small table."""
    reached = ibis.literal(1)
    for k in range(2, steps + 1):
        reached = ibis.ifelse(times[f"t{k}"].notnull(), k, reached)
    tagged = times.mutate(group=group if group is not None else ibis.literal("all"), reached=reached)
    return tagged.group_by(["group", "complete", "reached"]).aggregate(users=tagged.count()).execute()


def minute_histograms(times: ir.Table, steps: int) -> pd.DataFrame:
    """For complete users who reached step k (k >= 2): counts by whole minutes from entering and from
    step k-1, ``step, since, minutes, users`` (since: ``start`` or ``previous``)."""
    complete = times.filter(times.complete)
    parts = []
    for k in range(2, steps + 1):
        reached = complete.filter(complete[f"t{k}"].notnull())
        for since, origin in (("start", "t1"), ("previous", f"t{k - 1}")):
            seconds = reached[f"t{k}"].epoch_seconds() - reached[origin].epoch_seconds()
            minutes = (seconds // _MINUTE).cast("int64")
            parts.append(
                reached.group_by(minutes=minutes)
                .aggregate(users=reached.count())
                .mutate(step=ibis.literal(k), since=ibis.literal(since))
            )
    if not parts:
        return pd.DataFrame(columns=["step", "since", "minutes", "users"])
    return ibis.union(*parts).execute()[["step", "since", "minutes", "users"]]


def entries_by_period(times: ir.Table, steps: int, period: str, calendar: Calendar) -> pd.DataFrame:
    """Entered users by the local period they entered in: ``period_start, complete, converted, users``."""
    tagged = times.mutate(period_start=calendar.start(times.t1, period), converted=times[f"t{steps}"].notnull())
    frame = tagged.group_by(["period_start", "complete", "converted"]).aggregate(users=tagged.count()).execute()
    frame["period_start"] = pd.to_datetime(frame.period_start)
    return frame


NONE = "(none)"  # a user who dropped and did nothing else inside the window


def dropoffs(times: ir.Table, events: ir.Table, steps: list[list[str]], snapshot: dt.datetime) -> pd.DataFrame:
    """For complete users who reached step k-1 but not step k: the event they did next instead (their first
    event after step k-1 inside the window; at one moment the first by name; ``(none)`` when nothing) and
    whether they did step k later, after their window: ``step, next_event, users, came_back``."""
    complete = times.filter(times.complete)
    events = events.filter(events.event_at < snapshot).select("user_id", "event_at", "event")
    parts = []
    for k in range(2, len(steps) + 1):
        dropped = complete.filter(complete[f"t{k - 1}"].notnull() & complete[f"t{k}"].isnull())
        dropped = dropped.select("user_id", since=dropped[f"t{k - 1}"], deadline=dropped.deadline)
        after = dropped.join(events, "user_id")
        after = after.filter((after.event_at > after.since) & (after.event_at <= after.deadline))
        first_at = after.group_by("user_id").aggregate(first_at=after.event_at.min())
        at_first = after.join(first_at, [after.user_id == first_at.user_id, after.event_at == first_at.first_at])
        next_event = at_first.group_by("user_id").aggregate(next_event=at_first.event.min())
        later = dropped.join(events.filter(events.event.isin(steps[k - 1])), "user_id")
        later = later.filter(later.event_at > later.deadline).select("user_id").distinct().mutate(came_back=True)
        tagged = dropped.left_join(next_event, "user_id").drop("user_id_right")
        tagged = tagged.left_join(later, "user_id").drop("user_id_right")
        parts.append(
            tagged.group_by(next_event=tagged.next_event.fill_null(NONE), came_back=tagged.came_back.fill_null(False))
            .aggregate(users=tagged.count())
            .mutate(step=ibis.literal(k))
        )
    if not parts:
        return pd.DataFrame(columns=["step", "next_event", "came_back", "users"])
    return ibis.union(*parts).execute()[["step", "next_event", "came_back", "users"]]


__all__ = ["NONE", "ORDERS", "dropoffs", "entries_by_period", "minute_histograms", "reached_counts", "step_times"]
