"""What a load checks across tables and says about them: the conditions that set rows aside (unknown
users, events before signup or after the snapshot), whole-table problems (null or repeated ids, repeated
assignments, a control arm missing from a campaign), the control arm, the default snapshot and the
data-quality summary every report shows."""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib.calendar import Calendar
from userops_lib.errors import Problem, problem_fields
from userops_lib.manifest import Manifest
from userops_lib.quality import DataQuality, TableSummary


def set_aside_reasons(name: str, table: ir.Table, users: ir.Table | None, snapshot: dt.datetime | None):
    """The table to tag and its set-aside conditions, first match wins."""
    context = table
    reasons: list[tuple[str, ir.BooleanValue]] = []
    if name == "users":
        if snapshot is not None and "signup_at" in table.columns:
            reasons.append(("signed up after the snapshot", table.signup_at > snapshot))
        return context, reasons
    if users is not None:
        lookup = users.select(
            "user_id",
            __known=ibis.literal(True),
            __signup=users.signup_at if "signup_at" in users.columns else ibis.null("timestamp"),
        )
        context = table.left_join(lookup, "user_id")
    if name == "events":
        reasons.append(("missing user_id", context.user_id.isnull()))
        reasons.append(("missing event_at", context.event_at.isnull()))
    if users is not None:
        reasons.append(("user not in the users table", context["__known"].isnull()))
    if name == "events":
        if snapshot is not None:
            reasons.append(("after the snapshot", context.event_at > snapshot))
        if users is not None:
            reasons.append(("before the user's signup", context.event_at < context["__signup"]))
    return context, reasons


def describe_row(row: pd.Series) -> str:
    """A short text for one row: its canonical columns first."""
    keys = [k for k in ("user_id", "event_at", "event", "signup_at", "campaign", "arm") if k in row.index]
    return ", ".join(f"{k}={_plain(row[k])}" for k in keys)


