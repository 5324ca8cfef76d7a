"""Intervals and tests for proportions shared by every analysis (statsmodels' Wilson score interval and
two-proportion z-test)."""

from __future__ import annotations

import numpy as np
from statsmodels.stats.proportion import proportion_confint, proportions_ztest


def wilson(successes, trials, alpha: float):
    """Wilson score interval(s) at ``1 - alpha``; NaN where there are no trials (arrays in, arrays out)."""
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    safe = np.where(trials > 0, trials, 1)
    low, high = proportion_confint(successes, safe, alpha=alpha, method="wilson")
    return np.where(trials > 0, low, np.nan), np.where(trials > 0, high, np.nan)


def two_sample_p(successes_a, trials_a, successes_b, trials_b) -> float:
    """The two-sided p-value of the pooled two-proportion z-test (statsmodels' ``proportions_ztest``).

    When both groups are all successes or all failures the pooled variance is zero and the z statistic 0/0:
    the proportions are identical, so the p-value is 1 (as Fisher's exact test gives), not NaN."""
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    if pooled in (0.0, 1.0):
        return 1.0
    _, p_value = proportions_ztest(np.array([successes_a, successes_b]), np.array([trials_a, trials_b]))
    return float(p_value)
