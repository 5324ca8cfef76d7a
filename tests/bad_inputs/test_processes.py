"""Processes and disks under a run, broken on purpose: MCMC sampling killed or timed out must leave no
process; a full disk or a file-size limit during the last notebook must be named and leave no partial file."""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write_notebook
from tests.test_faults import SAMPLE, _alive, _gone, _parent

pytestmark = pytest.mark.slow  # report runs stopped by signals and limits


# -- MCMC: the sampler's workers go with the run ------------------------------------------------------
def _marked(mark: str) -> list[int]:
    """Processes whose environment carries ``USEROPS_TEST_RUN=mark``: the runner and all it started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"USEROPS_TEST_RUN={mark}".encode() in environ.split(b"\0") and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _is_kernel(pid: int) -> bool:
    try:
        return b"ipykernel_launcher" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # ended between the listing and this read
        return False


def _parent_if_alive(pid: int) -> int:
    try:
        return _parent(pid)
    except OSError:
        return -1


def _sampling_run(tmp_path: Path, mark: str, *extra: str) -> tuple[subprocess.Popen, list[int]]:
    """``userops report --only customer_value -p method=mcmc`` until PyMC's sampler workers run (children of
    the kernel with the kernel's command line); returns the runner and the workers."""
    runner = subprocess.Popen(
        [sys.executable, "-m", "userops_lib.cli", "report", SAMPLE, "--only", "customer_value"]
        + ["-p", "method=mcmc", "--out", str(tmp_path / "reports"), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "USEROPS_TEST_RUN": mark},
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and runner.poll() is None:
        kernels = [p for p in _marked(mark) if _is_kernel(p)]
        workers = [p for p in kernels if _parent_if_alive(p) in kernels]
        if len(workers) >= 2:
            return runner, workers
        time.sleep(0.5)
    runner.kill()
    raise AssertionError(f"the sampler's workers never started: {runner.stderr.read() if runner.stderr else ''}")


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM", "timeout"])
def test_a_run_stopped_while_mcmc_samples_leaves_no_process(tmp_path, how):
    """``timeout``: what the runner does when a notebook runs past --timeout-minutes (``runner._kill``: SIGKILL
    to the job's process group), done the moment sampling runs, so the test does not race the clock."""
    mark = f"{os.getpid()}-{how.replace(' ', '')}"
    runner, workers = _sampling_run(tmp_path, mark)
    if how == "kill -9":
        runner.send_signal(signal.SIGKILL)
    elif how == "SIGTERM":
        runner.send_signal(signal.SIGTERM)
    else:
        kernel = _parent(workers[0])
        job = _parent(kernel)
        assert _parent(job) == runner.pid
        os.killpg(job, signal.SIGKILL)  # the runner's timeout kill
    runner.wait(timeout=120)
    assert _gone(workers, seconds=30), "a sampler worker outlived the run"
    deadline = time.monotonic() + 30
    while _marked(mark) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _marked(mark), "processes of the run are left: " + ", ".join(map(str, _marked(mark)))


def test_a_file_size_limit_during_the_last_notebook_is_named_and_leaves_no_partial_file(tmp_path):
    """The write error a full disk gives, made real: a file-size limit (RLIMIT_FSIZE, inherited by the jobs)
    that the last notebook's executed .ipynb outgrows. What finished is published; the cause is named on
    the terminal and on the index; no truncated notebook or partial file is left in the run."""
    import resource

    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks / "a_quick.ipynb", "print('ok')")
    write_notebook(notebooks / "z_big.ipynb", "print('x' * 3_000_000)")
    out = tmp_path / "reports"
    limit = 2_000_000

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "userops_lib.cli", "report", SAMPLE, "--notebooks", str(notebooks), "--out", str(out)]
        + ["--jobs", "1"],  # one after the other: the error comes during the last notebook
        capture_output=True,
        text=True,
        preexec_fn=limited,
    )
    assert result.returncode == 1, result.stderr
    assert "File too large while writing z_big.ipynb" in result.stderr and "Traceback" not in result.stderr
    [folder] = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert (folder / "a_quick.html").is_file() and (folder / "a_quick.ipynb").is_file()
    assert not (folder / "z_big.ipynb").exists() and not (folder / "z_big.html").exists()
    assert not [p for p in folder.rglob("*") if "partial" in p.name or p.name.startswith(".jobs")]
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert "File too large (the system's file-size limit) while writing z_big.ipynb" in html.unescape(index)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert {r["name"]: r["status"] for r in manifest["reports"]} == {"a_quick": "ok", "z_big": "failed"}
    assert not (out / "latest").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB file system (tmpfs) to run into: a real full disk. Mounting needs root, as CI has."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_during_the_last_notebook_is_named_and_leaves_no_partial_file(tmp_path, small_disk):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks / "a_quick.ipynb", "print('ok')")
    write_notebook(notebooks / "z_big.ipynb", "print('x' * 6_000_000)")  # more than the disk holds
    out = small_disk / "reports"
    result = subprocess.run(
        [sys.executable, "-m", "userops_lib.cli", "report", SAMPLE, "--notebooks", str(notebooks), "--out", str(out)]
        + ["--jobs", "1"],  # one after the other: the error comes during the last notebook
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    [folder] = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert (folder / "a_quick.html").is_file()  # what finished is kept
    assert not (folder / "z_big.ipynb").exists() and not (folder / "z_big.html").exists()
    assert not [p for p in folder.rglob("*") if "partial" in p.name or p.name == ".jobs"]
    index = html.unescape((folder / "index.html").read_text(encoding="utf-8"))
    assert "No space left on device" in index
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert {r["name"]: r["status"] for r in manifest["reports"]} == {"a_quick": "ok", "z_big": "failed"}
    assert not (out / "latest").exists()
