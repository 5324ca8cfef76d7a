"""Cohort retention's reductions as the engine matrix runs them (``tests/test_engines.py``): each entry reduces a dataset
to engine tables (or small values) that must come out identical on every engine, since its statistics only
ever see these. A new analysis declares its own here and is checked on every engine without being added
anywhere else."""

from __future__ import annotations

from userops_lib.analyses import cohort_retention as cohorts
from userops_lib.analyses.cohort_retention import engine


def _cohorts(only: tuple[str, str] | None = None, **options):
    """Cohort reductions; ``only`` restricts the users first (daily recurring cohorts of every user cost
    Spark's local mode about 20 s; one channel's users exercise the same queries)."""

    def reduce(ds) -> dict:
        ds = ds.restrict(*only) if only else ds
        events = ds.table("events")
        members = engine.memberships(
            ds,
            events,
            options.get("period", "week"),
            options.get("cohort_type", "first_time"),
            None,
            options.get("cohort_by"),
        )
        sizes, counted = cohorts.counts(ds, **options)
        return {
            "sizes": sizes,
            "counted": counted,
            "value": engine.value_changes(events, members, options.get("period", "week"), ds.calendar),
        }

    return reduce


REDUCTIONS = {
    "weekly, on": _cohorts(period="week"),
    "monthly, on or after, by channel": _cohorts(period="month", mode="on_or_after", cohort_by="channel"),
    "daily brackets, recurring": _cohorts(
        ("channel", "referral"),
        period="day",
        mode="brackets",
        brackets=[(1, 3), (4, 7), (8, 14)],
        cohort_type="recurring",
    ),
}
