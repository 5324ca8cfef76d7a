"""Typed notebook parameters: read a notebook's ``parameters`` cell, check values before a kernel starts.

A parameters cell holds literals only, one per line, each with a type annotation and a comment::

    dataset: str = "data/sample"  # dataset folder or connection URL
    horizons: list[int] = [1, 7, 30]  # days
    period: str = "week"  # cohort size; one of: day, week, month
    snapshot_at: str | None = None  # "as of" time (UTC); None: the dataset's own

A comment may limit the values: ``one of: a, b, c`` (the list ends at the comment's end, a ``;`` or a
``(``) restricts them to that list; ``at least N``, ``more than N``, ``at most N`` and ``less than N``
bound a number, or each number of a list.

Papermill injects values without checking them (its own inspection skips ``X | None``
annotations), so the runner reads the cell with :mod:`ast` and rejects unknown names and values of
the wrong type with a :class:`~userops_lib.errors.DataError`.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import operator
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

from userops_lib.contract import LIMITS, Said
from userops_lib.contract import problem as keyed
from userops_lib.errors import DataError, Problem

SCALARS = {"str": str, "int": int, "float": float, "bool": bool}
_LIMITS = {"at least": operator.ge, "more than": operator.gt, "at most": operator.le, "less than": operator.lt}
# Set by the runner, never by the user.
RESERVED = ("artifacts_dir",)


@dataclass(frozen=True)
class Parameter:
    """One declared notebook parameter: ``type`` is the annotation as written, e.g. ``list[int]``."""

    name: str
    type: str
    default: object
    help: str
    # A registered analysis' rules (its Params field's: choices, ge/gt/le/lt); None: read from the comment
    rules: dict | None = field(default=None, compare=False)

    @property
    def optional(self) -> bool:
        return self.type.replace(" ", "").endswith("|None")

    @property
    def base(self) -> str:
        return self.type.replace(" ", "").removesuffix("|None")

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The allowed values, from 'one of: a, b, c' in the comment (the list ends at the comment's end,
        a ';' or a '('); a registered analysis' from its Params."""
        if self.rules is not None:
            return tuple(self.rules["choices"]) if self.rules.get("choices") else None
        match = re.search(r"one of:\s*([^;(]+)", self.help)
        if not match:
            return None
        return tuple(c.strip().strip("'\"") for c in match.group(1).split(",") if c.strip())

    @property
    def bounds(self) -> list[tuple[str, float]]:
        """Limits on a number (or on each number of a list), from the comment: 'at least 1', 'more than 0',
        'at most 1', 'less than 1' (several may be given), as (words, number); a registered analysis' from
        its Params."""
        if self.rules is not None:
            return [(words, float(self.rules[rule])) for rule, words in LIMITS.items() if rule in self.rules]
        return [
            (words, float(number))
            for words, number in re.findall(rf"({'|'.join(_LIMITS)})\s+(-?\d+(?:\.\d+)?)\b", self.help)
        ]


def parameters_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def notebook_parameters(path: str | Path) -> dict[str, Parameter]:
    """The parameters a notebook declares, in order."""
    path = Path(path)
    where = f"notebook '{path.name}'"
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as exc:  # not JSON, not a notebook, unreadable: nbformat raises several types
        raise DataError.single(
            "parameters",
            f"{where} is not a Jupyter notebook that can be read",
            "give --notebooks a folder of .ipynb notebooks (JSON, nbformat 4), or remove this file",
            example=str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__,
            key="notebook.unreadable",
            values={"where": path.name},
        ) from None
    cell = parameters_cell(notebook)
    if cell is None:
        raise DataError.single(
            "parameters",
            f"{where} has no cell tagged 'parameters'",
            "tag its first code cell 'parameters' (literals only)",
            key="notebook.no_parameters",
            values={"where": path.name},
        )
    source = cell.source
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise DataError.single(
            "parameters",
            f"{where}: the parameters cell is not valid Python",
            "fix the syntax",
            example=exc.text,
            key="notebook.not_python",
            values={"where": path.name},
        ) from None
    comments = _comments(source)
    found: dict[str, Parameter] = {}
    for node in tree.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name) or node.value is None:
            raise DataError.single(
                "parameters",
                f"{where}: every line of the parameters cell must be 'name: type = literal'",
                "annotate the parameter with its type",
                example=ast.get_source_segment(source, node),
                key="notebook.not_annotated",
                values={"where": path.name},
            )
        annotation = ast.get_source_segment(source, node.annotation) or ""
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            raise DataError.single(
                "parameters",
                f"{where}: the default of '{node.target.id}' is not a literal",
                "use a literal (string, number, bool, list, None)",
                example=ast.get_source_segment(source, node.value),
                key="notebook.not_literal",
                values={"where": path.name, "name": node.target.id},
            ) from None
        parameter = Parameter(node.target.id, annotation, default, comments.get(node.lineno) or "")
        if _base_type(parameter.base) is None:
            raise DataError.single(
                "parameters",
                f"{where}: unsupported type '{annotation}'",
                "use str, int, float, bool or list[...] of them, optionally '| None'",
                column=parameter.name,
                key="notebook.unsupported_type",
                values={"where": path.name, "annotation": annotation},
            )
        found[parameter.name] = parameter
    return found


