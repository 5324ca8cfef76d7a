"""Imports made lighter: third-party modules whose import does work userops never uses."""

from __future__ import annotations

import sys
from types import ModuleType


def jsonschema() -> ModuleType:
    """jsonschema, without the IRI grammar its format checker would build at import.

    ``jsonschema._format`` imports ``rfc3987_syntax`` when it is installed (the Jupyter stack brings it) and
    builds a Lark grammar for the ``iri`` formats: about 1.5 s in every process that reads a dataset.yml (each
    notebook kernel) or imports nbformat (the runner, each report job), more than duckdb, pandas and ibis
    together. Call it before anything imports nbformat or papermill. The schemas here use no format, so the
    module is hidden during that one import (jsonschema then leaves those formats unchecked) and visible
    again after it: anything else that imports it later gets it as usual."""
    hidden = "rfc3987_syntax" not in sys.modules
    if hidden:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # importing it now raises ImportError
    try:
        import jsonschema as module
    finally:
        if hidden:
            del sys.modules["rfc3987_syntax"]
    return module
