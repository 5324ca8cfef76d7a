"""The statistics of a campaign (pandas, scipy, statsmodels only): the readout of each arm against
control from the per-arm sums the engine computed, and the health checks that say whether to trust it.

Definitions are in :mod:`userops_lib.analyses.campaign_uplift.experiment`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

from userops_lib import contract
from userops_lib.analyses.campaign_uplift.experiment import SUMS, Experiment
from userops_lib.errors import DataError

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


def moments(sums: pd.DataFrame) -> pd.DataFrame:
    """Per arm: ``n``, the means, variances (n - 1) and covariance of y and x, from the sums."""
    n = sums.n.astype(float)
    out = pd.DataFrame(index=sums.index)
    out["n"] = sums.n
    out["mean"], out["mean_x"] = sums.sum_y / n, sums.sum_x / n
    out["var"] = (sums.sum_y2 - sums.sum_y**2 / n) / (n - 1)
    out["var_x"] = (sums.sum_x2 - sums.sum_x**2 / n) / (n - 1)
    out["cov"] = (sums.sum_xy - sums.sum_y * sums.sum_x / n) / (n - 1)
    return out


def _cuped(sums: pd.DataFrame) -> pd.DataFrame | None:
    """Per-arm moments of y - theta (x - mean of x over all users), theta = cov(y, x) / var(x) over all
    users (pooled over arms); None when x does not vary."""
    total = moments(sums.sum().to_frame().T).iloc[0]
    if not total.var_x > 0:
        return None
    theta = total["cov"] / total.var_x
    per_arm = moments(sums)
    adjusted = per_arm[["n"]].copy()
    adjusted["mean"] = per_arm["mean"] - theta * (per_arm.mean_x - total.mean_x)
    adjusted["var"] = per_arm["var"] - 2 * theta * per_arm["cov"] + theta**2 * per_arm.var_x
    return adjusted


def readout(exp: Experiment, *, alpha: float = 0.05, correction: str = "holm", cuped: bool = True) -> pd.DataFrame:
    """One row per arm and metric (control rows carry n and mean), with CUPED rows where a covariate exists;
    computed from the per-arm sums alone (``exp.sums``), as gbstats does."""
    rows = []
    for metric in exp.metrics:
        sums = exp.sums[exp.sums.metric == metric].set_index("arm")[list(SUMS)]
        if "/" in metric:
            rows.extend(_ratio_rows(exp, metric, moments(sums), alpha))
            continue
        plain = moments(sums)
        variants = [("", plain, False)]
        if cuped and exp.covariates.get(metric) is not None:
            adjusted = _cuped(sums)
            if adjusted is not None:
                variants.append((" (CUPED)", adjusted, True))
        for label, table, adjusted in variants:
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
                        **lift(table.loc[arm], control, exp.binary[metric] and not adjusted, alpha),
                        "variance_reduction": 1 - table["var"].mean() / plain["var"].mean() if adjusted else np.nan,
                    }
                )
    frame = pd.DataFrame(rows)
    tested = frame.p_value.notna() & ~frame.metric.str.endswith("(CUPED)")
    frame["p_adjusted"] = np.nan
    method = {"holm": "holm", "bh": "fdr_bh", "benjamini-hochberg": "fdr_bh"}.get(correction.lower())
    if method is None:
        raise DataError(contract.problem("correction", "param.choice", correction, choices="holm, bh"))
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


def _ratio_rows(exp: Experiment, metric: str, table: pd.DataFrame, alpha: float) -> list[dict]:
    """A ratio of sums (e.g. revenue/active_days) per arm, its lift with a delta-method interval."""
    summary = {}
    for arm, m in table.iterrows():
        ratio = m["mean"] / m.mean_x if m.mean_x else np.nan
        # Delta method: var(Ybar/Xbar) ~ (var Y - 2 R cov(Y, X) + R^2 var X) / (n Xbar^2)
        variance = (m["var"] - 2 * ratio * m["cov"] + ratio**2 * m.var_x) / (m.n * m.mean_x**2)
        summary[arm] = (int(m.n), ratio, variance)
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
        # Design-time MDE: the control arm's spread for both arms (a treated arm's observed spread holds the
        # effect it would detect), against a treated arm of the treated arms' mean size.
        mde = z * np.sqrt(c["var"] * (1 / c["count"] + 1 / treated["count"].mean()))
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


__all__ = ["ARM_SUMMARY", "health", "lift", "moments", "readout"]
