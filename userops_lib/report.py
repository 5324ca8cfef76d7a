"""Planning a batch run of ``userops report``: which notebooks, with which parameters, on which dataset,
all checked before any kernel starts (execution: :mod:`userops_lib.runner`).

A run executes each selected notebook (once per grid value) with papermill in worker processes (``jobs``
of them, each keeping one kernel for the notebooks it runs in turn), each notebook under a whole-run timeout. Everything is written to
``reports/.running-<run-id>/`` and renamed to ``reports/<run-id>/`` when done; ``reports/latest``
then points at it if every report succeeded, so a failed run never replaces a good one. Bad
datasets and parameters stop the run before any kernel starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from userops_lib import analyses, contract, i18n, preflight, render, schemas, store, strict_yaml
from userops_lib import params as params_module
from userops_lib.calendar import check_zone
from userops_lib.data import load_dataset
from userops_lib.errors import DataError, Problem, problem_fields

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TIMEOUT_MINUTES = 20.0
REQUIRED_PARAMETERS = ("dataset", "artifacts_dir")


@dataclass(frozen=True)
class Job:
    name: str
    notebook: Path
    title: str
    parameters: dict
    grid_values: dict = field(default_factory=dict)
    english_only: bool = False  # the run asked for another language, which this notebook has no text in


@dataclass
class Plan:
    dataset: str
    dataset_name: str
    jobs: list[Job]
    quality_lines: list[str]
    settings: dict
    skipped: list[dict] = field(default_factory=list)
    language: str = i18n.DEFAULT
    # The dataset as the plan loaded and checked it, and what that load depended on (userops_lib.store):
    # the runner writes it to the run's store instead of every kernel loading it again.
    loaded: Any = field(default=None, repr=False, compare=False)
    loaded_key: tuple = ()


def requirements(notebook: nbformat.NotebookNode) -> list[list[str]]:
    """What a notebook needs, from its metadata ``userops.requires``: alternatives of table or table.column names."""
    return notebook.metadata.get("userops", {}).get("requires", [])


def unmet(requires: list[list[str]], ds) -> str | None:
    """None when one alternative is met, else what the dataset lacks, in words."""
    if not requires:
        return None

    def has(item: str) -> bool:
        table, _, column = item.partition(".")
        return ds.has(table) and (not column or column in ds.tables[table].columns)

    if any(all(has(item) for item in alternative) for alternative in requires):
        return None
    return " or ".join(" and ".join(alternative) for alternative in requires)


def fail(message: str, fix: str, **details) -> DataError:
    """A problem of the run itself (its output folder, its config), as the one error type."""
    return DataError.single("report", message, fix, **details)


def discover(notebooks_dir: Path) -> dict[str, Path]:
    """Notebooks by name: the registered analyses in the registry's order, then any others by name."""
    found = {p.stem: p for p in sorted(notebooks_dir.glob("*.ipynb"))}
    if not found:
        raise fail(f"no notebooks in {notebooks_dir}", "give --notebooks DIR with .ipynb files")
    registered = [name for name in analyses.names() if name in found]
    order = [*registered, *(name for name in found if name not in registered)]
    return {name: found[name] for name in order}


def read_config(path: Path) -> dict:
    """The batch file, checked against :data:`schemas.CONFIG` (types, ranges, no unknown or repeated keys)."""
    raw = strict_yaml.load(path, what="config file")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise fail("the config file must be a mapping", "see the README, 'Batch runs'", example=raw)
    found = schemas.problems(raw, schemas.CONFIG, what="config file", section="Batch runs")
    if found:
        raise DataError(found, source=str(path))
    return raw


def _resolve_path(text: str, *bases: Path) -> str:
    if "://" in text or Path(text).is_absolute():
        return text
    for base in (Path.cwd(), *bases):
        if (base / text).exists():
            return str((base / text).resolve())
    return text


def _slug(values: dict) -> str:
    """A file-name part for a grid combination: letters (any script), digits, '_', '.', '-' only."""
    text = "--".join(f"{k}-{v}" for k, v in values.items())
    return re.sub(r"[^\w.-]+", "_", text).strip(".")[:80]


