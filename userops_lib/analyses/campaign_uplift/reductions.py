"""Campaign uplift's reductions as the engine matrix runs them (``tests/test_engines.py``): each entry reduces a dataset
to engine tables (or small values) that must come out identical on every engine, since its statistics only
ever see these. A new analysis declares its own here and is checked on every engine without being added
anywhere else."""

from __future__ import annotations

from userops_lib.analyses.campaign_uplift import experiment


def _campaign(ds) -> dict:
    exp = experiment.experiment(ds)
    return {"outcomes": exp.frame, "sums": exp.sums}


REDUCTIONS = {"from events": _campaign}
