"""Churn risk now: for each user still active, the probability of churning within a horizon, and its
check on a holdout (the model refitted at an earlier snapshot against what happened since)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from userops_lib.analyses.churn_survival import cox as cox_model
from userops_lib.analyses.churn_survival import curves, durations
from userops_lib.topn import MISSING, OTHER


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The holdout check: ``table`` (tenths of users by predicted risk) or why there is none (``status``)."""

    status: str  # "ok", or why not: "needs_events", "too_little", "too_few"
    table: pd.DataFrame | None = None  # bin, users, predicted, observed, ci_low, ci_high
    cutoff: pd.Timestamp | None = None  # the earlier snapshot the model was refitted at (UTC)
    users: int = 0  # holdout users with a prediction
    brier: float = float("nan")
    cutoff_local: pd.Timestamp | None = None  # the same moment in the dataset's calendar, as pages show it


def risk_model(cox):
    """The Cox model when its predictions can be used (see ``CoxResult.holds``), else None: risk then comes
    from each segment's Kaplan–Meier curve. One rule for the risk list and for its holdout check."""
    return cox if cox is None or cox.holds else None


def gap_survival(gaps: pd.DataFrame):
    """P(gap > d) as a function of d, from the engine's gap counts (None when no user came back)."""
    if gaps.empty:
        return None
    values = gaps.gap.to_numpy(dtype=float)
    share_over = 1 - np.cumsum(gaps.n.to_numpy(dtype=float)) / gaps.n.sum()

    def over(d: np.ndarray) -> np.ndarray:
        position = np.searchsorted(values, d, side="right") - 1
        return np.where(position >= 0, share_over[np.clip(position, 0, None)], 1.0)

    return over


FEW_AT_RISK = 30  # a risk read from fewer users at risk at its horizon is flagged as resting on few