def _unique_slugs(combos: list[dict]) -> list[str]:
    """One slug per combination; values that would share a file name ('paid search', 'paid_search')
    get a short hash of their exact values, so no report overwrites another."""
    slugs = [_slug(combo) for combo in combos]
    counts = {slug: slugs.count(slug) for slug in slugs}
    return [
        slug
        if counts[slug] == 1
        else f"{slug}-{hashlib.sha256(json.dumps(combo, sort_keys=True, default=str).encode()).hexdigest()[:6]}"
        for slug, combo in zip(slugs, combos, strict=True)
    ]


def plan_run(
    *,
    dataset: str | None = None,
    only: list[str] | None = None,
    parameters: dict[str, str] | None = None,
    config: str | None = None,
    notebooks_dir: str | None = None,
    language: str | None = None,
    timezone: str | None = None,
) -> Plan:
    """Check everything that can be checked before a kernel starts, and list the jobs.

    ``language`` (``--lang``, else the config's ``language``, else English) sets the ``language``
    parameter of every notebook that declares one; the index page is written in it too. ``timezone``
    (``--timezone``) sets the ``timezone`` parameter of every notebook that declares one.
    """
    settings = read_config(Path(config)) if config else {}
    language = str(language or settings.get("language") or (parameters or {}).get("language") or i18n.DEFAULT)
    if language not in i18n.LANGUAGES:
        raise DataError(contract.problem("language", "param.choice", language, choices=", ".join(i18n.LANGUAGES)))
    with i18n.language(language):  # every problem found from here on is said in the run's language
        return _plan(dataset, only, parameters, config, notebooks_dir, language, timezone, settings)


def _params(analysis: analyses.Analysis | None, values: dict, found: list[Problem]) -> contract.Common | None:
    """The job's Params, built (and so checked) before any kernel starts; its problems go to ``found``. A
    notebook of the user's own is checked for the parameters every notebook shares."""
    kind = analysis.Params if analysis is not None else contract.Common
    fields = {f.name for f in dataclasses.fields(kind)}
    try:
        built = kind(**{k: v for k, v in values.items() if k in fields})
    except DataError as error:
        found.extend(error.problems)
        return None
    return built if analysis is not None else None


def _registered(name: str, declared: dict[str, params_module.Parameter]) -> analyses.Analysis | None:
    """The registered analysis a notebook runs: its name is an analysis folder's and it declares exactly the
    analysis' Params (a notebook of the user's own under that name is checked by its cell alone)."""
    analysis = analyses.find(name)
    if analysis is None or set(declared) != {f.name for f in dataclasses.fields(analysis.Params)}:
        return None
    return analysis


