"""Turning one source table into its canonical form, with a check for every way a value can be wrong.

:func:`build` returns the canonical expression and the checks as boolean expressions; the caller
counts them all in one aggregate pass (:func:`count_problems`) and only then looks up one example
value per failing check. Nothing here pulls rows into pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

from userops_lib import engine, schema
from userops_lib.errors import Problem, problem_fields
from userops_lib.manifest import EPOCH_FORMATS, ColumnSpec, TableSpec

# An explicit offset ends a time of day ("2025-01-02 08:00+08:00", "...T00:00:00Z"); the "-02" that ends a
# date alone ("2025-01-02") is its day, not an offset.
_OFFSET = r"\d:\d{2}(:\d{2}(\.\d*)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$"
_CANONICAL_INTEGER = r"^(0|-?[1-9][0-9]{0,17})$"
_TRUE_WORDS = ("true", "t", "yes", "y", "1")
_FALSE_WORDS = ("false", "f", "no", "n", "0")


@dataclass(frozen=True)
class Check:
    """A condition that marks bad rows, and how to tell the user about them."""

    table: str
    column: str
    message: str
    fix: str
    bad: ir.BooleanValue
    example: ir.Value
    key: str | None = None  # the catalogue key of message and fix (see errors.Problem)
    values: tuple[tuple[str, object], ...] = ()


@dataclass
class Built:
    """A source table mapped onto canonical names.

    ``work`` holds the source columns and the canonical ones (prefixed); ``canonical`` selects the
    canonical table from it. ``problems`` are structural problems found without reading rows.
    """

    work: ir.Table
    canonical_columns: dict[str, str]
    checks: list[Check] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    id_is_integer: ir.BooleanValue | None = None

    @property
    def canonical(self) -> ir.Table:
        return self.work.select(**{name: self.work[col] for name, col in self.canonical_columns.items()})


def _prefixed(name: str) -> str:
    return f"__userops_{name}"


def _source_label(spec: ColumnSpec) -> str:
    return spec.source if spec.source is not None else spec.canonical


def _timestamp(value: ir.Value, spec: ColumnSpec, timezone: str) -> tuple[ir.Value | None, str | None]:
    """Parse a source value into a naive UTC timestamp, or say why the type cannot be one."""
    vtype = value.type()
    fmt = spec.format

    def from_wall_time(ts: ir.Value) -> ir.Value:
        if timezone == "UTC":
            return ts
        return engine.wall_to_utc(timezone, ts)

    if fmt in EPOCH_FORMATS:
        number = value.cast("float64") if vtype.is_numeric() else value.cast("string").strip().try_cast("float64")
        # Whole microseconds after the epoch, added as an interval: a float of seconds keeps its sub-second
        # digits (1704067200.5 is half past), and engines' from-unix functions take whole seconds only.
        scale = 1_000 if fmt == "epoch_milliseconds" else 1_000_000
        finite = number.notnull() & ~number.isinf() & ~number.isnan() & (number.abs() < 1e17 / scale)
        micros = ibis.ifelse(finite, (number * scale).round().cast("int64"), ibis.null("int64"))
        return ibis.timestamp("1970-01-01 00:00:00") + micros.as_interval("us"), None
    if vtype.is_timestamp():
        if vtype.timezone is not None:
            return engine.instant_to_utc(value), None
        return from_wall_time(value), None
    if vtype.is_date():
        return from_wall_time(value.cast(engine.TIMESTAMP)), None
    if vtype.is_string() or (vtype.is_integer() and fmt is not None):
        text = value.cast("string").strip()
        if fmt is not None:
            return from_wall_time(engine.try_strptime(text, fmt)), None
        with_offset = engine.instant_to_utc(text.try_cast(engine.TIMESTAMP_UTC))
        wall = from_wall_time(text.try_cast(engine.TIMESTAMP))
        return ibis.ifelse(text.re_search(_OFFSET), with_offset, wall), None
    return None, f"holds {vtype} values, not timestamps"


def _member(text: ir.StringValue, values: tuple[str, ...] | list[str]) -> ir.BooleanValue:
    """``text IN values`` (NULL for NULL) inside a CASE: Spark's parser misreads ``x IN (...) IS NOT NULL``."""
    return ibis.cases((text.isnull(), ibis.null("boolean")), else_=text.isin(values))


def _flag(value: ir.Value, spec: ColumnSpec) -> tuple[ir.Value, ir.BooleanValue | None]:
    """The boolean column and the condition marking values that are neither true nor false (if any can be)."""
    if spec.true_values is not None:
        text = value.cast("string").strip()
        trues = [str(v) for v in spec.true_values]
        flag = _member(text, trues)
        if spec.false_values is not None:
            recognised = text.isin(trues + [str(v) for v in spec.false_values])
            return flag, value.notnull() & ~recognised
        return flag, None
    if value.type().is_boolean():
        return value, None
    text = value.cast("string").strip().lower()
    flag = _member(text, _TRUE_WORDS)
    return flag, value.notnull() & ~text.isin(_TRUE_WORDS + _FALSE_WORDS)


