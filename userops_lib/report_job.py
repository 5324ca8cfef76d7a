"""One report job, run in its own process by :mod:`userops_lib.report`: execute, then render.

``python -m userops_lib.report_job SPEC.json`` executes one notebook with papermill (explicit
kernel), writes the executed ``.ipynb``, renders the stakeholder HTML only if every cell ran, and
records the outcome in the status file named by the spec. A failure is recorded, never raised.
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

from userops_lib.files import atomically, write_text

KERNEL = "python3"
# Errors that mean "the disk or the system would not take the file": the run stops and says why.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EROFS, errno.EIO)
# A job that cannot even write its status exits with this plus the errno, so the runner can name the cause.
WRITE_EXIT_BASE = 64
_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\] ([^:'\]]+)(?::\s*'([^']*)')?")
KERNEL_START_ATTEMPTS = 2
_NOT_STARTED = ("Kernel didn't respond", "Kernel died before replying to kernel_info")


def run(spec: dict) -> dict:
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
                papermill.execute_notebook(
                    spec["notebook"],
                    work,
                    parameters=spec["parameters"],
                    kernel_name=KERNEL,
                    cwd=spec["cwd"],
                    progress_bar=False,
                    log_output=False,
                    report_mode=False,
                )
                break
            except RuntimeError as error:
                # A kernel that never came up (two kernels started at one moment can race for a TCP port)
                # ran no cell: starting it again is safe. Anything else is the notebook's failure.
                if attempt == KERNEL_START_ATTEMPTS or not _did_not_start(error):
                    raise
                status["kernel_restarts"] = attempt
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


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    status = run(spec)
    try:
        write_text(Path(spec["status"]), json.dumps(status, indent=1))
    except OSError as error:  # the disk is full even for a few bytes: the exit code says why
        print(f"cannot record the result: {error}", file=sys.stderr)
        return WRITE_EXIT_BASE + (error.errno or errno.EIO) if (error.errno or 0) < 256 - WRITE_EXIT_BASE else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
