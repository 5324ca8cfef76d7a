"""Finding a dataset (a folder, a connection URL, DataFrames) and reading each table's source (a
connection's table, Parquet, CSV with every id and timestamp read as text and parsed later, or a
whitespace-separated file) into a raw Ibis table. Problems finding or splitting a file are returned, not
raised, so that a load reports every table's problems at once."""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib import encodings, schema
from userops_lib import engine as engine_module
from userops_lib.errors import DataError, Problem, problem_fields
from userops_lib.manifest import MANIFEST_NAME, Manifest, TableSpec, parse_manifest, read_manifest

_CSV_TYPES = ["BIGINT", "DOUBLE", "VARCHAR"]


def read(
    con: ibis.BaseBackend, spec: TableSpec, *, local: bool
) -> tuple[ir.Table | None, ir.IntegerValue | None, list[Problem]]:
    """The raw source table of ``spec``, a row-number expression for files, and problems finding it.

    ``local``: the engine is the embedded one, where a file read in order may be stored in that order.
    """
    if spec.table is not None:
        if spec.table not in con.list_tables():
            return (
                None,
                None,
                [
                    Problem(
                        spec.name,
                        f"the connection has no table '{spec.table}'",
                        "name an existing table under 'table:'",
                        example=spec.table,
                        key="readers.no_table",
                        values=problem_fields(table=spec.table),
                    )
                ],
            )
        return con.table(spec.table), None, []
    path = spec.path
    assert path is not None  # a file table: the manifest requires 'path' or 'table'
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
                    key="readers.no_file",
                    values=problem_fields(table=spec.name, manifest=MANIFEST_NAME),
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
                    key="readers.folder_not_file",
                    values=problem_fields(table=spec.name),
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
                    key="readers.empty_file",
                )
            ],
        )
    temp = f"raw_{spec.name}"
    if spec.format != "parquet" and con.name != "duckdb":
        return (
            None,
            None,
            [
                Problem(
                    spec.name,
                    f"the {con.name} engine reads Parquet files only",
                    "convert the file to Parquet (timestamps in microseconds), or use the duckdb engine",
                    example=str(path),
                    key="readers.parquet_only",
                    values=problem_fields(engine=con.name),
                )
            ],
        )
    if spec.format == "parquet":
        raw = con.read_parquet(str(path), table_name=temp)
    else:
        # Text is read as UTF-8: a file in another encoding is transcoded once into a private copy.
        text, problem = encodings.as_utf8(path, spec.encoding, table=spec.name)
        if problem is not None:
            return None, None, [problem]
        if spec.format == "whitespace":
            return _read_whitespace(con, spec, temp, text)
        raw = _read_csv(con, spec, temp, text)
        if spec.header and not spec.names and (twice := _repeated_header(text, spec, raw.columns)):
            return None, None, [twice]
    if any(c.row_number for c in spec.columns.values()) and local:
        raw = con.create_table(f"ordered_{spec.name}", raw)
    return raw, ibis.row_number(), []


def _read_csv(con: ibis.BaseBackend, spec: TableSpec, temp: str, text: Path) -> ir.Table:
    """``text``: the file as UTF-8 (the dataset's own file, or its transcoded copy)."""
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
        "encoding": "utf-8",
    }
    if spec.delimiter is not None:
        options["delim"] = spec.delimiter
    if spec.names:
        options["names"] = list(spec.names)
    # The column names come from a quick look at the file's start; typing overrides need them.
    peek = con.read_csv(
        str(text), table_name=f"peek_{spec.name}", **{k: v for k, v in options.items() if k != "sample_size"}
    )
    as_text = {name: kind for name, kind in as_text.items() if name in peek.columns}
    if as_text:
        options["types"] = as_text
    return con.read_csv(str(text), table_name=temp, **options)


def _repeated_header(text: Path, spec: TableSpec, columns: list[str]) -> Problem | None:
    """Two header cells with the same name (the engine would rename the second ``x_1``), or None."""
    if not any(re.search(r"_\d+$", c) for c in columns):
        return None  # the engine renamed nothing
    with text.open(encoding="utf-8-sig", newline="") as handle:
        header = handle.readline()
    delimiters = [spec.delimiter] if spec.delimiter else [",", "\t", ";", "|"]
    for delimiter in delimiters:
        cells = [c.strip() for c in next(csv.reader([header], delimiter=delimiter), [])]
        if len(cells) != len(columns):
            continue
        seen: dict[str, int] = {}
        for position, cell in enumerate(cells, start=1):
            if cell in seen:
                return Problem(
                    spec.name,
                    f"two columns are named '{cell}' (columns {seen[cell]} and {position} of the header)",
                    "rename one of them in the file, or give every column a name with 'names:' "
                    f"(and 'header: true') under tables.{spec.name} in dataset.yml",
                    column=cell,
                    example=f"{spec.path.name if spec.path else spec.name}: columns {seen[cell]} and {position}",
                    key="readers.duplicate_column",
                    values=problem_fields(name=cell, first=seen[cell], second=position, table=spec.name),
                )
            seen[cell] = position
    return None


