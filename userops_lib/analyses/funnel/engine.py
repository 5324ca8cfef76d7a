"""The funnel's reductions, in the engine (Ibis only): each entered user's step times, then small tables
of counts (users by the last step reached), minute histograms of the time to each step, and entries by
period. Nothing here runs per user in Python.

Definitions (the report states them):

* Steps are sets of event names in order (``"cart|wishlist"``: either). Every step-1 event in
  ``[start, snapshot)`` starts an **attempt**, whose **window** is ``window_days`` from that moment.
* ``entry``: ``first`` (the default) counts each user's first attempt only; ``best`` counts the attempt that
  got furthest (the earliest among equals), as PostHog, Amplitude and Mixpanel count a funnel.
* ``ordered`` (the default): step k counts at its first event at or after step k-1's time and within the
  window; other events may come between. When step k shares an event name with step k-1 it must come
  strictly later (one event is not two steps).
* ``strict``: step k must be the user's very next event after step k-1 (events ordered by time, then
  name), within the window.
* ``any``: steps 2..k may come in any order after entering, within the window; step k is reached when
  the last of them has happened.
* Exclusions: an excluded event after step k-1 and before step k (or before the window ends when step k
  never comes) ends the attempt there: with ``exclusion="drop"`` (the default) the attempt counts as a drop
  at step k-1; with ``exclusion="remove"`` the attempt is not counted at all (PostHog's exclusion steps) and
  a user with no attempt left is removed from the funnel (counted apart). An exclusion may apply to some
  steps only (``(event, a, b)``: between step a and step b).
* A user's window is **complete** when it ended by the snapshot (with ``entry="best"``: every attempt's). Conversion counts complete users only;
  users still in their window are counted apart (how many, and how many converted already), never as a
  drop.
"""

from __future__ import annotations

import datetime as dt
import re

import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib.calendar import Calendar

ORDERS = ("ordered", "strict", "any")
ENTRIES = ("first", "best")
EXCLUSIONS = ("drop", "remove")
_MINUTE = 60


def step_times(
    events: ir.Table,
    steps: list[list[str]],
    *,
    window_days: float,
    order: str = "ordered",
    exclude: list[str | tuple[str, int, int]] | None = None,
    entry: str = "first",
    exclusion: str = "drop",
    start: dt.datetime | None = None,
    starts: ir.Table | None = None,
    snapshot: dt.datetime,
) -> ir.Table:
    """One row per entered user: ``user_id, t1 .. tK`` (null from the first step not reached),
    ``deadline`` (end of the window), ``complete`` (the window ended by the snapshot) and ``removed``
    (every attempt of the user had an excluded event, with ``exclusion="remove"``: in no rate).

    ``exclude``: event names excluded between any two steps, or ``(name, a, b)``: between step a and
    step b only (1-based). ``starts`` (``user_id, start_at``, e.g. campaign assignments): only these
    users, entering at a step-1 event at or after their own start."""
    events = events.filter(events.event_at < snapshot).select("user_id", "event_at", "event")
    first = events.filter(events.event.isin(steps[0]))
    if start is not None:
        first = first.filter(first.event_at >= start)
    if starts is not None:
        first = first.join(starts, "user_id")
        first = first.filter(first.event_at >= first.start_at).select("user_id", "event_at", "event")
    many = entry == "best"  # several attempts per user: lookups keyed by (user, time), never a per-user join
    if many:
        attempts = first.select("user_id", t1=first.event_at).distinct()
    else:
        attempts = first.group_by("user_id").aggregate(t1=first.event_at.min())
    window = ibis.interval(seconds=int(round(window_days * 86400)))
    attempts = attempts.mutate(deadline=attempts.t1 + window, excluded=ibis.literal(False))
    rules = exclusion_rules(exclude or [], len(steps))
    if many:
        # windows of one user overlap: the lookups stay linear in events (no event copied per attempt)
        source = events
    else:
        # every later step and exclusion lies in the user's one window: the events are restricted to the
        # windows once and each step is derived from that small set (strict order needs every event there)
        wanted = None if order == "strict" else sorted({n for step in steps[1:] for n in step}.union(*rules.values()))
        source = _in_window(attempts, events, wanted)
    derived = order == "strict" or (order == "any" and not many)  # every step found in one pass
    if order == "strict":
        attempts = _strict_steps(attempts, source, steps)
    elif derived:
        attempts = _any_steps(attempts, source, steps)
    elif not many and not any(rules.values()):
        attempts, derived = _ordered_steps(attempts, source, steps), True
    for k in range(2, len(steps) + 1):
        if derived:
            # a step after one an exclusion took away is not reached
            previous, reached = attempts[f"t{k - 1}"], attempts[f"t{k}"]
            attempts = attempts.mutate(**{f"t{k}": ibis.ifelse(previous.isnull(), ibis.null("timestamp"), reached)})
        else:
            attempts = _next_step(attempts, source, steps, k, order, many)
        if rules[k]:
            excluded = source.filter(source.event.isin(sorted(rules[k])))
            attempts = _leave_on_exclusion(attempts, excluded, k, exclusion, many)
    columns = ["user_id", *[f"t{k}" for k in range(1, len(steps) + 1)], "deadline"]
    if many:
        return _best_attempt(attempts, len(steps), snapshot, columns)
    return attempts.select(*columns, complete=attempts.deadline <= snapshot, removed=attempts.excluded)


