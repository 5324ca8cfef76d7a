"""The batch runner behind ``userops report``: plan, check, execute in processes, publish atomically.

A run executes each selected notebook (once per grid value) with papermill in its own process, at
most ``jobs`` at a time, each under a whole-run timeout. Everything is written to
``reports/.running-<run-id>/`` and renamed to ``reports/<run-id>/`` when done; ``reports/latest``
then points at it if every report succeeded, so a failed run never replaces a good one. Bad
datasets and parameters stop the run before any kernel starts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import nbformat

from userops_lib import engine, i18n, preflight, render, schemas, strict_yaml
from userops_lib import params as params_module
from userops_lib.data import load_dataset
from userops_lib.errors import DataError, Interrupted, Problem, RunWriteError
from userops_lib.files import write_text

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KERNEL_MEMORY_LIMIT = "1GB"  # DuckDB's memory per notebook kernel unless USEROPS_MEMORY_LIMIT says otherwise
DEFAULT_TIMEOUT_MINUTES = 20.0
REQUIRED_PARAMETERS = ("dataset", "artifacts_dir")
_PACKAGES = (
    "userops",
    "pandas",
    "numpy",
    "ibis-framework",
    "duckdb",
    "pyarrow",
    "lifelines",
    "statsmodels",
    "scipy",
    "matplotlib",
    "seaborn",
    "papermill",
    "nbconvert",
    "nbclient",
    "ipykernel",
)


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


def _fail(message: str, fix: str, **details) -> DataError:
    return DataError.single("report", message, fix, **details)


def discover(notebooks_dir: Path) -> dict[str, Path]:
    """Notebooks by name, the overview first."""
    found = {p.stem: p for p in sorted(notebooks_dir.glob("*.ipynb"))}
    if not found:
        raise _fail(f"no notebooks in {notebooks_dir}", "give --notebooks DIR with .ipynb files")
    order = sorted(found, key=lambda name: (name != "overview", name))
    return {name: found[name] for name in order}


def read_config(path: Path) -> dict:
    """The batch file, checked against :data:`schemas.CONFIG` (types, ranges, no unknown or repeated keys)."""
    raw = strict_yaml.load(path, what="config file")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail("the config file must be a mapping", "see the README, 'Batch runs'", example=raw)
    found = schemas.problems(raw, schemas.CONFIG, what="config file", keys_fix="see the README, 'Batch runs'")
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
) -> Plan:
    """Check everything that can be checked before a kernel starts, and list the jobs.

    ``language`` (``--lang``, else the config's ``language``, else English) sets the ``language``
    parameter of every notebook that declares one; the index page is written in it too.
    """
    settings = read_config(Path(config)) if config else {}
    language = i18n.check(language or settings.get("language") or (parameters or {}).get("language") or i18n.DEFAULT)
    config_dir = Path(config).resolve().parent if config else Path.cwd()
    folder = Path(notebooks_dir) if notebooks_dir else PROJECT_ROOT / "notebooks"
    available = discover(folder)
    names = list(only or settings.get("notebooks") or available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise _fail(f"unknown notebook '{unknown[0]}'", f"choose from {', '.join(available)}", example=unknown[0])
    declared = {name: params_module.notebook_parameters(available[name]) for name in names}
    problems = [
        Problem(
            "report",
            f"notebook '{n}' does not declare the parameter '{r}'",
            f"add '{r}: str = ...' to its parameters cell",
            column=r,
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
            raise _fail(
                f"give '{key}' as the top-level key or the DATASET argument, not as a parameter",
                f"move it to '{key}:' at the top of the config",
                column=key,
            )
        if key in (parameters or {}):
            raise _fail(
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
            raise _fail(
                f"grid parameter '{name}' is not declared by notebook '{missing[0]}'",
                "use parameters every selected notebook declares (e.g. filter_value), or --only",
                column=name,
            )

    dataset_text = dataset or settings.get("dataset") or str(PROJECT_ROOT / "data" / "sample")
    dataset_path = _resolve_path(str(dataset_text), config_dir, PROJECT_ROOT)
    ds = load_dataset(dataset_path)
    skipped = []
    for name in list(names):
        lacking = unmet(requirements(nbformat.read(available[name], as_version=4)), ds)
        if lacking is None:
            continue
        if only:
            raise _fail(
                f"notebook '{name}' needs {lacking}, which the dataset '{ds.name}' does not have",
                "choose another dataset or notebook",
                example=", ".join(ds.tables),
            )
        skipped.append({"name": name, "notebook": available[name].name, "reason": f"needs {lacking}", "needs": lacking})
        names.remove(name)
    if not names:
        raise _fail(
            f"no selected notebook applies to the dataset '{ds.name}'",
            "choose another dataset",
            example=", ".join(ds.tables),
        )
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())] if grid else [{}]
    jobs = []
    checks: list[tuple[str, dict]] = []
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
                ds.restrict(column, value)
            checks.append((name, values))
            job_name = name if not combo else f"{name}--{slug}"
            notebook = nbformat.read(available[name], as_version=4)
            with i18n.language(values.get("language", i18n.DEFAULT)):
                title = i18n.t(f"{name}.title") if i18n.has(f"{name}.title") else render.notebook_title(notebook, name)
            if combo:
                title += " (" + ", ".join(f"{k} = {v}" for k, v in combo.items()) + ")"
            jobs.append(Job(job_name, available[name], title, {**values, "dataset": dataset_path}, combo, english_only))
    preflight.check(checks, ds)
    from userops_lib.findings import quality as quality_text

    with i18n.language(language):
        quality_lines = quality_text.summary(ds.quality)
    result = Plan(dataset_path, ds.name, jobs, quality_lines, settings, skipped, language)
    if ds.con.name == "duckdb":
        ds.con.disconnect()  # the runner waits for the kernels: it should not hold DuckDB's buffers meanwhile
    return result


def new_run_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def fingerprint(dataset: str) -> dict:
    """sha256 over the dataset folder's files (names and bytes); URLs have none."""
    path = Path(dataset)
    if "://" in dataset or not path.is_dir():
        return {"sha256": None, "note": "not a folder: no content fingerprint"}
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    for file in files:
        digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return {"sha256": digest.hexdigest(), "files": len(files), "bytes": sum(f.stat().st_size for f in files)}


def _versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git() -> dict:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"commit": None}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


