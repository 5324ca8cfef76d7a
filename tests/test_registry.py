"""Adding an analysis is one folder and its catalogue keys: the README's template, written into a copy of the
project, is found by the registry, gets its notebook, has its parameters checked before any kernel starts and
publishes in English and Chinese, with no other file edited."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

TEMPLATE = re.compile(r"^<!-- template: (\S+) -->\n```\w+\n(.*?)^```", re.M | re.S)
CATALOGUES = {
    "en": "userops_lib/locales/en/LC_MESSAGES/userops.po",
    "zh": "userops_lib/locales/zh_CN/LC_MESSAGES/userops.po",
}


def test_the_readme_holds_the_template_of_an_analysis():
    found = dict(TEMPLATE.findall((ROOT / "README.md").read_text(encoding="utf-8")))
    assert set(found) == {
        "userops_lib/analyses/event_reach/__init__.py",
        "userops_lib/analyses/event_reach/text.py",
        "userops_lib/analyses/event_reach/charts.py",
        "en",
        "zh",
    }
    assert not (ROOT / "userops_lib" / "analyses" / "event_reach").exists()  # an example, not part of the project


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project with the README's template analysis added (its folder and its keys only)."""
    copy = tmp_path_factory.mktemp("project")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "userops_lib", copy / "userops_lib", ignore=ignore)
    shutil.copytree(ROOT / "notebooks", copy / "notebooks")
    shutil.copytree(ROOT / "data" / "sample", copy / "data" / "sample")
    for target, body in TEMPLATE.findall((ROOT / "README.md").read_text(encoding="utf-8")):
        if target in CATALOGUES:
            path = copy / CATALOGUES[target]
            path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + body, encoding="utf-8")
        else:
            (copy / target).parent.mkdir(parents=True, exist_ok=True)
            (copy / target).write_text(body, encoding="utf-8")
    return copy


def _userops(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(project)}  # the copy's package, in the CLI and in every kernel
    return subprocess.run(
        [sys.executable, "-m", "userops_lib.cli", *args], cwd=project, env=env, capture_output=True, text=True
    )


@pytest.mark.slow
def test_an_analysis_from_the_template_publishes_in_english_and_chinese(project, tmp_path):
    written = _userops(project, "notebooks")
    assert written.returncode == 0, written.stderr
    assert (project / "notebooks" / "event_reach.ipynb").is_file()
    assert _userops(project, "notebooks", "--check").returncode == 0
    # its parameters are checked before any kernel starts, from the rules of its Params, in the run's language
    for language, says in (("en", "'top' of notebook 'event_reach' must be at least 1"), ("zh", "须不小于 1")):
        refused = _userops(project, "report", "--only", "event_reach", "-p", "top=0", "--lang", language, "--out", "r")
        assert refused.returncode == 2 and says in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    refused = _userops(project, "report", "--only", "event_reach", "-p", "events=nosuch", "--out", "r")
    assert refused.returncode == 2 and "no event named 'nosuch'" in refused.stderr, refused.stderr
    assert not (project / "r").exists()  # nothing started
    for language, title in (("en", "Event reach"), ("zh", "事件触达")):
        out = tmp_path / language
        done = _userops(project, "report", "--only", "event_reach", "--lang", language, "--out", str(out))
        assert done.returncode == 0, done.stderr[-3000:]
        run = (out / "latest").resolve()
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        assert [(r["name"], r["status"]) for r in manifest["reports"]] == [("event_reach", "ok")]
        page = (run / "event_reach.html").read_text(encoding="utf-8")
        assert title in page and "<img" in page
        reach = (run / "event_reach" / "reach.csv").read_text(encoding="utf-8").splitlines()
        assert reach[0] == "event,users,share,ci_low,ci_high" and len(reach) == 4  # the sample's three events


ENGINE_MATRIX = ("__init__.py", "conftest.py", "warehouse.py", "postgres.sh", "test_engines.py")


@pytest.mark.slow
def test_an_analysis_from_the_template_is_checked_on_every_engine(project):
    """The engine matrix of the project, run in the copy, finds the new analysis' reductions by itself and
    compares them with DuckDB's on Spark and on PostgreSQL, in UTC days and in Beijing days."""
    (project / "tests").mkdir(exist_ok=True)
    for name in ENGINE_MATRIX:
        shutil.copy(ROOT / "tests" / name, project / "tests" / name)
    shutil.copytree(ROOT / "data" / "telco_churn", project / "data" / "telco_churn", dirs_exist_ok=True)
    shutil.copytree(ROOT / "data" / "hillstrom", project / "data" / "hillstrom", dirs_exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(project)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_engines.py", "-k", "event_reach", "-p", "no:cacheprovider"]
        + ["-o", "addopts=", "-o", "markers=slow", "-q", "-rs"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "4 passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-3000:]
