"""Segment profiling's statistics on per-user rows (pandas and scipy only): scores, segments, tiers,
stages, profiles, core users, the Pareto curve, migration and the holdout validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from userops_lib import topn
from userops_lib.proportions import wilson

# What :func:`assign` adds: the three scores and the three segmentations.
ASSIGNED = ("r_score", "f_score", "m_score", "rfm_segment", "value_tier", "lifecycle_stage")
TOP_LEVELS = 8  # values shown per attribute in breakdowns; the rest are pooled as "other"

TIER_ACTIONS = {
    "high": ("the users making most of the revenue", "retain; protect the relationship"),
    "mid": ("steady contributors", "upsell towards high value"),
    "low": ("little or no revenue", "activate cheaply; automate"),
}
STAGE_ACTIONS = {
    "new": ("first seen recently", "onboard"),
    "active": ("recently active, still growing", "build habits"),
    "mature": ("long-standing and active", "retain; upsell"),
    "dormant": ("quiet for a while", "reactivate"),
    "churned": ("gone", "win back or let go"),
}
STAGES = ("new", "active", "mature", "dormant", "churned")
TIERS = ("high", "mid", "low")


def core_users(days: pd.DataFrame, users: pd.DataFrame, attributes: list[str], *, share: float = 0.2) -> dict:
    """The users active on the most days in the window (``days``: :func:`engine.recent_activity`): who they
    are and what they carry, compared with the other recently active users (``users``: the per-user frame
    of :func:`run`, with the ``attributes`` to compare).
    """
    if days.empty:
        return {
            "threshold": None,
            "users": 0,
            "share": 0.0,
            "activity_share": np.nan,
            "revenue_share": np.nan,
            "attributes": pd.DataFrame(columns=["attribute", "value", "core_share", "others_share", "difference"]),
        }
    threshold = float(np.quantile(days.days, 1 - share, method="higher"))
    is_core = (days.days >= threshold).to_numpy()
    result = {
        "threshold": threshold,
        "users": int(is_core.sum()),
        "share": is_core.mean(),
        "activity_share": days.events[is_core].sum() / days.events.sum(),
        "revenue_share": days.revenue[is_core].sum() / days.revenue.sum() if days.revenue.sum() > 0 else np.nan,
    }
    rows = []
    if attributes:
        # Everyone active in the window was active before the snapshot, so is a row of ``users``.
        position = rows_of(users, days.user_id)
        seen = position >= 0
        core = pd.Series(is_core[seen])
        for attribute in attributes:
            values = topn.fold_values(pd.Series(users[attribute].to_numpy()[position[seen]]), TOP_LEVELS)
            mix = pd.crosstab(values, core, normalize="columns")
            for value in mix.index:
                rows.append(
                    {
                        "attribute": attribute,
                        "value": value,
                        "core_share": mix.loc[value].get(True, 0.0),
                        "others_share": mix.loc[value].get(False, 0.0),
                    }
                )
    frame = pd.DataFrame(rows, columns=["attribute", "value", "core_share", "others_share"])
    frame["difference"] = frame.core_share - frame.others_share
    result["attributes"] = frame.sort_values("difference", key=abs, ascending=False).reset_index(drop=True)
    return result


def rows_of(users: pd.DataFrame, ids: pd.Series) -> np.ndarray:
    """The row of ``users`` (a per-user frame) holding each of ``ids``; -1 where there is none."""
    return pd.Index(users.user_id).get_indexer(ids)


def identifier_like(values: pd.Series) -> bool:
    """Mostly distinct values (an id, an e-mail): no breakdown is meaningful."""
    return values.nunique() > max(100, len(values) // 2)


def profile(
    users: pd.DataFrame, column: str, attributes: list[str], *, churn_next: dict | None = None, order=None
) -> pd.DataFrame:
    """One row per segment: size, shares, ARPU, mean recency/frequency, next-period churn, top attribute mix.

    ``churn_next`` maps a segment to the share of its users who churned in the period after the
    segment was last measured (segments set one period before the snapshot): the best available
    estimate of how this segment churns next.
    """
    total_users, total_revenue = len(users), users.monetary.sum()
    rows = []
    labels = users[column]
    levels = order or list(labels.value_counts().index)
    for level in levels:
        mask = (labels == level).to_numpy()
        if not mask.any():
            continue
        monetary = users.monetary[mask]
        row = {
            "segment": level,
            "users": int(mask.sum()),
            "share_of_users": mask.sum() / total_users,
            "share_of_revenue": monetary.sum() / total_revenue if total_revenue > 0 else np.nan,
            "arpu": monetary.mean(),
            "mean_recency_days": users.recency_days[mask].mean(),
            "mean_frequency": users.frequency[mask].mean(),
        }
        if churn_next is not None:
            row["churn_next_period"] = churn_next.get(level, np.nan)
        for attribute in attributes:
            mix = users[attribute][mask].value_counts(normalize=True)
            row[f"top_{attribute}"] = f"{mix.index[0]} ({mix.iloc[0]:.0%})" if len(mix) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def pareto(monetary: pd.Series, points: int = 200) -> pd.DataFrame:
    ordered = np.sort(monetary.to_numpy(float))[::-1]
    share = np.cumsum(ordered) / ordered.sum() if ordered.sum() > 0 else np.zeros(len(ordered))
    index = np.unique(np.linspace(0, len(ordered) - 1, min(points, len(ordered))).astype(int))
    return pd.DataFrame({"user_share": (index + 1) / len(ordered), "revenue_share": share[index]})


def migration(before: pd.DataFrame) -> pd.DataFrame:
    """RFM segment one period ago against now, for users present then (counts and row shares)."""
    pairs = pd.DataFrame({"from_segment": before.rfm_segment.to_numpy(), "to_segment": before.segment_now.to_numpy()})
    counts = pairs.value_counts().rename("users").reset_index()
    counts["share_of_from"] = counts.users / counts.groupby("from_segment").users.transform("sum")
    return counts.sort_values(["from_segment", "users"], ascending=[True, False]).reset_index(drop=True)


def validate(before: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.DataFrame, dict]:
    """Do segments one period ago predict that period's revenue and churn? (holdout)"""
    rows = []
    summary = before.groupby("rfm_segment").agg(
        users=("churned_next", "size"), churned=("churned_next", "sum"), revenue_next_per_user=("revenue_next", "mean")
    )
    for segment, part in summary.iterrows():
        users, churned = int(part.users), int(part.churned)
        (low,), (high,) = wilson([churned], [users], alpha)
        rows.append(
            {
                "segment": segment,
                "users": users,
                "revenue_next_per_user": part.revenue_next_per_user,
                "churn_next": churned / users,
                "churn_ci_low": low,
                "churn_ci_high": high,
            }
        )
    frame = pd.DataFrame(rows).sort_values("revenue_next_per_user", ascending=False).reset_index(drop=True)
    # One column at a time (not copies of the whole frame): it has a row per user.
    groups = [g.to_numpy() for _, g in before.revenue_next.groupby(before.rfm_segment) if len(g) >= 5]
    tests = {}
    # A test is reported only where it can say something: revenue that varies (data without revenue has
    # none: Kruskal-Wallis on all zeros printed 'p = 0'), churn that both happened and did not.
    varies = before.revenue_next.nunique() > 1
    if len(groups) >= 2 and varies:
        tests["revenue_kruskal_p"] = float(stats.kruskal(*groups).pvalue)
    if len(groups) >= 2:
        table = pd.crosstab(before.rfm_segment, before.churned_next)
        if table.shape[1] == 2:
            tests["churn_chi2_p"] = float(stats.chi2_contingency(table)[1])
    scored = (before.frequency > 0).to_numpy()
    if scored.sum() > 10 and varies:
        rfm_sum = before.r_score.to_numpy(int) + before.f_score.to_numpy(int) + before.m_score.to_numpy(int)
        tests["rfm_sum_spearman"] = float(
            stats.spearmanr(rfm_sum[scored], before.revenue_next.to_numpy()[scored]).statistic
        )
    return frame, tests
