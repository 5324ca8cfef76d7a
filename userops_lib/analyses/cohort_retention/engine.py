"""Cohort retention's reductions, in the engine (Ibis only): memberships, active users per cohort and
period, and the per-cohort changes of cumulative revenue. Everything returned is one row per cohort,
group and period."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib import engine
from userops_lib.calendar import Calendar

MISSING_GROUP = "(missing)"


def counts(
    events: ir.Table, members: ir.Table, period: str, mode: str, brackets, active_events, calendar: Calendar
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cohort sizes, and per cohort, group and period k: active users (mode ``on``), users whose last active
    period is k (``on_or_after``: ``last, n``; :func:`stats.at_or_after` turns these into counts) or active
    users in bracket k (``brackets``)."""
    active = events if not active_events else events.filter(events.event.isin(list(active_events)))
    activity = active.select("user_id", active_at=calendar.start(active.event_at, period)).distinct()
    pairs = members.join(activity, "user_id")
    pairs = pairs.mutate(k=calendar.periods_between(pairs.active_at, pairs.cohort, period)).filter(lambda t: t.k >= 0)

    sizes = members.group_by(["cohort", "group_value"]).aggregate(cohort_size=members.count()).execute()
    if mode == "on":
        counted = pairs.group_by(["cohort", "group_value", "k"]).aggregate(active_users=pairs.count()).execute()
    elif mode == "on_or_after":
        last = pairs.group_by(["user_id", "cohort", "group_value"]).aggregate(last=pairs.k.max())
        counted = last.group_by(["cohort", "group_value", "last"]).aggregate(n=last.count()).execute()
    else:
        bracket = ibis.cases(
            *[((pairs.k >= a) & (pairs.k <= b), i) for i, (a, b) in enumerate(brackets)], else_=ibis.null("int64")
        )
        tagged = pairs.mutate(k=bracket).filter(lambda t: t.k.notnull())
        counted = (
            tagged.group_by(["cohort", "group_value", "k"]).aggregate(active_users=tagged.user_id.nunique()).execute()
        )
    return sizes, counted


def memberships(ds, events, period, cohort_type, start_event, cohort_by) -> ir.Table:
    """One row per user and cohort (several per user for recurring cohorts), with the group value."""
    calendar: Calendar = ds.calendar
    starts = events if not start_event else events.filter(events.event == start_event)
    if cohort_type == "recurring":
        members = starts.select("user_id", cohort=calendar.start(starts.event_at, period)).distinct()
    elif not start_event and ds.users is not None and "signup_at" in ds.users.columns:
        users = ds.users.filter(ds.users.signup_at.notnull())
        members = users.select("user_id", cohort=calendar.start(users.signup_at, period))
    else:
        first = starts.group_by("user_id").aggregate(anchor=starts.event_at.min())
        members = first.select("user_id", cohort=calendar.start(first.anchor, period))
    if cohort_by:
        source = (
            ds.users if ds.users is not None and cohort_by in ds.users.columns else ds.first_event_values([cohort_by])
        )  # an event property: the value on the user's first event
        groups = source.select("user_id", group_value=source[cohort_by].cast("string"))
        members = members.left_join(groups, "user_id")
        members = members.mutate(group_value=members.group_value.fill_null(MISSING_GROUP))
    else:
        members = members.mutate(group_value=ibis.literal("all"))
    return members


def value_changes(events: ir.Table, members: ir.Table, period: str, calendar: Calendar) -> pd.DataFrame:
    """Per cohort, group and period: revenue, and the changes of members' cumulative revenue (``dc``) and of
    its square (``dc2``).

    Per user, cumulative revenue is a step function of k; each step holds from one paying period to
    the next, so sums of the cumulative value and its square over users come from one window pass
    and a running sum, without a users x periods grid.
    """
    paid = events.filter(events.revenue > 0)
    revenue = paid.select("user_id", paid_at=calendar.start(paid.event_at, period), revenue=paid.revenue)
    joined = members.join(revenue, "user_id")
    joined = joined.mutate(k=calendar.periods_between(joined.paid_at, joined.cohort, period)).filter(lambda t: t.k >= 0)
    per_user = joined.group_by(["user_id", "cohort", "group_value", "k"]).aggregate(r=engine.exact_sum(joined.revenue))
    running = ibis.cumulative_window(group_by=["user_id", "cohort", "group_value"], order_by="k")
    window = ibis.window(group_by=["user_id", "cohort", "group_value"], order_by="k")
    steps = per_user.mutate(c=per_user.r.sum().over(running))
    steps = steps.mutate(previous=steps.c.lag().over(window).fill_null(0))
    # At k the user's cumulative value moves from `previous` to `c`: add the change of c and c^2.
    changes = (
        steps.group_by(["cohort", "group_value", "k"])
        .aggregate(
            revenue=engine.exact_sum(steps.r),
            dc=engine.exact_sum(steps.c - steps.previous),
            dc2=engine.exact_sum(steps.c * steps.c - steps.previous * steps.previous),
        )
        .execute()
    )
    changes["cohort"] = pd.to_datetime(changes.cohort)
    return changes