def _plan(dataset, only, parameters, config, notebooks_dir, language, timezone, settings) -> Plan:
    if timezone:
        check_zone(timezone, where="--timezone")
        parameters = {**(parameters or {}), "timezone": timezone}
    config_dir = Path(config).resolve().parent if config else Path.cwd()
    folder = Path(notebooks_dir) if notebooks_dir else PROJECT_ROOT / "notebooks"
    available = discover(folder)
    # A notebook named twice (--only NAME NAME) runs once: both would write the same files.
    names = list(dict.fromkeys(only or settings.get("notebooks") or available))
    unknown = [n for n in names if n not in available]
    if unknown:
        raise fail(f"unknown notebook '{unknown[0]}'", f"choose from {', '.join(available)}", example=unknown[0])
    declared = {name: params_module.notebook_parameters(available[name]) for name in names}
    registered = {name: _registered(name, declared[name]) for name in names}
    for name, analysis in registered.items():  # the rules are the Params', never read back from the comments
        if analysis is not None:
            rules = {f.name: contract.rules(f) for f in dataclasses.fields(analysis.Params)}
            declared[name] = {k: dataclasses.replace(p, rules=rules[k]) for k, p in declared[name].items()}
    problems = [
        Problem(
            "report",
            f"notebook '{n}' does not declare the parameter '{r}'",
            f"add '{r}: str = ...' to its parameters cell",
            column=r,
            key="report.undeclared",
            values=problem_fields(notebook=n, name=r),
        )
        for n, d in declared.items()
        for r in REQUIRED_PARAMETERS
        if r not in d
    ]
    if problems:
        raise DataError(problems)

    given = dict(settings.get("parameters") or {})
    for key in ("dataset",):
        if key in given:
            raise fail(
                f"give '{key}' as the top-level key or the DATASET argument, not as a parameter",
                f"move it to '{key}:' at the top of the config",
                column=key,
            )
        if parameters and key in parameters:
            raise fail(
                f"give '{key}' as the DATASET argument, not as -p {key}=...",
                f"write: userops report {parameters[key]} ...",
                column=key,
                example=parameters[key],
            )
    resolved = params_module.resolve(
        declared, given, per_notebook={k: v for k, v in (settings.get("notebooks") or {}).items() if k in names} or None
    )
    from_cli = params_module.resolve(declared, dict(parameters or {}), from_text=True)
    grid = settings.get("grid") or {}
    for name in grid:
        missing = [n for n in names if name not in declared[n]]
        if missing:
            raise fail(
                f"grid parameter '{name}' is not declared by notebook '{missing[0]}'",
                "use parameters every selected notebook declares (e.g. filter_value), or --only",
                column=name,
            )

    dataset_text = dataset or settings.get("dataset") or str(PROJECT_ROOT / "data" / "sample")
    dataset_path = _resolve_path(str(dataset_text), config_dir, PROJECT_ROOT)
    # The calendar the data-quality lines and the parameter checks use: the run's zone, when it sets one.
    zone = str((parameters or {}).get("timezone") or given.get("timezone") or "")
    ds = load_dataset(dataset_path, calendar=check_zone(zone, where="timezone") if zone else None)
    skipped = []
    for name in list(names):
        lacking = unmet(requirements(nbformat.read(available[name], as_version=4)), ds)
        if lacking is None:
            continue
        if only:
            raise fail(
                f"notebook '{name}' needs {lacking}, which the dataset '{ds.name}' does not have",
                "choose another dataset or notebook",
                example=", ".join(ds.tables),
            )
        skipped.append({"name": name, "notebook": available[name].name, "reason": f"needs {lacking}", "needs": lacking})
        names.remove(name)
    if not names:
        raise fail(
            f"no selected notebook applies to the dataset '{ds.name}'",
            "choose another dataset",
            example=", ".join(ds.tables),
        )
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())] if grid else [{}]
    jobs = []
    checks: list[tuple[dict, contract.Common | None]] = []
    found: list[Problem] = []
    for combo, slug in zip(combos, _unique_slugs(combos), strict=True):
        checked = params_module.resolve(declared, combo) if combo else {n: {} for n in names}
        for name in names:
            defaults = {p.name: p.default for p in declared[name].values() if p.name not in REQUIRED_PARAMETERS}
            values = {**defaults, **resolved[name], **from_cli[name], **checked[name]}
            english_only = "language" not in declared[name] and language != i18n.DEFAULT
            if "language" in declared[name]:
                values["language"] = language
            column, value = values.get("filter_column", ""), values.get("filter_value", "")
            if column and value:
                ds.restrict(str(column), value)
            checks.append((values, _params(registered[name], values, found)))
            job_name = name if not combo else f"{name}--{slug}"
            notebook = nbformat.read(available[name], as_version=4)
            with i18n.language(str(values.get("language", i18n.DEFAULT))):
                title = i18n.t(f"{name}.title") if i18n.has(f"{name}.title") else render.notebook_title(notebook, name)
            if combo:
                title += " (" + ", ".join(f"{k} = {v}" for k, v in combo.items()) + ")"
            jobs.append(Job(job_name, available[name], title, {**values, "dataset": dataset_path}, combo, english_only))
    if found:  # a Params' own checks: every value, and the cross-field rules
        raise DataError([p for i, p in enumerate(found) if p not in found[:i]])
    preflight.check(checks, ds)
    from userops_lib import quality_text

    with i18n.language(language):
        quality_lines = quality_text.summary(ds.quality)
    kept = ds if store.storable(ds) else None
    result = Plan(
        dataset_path, ds.name, jobs, quality_lines, settings, skipped, language, kept, store.key(dataset_path, "", zone)
    )
    if kept is None and ds.con.name == "duckdb":
        ds.con.disconnect()  # the runner waits for the kernels: it should not hold DuckDB's buffers meanwhile
    return result