class _Progress:
    """One updating line on a terminal; plain lines otherwise."""

    def __init__(self, total: int, stream=None):
        self.stream = stream or sys.stderr
        self.total = total
        self.tty = self.stream.isatty()
        self.started = time.monotonic()

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def event(self, text: str, done: int, running: list[str]) -> None:
        """A lasting line (a notebook started or finished); on a terminal the status line follows it."""
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"[{done}/{self.total} done, {self._elapsed()}] {text}\n")
        self.tick(done, running)

    def tick(self, done: int, running: list[str]) -> None:
        """Redraw the status line on a terminal: how many done, elapsed time, what is running."""
        if self.tty and running:
            line = f"[{done}/{self.total} done, {self._elapsed()}] running: {', '.join(running)}"
            self.stream.write("\r\033[K" + line[:160])
        elif self.tty:
            self.stream.write("\r\033[K")
        self.stream.flush()


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
LOCK_NAME = ".lock"


def out_folder(out: str | None, settings: dict) -> Path:
    """The folder runs go into, absolute (a relative ``--out`` is the caller's working directory's).

    A run folder itself (or its staging folder) is refused: runs would nest inside one another.
    """
    given = out or settings.get("out")
    root = Path(given).expanduser().resolve() if given else PROJECT_ROOT / "reports"
    if root.exists() and not root.is_dir():
        raise _fail(
            "--out is a file, not a folder", "give a folder for the runs (it is created if missing)", example=str(given)
        )
    is_run = RUN_ID.fullmatch(root.name) is not None and (root / "manifest.json").exists()
    if is_run or root.name.startswith(".running-"):
        raise _fail(
            "--out is the folder of one run, not a folder of runs",
            f"give its parent folder: --out {root.parent}",
            example=str(given),
        )
    return root