# Full-width digits, point and signs (what a Chinese or Japanese IME types: １２３．４５) are read as the
# ASCII ones; thousands separators, ASCII or full-width (1,234 or １，２３４), are refused, as before.
_FULL_WIDTH, _ASCII = "０１２３４５６７８９．－＋", "0123456789.-+"


def _number(value: ir.Value) -> ir.Value:
    if value.type().is_numeric():
        return value.cast("float64")
    if value.type().is_boolean():
        return ibis.literal(None, type="float64")
    return value.cast("string").strip().translate(_FULL_WIDTH, _ASCII).try_cast("float64")


def build(raw: ir.Table, spec: TableSpec, *, timezone: str, row_number: ir.IntegerValue | None = None) -> Built:
    """Map ``raw`` onto the canonical columns of ``spec.name`` and list the checks to run on it."""
    table = spec.name
    available = list(raw.columns)
    problems: list[Problem] = []
    specs: dict[str, ColumnSpec] = {}
    for col in schema.COLUMNS[table]:
        given = spec.columns.get(col.name)
        if given is None and col.name in available:
            given = ColumnSpec(col.name, source=col.name)
        if given is None:
            if col.required:
                one_column = len(available) == 1 and any(sep in available[0] for sep in ",;\t|")
                problems.append(
                    Problem(
                        table,
                        f"no column maps to the required canonical column '{col.name}'"
                        + (
                            ": the file was read as a single column, so its lines do not all have the same number "
                            "of fields (or the delimiter is not the one detected)"
                            if one_column
                            else ""
                        ),
                        "fix the lines with extra or missing fields, or give 'delimiter:' in dataset.yml"
                        if one_column
                        else f"map it in dataset.yml: tables.{table}.columns.{col.name}: <source column>",
                        column=col.name,
                        example=_columns_preview(available),
                        key="canonical.one_column" if one_column else "canonical.no_required_column",
                        values=problem_fields(canonical=col.name, table=table),
                    )
                )
            continue
        if given.source is not None and given.source not in available:
            problems.append(
                Problem(
                    table,
                    f"column '{given.source}' (for canonical '{col.name}') is not in the source",
                    f"use one of the source's columns in dataset.yml (the source has {len(available)})",
                    column=given.source,
                    example=_columns_preview(available),
                    key="canonical.no_source_column",
                    values=problem_fields(column=given.source, canonical=col.name, count=len(available)),
                )
            )
            continue
        specs[col.name] = given

    for name in spec.outcomes:
        if name not in available:
            problems.append(
                Problem(
                    table,
                    f"outcome column '{name}' is not in the source",
                    "list only columns the source has under 'outcomes'",
                    column=name,
                    example=_columns_preview(available),
                    key="canonical.no_outcome_column",
                    values=problem_fields(column=name),
                )
            )
    used = {s.source for s in specs.values() if s.source is not None}
    if spec.attributes is not None:
        missing = [a for a in spec.attributes if a not in available]
        for name in missing:
            problems.append(
                Problem(
                    table,
                    f"attribute column '{name}' is not in the source",
                    "list only columns the source has under 'attributes'",
                    column=name,
                    example=_columns_preview(available),
                    key="canonical.no_attribute_column",
                    values=problem_fields(column=name),
                )
            )
        extras = [a for a in spec.attributes if a in available and a not in used]
    else:
        extras = [c for c in available if c not in used]
    for name in extras:
        if schema.column(table, name) is not None:
            problems.append(
                Problem(
                    table,
                    f"source column '{name}' has a canonical name but another column is mapped onto it",
                    f"list the columns to keep under tables.{table}.attributes, leaving '{name}' out",
                    column=name,
                    key="canonical.name_taken",
                    values=problem_fields(column=name, table=table),
                )
            )

    mutations: dict[str, ir.Value] = {}
    checks: list[Check] = []
    id_is_integer = None
    for name, cspec in specs.items():
        col = schema.column(table, name)  # type: ignore[assignment]  # narrowed just below
        assert col is not None  # the manifest holds canonical names only
        label = _source_label(cspec)
        if cspec.row_number:
            if row_number is None:
                problems.append(
                    Problem(
                        table,
                        "row_number needs a file source",
                        "map user_id to a column",
                        column=name,
                        key="canonical.row_number",
                    )
                )
                continue
            mutations[_prefixed(name)] = (row_number + 1).cast("int64")
            continue
        if cspec.value is not None:
            literal_type = "string" if col.kind in ("id", "text") else None
            mutations[_prefixed(name)] = ibis.literal(cspec.value, type=literal_type)
            continue
        value = raw[cspec.source]
        if col.kind == "id":
            if value.type().is_integer():
                mutations[_prefixed(name)] = value.cast("int64")
            else:
                text = value.cast("string").strip()
                mutations[_prefixed(name)] = ibis.ifelse(text == "", ibis.null("string"), text)
                # Only canonical integer spellings make integer ids: '007', '7' and '0007' are three
                # customers in a text file, and would become one user 7 as integers.
                id_is_integer = (value.isnull() | (text == "") | text.re_search(_CANONICAL_INTEGER)).all()
        elif col.kind == "timestamp":
            parsed, why = _timestamp(value, cspec, timezone)
            if parsed is None:
                problems.append(
                    Problem(
                        table,
                        f"column {why}",
                        f"give its format in dataset.yml, e.g. {{column: {label}, format: '%Y%m%d'}} "
                        f"or format: epoch_seconds",
                        column=label,
                        key="canonical.not_timestamps",
                        values=problem_fields(type=value.type(), label=label),
                    )
                )
                continue
            mutations[_prefixed(name)] = parsed
            filled = value.notnull() if not value.type().is_string() else value.strip() != ""
            hint = f"format '{cspec.format}'" if cspec.format else "ISO 8601 (YYYY-MM-DD HH:MM:SS)"
            checks.append(
                Check(
                    table,
                    label,
                    f"timestamps that do not parse as {hint}",
                    f"set the right strptime format: tables.{table}.columns.{name}: "
                    f"{{column: {label}, format: '...'}}, or correct these rows",
                    filled & parsed.isnull(),
                    value,
                    key="canonical.bad_timestamps" if cspec.format else "canonical.bad_iso_timestamps",
                    values=problem_fields(format=cspec.format, table=table, name=name, label=label),
                )
            )
        elif col.kind in ("number", "duration"):
            number = _number(value)
            mutations[_prefixed(name)] = number
            checks.append(
                Check(
                    table,
                    label,
                    "values that are not numbers",
                    "write plain numbers (no currency signs or thousands separators such as 1,234 or １，２３４; "
                    "full-width digits are read as digits), or blank for missing",
                    _filled(value) & number.isnull(),
                    value,
                    key="canonical.not_numbers",
                )
            )
            checks.append(
                Check(
                    table,
                    label,
                    "values that are not finite numbers (inf or NaN)",
                    "write a finite number, or blank for missing: inf and NaN would make every total and mean "
                    "undefined",
                    number.isinf() | number.isnan(),
                    value,
                    key="canonical.not_finite",
                )
            )
            kind = "revenue" if name == "revenue" else "durations"
            checks.append(
                Check(
                    table,
                    label,
                    f"negative {kind}",
                    f"{name} must be >= 0: correct these rows or remove "
                    "them from the file (refunds belong in a separate event with their own column)",
                    number < 0,
                    value,
                    key=f"canonical.negative_{kind}",
                    values=problem_fields(name=name),
                )
            )
        elif col.kind == "flag":
            flag, bad = _flag(value, cspec)
            mutations[_prefixed(name)] = flag
            if bad is not None:
                checks.append(
                    Check(
                        table,
                        label,
                        "values that are neither a 'true' nor a 'false' value",
                        f"list them in dataset.yml: {{column: {label}, true_values: [...], false_values: [...]}}",
                        bad,
                        value,
                        key="canonical.bad_flags",
                        values=problem_fields(label=label),
                    )
                )
        else:
            mutations[_prefixed(name)] = value.cast("string")
    work = raw.mutate(**mutations) if mutations else raw
    canonical_columns = {name: _prefixed(name) for name in specs if _prefixed(name) in work.columns}
    canonical_columns.update({name: name for name in extras if schema.column(table, name) is None})
    return Built(work, canonical_columns, checks, problems, id_is_integer)


