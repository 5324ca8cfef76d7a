"""Report jobs, run in processes of their own by :mod:`userops_lib.runner`: execute, then render.

``python -m userops_lib.report_job --serve`` is a worker: it reads one job's spec path a line from its
standard input and runs the jobs in turn in one kernel it keeps warm (the stack is imported once, not
once a notebook), wiping the kernel's namespace, working folder and environment before each notebook.
``python -m userops_lib.report_job SPEC.json`` runs one job in a kernel of its own. Either way a job
executes its notebook with papermill, writes the executed ``.ipynb``, renders the stakeholder HTML only
if every cell ran, and records the outcome in the status file named by the spec. A failure is recorded,
never raised; a kernel that died is replaced before the next job.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from userops_lib.files import atomically, write_text

KERNEL = "python3"
# Errors that mean "the disk or the system would not take the file": the run stops and says why.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EROFS, errno.EIO)
# A job that cannot even write its status exits with this plus the errno, so the runner can name the cause.
WRITE_EXIT_BASE = 64
_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\] ([^:'\]]+)(?::\s*'([^']*)')?")
KERNEL_START_ATTEMPTS = 2
_NOT_STARTED = ("Kernel didn't respond", "Kernel died before replying to kernel_info")


SERVE = "--serve"
# Run in the kept kernel before each notebook: what the previous one left (its variables, its figures, the
# prompt numbers, the variables it set in the environment) is gone, and the working folder and the
# environment are the job's. Modules stay imported (the point of a kept kernel): a notebook that changed a
# library's settings leaves them changed; the analyses set theirs (theme, language, display) at their start.
_PREPARE = """\
get_ipython().run_line_magic("reset", "-f")
import gc as _gc, os as _os, sys as _sys
if "matplotlib.pyplot" in _sys.modules:
    _sys.modules["matplotlib.pyplot"].close("all")