def _claim(staging: Path):
    """Create the run's staging folder and hold a lock on it for as long as this process lives.

    The lock is the kernel's (``flock``): it goes away with the process however it ends, even by
    ``kill -9``, which is how a later run tells a dead run's leftovers from a live one's.
    """
    import fcntl

    staging.mkdir(parents=True)
    handle = (staging / LOCK_NAME).open("w")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def clear_stale(out_root: Path) -> list[Path]:
    """Remove ``.running-*`` folders whose runner is gone (nobody holds their lock); returns them."""
    import fcntl

    removed = []
    for folder in sorted(out_root.glob(".running-*")):
        lock = folder / LOCK_NAME
        if not folder.is_dir() or not RUN_ID.fullmatch(folder.name.removeprefix(".running-")):
            continue
        try:
            with lock.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live run
        except OSError:
            pass  # no lock file: a run from before locks, or one killed while creating it
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def execute(
    plan: Plan,
    *,
    out: str | None = None,
    jobs: int | None = None,
    timeout_minutes: float | None = None,
    progress_stream=None,
) -> tuple[int, Path]:
    """Run the plan; returns the exit code (0 all OK, 1 some report failed) and the run folder.

    Runs are atomic and owned: everything goes to ``.running-<run-id>`` (locked by this process) and
    is renamed when done. Ctrl-C, SIGTERM or SIGHUP stop the jobs and remove the staging folder; a
    ``kill -9`` takes the jobs down too (they die with their parent) and the next run clears the
    folder. A full disk (or any other write error) stops the run: jobs that finished are kept and
    published, the run is marked failed with the reason, and ``latest`` is left alone.
    """
    settings = plan.settings
    out_root = out_folder(out, settings)
    workers = max(1, int(jobs or settings.get("jobs") or 1))
    timeout = float(timeout_minutes or settings.get("timeout_minutes") or DEFAULT_TIMEOUT_MINUTES) * 60
    run_id = new_run_id()
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        clear_stale(out_root)
        staging = out_root / f".running-{run_id}"
        lock = _claim(staging)
    except OSError as exc:
        raise _fail(
            f"cannot create the run folder: {exc.strerror}",
            "give --out a folder you can write to on a disk with free space",
            example=str(out_root),
        ) from None
    internal = staging / ".jobs"
    started_at = dt.datetime.now(dt.UTC)
    progress = _Progress(len(plan.jobs), progress_stream)
    running: dict[str, tuple[subprocess.Popen, float, Job]] = {}
    results: dict[str, dict] = {}
    write_error: OSError | None = None
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        internal.mkdir()
        pending = _longest_first(plan.jobs, out_root) if workers > 1 else list(plan.jobs)
        while pending or running:
            while pending and len(running) < workers:
                job = pending.pop(0)
                running[job.name] = (_start(job, staging, internal), time.monotonic(), job)
                progress.event(f"started {job.name}", len(results), list(running))
            time.sleep(0.2)
            for name, (process, begun, job) in list(running.items()):
                if process.poll() is None and time.monotonic() - begun <= timeout:
                    continue
                if process.poll() is None:
                    _kill(process)
                    status = {
                        "status": "failed",
                        "error_name": "Timeout",
                        "error_message": f"the notebook ran longer than {timeout / 60:g} minutes and was stopped",
                        "minutes": timeout / 60,
                        "seconds": round(time.monotonic() - begun, 2),
                    }
                else:
                    status = _read_status(internal / f"{name}.status.json", process.returncode, begun)
                results[name] = _entry(status, job, staging, internal)
                del running[name]
                word = "OK" if status["status"] == "ok" else f"FAILED ({status.get('error_name')})"
                progress.event(
                    f"finished {name}: {word} in {status.get('seconds', 0):.0f} s", len(results), list(running)
                )
            progress.tick(len(results), list(running))
    except OSError as exc:  # ENOSPC, EDQUOT, EIO...: keep what finished, fail the rest
        write_error = exc
    except BaseException:
        for process, _, _ in running.values():
            _kill(process)
        shutil.rmtree(staging, ignore_errors=True)
        lock.close()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for process, _, _ in running.values():
        _kill(process)
    for job in plan.jobs:
        if job.name not in results:
            results[job.name] = _entry(
                {
                    "status": "failed",
                    "error_name": "NotRun",
                    "error_message": f"not run: {_describe(write_error)}",
                    "reason": _describe(write_error),
                    "seconds": 0,
                },
                job,
                staging,
                internal,
            )
    reports = [_publishable(results[job.name], job, staging) for job in plan.jobs]
    ok = write_error is None and all(r["status"] == "ok" for r in reports)
    run = {
        "run_id": run_id,
        "status": "ok" if ok else "failed",
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "dataset": plan.dataset,
        "dataset_name": plan.dataset_name,
        "dataset_fingerprint": fingerprint(plan.dataset),
        "quality": plan.quality_lines,
        "grid": settings.get("grid") or {},
        "jobs": workers,
        "engine": engine.chosen(),
        "timeout_minutes": timeout / 60,
        "versions": _versions(),
        "git": _git(),
        "command": sys.argv,
        "reports": reports,
        "skipped": plan.skipped,
        "language": plan.language,
        "error": None if write_error is None else _describe(write_error),
    }
    shutil.rmtree(internal, ignore_errors=True)
    final = out_root / run_id
    try:
        write_text(staging / "manifest.json", json.dumps(run, indent=1, default=str))
        write_text(staging / "index.html", render.index_html(run, reports))
    except OSError as exc:
        write_error = write_error or exc
        run["error"] = _describe(write_error)
    (staging / LOCK_NAME).unlink(missing_ok=True)
    staging.rename(final)  # a rename needs no free space
    lock.close()
    if write_error is not None:
        raise RunWriteError(run["error"], final)
    if ok:
        _point_latest(out_root, run_id)
    return (0 if ok else 1), final


def _describe(error: OSError | None) -> str:
    if error is None:
        return "the run stopped"
    where = f" while writing {error.filename}" if error.filename else ""
    return f"{error.strerror or error}{where}"


