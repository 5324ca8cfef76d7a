"""Who to target next time: uplift by segment, an uplift model with its Qini curve, and the campaign result."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from userops_lib import narrative, plots, uplift
from userops_lib.data import Dataset
from userops_lib.errors import DataError


def segment_uplift(exp: uplift.Experiment, segment_by: str, metric: str, *, alpha: float = 0.05,
                   value_per_conversion: float = 0.0, cost_per_contact: float = 0.0, top: int = 12) -> pd.DataFrame:
    """Lift of each arm in each segment with an interval, Cochran's Q across segments, incremental value."""
    if segment_by not in exp.frame.columns:
        raise DataError.single("assignments", f"no column '{segment_by}' to break the campaign down by",
                               "use an attribute of the users or a covariate of the assignments", column=segment_by,
                               example=", ".join(c for c in exp.frame.columns if exp.frame[c].dtype == object)[:200])
    frame = exp.frame.assign(_segment=exp.frame[segment_by].astype(str))
    sizes = frame._segment.value_counts()
    keep = set(sizes.index[:top])
    frame["_segment"] = frame._segment.where(frame._segment.isin(keep), "other")
    rows = []
    for arm in [a for a in frame.arm.unique() if a != exp.control]:
        for segment, part in frame.groupby("_segment"):
            table = part.groupby("arm")[metric].agg(n="count", mean="mean", var="var")
            if exp.control not in table.index or arm not in table.index or min(table.n) < 2:
                continue
            lift = uplift._lift(table.loc[arm], table.loc[exp.control], exp.binary[metric], alpha)
            rows.append({"arm": arm, "segment_by": segment_by, "segment": segment, "metric": metric,
                         "n_treated": lift["n"], "n_control": int(table.loc[exp.control].n),
                         "control_mean": table.loc[exp.control]["mean"], "abs_lift": lift["abs_lift"],
                         "ci_low": lift["ci_low"], "ci_high": lift["ci_high"], "p_value": lift["p_value"],
                         "se": np.sqrt(table.loc[arm]["var"] / table.loc[arm].n +
                                       table.loc[exp.control]["var"] / table.loc[exp.control].n)})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["heterogeneity_p"] = np.nan
    for _, part in out.groupby("arm"):
        weights = 1 / part.se.clip(lower=1e-12) ** 2
        pooled = (weights * part.abs_lift).sum() / weights.sum()
        q = float((weights * (part.abs_lift - pooled) ** 2).sum())
        out.loc[part.index, "heterogeneity_p"] = float(stats.chi2.sf(q, len(part) - 1)) if len(part) > 1 else np.nan
    out["value_per_user"] = out.abs_lift * value_per_conversion - cost_per_contact
    out["segment_users"] = out.n_treated + out.n_control
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
    qini: pd.DataFrame          # share_targeted, incremental, random
    qini_coefficient: float
    deciles: pd.DataFrame       # decile, users, predicted_uplift, observed_uplift
    features: list[str]
    test_users: int
    qini_ci: tuple[float, float] = (np.nan, np.nan)  # 95% bootstrap percentile interval of the coefficient


