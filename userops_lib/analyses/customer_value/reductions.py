"""Customer value's reductions as the engine matrix runs them (``tests/test_engines.py``): each entry reduces a dataset
to engine tables (or small values) that must come out identical on every engine, since its statistics only
ever see these. A new analysis declares its own here and is checked on every engine without being added
anywhere else."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from userops_lib.analyses.customer_value import engine


def _customer_value(ds) -> dict:
    snapshot = pd.Timestamp(ds.snapshot_at).to_pydatetime()
    days = engine.purchase_days(ds.table("events"), snapshot=snapshot, purchase_event=None, calendar=ds.calendar)
    customers = engine.summary(days, calibration_end=dt.date(2025, 10, 1))
    return {
        "customers": customers.order_by("user_id"),
        "daily": engine.daily(days, customers).order_by("day"),
    }


REDUCTIONS = {"summary with a holdout": _customer_value}
