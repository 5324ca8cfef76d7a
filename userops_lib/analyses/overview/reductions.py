"""Overview's reductions as the engine matrix runs them (``tests/test_engines.py``): each entry reduces a dataset
to engine tables (or small values) that must come out identical on every engine, since its statistics only
ever see these. A new analysis declares its own here and is checked on every engine without being added
anywhere else."""

from __future__ import annotations

import pandas as pd

from userops_lib import activity
from userops_lib.analyses.overview import engine


def _overview(ds) -> dict:
    seen = engine.first_seen(ds)
    days = activity.days(ds)
    sizes, means = engine.arms(ds.assignments)
    return {
        "new_users": engine.new_users(seen, ds.calendar),
        "activity": engine.activity_changes(days, ds.calendar),
        "money_by_day": engine.money_by(days, "day", ds.calendar),
        "money_by_month": engine.money_by(days, "month", ds.calendar),
        "returning": engine.returning(seen, days, ds.calendar),
        "paying_within": engine.paying_within(ds.events, seen, pd.Timestamp(ds.snapshot_at), 30),
        "arm_sizes": sizes,
        "arm_means": means,
        **engine.value_counts(ds.users, ds.attributes("users")),
    }


REDUCTIONS = {"KPIs and attributes": _overview}
