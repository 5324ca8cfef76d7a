"""Intervals for proportions shared by every analysis (statsmodels' Wilson score interval)."""

from __future__ import annotations

import numpy as np
from statsmodels.stats.proportion import proportion_confint


def wilson(successes, trials, alpha: float):
    """Wilson score interval(s) at ``1 - alpha``; NaN where there are no trials (arrays in, arrays out)."""
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    safe = np.where(trials > 0, trials, 1)
    low, high = proportion_confint(successes, safe, alpha=alpha, method="wilson")
    return np.where(trials > 0, low, np.nan), np.where(trials > 0, high, np.nan)
