"""Kaplan–Meier curves, medians, survival at fixed times, RMST and log-rank tests on aggregated rows.

The rows are ``(segment, duration, churned, count)``; lifelines fits them with integer frequency
weights, which is *exactly* what it gives on one row per user.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import median_survival_times, restricted_mean_survival_time
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests

ALL = "all users"  # the pooled curve beside the segments' (the label of the only curve without segments: "all")
EVERY_SEGMENT = "all segments"  # the overall log-rank test's row


def kaplan_meier(frame: pd.DataFrame, *, label: str = "all", alpha: float = 0.05) -> KaplanMeierFitter:
    """lifelines' KM on aggregated rows (frequency weights: exact)."""
    return KaplanMeierFitter(alpha=alpha).fit(
        frame.duration.to_numpy(float),
        frame.churned.to_numpy(bool),
        weights=frame["count"].to_numpy(float),
        label=label,
    )


def _segments(frame: pd.DataFrame, segment_by: str | None) -> list[tuple[str, pd.DataFrame]]:
    if not segment_by:
        return [("all", frame)]
    sizes = frame.groupby(segment_by)["count"].sum().sort_values(ascending=False)
    return [(str(level), frame[frame[segment_by] == level]) for level in sizes.index]


def km_table(fitter: KaplanMeierFitter, segment: str) -> pd.DataFrame:
    """Survival with interval, at-risk and event counts at every event or censoring time."""
    events = fitter.event_table
    ci = fitter.confidence_interval_survival_function_
    out = pd.DataFrame(
        {
            "segment": segment,
            "time": fitter.survival_function_.index,
            "survival": fitter.survival_function_.iloc[:, 0].to_numpy(),
            "ci_low": ci.iloc[:, 0].to_numpy(),
            "ci_high": ci.iloc[:, 1].to_numpy(),
        }
    )
    out = out.merge(
        events[["at_risk", "observed"]].rename(columns={"observed": "events"}),
        left_on="time",
        right_index=True,
        how="left",
    )
    out[["at_risk", "events"]] = out[["at_risk", "events"]].fillna(0).astype("int64")
    return out


def medians(fitter: KaplanMeierFitter, segment: str) -> dict:
    bounds = median_survival_times(fitter.confidence_interval_)
    return {
        "segment": segment,
        "median": float(fitter.median_survival_time_),
        "ci_low": float(bounds.iloc[0, 0]),
        "ci_high": float(bounds.iloc[0, 1]),
    }


def at_horizons(fitter: KaplanMeierFitter, segment: str, horizons) -> list[dict]:
    ci = fitter.confidence_interval_survival_function_
    rows = []
    for h in horizons:
        known = ci.index[ci.index <= h]
        rows.append(
            {
                "segment": segment,
                "horizon": h,
                "survival": float(fitter.survival_function_at_times(h).iloc[0]),
                "ci_low": float(ci.loc[known[-1]].iloc[0]) if len(known) else 1.0,
                "ci_high": float(ci.loc[known[-1]].iloc[1]) if len(known) else 1.0,
                "beyond_data": bool(h > fitter.timeline.max()),
            }
        )
    return rows


def rmst(fitter: KaplanMeierFitter, segment: str, horizon: float, alpha: float) -> dict:
    """Restricted mean survival time up to ``horizon`` with a Wald interval from the estimator's variance.

    lifelines' ``return_variance`` is the variance of the restricted time min(T, horizon) itself (the
    spread of individual customers), not of its estimate: intervals ~20x too wide and below zero.
    """
    value = restricted_mean_survival_time(fitter, t=horizon)
    half = float(norm.ppf(1 - alpha / 2)) * np.sqrt(rmst_variance(fitter, horizon))
    return {
        "segment": segment,
        "horizon": horizon,
        "rmst": float(value),
        "ci_low": float(max(value - half, 0.0)),
        "ci_high": float(min(value + half, horizon)),
    }


def rmst_variance(fitter: KaplanMeierFitter, horizon: float) -> float:
    """Greenwood-type variance of the Kaplan–Meier RMST estimate (Klein & Moeschberger 4.5; R's survRM2).

    Var = sum over event times t_j <= horizon of A_j^2 d_j / (n_j (n_j - d_j)), where A_j is the area under
    the curve from t_j to the horizon, d_j the events and n_j those at risk (frequency-weighted counts).
    Written by hand: lifelines offers only the variance of min(T, horizon).
    """
    curve = fitter.survival_function_.iloc[:, 0]
    times = curve.index.to_numpy(dtype=float)
    inside = times < horizon
    starts, values = times[inside], curve.to_numpy(dtype=float)[inside]
    widths = np.diff(np.append(starts, horizon))
    area_from = np.cumsum((values * widths)[::-1])[::-1]  # area under S from each time to the horizon
    table = fitter.event_table
    events = table[(table.index <= horizon) & (table["observed"] > 0)]
    position = np.searchsorted(starts, events.index.to_numpy(dtype=float))
    area = np.where(position < len(area_from), area_from[np.minimum(position, len(area_from) - 1)], 0.0)
    at_risk, deaths = events["at_risk"].to_numpy(dtype=float), events["observed"].to_numpy(dtype=float)
    survivors = at_risk - deaths
    terms = np.divide(area**2 * deaths, at_risk * survivors, out=np.zeros_like(at_risk), where=survivors > 0)
    return float(terms.sum())