def _in_window(attempts: ir.Table, events: ir.Table, names: list[str] | None) -> ir.Table:
    """The events (of ``names``; all when None) inside their user's one window ``[t1, deadline]``, with the
    window's ``t1`` and ``deadline``."""
    if names is not None:
        events = events.filter(events.event.isin(names))
    joined = events.join(attempts.select("user_id", "t1", "deadline"), "user_id")
    return joined.filter((joined.event_at >= joined.t1) & (joined.event_at <= joined.deadline))


def _ordered_steps(attempts: ir.Table, source: ir.Table, steps: list[list[str]]) -> ir.Table:
    """``attempts`` (one per user, no exclusions) with ``t2 .. tK`` in order, from the events in the windows:
    step k from the users who reached step k-1 only (a shrinking join), then one join back per step."""
    reached: list[ir.Table] = []
    previous: ir.Table | None = None
    for k in range(2, len(steps) + 1):
        candidates = source.filter(source.event.isin(steps[k - 1]))
        strictly = bool(set(steps[k - 1]) & set(steps[k - 2]))  # one event is not two steps
        if previous is None:
            since = candidates.t1
            joined = candidates
        else:
            joined = previous.join(candidates.select("user_id", "event_at"), "user_id")
            since = joined[f"t{k - 1}"]
        later = joined.event_at > since if strictly else joined.event_at >= since
        step = joined.filter(later).group_by("user_id").aggregate(**{f"t{k}": joined.event_at.min()})
        reached.append(step)
        previous = step
    for step in reached:
        attempts = attempts.left_join(step, "user_id").drop("user_id_right")
    return attempts


def _any_steps(attempts: ir.Table, source: ir.Table, steps: list[list[str]]) -> ir.Table:
    """``attempts`` (one per user) with ``t2 .. tK`` in any order, from one pass over the events in the
    windows: each step's first event after entering; step k is reached when the last of steps 2..k is."""
    firsts = source.group_by("user_id").aggregate(
        **{f"f{k}": source.event_at.min(where=source.event.isin(steps[k - 1])) for k in range(2, len(steps) + 1)}
    )
    joined = attempts.left_join(firsts, "user_id").drop("user_id_right")
    reached: dict[str, ir.Value] = {}
    for k in range(2, len(steps) + 1):
        found, previous = joined[f"f{k}"], (joined.t1 if k == 2 else reached[f"t{k - 1}"])
        # greatest() skips nulls, so a step not found must stay null
        reached[f"t{k}"] = ibis.ifelse(
            found.isnull() | previous.isnull(), ibis.null("timestamp"), ibis.greatest(found, previous)
        )
    return joined.mutate(**reached).drop(*[f"f{k}" for k in range(2, len(steps) + 1)])


def _strict_steps(attempts: ir.Table, source: ir.Table, steps: list[list[str]]) -> ir.Table:
    """``attempts`` with ``t2 .. tK`` in strict order: the events that follow the entering event, read with
    ``lead()`` in one sort of the user's events (time, then name); step k is reached when the k-1 events
    after entering are steps 2..k, each by the deadline."""
    ahead = ibis.window(group_by="user_id", order_by=["event_at", "event"])
    following = {}
    for j in range(1, len(steps)):
        following[f"n{j}"] = source.event.lead(j).over(ahead)
        following[f"a{j}"] = source.event_at.lead(j).over(ahead)
    led = source.mutate(pos=ibis.row_number().over(ahead), **following)
    led = led.filter(led.event.isin(steps[0]))
    windowed = "t1" in source.columns  # the events of each user's one window, which carry it
    if windowed:
        at = led.filter(led.event_at == led.t1)
    else:
        at = attempts.select("user_id", "t1").join(led, [attempts.user_id == led.user_id, attempts.t1 == led.event_at])
    # the entering event: the attempt's first step-1 event at its moment (the first by name, as ordered)
    at = at.mutate(first=ibis.row_number().over(ibis.window(group_by=["user_id", "t1"], order_by="pos")))
    at = at.filter(at.first == 0)
    reached = ibis.literal(True)
    found = {}
    for k in range(2, len(steps) + 1):
        j = k - 1
        reached = reached & at[f"n{j}"].isin(steps[k - 1]).fill_null(False)
        found[f"t{k}"] = ibis.ifelse(reached, at[f"a{j}"], ibis.null("timestamp"))
    if windowed:
        # every entered user's entering event is in its window: the attempts themselves
        joined = at.select("user_id", "t1", "deadline", excluded=ibis.literal(False), **found)
    else:
        at = at.select("user_id", "t1", **found)
        joined = attempts.left_join(at, ["user_id", "t1"]).drop("user_id_right", "t1_right")
    within = {}
    for k in range(2, len(steps) + 1):
        # the deadline: the next event after it is no step (later ones cannot be reached either)
        inside = joined[f"t{k}"] <= joined.deadline
        within[f"t{k}"] = ibis.ifelse(inside.fill_null(False), joined[f"t{k}"], ibis.null("timestamp"))
    # times only grow along the chain: a step past the deadline leaves every later one past it too
    return joined.mutate(**within)


