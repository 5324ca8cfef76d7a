"""The one contract every analysis follows (the model: lifelines' fitters, gbstats, pymc-marketing's clv).

* ``Params``: a frozen, keyword-only dataclass per analysis. Its fields are the notebook's parameters;
  each field's ``help`` (the parameters cell's comment, limits included: ``one of: ...``, ``at least 1``)
  lives in the field's metadata, and the notebook's parameters cell is generated from the dataclass
  (:func:`parameters_cell`, through :mod:`userops_lib.notebooks`; ``tests/test_notebooks.py`` fails when a
  committed notebook differs from its generation).
* ``run(ds, params) -> Result``: an engine part reduces the data to small tables of sufficient
  statistics (Ibis only), a statistics part computes on those (pandas, statsmodels, lifelines).
* Every Result answers the same questions (:class:`Result`): its artifact tables, headline tiles,
  findings sentences, charts, shown tables, its level and its definitions. Text comes from the message
  catalogues in the current language (:mod:`i18n`) through the folder's ``text`` module, charts from its
  ``charts`` module.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import typing
from dataclasses import dataclass, field
from typing import Any, Protocol

from userops_lib import i18n
from userops_lib.errors import DataError, Problem
from userops_lib.i18n import Said

if typing.TYPE_CHECKING:
    import pandas as pd


LIMITS = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
REFERS_TO = ("event", "attribute", "campaign", "metric", "group")


def param(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    refers_to: str | None = None,
    of: str | None = None,
) -> Any:
    """A parameter: its default, its help (the parameters cell's comment says it, then its rules) and its rules.

    ``choices`` are the values allowed; ``ge``/``gt``/``le``/``lt`` bound a number (each number of a list);
    ``refers_to`` says what in the data the value names (an ``event``, a user ``attribute``, a ``campaign``, an
    outcome ``metric``, or a ``group``: a value of the attribute named by the parameter ``of``), checked
    against the dataset before any kernel starts (:mod:`userops_lib.preflight`). The rules are checked when a
    Params is built (:meth:`Common.__post_init__`) and the comment is generated from them (:func:`comment`).
    """
    assert refers_to is None or refers_to in REFERS_TO, refers_to
    assert (refers_to == "group") == (of is not None), "a group is a value of the attribute named by 'of'"
    rules = {"choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt, "refers_to": refers_to, "of": of}
    metadata = {"help": help, "default": default, **{k: v for k, v in rules.items() if v is not None}}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def comment(spec: dataclasses.Field) -> str:
    """The parameters cell's comment of a field: its help, then its allowed values and limits in words (the
    form :mod:`userops_lib.params` reads back for notebooks that are not registered analyses)."""
    meta = spec.metadata
    parts = [meta["help"]] if meta["help"] else []
    if meta.get("choices"):
        parts.append("one of: " + ", ".join(c or '""' for c in meta["choices"]))
    each = "each " if isinstance(meta["default"], list) else ""
    parts += [f"{each}{words} {meta[rule]:g}" for rule, words in LIMITS.items() if meta.get(rule) is not None]
    return "; ".join(parts)


def rules(spec: dataclasses.Field) -> dict[str, Any]:
    """A field's rules: its choices, limits and what it refers to (only those it has)."""
    return {k: spec.metadata[k] for k in ("choices", *LIMITS, "refers_to", "of") if k in spec.metadata}


def rule_problems(name: str, value: Any, spec: dataclasses.Field) -> list[Problem]:
    """What is wrong with ``value`` for the field ``spec``: a value outside its choices or limits."""
    meta = spec.metadata
    items = value if isinstance(value, list | tuple) else [value]
    if meta.get("choices") is not None:
        outside = [v for v in items if str(v) not in meta["choices"]]
        if outside:
            return [problem(name, "param.choice", outside[0], choices=", ".join(meta["choices"]))]
    numbers = [v for v in items if isinstance(v, int | float) and not isinstance(v, bool)]
    for rule in LIMITS:
        bound = meta.get(rule)
        if bound is None:
            continue
        outside = [v for v in numbers if not _within(v, rule, bound)]
        if outside:
            with_each = "each" if isinstance(value, list | tuple) else "one"
            return [
                problem(
                    name, f"param.limit.{with_each}", outside[0], limit=Said(f"error.param.{rule}", bound=f"{bound:g}")
                )
            ]
    return []


def _within(value: float, rule: str, bound: float) -> bool:
    return {"ge": value >= bound, "gt": value > bound, "le": value <= bound, "lt": value < bound}[rule]


def raised(check: typing.Callable[[], Any]) -> list[Problem]:
    """The problems a check raises as a :class:`DataError` (none when it returns): an analysis' own reading of
    a parameter (its steps, its ranges) used as a Params check."""
    try:
        check()
    except DataError as error:
        return list(error.problems)
    return []


