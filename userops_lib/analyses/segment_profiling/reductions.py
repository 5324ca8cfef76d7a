"""Segment profiling's reductions as the engine matrix runs them (``tests/test_engines.py``): each entry reduces a dataset
to engine tables (or small values) that must come out identical on every engine, since its statistics only
ever see these. A new analysis declares its own here and is checked on every engine without being added
anywhere else."""

from __future__ import annotations

import pandas as pd

from userops_lib import rfm
from userops_lib.analyses.segment_profiling import engine


def _segments(ds) -> dict:
    earlier = pd.Timestamp(ds.snapshot_at) - pd.Timedelta(days=30)
    now, before = rfm.features_at(ds, [None, earlier.to_pydatetime()])  # as the analysis reads them: one pass
    return {
        "features": rfm.features(ds),
        "earlier": rfm.features(ds, snapshot=earlier.to_pydatetime()),
        "features, one pass": now,
        "earlier, one pass": before,
        "lifecycle": engine.lifecycle_counts(ds),
        "recent": engine.recent_activity(ds, 30),
    }


REDUCTIONS = {"features, lifecycle and recent activity": _segments}
