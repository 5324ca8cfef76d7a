"""Churn survival: who leaves, when, what drives it, and who is at risk now.

Definitions (the catalogue's ``churn_survival.definition.*`` states them in every report):

* **Durations** (:mod:`.durations`, Ibis only): from an event log, a user has churned when they had no
  activity in the ``churn_after_days`` before the snapshot (duration: first to last activity); everyone
  else is censored ``churn_after_days`` before the snapshot; users first seen since then are too new to
  judge and left out (counted). From a users table: its ``duration`` and ``churned`` as they are.
* **Curves** (:mod:`.curves`): Kaplan–Meier per segment with exponential-Greenwood bands, medians,
  survival at fixed times, RMST with the estimator's variance, log-rank tests (overall, then pairs
  Holm-corrected). Fitted on counts per ``(pattern, duration, churned)`` with frequency weights: exact.
* **Cox** (:mod:`.cox`): hazard ratios against reference levels, the proportional-hazards check (R's
  cox.zph transform) and a stratified refit as its remedy.
* **Risk now** (:mod:`.risk`): for users still active, P(churn within the horizon) given their last
  activity and their silence since, checked on a holdout.

``run(ds, Params(...))`` returns a :class:`ChurnSurvival`; text comes from
:mod:`userops_lib.analyses.churn_survival.text`, charts from :mod:`userops_lib.analyses.churn_survival.charts`.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

import pandas as pd

from userops_lib import contract
from userops_lib.analyses.churn_survival import durations
from userops_lib.contract import param
from userops_lib.data import Dataset
from userops_lib.errors import DataError

if TYPE_CHECKING:  # lifelines loads when the analysis runs, not when a report run is planned
    from userops_lib.analyses.churn_survival.cox import CoxResult
    from userops_lib.analyses.churn_survival.curves import KaplanMeierResult
    from userops_lib.analyses.churn_survival.risk import Calibration

_LAZY = {"CoxResult": "cox", "KaplanMeierResult": "curves", "Calibration": "risk", "curves": "", "risk": "", "cox": ""}


def __getattr__(name: str) -> Any:
    """The statistics' modules and result types, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(name)
    module = importlib.import_module(f"{__name__}.{_LAZY[name] or name}")
    return getattr(module, name) if _LAZY[name] else module


DEFAULT_HORIZONS = {"days": (30, 90, 180), "weeks": (4, 13, 26), "months": (6, 12, 24)}
DEFAULT_RISK_HORIZON = {"days": 30, "weeks": 4, "months": 3}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params(contract.Common):
    source: str = param("auto", "durations from the users table or the event log", choices=("auto", "users", "events"))
    churn_after_days: int = param(30, "event logs: inactive this many days before the snapshot means churned", ge=1)
    segment_by: str = param(
        "", "user attribute for the curves; empty: the one that separates survival most", refers_to="attribute"
    )
    covariates: list[str] = param(
        [], "user attributes for the Cox model; empty: the three that separate survival most", refers_to="attribute"
    )
    references: list[str] = param(
        [],
        "reference levels, each a column and its level joined by an equals sign; empty: each largest level",
        refers_to="attribute",
    )
    horizons: list[float] = param([], "survival reported at these times; empty: 30/90/180 days or 6/12/24 months", gt=0)
    risk_horizon: float = param(0, "churn risk window for active users; 0: 30 days or 3 months", ge=0)
    max_levels: int = param(8, 'levels kept per attribute, the rest pooled as "other"', ge=2)
    active_events: list[str] = param([], "events that count as activity; empty: any", refers_to="event")

    def named(self, field_name: str, value: str) -> list[str]:
        if field_name == "references":  # "channel=organic": the attribute before the '='
            return [value.partition("=")[0].strip()]
        return [value]

    def checks(self) -> list[contract.Problem]:
        return super().checks() + contract.raised(lambda: parse_references(self.references))


@dataclasses.dataclass(frozen=True)
class ChurnSurvival(contract.Presented):
    """Everything the churn survival report shows; every figure has its table."""

    ANALYSIS = "churn_survival"

    unit: str  # of every duration: days (event logs), or the users table's
    source: str  # events or users
    churn_after_days: int
    users: int
    churned: int
    too_new: int  # event logs: users first seen in the last churn_after_days, left out
    segment_by: str | None
    chosen: tuple[str, ...]  # which of segment_by, covariates were chosen from the data
    horizons: tuple
    risk_horizon: float
    km: KaplanMeierResult
    cox: CoxResult | None
    risk_from_cox: bool  # False: the risk list comes from the Kaplan–Meier curves
    at_risk: pd.DataFrame
    check: Calibration
    alpha: float = 0.05
    params: Params | None = None

    @property
    def level(self) -> float:
        return self.alpha

    @property
    def calibration(self) -> pd.DataFrame | None:
        """The holdout check's table (tenths of users by predicted risk), or None."""
        return self.check.table

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


