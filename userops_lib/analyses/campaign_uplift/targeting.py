"""Who to target next time: uplift by segment, and an uplift model with its Qini curve and bootstrap interval."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from userops_lib import topn
from userops_lib.analyses.campaign_uplift import experiment as uplift
from userops_lib.analyses.campaign_uplift import stats as uplift_stats
from userops_lib.errors import DataError


def segment_uplift(
    exp: uplift.Experiment,
    segment_by: str,
    metric: str,
    *,
    alpha: float = 0.05,
    value_per_conversion: float = 0.0,
    cost_per_contact: float = 0.0,
    top: int = 12,
) -> pd.DataFrame:
    """Lift of each arm in each segment with an interval, Cochran's Q across segments, incremental value."""
    if segment_by not in exp.frame.columns:
        raise DataError.single(
            "assignments",
            f"no column '{segment_by}' to break the campaign down by",
            "use an attribute of the users or a covariate of the assignments",
            column=segment_by,
            key="campaign_uplift.no_segment_column",
            values={"column": segment_by},
            example=", ".join(c for c in exp.frame.columns if exp.frame[c].dtype == object)[:200],
        )
    frame = exp.frame.assign(_segment=topn.fold_values(exp.frame[segment_by], top))
    rows = []
    for arm in [a for a in frame.arm.unique() if a != exp.control]:
        for segment, part in frame.groupby("_segment"):
            table = part.groupby("arm")[metric].agg(n="count", mean="mean", var="var")
            if exp.control not in table.index or arm not in table.index or min(table.n) < 2:
                continue
            lift = uplift_stats.lift(table.loc[arm], table.loc[exp.control], exp.binary[metric], alpha)
            rows.append(
                {
                    "arm": arm,
                    "segment_by": segment_by,
                    "segment": segment,
                    "metric": metric,
                    "n_treated": lift["n"],
                    "n_control": int(table.loc[exp.control].n),
                    "control_mean": table.loc[exp.control]["mean"],
                    "abs_lift": lift["abs_lift"],
                    "ci_low": lift["ci_low"],
                    "ci_high": lift["ci_high"],
                    "p_value": lift["p_value"],
                    "se": np.sqrt(
                        table.loc[arm]["var"] / table.loc[arm].n
                        + table.loc[exp.control]["var"] / table.loc[exp.control].n
                    ),
                }
            )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["heterogeneity_p"] = np.nan
    for _, part in out.groupby("arm"):
        weights = 1 / part.se.clip(lower=1e-12) ** 2
        pooled = (weights * part.abs_lift).sum() / weights.sum()
        q = float((weights * (part.abs_lift - pooled) ** 2).sum())
        out.loc[part.index, "heterogeneity_p"] = float(stats.chi2.sf(q, len(part) - 1)) if len(part) > 1 else np.nan
    out["segment_users"] = out.n_treated + out.n_control
    if not value_per_conversion and not cost_per_contact:
        # no value or cost given: no value columns (zeros would read as results)
        return out.sort_values(["arm", "abs_lift"], ascending=[True, False]).reset_index(drop=True)
    out["value_per_user"] = out.abs_lift * value_per_conversion - cost_per_contact
    out["incremental_value"] = out.value_per_user * out.segment_users
    return out.sort_values(["arm", "value_per_user"], ascending=[True, False]).reset_index(drop=True)


def _design(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    parts = []
    for column in features:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            parts.append(values.astype(float).rename(column))
        else:
            parts.append(pd.get_dummies(values.astype(str), prefix=column, drop_first=True, dtype=float))
    X = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)
    X = X.loc[:, X.std() > 0]
    return sm.add_constant(X, has_constant="add")


@dataclasses.dataclass(frozen=True)
class UpliftModel:
    arm: str
    metric: str
    qini: pd.DataFrame  # share_targeted, incremental, random
    qini_coefficient: float
    deciles: pd.DataFrame  # decile, users, predicted_uplift, observed_uplift
    features: list[str]
    test_users: int
    qini_ci: tuple[float, float] = (np.nan, np.nan)  # 95% bootstrap percentile interval of the coefficient
    # Why the model cannot be used, or None: "not_converged" (a per-arm fit did not converge), "not_identified"
    # (a feature decides the outcome in an arm, or an estimate without a finite standard error)
    problem: str | None = None


SE_LIMIT = 10.0  # a log-odds estimate with a standard error above this is not pinned down (as for Cox)