def problem(name: str, key: str, example: Any, **values: Any) -> Problem:
    """A problem of the parameter ``name`` with the catalogue's ``error.<key>`` (a cross-field check of a
    Params: ``key`` is ``<analysis>.<what>``)."""
    with i18n.language("en"):
        message, fix = i18n.t(f"error.{key}", name=name, **values), i18n.t(f"error.{key}.fix", name=name, **values)
    return Problem(
        "parameters", message, fix, column=name, example=example, key=key, values=(("name", name), *values.items())
    )


@dataclass(frozen=True)
class Reference:
    """A name a parameter value holds and what it names: ``kind`` is an ``event``, an ``attribute``, a
    ``campaign``, a ``metric`` or a ``group`` (a value of the attribute ``of``)."""

    field: str
    kind: str
    name: str
    value: str  # the value as written (a step "cart|wishlist" holds the names cart and wishlist)
    of: str | None = None


@dataclass(frozen=True, kw_only=True)
class Common:
    """Parameters every notebook has: which data, as of when, which users, which language, which level.

    A Params checks itself when it is built: every field's rules (:func:`param`) and the cross-field checks of
    :meth:`checks`; one :class:`DataError` lists every problem (the runner builds each job's Params before any
    kernel starts, so a bad value exits 2 there, in the run's language).
    """

    dataset: str = param("data/sample", "dataset folder or connection URL")
    snapshot_at: str = param("", '"as of" time in the calendar\'s zone, e.g. "2025-12-31"; empty: the dataset\'s own')
    timezone: str = param(
        "", "zone of the calendar days, weeks and months are counted in, e.g. Asia/Shanghai; empty: the dataset's"
    )
    alpha: float = param(0.05, "1 - confidence level of the intervals and tests", gt=0, lt=1)
    filter_column: str = param("", "restrict to users whose attribute ...", refers_to="attribute")
    filter_value: str = param("", "... equals this value (one report per segment)")
    language: str = param("en", "report language", choices=("en", "zh"))
    artifacts_dir: str = param("", "where CSV artifacts go; empty: none (set by `userops report`)")

    def __post_init__(self) -> None:
        found = self.problems()
        if found:
            raise DataError(found)

    def problems(self) -> list[Problem]:
        """Every rule of every field; when each field is valid, the cross-field checks (which may rely on it)."""
        found = []
        for spec in dataclasses.fields(self):
            found += rule_problems(spec.name, getattr(self, spec.name), spec)
        return found or self.checks()

    def checks(self) -> list[Problem]:
        """Cross-field checks (an analysis adds its own, keeping these)."""
        found = []
        for spec in dataclasses.fields(self):
            of = spec.metadata.get("of")
            if of and getattr(self, spec.name) and not getattr(self, of):
                found.append(problem(spec.name, "param.group_of", getattr(self, spec.name), attribute=of))
        if bool(self.filter_column) != bool(self.filter_value):
            missing = "filter_value" if self.filter_column else "filter_column"
            found.append(problem(missing, "param.filter_pair", self.filter_column or self.filter_value))
        if self.timezone:
            from userops_lib.calendar import check_zone

            try:
                check_zone(self.timezone)
            except DataError:
                found.append(problem("timezone", "param.timezone", self.timezone))
        return found

    def references_in_data(self) -> list[Reference]:
        """What the values name in the data, field by field (checked against the dataset before any kernel
        starts). From each field's ``refers_to``; an analysis whose values have a form of their own (``a|b``,
        ``column=level``, ``a/b``) overrides :meth:`named` to say which names a value holds."""
        out = []
        for spec in dataclasses.fields(self):
            kind = spec.metadata.get("refers_to")
            value = getattr(self, spec.name)
            if not kind or value in ("", None, []):
                continue
            of = spec.metadata.get("of")
            for item in value if isinstance(value, list) else [value]:
                out += [
                    Reference(spec.name, kind, name, str(item), getattr(self, of) if of else None)
                    for name in self.named(spec.name, str(item))
                ]
        return out

    def named(self, field_name: str, value: str) -> list[str]:
        """The names one value of ``field_name`` holds (by default: the value itself)."""
        return [value]

    def against(self, data: Any) -> list[Problem]:
        """Checks that need the data beyond what the values name (an analysis adds its own); ``data`` is the
        preflight's :class:`~userops_lib.preflight.Lookups`."""
        return []

    def shown(self) -> dict[str, Any]:
        """The parameters a report lists under 'Method and data' (not where its files went)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "artifacts_dir"}

    @classmethod
    def from_namespace(cls, namespace: dict[str, Any]):
        """The Params of a notebook's parameters cell (its variables, as papermill injected them)."""
        return cls(**{f.name: namespace[f.name] for f in dataclasses.fields(cls) if f.name in namespace})