def uplift_model(exp: uplift.Experiment, arm: str, metric: str, features: list[str], *, seed: int = 0,
                 test_share: float = 0.3) -> UpliftModel:
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
    predictions = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in (arm, exp.control):
            train = (~test) & (frame.arm == name).to_numpy()
            model = sm.GLM(frame.loc[train, metric], X.loc[train], family=family).fit()
            predictions[name] = model.predict(X.loc[test])
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
    qini = pd.DataFrame({"share_targeted": share[::step], "incremental": incremental[::step],
                         "random": random_line[::step]})
    scored["decile"] = np.minimum((np.arange(len(scored)) * 10) // len(scored), 9) + 1
    deciles = scored.groupby("decile").apply(lambda g: pd.Series({
        "users": len(g), "predicted_uplift": g.uplift.mean(),
        "observed_uplift": g.loc[g.arm == arm, metric].mean() - g.loc[g.arm == exp.control, metric].mean()}),
        include_groups=False).reset_index()
    return UpliftModel(arm, metric, qini, coefficient, deciles, features, int(test.sum()),
                       (float(qini_ci[0]), float(qini_ci[1])))


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


@dataclasses.dataclass(frozen=True)
class CampaignResult:
    campaign: str
    control: str
    source: str
    readout: pd.DataFrame
    health: pd.DataFrame
    segments: pd.DataFrame
    model: UpliftModel | None
    primary: str
    binary: dict
    currency: str
    findings: list[str]
    headlines: list[tuple[str, str]]
    alpha: float = 0.05          # the level of every interval and test (95% for 0.05)

    def readout_shown(self) -> pd.DataFrame:
        """The arm summary as a reader sees it: each lift and its interval in its own unit (points for 0/1
        metrics, the currency for revenue), p-values as 'p < 0.001'. The CSV keeps the numbers."""
        frame = self.readout[["arm", "metric", "n", "mean", "abs_lift", "ci_low", "ci_high", "rel_lift",
                              "p_adjusted"]].copy()

        def unit(value: float, metric: str) -> str:
            if pd.isna(value):
                return "–"
            if self.binary.get(metric.replace(" (CUPED)", "")):
                return f"{value * 100:+.1f} pts"
            return _signed(value, self.currency if metric.split(" ")[0] in MONEY_METRICS else "")

        for column in ("abs_lift", "ci_low", "ci_high"):
            frame[column] = [unit(v, m) for v, m in zip(frame[column], frame.metric, strict=True)]
        frame["rel_lift"] = [("–" if pd.isna(v) else f"{v:+.1%}") for v in frame.rel_lift]
        frame["p_adjusted"] = [("–" if pd.isna(v) else narrative.p_text(v)) for v in frame.p_adjusted]
        frame["metric"] = frame.metric.str.replace("_", " ")
        return frame.rename(columns={"abs_lift": "lift", "rel_lift": "lift on control", "p_adjusted": "adjusted p"})

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"arm_summary": self.readout[["campaign", "arm", "metric", "n", "mean", "abs_lift", "rel_lift", "ci_low",
                                            "ci_high", "p_value", "p_adjusted"]], "health": self.health}
        if not self.segments.empty:
            out["segment_uplift"] = self.segments
        if self.model is not None:
            out["uplift_deciles"] = self.model.deciles
            out["qini"] = self.model.qini
        return out

    def plot_forest(self, ax=None):
        rows = self.readout[self.readout.abs_lift.notna()].iloc[::-1]
        ax = plots.axes(ax, size=(8, max(2.8, 0.42 * len(rows) + 1.2)))
        for i, (_, row) in enumerate(rows.iterrows()):
            low, high = row.rel_ci_low, row.rel_ci_high
            ax.errorbar(row.rel_lift, i, xerr=[[row.rel_lift - low], [high - row.rel_lift]], fmt="o",
                        color="C1" if "CUPED" in row.metric else "C0", capsize=3)
        ax.set_yticks(range(len(rows)), [f"{r.arm} · {r.metric}" for r in rows.itertuples()])
        ax.axvline(0, color="grey", linestyle="--", linewidth=1)
        ax.xaxis.set_major_formatter(plots.mticker.PercentFormatter(1.0, 0))
        return plots.finish(ax, title=f"Lift against control, relative to the control mean ({narrative.level(self.alpha)} CI)",
                            xlabel="relative lift (% of control mean)", ylabel="arm · metric")

    def plot_segments(self, ax=None):
        frame = self.segments.iloc[::-1]
        ax = plots.axes(ax, size=(8, max(2.8, 0.4 * len(frame) + 1.2)))
        y = np.arange(len(frame))
        ax.errorbar(frame.abs_lift, y, xerr=[frame.abs_lift - frame.ci_low, frame.ci_high - frame.abs_lift], fmt="o",
                    capsize=3)
        ax.set_yticks(y, [f"{r.arm} · {r.segment}" for r in frame.itertuples()])
        ax.axvline(0, color="grey", linestyle="--", linewidth=1)
        return plots.finish(ax, title=f"Lift in {self.primary} by {frame.segment_by.iloc[0]} ({narrative.level(self.alpha)} CI)",
                            xlabel=f"absolute lift in {self.primary} (treatment - control)", ylabel="arm · segment")

    def plot_qini(self, ax=None):
        q = self.model.qini
        ax = plots.axes(ax, size=(7, 4.5))
        ax.plot(q.share_targeted, q.incremental, label=f"uplift model (Qini coefficient {self.model.qini_coefficient:.4f})")
        ax.plot(q.share_targeted, q.random, linestyle="--", color="grey", label="random targeting")
        ax.xaxis.set_major_formatter(plots.mticker.PercentFormatter(1.0, 0))
        ax.legend(loc="lower right")
        return plots.finish(ax, title=f"Qini curve on the test split: {self.model.arm} vs control",
                            xlabel="users targeted, highest predicted uplift first (% of test users)",
                            ylabel=f"incremental {self.primary} (count)")


