"""Churn survival's engine part: one row per user with a duration and a churn flag, reduced to counts.

*From an event log*: a user has churned when they have had no activity for ``churn_after_days`` before
the snapshot, and their churn time is their last activity (time from first activity). Everyone else is
censored at ``snapshot - churn_after_days``: by then they were certainly still here (their last activity
is later), and that censoring time depends on the calendar only, so it carries no information about the
user. Censoring at the snapshot would credit users with up to ``churn_after_days`` they may not have
stayed; censoring at their last activity would make the censoring depend on their behaviour. Users first
seen in the last ``churn_after_days`` cannot be judged yet and are left out (counted in the report).
Whole days.

*From a user table* with ``duration`` and ``churned`` (e.g. Telco: tenure in months, Churn = Yes): taken
as they are, in the table's unit.

Everything here is Ibis: the statistics (:mod:`.curves`, :mod:`.cox`, :mod:`.risk`) see only the counts
per ``(pattern, duration, churned)`` these functions return.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib import activity, contract
from userops_lib.data import Dataset, find_kept, kept_key
from userops_lib.errors import DataError
from userops_lib.topn import MISSING, OTHER

SOURCES = ("auto", "events", "users")
SPANS = "churn_spans"  # kept per-user first and last events (several snapshots, one pass): the key's prefix


def user_durations(
    ds: Dataset,
    *,
    source: str = "auto",
    churn_after_days: int = 30,
    active_events: list[str] | None = None,
    snapshot=None,
    also=(),
) -> tuple[ir.Table, str, str]:
    """One row per user: ``user_id, duration, churned, seen, tenure`` and the user attributes (an engine
    expression), its unit and the source used (``events`` or ``users``).

    ``also``: earlier snapshots whose durations will be asked for next (the calibration's cutoff): the users'
    first and last events are then aggregated for every snapshot in one pass over the events and kept, and the
    next call reads them."""
    users = ds.users
    has_table = users is not None and {"duration", "churned"} <= set(users.columns)
    if source not in SOURCES:
        raise DataError(contract.problem("source", "param.choice", source, choices=", ".join(SOURCES)))
    if source == "users" or (source == "auto" and has_table):
        if not has_table:
            raise DataError.single(
                "users",
                "the users table has no duration and churned columns",
                "map them in dataset.yml, or use source=events",
                column="duration",
                key="churn_survival.no_durations",
            )
        assert users is not None  # has_table
        table = users.filter(users.duration.notnull() & users.churned.notnull())
        table = table.mutate(seen=table.duration, tenure=table.duration)
        return table.mutate(churned=table.churned.cast("boolean")), ds.duration_unit or "units", "users"
    if churn_after_days < 1:
        raise DataError(
            contract.problem(
                "churn_after_days",
                "param.limit.one",
                churn_after_days,
                limit=contract.Said("error.param.ge", bound="1"),
            )
        )
    snapshot = pd.Timestamp(snapshot or ds.snapshot_at).to_pydatetime()
    spans = _spans(ds, active_events, [snapshot, *(pd.Timestamp(m).to_pydatetime() for m in also)])
    cutoff = snapshot - pd.Timedelta(days=churn_after_days).to_pytimedelta()
    churned = spans.last_at < cutoff
    # Durations are whole local days of the dataset's calendar, first active day to the end day.
    calendar = ds.calendar
    first_day, last_day = calendar.date(spans.first_at), calendar.date(spans.last_at)
    end = ibis.ifelse(churned, last_day, calendar.date_literal(cutoff))
    table = spans.filter(spans.first_at < cutoff).mutate(
        churned=churned,
        duration=calendar.days_between(end, first_day).cast("float64"),
        seen=calendar.days_between(last_day, first_day).cast("float64"),
        tenure=calendar.days_between(calendar.date_literal(snapshot), first_day).cast("float64"),
    )
    if users is not None:
        attributes = [c for c in users.columns if c not in ("user_id", "signup_at", "duration", "churned")]
        joined = table.left_join(users, table.user_id == users.user_id)
        # select by hand: a left join keeps both keys, and 'user_id_right' would become an attribute
        table = joined.select(*[joined[c] for c in table.columns], *[joined[c] for c in attributes])
    return table, "days", "events"


def _spans(ds: Dataset, active_events: list[str] | None, moments: list) -> ir.Table:
    """``user_id, first_at, last_at``: each user's first and last (active) event before ``moments[0]``, for
    the users with one. With more moments, the events before each are aggregated in one pass (a FILTER per
    moment) and kept in the connection; a kept aggregation holding ``moments[0]`` is read instead."""
    kind = ",".join(active_events or [])
    kept = find_kept(ds, SPANS, kind, moments[:1])
    if kept is not None:
        table, (k,) = kept
        spans = table.select("user_id", first_at=table[f"first_at_{k}"], last_at=table[f"last_at_{k}"])
        return spans.filter(spans.first_at.notnull())
    active = _active(ds, active_events)
    if len(moments) == 1:
        active = active.filter(active.event_at < moments[0])
        return active.group_by("user_id").aggregate(first_at=active.event_at.min(), last_at=active.event_at.max())
    active = active.filter(active.event_at < max(moments))
    before = [active.event_at < moment for moment in moments]
    table = (
        active.group_by("user_id")
        .aggregate(
            **{f"first_at_{k}": active.event_at.min(where=b) for k, b in enumerate(before)},
            **{f"last_at_{k}": active.event_at.max(where=b) for k, b in enumerate(before)},
        )
        .cache()
    )
    ds.shared[kept_key(SPANS, kind, moments)] = (ds.table("events"), table)
    return _spans(ds, active_events, moments[:1])


def _active(ds: Dataset, active_events: list[str] | None) -> ir.Table:
    events = ds.table("events")
    return events.filter(events.event.isin(list(active_events))) if active_events else events


def users_seen(ds: Dataset) -> int:
    """Users with any event before the snapshot (those too new to judge are the difference): users whose first
    active day (:func:`userops_lib.activity.days`) began before it."""
    days = activity.days(ds)
    first = days.filter(days.previous_day.isnull() & (days.first_at < ds.snapshot_at))
    return int(first.count().execute())


def with_patterns(
    table: ir.Table, columns: list[str], *, max_levels: int | None = None, levels_from: ir.Table | None = None
) -> ir.Table:
    """``table`` with each text column mapped to its top ``max_levels`` values and 'other' (nulls: '(missing)').

    The top values are those of ``levels_from`` (default ``table``): the active users of a fit keep the levels
    the fit was made with, not their own top values.
    """
    source = table if levels_from is None else levels_from
    for column in columns:
        if column not in table.columns:
            raise DataError.single(
                "users",
                f"no user attribute '{column}'",
                "choose an attribute of the users table",
                column=column,
                key="no_attribute",
                values={"column": column},
                example=", ".join(c for c in table.columns if c not in ("user_id", "duration", "churned"))[:200],
            )
    keys = {}
    for column in columns:
        value = table[column]
        if value.type().is_string() or value.type().is_boolean():
            value = value.cast("string").fill_null(MISSING)
            if max_levels:
                level = source[column].cast("string").fill_null(MISSING)
                top = (
                    source.group_by(v=level)
                    .aggregate(n=source.count())
                    .order_by([ibis.desc("n"), "v"])
                    .limit(max_levels)
                )
                value = ibis.ifelse(value.isin(top.v), value, ibis.literal(OTHER))
        keys[column] = value
    return table.mutate(**keys) if keys else table


def aggregate(table: ir.Table, columns: list[str], *, max_levels: int | None = None) -> pd.DataFrame:
    """Counts per ``columns`` pattern, duration and churn flag (the rows every fit takes)."""
    table = with_patterns(table, columns, max_levels=max_levels)
    grouped = table.group_by(["duration", "churned", *columns]).aggregate(count=table.count())
    frame = grouped.execute()
    frame["churned"] = frame.churned.astype(bool)
    return frame.sort_values([*columns, "duration", "churned"]).reset_index(drop=True)


def active_patterns(table: ir.Table, columns: list[str], *, max_levels: int | None, outcome: ir.Table | None = None):
    """Users not yet churned, as ``(users, pattern)`` with their silence: an engine table (for the
    per-user list) and its counts per ``duration, seen, silence, pattern`` (for the model). With
    ``outcome`` (``user_id, outcome``) the counts also hold how many churned later."""
    users = table.filter(~table.churned)
    if outcome is not None:
        users = users.join(outcome, "user_id")
    users = with_patterns(users, columns, max_levels=max_levels, levels_from=table)
    users = users.mutate(silence=users.tenure - users.seen)
    sums = {"users": users.count()}
    if outcome is not None:
        sums["churned"] = users.outcome.sum()
    return users, users.group_by(["duration", "seen", "silence", *columns]).aggregate(**sums).execute()


def ranked_users(users: ir.Table, combos: pd.DataFrame, columns: list[str], horizon: float) -> pd.DataFrame:
    """Every user of ``users`` with their pattern's churn probability, riskiest first (an engine join)."""
    kept = ["duration", "seen", "silence", *columns, "churn_probability"]
    kept += ["users_at_risk"] if "users_at_risk" in combos else []
    lookup = ibis.memtable(combos[kept])
    joined = users.join(lookup, ["duration", "seen", "silence", *columns])
    ranked = joined.select(
        user_id=joined.user_id,
        tenure=joined.tenure,
        churn_probability=joined.churn_probability,
        horizon=ibis.literal(horizon),
        **({"users_at_risk": joined.users_at_risk} if "users_at_risk" in combos else {}),
    ).order_by([ibis.desc("churn_probability"), "user_id"])
    return ranked.execute()


def gap_counts(ds: Dataset, *, snapshot, churn_after_days: int, active_events=None) -> pd.DataFrame:
    """Days between consecutive active days of users who came back: ``gap, n``.

    Only gaps that start at least 2 x churn_after_days before the snapshot count, so that every gap up
    to that length could have been seen to end. Active days are local days with an event before the
    snapshot: without ``active_events``, the shared active days (:func:`userops_lib.activity.days`), whose
    next day counts when its first event came before the snapshot (no later day can then); with them, the
    days of those events.
    """
    snapshot = pd.Timestamp(snapshot).to_pydatetime()
    calendar = ds.calendar
    if active_events:
        events = _active(ds, active_events)
        days = (
            events.filter(events.event_at < snapshot).select("user_id", day=calendar.date(events.event_at)).distinct()
        )
        window = ibis.window(group_by="user_id", order_by="day")
        days = days.mutate(gap=calendar.days_between(days.day.lead().over(window), days.day))
    else:
        shared = activity.days(ds)
        shared = shared.filter(shared.first_at < snapshot)
        seen_next = shared.next_first_at < snapshot
        days = shared.select(
            "user_id",
            "day",
            gap=ibis.ifelse(seen_next, calendar.days_between(shared.next_day, shared.day), ibis.null("int64")),
        )
    limit = calendar.local_date(pd.Timestamp(snapshot) - pd.Timedelta(days=2 * churn_after_days))
    # The days are local dates (events) or local midnights (shared): compared with the limit's date either way.
    last = ibis.literal(limit) if days.day.type().is_date() else ibis.literal(pd.Timestamp(limit).to_pydatetime())
    counted = days.filter(days.gap.notnull() & (days.day <= last))
    return counted.group_by("gap").aggregate(n=counted.count()).order_by("gap").execute()


def segment_frame(frame: pd.DataFrame, segment_by: str | None, max_levels: int | None = None) -> pd.DataFrame:
    """The pattern counts summed to ``duration, churned, segment`` (numbers folded like text)."""
    keys = ["duration", "churned", *([segment_by] if segment_by else [])]
    if segment_by and max_levels:
        frame = frame.assign(**{segment_by: segment_levels(frame[segment_by], frame["count"], max_levels)})
    return frame.groupby(keys, as_index=False)["count"].sum()


def segment_levels(values: pd.Series, counts: pd.Series, max_levels: int) -> pd.Series:
    """Segments as text, the ``max_levels`` largest kept and the rest pooled as 'other'. Text attributes are
    folded in the engine already (:func:`with_patterns`); numbers (a count such as 'prio', 0/1 codes) stay
    numbers for the Cox model, so the curves fold them here: 17 values made 17 curves."""
    text = values.astype(str).where(values.notna(), MISSING)
    sizes = counts.groupby(text).sum().sort_values(ascending=False, kind="stable")
    keep = set(sizes.index[:max_levels]) if len(sizes) > max_levels + 1 else set(sizes.index)
    return text.where(text.isin(keep), OTHER)


def candidate_attributes(table: ir.Table) -> list[str]:
    """Text and boolean attributes, and numbers coded with two values (0/1 flags such as Rossi's fin, wexp);
    not text that is mostly distinct (an e-mail, a second id: no segment is meaningful), by the rule segment
    profiling uses (more than max(100, half the rows) values)."""
    skip = {"user_id", "duration", "churned", "first_at", "last_at", "seen", "tenure"}
    schema = {c: t for c, t in table.schema().items() if c not in skip}
    counted = [c for c, t in schema.items() if t.is_numeric() or t.is_string()]
    if not counted:
        return [c for c, t in schema.items() if t.is_boolean()]
    distinct = table.aggregate(**{c: table[c].nunique() for c in counted}, userops_rows=table.count()).execute().iloc[0]
    binary = {c for c, t in schema.items() if t.is_numeric() and int(distinct[c]) == 2}
    identifiers = {
        c for c, t in schema.items() if t.is_string() and int(distinct[c]) > max(100, distinct["userops_rows"] // 2)
    }
    return [c for c, t in schema.items() if (t.is_string() and c not in identifiers) or t.is_boolean() or c in binary]
