"""The experiment of a campaign: per-user outcomes by arm, the readout against control, the health checks.

Definitions (stated in the report):

* **Outcomes** are either measured columns of the assignment table (``outcomes`` in dataset.yml, e.g.
  Hillstrom's visit, conversion, spend) or computed from events in ``[assigned_at, assigned_at +
  window_days)``: ``converted`` (any purchase), ``revenue`` and ``active_days``; the same metrics over
  the ``window_days`` before assignment are the pre-period covariates.
* **Readout** per treatment arm against control, per metric: absolute lift (difference of means) with a
  95% interval (Newcombe for 0/1 metrics, Welch otherwise), relative lift (delta method), p-values
  (two-proportion z or Welch t) corrected across arms x metrics (Holm by default, or Benjamini–Hochberg).
* **CUPED**: the outcome minus theta x (covariate - its mean), theta = cov(outcome, covariate) / var(covariate)
  pooled over arms; the lift is unchanged in expectation and its variance shrinks by the squared correlation.
* **Health**: sample-ratio mismatch (chi-square against the expected split; fail below p = 0.001), covariate
  balance (standardised mean difference; warn above 0.1), minimum sample per arm, and the minimum detectable
  effect at 80% power.

Per-arm sufficient statistics (n, sums, sums of squares and cross-products) come from the engine; the
uplift model needs per-user rows and gets them (one row per assigned user).
"""

from __future__ import annotations

import dataclasses

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

from userops_lib import engine
from userops_lib.data import Dataset, with_revenue
from userops_lib.errors import DataError

