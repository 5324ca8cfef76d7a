"""Churn survival: durations from either input, Kaplan–Meier, log-rank and RMST on aggregated rows.

Durations
    *From an event log*: a user has churned when they have had no activity for ``churn_after_days``
    before the snapshot, and their churn time is their last activity (time from first activity).
    Everyone else is censored at ``snapshot - churn_after_days``: by then they were certainly still
    here (their last activity is later), and that censoring time depends on the calendar only, so it
    carries no information about the user. Censoring at the snapshot would credit users with up to
    ``churn_after_days`` they may not have stayed; censoring at their last activity would make the
    censoring depend on their behaviour. Users first seen in the last ``churn_after_days`` cannot be
    judged yet and are left out (counted in the report). Whole days.
    *From a user table* with ``duration`` and ``churned`` (e.g. Telco: tenure in months, Churn = Yes):
    taken as they are, in the table's unit.

Scale
    The engine reduces users to rows ``(segment or covariate pattern, duration, churned, count)``.
    Kaplan–Meier, log-rank tests, medians and RMST with integer frequency weights are *exactly* what
    lifelines gives on one row per user. Cox regression is exact too up to ``cox_exact_max_users``
    users (the pattern rows are expanded to one row per user for lifelines); above it the weighted fit
    handles tied event times as R's survival package does with weights, which differs slightly from the
    one-row-per-user fit when many events share a time (see :mod:`userops_lib.hazards`).
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import median_survival_times, restricted_mean_survival_time
from statsmodels.stats.multitest import multipletests

from userops_lib import narrative, plots
from userops_lib.data import Dataset
from userops_lib.errors import DataError

OTHER = "other"
DEFAULT_HORIZONS = {"days": (30, 90, 180), "weeks": (4, 13, 26), "months": (6, 12, 24)}
DEFAULT_RISK_HORIZON = {"days": 30, "weeks": 4, "months": 3}


def user_durations(
    ds: Dataset,
    *,
    source: str = "auto",
    churn_after_days: int = 30,
    active_events: list[str] | None = None,
    snapshot=None,
) -> tuple[ir.Table, str, str, str]:
    """One row per user: ``user_id, duration, churned`` and the user attributes (an engine expression).

    Returns the table, the unit, the source used (``events`` or ``users``) and the definition text.
    """
    users = ds.users
    has_table = users is not None and {"duration", "churned"} <= set(users.columns)
    if source not in ("auto", "events", "users"):
        raise DataError.single(
            "parameters",
            f"unknown duration source '{source}'",
            "use auto, events or users",
            column="source",
            example=source,
        )
    if source == "users" or (source == "auto" and has_table):
        if not has_table:
            raise DataError.single(
                "users",
                "the users table has no duration and churned columns",
                "map them in dataset.yml, or use source=events",
                column="duration",
            )
        table = users.filter(users.duration.notnull() & users.churned.notnull())
        table = table.mutate(seen=table.duration, tenure=table.duration)
        unit = ds.duration_unit or "units"
        definition = (
            f"Duration is the users table's pre-computed time as a customer, in {unit}; churned users "
            "are those the data flags as churned, the rest are censored (still customers)."
        )
        return table.mutate(churned=table.churned.cast("boolean")), unit, "users", definition
    events = ds.table("events")
    if churn_after_days < 1:
        raise DataError.single(
            "parameters",
            "churn_after_days must be at least 1",
            "give a number of days",
            column="churn_after_days",
            example=churn_after_days,
        )
    if active_events:
        events = events.filter(events.event.isin(list(active_events)))
    snapshot = pd.Timestamp(snapshot or ds.snapshot_at).to_pydatetime()
    events = events.filter(events.event_at < snapshot)
    spans = events.group_by("user_id").aggregate(first_at=events.event_at.min(), last_at=events.event_at.max())
    cutoff = snapshot - pd.Timedelta(days=churn_after_days).to_pytimedelta()
    churned = spans.last_at < cutoff
    end = ibis.ifelse(churned, spans.last_at.date(), ibis.literal(cutoff).date())
    table = spans.filter(spans.first_at < cutoff).mutate(
        churned=churned,
        duration=end.delta(spans.first_at.date(), unit="day").cast("float64"),
        seen=spans.last_at.date().delta(spans.first_at.date(), unit="day").cast("float64"),
        tenure=ibis.literal(snapshot).date().delta(spans.first_at.date(), unit="day").cast("float64"),
    )
    if users is not None:
        attributes = [c for c in users.columns if c not in ("signup_at", "duration", "churned")]
        table = table.left_join(users.select(*attributes), "user_id")
    definition = (
        f"A user has churned when they had no activity in the {churn_after_days} days before the "
        f"snapshot; their duration runs from first to last activity. Everyone else is censored "
        f"{churn_after_days} days before the snapshot, when they were certainly still active (a "
        f"calendar date, so censoring says nothing about the user). Users first seen in the last "
        f"{churn_after_days} days are too new to judge and left out. Whole days."
    )
    return table, "days", "events", definition


def with_patterns(table: ir.Table, columns: list[str], *, max_levels: int | None = None) -> ir.Table:
    """``table`` with each text column mapped to its top ``max_levels`` values and 'other' (nulls: '(missing)')."""
    for column in columns:
        if column not in table.columns:
            raise DataError.single(
                "users",
                f"no user attribute '{column}'",
                "choose an attribute of the users table",
                column=column,
                example=", ".join(c for c in table.columns if c not in ("user_id", "duration", "churned"))[:200],
            )
    keys = {}
    for column in columns:
        value = table[column]
        if value.type().is_string() or value.type().is_boolean():
            value = value.cast("string").fill_null("(missing)")
            if max_levels:
                top = (
                    table.group_by(v=value).aggregate(n=table.count()).order_by([ibis.desc("n"), "v"]).limit(max_levels)
                )
                value = ibis.ifelse(value.isin(top.v), value, ibis.literal(OTHER))
        keys[column] = value
    return table.mutate(**keys) if keys else table


def aggregate(table: ir.Table, columns: list[str], *, max_levels: int | None = None) -> pd.DataFrame:
    """Counts per ``columns`` pattern, duration and churn flag (the rows every fit takes)."""
    table = with_patterns(table, columns, max_levels=max_levels)
    grouped = table.group_by(["duration", "churned", *columns]).aggregate(count=table.count())
    frame = grouped.execute()
    frame["churned"] = frame.churned.astype(bool)
    return frame.sort_values([*columns, "duration", "churned"]).reset_index(drop=True)


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
    half = _z(alpha) * np.sqrt(rmst_variance(fitter, horizon))
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


def _z(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))


def _logrank_test(frame: pd.DataFrame, column: str):
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
    overall = _logrank_test(frame, segment_by)
    rows.append(
        {
            "comparison": "all segments",
            "test_statistic": overall.test_statistic,
            "degrees_of_freedom": overall.degrees_of_freedom,
            "p_value": overall.p_value,
        }
    )
    levels = list(frame.groupby(segment_by)["count"].sum().sort_values(ascending=False).index)
    for a, b in itertools.combinations(levels, 2):
        pair = frame[frame[segment_by].isin([a, b])]
        result = _logrank_test(pair, segment_by)
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


def kaplan_meier_by_segment(
    frame: pd.DataFrame, segment_by: str | None, *, horizons, alpha: float = 0.05, rmst_horizon: float | None = None
) -> KaplanMeierResult:
    fitters, km, meds, hz, rm = {}, [], [], [], []
    rmst_horizon = rmst_horizon or max(horizons)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines notes that weights are not integers when they are floats
        parts = _segments(frame, segment_by)
        if segment_by:
            parts = [("all users", frame), *parts]
        for segment, part in parts:
            fitter = kaplan_meier(part, label=segment, alpha=alpha)
            fitters[segment] = fitter
            km.append(km_table(fitter, segment))
            meds.append(medians(fitter, segment))
            hz.extend(at_horizons(fitter, segment, horizons))
            rm.append(rmst(fitter, segment, rmst_horizon, alpha))
    tests = logrank(frame, segment_by, alpha=alpha) if segment_by and len(fitters) > 2 else pd.DataFrame()
    return KaplanMeierResult(
        pd.concat(km, ignore_index=True), pd.DataFrame(meds), pd.DataFrame(hz), pd.DataFrame(rm), tests, fitters
    )


def plot_km(result: KaplanMeierResult, *, unit: str, segment_by: str | None, ax=None, at_risk: bool = True):
    from lifelines.plotting import add_at_risk_counts

    ax = plots.axes(ax, size=(9, 5.2))
    shown = [f for name, f in result.fitters.items() if not (segment_by and name == "all users")]
    if segment_by:
        result.fitters["all users"].plot_survival_function(
            ax=ax, ci_show=False, color="black", linestyle="--", linewidth=1.2
        )
    for i, fitter in enumerate(shown):
        fitter.plot_survival_function(ax=ax, ci_show=True, color=f"C{i % 10}", linewidth=1.6)
    ax.set_ylim(0, 1.02)
    if segment_by:
        ax.legend(title=segment_by, loc="lower left")
    elif ax.get_legend() is not None:
        ax.get_legend().remove()
    if at_risk and len(shown) <= 6:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # lifelines builds str.format patterns from the labels: braces in a segment's name ('{unknown}')
            # would be read as fields, so they are doubled here and come out single.
            labels = [str(f.label).replace("{", "{{").replace("}", "}}") for f in shown]
            add_at_risk_counts(*shown, labels=labels, ax=ax, rows_to_show=["At risk"], fontsize=8)
    by = f" by {segment_by}" if segment_by else ""
    return plots.finish(
        ax,
        title=f"Share of users still active (Kaplan–Meier{by}, {narrative.level(result.alpha)} bands)",
        xlabel=f"time since start ({unit})",
        ylabel="still active (% of users)",
        percent=True,
    )


def describe_medians(meds: pd.DataFrame, unit: str, alpha: float = 0.05) -> list[str]:
    out = []
    for _, row in meds.iterrows():
        if np.isinf(row["median"]):
            out.append(f"{row.segment}: more than half are still active at the end of the data")
        else:
            high = "not reached" if np.isinf(row.ci_high) else f"{row.ci_high:g}"
            out.append(
                f"{row.segment}: half are gone by {unit[:-1]} {row['median']:g} ({narrative.level(alpha)} CI {row.ci_low:g}–{high})"
            )
    return out


def format_unit(value: float, unit: str) -> str:
    return f"{value:g} {unit if value != 1 else unit[:-1]}"


DEFINITIONS_COMMON = [
    "Kaplan–Meier: share of users not yet churned at each time since start, with 95% (exponential Greenwood) "
    "bands; median survival is the time by which half have churned, with its interval.",
    "Log-rank tests compare segments' whole curves: all segments at once, then each pair, Holm-corrected.",
    "RMST: restricted mean survival time, the average time as a customer within the horizon (area under the curve).",
    "Cox regression: hazard ratios of churn against each covariate's reference level; the proportional-hazards "
    "check tests scaled Schoenfeld residuals against the Kaplan–Meier transform of time, as R's cox.zph does "
    "(p < 0.01 flags a violation).",
    "Churn risk now: for users still active, the probability of churning within the horizon given that they stayed "
    "until their last activity (Cox model, or the segment's Kaplan–Meier curve without covariates) and, on event "
    "logs, how long they have been silent since (Bayes' rule with the gaps between returning users' active days); "
    "blank where the horizon reaches beyond the data.",
]


@dataclasses.dataclass(frozen=True)
class ChurnSurvival:
    """Everything the churn survival report shows; every figure has its table."""

    unit: str
    source: str
    definition: str
    users: int
    churned: int
    segment_by: str | None
    horizons: tuple
    risk_horizon: float
    km: KaplanMeierResult
    cox: object | None
    at_risk: pd.DataFrame
    calibration: pd.DataFrame | None
    calibration_note: str
    notes: list[str]
    findings: list[str]
    headlines: list[tuple[str, str]]

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {
            "km": self.km.km,
            "median_survival": self.km.medians,
            "survival_at_horizons": self.km.horizons,
            "rmst": self.km.rmst,
            "at_risk_users": self.at_risk,
        }
        if not self.km.logrank.empty:
            out["logrank"] = self.km.logrank
        if self.cox is not None:
            out["cox"] = self.cox.summary[["covariate", "hazard_ratio", "ci_low", "ci_high", "p_value"]]
            out["ph_test"] = self.cox.ph_test
            if self.cox.stratified is not None:
                out["cox_stratified"] = self.cox.stratified[
                    ["covariate", "hazard_ratio", "ci_low", "ci_high", "p_value"]
                ]
        if self.calibration is not None:
            out["calibration"] = self.calibration
        return out

    def plot_km(self, ax=None):
        return plot_km(self.km, unit=self.unit, segment_by=self.segment_by, ax=ax)

    def plot_forest(self, ax=None):
        from userops_lib import hazards

        return hazards.plot_forest(self.cox, ax=ax)

    def plot_calibration(self, ax=None):
        frame = self.calibration
        ax = plots.axes(ax, size=(6, 5))
        top = max(frame.predicted.max(), frame.observed.max()) * 1.1
        ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
        # Wilson bounds can sit a rounding error inside an observed 0 or 1; matplotlib refuses negative bars.
        below, above = (frame.observed - frame.ci_low).clip(lower=0), (frame.ci_high - frame.observed).clip(lower=0)
        ax.errorbar(
            frame.predicted,
            frame.observed,
            yerr=[below, above],
            fmt="o",
            color="C0",
            capsize=3,
            label="tenth of users by predicted risk",
        )
        ax.legend(loc="upper left")
        return plots.finish(
            ax,
            title=f"Predicted vs observed churn within {format_unit(self.risk_horizon, self.unit)} (holdout)",
            xlabel="predicted churn probability",
            ylabel="observed churn share",
            percent=True,
        )


def parse_references(texts: list[str]) -> dict[str, str]:
    """Reference levels written as ``column=level`` (e.g. ``Contract=Two year``)."""
    out = {}
    for text in texts:
        column, sep, level = str(text).partition("=")
        if not sep or not column.strip() or not level.strip():
            raise DataError.single(
                "parameters",
                "a reference level is not 'column=level'",
                "write e.g. Contract=Two year",
                column="references",
                example=text,
            )
        out[column.strip()] = level.strip()
    return out


def analyse(
    ds: Dataset,
    *,
    source: str = "auto",
    churn_after_days: int = 30,
    segment_by: str | None = None,
    covariates: list[str] | None = None,
    references: dict[str, str] | None = None,
    horizons=None,
    risk_horizon: float | None = None,
    max_levels: int = 8,
    alpha: float = 0.05,
    active_events: list[str] | None = None,
    exact_max_users: int | None = None,
) -> ChurnSurvival:
    """The whole churn survival analysis; empty ``segment_by``/``covariates`` are chosen from the data."""
    from userops_lib import hazards

    table, unit, used, definition = user_durations(
        ds, source=source, churn_after_days=churn_after_days, active_events=active_events
    )
    # Event properties named as segment_by or covariates describe a user by their first event's value.
    table = ds.user_attributes(table, [segment_by or "", *(covariates or [])])
    if used == "events":
        # One row per user, read by every step below: reduce the event log once, not once per step.
        table = table.cache()
    attributes = _candidate_attributes(table)
    notes: list[str] = []
    covariates = list(covariates) if covariates else None
    if segment_by is None or covariates is None:
        ranked = _rank_attributes(table, attributes, max_levels)
        if segment_by is None and ranked:
            segment_by = ranked[0]
            notes.append(f"Segments: {segment_by}, the attribute whose segments' survival differs most (log-rank).")
        if covariates is None:
            covariates = ranked[:3]
            if covariates:
                notes.append(f"Cox covariates: {', '.join(covariates)}, the attributes that separate survival most.")
    columns = list(dict.fromkeys([c for c in [segment_by, *covariates] if c]))
    frame = aggregate(table, columns, max_levels=max_levels)
    users, churned = int(frame["count"].sum()), int(frame.loc[frame.churned, "count"].sum())
    if used == "events":
        seen = int(ds.events.filter(ds.events.event_at < ds.snapshot_at).user_id.nunique().execute())
        if seen > users:
            notes.append(
                f"{seen - users:,} users first seen in the last {churn_after_days} days are too new to judge "
                "and are not in these figures."
            )
    if churned == 0:
        raise DataError.single(
            "users",
            "no user has churned, so there is no survival curve to estimate",
            "check the churn flag or churn_after_days",
            rows=users,
        )
    horizons = tuple(horizons) if horizons else DEFAULT_HORIZONS.get(unit, (30, 90, 180))
    risk_horizon = float(risk_horizon or DEFAULT_RISK_HORIZON.get(unit, 30))
    km = kaplan_meier_by_segment(
        _segment_frame(frame, segment_by, max_levels), segment_by, horizons=horizons, alpha=alpha
    )
    cox = None
    if covariates:
        cox = hazards.fit_cox(
            frame.groupby(["duration", "churned", *covariates], as_index=False)["count"].sum(),
            covariates,
            references=references,
            alpha=alpha,
            exact_max_users=exact_max_users or hazards.EXACT_MAX_USERS,
        )
    last_time = float(frame.duration.max())
    gaps = (
        gap_survival(ds, snapshot=ds.snapshot_at, churn_after_days=churn_after_days, active_events=active_events)
        if used == "events"
        else None
    )
    risk_model = _risk_model(cox)
    if cox is not None and risk_model is None:
        notes.append(
            "The churn-risk list uses the Kaplan–Meier curve of each user's "
            + (f"{segment_by}" if segment_by else "population")
            + ", not the Cox model: the model's proportional-hazards assumption fails and no stratified refit "
            "remedies it, so its predictions over a horizon would be wrong."
        )
    at_risk = _risk_now(
        table,
        frame,
        columns,
        risk_model,
        km,
        segment_by,
        risk_horizon,
        last_time,
        max_levels,
        gaps,
        censored_alive=used == "users",
    )
    calibration, calibration_note = _calibrate(
        ds,
        used,
        churn_after_days,
        active_events,
        columns,
        covariates,
        references,
        segment_by,
        risk_horizon,
        max_levels,
        alpha,
    )
    result = ChurnSurvival(
        unit,
        used,
        definition,
        users,
        churned,
        segment_by,
        horizons,
        risk_horizon,
        km,
        cox,
        at_risk,
        calibration,
        calibration_note,
        notes,
        [],
        [],
    )
    findings, headlines = _findings(result)
    return dataclasses.replace(result, findings=findings, headlines=headlines)


def _candidate_attributes(table: ir.Table) -> list[str]:
    """Text and boolean attributes, and numbers coded with two values (0/1 flags such as Rossi's fin, wexp)."""
    skip = {"user_id", "duration", "churned", "first_at", "last_at", "seen", "tenure"}
    schema = {c: t for c, t in table.schema().items() if c not in skip}
    numeric = [c for c, t in schema.items() if t.is_numeric()]
    binary = set()
    if numeric:
        distinct = table.aggregate(**{c: table[c].nunique() for c in numeric}).execute().iloc[0]
        binary = {c for c in numeric if int(distinct[c]) == 2}
    return [c for c, t in schema.items() if t.is_string() or t.is_boolean() or c in binary]


def _rank_attributes(table: ir.Table, attributes: list[str], max_levels: int) -> list[str]:
    """Attributes with 2+ levels, most separating first (log-rank statistic on their top levels)."""
    scores = []
    for attribute in attributes:
        frame = aggregate(table, [attribute], max_levels=max_levels)
        if frame[attribute].nunique() < 2 or frame[attribute].nunique() > max_levels + 1:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = _logrank_test(frame, attribute)
        scores.append((test.test_statistic / test.degrees_of_freedom, attribute))
    return [a for _, a in sorted(scores, reverse=True)]


def _segment_frame(frame: pd.DataFrame, segment_by: str | None, max_levels: int | None = None) -> pd.DataFrame:
    keys = ["duration", "churned", *([segment_by] if segment_by else [])]
    if segment_by and max_levels:
        frame = frame.assign(**{segment_by: segment_levels(frame[segment_by], frame["count"], max_levels)})
    return frame.groupby(keys, as_index=False)["count"].sum()


def segment_levels(values: pd.Series, counts: pd.Series, max_levels: int) -> pd.Series:
    """Segments as text, the ``max_levels`` largest kept and the rest pooled as 'other'. Text attributes are
    folded in the engine already (:func:`with_patterns`); numbers (a count such as 'prio', 0/1 codes) stay
    numbers for the Cox model, so the curves fold them here: 17 values made 17 curves."""
    text = values.astype(str).where(values.notna(), "(missing)")
    sizes = counts.groupby(text).sum().sort_values(ascending=False, kind="stable")
    keep = set(sizes.index[:max_levels]) if len(sizes) > max_levels + 1 else set(sizes.index)
    return text.where(text.isin(keep), OTHER)


def _risk_now(
    table, frame, columns, cox, km, segment_by, horizon, last_time, max_levels, gaps, *, censored_alive: bool = False
) -> pd.DataFrame:
    """Users still active, ranked by their probability of churning within the horizon.

    For a user censored at s who was last seen at t_L >= s (time from first activity), the risk is
    P(T <= s + horizon | T >= t_L) under the fitted model: the last activity is known, the future is not.
    From a users table (``censored_alive``) a censored duration s means the customer was still there
    after s, so the risk is P(T <= s + horizon | T > s).
    """
    users = with_patterns(table.filter(~table.churned), columns, max_levels=max_levels)
    users = users.mutate(silence=users.tenure - users.seen)
    combos = users.group_by(["duration", "seen", "silence", *columns]).aggregate(users=users.count()).execute()
    combos["churn_probability"] = _conditional(
        combos, columns, cox, km, segment_by, horizon, last_time, gaps, censored_alive=censored_alive
    )
    lookup = ibis.memtable(combos[["duration", "seen", "silence", *columns, "churn_probability"]])
    joined = users.join(lookup, ["duration", "seen", "silence", *columns])
    ranked = joined.select(
        user_id=joined.user_id,
        tenure=joined.tenure,
        churn_probability=joined.churn_probability,
        horizon=ibis.literal(horizon),
    ).order_by([ibis.desc("churn_probability"), "user_id"])
    return ranked.execute()


def _conditional(
    combos, columns, cox, km, segment_by, horizon, last_time, gaps=None, *, censored_alive: bool = False
) -> np.ndarray:
    """P(churn within the horizon) for rows ``(duration s, seen t_L, silence d, pattern)``.

    Known: the user stayed until their last activity (T >= t_L) and has been silent d days since.
    From the survival model, h = P(T = t_L | T >= t_L) (that activity was their last) and
    q = P(T <= s + horizon | T > t_L); from the gaps between returning users' active days,
    g = P(gap > d). Bayes' rule on the silence (written here: no library combines the two):

        risk = (h + (1 - h) g q) / (h + (1 - h) g)

    Without silence (d = 0, g = 1) this is P(T <= s + horizon | T >= t_L). With ``censored_alive`` (a users
    table's censored duration: the customer was there after s = t_L) h is 0: P(T <= s + horizon | T > s).
    """
    from userops_lib import hazards

    if combos.empty:  # nobody is still active: an empty list, not a model evaluated on nothing
        return np.array([], dtype=float)
    seen = combos.seen.to_numpy(dtype=float)
    ends = combos.duration.to_numpy(dtype=float) + horizon
    silence = combos.silence.to_numpy(dtype=float) if "silence" in combos else np.zeros(len(combos))
    if cox is not None:
        steps = hazards.survival_steps(cox, combos)

        def survival(points, side):
            return steps(points, side)
    else:

        def survival(points, side):
            out = np.full(len(points), np.nan)
            labels = (
                combos[segment_by].astype(str).where(combos[segment_by].notna(), "(missing)") if segment_by else None
            )
            if segment_by:
                labels = labels.where(labels.isin(list(km.fitters)), OTHER)  # levels the curves pooled
            for segment, fitter in km.fitters.items():
                mask = (labels == segment).to_numpy() if segment_by else np.ones(len(points), bool)
                shifted = points[mask] - (hazards.LEFT if side == "left" else 0.0)
                out[mask] = fitter.survival_function_at_times(shifted).to_numpy()
            return out

    with np.errstate(divide="ignore", invalid="ignore"):
        before, at_last, at_end = survival(seen, "left"), survival(seen, "right"), survival(ends, "right")
        final = np.zeros(len(seen)) if censored_alive else np.nan_to_num(1 - at_last / before, nan=1.0)
        later = np.where(ends >= seen, 1 - at_end / at_last, 0.0)
        quiet = gaps(silence) if gaps is not None else np.ones(len(seen))
        risk = (final + (1 - final) * quiet * later) / (final + (1 - final) * quiet)
    risk = np.where(ends < seen, 0.0, risk)
    risk[ends > last_time] = np.nan
    return risk


def gap_survival(ds: Dataset, *, snapshot, churn_after_days: int, active_events=None):
    """P(gap > d): days between consecutive active days of users who came back (engine), as a function.

    Only gaps that start at least 2 x churn_after_days before the snapshot count, so that every gap up
    to that length could have been seen to end.
    """
    events = ds.table("events")
    if active_events:
        events = events.filter(events.event.isin(list(active_events)))
    snapshot = pd.Timestamp(snapshot).to_pydatetime()
    days = events.filter(events.event_at < snapshot).select("user_id", day=events.event_at.date()).distinct()
    window = ibis.window(group_by="user_id", order_by="day")
    days = days.mutate(gap=days.day.lead().over(window).delta(days.day, unit="day"))
    limit = (pd.Timestamp(snapshot) - pd.Timedelta(days=2 * churn_after_days)).date()
    counted = days.filter(days.gap.notnull() & (days.day <= limit))
    frame = counted.group_by("gap").aggregate(n=counted.count()).order_by("gap").execute()
    if frame.empty:
        return None
    gaps = frame.gap.to_numpy(dtype=float)
    share_over = 1 - np.cumsum(frame.n.to_numpy(dtype=float)) / frame.n.sum()

    def over(d: np.ndarray) -> np.ndarray:
        position = np.searchsorted(gaps, d, side="right") - 1
        return np.where(position >= 0, share_over[np.clip(position, 0, None)], 1.0)

    return over


def _calibrate(
    ds, used, churn_after_days, active_events, columns, covariates, references, segment_by, horizon, max_levels, alpha
) -> tuple[pd.DataFrame | None, str]:
    """Refit as of ``snapshot - horizon`` and compare predicted with observed churn over the horizon.

    At the earlier cutoff a still-active user is censored at cutoff - churn_after_days; "churns within
    the horizon" means a last activity before cutoff - churn_after_days + horizon, which is exactly
    "churned as of the real snapshot" — known for everyone.
    """
    if used != "events":
        return None, (
            "Calibration needs an event log (a second, earlier snapshot); a table of pre-computed "
            "durations has only one, so the risk list is not checked against a holdout."
        )
    snapshot = pd.Timestamp(ds.snapshot_at)
    cutoff = snapshot - pd.Timedelta(days=horizon)
    early, *_ = user_durations(
        ds, source="events", churn_after_days=churn_after_days, active_events=active_events, snapshot=cutoff
    )
    late, *_ = user_durations(ds, source="events", churn_after_days=churn_after_days, active_events=active_events)
    early = ds.user_attributes(early, columns).cache()
    frame = aggregate(early, columns, max_levels=max_levels)
    if frame["count"].sum() < 200 or frame.loc[frame.churned, "count"].sum() < 20:
        return None, "Too little data before the holdout cutoff to check calibration."
    km, cox = analyse_frame(frame, columns, covariates, references, segment_by, alpha, max_levels)
    holdout = early.filter(~early.churned).join(late.select("user_id", outcome=late.churned), "user_id")
    grouped = with_patterns(holdout, columns, max_levels=max_levels)
    grouped = grouped.mutate(silence=grouped.tenure - grouped.seen)
    counts = (
        grouped.group_by(["duration", "seen", "silence", *columns])
        .aggregate(users=grouped.count(), churned=grouped.outcome.cast("int64").sum())
        .execute()
    )
    gaps = gap_survival(ds, snapshot=cutoff, churn_after_days=churn_after_days, active_events=active_events)
    counts["predicted"] = _conditional(
        counts, columns, _risk_model(cox), km, segment_by, horizon, float(frame.duration.max()), gaps
    )
    counts = counts.dropna(subset=["predicted"])
    if counts.users.sum() < 100:
        return None, "Too few holdout users to check calibration."
    return _calibration_bins(counts, alpha), (
        f"Holdout: the model refitted on data up to {cutoff:%Y-%m-%d} predicted churn within "
        f"{format_unit(horizon, 'days')} for {int(counts.users.sum()):,} users active then; observed since."
    )


def _risk_model(cox):
    """The Cox model when its predictions can be used (see ``CoxResult.holds``), else None: risk then comes
    from each segment's Kaplan–Meier curve. One rule for the risk list and for its holdout check."""
    return cox if cox is None or cox.holds else None


def analyse_frame(frame, columns, covariates, references, segment_by, alpha, max_levels=None):
    from userops_lib import hazards

    km = kaplan_meier_by_segment(_segment_frame(frame, segment_by, max_levels), segment_by, horizons=(1,), alpha=alpha)
    cox = None
    if covariates:
        cox = hazards.fit_cox(
            frame.groupby(["duration", "churned", *covariates], as_index=False)["count"].sum(),
            covariates,
            references=references,
            alpha=alpha,
        )
    return km, cox


def _calibration_bins(counts: pd.DataFrame, alpha: float, bins: int = 10) -> pd.DataFrame:
    from statsmodels.stats.proportion import proportion_confint

    counts = counts.sort_values("predicted").reset_index(drop=True)
    position = (counts.users.cumsum() - counts.users / 2) / counts.users.sum()
    counts["bin"] = np.minimum((position * bins).astype(int), bins - 1)
    grouped = (
        counts.groupby("bin")
        .apply(
            lambda g: pd.Series(
                {
                    "users": g.users.sum(),
                    "predicted": np.average(g.predicted, weights=g.users),
                    "observed_churn": g.churned.sum(),
                }
            ),
            include_groups=False,
        )
        .reset_index()
    )
    grouped["observed"] = grouped.observed_churn / grouped.users
    low, high = proportion_confint(grouped.observed_churn, grouped.users, alpha=alpha, method="wilson")
    grouped["ci_low"], grouped["ci_high"] = low, high
    brier = (
        counts.users * counts.predicted**2 - 2 * counts.predicted * counts.churned + counts.churned
    ).sum() / counts.users.sum()
    grouped.attrs["brier"] = float(brier)
    return grouped[["bin", "users", "predicted", "observed", "ci_low", "ci_high"]]


def hazards_sentences(result: ChurnSurvival) -> list[str]:
    """Notes under the Cox table: redundant columns left out, and the PH check in words."""
    from userops_lib import hazards

    out = []
    if result.cox.redundant:
        out.append(f"Left out as exact combinations of other columns: {', '.join(result.cox.redundant)}.")
    return out + hazards.ph_sentences(result.cox)


def _calibration_sentence(calibration: pd.DataFrame) -> str:
    """How the holdout predictions compare with what happened, in words."""
    users = calibration.users.sum()
    predicted = (calibration.predicted * calibration.users).sum() / users
    observed = (calibration.observed * calibration.users).sum() / users
    top, bottom = calibration.iloc[-1], calibration.iloc[0]
    sentence = (
        f"On a holdout, the riskiest tenth churned at {narrative.percent(top.observed)} (predicted "
        f"{narrative.percent(top.predicted)}) and the safest tenth at {narrative.percent(bottom.observed)}, "
        f"so the ranking separates users; overall {narrative.percent(observed)} churned against "
        f"{narrative.percent(predicted)} predicted"
    )
    se = np.sqrt(max(observed * (1 - observed), 1e-12) / users)
    if observed - predicted > 2 * se:
        sentence += ": the probabilities are too low; use the list to rank, not as exact odds"
    elif predicted - observed > 2 * se:
        sentence += ": the probabilities are too high; use the list to rank, not as exact odds"
    else:
        sentence += ", in line"
    return sentence + f" (Brier score {calibration.attrs.get('brier', float('nan')):.3f})."


def _findings(result: ChurnSurvival) -> tuple[list[str], list[tuple[str, str]]]:
    from userops_lib import hazards

    unit = result.unit
    findings = [
        f"{narrative.count(result.churned)} of {narrative.count(result.users)} users have churned "
        f"({narrative.percent(result.churned / result.users)}); the rest are censored."
    ]
    findings.extend(note for note in result.notes if "too new" in note)
    headlines = [
        ("users", narrative.count(result.users)),
        ("churned", narrative.percent(result.churned / result.users)),
    ]
    if result.cox is not None:
        strongest = result.cox.summary.assign(size=np.abs(np.log(result.cox.summary.hazard_ratio)))
        strongest = strongest[strongest.p_value < 0.05].sort_values("size", ascending=False)
        for _, row in strongest.head(2).iterrows():
            findings.append(hazards.hazard_sentence(row, result.cox.references, alpha=result.cox.model.alpha))
        if strongest.empty:
            findings.append("No covariate's hazard ratio differs from 1 at the 5% level.")
        findings.extend(hazards.ph_sentences(result.cox))
        # Concordance said as what it means to a manager: how often the model orders two customers right.
        headlines.append(
            (
                "of customer pairs ranked right by who leaves first (50% = a coin flip)",
                narrative.percent(result.cox.concordance, 0),
            )
        )
    meds = result.km.medians
    described = describe_medians(meds.head(4), unit, result.km.alpha)
    findings.append("Median time to churn — " + "; ".join(described) + ".")
    if result.segment_by is None:
        h = result.km.horizons.iloc[0]
        headlines.append((f"still active after {format_unit(h.horizon, unit)}", narrative.percent(h.survival)))
    if not result.km.logrank.empty:
        overall_test = result.km.logrank.iloc[0]
        differ = "differ" if overall_test.p_value < 0.05 else "do not differ detectably"
        findings.append(
            f"The {result.segment_by} segments' survival curves {differ} (log-rank "
            f"{narrative.p_value(overall_test.p_value)}); pairwise tests are Holm-corrected in the table."
        )
    risky = result.at_risk.dropna(subset=["churn_probability"])
    if len(risky):
        top = risky.head(max(1, len(risky) // 10))
        findings.append(
            f"Of {narrative.count(len(result.at_risk))} users still active, the riskiest tenth have on "
            f"average a {narrative.percent(top.churn_probability.mean())} chance of churning within "
            f"{format_unit(result.risk_horizon, unit)} (all users: "
            f"{narrative.percent(risky.churn_probability.mean())}); the list is in at_risk_users.csv."
        )
    if result.calibration is not None:
        findings.append(_calibration_sentence(result.calibration))
    return findings, headlines
