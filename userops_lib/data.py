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
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib import canonical, schema
from userops_lib import engine as engine_module
from userops_lib.errors import DataError, Problem
from userops_lib.manifest import MANIFEST_NAME, Manifest, TableSpec, parse_manifest, read_manifest
from userops_lib.quality import DataQuality, SetAside, TableSummary

_CSV_TYPES = ["BIGINT", "DOUBLE", "VARCHAR"]
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
    duration_unit: str | None = None
    control_arm: str | None = None
    manifest: Manifest | None = None
    restriction: str | None = None
    _set_aside: dict[str, ir.Table] = field(default_factory=dict, repr=False)

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
        return dataclasses.replace(self, tables=tables, restriction=label, quality=quality)

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
        The "as of" time (UTC) that overrides the manifest's; default: the latest event that is not
        in the future.
    columns
        For DataFrames only: per table, the ``columns`` mapping a ``dataset.yml`` would hold.
    control_arm
        For DataFrames and URLs: the control arm's name in ``assignments``.
    engine
        For dataset folders: ``duckdb`` (embedded, the default) or ``spark`` (PySpark; Parquet files
        only). Default: ``$USEROPS_ENGINE``, else DuckDB. A URL or ``connection:`` names its own engine.
    """
    manifest, con, label = _resolve(source, columns=columns, control_arm=control_arm, engine=engine)
    snapshot = (
        as_utc(snapshot_at, "UTC")
        if snapshot_at is not None
        else (as_utc(manifest.snapshot_at, manifest.timezone) if manifest.snapshot_at else None)
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
        fix = (
            "check the file at the place the message names, or describe its format "
            f"(delimiter, header, encoding, null_values, column formats) in {MANIFEST_NAME}"
        )
        if "unicode" in str(exc).lower():
            fix = (
                f"the file is not UTF-8: say its encoding in {MANIFEST_NAME} (encoding: latin-1 or utf-16 "
                "under the table), or save it as UTF-8"
            )
        if "NANOS" in first:
            fix = (
                "Spark reads Parquet timestamps in micro- or milliseconds only: rewrite the file with "
                "microseconds (pandas: to_parquet(..., coerce_timestamps='us')) or use the duckdb engine"
            )
        raise DataError(Problem("dataset", f"the engine could not read the data: {first}", fix), source=label) from None


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
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zoneinfo.ZoneInfo(zone))
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _resolve(source, *, columns, control_arm, engine=None) -> tuple[Manifest, ibis.BaseBackend, str]:
    if isinstance(source, Mapping):
        con = engine_module.connect("duckdb")  # frames are in this process's memory already
        tables = {}
        for name, frame in source.items():
            if not isinstance(frame, pd.DataFrame):
                raise DataError.single(
                    "dataset",
                    f"'{name}' is not a pandas DataFrame",
                    "pass DataFrames keyed by users, events or assignments",
                    example=type(frame).__name__,
                )
            if name in schema.TABLES:
                con.create_table(f"source_{name}", frame)
            tables[name] = {"table": f"source_{name}", "columns": dict((columns or {}).get(name, {}))}
            if name == "assignments" and control_arm is not None:
                tables[name]["control_arm"] = control_arm
        manifest = parse_manifest({"tables": tables, "connection": "memory"}, default_name="frames")
        return manifest, con, "pandas DataFrames"
    text = str(source)
    if "://" in text:
        try:
            con = ibis.connect(text)
        except Exception as exc:  # the backends raise their own types; all mean "cannot connect"
            raise DataError.single(
                "dataset",
                f"cannot connect: {exc}",
                "check the URL and that the backend's extra is installed",
                example=text,
            ) from None
        present = [t for t in schema.TABLES if t in con.list_tables()]
        if not present:
            raise DataError.single(
                "dataset",
                "the connection has no users, events or assignments table",
                "name the tables so, or write a dataset.yml with 'connection:' and 'table:' entries",
                example=", ".join(con.list_tables()[:8]),
            )
        raw = {"connection": text, "tables": {t: {"table": t} for t in present}}
        if control_arm is not None and "assignments" in present:
            raw["tables"]["assignments"]["control_arm"] = control_arm
        return parse_manifest(raw, default_name=text), con, text
    path = Path(text)
    if path.is_file() and path.name == MANIFEST_NAME:
        path = path.parent
    if not path.is_dir():
        raise DataError.single(
            "dataset", "no such dataset folder", "give a folder holding dataset.yml, or a connection URL", example=text
        )
    manifest = read_manifest(path)
    if manifest.connection:
        try:
            con = ibis.connect(manifest.connection)
        except Exception as exc:  # see above
            raise DataError.single(
                "dataset", f"cannot connect: {exc}", "check 'connection' in dataset.yml", example=manifest.connection
            ) from None
    else:
        con = engine_module.connect(engine)
    return manifest, con, str(path)


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
            raw, row_number, read_problems = self._read(spec)
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

        problems = _table_problems(tables, self.manifest)
        if problems:
            raise DataError(problems, source=self.label)
        control = _control_arm(tables.get("assignments"), self.manifest)
        snapshot = snapshot or _default_snapshot(tables)
        kept, aside, set_aside = self._set_aside(tables, snapshot)
        quality = _summary(self.manifest, self.label, kept, rows_read, set_aside, snapshot)
        return Dataset(
            name=self.manifest.name,
            source=self.label,
            con=self.con,
            tables=kept,
            quality=quality,
            snapshot_at=snapshot,
            timezone=self.manifest.timezone,
            duration_unit=quality.duration_unit,
            control_arm=control,
            manifest=self.manifest,
            _set_aside=aside,
        )

    def _read(self, spec: TableSpec) -> tuple[ir.Table | None, ir.IntegerValue | None, list[Problem]]:
        """The raw source table, a row-number expression for files, and problems finding it."""
        if spec.table is not None:
            if spec.table not in self.con.list_tables():
                return (
                    None,
                    None,
                    [
                        Problem(
                            spec.name,
                            f"the connection has no table '{spec.table}'",
                            "name an existing table under 'table:'",
                            example=spec.table,
                        )
                    ],
                )
            return self.con.table(spec.table), None, []
        path = spec.path
        if not path.exists():
            return (
                None,
                None,
                [
                    Problem(
                        spec.name,
                        "unknown file: it does not exist",
                        f"check 'path' of tables.{spec.name} in {MANIFEST_NAME} (relative to the dataset folder)",
                        example=str(path),
                    )
                ],
            )
        if not path.is_file():
            return (
                None,
                None,
                [
                    Problem(
                        spec.name,
                        "the path is a folder, not a file",
                        f"give the file itself under 'path' of tables.{spec.name}",
                        example=str(path),
                    )
                ],
            )
        if path.stat().st_size == 0:
            return (
                None,
                None,
                [
                    Problem(
                        spec.name,
                        "the file is empty (0 bytes)",
                        "give a file with a header and at least one data row",
                        example=str(path),
                    )
                ],
            )
        temp = f"raw_{spec.name}"
        if spec.format != "parquet" and self.con.name != "duckdb":
            return (
                None,
                None,
                [
                    Problem(
                        spec.name,
                        f"the {self.con.name} engine reads Parquet files only",
                        "convert the file to Parquet (timestamps in microseconds), or use the duckdb engine",
                        example=str(path),
                    )
                ],
            )
        if spec.format == "parquet":
            raw = self.con.read_parquet(str(path), table_name=temp)
        elif spec.format == "whitespace":
            return self._read_whitespace(spec, temp)
        else:
            raw = self._read_csv(spec, temp)
        if any(c.row_number for c in spec.columns.values()) and self.local:
            raw = self.con.create_table(f"ordered_{spec.name}", raw)
        return raw, ibis.row_number(), []

    def _read_csv(self, spec: TableSpec, temp: str) -> ir.Table:
        # Columns that feed canonical timestamps and flags are read as text and parsed here, so that a
        # bad value is counted and shown instead of stopping the reader or being guessed at.
        # That holds for ids too, mapped or taken by their canonical name: a sniffed type would read '007' as 7
        # (merging customers) and 21-digit ids as rounded doubles.
        as_text = {}
        for col in schema.COLUMNS[spec.name]:
            given = spec.columns.get(col.name)
            source = given.source if given is not None else col.name
            if source is not None and col.kind != "number":
                as_text[source] = "VARCHAR"
        # Files are read as written: no comment character (DuckDB's sniffer takes '#' for one when some
        # first cells start with it, and drops those rows: Shopify's order names are '#1001'), no
        # sniffed preamble rows to skip.
        options: dict[str, object] = {
            "header": spec.header,
            "nullstr": list(spec.null_values),
            "auto_type_candidates": _CSV_TYPES,
            "sample_size": -1,
            "comment": "",
            "skip": 0,
            "encoding": spec.encoding,
        }
        if spec.delimiter is not None:
            options["delim"] = spec.delimiter
        if spec.names:
            options["names"] = list(spec.names)
        # The column names come from a quick look at the file's start; typing overrides need them.
        peek = self.con.read_csv(
            str(spec.path), table_name=f"peek_{spec.name}", **{k: v for k, v in options.items() if k != "sample_size"}
        )
        as_text = {name: kind for name, kind in as_text.items() if name in peek.columns}
        if as_text:
            options["types"] = as_text
        return self.con.read_csv(str(spec.path), table_name=temp, **options)

    def _read_whitespace(self, spec: TableSpec, temp: str):
        names = list(spec.names or [])
        skip = 0
        if spec.header:
            with spec.path.open(encoding=spec.encoding.replace("utf-8", "utf-8-sig")) as handle:
                header = handle.readline().split()
            names = names or header
            skip = 1
        lines = self.con.read_csv(
            str(spec.path),
            table_name=temp,
            columns={"line": "VARCHAR"},
            delim="\x1f",
            header=False,
            quote="",
            escape="",
            skip=skip,
            auto_detect=False,
            comment="",
            encoding=spec.encoding,
        )
        lines = lines.filter(lines.line.strip() != "")
        parts = lines.line.strip().re_split(r"\s+")
        nulls = list(spec.null_values)
        fields = {
            name: ibis.ifelse(parts[i].isin(nulls), ibis.null("string"), parts[i]) for i, name in enumerate(names)
        }
        table = self.con.create_table(f"split_{spec.name}", lines.select(__fields=parts.length(), **fields))
        ragged = table.filter(table["__fields"] != len(names))
        bad = ragged.count().execute()
        if bad:
            example = ragged.limit(1).execute().drop(columns="__fields").iloc[0].tolist()
            return (
                None,
                None,
                [
                    Problem(
                        spec.name,
                        f"lines without exactly {len(names)} fields",
                        "give 'names' for every field, or fix these lines",
                        rows=int(bad),
                        example=" ".join(str(v) for v in example),
                    )
                ],
            )
        table = table.drop("__fields")
        mapped = {c.source for c in spec.columns.values() if c.source is not None}
        table = _infer_numbers(table, [n for n in names if n not in mapped])
        return table, ibis.row_number(), []

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
            context, reasons = _reasons(name, table, users, snapshot)
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
                records.append(SetAside(name, reason, int(rows), _describe(example)))
            if counted.empty and f"canonical_{name}" not in self.stored:
                # Nothing set aside: analyses read the table as it is, without re-running the checks' join
                # on every query (they would filter nothing).
                kept[name] = table
                continue
            kept[name] = tagged.filter(tagged[_REASON].isnull()).drop(_REASON)
            aside[name] = tagged.filter(tagged[_REASON].notnull())
        return kept, aside, records


def _infer_numbers(table: ir.Table, columns: list[str]) -> ir.Table:
    """Give text columns of a whitespace file a numeric type where every value is a number."""
    if not columns:
        return table
    metrics = {}
    for name in columns:
        value = table[name]
        metrics[f"{name}__int"] = (value.notnull() & value.try_cast("int64").isnull()).cast("int64").sum()
        metrics[f"{name}__float"] = (value.notnull() & value.try_cast("float64").isnull()).cast("int64").sum()
    counts = table.aggregate(**metrics).execute().iloc[0]
    casts = {}
    for name in columns:
        if counts[f"{name}__int"] == 0:
            casts[name] = table[name].try_cast("int64")
        elif counts[f"{name}__float"] == 0:
            casts[name] = table[name].try_cast("float64")
    return table.mutate(**casts) if casts else table


def _reasons(name: str, table: ir.Table, users: ir.Table | None, snapshot: dt.datetime | None):
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


def _describe(row: pd.Series) -> str:
    """A short text for one row: its canonical columns first."""
    keys = [k for k in ("user_id", "event_at", "event", "signup_at", "campaign", "arm") if k in row.index]
    return ", ".join(f"{k}={_plain(row[k])}" for k in keys)


def _plain(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ")
    return str(value)


def _table_problems(tables: dict[str, ir.Table], manifest: Manifest) -> list[Problem]:
    """Problems that need a whole table: null and duplicate ids, duplicate assignments, control arm."""
    problems: list[Problem] = []
    users = tables.get("users")
    if users is not None:
        stats = (
            users.aggregate(
                rows=users.count(), nulls=users.user_id.isnull().cast("int64").sum(), distinct=users.user_id.nunique()
            )
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
                )
            )
    assignments = tables.get("assignments")
    if assignments is not None:
        nulls = (
            assignments.aggregate(
                **{c: assignments[c].isnull().cast("int64").sum() for c in ("user_id", "campaign", "arm")}
            )
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
                    )
                )
    return problems


def _source(manifest: Manifest, table: str, canonical_name: str) -> str:
    spec = manifest.tables[table].columns.get(canonical_name)
    return spec.source if spec is not None and spec.source else canonical_name


def _python(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def _control_arm(assignments: ir.Table | None, manifest: Manifest) -> str | None:
    if assignments is None:
        return None
    spec = manifest.tables["assignments"]
    if spec.control_arm is not None:
        return spec.control_arm
    arms = assignments.select("arm").distinct().execute()["arm"].astype(str).tolist()
    named = [a for a in arms if a.strip().lower() == "control"]
    return named[0] if len(named) == 1 else None


def _default_snapshot(tables: dict[str, ir.Table]) -> dt.datetime | None:
    """The latest event that is not in the future; without events, no snapshot.

    When every event time is midnight the data is dated, not timed: its last day is whole, so the
    snapshot is the end of that day.
    """
    events = tables.get("events")
    if events is None:
        return None
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    past = events.filter(events.event_at <= now)
    row = (
        past.aggregate(latest=past.event_at.max(), timed=(past.event_at != past.event_at.truncate("D")).any())
        .execute()
        .iloc[0]
    )
    if row["latest"] is None or pd.isna(row["latest"]):
        return None
    latest = pd.Timestamp(row["latest"]).to_pydatetime()
    return latest if bool(row["timed"]) else latest + dt.timedelta(days=1)


def _summary(manifest, label, kept, rows_read, set_aside, snapshot) -> DataQuality:
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
        row = users.aggregate(n=users.count(), churned=users.churned.cast("int64").sum()).execute().iloc[0]
        out["churned"] = (int(row["churned"] or 0), int(row["n"]))
    assignments = kept.get("assignments")
    if assignments is not None:
        control = _control_arm(assignments, manifest)
        sizes = assignments.group_by(["campaign", "arm"]).aggregate(n=assignments.count()).execute()
        campaigns = []
        for campaign in sorted(sizes.campaign.astype(str).unique()):
            arms = sizes[sizes.campaign.astype(str) == campaign].sort_values("arm")
            campaigns.append(
                (campaign, tuple((str(arm), int(n), arm == control) for arm, n in zip(arms.arm, arms.n, strict=True)))
            )
        out["campaigns"] = tuple(campaigns)
    return out