def analyse(ds: Dataset, *, campaign: str | None = None, metrics: list[str] | None = None, window_days: int = 14,
            segment_by: str | None = None, features: list[str] | None = None, alpha: float = 0.05,
            correction: str = "holm", expected_split: list[float] | None = None, min_sample: int = 100,
            value_per_conversion: float = 0.0, cost_per_contact: float = 0.0, seed: int = 0) -> CampaignResult:
    exp = uplift.experiment(ds, campaign=campaign, metrics=metrics, window_days=window_days,
                            segment_by=[segment_by] if segment_by else None)
    readout = uplift.readout(exp, alpha=alpha, correction=correction)
    checks = uplift.health(exp, expected_split=expected_split, min_sample=min_sample, alpha=alpha)
    primary = next((m for m in exp.metrics if exp.binary[m]), exp.metrics[0])
    text_columns = [c for c in exp.frame.columns if exp.frame[c].dtype == object and c not in ("campaign", "arm")
                    and 1 < exp.frame[c].nunique() <= 30]
    segment_by = segment_by or (text_columns[0] if text_columns else None)
    segments = segment_uplift(exp, segment_by, primary, alpha=alpha, value_per_conversion=value_per_conversion,
                              cost_per_contact=cost_per_contact) if segment_by else pd.DataFrame()
    if features is None:
        skip = {*exp.metrics, *[p for m in exp.metrics for p in m.split("/")], "user_id", "campaign", "arm",
                "assigned_at"}
        features = [c for c in exp.frame.columns if c not in skip and (
            pd.api.types.is_numeric_dtype(exp.frame[c]) or 1 < exp.frame[c].nunique() <= 30)]
    arms = readout[readout.abs_lift.notna() & (readout.metric == primary)].sort_values("abs_lift", ascending=False)
    model = uplift_model(exp, arms.arm.iloc[0], primary, features, seed=seed) if len(arms) and features else None
    result = CampaignResult(exp.campaign, exp.control, exp.source, readout, checks, segments, model, primary,
                            exp.binary, ds.currency, [], [], alpha)
    findings, headlines = _findings(result, alpha)
    return dataclasses.replace(result, findings=findings, headlines=headlines)


MONEY_METRICS = ("revenue",)  # event outcomes in the dataset's currency


def _signed(value: float, currency: str) -> str:
    """A signed lift: money with its currency and two decimals; other amounts to three significant digits."""
    if currency or abs(value) >= 1:
        return f"{'+' if value >= 0 else '-'}{currency}{abs(value):,.2f}"
    return f"{value:+.3g}"


