"""The canonical data model: which tables exist, which columns they carry, and of what kind.

Source files are mapped onto these names by a dataset's ``dataset.yml`` (see :mod:`userops_lib.manifest`).
Every analysis reads only canonical names. Columns a source has beyond these are kept under their own
names as attributes (``users``), event properties (``events``) or outcomes and covariates
(``assignments``).

Kinds, and what the canonical column holds:

``id``
    user identifier; 64-bit integer when every table's source is integer, else string.
``timestamp``
    naive timestamp in UTC (source wall times are read in the manifest's ``timezone``).
``text``
    string.
``number``
    64-bit float.
``duration``
    64-bit float, ``>= 0``, in the unit the manifest states (``days``, ``weeks`` or ``months``).
``flag``
    boolean; the manifest states which source values mean ``True``.
"""

from __future__ import annotations

from dataclasses import dataclass

TABLES = ("users", "events", "assignments")

DURATION_UNITS = ("days", "weeks", "months")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = False
    description: str = ""


COLUMNS: dict[str, tuple[Column, ...]] = {
    "users": (
        Column("user_id", "id", True, "one row per user; unique, never null"),
        Column("signup_at", "timestamp", False, "when the user signed up (UTC)"),
        Column("duration", "duration", False, "pre-computed time from start to churn or to the snapshot"),
        Column("churned", "flag", False, "True when the user has churned (else censored)"),
    ),
    "events": (
        Column("user_id", "id", True, "who did it"),
        Column("event_at", "timestamp", True, "when (UTC)"),
        Column("event", "text", False, "event name, e.g. 'session' or 'purchase'"),
        Column("revenue", "number", False, "money taken with the event, >= 0"),
    ),
    "assignments": (
        Column("user_id", "id", True, "who was assigned"),
        Column("campaign", "text", True, "campaign or experiment name"),
        Column("arm", "text", True, "arm the user was assigned to (control included)"),
        Column("assigned_at", "timestamp", False, "when the assignment happened (UTC)"),
    ),
}


def column(table: str, name: str) -> Column | None:
    """The canonical column ``name`` of ``table``, or ``None`` if it is not canonical."""
    for col in COLUMNS[table]:
        if col.name == name:
            return col
    return None


def canonical_names(table: str) -> list[str]:
    return [c.name for c in COLUMNS[table]]
