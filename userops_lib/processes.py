"""Processes that die with their parent: no worker outlives the run that started it.

A report run is a tree: the runner, its worker processes (one per ``--jobs``), each worker's kernel, and
the workers libraries start inside the kernel (PyMC's samplers). Each level dies when the level above does,
even on ``kill -9``: jobs and workers by Linux's parent-death signal (:func:`die_with_parent`, which a
child must set itself: it is not inherited across ``fork``), the kernel by ipykernel's own parent poller.
``tests/test_faults.py`` kills runs with MCMC sampling under way and finds no process left.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Be killed (SIGKILL) when the parent process dies; exit now if it already has. Linux only: elsewhere a
    no-op, and the runner's own signal handling still stops its jobs."""
    import ctypes

    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the signal was set: nobody would send it
        os._exit(1)


class _TiedProcess(multiprocessing.context.ForkProcess):
    """A forked worker that dies with the process that forked it."""

    def run(self) -> None:
        die_with_parent()
        super().run()


class _TiedContext(multiprocessing.context.ForkContext):
    Process = _TiedProcess


def tied_context() -> multiprocessing.context.BaseContext:
    """A multiprocessing context (fork) whose processes die with their parent: for libraries that take one,
    such as ``pymc.sample(mp_ctx=...)``. Where fork is not available, the platform's default context."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context()
    return _TiedContext()


__all__ = ["die_with_parent", "tied_context"]
