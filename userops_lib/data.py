"""Datasets: loading a folder, a connection URL or pandas frames into validated canonical Ibis tables.

>>> from userops_lib.data import load_dataset
>>> ds = load_dataset("data/sample")            # doctest: +SKIP
>>> ds.events.group_by("event").count()         # an Ibis expression on embedded DuckDB  # doctest: +SKIP
>>> print(ds.quality)                           # what was read, kept and set aside     # doctest: +SKIP

Structural problems (a missing column, an unparseable timestamp, a negative revenue, ...) raise one
:class:`~userops_lib.errors.DataError` listing all of them. Row-level problems that can be set aside
(events of unknown users, before signup, after the snapshot) are counted in ``Dataset.quality`` and
kept, with their reason, in ``Dataset.set_aside(table)``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib import canonical, readers, schema
from userops_lib import dataset_checks as checks
from userops_lib.calendar import Calendar, check_zone
from userops_lib.errors import DataError, Problem, problem_fields
from userops_lib.manifest import MANIFEST_NAME, Manifest, TableSpec
from userops_lib.quality import DataQuality, SetAside

_REASON = "set_aside_reason"


@dataclass
class Dataset:
    """Validated canonical tables as Ibis expressions, with the data-quality summary.

    Attributes
    ----------
    tables
        ``users``, ``events`` and/or ``assignments`` as present, with canonical column names.
    snapshot_at
        The "as of" time in UTC (naive): later events are set aside, users active at it are censored.
    calendar
        The zone and week start that days, weeks and months are counted in (:mod:`userops_lib.calendar`).
    duration_unit
        Unit of ``users.duration`` (``days``, ``weeks`` or ``months``) when the data has one.
    control_arm
        Name of the control arm in ``assignments``, when stated or obvious.
    """

    name: str
    source: str
    con: ibis.BaseBackend
    tables: dict[str, ir.Table]
    quality: DataQuality
    snapshot_at: dt.datetime | None = None
    timezone: str = "UTC"
    calendar: Calendar = field(default_factory=Calendar)
    duration_unit: str | None = None
    control_arm: str | None = None
    manifest: Manifest | None = None
    restriction: str | None = None
    _set_aside: dict[str, ir.Table] = field(default_factory=dict, repr=False)
    # Reductions several analyses read, kept once computed: the active days (:mod:`userops_lib.activity`) by
    # name, per-user aggregations at several snapshots by :func:`kept_key`; each with the events it came from.
    shared: dict[str, tuple[ir.Table, ir.Table]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def currency(self) -> str:
        """How revenue is labelled (``$``, ``EUR ``...); empty when the manifest does not say."""
        return self.manifest.currency if self.manifest is not None else ""

    def restrict(self, column: str, value: object) -> Dataset:
        """The same dataset limited to users whose attribute ``column`` equals ``value``.

        The attribute is looked up in ``users`` (or, without one, in ``assignments``); every table is
        then limited to those users. Used for one report per segment (a grid run).
        """
        owner = "users" if "users" in self.tables else "assignments" if "assignments" in self.tables else None
        if owner is not None and column in self.tables[owner].columns:
            table = self.tables[owner]
        elif column in self.event_attributes():
            owner, table = "events", self.first_event_values([column])  # the value on the user's first event
        else:
            offered = [*(self.attributes(owner) if owner else []), *self.event_attributes()]
            raise DataError.single(
                owner or "users",
                f"no attribute '{column}' to restrict the dataset by",
                f"use one of: {', '.join(offered) or 'none'}",
                column=column,
                key="data.filter_no_attribute",
                values={"column": column, "offered": ", ".join(offered) or "none"},
            )
        matched = table.filter(table[column].cast("string") == str(value))
        users = int(matched.user_id.nunique().execute())
        if users == 0:
            sample = table.select(column).distinct().limit(5).execute()[column].astype(str).tolist()
            raise DataError.single(
                owner,
                f"no user has {column} = {value!r}",
                "choose a value that occurs",
                column=column,
                example=", ".join(sample),
                key="data.filter_no_user",
                values={"column": column, "value": repr(value)},
            )
        ids = matched.select("user_id")
        # The owner table is the filtered one itself; events are filtered by user (``matched`` is per user).
        tables = {
            name: (matched if name == owner != "events" else t.filter(t.user_id.isin(ids.user_id)))
            for name, t in self.tables.items()
        }
        label = f"{column} = {value}"
        quality = dataclasses.replace(
            self.quality,
            users=users,
            restriction=label,
            users_in_dataset=self.quality.users_in_dataset or self.quality.users,
        )
        return dataclasses.replace(self, tables=tables, restriction=label, quality=quality, shared={})

    def has(self, table: str) -> bool:
        return table in self.tables

    def table(self, name: str) -> ir.Table:
        """The canonical table ``name``; a :class:`DataError` if the dataset has none."""
        if name not in self.tables:
            raise DataError.single(
                name,
                f"the dataset '{self.name}' has no {name} table",
                f"add a '{name}' table to its {MANIFEST_NAME}, or choose an analysis that does not need it",
                example=", ".join(self.tables) or None,
                key="data.no_table",
                values={"dataset": self.name, "name": name, "manifest": MANIFEST_NAME},
            )
        return self.tables[name]

    @property
    def users(self) -> ir.Table | None:
        return self.tables.get("users")

    @property
    def events(self) -> ir.Table | None:
        return self.tables.get("events")

    @property
    def assignments(self) -> ir.Table | None:
        return self.tables.get("assignments")

    def event_names(self) -> list[str] | None:
        """The distinct event names, sorted (one small engine query); None when the events have no names."""
        events = self.events
        if events is None or "event" not in events.columns:
            return None
        return sorted(map(str, events.select(name=events.event.cast("string")).distinct().execute().name.dropna()))

    def check_events(self, names: list[str], parameter: str, known: list[str] | None = None) -> None:
        """A :class:`DataError` naming ``parameter`` when one of ``names`` is not an event (``known``: the names)."""
        known = known if known is not None else (self.event_names() or [])
        if unknown := [name for name in names if name not in set(known)]:
            values = {"event": unknown[0], "known": ", ".join(known[:12])}
            message, fix = f"no event named '{unknown[0]}' in the data", f"choose from: {values['known']}"
            raise DataError.single(
                "parameters", message, fix, column=parameter, example=unknown[0], key="unknown_event", values=values
            )

    def attributes(self, table: str) -> list[str]:
        """Columns of ``table`` that are not canonical: user attributes, event properties, outcomes."""
        names = set(schema.canonical_names(table))
        return [c for c in self.table(table).columns if c not in names]

    def event_attributes(self) -> list[str]:
        """Event properties that can describe a user (text or boolean), not already user attributes: a
        clickstream's country or platform. A user's value is the one on their first event that has one."""
        if self.events is None:
            return []
        taken = set(self.users.columns) if self.users is not None else set()
        schema_ = self.events.schema()
        return [
            c
            for c in self.attributes("events")
            if c not in taken and (schema_[c].is_string() or schema_[c].is_boolean())
        ]

    def first_event_values(self, columns: list[str]) -> ir.Table:
        """One row per user: ``user_id`` and, for each event property in ``columns``, its value on the user's
        first event that has one (the acquisition value: first platform, first country)."""
        events = self.table("events")
        return events.group_by("user_id").aggregate(
            **{c: events[c].argmin(events.event_at, where=events[c].notnull()) for c in columns}
        )

    def user_attributes(self, table: ir.Table, columns: list[str]) -> ir.Table:
        """``table`` (with ``user_id``) joined with the event properties among ``columns`` that it lacks."""
        offered = set(self.event_attributes())
        wanted = [c for c in dict.fromkeys(columns) if c and c not in table.columns and c in offered]
        return table.left_join(self.first_event_values(wanted), "user_id").drop("user_id_right") if wanted else table

    def set_aside(self, table: str) -> ir.Table | None:
        """The rows of ``table`` left out of the analysis, with a ``set_aside_reason`` column."""
        return self._set_aside.get(table)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, tables={list(self.tables)}, snapshot_at={self.snapshot_at})"

    def _repr_html_(self) -> str:
        return self.quality._repr_html_()


def kept_key(name: str, kind: str, moments) -> str:
    """The key of a per-user aggregation kept in ``Dataset.shared`` for several snapshots: its name, what it was
    computed with (``kind``) and its moments, in order (column suffix ``_k`` is the k-th)."""
    return "|".join([name, kind, *(pd.Timestamp(m).isoformat() for m in moments)])


def find_kept(ds: Dataset, name: str, kind: str, moments) -> tuple[ir.Table, list[int]] | None:
    """A kept aggregation of ``ds``'s current events (:func:`kept_key`) holding every one of ``moments``, and
    the position of each among its moments; None when there is none."""
    events = ds.table("events")
    wanted = [pd.Timestamp(m).isoformat() for m in moments]
    for key, (source, table) in ds.shared.items():
        kept_name, kept_kind, *kept = key.split("|") + ["", ""]
        if kept_name == name and kept_kind == kind and source is events and set(wanted) <= set(kept):
            return table, [kept.index(w) for w in wanted]
    return None


def with_revenue(events: ir.Table) -> ir.Table:
    """``events`` with a ``revenue`` column to aggregate: missing values as 0, all 0 when the data has none."""
    return events.mutate(revenue=events.revenue.fill_null(0) if "revenue" in events.columns else ibis.literal(0.0))


def load_dataset(
    source: str | Path | Mapping[str, pd.DataFrame],
    *,
    snapshot_at: dt.datetime | str | None = None,
    columns: Mapping[str, Mapping[str, object]] | None = None,
    control_arm: str | None = None,
    engine: str | None = None,
    calendar: str | Calendar | None = None,
) -> Dataset:
    """Load and validate a dataset.

    Parameters
    ----------
    source
        A dataset folder (with ``dataset.yml``, or files named ``users``/``events``/``assignments``),
        the path of a ``dataset.yml``, an Ibis connection URL (``duckdb:///warehouse.db``) whose
        tables are named ``users``/``events``/``assignments``, or a mapping of those names to pandas
        DataFrames.
    snapshot_at
        The "as of" time that overrides the manifest's: a time without an offset is local time of the
        calendar (``2025-12-31`` is the calendar's midnight); default: the latest event that is not in
        the future.
    columns
        For DataFrames only: per table, the ``columns`` mapping a ``dataset.yml`` would hold.
    control_arm
        For DataFrames and URLs: the control arm's name in ``assignments``.
    engine
        For dataset folders: ``duckdb`` (embedded, the default) or ``spark`` (PySpark; Parquet files
        only). Default: ``$USEROPS_ENGINE``, else DuckDB. A URL or ``connection:`` names its own engine.
    calendar
        The time zone (an IANA name) or :class:`~userops_lib.calendar.Calendar` to count days, weeks and
        months in, overriding the manifest's ``calendar`` (default: its ``timezone``, else UTC).
    """
    manifest, con, label = readers.resolve(source, columns=columns, control_arm=control_arm, engine=engine)
    if calendar is not None and calendar != "":
        chosen = (
            calendar
            if isinstance(calendar, Calendar)
            else dataclasses.replace(manifest.calendar, timezone=check_zone(str(calendar), where="timezone"))
        )
        manifest = dataclasses.replace(manifest, calendar=chosen)
    # A snapshot written without an offset is a wall time of the calendar the days are counted in.
    snapshot = (
        as_utc(snapshot_at, manifest.calendar.timezone)
        if snapshot_at is not None
        else (as_utc(manifest.snapshot_at, manifest.calendar.timezone) if manifest.snapshot_at else None)
    )
    try:
        return _Loader(manifest, con, label).load(snapshot)
    except Exception as exc:
        # The engine's own read errors (DuckDB's conversion errors, Spark's analysis errors) mean the
        # files are not what the manifest says; anything else (a parse error of generated SQL, say) is a
        # bug and propagates. Spark's class is matched by name: pyspark is an optional extra.
        engine_error = isinstance(
            exc, duckdb.ConversionException | duckdb.InvalidInputException | duckdb.IOException
        ) or (type(exc).__module__.startswith("pyspark") and type(exc).__name__ == "AnalysisException")
        if not engine_error:
            raise
        first = str(exc).strip().splitlines()[0]
        too_long = re.search(r"Maximum line size of (\d+) bytes exceeded\. Actual Size:\s*(\d+)", str(exc))
        if too_long:
            line = re.search(r"CSV Error on Line: (\d+)", str(exc))
            file = re.search(r"^\s*file = (.+)$", str(exc), flags=re.MULTILINE)
            raise DataError(
                Problem(
                    "dataset",
                    f"line {line.group(1) if line else '?'} is longer than the CSV reader's limit "
                    f"({int(too_long.group(1)):,} bytes; it has {int(too_long.group(2)):,})",
                    'a quote left open (") makes the rest of the file one line: close it on that line; a field '
                    "that really holds megabytes of text belongs in another file",
                    example=Path(file.group(1).strip()).name if file else None,
                    key="data.line_too_long",
                    values=problem_fields(
                        line=line.group(1) if line else "?",
                        limit=f"{int(too_long.group(1)):,}",
                        size=f"{int(too_long.group(2)):,}",
                    ),
                ),
                source=label,
            ) from None
        fix = (
            "check the file at the place the message names, or describe its format "
            f"(delimiter, header, encoding, null_values, column formats) in {MANIFEST_NAME}"
        )
        key = "data.engine_read"
        if "NANOS" in first:
            key = "data.engine_read_nanos"
            fix = (
                "Spark reads Parquet timestamps in micro- or milliseconds only: rewrite the file with "
                "microseconds (pandas: to_parquet(..., coerce_timestamps='us')) or use the duckdb engine"
            )
        raise DataError(
            Problem(
                "dataset",
                f"the engine could not read the data: {first}",
                fix,
                key=key,
                values=problem_fields(reason=first, manifest=MANIFEST_NAME),
            ),
            source=label,
        ) from None


def as_utc(value: dt.datetime | str, zone: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise DataError.single(
                "dataset",
                "snapshot_at is not a date or time",
                "write it as YYYY-MM-DD or YYYY-MM-DD HH:MM:SS",
                example=value,
                key="data.snapshot",
            ) from None
    if value.tzinfo is None:
        return Calendar(zone).to_utc(value).to_pydatetime()
    return value.astimezone(dt.UTC).replace(tzinfo=None)


class _Loader:
    """One load: read every table, check it, then set rows aside across tables."""

    def __init__(self, manifest: Manifest, con: ibis.BaseBackend, label: str):
        self.manifest = manifest
        self.con = con
        self.label = label
        # Text files and frames are parsed once into the embedded engine; nothing is written to a remote one.
        self.local = manifest.connection in (None, "memory") and con.name == "duckdb"
        self.stored: set[str] = set()

    def load(self, snapshot: dt.datetime | None) -> Dataset:
        built: dict[str, canonical.Built] = {}
        counts: dict[str, dict] = {}
        problems: list[Problem] = []
        for name, spec in self.manifest.tables.items():
            raw, row_number, read_problems = readers.read(self.con, spec, local=self.local)
            problems += read_problems
            if raw is None:
                continue
            b = canonical.build(raw, spec, timezone=self.manifest.timezone, row_number=row_number)
            problems += b.problems
            if b.problems:
                continue
            extra = {"__id_integer": b.id_is_integer} if b.id_is_integer is not None else {}
            counts[name] = canonical.count_problems(b.work, b.checks, extra)
            if counts[name]["__rows"] == 0:
                problems.append(
                    Problem(
                        name,
                        "the table is empty",
                        "give a file with at least one data row",
                        rows=0,
                        example=spec.location,
                        key="data.empty_table",
                    )
                )
                continue
            problems += canonical.check_problems(b.work, b.checks, counts[name])
            built[name] = b
        if problems:
            raise DataError(problems, source=self.label)

        integer_ids = all(
            b.canonical.user_id.type().is_integer() or bool(counts[n].get("__id_integer")) for n, b in built.items()
        )
        tables: dict[str, ir.Table] = {}
        rows_read: dict[str, int] = {}
        for name, b in built.items():
            expr = b.canonical
            expr = expr.mutate(user_id=expr.user_id.cast("int64" if integer_ids else "string"))
            tables[name] = self._materialize(f"canonical_{name}", expr, self.manifest.tables[name])
            rows_read[name] = int(counts[name]["__rows"])

        problems = checks.table_problems(tables, self.manifest)
        if problems:
            raise DataError(problems, source=self.label)
        control = checks.control_arm(tables.get("assignments"), self.manifest)
        snapshot = snapshot or checks.default_snapshot(tables, Calendar(self.manifest.timezone))
        kept, aside, set_aside = self._set_aside(tables, snapshot)
        quality = checks.summary(self.manifest, self.label, kept, rows_read, set_aside, snapshot)
        return Dataset(
            name=self.manifest.name,
            source=self.label,
            con=self.con,
            tables=kept,
            quality=quality,
            snapshot_at=snapshot,
            timezone=self.manifest.timezone,
            calendar=self.manifest.calendar,
            duration_unit=quality.duration_unit,
            control_arm=control,
            manifest=self.manifest,
            _set_aside=aside,
        )

    def _materialize(self, name: str, expr: ir.Table, spec: TableSpec) -> ir.Table:
        # Text files and DataFrames are parsed once and kept in the engine; Parquet and database
        # tables stay lazy (a columnar scan is cheap and keeps memory flat at 100M rows).
        if self.local and spec.format != "parquet":
            self.stored.add(name)
            return self.con.create_table(name, expr)
        return expr

    def _set_aside(self, tables: dict[str, ir.Table], snapshot: dt.datetime | None):
        kept: dict[str, ir.Table] = {}
        aside: dict[str, ir.Table] = {}
        records: list[SetAside] = []
        users = tables.get("users")
        for name, table in tables.items():
            context, reasons = checks.set_aside_reasons(name, table, users, snapshot)
            if not reasons:
                kept[name] = table
                continue
            cases = [(condition.fill_null(False), label) for label, condition in reasons]
            tagged = context.mutate(**{_REASON: ibis.cases(*cases, else_=ibis.null("string"))})
            tagged = tagged.select(*table.columns, _REASON)
            if f"canonical_{name}" in self.stored:
                tagged = self.con.create_table(f"checked_{name}", tagged)
            counted = tagged.group_by(_REASON).aggregate(rows=tagged.count()).execute()
            counted = counted.dropna(subset=[_REASON]).sort_values(["rows", _REASON], ascending=[False, True])
            for reason, rows in zip(counted[_REASON], counted["rows"], strict=True):
                example = tagged.filter(tagged[_REASON] == reason).drop(_REASON).limit(1).execute().iloc[0]
                records.append(SetAside(name, reason, int(rows), checks.describe_row(example)))
            if counted.empty and f"canonical_{name}" not in self.stored:
                # Nothing set aside: analyses read the table as it is, without re-running the checks' join
                # on every query (they would filter nothing).
                kept[name] = table
                continue
            kept[name] = tagged.filter(tagged[_REASON].isnull()).drop(_REASON)
            aside[name] = tagged.filter(tagged[_REASON].notnull())
        return kept, aside, records