def risk_now(
    table,
    columns,
    model,
    km,
    segment_by,
    horizon,
    last_time,
    max_levels,
    gaps,
    *,
    censored_alive: bool = False,
    population: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Users still active, ranked by their probability of churning within the horizon.

    For a user censored at s who was last seen at t_L >= s (time from first activity), the risk is
    P(T <= s + horizon | T >= t_L) under the fitted model: the last activity is known, the future is not.
    From a users table (``censored_alive``) a censored duration s means the customer was still there
    after s, so the risk is P(T <= s + horizon | T > s).

    ``users_at_risk``: how many users of the fit (``population``: its ``duration, count`` rows) were still
    observed at s + horizon, the time the estimate reads the curve at; the fewer, the less the estimate
    rests on (under :data:`FEW_AT_RISK` the report says so).
    """
    users, combos = durations.active_patterns(table, columns, max_levels=max_levels)
    combos["churn_probability"] = conditional(
        combos, model, km, segment_by, horizon, last_time, gaps, censored_alive=censored_alive
    )
    if population is not None and not combos.empty:
        combos["users_at_risk"] = users_at_risk(population, combos.duration.to_numpy(float) + horizon)
    else:
        combos["users_at_risk"] = pd.array([pd.NA] * len(combos), dtype="Int64")
    return durations.ranked_users(users, combos, columns, horizon)


def users_at_risk(population: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """How many users of ``population`` (``duration, count`` rows) were still observed at each of ``times``:
    those whose duration (churn or censoring time) is at least that time."""
    ordered = population.sort_values("duration", kind="stable")
    durations_ = ordered.duration.to_numpy(float)
    beyond = np.concatenate([np.cumsum(ordered["count"].to_numpy(float)[::-1])[::-1], [0.0]])
    return beyond[np.searchsorted(durations_, np.asarray(times, float), side="left")].astype("int64")


def conditional(
    combos, model, km, segment_by, horizon, last_time, gaps=None, *, censored_alive: bool = False
) -> np.ndarray:
    """P(churn within the horizon) for rows ``(duration s, seen t_L, silence d, pattern)``.

    Known: the user stayed until their last activity (T >= t_L) and has been silent d days since.
    From the survival model, h = P(T = t_L | T >= t_L) (that activity was their last) and
    q = P(T <= s + horizon | T > t_L); from the gaps between returning users' active days,
    g = P(gap > d). Bayes' rule on the silence (written here: no library combines the two):

        risk = (h + (1 - h) g q) / (h + (1 - h) g)

    A user silent longer than any returning user ever was (g = 0) has risk 1 whatever h (the limit of
    h / h; with no churn step at t_L the formula is 0 / 0). Without silence (d = 0, g = 1) this is P(T <= s + horizon | T >= t_L). With ``censored_alive`` (a users
    table's censored duration: the customer was there after s = t_L) h is 0: P(T <= s + horizon | T > s).
    """
    if combos.empty:  # nobody is still active: an empty list, not a model evaluated on nothing
        return np.array([], dtype=float)
    seen = combos.seen.to_numpy(dtype=float)
    ends = combos.duration.to_numpy(dtype=float) + horizon
    silence = combos.silence.to_numpy(dtype=float) if "silence" in combos else np.zeros(len(combos))
    if model is not None:
        survival = cox_model.survival_steps(model, combos)
    else:

        def survival(points, side):
            out = np.full(len(points), np.nan)
            labels = combos[segment_by].astype(str).where(combos[segment_by].notna(), MISSING) if segment_by else None
            if segment_by:
                labels = labels.where(labels.isin(list(km.fitters)), OTHER)  # levels the curves pooled
            for segment, fitter in km.fitters.items():
                mask = (labels == segment).to_numpy() if segment_by else np.ones(len(points), bool)
                shifted = points[mask] - (cox_model.LEFT if side == "left" else 0.0)
                out[mask] = fitter.survival_function_at_times(shifted).to_numpy()
            return out

    with np.errstate(divide="ignore", invalid="ignore"):
        before, at_last, at_end = survival(seen, "left"), survival(seen, "right"), survival(ends, "right")
        final = np.zeros(len(seen)) if censored_alive else np.nan_to_num(1 - at_last / before, nan=1.0)
        later = np.where(ends >= seen, 1 - at_end / at_last, 0.0)
        quiet = gaps(silence) if gaps is not None else np.ones(len(seen))
        risk = (final + (1 - final) * quiet * later) / (final + (1 - final) * quiet)
    risk = np.where(quiet == 0, 1.0, risk)  # quieter than anyone who came back: the limit of h / h, gone
    risk = np.where(ends < seen, 0.0, risk)
    risk[ends > last_time] = np.nan
    return risk


def fit(
    frame,
    columns,
    covariates,
    references,
    segment_by,
    alpha,
    max_levels=None,
    *,
    horizons=(1,),
    exact_max_users=None,
    tests=True,
):
    """The curves (one per segment, read at ``horizons``; with log-rank tests unless ``tests=False``) and the
    Cox model (None without covariates)."""
    km = curves.by_segment(
        durations.segment_frame(frame, segment_by, max_levels), segment_by, horizons=horizons, alpha=alpha, tests=tests
    )
    model = None
    if covariates:
        model = cox_model.fit_cox(
            frame.groupby(["duration", "churned", *covariates], as_index=False)["count"].sum(),
            covariates,
            references=references,
            alpha=alpha,
            exact_max_users=exact_max_users or cox_model.EXACT_MAX_USERS,
        )
    return km, model


def calibration_cutoff(ds, horizon: float) -> pd.Timestamp:
    """The earlier snapshot the calibration refits at: ``horizon`` days before the dataset's."""
    return pd.Timestamp(ds.snapshot_at) - pd.Timedelta(days=horizon)


def calibrate(
    ds,
    used,
    churn_after_days,
    active_events,
    columns,
    covariates,
    references,
    segment_by,
    horizon,
    max_levels,
    alpha,
    outcomes=None,
) -> Calibration:
    """Refit as of ``snapshot - horizon`` and compare predicted with observed churn over the horizon.

    At the earlier cutoff a still-active user is censored at cutoff - churn_after_days; "churns within
    the horizon" means a last activity before cutoff - churn_after_days + horizon, which is exactly
    "churned as of the real snapshot" — known for everyone. ``outcomes`` (``user_id, outcome``: churned as
    of the snapshot) are the main fit's, when it has them; else they are reduced from the events here.
    """
    if used != "events":
        return Calibration("needs_events")
    cutoff = calibration_cutoff(ds, horizon)
    early, *_ = durations.user_durations(
        ds, source="events", churn_after_days=churn_after_days, active_events=active_events, snapshot=cutoff
    )
    if outcomes is None:
        late, *_ = durations.user_durations(
            ds, source="events", churn_after_days=churn_after_days, active_events=active_events
        )
        outcomes = late.select("user_id", outcome=late.churned)
    early = ds.user_attributes(early, columns).cache()
    frame = durations.aggregate(early, columns, max_levels=max_levels)
    if frame["count"].sum() < 200 or frame.loc[frame.churned, "count"].sum() < 20:
        return Calibration("too_little", cutoff=cutoff)
    # The refit predicts from the curves and the Cox model: the segments' log-rank tests are the main fit's.
    km, model = fit(frame, columns, covariates, references, segment_by, alpha, max_levels, tests=False)
    _, counts = durations.active_patterns(early, columns, max_levels=max_levels, outcome=outcomes)
    gaps = gap_survival(
        durations.gap_counts(ds, snapshot=cutoff, churn_after_days=churn_after_days, active_events=active_events)
    )
    counts["predicted"] = conditional(
        counts, risk_model(model), km, segment_by, horizon, float(frame.duration.max()), gaps
    )
    counts = counts.dropna(subset=["predicted"])
    if counts.users.sum() < 100:
        return Calibration("too_few", cutoff=cutoff)
    table, brier = calibration_bins(counts, alpha)
    return Calibration("ok", table, cutoff, int(counts.users.sum()), brier, ds.calendar.to_local(cutoff))


def calibration_bins(counts: pd.DataFrame, alpha: float, bins: int = 10) -> tuple[pd.DataFrame, float]:
    """Tenths of users by predicted risk with the observed churn share and its Wilson interval, and the
    Brier score over every user."""
    # Users with the same predicted risk are ordered by their pattern, not by the engine's row order, so
    # that the tenths (which split such ties) are the same on every run and engine.
    keys = [c for c in counts.columns if c not in ("users", "churned", "predicted")]
    counts = counts.sort_values(["predicted", *keys], kind="mergesort").reset_index(drop=True)
    position = (counts.users.cumsum() - counts.users / 2) / counts.users.sum()
    counts["bin"] = np.minimum((position * bins).astype(int), bins - 1)
    counts["weighted"] = counts.predicted * counts.users
    grouped = counts.groupby("bin", as_index=False)[["users", "weighted", "churned"]].sum()
    grouped["predicted"] = grouped.weighted / grouped.users
    grouped["observed"] = grouped.churned / grouped.users
    low, high = proportion_confint(grouped.churned, grouped.users, alpha=alpha, method="wilson")
    grouped["ci_low"], grouped["ci_high"] = low, high
    brier = (
        counts.users * counts.predicted**2 - 2 * counts.predicted * counts.churned + counts.churned
    ).sum() / counts.users.sum()
    return grouped[["bin", "users", "predicted", "observed", "ci_low", "ci_high"]], float(brier)
