"""The package's layers hold: the data layer, the shared layer and the runner know no analysis; an analysis'
computing modules never import presentation; no module imports another that imports it back."""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT
from userops_lib import analyses

PACKAGE = ROOT / "userops_lib"


def _module(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}


def _imports(module: str) -> set[str]:
    """The package's modules ``module`` imports, at its top or inside a function (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("userops_lib"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
    return found - {module}


def test_no_module_imports_one_that_imports_it_back():
    graph = {m: _imports(m) for m in MODULES}
    cycles = []

    def visit(module, path):
        for target in graph[module]:
            if target == path[0]:
                cycles.append([*path, target])
            elif target not in path and len(path) < 6:
                visit(target, [*path, target])

    for module in MODULES:
        visit(module, [module])
    assert not cycles, cycles[:5]


def test_outside_its_folder_no_module_names_an_analysis():
    """Only the registry knows the analyses (and it finds them as folders): no runner, report, preflight, data or
    shared module names one, so a new analysis is one folder."""
    names = analyses.names()
    assert len(names) >= 7
    pattern = re.compile(
        r"\b(" + "|".join(n for n in names if "_" in n) + r")\b|analyses\.(" + "|".join(names) + r")\b"
    )
    found = [
        (module, match.group(0))
        for module, path in MODULES.items()
        if not module.startswith("userops_lib.analyses.")
        for match in pattern.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not found, found


def test_an_analysis_computes_without_its_words_or_pictures():
    """An analysis' computing modules (all but text.py and charts.py) import no text or chart module, nor the
    formatting of numbers for people: presentation is asked for through the Result (contract.Presented)."""
    presentation = {"userops_lib.narrative", "userops_lib.plots", "userops_lib.templating", "userops_lib.render"}
    wrong = []
    for name in analyses.names():
        for module in (
            m for m in MODULES if m == f"userops_lib.analyses.{name}" or m.startswith(f"userops_lib.analyses.{name}.")
        ):
            if module.rsplit(".", 1)[-1] in ("text", "charts"):
                continue
            bad = {t for t in _imports(module) if t in presentation or t.rsplit(".", 1)[-1] in ("text", "charts")}
            if bad:
                wrong.append((module, sorted(bad)))
    assert not wrong, wrong


# Modules that cost seconds to import and that loading a dataset or asking for help never needs: the IRI grammar
# jsonschema would build (1.5 s), the model stacks of single analyses, plotting and the notebook runner.
HEAVY = (
    "rfc3987_syntax",
    "pymc",
    "pytensor",
    "pymc_marketing",
    "lifelines",
    "statsmodels",
    "matplotlib",
    "seaborn",
    "papermill",
    "nbconvert",
)


def _imported_by(code: str) -> list[str]:
    import subprocess
    import sys

    probe = f"{code}\nimport sys\nprint('HEAVY:', *(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.rsplit("HEAVY:", 1)[1].split()


def test_loading_a_dataset_imports_nothing_heavy():
    """What every notebook kernel pays before its analysis: the dataset loaded and validated."""
    assert _imported_by("from userops_lib.data import load_dataset\nload_dataset('data/sample')") == []
    # ... and the probe sees a heavy module when one is imported (it is not a test that cannot fail)
    assert _imported_by("import lifelines") == ["lifelines"]


def test_the_cli_help_imports_nothing_heavy():
    code = "from userops_lib import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass"
    assert _imported_by(code) == []


def test_planning_a_report_run_imports_no_model_stack():
    """The runner plans (every analysis's parameters checked against the data) and waits for its workers: the
    survival and customer-value model stacks load in the kernels that run those analyses, not here."""
    code = (
        "from userops_lib import cli\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert cli.main(['report', 'data/sample', '--check']) == 0"
    )
    found = _imported_by(code)
    assert not {"lifelines", "pymc", "pytensor", "pymc_marketing", "rfc3987_syntax"} & set(found), found
    assert "nbconvert" in found  # the probe sees what the runner does import (the index page's renderer)


def test_the_runner_and_each_report_job_import_nbformat_without_the_iri_grammar(tmp_path):
    """Both import nbformat (the runner to read notebooks, a job through papermill), whose jsonschema builds a
    grammar for IRI formats at import (1.3 s a process) unless userops imported jsonschema first."""
    runner = "from userops_lib import cli\ncli.main(['report', 'data/sample', '--check'])"
    spec = {"name": "x", "notebook": str(tmp_path / "missing.ipynb"), "ipynb": str(tmp_path / "x.ipynb")}
    job = f"from userops_lib import report_job\nprint(report_job.run({{**{spec!r}, 'parameters': {{}}, 'cwd': '.'}}))"
    for code in (runner, job):
        imported = _imported_by(code)
        assert {"nbconvert", "papermill"} & set(imported)  # the probe ran a path that imports nbformat
        assert "rfc3987_syntax" not in imported
    # without the first import, nbformat does build it (the probe would see it)
    assert "rfc3987_syntax" in _imported_by("import nbformat")
