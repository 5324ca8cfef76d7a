"""Writing files whole or not at all: a full disk or a kill never leaves a half-written file under its name."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def public_path(path: object, root: object = None) -> str:
    """A file as a published page names it: relative to ``root`` (the dataset's folder) when inside it,
    else its name alone. Pages are forwarded; the machine's folders are nobody's business (the run's
    manifest keeps the full paths)."""
    text = str(path)
    if not text or (os.sep not in text and "/" not in text):
        return text  # a name, not a path (a table given in memory, a connection label)
    if root:
        try:
            return Path(text).resolve().relative_to(Path(str(root)).resolve()).as_posix()
        except ValueError:
            pass
    return Path(text).name


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


# What a spreadsheet evaluates when a cell starts with it (OWASP, "CSV Injection"): = + - @, tab and CR.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise(value: object) -> object:
    """A text cell a spreadsheet would evaluate, with a ``'`` before it (OWASP's rule: Excel, WPS and
    LibreOffice then show the text and evaluate nothing); numbers written as text (``-5``, ``+3.2``) and
    every other value as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralised(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``frame`` with every text cell neutralised (:func:`neutralise`), and how many cells changed."""
    changed = 0
    out = frame
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object and not isinstance(values.dtype, pd.StringDtype):
            continue
        safe = values.map(neutralise)
        differs = int((safe.astype(object) != values.astype(object)).fillna(False).sum())
        if differs:
            out = out.copy() if out is frame else out
            out[column] = safe
            changed += differs
    return out, changed


def write_csv(path: Path, frame: pd.DataFrame) -> int:
    """Write ``frame`` as the CSV ``path`` (whole or not at all) with no cell a spreadsheet would evaluate;
    returns the number of cells neutralised. Every CSV userops publishes is written here."""
    safe, changed = neutralised(frame)
    names = [str(c) for c in safe.columns]
    header = [str(neutralise(name)) for name in names]  # a column named from the data (an attribute)
    if header != names:
        changed += sum(new != old for new, old in zip(header, names, strict=True))
        safe = safe.set_axis(header, axis=1)
    atomically(path, lambda partial: safe.to_csv(partial, index=False, date_format="%Y-%m-%dT%H:%M:%S"))
    return changed


__all__ = ["atomically", "neutralise", "neutralised", "write_csv", "write_text"]
