"""Churn survival's reductions as the engine matrix runs them (``tests/test_engines.py``): each entry reduces a dataset
to engine tables (or small values) that must come out identical on every engine, since its statistics only
ever see these. A new analysis declares its own here and is checked on every engine without being added
anywhere else."""

from __future__ import annotations

from userops_lib.analyses.churn_survival import durations


def _churn(ds) -> dict:
    table, unit, used = durations.user_durations(ds)
    columns = durations.candidate_attributes(table)
    users, active = durations.active_patterns(table, columns, max_levels=8)
    return {
        "patterns": durations.aggregate(table, columns, max_levels=8),
        "active": active,
        "gaps": durations.gap_counts(ds, snapshot=ds.snapshot_at, churn_after_days=30),
        "users_seen": durations.users_seen(ds),
        "unit": (unit, used),
    }


REDUCTIONS = {"from events": _churn}
