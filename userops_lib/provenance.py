"""What a run records so that its numbers can be traced: a run id, the dataset's content fingerprint, the
package versions and the code's commit."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
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


def versions() -> dict:
    """Python's and the stack's package versions."""
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git() -> dict:
    """The checkout's commit and whether it has uncommitted changes."""
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


__all__ = ["fingerprint", "git", "new_run_id", "versions"]