_RANGE = re.compile(r"^(.+)@\s*(\d+)\s*-\s*(\d+)$")


def split_exclusion(text: object) -> tuple[str, tuple[int, int] | None]:
    """``"refund@2-3"`` as ``("refund", (2, 3))``; ``"refund"`` (or a name whose '@' is not followed by a
    step range) as ``("refund", None)``."""
    text = str(text).strip()
    match = _RANGE.match(text)
    if not match:
        return text, None
    return match.group(1).strip(), (int(match.group(2)), int(match.group(3)))


def exclusion_rules(exclude: list, steps: int) -> dict[int, set[str]]:
    """For each step k (2..K), the event names that end an attempt between step k-1 and step k."""
    rules: dict[int, set[str]] = {k: set() for k in range(2, steps + 1)}
    for item in exclude:
        name, a, b = (item, 1, steps) if isinstance(item, str) else item
        for k in range(int(a) + 1, int(b) + 1):
            rules[k].add(name)
    return rules


def _best_attempt(attempts: ir.Table, steps: int, snapshot, columns: list[str]) -> ir.Table:
    """Each user's attempt that got furthest (attempts not excluded first; the earliest among equals); the
    user is complete when every attempt's window ended, removed when every attempt was excluded."""
    reached = ibis.literal(1)
    for k in range(2, steps + 1):
        reached = ibis.ifelse(attempts[f"t{k}"].notnull(), k, reached)
    ranked = attempts.mutate(
        rank=ibis.row_number().over(
            ibis.window(group_by="user_id", order_by=[attempts.excluded, ibis.desc(reached), attempts.t1])
        ),
        last_deadline=attempts.deadline.max().over(ibis.window(group_by="user_id")),
    )
    best = ranked.filter(ranked.rank == 0)
    return best.select(*columns, complete=best.last_deadline <= snapshot, removed=best.excluded)


def _next_at(points: ir.Table, candidates: ir.Table, *, strictly: bool) -> ir.Table:
    """For each distinct ``(user_id, at)`` of ``points``: ``next_at``, the first candidate event time of
    the user at (or, ``strictly``, after) ``at``. One sort of points and candidates together (a window
    looking forward), linear in events however many points a user has."""
    kind = candidates.event_at.type()
    points = points.filter(points.at.notnull()).select("user_id", at=points.at.cast(kind)).distinct()
    query = points.mutate(candidate=ibis.null(kind), is_point=ibis.literal(True))
    found = candidates.select("user_id", at=candidates.event_at, candidate=candidates.event_at)
    found = found.mutate(is_point=ibis.literal(False))
    both = ibis.union(query, found)
    # at one moment, a point sorts before the candidates when they count (at or after) and after them when
    # only later ones do
    tie = both.is_point if strictly else ~both.is_point
    ahead = ibis.window(group_by="user_id", order_by=[both.at, tie], following=None, preceding=0)
    looked = both.mutate(next_at=both.candidate.min().over(ahead))
    looked = looked.filter(looked.is_point)
    return looked.select("user_id", "at", "next_at")


def _first_after(attempts: ir.Table, point: str, candidates: ir.Table, *, strictly: bool, many: bool) -> ir.Table:
    """``attempts`` with ``found``: the first candidate at or (``strictly``) after the attempt's ``point``
    column, null when none comes by the attempt's deadline."""
    if many:
        looked = _next_at(attempts.select("user_id", at=attempts[point]), candidates, strictly=strictly)
        joined = attempts.left_join(looked, [attempts.user_id == looked.user_id, attempts[point] == looked.at])
        joined = joined.drop("user_id_right", "at")
        found = ibis.ifelse(joined.next_at <= joined.deadline, joined.next_at, ibis.null("timestamp"))
        return joined.mutate(found=found).drop("next_at")
    mine = attempts.filter(attempts[point].notnull())
    joined = mine.select("user_id", "deadline", since=mine[point]).join(candidates, "user_id")
    later = joined.event_at > joined.since if strictly else joined.event_at >= joined.since
    firsts = joined.filter(later & (joined.event_at <= joined.deadline))
    firsts = firsts.group_by("user_id").aggregate(found=firsts.event_at.min())
    return attempts.left_join(firsts, "user_id").drop("user_id_right")


