"""userops_lib: the data work and statistics behind the userops notebooks and reports."""

from userops_lib.errors import DataError, Problem

__all__ = ["DataError", "Dataset", "Problem", "load_dataset"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so that `import userops_lib.render` (each report job's process) does not load ibis and DuckDB.
    if name in ("Dataset", "load_dataset"):
        from userops_lib import data

        return getattr(data, name)
    raise AttributeError(f"module 'userops_lib' has no attribute {name!r}")