def _comments(source: str) -> dict[int, str]:
    out = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            out[token.start[0]] = token.string.lstrip("#").strip()
    return out


def _base_type(base: str) -> tuple[str, type] | None:
    if base in SCALARS:
        return "scalar", SCALARS[base]
    if base.startswith("list[") and base.endswith("]") and base[5:-1] in SCALARS:
        return "list", SCALARS[base[5:-1]]
    return None


def _known_type(base: str) -> tuple[str, type]:
    """The shape and kind of a type the cell was checked to declare (see :func:`notebook_parameters`)."""
    known = _base_type(base)
    assert known is not None, base
    return known


def _fits(value: object, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def parse_text(parameter: Parameter, text: str) -> object:
    """A value given on the command line as text, read for the parameter's type.

    Strings are taken verbatim (so ``NO`` stays the text "NO"); other types are read as YAML, and
    a list may also be written comma-separated (``1,7,30``).
    """
    if parameter.optional and text.strip().lower() in ("none", "null"):
        return None
    shape, kind = _known_type(parameter.base)
    if shape == "scalar" and kind is str:
        return text
    if shape == "list" and not text.strip().startswith("["):
        items = [t.strip() for t in text.split(",") if t.strip()]
        return items if kind is str else [_yaml(t) for t in items]
    return _yaml(text)


def _yaml(text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def check_value(parameter: Parameter, value: Any, *, notebook: str) -> tuple[object, Problem | None]:
    """The value converted to the parameter's type, or a problem saying why it does not fit."""
    if value is None and parameter.optional:
        return None, None
    shape, kind = _known_type(parameter.base)
    ok = (
        _fits(value, kind)
        if shape == "scalar"
        else (isinstance(value, list) and all(_fits(item, kind) for item in value))
    )
    if not ok:
        return value, _said(
            "cell.type", parameter, value, notebook=notebook, type=parameter.type, default=repr(parameter.default)
        )
    items = value if shape == "list" else [value]
    if kind is float and any(v != v or v in (float("inf"), float("-inf")) for v in items):
        return value, _said("cell.finite", parameter, value, notebook=notebook)
    for words, limit in parameter.bounds if kind in (int, float) else []:
        outside = [v for v in items if not _LIMITS[words](v, limit)]
        if outside:
            rule = {words: rule for rule, words in LIMITS.items()}[words]
            return value, _said(
                "cell.limit.each" if shape == "list" else "cell.limit.one",
                parameter,
                outside[0],
                notebook=notebook,
                limit=Said(f"error.param.{rule}", bound=f"{limit:g}"),
                default=repr(parameter.default),
            )
    choices = parameter.choices
    if choices is not None:
        outside = [v for v in (value if shape == "list" else [value]) if str(v) not in choices]
        if outside:
            return value, _said(
                "cell.choice", parameter, outside[0], notebook=notebook, choices=", ".join(c or '""' for c in choices)
            )
    if kind is float:
        value = float(value) if shape == "scalar" else [float(v) for v in value]
    return value, None


def _said(key: str, parameter: Parameter, example: object, **values: object) -> Problem:
    return keyed(parameter.name, f"param.{key}", example, **values)


def resolve(
    declared: dict[str, dict[str, Parameter]], given: dict[str, object], *, per_notebook=None, from_text: bool = False
) -> dict[str, dict[str, object]]:
    """Check ``given`` values against the notebooks' declarations.

    Parameters
    ----------
    declared
        notebook name -> its parameters.
    given
        values for every notebook (applied to each notebook that declares the name).
    per_notebook
        notebook name -> values for that notebook only.
    from_text
        values in ``given`` are command-line text, to be read for each declared type.

    Returns notebook name -> the checked values to inject. Raises one :class:`DataError` listing
    every unknown name and every value of the wrong type.
    """
    problems: list[Problem] = []
    out: dict[str, dict[str, object]] = {name: {} for name in declared}
    for name, value in given.items():
        if name in RESERVED:
            problems.append(keyed(name, "param.runner_set", None))
            continue
        owners = [nb for nb, params in declared.items() if name in params]
        if not owners:
            known = sorted({p for params in declared.values() for p in params if p not in RESERVED})
            problems.append(keyed(name, "param.unknown", value, known=", ".join(known)))
            continue
        for notebook in owners:
            parameter = declared[notebook][name]
            raw = parse_text(parameter, value) if from_text and isinstance(value, str) else value
            checked, problem = check_value(parameter, raw, notebook=notebook)
            if problem:
                problems.append(problem)
            else:
                out[notebook][name] = checked
    for notebook, values in (per_notebook or {}).items():
        if notebook not in declared:
            problems.append(
                dataclasses.replace(
                    keyed("", "param.unknown_notebook", notebook, notebook=notebook, known=", ".join(declared)),
                    column=None,
                )
            )
            continue
        for name, value in (values or {}).items():
            parameter = declared[notebook].get(name)  # type: ignore[assignment]  # None: reported below
            if parameter is None or name in RESERVED:
                offered = ", ".join(p for p in declared[notebook] if p not in RESERVED)
                problems.append(keyed(name, "param.not_declared", value, notebook=notebook, known=offered))
                continue
            checked, problem = check_value(parameter, value, notebook=notebook)
            if problem:
                problems.append(problem)
            else:
                out[notebook][name] = checked
    if problems:
        raise DataError(problems)
    return out
