"""Active days: one row per user and local day with an event, reduced from the events once and shared.

Three analyses start from the same reduction of the event log: the overview (DAU/WAU/MAU, money by day,
period and month, N-day retention), churn survival (the gaps between a user's active days, at the snapshot
and at the calibration's earlier cutoff) and segment profiling (new, returning, resurrecting and dormant
users per period). :func:`days` is that reduction, in the engine:

``user_id, day, first_at, paid, revenue, previous_day, next_day, next_first_at``

- ``day``: the local midnight of the dataset's calendar starting the day (naive, like :meth:`Calendar.day`);
- ``first_at``: the day's first event (UTC, naive); a day belongs to the events before an instant ``s``
  exactly when ``first_at < s``, so one table serves every snapshot up to the dataset's;
- ``paid``: revenue > 0 on some event of the day; ``revenue``: the day's revenue, added exactly
  (:func:`userops_lib.engine.exact_sum`; missing revenue counts 0);
- ``previous_day``, ``next_day``: the user's active days before and after (null at either end), and
  ``next_first_at`` the first event of ``next_day``. A user's periods (weeks, months) follow from them: a day
  is the user's first in its period when ``previous_day`` lies in an earlier period, the last when
  ``next_day`` lies in a later one.

In a report run the runner computes it once, into the run's store (:mod:`userops_lib.store`), and every kernel
reads it there; elsewhere (JupyterLab, a test) the first analysis that asks computes it and keeps it in the
dataset's connection for the next. It is kept for the dataset's own events table: a restricted dataset (one
segment of a grid run) or replaced events get their own.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from userops_lib import engine
from userops_lib.data import Dataset, with_revenue

KEY = "activity_days"
COLUMNS = ("user_id", "day", "first_at", "paid", "revenue", "previous_day", "next_day", "next_first_at")


def expression(ds: Dataset) -> ir.Table:
    """The active days of ``ds``'s events as an engine expression (not computed)."""
    events = with_revenue(ds.table("events"))  # missing values (or no revenue at all) as 0
    calendar = ds.calendar
    per_day = events.group_by(["user_id", calendar.day(events.event_at).name("day")]).aggregate(
        first_at=events.event_at.min(),
        paid=(events.revenue > 0).any(),
        revenue=engine.exact_sum(events.revenue),
    )
    window = ibis.window(group_by="user_id", order_by="day")
    return per_day.mutate(
        previous_day=per_day.day.lag().over(window),
        next_day=per_day.day.lead().over(window),
        next_first_at=per_day.first_at.lead().over(window),
    ).select(*COLUMNS)


def days(ds: Dataset) -> ir.Table:
    """The active days of ``ds`` (see the module): the run's stored table, or computed once and kept."""
    events = ds.table("events")
    kept = ds.shared.get(KEY)
    if kept is not None and kept[0] is events:
        return kept[1]
    table = expression(ds).cache()
    ds.shared[KEY] = (events, table)
    return table


def keep(ds: Dataset, table: ir.Table) -> None:
    """Use ``table`` (read from a run's store) as the active days of ``ds``'s current events."""
    ds.shared[KEY] = (ds.table("events"), table)