def logrank_test(frame: pd.DataFrame, column: str):
    """lifelines' log-rank test on aggregated rows (frequency weights: exact)."""
    return multivariate_logrank_test(
        frame.duration.to_numpy(float),
        frame[column].astype(str).to_numpy(),
        frame.churned.to_numpy(bool),
        weights=frame["count"].to_numpy(float),
    )


def logrank(frame: pd.DataFrame, segment_by: str, *, alpha: float = 0.05) -> pd.DataFrame:
    """Overall log-rank across segments, then every pair, Holm-corrected (weights: exact)."""
    rows = []
    overall = logrank_test(frame, segment_by)
    rows.append(
        {
            "comparison": EVERY_SEGMENT,
            "test_statistic": overall.test_statistic,
            "degrees_of_freedom": overall.degrees_of_freedom,
            "p_value": overall.p_value,
        }
    )
    levels = list(frame.groupby(segment_by)["count"].sum().sort_values(ascending=False).index)
    for a, b in itertools.combinations(levels, 2):
        pair = frame[frame[segment_by].isin([a, b])]
        result = logrank_test(pair, segment_by)
        rows.append(
            {
                "comparison": f"{a} vs {b}",
                "test_statistic": result.test_statistic,
                "degrees_of_freedom": 1,
                "p_value": result.p_value,
            }
        )
    out = pd.DataFrame(rows)
    pairs = out.index[1:]
    out["p_adjusted"] = out.p_value
    if len(pairs):
        out.loc[pairs, "p_adjusted"] = multipletests(out.loc[pairs, "p_value"], alpha=alpha, method="holm")[1]
    return out


@dataclasses.dataclass(frozen=True)
class KaplanMeierResult:
    km: pd.DataFrame
    medians: pd.DataFrame
    horizons: pd.DataFrame
    rmst: pd.DataFrame
    logrank: pd.DataFrame
    fitters: dict

    @property
    def alpha(self) -> float:
        """The level the curves were fitted at (every fitter shares it)."""
        return next(iter(self.fitters.values())).alpha if self.fitters else 0.05


def by_segment(
    frame: pd.DataFrame,
    segment_by: str | None,
    *,
    horizons,
    alpha: float = 0.05,
    rmst_horizon: float | None = None,
    tests: bool = True,
) -> KaplanMeierResult:
    """A curve for everyone and one per segment, with medians, fixed-time survival, RMST and log-rank tests
    (``tests=False``: none, for a refit that needs only the curves)."""
    fitters, km, meds, hz, rm = {}, [], [], [], []
    rmst_horizon = rmst_horizon or max(horizons)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines notes that weights are not integers when they are floats
        parts = _segments(frame, segment_by)
        if segment_by:
            parts = [(ALL, frame), *parts]
        for segment, part in parts:
            fitter = kaplan_meier(part, label=segment, alpha=alpha)
            fitters[segment] = fitter
            km.append(km_table(fitter, segment))
            meds.append(medians(fitter, segment))
            hz.extend(at_horizons(fitter, segment, horizons))
            rm.append(rmst(fitter, segment, rmst_horizon, alpha))
    compared = logrank(frame, segment_by, alpha=alpha) if tests and segment_by and len(fitters) > 2 else pd.DataFrame()
    return KaplanMeierResult(
        pd.concat(km, ignore_index=True), pd.DataFrame(meds), pd.DataFrame(hz), pd.DataFrame(rm), compared, fitters
    )


def rank_attributes(aggregated: dict[str, pd.DataFrame], max_levels: int) -> list[str]:
    """Attributes with 2+ levels, most separating first (log-rank statistic per degree of freedom), from
    each attribute's pattern counts."""
    scores = []
    for attribute, frame in aggregated.items():
        if frame[attribute].nunique() < 2 or frame[attribute].nunique() > max_levels + 1:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = logrank_test(frame, attribute)
        scores.append((test.test_statistic / test.degrees_of_freedom, attribute))
    return [a for _, a in sorted(scores, reverse=True)]
