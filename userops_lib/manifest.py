"""Reading ``dataset.yml``: how a folder of files (or a database) maps onto the canonical tables.

A manifest names, for each canonical table, where its rows are and which source column feeds each
canonical column. Files are never edited: the manifest describes them as they are. The format is
documented in the README ("Dataset format"); in brief::

    name: telco_churn
    timezone: UTC                 # zone of timestamps written without an offset
    calendar: {timezone: Asia/Shanghai, week_start: monday}  # days, weeks, months (default: timezone)
    snapshot_at: 2024-12-31       # optional "as of" time; default: the latest event not in the future
    currency: "$"                 # optional: how revenue is labelled
    tables:
      users:
        path: telco_churn.csv
        null_values: ["", " "]
        columns:                  # canonical name: source column, or a mapping with options
          user_id: customerID
          duration: {column: tenure, unit: months}
          churned: {column: Churn, true_values: ["Yes"], false_values: ["No"]}

A folder without ``dataset.yml`` is read by convention: files named ``users``, ``events`` and
``assignments`` (``.csv``, ``.parquet``) whose columns already carry canonical names.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from userops_lib import schema, schemas, strict_yaml
from userops_lib.calendar import Calendar, check_zone
from userops_lib.encodings import codec_name
from userops_lib.errors import DataError, Problem, problem_fields

MANIFEST_NAME = "dataset.yml"
FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
FILE_FORMATS = schemas.FILE_FORMATS
EPOCH_FORMATS = ("epoch_seconds", "epoch_milliseconds")


@dataclass(frozen=True)
class ColumnSpec:
    """Where one canonical column comes from.

    Exactly one of ``source`` (a source column), ``row_number`` (the 1-based row number in file
    order, for files without an id) or ``value`` (a constant, e.g. a campaign name) is set.
    """

    canonical: str
    source: str | None = None
    format: str | None = None
    unit: str | None = None
    true_values: tuple | None = None
    false_values: tuple | None = None
    row_number: bool = False
    value: Any = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    path: Path | None = None
    table: str | None = None
    format: str | None = None
    delimiter: str | None = None
    header: bool = True
    names: tuple[str, ...] | None = None
    null_values: tuple[str, ...] = ("",)
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    attributes: tuple[str, ...] | None = None
    control_arm: str | None = None
    outcomes: tuple[str, ...] = ()
    encoding: str = "utf-8"

    @property
    def location(self) -> str:
        return str(self.path) if self.path is not None else f"table {self.table}"


@dataclass(frozen=True)
class Manifest:
    name: str
    root: Path | None
    tables: dict[str, TableSpec]
    timezone: str = "UTC"
    snapshot_at: dt.datetime | None = None
    calendar: Calendar = field(default_factory=Calendar)
    connection: str | None = None
    description: str = ""
    currency: str = ""


def _fail(
    message: str, fix: str, *, key: str, column: str | None = None, example: object = None, **values: object
) -> DataError:
    """A dataset.yml problem: ``message`` and ``fix`` in English, ``error.<key>`` in the catalogue."""
    return DataError(
        Problem("dataset", message, fix, column=column, example=example, key=key, values=tuple(values.items()))
    )


def _as_datetime(value: object, what: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise _fail(
            f"{what} is not a date or time",
            "write it as YYYY-MM-DD or YYYY-MM-DD HH:MM:SS",
            example=value,
            key="manifest.not_a_time",
            what=what,
        ) from None


def _column_spec(table: str, canonical: str, raw: Any) -> ColumnSpec:
    col = schema.column(table, canonical)
    if col is None:
        raise _fail(
            f"'{canonical}' is not a canonical column of table '{table}'",
            f"map source columns onto {', '.join(schema.canonical_names(table))}; other columns are kept as they are",
            column=canonical,
            key="manifest.not_canonical",
            canonical=canonical,
            table=table,
            names=", ".join(schema.canonical_names(table)),
        )
    if isinstance(raw, str):
        if col.kind == "duration":
            raise _fail(
                f"the duration in table '{table}' needs its unit",
                f"write {{column: {raw}, unit: ...}} with one of {', '.join(schema.DURATION_UNITS)}",
                column=canonical,
                example=raw,
                key="manifest.duration_unit",
                table=table,
                source=raw,
                units=", ".join(schema.DURATION_UNITS),
            )
        return ColumnSpec(canonical, source=raw)
    sources = [k for k in ("column", "row_number", "value") if k in raw and raw[k] not in (None, False)]
    if len(sources) != 1:
        raise _fail(
            f"'{canonical}' in table '{table}' needs exactly one of column, row_number or value",
            "give the source column with 'column: NAME'",
            column=canonical,
            example=raw,
            key="manifest.one_source",
            canonical=canonical,
            table=table,
        )
    if raw.get("row_number") and col.kind != "id":
        raise _fail(
            "row_number can only make an id",
            "use row_number for user_id only",
            column=canonical,
            key="manifest.row_number_id",
        )
    unit = raw.get("unit")
    if col.kind == "duration":
        if unit not in schema.DURATION_UNITS:
            raise _fail(
                f"the duration in table '{table}' needs its unit",
                f"add 'unit:' with one of {', '.join(schema.DURATION_UNITS)}",
                column=canonical,
                example=unit,
                key="manifest.duration_unit_missing",
                table=table,
                units=", ".join(schema.DURATION_UNITS),
            )
    elif unit is not None:
        raise _fail(
            f"'unit' applies to durations only, not '{canonical}'",
            "remove 'unit'",
            column=canonical,
            key="manifest.unit_not_duration",
            canonical=canonical,
        )
    fmt = raw.get("format")
    if fmt is not None and col.kind != "timestamp":
        raise _fail(
            f"'format' applies to timestamps only, not '{canonical}'",
            "remove 'format'",
            column=canonical,
            key="manifest.format_not_timestamp",
            canonical=canonical,
        )
    if fmt is not None and fmt not in EPOCH_FORMATS and "%" not in str(fmt):
        raise _fail(
            f"timestamp format of '{canonical}' has no % code",
            f"use strptime codes such as '%Y-%m-%d %H:%M', or one of {', '.join(EPOCH_FORMATS)}",
            column=canonical,
            example=fmt,
            key="manifest.format_no_code",
            canonical=canonical,
            epochs=", ".join(EPOCH_FORMATS),
        )

    def values(key: str) -> tuple | None:
        given = raw.get(key)
        if given is None:
            return None
        if col.kind != "flag":
            raise _fail(
                f"'{key}' applies to flags only, not '{canonical}'",
                f"remove '{key}'",
                column=canonical,
                key="manifest.values_not_flag",
                option=key,
                canonical=canonical,
            )
        return tuple(given) if isinstance(given, (list, tuple)) else (given,)

    return ColumnSpec(
        canonical,
        source=raw.get("column"),
        format=fmt,
        unit=unit,
        true_values=values("true_values"),
        false_values=values("false_values"),
        row_number=bool(raw.get("row_number")),
        value=raw.get("value"),
    )


def _table_spec(name: str, raw: Any, root: Path | None, has_connection: bool) -> TableSpec:
    path = raw.get("path")
    table = raw.get("table")
    if (path is None) == (table is None):
        raise _fail(
            f"table '{name}' needs exactly one of 'path' (a file) or 'table' (a table in the connection)",
            "add 'path: FILE' relative to the dataset folder",
            example=raw,
            key="manifest.path_or_table",
            name=name,
        )
    if table is not None and not has_connection:
        raise _fail(
            f"table '{name}' names a database table but the dataset has no 'connection'",
            "add 'connection: URL' at the top of dataset.yml, or use 'path: FILE'",
            example=table,
            key="manifest.no_connection",
            name=name,
        )
    resolved = None
    fmt = raw.get("format")
    if path is not None:
        resolved = Path(path) if root is None or Path(path).is_absolute() else root / path
        if root is not None and not raw.get("allow_outside", False):
            _inside(name, path, resolved, root)
        if fmt is None:
            fmt = FORMATS.get(resolved.suffix.lower())
            if fmt is None:
                raise _fail(
                    f"cannot tell the format of '{path}' from its name",
                    f"add 'format:' with one of {', '.join(FILE_FORMATS)}",
                    example=path,
                    key="manifest.file_format",
                    path=path,
                    formats=", ".join(FILE_FORMATS),
                )
    if fmt == "csv" and resolved is not None and resolved.suffix.lower() == ".tsv" and "delimiter" not in raw:
        raw = {**raw, "delimiter": "\t"}
    names = raw.get("names")
    header = bool(raw.get("header", names is None))
    if fmt == "whitespace" and not header and not names:
        raise _fail(
            f"the whitespace-separated file of table '{name}' has no header and no column names",
            "add 'names: [col1, col2, ...]' in file order",
            example=path,
            key="manifest.whitespace_names",
            name=name,
        )
    columns_raw = raw.get("columns") or {}
    columns = {canonical: _column_spec(name, canonical, spec) for canonical, spec in columns_raw.items()}
    nulls = raw.get("null_values", [""])
    attributes = raw.get("attributes")
    control = raw.get("control_arm")
    if control is not None and name != "assignments":
        raise _fail(
            "'control_arm' belongs to the assignments table",
            "move it under tables.assignments",
            key="manifest.control_arm_place",
        )
    outcomes = raw.get("outcomes") or []
    if outcomes and name != "assignments":
        raise _fail(
            "'outcomes' belongs to the assignments table",
            "move it under tables.assignments",
            key="manifest.outcomes_place",
        )
    encoding = str(raw.get("encoding", "utf-8"))
    if codec_name(encoding) is None:
        raise _fail(
            f"unknown encoding '{encoding}' for table '{name}'",
            "give a Python codec name: utf-8, utf-8-sig, gb18030 (or gbk) for Excel exports in Chinese, big5, "
            "shift_jis, euc-kr, utf-16, latin-1, cp1252, ...",
            column="encoding",
            example=encoding,
            key="manifest.encoding",
            encoding=encoding,
            name=name,
        )
    return TableSpec(
        name=name,
        path=resolved,
        table=table,
        format=fmt,
        delimiter=raw.get("delimiter"),
        header=header,
        names=tuple(names) if names else None,
        null_values=tuple(str(v) for v in (nulls if isinstance(nulls, list) else [nulls])),
        columns=columns,
        attributes=tuple(attributes) if attributes is not None else None,
        control_arm=None if control is None else str(control),
        outcomes=tuple(str(o) for o in (outcomes if isinstance(outcomes, list) else [outcomes])),
        encoding=encoding,
    )


def _inside(name: str, given: str, resolved: Path, root: Path) -> None:
    """Refuse a table file outside the dataset folder (``../x``, an absolute path, a symlink leading out):
    a dataset folder is what is fingerprinted, copied and shared, and a manifest from elsewhere must
    not make userops read arbitrary files. ``allow_outside: true`` lifts it."""
    if resolved.resolve().is_relative_to(root.resolve()):
        return
    raise _fail(
        f"the file of table '{name}' lies outside the dataset folder",
        f"move it into {root} (or a subfolder), or add 'allow_outside: true' under tables.{name} if you mean it",
        column=f"tables.{name}.path",
        example=given,
        key="manifest.outside",
        name=name,
        root=root,
    )


def parse_manifest(raw: Any, *, root: Path | None = None, default_name: str = "dataset") -> Manifest:
    """Check a manifest (already loaded from YAML) and return it as a :class:`Manifest`.

    Its shape (keys, types, allowed values) is checked against :data:`schemas.MANIFEST` first; the code
    below checks only what a schema cannot say (one of path/table, a column's options for its kind).
    """
    if not isinstance(raw, dict):
        raise _fail(
            "dataset.yml must be a mapping with a 'tables' key",
            "see the README, 'Dataset format'",
            example=raw,
            key="manifest.not_a_mapping",
        )
    found = schemas.problems(raw, schemas.MANIFEST, what=MANIFEST_NAME, section="Dataset format")
    if found:
        raise DataError(found, source=str(root) if root is not None else None)
    tz = str(raw.get("timezone", "UTC"))
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _fail(
            "unknown time zone",
            "use an IANA name such as 'UTC' or 'Europe/Berlin'",
            example=tz,
            key="manifest.time_zone",
        ) from None
    given = raw.get("calendar") or {}
    zone = check_zone(str(given.get("timezone", tz)), where="calendar.timezone")
    calendar = Calendar(timezone=zone, week_start=str(given.get("week_start", "monday")))
    tables_raw = raw["tables"]
    connection = raw.get("connection")
    tables = {name: _table_spec(name, spec, root, connection is not None) for name, spec in tables_raw.items()}
    snapshot = raw.get("snapshot_at")
    return Manifest(
        name=str(raw.get("name", default_name)),
        root=root,
        tables=tables,
        timezone=tz,
        calendar=calendar,
        snapshot_at=None if snapshot is None else _as_datetime(snapshot, "snapshot_at"),
        connection=None if connection is None else str(connection),
        description=str(raw.get("description", "")),
        currency=str(raw.get("currency", "")),
    )


def read_manifest(folder: Path) -> Manifest:
    """The manifest of a dataset folder: its ``dataset.yml``, or the naming convention without one."""
    path = folder / MANIFEST_NAME
    if path.exists():
        raw = strict_yaml.load(path, what=MANIFEST_NAME)
        return parse_manifest(raw, root=folder, default_name=folder.name)
    return conventional_manifest(folder)


def conventional_manifest(folder: Path) -> Manifest:
    """A manifest for a folder of ``users``/``events``/``assignments`` files with canonical columns."""
    tables: dict[str, TableSpec] = {}
    problems = []
    for file in sorted(folder.iterdir()):
        if file.name.startswith(".") or file.suffix.lower() in {".md", ".yml", ".yaml", ".json"}:
            continue
        if file.is_dir() and file.suffix.lower() not in FORMATS:
            continue
        if file.stem in schema.TABLES and file.suffix.lower() in FORMATS:
            if not file.resolve().is_relative_to(folder.resolve()):
                # A link leading out of the folder: refused before a byte of the other file is read.
                problems.append(
                    Problem(
                        "dataset",
                        f"the file '{file.name}' is a link to a file outside the dataset folder",
                        "copy the file into the folder, or write a dataset.yml with 'allow_outside: true' "
                        "under the table if you mean it",
                        example=file.name,
                        key="manifest.outside_link",
                        values=problem_fields(file=file.name),
                    )
                )
                continue
            if file.stem in tables:
                problems.append(
                    Problem(
                        "dataset",
                        f"two files for table '{file.stem}'",
                        "keep one of them",
                        example=file.name,
                        key="manifest.two_files",
                        values=problem_fields(table=file.stem),
                    )
                )
                continue
            tables[file.stem] = TableSpec(name=file.stem, path=file, format=FORMATS[file.suffix.lower()])
        else:
            problems.append(
                Problem(
                    "dataset",
                    f"unknown file '{file.name}' in a folder without {MANIFEST_NAME}",
                    f"name data files users, events or assignments (.csv or .parquet), "
                    f"or describe them in {MANIFEST_NAME}",
                    example=file.name,
                    key="manifest.unknown_file",
                    values=problem_fields(file=file.name, manifest=MANIFEST_NAME),
                )
            )
    if problems:
        raise DataError(problems, source=str(folder))
    if not tables:
        raise _fail(
            f"no {MANIFEST_NAME} and no users, events or assignments file",
            f"add {MANIFEST_NAME} (see the README, 'Dataset format')",
            example=str(folder),
            key="manifest.no_files",
            manifest=MANIFEST_NAME,
        )
    return Manifest(name=folder.name, root=folder, tables=tables)