def _findings(result: CampaignResult, alpha: float) -> tuple[list[str], list[tuple[str, str]]]:
    findings, headlines = [], []
    srm = result.health[result.health.check == "sample ratio"].iloc[0]
    if srm.status == "fail":
        findings.append(f"Stop: the arm sizes do not match the planned split ({narrative.p_value(srm.value)}); the assignment may "
                        "be broken and no lift below can be trusted.")
    rows = result.readout[result.readout.abs_lift.notna() & ~result.readout.metric.str.endswith("(CUPED)")]
    for _, row in rows.iterrows():
        survives = row.p_adjusted < alpha
        if result.binary.get(row.metric):
            lift = (f"{row.abs_lift * 100:+.1f} points ({narrative.level(alpha)} CI {row.ci_low * 100:+.1f} to "
                    f"{row.ci_high * 100:+.1f})")
        else:
            money = result.currency if row.metric in MONEY_METRICS else ""
            lift = (f"{_signed(row.abs_lift, money)} per user ({narrative.level(alpha)} CI {_signed(row.ci_low, money)} to "
                    f"{_signed(row.ci_high, money)})")
        findings.append(f"'{row.arm}' moved {row.metric.replace('_', ' ')} by {lift}, {row.rel_lift:+.0%} on control; "
                        + ("significant after correction" if survives else "not significant after correction")
                        + f" ({narrative.p_value(row.p_adjusted, 'adjusted p')}).")
    checks = {r.check: r.status for r in result.health.itertuples()}
    words = {"sample ratio": {"pass": "arm sizes match the planned split", "warn": "arm sizes are somewhat off the "
                              "planned split", "fail": "arm sizes do not match the planned split"},
             "minimum sample": {"pass": "every arm reaches the minimum sample", "warn": "an arm is below the minimum "
                                "sample", "fail": "an arm is below the minimum sample"},
             "covariate balance": {"pass": "the arms look alike before the campaign", "warn": "the arms differ "
                                   "somewhat before the campaign (see the balance table)", "fail": "the arms differ "
                                   "before the campaign"}}
    said = [words[c].get(checks[c], f"{c} {checks[c]}") for c in ("minimum sample", "covariate balance") if c in checks]
    findings.append(f"Health: {words['sample ratio'].get(srm.status, srm.status)} (sample-ratio test p = "
                    f"{srm.value:.2g}); " + "; ".join(said) + ".")
    cuped = result.readout[result.readout.metric.str.endswith("(CUPED)") & result.readout.abs_lift.notna()]
    if not cuped.empty:
        best = cuped.sort_values("variance_reduction", ascending=False).iloc[0]
        findings.append(f"CUPED with the pre-period value cut the variance of {best.metric.split(' ')[0]} by "
                        f"{best.variance_reduction:.0%}, narrowing its intervals.")
    if not result.segments.empty:
        top = result.segments.sort_values("abs_lift", ascending=False).iloc[0]
        het = result.segments.heterogeneity_p.min()
        findings.append(f"By {top.segment_by}, the largest lift in {result.primary} is '{top.arm}' in '{top.segment}' "
                        f"({top.abs_lift * 100:+.1f} points); differences between segments "
                        + ("are beyond chance" if het < alpha else "are within chance") + f" (Cochran's Q {narrative.p_value(het)}).")
    if result.model is not None:
        q, (low, high) = result.model.qini_coefficient, result.model.qini_ci
        better = bool(low > 0)  # advice only when the bootstrap interval excludes random targeting
        findings.append(f"The uplift model for '{result.model.arm}' ranks held-out users "
                        + ("better than random" if better else "no better than random, as far as the data can tell")
                        + f" (Qini coefficient {q:.4f}, 95% bootstrap interval {low:.4f} to {high:.4f}): "
                        + ("targeting its top deciles first should beat targeting at random." if better else
                           "do not target by its scores; use the segment readouts above or target everyone."))
    best = rows[rows.metric == result.primary].sort_values("abs_lift", ascending=False)
    if len(best):
        headlines.append((f"best lift in {result.primary}", f"{best.abs_lift.iloc[0] * 100:+.1f} pts"))
    split = {"pass": "arm sizes match the planned split", "warn": "arm sizes are off the planned split: check",
             "fail": "arm sizes do not match the planned split: do not trust"}.get(srm.status, srm.status)
    headlines.append(("assignment check", split))
    return findings, headlines