def _next_step(attempts: ir.Table, events: ir.Table, steps, k: int, order: str, many: bool) -> ir.Table:
    """``attempts`` with ``t{k}``: when step k was reached (null if not), in ordered or any order."""
    names = steps[k - 1]
    candidates = events.filter(events.event.isin(names))
    if order == "any":
        # every step after entering, in any order: step k's first event after entering, reached once the
        # steps before it are (greatest() skips nulls, so a step not found must stay null)
        looked = _first_after(attempts, "t1", candidates, strictly=False, many=many)
        previous = looked[f"t{k - 1}"]
        reached = ibis.ifelse(
            looked.found.isnull() | previous.isnull(), ibis.null("timestamp"), ibis.greatest(looked.found, previous)
        )
        return looked.mutate(**{f"t{k}": reached}).drop("found")
    strictly = bool(set(names) & set(steps[k - 2]))  # one event is not two steps
    looked = _first_after(attempts, f"t{k - 1}", candidates, strictly=strictly, many=many)
    return looked.rename(**{f"t{k}": "found"})


def _leave_on_exclusion(attempts: ir.Table, excluded: ir.Table, k: int, exclusion: str, many: bool) -> ir.Table:
    """An excluded event after step k-1 and before step k (by the deadline when step k never came): ``t{k}``
    set to null (drop), or the attempt marked excluded (remove)."""
    looked = _first_after(attempts, f"t{k - 1}", excluded, strictly=True, many=many)
    reached = looked[f"t{k}"]
    hit = looked.found.notnull() & (reached.isnull() | (looked.found < reached))
    if exclusion == "remove":
        return looked.mutate(excluded=looked.excluded | hit).drop("found")
    return looked.mutate(**{f"t{k}": ibis.ifelse(hit, ibis.null("timestamp"), reached)}).drop("found")


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
    whether they did step k later, after their window: ``step, next_event, users, came_back``.

    Every user drops at one step at most, so all steps come from one table of dropped users: one pass over
    their events inside the windows and one over their later step events, whatever the step count."""
    columns = ["step", "next_event", "came_back", "users"]
    last = len(steps)
    if last < 2:
        return pd.DataFrame(columns=columns)
    complete = times.filter(times.complete)
    reached = ibis.literal(1)
    for k in range(2, last + 1):
        reached = ibis.ifelse(complete[f"t{k}"].notnull(), k, reached)
    since = ibis.cases(*[(reached == j, complete[f"t{j}"]) for j in range(1, last)], else_=ibis.null("timestamp"))
    dropped = complete.select("user_id", step=reached + 1, since=since, deadline=complete.deadline)
    dropped = dropped.filter(dropped.step <= last)
    events = events.filter(events.event_at < snapshot).select("user_id", "event_at", "event")
    inside = dropped.join(events, "user_id")
    inside = inside.filter((inside.event_at > inside.since) & (inside.event_at <= inside.deadline))
    first_at = inside.group_by("user_id").aggregate(first_at=inside.event_at.min())
    at_first = inside.join(first_at, [inside.user_id == first_at.user_id, inside.event_at == first_at.first_at])
    next_event = at_first.group_by("user_id").aggregate(next_event=at_first.event.min())
    names = sorted({name for step in steps[1:] for name in step})
    later = dropped.join(events.filter(events.event.isin(names)), "user_id")
    wanted = ibis.cases(*[(later.step == k, later.event.isin(steps[k - 1])) for k in range(2, last + 1)], else_=False)
    later = later.filter((later.event_at > later.deadline) & wanted)
    later = later.select("user_id").distinct().mutate(came_back=True)
    tagged = dropped.left_join(next_event, "user_id").drop("user_id_right")
    tagged = tagged.left_join(later, "user_id").drop("user_id_right")
    counts = tagged.group_by(
        "step", next_event=tagged.next_event.fill_null(NONE), came_back=tagged.came_back.fill_null(False)
    ).aggregate(users=tagged.count())
    frame = counts.execute()[columns]
    frame["step"] = frame["step"].astype("int64")
    return frame


__all__ = [
    "ENTRIES",
    "EXCLUSIONS",
    "NONE",
    "ORDERS",
    "dropoffs",
    "exclusion_rules",
    "split_exclusion",
    "entries_by_period",
    "minute_histograms",
    "reached_counts",
    "step_times",
]
