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

if typing.TYPE_CHECKING:
    import pandas as pd


def param(default: Any, help: str) -> Any:
    """A parameter with its default and its comment in the parameters cell (a list default is copied)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, "default": default})
    return field(default=default, metadata={"help": help, "default": default})


@dataclass(frozen=True, kw_only=True)
class Common:
    """Parameters every notebook has: which data, as of when, which users, which language."""

    dataset: str = param("data/sample", "dataset folder or connection URL")
    snapshot_at: str = param("", '"as of" time in the calendar\'s zone, e.g. "2025-12-31"; empty: the dataset\'s own')
    timezone: str = param(
        "", "zone of the calendar days, weeks and months are counted in, e.g. Asia/Shanghai; empty: the dataset's"
    )
    filter_column: str = param("", "restrict to users whose attribute ...")
    filter_value: str = param("", "... equals this value (one report per segment)")
    language: str = param("en", "report language; one of: en, zh")
    artifacts_dir: str = param("", "where CSV artifacts go; empty: none (set by `userops report`)")

    def shown(self) -> dict[str, Any]:
        """The parameters a report lists under 'Method and data' (not where its files went)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "artifacts_dir"}

    @classmethod
    def from_namespace(cls, namespace: dict[str, Any]):
        """The Params of a notebook's parameters cell (its variables, as papermill injected them)."""
        return cls(**{f.name: namespace[f.name] for f in dataclasses.fields(cls) if f.name in namespace})


_COMMON_FIRST = ("dataset", "snapshot_at", "timezone")
_COMMON_LAST = ("filter_column", "filter_value", "language", "artifacts_dir")


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
        lines.append(f"{name}: {_annotation(hints[name])} = {default}  # {spec.metadata['help']}")
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
    rank: int = 50  # place in a run and on the index page (lowest first; the overview is 0)


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
