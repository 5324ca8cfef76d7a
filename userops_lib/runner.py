"""Executing a plan: the dataset written once to the run's store, then each job's notebook run by one of
``jobs`` worker processes (each keeps a kernel for the notebooks it runs in turn; a notebook under a
whole-run timeout), written to ``reports/.running-<run-id>/`` and renamed to ``reports/<run-id>/`` when
done; ``reports/latest`` then points at it if every report succeeded, so a failed run never replaces a good
one. A full disk or a signal stops the run with what finished kept.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb

from userops_lib import engine, i18n, processes, provenance, render, report, report_job, store
from userops_lib.errors import DataError, Interrupted, RunWriteError
from userops_lib.files import write_text
from userops_lib.report import DEFAULT_TIMEOUT_MINUTES, PROJECT_ROOT, Job, Plan


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
        raise report.fail(
            "--out is a file, not a folder", "give a folder for the runs (it is created if missing)", example=str(given)
        )
    is_run = RUN_ID.fullmatch(root.name) is not None and (root / "manifest.json").exists()
    if is_run or root.name.startswith(".running-"):
        raise report.fail(
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
    use_store: bool = True,
) -> tuple[int, Path]:
    """Run the plan; returns the exit code (0 all OK, 1 some report failed) and the run folder.

    Runs are atomic and owned: everything goes to ``.running-<run-id>`` (locked by this process) and
    is renamed when done. Ctrl-C, SIGTERM or SIGHUP stop the jobs and remove the staging folder; a
    ``kill -9`` takes the jobs down too (they die with their parent) and the next run clears the
    folder. A full disk (or any other write error) stops the run: jobs that finished are kept and
    published, the run is marked failed with the reason, and ``latest`` is left alone.

    The dataset is read and checked once: the plan's load is written to the run's store
    (:mod:`userops_lib.store`), which the kernels read; ``use_store=False`` (``--no-store``) has every
    kernel load the source itself.
    """
    settings = plan.settings
    out_root = out_folder(out, settings)
    workers = max(1, int(jobs or settings.get("jobs") or default_jobs()))
    timeout = float(timeout_minutes or settings.get("timeout_minutes") or DEFAULT_TIMEOUT_MINUTES) * 60
    run_id = provenance.new_run_id()
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        clear_stale(out_root)
        staging = out_root / f".running-{run_id}"
        lock = _claim(staging)
    except OSError as exc:
        raise report.fail(
            f"cannot create the run folder: {exc.strerror}",
            "give --out a folder you can write to on a disk with free space",
            example=str(out_root),
        ) from None
    internal = staging / ".jobs"
    started_at = dt.datetime.now(dt.UTC)
    progress = _Progress(len(plan.jobs), progress_stream)
    running: dict[str, tuple[_Worker, float, Job]] = {}
    pool: list[_Worker] = []
    results: dict[str, dict] = {}
    write_error: OSError | None = None
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    stores: dict[tuple, Path] = {}
    stored: dict = {}
    try:
        internal.mkdir()
        if use_store:
            stores, stored = _write_stores(plan, internal, progress)
        _release(plan)
        pending = _longest_first(plan.jobs, out_root) if workers > 1 else list(plan.jobs)
        started = 0
        while pending or running:
            while pending and len(running) < workers:
                job = pending.pop(0)
                worker = next((w for w in pool if w.job is None), None)
                if worker is None:
                    started += 1
                    worker = _Worker(started, internal, workers, job)
                    pool.append(worker)
                running[job.name] = (worker, time.monotonic(), job)
                _start(job, staging, internal, worker, stores.get(_job_key(job)))
                progress.event(f"started {job.name}", len(results), list(running))
            time.sleep(0.2)
            for name, (worker, begun, job) in list(running.items()):
                done = internal / f"{name}.status.json"
                if done.is_file():
                    status = _read_status(done, 0, begun)
                elif worker.process.poll() is not None:  # the worker died, or could not record the result
                    status = _read_status(done, worker.process.returncode, begun)
                    pool.remove(worker)
                elif time.monotonic() - begun > timeout:
                    _kill(worker.process)
                    pool.remove(worker)
                    status = {
                        "status": "failed",
                        "error_name": "Timeout",
                        "error_message": f"the notebook ran longer than {timeout / 60:g} minutes and was stopped",
                        "minutes": timeout / 60,
                        "seconds": round(time.monotonic() - begun, 2),
                    }
                else:
                    continue
                worker.finish(internal / f"{name}.log")
                results[name] = _entry(status, job, staging, internal)
                del running[name]
                if status.get("error_name") == "WriteError":
                    # The disk (or a quota, or a file-size limit) would not take a job's files: the next jobs
                    # would fail the same way. Stop here, keep what finished, and say why.
                    raise OSError(status.get("errno") or errno.EIO, status["error_message"])
                word = "OK" if status["status"] == "ok" else f"FAILED ({status.get('error_name')})"
                if status["status"] == "ok" and status.get("warnings"):
                    word = "WARNING (see the index)"
                progress.event(
                    f"finished {name}: {word} in {status.get('seconds', 0):.0f} s", len(results), list(running)
                )
            progress.tick(len(results), list(running))
    except OSError as exc:  # ENOSPC, EDQUOT, EIO...: keep what finished, fail the rest
        write_error = exc
    except BaseException:
        for worker in pool:
            _kill(worker.process)
        shutil.rmtree(staging, ignore_errors=True)
        lock.close()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for worker in pool:
        worker.stop(kill=bool(running))
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
        "dataset_fingerprint": provenance.fingerprint(plan.dataset),
        "quality": plan.quality_lines,
        "grid": settings.get("grid") or {},
        "jobs": workers,
        "engine": engine.chosen(),
        "store": stored,
        "timeout_minutes": timeout / 60,
        "versions": provenance.versions(),
        "git": provenance.git(),
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
        raise RunWriteError(str(run["error"]), final)
    if ok:
        _point_latest(out_root, run_id)
    return (0 if ok else 1), final


def _describe(error: OSError | None) -> str:
    if error is None:
        return "the run stopped"
    where = f" while writing {Path(error.filename).name}" if error.filename else ""
    return f"{error.strerror or error}{where}"


def default_jobs() -> int:
    """Notebooks run at once when ``--jobs`` is not given: one a core, at most four, and no more than leave each
    kernel's DuckDB 2 GiB of its share of the RAM (:func:`engine.job_settings`)."""
    ram = engine.ram()
    by_memory = max(1, ram // engine.RUN_SHARE // 2**31) if ram else 1
    return max(1, min(os.cpu_count() or 1, 4, by_memory))


def _job_key(job: Job) -> tuple[str, str, str]:
    values = job.parameters
    return store.key(str(values["dataset"]), values.get("snapshot_at", ""), values.get("timezone", ""))


def _shared(jobs) -> set[str]:
    """The shared reductions the analyses of ``jobs`` read (``About.shared``; a notebook outside the registry
    reads none from the store: it computes what it asks for)."""
    from userops_lib import analyses

    known = set(analyses.folders())
    return {name for job in jobs if job.notebook.stem in known for name in analyses.get(job.notebook.stem).about.shared}


def _write_stores(plan: Plan, internal: Path, progress: _Progress) -> tuple[dict[tuple, Path], dict]:
    """Write the run's store for each load the jobs ask for (one, unless notebooks differ in snapshot or zone):
    the plan's load where it is the one, else a load made here. Returns the stores by load and what was
    written, for the run's manifest. A store that cannot be written (a dataset on a database, a full disk)
    leaves its jobs to read the source, as without a store."""
    from userops_lib.data import load_dataset

    keys = list(dict.fromkeys(_job_key(job) for job in plan.jobs))
    paths: dict[tuple, Path] = {}
    written: dict = {"stores": [], "reports": 0}
    for number, wanted in enumerate(keys):
        ds = plan.loaded if wanted == tuple(plan.loaded_key) else None
        try:
            if ds is None:
                _, snapshot_at, timezone = wanted
                ds = load_dataset(plan.dataset, snapshot_at=snapshot_at or None, calendar=timezone or None)
            if not store.storable(ds):
                continue
            path = internal / f"store-{number}.duckdb"
            facts = store.write(ds, path, wanted, _shared(job for job in plan.jobs if _job_key(job) == wanted))
        except (DataError, OSError, duckdb.Error) as exc:
            progress.event(
                f"the run's store was not written ({str(exc).splitlines()[0]}): notebooks read the dataset", 0, []
            )
            continue
        finally:
            if ds is not None and ds is not plan.loaded and ds.con.name == "duckdb":
                ds.con.disconnect()
        paths[wanted] = path
        reports = sum(_job_key(job) == wanted for job in plan.jobs)
        written["stores"].append({**facts, "snapshot_at": wanted[1], "timezone": wanted[2], "reports": reports})
        written["reports"] += reports
        progress.event(f"read and checked the dataset once for {reports} report(s) ({facts['seconds']:.1f} s)", 0, [])
    return paths, written


def _release(plan: Plan) -> None:
    """Close the plan's connection: the runner waits for the kernels and should not hold DuckDB's buffers."""
    if plan.loaded is not None and plan.loaded.con.name == "duckdb":
        plan.loaded.con.disconnect()
    plan.loaded = None


class _Worker:
    """A worker process (``report_job --serve``) that runs the jobs it is handed in turn, in one kernel it
    keeps warm; its own session, so a timeout or a stopped run kills it with its kernel. Its log is one
    file; each job's part of it is cut out when the job ends (kept in the run when the job failed)."""

    def __init__(self, number: int, internal: Path, workers: int, first: Job):
        self.log = internal / f"worker-{number}.log"
        self.offset = 0
        self.job: str | None = None
        # Several kernels share the machine: each one's DuckDB gets its share of the memory (it spills beyond
        # it) and of the cores, unless the caller chose (pandas frames are not capped: see benchmarks/results.md).
        env = {**os.environ, **engine.job_settings(workers)}
        env.pop(store.ENV, None)  # a job's store is named in its spec
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "userops_lib.report_job", report_job.SERVE],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=str(first.notebook.resolve().parent),
                env=env,
                preexec_fn=processes.die_with_parent,
            )

    def give(self, name: str, spec_path: Path) -> None:
        """Hand the worker a job (a line on its standard input)."""
        self.job = name
        self.offset = self.log.stat().st_size if self.log.is_file() else 0
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(f"{spec_path}\n".encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # the worker is gone: the runner sees it exit and records why

    def finish(self, job_log: Path) -> None:
        """The job's part of the worker's log, as the job's own log; the worker is free again."""
        try:
            with self.log.open("rb") as log:
                log.seek(self.offset)
                job_log.write_bytes(log.read())
        except OSError:
            pass  # a full disk: the runner reports the job without its log
        self.job = None

    def stop(self, *, kill: bool = False) -> None:
        """End the worker: its input closed (it shuts its kernel down and exits), killed if it lingers."""
        if kill:
            _kill(self.process)
            return
        try:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            _kill(self.process)


def _start(job: Job, staging: Path, internal: Path, worker: _Worker, store_path: Path | None = None) -> None:
    """Write the job's spec and hand it to ``worker``."""
    artifacts = staging / job.name
    with i18n.language(job.parameters.get("language", i18n.DEFAULT)):
        subtitle = i18n.t("report.subtitle", dataset=Path(job.parameters["dataset"]).name)
    spec = {
        "name": job.name,
        "notebook": str(job.notebook.resolve()),
        "cwd": str(job.notebook.resolve().parent),
        "ipynb": str(staging / f"{job.name}.ipynb"),
        "work_ipynb": str(internal / f"{job.name}.ipynb"),  # papermill writes here; published whole
        "html": str(staging / f"{job.name}.html"),
        "status": str(internal / f"{job.name}.status.json"),
        "title": job.title,
        "subtitle": subtitle,
        "language": job.parameters.get("language", i18n.DEFAULT),
        "parameters": {**job.parameters, "artifacts_dir": str(artifacts)},
        "env": {store.ENV: str(store_path) if store_path is not None else None},
    }
    spec_path = internal / f"{job.name}.spec.json"
    write_text(spec_path, json.dumps(spec, default=str))
    worker.give(job.name, spec_path)


def _read_status(path: Path, returncode: int, begun: float) -> dict:
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            pass
    number = returncode - report_job.WRITE_EXIT_BASE
    if number in report_job.WRITE_ERRNOS:  # the job could not write even its status
        return {
            "status": "failed",
            "error_name": "WriteError",
            "errno": number,
            "error_message": f"{os.strerror(number)} (the job could not record its result)",
            "seconds": round(time.monotonic() - begun, 2),
        }
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
