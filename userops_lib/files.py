"""Writing files whole or not at all: a full disk or a kill never leaves a half-written file under its name."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(partial)`` to a hidden file beside ``path``, then rename it onto ``path``; on failure the
    partial file is removed and the error propagates."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """``path`` holds ``text`` (UTF-8), or is as it was."""
    atomically(path, lambda partial: partial.write_text(text, encoding="utf-8"))


__all__ = ["atomically", "write_text"]
