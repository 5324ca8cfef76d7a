"""One report job, run in its own process by :mod:`userops_lib.report`: execute, then render.

``python -m userops_lib.report_job SPEC.json`` executes one notebook with papermill (explicit
kernel), writes the executed ``.ipynb``, renders the stakeholder HTML only if every cell ran, and
records the outcome in the status file named by the spec. A failure is recorded, never raised.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from userops_lib.files import write_text

KERNEL = "python3"
KERNEL_START_ATTEMPTS = 2
_NOT_STARTED = ("Kernel didn't respond", "Kernel died before replying to kernel_info")


def run(spec: dict) -> dict:
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from userops_lib import render

    started = time.monotonic()
    status: dict = {"name": spec["name"], "status": "failed"}
    try:
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            try:
                papermill.execute_notebook(
                    spec["notebook"],
                    spec["ipynb"],
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
        notebook = nbformat.read(spec["ipynb"], as_version=4)
        language = spec.get("language", "en")
        html = render.notebook_html(notebook, title=spec["title"], subtitle=spec.get("subtitle", ""), language=language)
        write_text(Path(spec["html"]), html)
        # The index shows the headlines in the run's language; headline.json (an interface) is English.
        folder = Path(spec["parameters"].get("artifacts_dir", ""))
        headline = next(
            (p for p in (folder / f"headline.{language}.json", folder / "headline.json") if p.is_file()), None
        )
        status.update(status="ok", headlines=json.loads(headline.read_text()) if headline else [])
    except PapermillExecutionError as error:
        status.update(error_name=error.ename, error_message=_shorten(error.evalue), error_cell=error.exec_count)
    except Exception as error:  # the kernel died, the notebook is unreadable...: record, don't raise
        status.update(error_name=type(error).__name__, error_message=_shorten(str(error)))
    status["seconds"] = round(time.monotonic() - started, 2)
    return status


def _did_not_start(error: BaseException) -> bool:
    """jupyter_client's errors for a kernel that did not answer its first request (no cell ran)."""
    return type(error) is RuntimeError and any(text in str(error) for text in _NOT_STARTED)


def _shorten(text: str, limit: int = 600) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    status = run(spec)
    write_text(Path(spec["status"]), json.dumps(status, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