def parse_references(texts: list[str]) -> dict[str, str]:
    """Reference levels written as ``column=level`` (e.g. ``Contract=Two year``)."""
    out = {}
    for text in texts:
        column, sep, level = str(text).partition("=")
        if not sep or not column.strip() or not level.strip():
            raise DataError.single(
                "parameters",
                "a reference level is not written as column=level",
                "write e.g. references=channel=organic",
                column="references",
                example=text,
                key="churn_survival.reference_form",
            )
        out[column.strip()] = level.strip()
    return out


def run(ds: Dataset, params: Params, *, exact_max_users: int | None = None) -> ChurnSurvival:
    """Churn survival of ``ds`` with the notebook's parameters (empty texts and lists: chosen or defaults)."""
    result = _analyse(
        ds,
        source=params.source,
        churn_after_days=params.churn_after_days,
        segment_by=params.segment_by or None,
        covariates=params.covariates or None,
        references=parse_references(params.references),
        horizons=params.horizons or None,
        risk_horizon=params.risk_horizon or None,
        max_levels=params.max_levels,
        alpha=params.alpha,
        active_events=params.active_events or None,
        exact_max_users=exact_max_users,
    )
    return dataclasses.replace(result, params=params)


def _analyse(
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
    """The whole churn survival analysis (its values checked by Params); ``segment_by``/``covariates`` of None
    are chosen from the data."""
    from userops_lib.analyses.churn_survival import curves, risk

    # The calibration refits at an earlier cutoff (events only, whose unit is days): both snapshots' first and
    # last events come from one pass over the events.
    cutoff = risk.calibration_cutoff(ds, float(risk_horizon or DEFAULT_RISK_HORIZON["days"]))
    table, unit, used = durations.user_durations(
        ds, source=source, churn_after_days=churn_after_days, active_events=active_events, also=[cutoff]
    )
    # Event properties named as segment_by or covariates describe a user by their first event's value.
    table = ds.user_attributes(table, [segment_by or "", *(covariates or [])])
    if used == "events":
        # One row per user, read by every step below: reduce the event log once, not once per step.
        table = table.cache()
    chosen: list[str] = []
    covariates = list(covariates) if covariates else None
    if segment_by is None or covariates is None:
        attributes = durations.candidate_attributes(table)
        ranked = curves.rank_attributes(
            {a: durations.aggregate(table, [a], max_levels=max_levels) for a in attributes}, max_levels
        )
        if segment_by is None and ranked:
            segment_by = ranked[0]
            chosen.append("segment_by")
        if covariates is None:
            covariates = ranked[:3]
            if covariates:
                chosen.append("covariates")
    columns = list(dict.fromkeys([c for c in [segment_by, *covariates] if c]))
    frame = durations.aggregate(table, columns, max_levels=max_levels)
    users, churned = int(frame["count"].sum()), int(frame.loc[frame.churned, "count"].sum())
    too_new = max(durations.users_seen(ds) - users, 0) if used == "events" else 0
    if churned == 0:
        raise DataError.single(
            "users",
            "no user has churned, so there is no survival curve to estimate",
            "check the churn flag or churn_after_days",
            rows=users,
            key="churn_survival.no_churn",
        )
    horizons = tuple(horizons) if horizons else DEFAULT_HORIZONS.get(unit, (30, 90, 180))
    risk_horizon = float(risk_horizon or DEFAULT_RISK_HORIZON.get(unit, 30))
    km, cox = risk.fit(
        frame,
        columns,
        covariates,
        references,
        segment_by,
        alpha,
        max_levels,
        horizons=horizons,
        exact_max_users=exact_max_users,
    )
    gaps = (
        risk.gap_survival(
            durations.gap_counts(
                ds, snapshot=ds.snapshot_at, churn_after_days=churn_after_days, active_events=active_events
            )
        )
        if used == "events"
        else None
    )
    model = risk.risk_model(cox)
    at_risk = risk.risk_now(
        table,
        columns,
        model,
        km,
        segment_by,
        risk_horizon,
        float(frame.duration.max()),
        max_levels,
        gaps,
        censored_alive=used == "users",
        population=frame,
    )
    check = risk.calibrate(
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
        outcomes=table.select("user_id", outcome=table.churned) if used == "events" else None,
    )
    return ChurnSurvival(
        unit,
        used,
        churn_after_days,
        users,
        churned,
        too_new,
        segment_by,
        tuple(chosen),
        horizons,
        risk_horizon,
        km,
        cox,
        model is not None,
        at_risk,
        check,
        alpha,
    )


ABOUT = contract.About(
    summary="Who leaves, when, and why — and who is at risk now: Kaplan–Meier curves, segment tests, a Cox model of what drives churn, and a ranked list of users to win back, with its check on a holdout.",
    requires=(
        ("events",),
        (
            "users.duration",
            "users.churned",
        ),
    ),
    shared=("activity_days",),
)


__all__ = [
    "ABOUT",
    "Calibration",
    "ChurnSurvival",
    "CoxResult",
    "KaplanMeierResult",
    "Params",
    "parse_references",
    "run",
]