def _plain(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ")
    return str(value)


def table_problems(tables: dict[str, ir.Table], manifest: Manifest) -> list[Problem]:
    """Problems that need a whole table: null and duplicate ids, duplicate assignments, control arm."""
    problems: list[Problem] = []
    users = tables.get("users")
    if users is not None:
        stats = (
            users.aggregate(rows=users.count(), nulls=users.user_id.isnull().sum(), distinct=users.user_id.nunique())
            .execute()
            .iloc[0]
        )
        if stats["nulls"]:
            problems.append(
                Problem(
                    "users",
                    "user_id is null",
                    "every user needs an id: fill or remove these rows",
                    column=_source(manifest, "users", "user_id"),
                    rows=int(stats["nulls"]),
                    key="checks.user_id_null",
                )
            )
        duplicates = int(stats["rows"] - stats["nulls"] - stats["distinct"])
        if duplicates:
            ids = users.filter(users.user_id.notnull())
            dup = ids.group_by("user_id").aggregate(n=ids.count())
            example = dup.filter(dup.n > 1).order_by("user_id").limit(1).execute()["user_id"].iloc[0]
            problems.append(
                Problem(
                    "users",
                    "user_id is not unique (rows beyond the first of each id)",
                    "keep one row per user: deduplicate the users file",
                    column=_source(manifest, "users", "user_id"),
                    rows=duplicates,
                    example=_python(example),
                    key="checks.user_id_duplicate",
                )
            )
    assignments = tables.get("assignments")
    if assignments is not None:
        nulls = (
            assignments.aggregate(**{c: assignments[c].isnull().sum() for c in ("user_id", "campaign", "arm")})
            .execute()
            .iloc[0]
        )
        for column_name, count in nulls.items():
            if count:
                problems.append(
                    Problem(
                        "assignments",
                        f"{column_name} is null",
                        "every assignment needs a user, a campaign and an arm",
                        column=_source(manifest, "assignments", column_name),
                        rows=int(count),
                        key="checks.assignment_null",
                        values=problem_fields(column=column_name),
                    )
                )
        pairs = assignments.group_by(["campaign", "user_id"]).aggregate(n=assignments.count())
        pairs = pairs.filter(pairs.n > 1)
        repeated = pairs.aggregate(rows=(pairs.n - 1).sum(), users=pairs.count()).execute().iloc[0]
        if repeated["users"]:
            example = pairs.order_by(["campaign", "user_id"]).limit(1).execute().iloc[0]
            problems.append(
                Problem(
                    "assignments",
                    "users assigned more than once to the same campaign",
                    "keep one assignment per user and campaign (the first exposure)",
                    column=_source(manifest, "assignments", "user_id"),
                    rows=int(repeated["rows"]),
                    example=f"campaign={example['campaign']}, user_id={example['user_id']}",
                    key="checks.assigned_twice",
                )
            )
        spec = manifest.tables.get("assignments")
        if spec is not None and spec.control_arm is not None and not problems:
            arms = (
                assignments.group_by("campaign")
                .aggregate(has_control=(assignments.arm == spec.control_arm).any())
                .execute()
            )
            missing = arms[~arms["has_control"].astype(bool)]
            if len(missing):
                problems.append(
                    Problem(
                        "assignments",
                        f"control arm '{spec.control_arm}' does not occur in every campaign",
                        "set control_arm to the arm name the data uses for the control group",
                        column=_source(manifest, "assignments", "arm"),
                        rows=len(missing),
                        example=str(missing["campaign"].iloc[0]),
                        key="checks.control_missing",
                        values=problem_fields(arm=spec.control_arm),
                    )
                )
    return problems


def _source(manifest: Manifest, table: str, canonical_name: str) -> str:
    spec = manifest.tables[table].columns.get(canonical_name)
    return spec.source if spec is not None and spec.source else canonical_name


def _python(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def control_arm(assignments: ir.Table | None, manifest: Manifest) -> str | None:
    if assignments is None:
        return None
    spec = manifest.tables["assignments"]
    if spec.control_arm is not None:
        return spec.control_arm
    arms = assignments.select("arm").distinct().execute()["arm"].astype(str).tolist()
    named = [a for a in arms if a.strip().lower() == "control"]
    return named[0] if len(named) == 1 else None


def default_snapshot(tables: dict[str, ir.Table], written_in: Calendar) -> dt.datetime | None:
    """The latest event that is not in the future; without events, no snapshot.

    When every event time is midnight in the zone the file's times are written in (``written_in``) the
    data is dated, not timed: its last day is whole, so the snapshot is the end of that day (the next
    local midnight, which may be 23 or 25 hours later).
    """
    events = tables.get("events")
    if events is None:
        return None
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    past = events.filter(events.event_at <= now)
    row = (
        past.aggregate(
            latest=past.event_at.max(), timed=(written_in.local(past.event_at) != written_in.day(past.event_at)).any()
        )
        .execute()
        .iloc[0]
    )
    if row["latest"] is None or pd.isna(row["latest"]):
        return None
    latest = pd.Timestamp(row["latest"])
    if bool(row["timed"]):
        return latest.to_pydatetime()
    return written_in.to_utc(written_in.to_local(latest) + pd.Timedelta(days=1)).to_pydatetime()


def summary(manifest, label, kept, rows_read, set_aside, snapshot) -> DataQuality:
    set_aside_rows = {name: 0 for name in kept}
    for item in set_aside:
        set_aside_rows[item.table] += item.rows
    summaries = tuple(
        TableSummary(
            name,
            manifest.tables[name].location,
            rows_read[name],
            rows_read[name] - set_aside_rows[name],
            tuple(kept[name].columns),
        )
        for name in kept
    )
    first = last = None
    for name, column_name in (("events", "event_at"), ("users", "signup_at"), ("assignments", "assigned_at")):
        if name in kept and column_name in kept[name].columns:
            bounds = (
                kept[name]
                .aggregate(lo=kept[name][column_name].min(), hi=kept[name][column_name].max())
                .execute()
                .iloc[0]
            )
            if not pd.isna(bounds["lo"]):
                first, last = pd.Timestamp(bounds["lo"]).to_pydatetime(), pd.Timestamp(bounds["hi"]).to_pydatetime()
                break
    owner = next(t for t in ("users", "events", "assignments") if t in kept)
    users = int(kept[owner].user_id.nunique().execute())
    unit = None
    if "users" in manifest.tables and "duration" in manifest.tables["users"].columns:
        unit = manifest.tables["users"].columns["duration"].unit
    return DataQuality(
        dataset=manifest.name,
        source=label,
        timezone=manifest.timezone,
        calendar=manifest.calendar,
        snapshot_at=snapshot,
        tables=summaries,
        users=users,
        first_event_at=first,
        last_event_at=last,
        set_aside=tuple(set_aside),
        duration_unit=unit,
        **_facts(kept, manifest),
    )


def _facts(kept: dict[str, ir.Table], manifest: Manifest) -> dict:
    """What the data holds, as numbers (the report words them): churned of all users, campaign arm sizes."""
    out: dict = {}
    users = kept.get("users")
    if users is not None and "churned" in users.columns:
        row = users.aggregate(n=users.count(), churned=users.churned.sum()).execute().iloc[0]
        out["churned"] = (int(row["churned"] or 0), int(row["n"]))
    assignments = kept.get("assignments")
    if assignments is not None:
        control = control_arm(assignments, manifest)
        sizes = assignments.group_by(["campaign", "arm"]).aggregate(n=assignments.count()).execute()
        campaigns = []
        for campaign in sorted(sizes.campaign.astype(str).unique()):
            arms = sizes[sizes.campaign.astype(str) == campaign].sort_values("arm")
            campaigns.append(
                (campaign, tuple((str(arm), int(n), arm == control) for arm, n in zip(arms.arm, arms.n, strict=True)))
            )
        out["campaigns"] = tuple(campaigns)
    return out


__all__ = [
    "control_arm",
    "default_snapshot",
    "describe_row",
    "set_aside_reasons",
    "summary",
    "table_problems",
]
