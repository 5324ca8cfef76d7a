"""JSON Schemas of the files users write (``dataset.yml``, batch configs), checked before anything runs.

The schema says what each key may hold (types, ranges, allowed values, no unknown keys); the
meaning of the values (does the file exist, is the column canonical) is checked afterwards by the
code that reads them. Validation uses :mod:`jsonschema` (a dependency of nbformat) and turns every
violation into one :class:`~userops_lib.errors.Problem` naming the key's path, the value and the fix.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from userops_lib import i18n, imports
from userops_lib.errors import Problem
from userops_lib.i18n import Said
from userops_lib.schema import DURATION_UNITS, TABLES

if TYPE_CHECKING:
    import jsonschema
else:
    jsonschema = imports.jsonschema()

FILE_FORMATS = ("csv", "whitespace", "parquet")

_TEXT = {"type": "string", "minLength": 1}
_TEXT_LIST = {"type": "array", "items": _TEXT}
_SCALAR = {"type": ["string", "integer", "number", "boolean"]}
_VALUES = {"anyOf": [{"type": ["string", "integer"]}, {"type": "array", "items": {"type": ["string", "integer"]}}]}

_COLUMN = {
    "anyOf": [
        _TEXT,
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "column": _TEXT,
                "format": _TEXT,
                "unit": {"enum": list(DURATION_UNITS)},
                "true_values": _VALUES,
                "false_values": _VALUES,
                "row_number": {"type": "boolean"},
                "value": _SCALAR,
            },
        },
    ],
}

_TABLE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "path": _TEXT,
        "table": _TEXT,
        "format": {"enum": list(FILE_FORMATS)},
        "delimiter": {"type": "string", "minLength": 1, "maxLength": 1},
        "header": {"type": "boolean"},
        "names": {"type": "array", "items": _TEXT, "minItems": 1},
        "null_values": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "encoding": _TEXT,  # any Python codec name: checked by the manifest (userops_lib/encodings.py)
        "columns": {"type": "object", "additionalProperties": _COLUMN},
        "attributes": _TEXT_LIST,
        "control_arm": {"type": ["string", "integer"]},
        "outcomes": {"anyOf": [_TEXT, _TEXT_LIST]},
        "allow_outside": {"type": "boolean"},
    },
}

MANIFEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["tables"],
    "properties": {
        "name": {"type": ["string", "integer"]},
        "description": {"type": "string", "maxLength": 10_000},
        "timezone": _TEXT,
        "calendar": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "timezone": _TEXT,
                "week_start": {"enum": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]},
            },
        },
        "snapshot_at": {"type": ["string", "integer"]},  # YAML dates arrive as date objects: see _plain
        "connection": _TEXT,
        "currency": {"type": "string", "maxLength": 8},
        "tables": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {name: _TABLE for name in TABLES},
        },
    },
}

CONFIG = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dataset": _TEXT,
        "parameters": {"type": "object"},
        "notebooks": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
        "grid": {"type": "object", "additionalProperties": {"type": "array", "minItems": 1, "items": _SCALAR}},
        "jobs": {"type": "integer", "minimum": 1, "maximum": 64},
        "timeout_minutes": {"type": "number", "exclusiveMinimum": 0, "maximum": 24 * 60},
        "out": _TEXT,
        "language": {"enum": ["en", "zh"]},
    },
}


def _plain(value: object) -> object:
    """YAML's own types (dates, times) as the text the user wrote, for type checks."""
    import datetime as dt

    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _expected(error: jsonschema.ValidationError) -> Said | str:
    """What the value must be, as a catalogue phrase said in the reader's language."""
    kind = error.validator
    value = error.validator_value
    if kind == "type":
        kinds = [value] if isinstance(value, str) else list(value)
        said: Said = Said(f"error.schema.kind.{kinds[-1]}")
        for other in reversed(kinds[:-1]):
            said = Said("error.schema.either", a=Said(f"error.schema.kind.{other}"), b=said)
        return said
    if kind == "enum":
        return Said("error.schema.one_of", values=", ".join(map(str, value)))
    if kind in _BOUNDS:
        return Said(_BOUNDS[kind], bound=value)
    if kind == "minLength":
        return Said("error.schema.non_empty_text")
    if kind == "maxLength":
        return Said("error.schema.max_length", n=value)
    if kind in ("minItems", "minProperties"):
        return Said("error.schema.at_least_one")
    if kind == "anyOf":
        return Said("error.schema.a_readme_form")
    return error.message  # a rule the schemas here do not use


_BOUNDS = {
    "minimum": "error.schema.number_ge",
    "exclusiveMinimum": "error.schema.number_gt",
    "maximum": "error.schema.number_le",
}


def _leaf(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For a value that fits none of several forms, the error of the form it was meant to have (a
    mapping's errors for a mapping, not 'is not text')."""
    while error.validator == "anyOf" and error.context:
        meant = [e for e in error.context if not (e.validator == "type" and not e.relative_path)]
        if not meant:
            break
        error = jsonschema.exceptions.best_match(meant)
    return error


def problems(raw: object, schema: dict, *, what: str, section: str) -> list[Problem]:
    """Every place where ``raw`` breaks ``schema``, as problems of ``what`` (a file's name); the fix points
    at the README's ``section``."""
    validator = jsonschema.Draft202012Validator(schema)
    found: list[Problem] = []
    for error in sorted(map(_leaf, validator.iter_errors(_plain(raw))), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(map(str, error.absolute_path)) or None
        if error.validator == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
            for key in extra:
                found.append(
                    _problem(
                        what,
                        "schema.unknown_key_in" if path else "schema.unknown_key",
                        path,
                        key=key,
                        path=path,
                        allowed=", ".join(allowed),
                        section=section,
                    )
                )
            continue
        if error.validator == "required":
            missing = [k for k in error.validator_value if k not in error.instance]
            found.append(_problem(what, "schema.missing_key", path, key=missing[0], section=section))
            continue
        if isinstance(error.instance, bool) and '"string"' in json.dumps(error.schema):
            found.append(_problem(what, "schema.not_text", path, example=error.instance))
            continue
        found.append(
            _problem(what, "schema.must_be", path, example=error.instance, expected=_expected(error), section=section)
        )
    return found


def _problem(what: str, name: str, where: str | None, *, example=None, **values) -> Problem:
    """A keyed problem (``error.<name>``, ``error.<name>.fix``): said in English in ``message`` for the reader
    of the code, in the reader's language when shown."""
    with i18n.language("en"):
        message, fix = i18n.t(f"error.{name}", **values), i18n.t(f"error.{name}.fix", **values)
    return Problem(what, message, fix, column=where, example=example, key=name, values=tuple(values.items()))


__all__ = ["CONFIG", "MANIFEST", "problems"]
