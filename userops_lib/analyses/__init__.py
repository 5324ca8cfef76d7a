"""The registry: the one list of analyses (the model: papermill's engine and I/O registries).

An analysis is a folder of this package, ``userops_lib/analyses/<name>/``, whose ``__init__.py`` declares

* ``Params``: a :class:`~userops_lib.contract.Common` subclass (the notebook's parameters, their limits and
  what they refer to in the data, checked when a Params is built and, against the data, before any kernel);
* ``run(ds, params) -> Result``: the analysis (its engine part, then its statistics);
* ``ABOUT``: a :class:`~userops_lib.contract.About` (the notebook's note, the tables it needs, its place);
* ``REDUCTIONS`` (in the package or its ``reductions`` module): what the engine matrix runs on every engine;

and holds ``text.py`` (its words: headlines, findings, definitions, shown tables) and ``charts.py``. Its
catalogue keys start with ``<name>.``. Nothing else lists analyses: the runner, the notebooks (generated
from here by ``userops notebooks``), the tests, the Spark parity check and the benchmarks ask this module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Analysis:
    """One registered analysis: its name (the folder's) and its package."""

    name: str
    module: ModuleType

    @property
    def Params(self) -> type:
        return self.module.Params

    def run(self, ds: Any, params: Any) -> Any:
        return self.module.run(ds, params)

    @property
    def about(self) -> Any:
        return self.module.ABOUT

    def reductions(self) -> dict[str, Callable[[Any], dict]]:
        """What the engine matrix runs of this analysis (``tests/test_engines.py``): name -> a function of a
        dataset returning its engine tables; ``REDUCTIONS`` in the package or in its ``reductions`` module."""
        found = getattr(self.module, "REDUCTIONS", None)
        if found is None:
            submodule = f"{self.module.__name__}.reductions"
            try:
                found = importlib.import_module(submodule).REDUCTIONS
            except ModuleNotFoundError as missing:
                if missing.name != submodule:
                    raise
                found = {}
        return dict(found)

    @property
    def notebook_file(self) -> str:
        return f"{self.name}.ipynb"


def names() -> list[str]:
    """Every analysis, in the order a run shows them (the declared rank, then the name)."""
    return [analysis.name for analysis in every()]


def folders() -> list[str]:
    """The analysis folders, by name (without importing them)."""
    return sorted(
        info.name for info in pkgutil.iter_modules([str(FOLDER)]) if info.ispkg and not info.name.startswith("_")
    )


def get(name: str) -> Analysis:
    """The analysis ``name``; a KeyError when there is no such folder."""
    if name not in folders():
        raise KeyError(name)
    return Analysis(name, importlib.import_module(f"{__name__}.{name}"))


def find(name: str) -> Analysis | None:
    """The analysis ``name``, or None (a notebook of the user's own, not a registered analysis)."""
    try:
        return get(name)
    except KeyError:
        return None


def every() -> list[Analysis]:
    found = [Analysis(name, importlib.import_module(f"{__name__}.{name}")) for name in folders()]
    return sorted(found, key=lambda a: (a.about.rank, a.name))


__all__ = ["FOLDER", "Analysis", "every", "find", "folders", "get", "names"]
