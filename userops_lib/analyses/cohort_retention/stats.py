"""Cohort retention's statistics on the reduced tables (pandas and statsmodels only): the censored grid,
pooled averages, group comparisons and value retention."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from userops_lib.calendar import OFFSET
from userops_lib.proportions import two_sample_p

TREND_PERIODS = {"day": (1, 7, 30), "week": (1, 4, 12), "month": (1, 3, 6)}
LTV_SHARE = 0.5  # the LTV curve's cohorts hold at least this share of all cohort members


def at_or_after(counts: pd.DataFrame) -> pd.DataFrame:
    """From 'users whose last active period is L' to 'users active in k or later' for every k <= L."""
    rows = []
    for (cohort, group), frame in counts.groupby(["cohort", "group_value"]):
        by_last = frame.set_index("last").n.reindex(range(int(frame["last"].max()) + 1), fill_value=0)
        at_or_after = by_last[::-1].cumsum()[::-1]
        rows.append(
            pd.DataFrame(
                {"cohort": cohort, "group_value": group, "k": at_or_after.index, "active_users": at_or_after.to_numpy()}
            )
        )
    return (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(columns=["cohort", "group_value", "k", "active_users"])
    )


def grid(sizes, counts, period, snapshot, brackets, alpha) -> pd.DataFrame:
    """Every cohort x period up to the last period any cohort reached; censored cells are NaN."""
    sizes = sizes.assign(cohort=pd.to_datetime(sizes.cohort))
    counts = counts.assign(cohort=pd.to_datetime(counts.cohort))
    offset = OFFSET[period]

    def reached(cohort: pd.Timestamp, k: int) -> bool:
        end = (brackets[k][1] + 1) if brackets else k + 1
        return cohort + end * offset <= snapshot

    if brackets:
        grid_periods = list(range(len(brackets)))
    else:
        oldest = sizes.cohort.min()
        horizon = 0
        while reached(oldest, horizon + 1):
            horizon += 1
        grid_periods = list(range(horizon + 1)) if reached(oldest, 0) else []
    grid = sizes.merge(pd.DataFrame({"period": grid_periods}), how="cross")
    grid = grid.merge(counts.rename(columns={"k": "period"}), on=["cohort", "group_value", "period"], how="left")
    grid["active_users"] = grid.active_users.fillna(0)
    grid["reached"] = [reached(c, int(k)) for c, k in zip(grid.cohort, grid.period, strict=True)]
    grid.loc[~grid.reached, "active_users"] = np.nan
    grid["retention"] = grid.active_users / grid.cohort_size
    low, high = proportion_confint(grid.active_users.fillna(0), grid.cohort_size, alpha=alpha, method="wilson")
    grid["ci_low"] = np.where(grid.reached, low, np.nan)
    grid["ci_high"] = np.where(grid.reached, high, np.nan)
    grid["active_users"] = grid.active_users.astype("Int64")
    return grid.sort_values(["group_value", "cohort", "period"]).reset_index(drop=True)[
        ["group_value", "cohort", "period", "cohort_size", "active_users", "retention", "ci_low", "ci_high"]
    ]


def average(cells: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per group and period, pooled over the cohorts that reached it."""
    observed = cells[cells.active_users.notna()]
    average = observed.groupby(["group_value", "period"], as_index=False, sort=False).agg(
        cohorts=("cohort", "nunique"), users=("cohort_size", "sum"), active_users=("active_users", "sum")
    )
    average["active_users"] = average.active_users.astype("int64")
    average["retention"] = average.active_users / average.users
    low, high = proportion_confint(average.active_users, average.users, alpha=alpha, method="wilson")
    average["ci_low"], average["ci_high"] = np.asarray(low), np.asarray(high)
    return average