def _health(fits: list, caught: list, binary: bool) -> str | None:
    """What is wrong with the per-arm fits (statsmodels' own flags and warnings), or None. A value of a
    feature that decides a binary outcome in one arm (quasi-complete separation) converges with a log-odds
    of ~30 and a standard error in the thousands: not identified."""
    if any(not getattr(fit, "converged", True) for fit in fits) or any(
        issubclass(w.category, ConvergenceWarning) for w in caught
    ):
        return "not_converged"
    errors = [np.asarray(fit.bse, float) for fit in fits]
    unsure = any(not np.isfinite(e).all() or (binary and (e > SE_LIMIT).any()) for e in errors)
    if unsure or any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
        return "not_identified"
    return None


def uplift_model(
    exp: uplift.Experiment, arm: str, metric: str, features: list[str], *, seed: int = 0, test_share: float = 0.3
) -> UpliftModel:
    """Two-model uplift (a logistic or linear model per arm) scored on a held-out split.

    The Qini curve and coefficient are written here (a few lines; the uplift libraries that offer them
    pull in scikit-learn for no more than this): Qini(k) = Y_t(k) - Y_c(k) N_t(k) / N_c(k) among the k
    users with the highest predicted uplift; the coefficient is the area between it and the straight line
    of random targeting, divided by the number of test users.
    """
    frame = exp.frame[exp.frame.arm.isin([arm, exp.control])].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    test = rng.random(len(frame)) < test_share
    X = _design(frame, features)
    family = sm.families.Binomial() if exp.binary[metric] else sm.families.Gaussian()
    predictions, fits = {}, []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in (arm, exp.control):
            train = (~test) & (frame.arm == name).to_numpy()
            model = sm.GLM(frame.loc[train, metric], X.loc[train], family=family).fit()
            fits.append(model)
            predictions[name] = model.predict(X.loc[test])
    problem = _health(fits, caught, bool(exp.binary[metric]))
    if problem is not None:  # no ranking from a model that cannot be used: nothing to target by
        empty = pd.DataFrame(columns=["share_targeted", "incremental", "random"])
        deciles = pd.DataFrame(columns=["decile", "users", "predicted_uplift", "observed_uplift"])
        return UpliftModel(arm, metric, empty, np.nan, deciles, features, int(test.sum()), problem=problem)
    scored = frame.loc[test, ["arm", metric]].assign(uplift=(predictions[arm] - predictions[exp.control]).to_numpy())
    scored = scored.sort_values("uplift", ascending=False, kind="stable").reset_index(drop=True)
    treated = (scored.arm == arm).to_numpy()
    y = scored[metric].to_numpy(float)
    incremental, share, random_line, coefficient = _qini(treated, y)
    # Bootstrap over test users (kept in model order): how sure is the coefficient? Targeting advice rests on it.
    draws = []
    for _ in range(QINI_BOOTSTRAP if len(scored) else 0):
        pick = np.sort(rng.integers(0, len(scored), len(scored)))
        draws.append(_qini(treated[pick], y[pick])[3])
    qini_ci = tuple(np.nanpercentile(draws, [2.5, 97.5])) if draws else (np.nan, np.nan)
    step = max(1, len(scored) // 200)
    qini = pd.DataFrame(
        {"share_targeted": share[::step], "incremental": incremental[::step], "random": random_line[::step]}
    )
    scored["decile"] = np.minimum((np.arange(len(scored)) * 10) // len(scored), 9) + 1
    deciles = (
        scored.groupby("decile")
        .apply(
            lambda g: pd.Series(
                {
                    "users": len(g),
                    "predicted_uplift": g.uplift.mean(),
                    "observed_uplift": g.loc[g.arm == arm, metric].mean() - g.loc[g.arm == exp.control, metric].mean(),
                }
            ),
            include_groups=False,
        )
        .reset_index()
    )
    return UpliftModel(
        arm, metric, qini, coefficient, deciles, features, int(test.sum()), (float(qini_ci[0]), float(qini_ci[1]))
    )


QINI_BOOTSTRAP = 200


def _qini(treated: np.ndarray, y: np.ndarray):
    """Qini curve of users in model order: incremental outcome, share targeted, the random line, coefficient."""
    n_t, n_c = np.cumsum(treated), np.cumsum(~treated)
    y_t, y_c = np.cumsum(y * treated), np.cumsum(y * ~treated)
    incremental = y_t - np.where(n_c > 0, y_c * n_t / np.maximum(n_c, 1), 0.0)
    share = np.arange(1, len(y) + 1) / max(len(y), 1)
    random_line = share * (incremental[-1] if len(y) else 0.0)
    coefficient = float(np.trapezoid(incremental - random_line, share) / len(y)) if len(y) else np.nan
    return incremental, share, random_line, coefficient