def _filled(value: ir.Value) -> ir.BooleanValue:
    if value.type().is_string():
        return value.notnull() & (value.strip() != "")
    return value.notnull()


def _columns_preview(columns: list[str]) -> str:
    shown = ", ".join(columns[:8])
    return shown + (", ..." if len(columns) > 8 else "")


def count_problems(work: ir.Table, checks: list[Check], extra: dict[str, ir.Value] | None = None) -> dict:
    """Count rows and every check's bad rows in one pass; ``extra`` adds further reductions."""
    metrics = {"__rows": work.count()}
    for i, check in enumerate(checks):
        metrics[f"__check_{i}"] = check.bad.fill_null(False).sum()
    metrics.update(extra or {})
    row = work.aggregate(**metrics).execute().iloc[0].to_dict()
    return row


def example_of(work: ir.Table, bad: ir.BooleanValue, value: ir.Value) -> object:
    """One value from a row where ``bad`` holds."""
    found = work.filter(bad.fill_null(False)).select(example=value).limit(1).execute()
    if found.empty:
        return None
    result = found["example"].iloc[0]
    return result.item() if hasattr(result, "item") else result


def check_problems(work: ir.Table, checks: list[Check], counts: dict) -> list[Problem]:
    """Problems for every check with bad rows, each with one example value."""
    problems = []
    for i, check in enumerate(checks):
        bad_rows = int(counts.get(f"__check_{i}") or 0)
        if bad_rows:
            problems.append(
                Problem(
                    check.table,
                    check.message,
                    check.fix,
                    column=check.column,
                    rows=bad_rows,
                    example=example_of(work, check.bad, check.example),
                    key=check.key,
                    values=check.values,
                )
            )
    return problems


__all__ = ["Built", "Check", "build", "check_problems", "count_problems", "example_of"]