_COMMON_FIRST = ("dataset", "snapshot_at", "timezone")
_COMMON_LAST = ("alpha", "filter_column", "filter_value", "language", "artifacts_dir")


def parameters_cell(params_type: type) -> str:
    """The notebook's parameters cell for ``params_type``: one typed, commented literal per line."""
    hints = typing.get_type_hints(params_type)
    fields = {f.name: f for f in dataclasses.fields(params_type)}
    order = [*_COMMON_FIRST, *(n for n in fields if n not in _COMMON_FIRST + _COMMON_LAST), *_COMMON_LAST]
    lines = []
    for name in order:
        spec = fields[name]
        value = spec.metadata["default"]
        default = (
            json.dumps(value, ensure_ascii=False)
            if isinstance(value, str | list)
            and all(isinstance(v, str | int | float) for v in (value if isinstance(value, list) else [value]))
            else repr(value)
        )
        lines.append(f"{name}: {_annotation(hints[name])} = {default}  # {comment(spec)}")
    return "\n".join(lines)


def _annotation(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is None:
        return hint.__name__
    return f"{origin.__name__}[{', '.join(_annotation(a) for a in typing.get_args(hint))}]"


@dataclass(frozen=True)
class About:
    """What the registry knows of an analysis besides its Params and run (``ABOUT`` in its ``__init__``)."""

    summary: str  # the notebook's opening note for the analyst (English): what the analysis answers, and how
    requires: tuple[tuple[str, ...], ...] = ()  # alternatives, each tables or table.columns the data must have
    rank: int = 50  # place in a run and on the index page (lowest first; 0 for the one that opens a run)
    # The reductions shared between analyses that it reads (activity.KEY): a report run reduces those its
    # notebooks read once, into the run's store (userops_lib.store).
    shared: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chart:
    """A chart a report shows: a function drawing it and the note shown above it (may be empty)."""

    name: str
    draw: typing.Callable[[], Any]
    note: str = ""


@dataclass(frozen=True)
class Shown:
    """A table a report shows, with its caption and how its columns read."""

    name: str
    frame: pd.DataFrame
    caption: str
    formats: dict = field(default_factory=dict)
    max_rows: int = 30
    classes: dict = field(default_factory=dict)  # column -> {shown text: CSS class} (e.g. a verdict's colour)


class Presented:
    """The presentation half of :class:`Result`, once for every analysis: a Result's text comes from the
    ``text`` module of its analysis' folder (``userops_lib/analyses/<name>/text.py``) and its charts from
    the folder's ``charts`` module, imported when asked for: an analysis' computing modules never import them."""

    ANALYSIS: typing.ClassVar[str]

    @property
    def folder(self) -> str:
        """The analysis' package, ``userops_lib.analyses.<name>`` (the Result class is defined in it)."""
        parts = type(self).__module__.split(".")
        return ".".join(parts[: parts.index("analyses") + 2])

    @property
    def text(self):
        """The analysis' text module (which catalogue messages, filled with which numbers)."""
        return importlib.import_module(f"{self.folder}.text")

    @property
    def headlines(self) -> list[tuple[str, str]]:
        return self.text.headlines(self)

    @property
    def findings(self) -> list[str]:
        return self.text.findings(self)

    @property
    def definitions(self) -> list[str]:
        return self.text.definitions(self)

    @property
    def warnings(self) -> list[str]:
        """What must be known before trusting the page (a model that failed); the index shows the report as a
        warning, not OK. Empty for analyses whose text module says nothing."""
        return getattr(self.text, "warnings", lambda result: [])(self)

    def shown_tables(self) -> list[Shown]:
        return self.text.shown_tables(self)

    def _repr_html_(self) -> str:
        """A Result shown in a notebook cell: its tiles and findings, in the current language."""
        from userops_lib import narrative

        return narrative.headlines_html(self.headlines) + narrative.findings_html(self.findings)

    def kpi_cards(self) -> tuple[str, list[tuple[str, str, str]]] | None:
        """KPI cards (a heading; label, value and note per card) when the text module draws them, else None."""
        cards = getattr(self.text, "cards", None)
        return None if cards is None else cards(self)

    def charts(self) -> list[Chart]:
        return importlib.import_module(f"{self.folder}.charts").charts(self)


class Result(Protocol):
    """What every analysis returns."""

    params: Common
    level: float  # alpha: intervals are (1 - level) intervals

    def tables(self) -> dict[str, pd.DataFrame]: ...  # the CSV artifacts, English column names

    @property
    def headlines(self) -> list[tuple[str, str]]: ...  # tiles: label, value (current language)

    @property
    def findings(self) -> list[str]: ...  # sentences with numbers, most important first

    @property
    def definitions(self) -> list[str]: ...

    def charts(self) -> list[Chart]: ...

    def shown_tables(self) -> list[Shown]: ...
