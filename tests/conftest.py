from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"

# Tests run on two workers (pytest-xdist), each module on one worker, so its module fixtures are built once;
# the modules that read the session's sample run share a worker, so its notebooks run once. xdist's own
# `--dist loadgroup` does not group under pytest 9.2 (it renames `item._nodeid`, which pytest no longer reads),
# so the grouping is a scheduler of ours: xdist's `loadscope` with the scope being the module or the shared run.
SHARED_RUN = {"test_browser", "test_report", "test_readme", "test_store"}


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = _module(nodeid)
            if module in SHARED_RUN:
                return "sample_run"
            if module == "test_engines":  # the engine matrix: Spark's half and PostgreSQL's on either worker
                return f"{nodeid.split('::', 1)[0]}::{'postgres' if '[postgres' in nodeid else 'spark'}"
            return nodeid.split("::", 1)[0]

    return ModuleScheduling(config, log)


def write_dataset(folder: Path, files: dict[str, str | pd.DataFrame], manifest: dict | None = None) -> Path:
    """Write a dataset folder: text or DataFrame files, and a dataset.yml when given."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        if isinstance(content, pd.DataFrame):
            if name.endswith(".parquet"):
                content.to_parquet(path, index=False)
            else:
                content.to_csv(path, index=False)
        else:
            path.write_text(content, encoding="utf-8")
    if manifest is not None:
        (folder / "dataset.yml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture
def make_dataset(tmp_path):
    counter = {"n": 0}

    def make(files: dict, manifest: dict | None = None) -> Path:
        counter["n"] += 1
        return write_dataset(tmp_path / f"dataset{counter['n']}", files, manifest)

    return make


USERS_CSV = """user_id,signup_at,channel
1,2024-01-01 09:00:00,organic
2,2024-01-02 10:00:00,paid
3,2024-01-03 11:00:00,organic
"""

EVENTS_CSV = """user_id,event_at,event,revenue
1,2024-01-01 09:30:00,session,
1,2024-01-05 12:00:00,purchase,10.5
2,2024-01-02 10:05:00,session,
3,2024-01-04 08:00:00,purchase,20
"""


def write_notebook(path: Path, body: str, *, parameters: str = "") -> Path:
    """A minimal report notebook: a title, the runner's parameters, and ``body`` as one code cell."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    cell = nbformat.v4.new_code_cell(
        'dataset: str = "data/sample"  # dataset\nartifacts_dir: str = ""  # set by the runner\n' + parameters
    )
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Fixture {path.stem}"), cell, nbformat.v4.new_code_cell(body)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """One `userops report` run of every notebook on the bundled sample: (exit code, run folder, reports root)."""
    from userops_lib import report, runner

    out = tmp_path_factory.mktemp("reports")
    code, folder = runner.execute(report.plan_run(), out=str(out), jobs=2)
    return code, folder, out


@pytest.fixture(scope="session")
def sample_run_zh(tmp_path_factory):
    """The sample's heaviest pages (the overview, cohort retention) in Chinese: (exit code, run folder)."""
    from userops_lib import report, runner

    out = tmp_path_factory.mktemp("reports-zh")
    plan = report.plan_run(only=["overview", "cohort_retention"], language="zh")
    code, folder = runner.execute(plan, out=str(out), jobs=2)
    return code, folder


@pytest.fixture(scope="session")
def cdnow(tmp_path_factory) -> Path:
    """The CDNOW log as shipped in the lifetimes wheel, described only by a dataset.yml."""
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None, "the dev extra installs lifetimes, which carries the CDNOW log"
    source = Path(spec.origin).parent / "datasets" / "CDNOW_master.txt"
    folder = tmp_path_factory.mktemp("cdnow")
    shutil.copy(source, folder / "CDNOW_master.txt")
    (folder / "dataset.yml").write_text(
        "name: cdnow\ncurrency: $\ntables:\n  events:\n    path: CDNOW_master.txt\n    format: whitespace\n"
        "    columns:\n      user_id: customer_id\n      event_at: {column: date, format: '%Y%m%d'}\n"
        "      revenue: dollar_value\n"
    )
    return folder