EVENT_METRICS = ("converted", "revenue", "active_days")
SRM_FAIL, SRM_WARN = 0.001, 0.01
BALANCE_WARN = 0.1
# The readout's columns that arm_summary.csv keeps (the readout adds relative intervals and CUPED's gain).
ARM_SUMMARY = (
    "campaign",
    "arm",
    "metric",
    "n",
    "mean",
    "abs_lift",
    "rel_lift",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """Per-user outcomes of one campaign (a per-user table: assignment rows are user-level already)."""

    campaign: str
    control: str
    frame: pd.DataFrame
    metrics: list[str]
    binary: dict[str, bool]
    covariates: dict[str, str]  # metric -> pre-period column (CUPED)
    source: str


def experiment(
    ds: Dataset,
    *,
    campaign: str | None = None,
    metrics: list[str] | None = None,
    window_days: int = 14,
    segment_by: list[str] | None = None,
) -> Experiment:
    assignments = ds.table("assignments")
    campaigns = assignments.select("campaign").distinct().execute().campaign.astype(str).tolist()
    campaign = campaign or campaigns[0]
    if campaign not in campaigns:
        raise DataError.single(
            "assignments",
            f"no campaign '{campaign}'",
            "choose one of the data's campaigns",
            column="campaign",
            key="campaign_uplift.no_campaign",
            values={"campaign": campaign},
            example=", ".join(campaigns[:10]),
        )
    control = ds.control_arm
    if control is None:
        raise DataError.single(
            "assignments",
            "no control arm is named",
            "set control_arm in dataset.yml",
            column="arm",
            key="campaign_uplift.no_control",
        )
    table = assignments.filter(assignments.campaign == campaign)
    spec = (
        ds.manifest.tables["assignments"] if ds.manifest is not None and "assignments" in ds.manifest.tables else None
    )
    measured = list(spec.outcomes) if spec is not None else []
    covariates: dict[str, str] = {}
    if metrics is None:
        metrics = measured or list(EVENT_METRICS)
    parts = [p for m in metrics for p in m.split("/")]
    if all(m in table.columns for m in parts):
        source = "assignments"
    else:
        table, covariates = _event_outcomes(ds, table, window_days)
        unknown = [m for m in parts if m not in table.columns]
        if unknown:
            raise DataError.single(
                "assignments",
                f"no outcome '{unknown[0]}'",
                f"use measured outcome columns or {', '.join(EVENT_METRICS)}",
                column=unknown[0],
                example=", ".join(metrics),
            )
        source = "events"
    if ds.users is not None:
        extra = [c for c in (segment_by or []) if c not in table.columns and c in ds.users.columns]
        attrs = [c for c, t in ds.users.schema().items() if t.is_string() and c != "user_id" and c not in table.columns]
        users = ds.users.select("user_id", *sorted(set(attrs) | set(extra)))
        table = table.left_join(users, "user_id").select(*table.columns, *[c for c in users.columns if c != "user_id"])
    table = ds.user_attributes(table, list(segment_by or []))  # event properties: the user's first value
    # Ordered by user: the uplift model's split and fit must not depend on the engine's row order.
    frame = engine.frame(table, order_by="user_id")
    frame["arm"] = frame.arm.astype(str)
    if control not in set(frame.arm):
        raise DataError.single(
            "assignments",
            f"control arm '{control}' not in campaign '{campaign}'",
            "set control_arm to an arm of this campaign",
            column="arm",
            key="campaign_uplift.control_not_in_campaign",
            values={"control": control, "campaign": campaign},
            example=control,
        )
    for m in parts:
        frame[m] = frame[m].astype(float)
    binary = {m: "/" not in m and bool(frame[m].dropna().isin([0, 1]).all()) for m in metrics}
    return Experiment(campaign, control, frame, list(metrics), binary, covariates, source)


def _event_outcomes(ds: Dataset, table: ir.Table, window_days: int) -> tuple[ir.Table, dict[str, str]]:
    if "assigned_at" not in table.columns:
        raise DataError.single(
            "assignments",
            "no assigned_at, so outcomes cannot be measured from events",
            "map assigned_at in dataset.yml, or list measured outcome columns under 'outcomes'",
            column="assigned_at",
            key="campaign_uplift.no_assigned_at",
        )
    events = with_revenue(ds.table("events")).select("user_id", "event_at", "revenue")
    window = ibis.interval(days=window_days)
    assigned = table.select("user_id", "assigned_at")
    # Only the two windows matter, so they are join conditions: the engine can then skip the events
    # outside every window while scanning (DuckDB prunes row groups: 100M events -> 9M read).
    joined = assigned.join(
        events,
        [
            assigned.user_id == events.user_id,
            events.event_at >= assigned.assigned_at - window,
            events.event_at < assigned.assigned_at + window,
        ],
    )
    after = joined.event_at >= joined.assigned_at  # within the window after assignment (the join keeps no other)
    before = ~after
    day = joined.event_at.date()
    per_user = joined.group_by("user_id").aggregate(
        converted=(after & (joined.revenue > 0)).any().cast("float64"),
        revenue=joined.revenue.sum(where=after),
        active_days=day.nunique(where=after).cast("float64"),
        pre_converted=(before & (joined.revenue > 0)).any().cast("float64"),
        pre_revenue=joined.revenue.sum(where=before),
        pre_active_days=day.nunique(where=before).cast("float64"),
    )
    joined_back = table.left_join(per_user, "user_id")
    out = joined_back.select(*table.columns, *[c for c in per_user.columns if c != "user_id"])
    fills = {
        c: out[c].fill_null(0)
        for c in ("converted", "revenue", "active_days", "pre_converted", "pre_revenue", "pre_active_days")
    }
    return out.mutate(**fills), {m: f"pre_{m}" for m in EVENT_METRICS}


def _adjusted(frame: pd.DataFrame, metric: str, covariate: str | None, theta: float | None) -> pd.Series:
    """The metric, CUPED-adjusted by ``theta`` x (covariate - its mean) when a covariate is given."""
    y = frame[metric]
    if covariate is not None and theta is not None:
        y = y - theta * (frame[covariate] - frame[covariate].mean())
    return y


def _stats(frame: pd.DataFrame, metric: str, covariate: str | None, theta: float | None) -> pd.DataFrame:
    y = _adjusted(frame, metric, covariate, theta)
    return frame.assign(_y=y).groupby("arm")._y.agg(n="count", mean="mean", var="var")


def readout(exp: Experiment, *, alpha: float = 0.05, correction: str = "holm", cuped: bool = True) -> pd.DataFrame:
    """One row per arm and metric (control rows carry n and mean), with CUPED rows where a covariate exists."""
    rows = []
    for metric in exp.metrics:
        if "/" in metric:
            rows.extend(_ratio_rows(exp, metric, alpha))
            continue
        variants = [("", None, None)]
        covariate = exp.covariates.get(metric)
        if cuped and covariate is not None and exp.frame[covariate].var() > 0:
            x, y = exp.frame[covariate], exp.frame[metric]
            theta = float(np.cov(y, x, ddof=1)[0, 1] / x.var())
            variants.append((" (CUPED)", covariate, theta))
        for label, cov, theta in variants:
            table = _stats(exp.frame, metric, cov, theta)
            control = table.loc[exp.control]
            rows.append(
                {
                    "campaign": exp.campaign,
                    "arm": exp.control,
                    "metric": metric + label,
                    "n": int(control.n),
                    "mean": control["mean"],
                }
            )
            for arm in [a for a in table.index if a != exp.control]:
                rows.append(
                    {
                        "campaign": exp.campaign,
                        "arm": arm,
                        "metric": metric + label,
                        **lift(table.loc[arm], control, exp.binary[metric] and cov is None, alpha),
                        "variance_reduction": (
                            1 - _pooled_var(exp.frame, metric, cov, theta) / _pooled_var(exp.frame, metric, None, None)
                        )
                        if cov
                        else np.nan,
                    }
                )
    frame = pd.DataFrame(rows)
    tested = frame.p_value.notna() & ~frame.metric.str.endswith("(CUPED)")
    frame["p_adjusted"] = np.nan
    method = {"holm": "holm", "bh": "fdr_bh", "benjamini-hochberg": "fdr_bh"}.get(correction.lower())
    if method is None:
        raise DataError.single(
            "parameters",
            f"unknown correction '{correction}'",
            "use holm or bh",
            column="correction",
            example=correction,
        )
    if tested.any():
        frame.loc[tested, "p_adjusted"] = multipletests(frame.loc[tested, "p_value"], alpha=alpha, method=method)[1]
    cuped_rows = frame.p_value.notna() & frame.metric.str.endswith("(CUPED)")
    if cuped_rows.any():
        frame.loc[cuped_rows, "p_adjusted"] = multipletests(
            frame.loc[cuped_rows, "p_value"], alpha=alpha, method=method
        )[1]
    columns = [
        *ARM_SUMMARY,
        "rel_ci_low",
        "rel_ci_high",
        "variance_reduction",
    ]
    return frame.reindex(columns=columns)


def _ratio_rows(exp: Experiment, metric: str, alpha: float) -> list[dict]:
    """A ratio of sums (e.g. revenue/active_days) per arm, its lift with a delta-method interval."""
    numerator, denominator = metric.split("/")
    summary = {}
    for arm, part in exp.frame.groupby("arm"):
        y, x = part[numerator], part[denominator]
        n, mean_x = len(part), x.mean()
        ratio = y.sum() / x.sum() if x.sum() else np.nan
        # Delta method: var(Ybar/Xbar) ~ (var Y - 2 R cov(Y, X) + R^2 var X) / (n Xbar^2)
        variance = (y.var() - 2 * ratio * np.cov(y, x, ddof=1)[0, 1] + ratio**2 * x.var()) / (n * mean_x**2)
        summary[arm] = (n, ratio, variance)
    n_c, r_c, v_c = summary[exp.control]
    rows = [{"campaign": exp.campaign, "arm": exp.control, "metric": metric, "n": n_c, "mean": r_c}]
    z = stats.norm.ppf(1 - alpha / 2)
    for arm, (n, r, v) in summary.items():
        if arm == exp.control:
            continue
        diff, se = r - r_c, np.sqrt(v + v_c)
        rel_se = np.sqrt(v / r_c**2 + r**2 * v_c / r_c**4) if r_c else np.nan
        rows.append(
            {
                "campaign": exp.campaign,
                "arm": arm,
                "metric": metric,
                "n": n,
                "mean": r,
                "abs_lift": diff,
                "rel_lift": diff / r_c if r_c else np.nan,
                "ci_low": diff - z * se,
                "ci_high": diff + z * se,
                "p_value": float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else np.nan,
                "rel_ci_low": diff / r_c - z * rel_se,
                "rel_ci_high": diff / r_c + z * rel_se,
            }
        )
    return rows


def _pooled_var(frame, metric, covariate, theta) -> float:
    return float(_stats(frame, metric, covariate, theta)["var"].mean())


def lift(t: pd.Series, c: pd.Series, binary: bool, alpha: float) -> dict:
    diff = t["mean"] - c["mean"]
    se = np.sqrt(t["var"] / t.n + c["var"] / c.n)
    if binary:
        low, high = confint_proportions_2indep(
            round(t["mean"] * t.n), t.n, round(c["mean"] * c.n), c.n, method="newcomb", alpha=alpha
        )
        pooled = (t["mean"] * t.n + c["mean"] * c.n) / (t.n + c.n)
        z = diff / np.sqrt(pooled * (1 - pooled) * (1 / t.n + 1 / c.n)) if 0 < pooled < 1 else 0.0
        p = float(2 * stats.norm.sf(abs(z)))
    else:
        test = stats.ttest_ind_from_stats(
            t["mean"], np.sqrt(t["var"]), t.n, c["mean"], np.sqrt(c["var"]), c.n, equal_var=False
        )
        df = (t["var"] / t.n + c["var"] / c.n) ** 2 / (
            (t["var"] / t.n) ** 2 / (t.n - 1) + (c["var"] / c.n) ** 2 / (c.n - 1)
        )
        q = stats.t.ppf(1 - alpha / 2, df)
        low, high, p = diff - q * se, diff + q * se, float(test.pvalue)
    rel = diff / c["mean"] if c["mean"] else np.nan
    rel_se = (
        np.sqrt(t["var"] / t.n / c["mean"] ** 2 + t["mean"] ** 2 * c["var"] / c.n / c["mean"] ** 4)
        if c["mean"]
        else np.nan
    )
    z = stats.norm.ppf(1 - alpha / 2)
    return {
        "n": int(t.n),
        "mean": t["mean"],
        "abs_lift": diff,
        "rel_lift": rel,
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": p,
        "rel_ci_low": rel - z * rel_se,
        "rel_ci_high": rel + z * rel_se,
    }


def health(
    exp: Experiment,
    *,
    expected_split: list[float] | None = None,
    min_sample: int = 100,
    alpha: float = 0.05,
    power: float = 0.8,
) -> pd.DataFrame:
    """Pass / warn / fail checks: ``check, status, value`` and what the check is about (``about``: arm sizes, a
    column and arm, or a metric), its ``threshold`` (minimum sample, balance limit, power) and, for the
    minimum detectable effect, its ``relative`` size on the control mean. The report words them."""
    counts = exp.frame.arm.value_counts().sort_index()
    rows = []
    shares = np.array(expected_split, float) if expected_split else np.ones(len(counts))
    if len(shares) != len(counts):
        raise DataError.single(
            "parameters",
            f"expected_split has {len(shares)} shares for {len(counts)} arms",
            "give one share per arm, in arm name order",
            column="expected_split",
            key="campaign_uplift.split_count",
            values={"shares": len(shares), "arms": len(counts)},
            example=", ".join(counts.index),
        )
    expected = shares / shares.sum() * counts.sum()
    p = float(stats.chisquare(counts.to_numpy(), expected).pvalue)
    status = "fail" if p < SRM_FAIL else "warn" if p < SRM_WARN else "pass"
    rows.append(
        {
            "check": "sample ratio",
            "status": status,
            "value": p,
            "about": " · ".join(f"{a} {n:,}" for a, n in counts.items()),
        }
    )
    smallest = int(counts.min())
    rows.append(
        {
            "check": "minimum sample",
            "status": "pass" if smallest >= min_sample else "fail",
            "value": smallest,
            "threshold": min_sample,
        }
    )
    skip = {*exp.metrics, *[p for m in exp.metrics for p in m.split("/")], "user_id"}
    numeric = [
        c
        for c in exp.frame.columns
        if c not in skip
        and pd.api.types.is_numeric_dtype(exp.frame[c])
        and not pd.api.types.is_bool_dtype(exp.frame[c])
    ]
    control = exp.frame[exp.frame.arm == exp.control]
    worst, worst_name = 0.0, ""
    for column in numeric:
        for arm in [a for a in counts.index if a != exp.control]:
            treated = exp.frame.loc[exp.frame.arm == arm, column]
            spread = np.sqrt((treated.var() + control[column].var()) / 2)
            smd = abs(treated.mean() - control[column].mean()) / spread if spread > 0 else 0.0
            if smd > worst:
                worst, worst_name = smd, f"{column} ({arm})"
    rows.append(
        {
            "check": "covariate balance",
            "status": "warn" if worst > BALANCE_WARN else "pass",
            "value": worst,
            "about": worst_name,
            "threshold": BALANCE_WARN,
        }
    )
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    for metric in [m for m in exp.metrics if "/" not in m]:
        by_arm = exp.frame.groupby("arm")[metric].agg(["var", "count", "mean"])
        c = by_arm.loc[exp.control]
        treated = by_arm.drop(index=exp.control)
        mde = z * np.sqrt(c["var"] / c["count"] + treated["var"].mean() / treated["count"].mean())
        rows.append(
            {
                "check": f"minimum detectable effect: {metric}",
                "status": "info",
                "value": mde,
                "about": metric,
                "threshold": power,
                "relative": mde / c["mean"] if c["mean"] else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=["check", "status", "value", "about", "threshold", "relative"])