def _read_whitespace(con: ibis.BaseBackend, spec: TableSpec, temp: str, text: Path):
    names = list(spec.names or [])
    skip = 0
    if spec.header:
        with text.open(encoding="utf-8-sig") as handle:
            header = handle.readline().split()
        names = names or header
        skip = 1
    lines = con.read_csv(
        str(text),
        table_name=temp,
        columns={"line": "VARCHAR"},
        delim="\x1f",
        header=False,
        quote="",
        escape="",
        skip=skip,
        auto_detect=False,
        comment="",
        encoding="utf-8",
    )
    lines = lines.filter(lines.line.strip() != "")
    parts = lines.line.strip().re_split(r"\s+")
    nulls = list(spec.null_values)
    fields = {name: ibis.ifelse(parts[i].isin(nulls), ibis.null("string"), parts[i]) for i, name in enumerate(names)}
    table = con.create_table(f"split_{spec.name}", lines.select(__fields=parts.length(), **fields))
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
                    key="readers.field_count",
                    values=problem_fields(count=len(names)),
                )
            ],
        )
    table = table.drop("__fields")
    mapped = {c.source for c in spec.columns.values() if c.source is not None}
    table = _infer_numbers(table, [n for n in names if n not in mapped])
    return table, ibis.row_number(), []


def _infer_numbers(table: ir.Table, columns: list[str]) -> ir.Table:
    """Give text columns of a whitespace file a numeric type where every value is a number."""
    if not columns:
        return table
    metrics = {}
    for name in columns:
        value = table[name]
        metrics[f"{name}__int"] = (value.notnull() & value.try_cast("int64").isnull()).sum()
        metrics[f"{name}__float"] = (value.notnull() & value.try_cast("float64").isnull()).sum()
    counts = table.aggregate(**metrics).execute().iloc[0]
    casts = {}
    for name in columns:
        if counts[f"{name}__int"] == 0:
            casts[name] = table[name].try_cast("int64")
        elif counts[f"{name}__float"] == 0:
            casts[name] = table[name].try_cast("float64")
    return table.mutate(**casts) if casts else table


def resolve(source, *, columns, control_arm, engine=None) -> tuple[Manifest, ibis.BaseBackend, str]:
    """Where the data is: the manifest, the connection and a label for a folder, a URL or DataFrames."""
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
                    key="readers.not_a_frame",
                    values={"name": name},
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
        _refuse_missing_database(text, where="the URL")
        try:
            con = ibis.connect(text)
        except Exception as exc:  # the backends raise their own types; all mean "cannot connect"
            raise DataError.single(
                "dataset",
                f"cannot connect: {exc}",
                "check the URL and that the backend's extra is installed",
                example=text,
                key="readers.connect_url",
                values={"reason": exc},
            ) from None
        present = [t for t in schema.TABLES if t in con.list_tables()]
        if not present:
            raise DataError.single(
                "dataset",
                "the connection has no users, events or assignments table",
                "name the tables so, or write a dataset.yml with 'connection:' and 'table:' entries",
                example=", ".join(con.list_tables()[:8]),
                key="readers.no_tables",
            )
        raw: dict[str, Any] = {"connection": text, "tables": {t: {"table": t} for t in present}}
        if control_arm is not None and "assignments" in present:
            raw["tables"]["assignments"]["control_arm"] = control_arm
        return parse_manifest(raw, default_name=text), con, text
    path = Path(text)
    if path.is_file() and path.name == MANIFEST_NAME:
        path = path.parent
    if not path.is_dir():
        raise DataError.single(
            "dataset",
            "no such dataset folder",
            "give a folder holding dataset.yml, or a connection URL",
            example=text,
            key="readers.no_folder",
        )
    manifest = read_manifest(path)
    if manifest.connection:
        _refuse_missing_database(manifest.connection, where="'connection' in dataset.yml")
        try:
            con = ibis.connect(manifest.connection)
        except Exception as exc:  # see above
            raise DataError.single(
                "dataset",
                f"cannot connect: {exc}",
                "check 'connection' in dataset.yml",
                example=manifest.connection,
                key="readers.connect_manifest",
                values={"reason": exc},
            ) from None
        engine_module.prepare(con)
    else:
        con = engine_module.connect(engine)
    return manifest, con, str(path)


def _refuse_missing_database(url: str, *, where: str) -> None:
    """A DuckDB or SQLite file that does not exist is a typo, not a request for a new empty database:
    connecting would create the file (and report an empty dataset)."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("duckdb", "sqlite") or not rest or rest.startswith(":memory:"):
        return
    path = Path(rest.split("?", 1)[0])
    if not path.exists():
        raise DataError.single(
            "dataset",
            f"no database file at {path}",
            f"check {where}: the file must exist (userops reads a database, it never creates one)",
            example=url,
            key="readers.no_database",
            values={"path": path, "where": where},
        )


__all__ = ["read", "resolve"]