def compare(average, periods, reference, alpha) -> pd.DataFrame:
    """Each group against the reference group at the chosen periods; Holm across all tests."""
    sizes = average[average.period == average.period.min()].set_index("group_value").users
    if len(sizes) < 2:
        return pd.DataFrame()
    reference = reference if reference in sizes.index else sizes.idxmax()
    rows = []
    for k in periods:
        at_k = average[average.period == k].set_index("group_value")
        if reference not in at_k.index:
            continue
        ref = at_k.loc[reference]
        for group, row in at_k.drop(index=reference).iterrows():
            p_value = two_sample_p(row.active_users, row.users, ref.active_users, ref.users)
            low, high = confint_proportions_2indep(
                row.active_users, row.users, ref.active_users, ref.users, method="newcomb", alpha=alpha
            )
            rows.append(
                {
                    "period": k,
                    "group": group,
                    "reference": reference,
                    "retention": row.retention,
                    "reference_retention": ref.retention,
                    "difference": row.retention - ref.retention,
                    "ci_low": low,
                    "ci_high": high,
                    "p_value": p_value,
                }
            )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["p_adjusted"] = multipletests(frame.p_value.fillna(1.0), alpha=alpha, method="holm")[1]
        frame["significant"] = frame.p_adjusted < alpha
    return frame


def value(changes: pd.DataFrame, cells: pd.DataFrame, alpha: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Revenue per member by period, and cumulative revenue per user (LTV) with intervals, from the engine's
    per-cohort changes (:func:`engine.value_changes`)."""
    grid = cells[["group_value", "cohort", "period", "cohort_size", "active_users"]].rename(columns={"period": "k"})
    value = grid.merge(changes, on=["cohort", "group_value", "k"], how="left").fillna({"revenue": 0, "dc": 0, "dc2": 0})
    value = value.sort_values(["group_value", "cohort", "k"])
    value["sum_c"] = value.groupby(["group_value", "cohort"]).dc.cumsum()
    value["sum_c2"] = value.groupby(["group_value", "cohort"]).dc2.cumsum()
    censored = value.active_users.isna()
    value["revenue_per_member"] = (value.revenue / value.cohort_size).mask(censored)
    value["cumulative_revenue_per_member"] = (value.sum_c / value.cohort_size).mask(censored)
    followed, horizon = ltv_cohorts(value, censored)
    keys = pd.MultiIndex.from_frame(value[["group_value", "cohort"]])
    observed = value[~censored & keys.isin(followed) & (value.k <= horizon)]
    ltv = observed.groupby(["group_value", "k"], as_index=False, sort=False).agg(
        cohorts=("cohort", "nunique"), users=("cohort_size", "sum"), sum_c=("sum_c", "sum"), sum_c2=("sum_c2", "sum")
    )
    ltv["ltv"] = ltv.sum_c / ltv.users
    spread = np.sqrt(np.maximum(ltv.sum_c2 / ltv.users - ltv.ltv**2, 0) / ltv.users)
    z = z_value(alpha)
    ltv["ci_low"], ltv["ci_high"] = ltv.ltv - z * spread, ltv.ltv + z * spread
    value = value.rename(columns={"k": "period"})[
        [
            "group_value",
            "cohort",
            "period",
            "cohort_size",
            "revenue",
            "revenue_per_member",
            "cumulative_revenue_per_member",
        ]
    ]
    value["revenue"] = value.revenue.mask(censored.to_numpy())
    ltv = ltv.rename(columns={"k": "period"})[["group_value", "period", "cohorts", "users", "ltv", "ci_low", "ci_high"]]
    return value, ltv


def ltv_cohorts(value: pd.DataFrame, censored: pd.Series) -> tuple[pd.MultiIndex, int]:
    """The cohorts the LTV curve follows: the same ones at every period, so that the curve cannot fall as
    later periods lose the young cohorts (it fell from 96 to 72 when each point pooled whoever reached it).

    They are the cohorts that reached the longest period reached by cohorts holding at least
    :data:`LTV_SHARE` of all members; the curve runs up to that period.
    """
    reach = value[~censored].groupby(["group_value", "cohort"]).k.max()
    if reach.empty:
        return reach.index, 0
    sizes = value.groupby(["group_value", "cohort"]).cohort_size.first()
    order = reach.sort_values(ascending=False, kind="stable").index
    covered = sizes.loc[order].cumsum() / sizes.sum()  # of all members, young cohorts' included
    horizon = int(reach.loc[covered.index[int(np.argmax(covered.to_numpy() >= LTV_SHARE))]])
    return reach.index[reach >= horizon], horizon


def z_value(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))