_os.chdir({cwd!r})
_os.environ.clear()
_os.environ.update({env!r})
get_ipython().execution_count = 1
_gc.collect()
get_ipython().run_line_magic("reset", "-f")
"""


_WARM = "import matplotlib.pyplot, pandas, ibis\nimport userops_lib.data, userops_lib.notebook"


class WarmKernel:
    """The kernel a worker keeps for the notebooks it runs in turn; started again when it has died."""

    def __init__(self) -> None:
        self.manager: Any = None

    def start(self, cwd: str) -> None:
        """Start the kernel and have it import what every analysis uses, without waiting for the imports (the
        worker imports its own meanwhile, and the first job's preparation waits behind them)."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        self.manager = AsyncKernelManager(kernel_name=KERNEL)
        run_sync(self.manager.start_kernel)(cwd=cwd)
        client = self.manager.blocking_client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            client.execute(_WARM, store_history=False, silent=True)
        finally:
            client.stop_channels()

    def prepare(self, spec: dict):
        """The kernel manager, with a kernel alive and wiped for the job ``spec``. The manager is nbclient's
        own kind (asynchronous): with a blocking one nbclient waits on output forever when a kernel dies."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        if self.manager is None or not run_sync(self.manager.is_alive)():
            self.shutdown()
            self.manager = AsyncKernelManager(kernel_name=KERNEL)
            run_sync(self.manager.start_kernel)(cwd=spec["cwd"])
        client = self.manager.blocking_client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            env = {**os.environ, **spec.get("env", {})}  # the worker's environment and the job's own entries
            code = _PREPARE.format(cwd=spec["cwd"], env={k: v for k, v in env.items() if v is not None})
            reply = client.execute_interactive(code, store_history=False, timeout=60, output_hook=lambda msg: None)
        finally:
            client.stop_channels()
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the kernel could not be prepared: {reply['content'].get('evalue')}")
        return self.manager

    def shutdown(self) -> None:
        from jupyter_core.utils import run_sync

        if self.manager is not None:
            try:
                if run_sync(self.manager.is_alive)():
                    run_sync(self.manager.shutdown_kernel)(now=True)
                run_sync(self.manager.cleanup_resources)()
            except Exception:  # a kernel that is gone already: nothing to stop
                pass
            self.manager = None


def _warm_engine():
    """papermill's engine, on a kernel manager it is given and does not own (its client closed after)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    class Warm(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(
                kwargs,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client = PapermillNotebookClient(nb_man, **final)
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(WARM_ENGINE, Warm)


WARM_ENGINE = "userops-warm"


def run(spec: dict, kernel: WarmKernel | None = None) -> dict:
    """Execute and render one job; with ``kernel``, in that kept kernel (a worker's), else in a new one."""
    from userops_lib import imports

    imports.jsonschema()  # before papermill and nbformat: without the IRI grammar (1.3 s a job)
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from userops_lib import render

    started = time.monotonic()
    status: dict = {"name": spec["name"], "status": "failed"}
    # papermill writes the executed notebook cell by cell: to a working copy, published whole at the end.
    work = spec.get("work_ipynb") or spec["ipynb"]
    try:
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            try:
                warm = {}
                if kernel is not None:
                    _warm_engine()
                    warm = {"engine_name": WARM_ENGINE, "km": kernel.prepare(spec)}
                papermill.execute_notebook(
                    spec["notebook"],
                    work,
                    parameters=spec["parameters"],
                    kernel_name=KERNEL,
                    cwd=spec["cwd"],
                    progress_bar=False,
                    log_output=False,
                    report_mode=False,
                    **warm,
                )
                break
            except RuntimeError as error:
                # A kernel that never came up (two kernels started at one moment can race for a TCP port)
                # ran no cell: starting it again is safe. Anything else is the notebook's failure.
                if attempt == KERNEL_START_ATTEMPTS or not _did_not_start(error):
                    raise
                status["kernel_restarts"] = attempt
                if kernel is not None:
                    kernel.shutdown()
                time.sleep(1)
        notebook = nbformat.read(work, as_version=4)
        language = spec.get("language", "en")
        html = render.notebook_html(notebook, title=spec["title"], subtitle=spec.get("subtitle", ""), language=language)
        write_text(Path(spec["html"]), html)
        # The index shows the headlines in the run's language; headline.json (an interface) is English.
        folder = Path(spec["parameters"].get("artifacts_dir", ""))
        headline = next(
            (p for p in (folder / f"headline.{language}.json", folder / "headline.json") if p.is_file()), None
        )
        status.update(status="ok", headlines=json.loads(headline.read_text()) if headline else [])
        warned = next(
            (p for p in (folder / f"warnings.{language}.json", folder / "warnings.json") if p.is_file()), None
        )
        if warned is not None:
            status["warnings"] = json.loads(warned.read_text(encoding="utf-8"))
    except PapermillExecutionError as error:
        status.update(error_name=error.ename, error_message=_shorten(error.evalue), error_cell=error.exec_count)
        if error.ename in ("OSError", "PermissionError") and (found := _ERRNO_TEXT.search(error.evalue or "")):
            _write_error(status, int(found.group(1)), found.group(3))  # the notebook could not write a file
    except OSError as error:
        if error.errno in WRITE_ERRNOS:
            # A write without a file name is papermill's, of the executed notebook: name that one.
            _write_error(status, error.errno, error.filename or spec["ipynb"])
        else:
            status.update(error_name=type(error).__name__, error_message=_shorten(str(error)))
    except Exception as error:  # the kernel died, the notebook is unreadable...: record, don't raise
        status.update(error_name=type(error).__name__, error_message=_shorten(str(error)))
    try:
        _publish_notebook(Path(work), Path(spec["ipynb"]))
    except OSError as error:
        if status["status"] == "ok":
            status.update(status="failed")
        _write_error(status, error.errno or errno.EIO, str(spec["ipynb"]))
    status["seconds"] = round(time.monotonic() - started, 2)
    return status


def _write_error(status: dict, number: int, filename: str | None) -> None:
    """Record that a file could not be written, and why, in words the runner and the index show."""
    where = f" while writing {Path(filename).name}" if filename else ""
    status.update(
        status="failed",
        error_name="WriteError",
        errno=number,
        file=Path(filename).name if filename else "",
        error_message=f"{os.strerror(number)}{where}",
    )


def _publish_notebook(work: Path, published: Path) -> None:
    """Copy the executed notebook to the run folder whole, or not at all: papermill writes it cell by
    cell, so a write that failed half-way leaves a truncated file, which stays out of the run."""
    import nbformat

    if not work.is_file() or work == published:
        return
    try:
        nbformat.read(work, as_version=4)
    except Exception:  # truncated JSON: nothing worth publishing
        return
    atomically(published, lambda partial: shutil.copyfile(work, partial))


def _did_not_start(error: BaseException) -> bool:
    """jupyter_client's errors for a kernel that did not answer its first request (no cell ran)."""
    return type(error) is RuntimeError and any(text in str(error) for text in _NOT_STARTED)


def _shorten(text: str, limit: int = 600) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _record(spec: dict, status: dict) -> int:
    try:
        write_text(Path(spec["status"]), json.dumps(status, indent=1))
    except OSError as error:  # the disk is full even for a few bytes: the exit code says why
        print(f"cannot record the result: {error}", file=sys.stderr)
        return WRITE_EXIT_BASE + (error.errno or errno.EIO) if (error.errno or 0) < 256 - WRITE_EXIT_BASE else 1
    return 0


def serve(inbox) -> int:
    """The worker: run the job of each spec path read from ``inbox`` in turn, in one kept kernel, until
    the runner closes it; a status that cannot be written ends the worker with its exit code."""
    kernel = WarmKernel()
    try:
        try:
            kernel.start(os.getcwd())
        except Exception:  # the first job starts one again, and reports why if it cannot
            kernel.shutdown()
        from userops_lib import imports

        imports.jsonschema()
        import papermill  # noqa: F401  (what each job needs, imported while the kernel imports its own)

        from userops_lib import render  # noqa: F401

        for line in inbox:
            if not line.strip():
                continue
            spec = json.loads(Path(line.strip()).read_text(encoding="utf-8"))
            print(f"--- {spec['name']}", flush=True)
            code = _record(spec, run(spec, kernel))
            if code:
                return code
        return 0
    finally:
        kernel.shutdown()


def main(argv: list[str]) -> int:
    if argv and argv[0] == SERVE:
        return serve(sys.stdin)
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    return _record(spec, run(spec))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