def _die_with_parent() -> None:
    """In the job's process, before it runs: be killed when the runner dies, even by ``kill -9``.

    Linux's parent-death signal; the notebook kernel under the job already exits when its parent does
    (ipykernel's parent poller), so the whole tree goes.
    """
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the runner's own signal handling still stops its jobs


def _start(job: Job, staging: Path, internal: Path) -> subprocess.Popen:
    artifacts = staging / job.name
    with i18n.language(job.parameters.get("language", i18n.DEFAULT)):
        subtitle = i18n.t("report.subtitle", dataset=Path(job.parameters["dataset"]).name)
    spec = {
        "name": job.name,
        "notebook": str(job.notebook.resolve()),
        "cwd": str(job.notebook.resolve().parent),
        "ipynb": str(staging / f"{job.name}.ipynb"),
        "html": str(staging / f"{job.name}.html"),
        "status": str(internal / f"{job.name}.status.json"),
        "title": job.title,
        "subtitle": subtitle,
        "language": job.parameters.get("language", i18n.DEFAULT),
        "parameters": {**job.parameters, "artifacts_dir": str(artifacts)},
    }
    spec_path = internal / f"{job.name}.spec.json"
    write_text(spec_path, json.dumps(spec, default=str))
    # Several kernels share the machine: each one's DuckDB is capped (and spills beyond the cap) unless
    # the caller chose a limit (pandas frames are not capped: see benchmarks/results.md).
    env = {**os.environ, engine.MEMORY_ENV: os.environ.get(engine.MEMORY_ENV) or KERNEL_MEMORY_LIMIT}
    with (internal / f"{job.name}.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "userops_lib.report_job", str(spec_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=spec["cwd"],
            env=env,
            preexec_fn=_die_with_parent,
        )


def _read_status(path: Path, returncode: int, begun: float) -> dict:
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            pass
    return {
        "status": "failed",
        "error_name": "WorkerDied",
        "error_message": f"the job process exited with code {returncode} before recording a result "
        "(its log is kept in the run folder)",
        "exit_code": returncode,
        "seconds": round(time.monotonic() - begun, 2),
    }


def _entry(status: dict, job: Job, staging: Path, internal: Path) -> dict:
    """A finished job's index entry (its name always set here: the index page needs it whatever the job
    managed to record); a failed job's log is kept in ``logs/`` with its last lines shown."""
    entry = {
        **status,
        "name": job.name,
        "notebook": job.notebook.name,
        "title": job.title,
        "parameters": job.parameters,
        "grid": job.grid_values,
        "english_only": job.english_only,
    }
    log = internal / f"{job.name}.log"
    if status.get("status") != "ok" and log.is_file() and log.stat().st_size:
        entry["log_tail"] = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-12:])
        try:
            (staging / "logs").mkdir(exist_ok=True)
            shutil.copyfile(log, staging / "logs" / f"{job.name}.log")
            entry["log"] = f"logs/{job.name}.log"
        except OSError:
            pass  # a full disk: the tail in the index is what there is
    return entry


def _publishable(result: dict, job: Job, staging: Path) -> dict:
    """The index/manifest entry; files of a failed report that could pass for success are removed."""
    entry = {**result, "ipynb": f"{job.name}.ipynb"}
    artifacts = staging / job.name
    if result["status"] == "ok":
        entry["html"] = f"{job.name}.html"
        entry["artifacts"] = sorted(p.name for p in artifacts.iterdir()) if artifacts.is_dir() else []
    else:
        # A failed report's page and tables could pass for results: only the executed notebook (with its
        # error) and the log stay.
        (staging / f"{job.name}.html").unlink(missing_ok=True)
        shutil.rmtree(artifacts, ignore_errors=True)
        entry["artifacts"] = []
    return entry


def _longest_first(jobs: list[Job], out_root: Path) -> list[Job]:
    """Jobs ordered by how long they took in the latest run (longest first, unknown ones first of all),
    so that with several workers the long notebook does not start last. Ties keep the plan's order."""
    seconds: dict[str, float] = {}
    try:
        previous = json.loads((out_root / "latest" / "manifest.json").read_text(encoding="utf-8"))
        seconds = {r["name"]: float(r["seconds"]) for r in previous.get("reports", []) if r.get("seconds") is not None}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return sorted(jobs, key=lambda job: -seconds.get(job.name, float("inf")))


def _point_latest(out_root: Path, run_id: str) -> None:
    """Swap ``latest`` to the new run atomically (a symlink renamed over the old one)."""
    temporary = out_root / f".latest-{run_id}"
    temporary.symlink_to(run_id)
    os.replace(temporary, out_root / "latest")
