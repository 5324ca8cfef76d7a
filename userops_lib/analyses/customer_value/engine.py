"""Customer value's reductions, in the engine (Ibis only): one row per customer (frequency, recency, T,
mean spend, holdout purchases) and purchase days per calendar day. Pandas sees one row per customer.

Definitions (the catalogue's ``customer_value.definition.*`` states them in every report):

* A **purchase** is an event with revenue > 0, or an event named ``purchase_event`` when one is given
  (``*``: every event, for a log of transactions only), or any event when the data has no revenue and no
  ``purchase_event`` (then the model counts active days).
* Purchases are counted by **local day** of the dataset's calendar (Fader and Hardie's transaction
  occasions): several purchases on one day are one, their revenue summed.
* The observation ends on the snapshot's local day, or the day before when the snapshot is at local midnight
  (``end_day``); the calibration period ends
  ``holdout_days`` earlier (``calibration_end``). A **customer** made a first purchase by then.
* **frequency** is the number of purchase days after the first one in the calibration period,
  **recency** the days from the first to the last of them, **T** the days from the first to the
  calibration end (both divided by the time unit later), **monetary** the mean revenue of the repeat
  purchase days (the first excluded, as the Gamma-Gamma model requires; 0 without repeats),
  **holdout** the purchase days after the calibration end.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from userops_lib import engine
from userops_lib.calendar import Calendar
from userops_lib.data import with_revenue

SUMMARY = ("user_id", "first_day", "frequency", "recency_days", "T_days", "monetary", "revenue", "holdout")


def end_day(snapshot: dt.datetime, calendar: Calendar) -> dt.date:
    """The last local day observed: the snapshot's day, or the day before when the snapshot is at local midnight."""
    local = calendar.to_local(snapshot)
    day = calendar.local_date(snapshot)
    return day - dt.timedelta(days=1) if local == calendar.floor(local, "day") else day


def purchase_days(
    events: ir.Table, *, snapshot: dt.datetime, purchase_event: str | None, calendar: Calendar
) -> ir.Table:
    """One row per customer and local day with a purchase up to the snapshot (the events the dataset keeps)
    and on or before :func:`end_day`: ``user_id, day, revenue``."""
    has_revenue = "revenue" in events.columns
    last = end_day(snapshot, calendar)
    events = with_revenue(events.filter((events.event_at <= snapshot) & (calendar.date(events.event_at) <= last)))
    if purchase_event == "*":
        bought = ibis.literal(True)
    elif purchase_event:
        bought = events.event.cast("string") == purchase_event
    elif has_revenue:
        bought = events.revenue > 0
    else:
        bought = ibis.literal(True)
    chosen = events.filter(bought)
    return chosen.group_by(["user_id", calendar.date(chosen.event_at).name("day")]).aggregate(
        revenue=engine.exact_sum(chosen.revenue)
    )


def summary(days: ir.Table, *, calibration_end: dt.date) -> ir.Table:
    """One row per customer whose first purchase day is on or before ``calibration_end`` (see the module)."""
    end = ibis.literal(calibration_end)
    in_calibration = days.day <= end
    per_user = days.group_by("user_id").aggregate(
        first_day=days.day.min(),
        last_day=days.day.max(where=in_calibration),
        days=in_calibration.sum(),
        revenue=engine.exact_sum(days.revenue, where=in_calibration),
        first_revenue=days.revenue.argmin(days.day),
        holdout=(~in_calibration).sum(),
    )
    per_user = per_user.filter(per_user.first_day <= end)
    frequency = per_user.days - 1
    return per_user.select(
        "user_id",
        "first_day",
        frequency=frequency,
        recency_days=Calendar.days_between(per_user.last_day, per_user.first_day),
        T_days=Calendar.days_between(end, per_user.first_day),
        monetary=ibis.ifelse(
            frequency > 0, (per_user.revenue - per_user.first_revenue) / frequency.cast("float64"), 0.0
        ),
        revenue=per_user.revenue,
        holdout=per_user.holdout,
    )


def daily(days: ir.Table, customers: ir.Table) -> ir.Table:
    """Per calendar day: the customers' first purchases (``first``) and repeat purchase days (``repeat``)."""
    joined = days.join(customers.select("user_id", "first_day"), "user_id")
    first = joined.day == joined.first_day
    return joined.group_by("day").aggregate(first=first.sum(), repeat=(~first).sum())


__all__ = ["SUMMARY", "daily", "end_day", "purchase_days", "summary"]
