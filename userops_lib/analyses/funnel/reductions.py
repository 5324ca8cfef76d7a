"""Funnel's reductions as the engine matrix runs them (``tests/test_engines.py``): each entry reduces a dataset
to engine tables (or small values) that must come out identical on every engine, since its statistics only
ever see these. A new analysis declares its own here and is checked on every engine without being added
anywhere else."""

from __future__ import annotations

import pandas as pd

from userops_lib.analyses.funnel import engine


def _funnel(order: str, exclude: list | None = None, **options):
    steps = [["signup"], ["session"], ["purchase"]]

    def reduce(ds) -> dict:
        events, snapshot = ds.table("events"), pd.Timestamp(ds.snapshot_at).to_pydatetime()
        times = engine.step_times(
            events, steps, window_days=7, order=order, exclude=exclude, snapshot=snapshot, **options
        ).cache()
        return {
            "reached": engine.reached_counts(times, 3),
            "minutes": engine.minute_histograms(times, 3),
            "entries": engine.entries_by_period(times, 3, "week", ds.calendar),
            "dropoffs": engine.dropoffs(times, events, steps, snapshot),
        }

    return reduce


REDUCTIONS = {
    "ordered": _funnel("ordered"),
    "strict, excluding purchases": _funnel("strict", exclude=["purchase"]),
    "any order": _funnel("any"),
    "best attempt, removing purchases between steps 1 and 2": _funnel(
        "ordered", exclude=[("purchase", 1, 2)], entry="best", exclusion="remove"
    ),
}
