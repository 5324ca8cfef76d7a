"""The experiment of a campaign (the engine part): per-user outcomes by arm and the per-arm sums the readout
is computed from (:mod:`userops_lib.analyses.campaign_uplift.stats`: the readout against control, the health checks).

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

The engine returns one row per assigned user (its outcomes, covariates and attributes) in one pass; the
per-arm sufficient statistics (n, sums, sums of squares and cross-products: :func:`arm_sums`) are summed
from those rows, and the readout is computed from them alone; the uplift model and the balance check use
the rows themselves.
"""

from __future__ import annotations

import dataclasses

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from userops_lib import engine
from userops_lib.campaigns import EVENT_METRICS, check_campaign
from userops_lib.campaigns import names as campaign_names
from userops_lib.data import Dataset, with_revenue
from userops_lib.errors import DataError, problem_fields


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
    sums: pd.DataFrame  # per arm and metric: n, sum_y, sum_y2 and, with a covariate or denominator x, sum_x ...


def experiment(
    ds: Dataset,
    *,
    campaign: str | None = None,
    metrics: list[str] | None = None,
    window_days: int = 14,
    segment_by: list[str] | None = None,
) -> Experiment:
    assignments = ds.table("assignments")
    campaigns = campaign_names(ds)  # sorted: the default campaign is the same on every engine and run
    campaign = check_campaign(campaign or campaigns[0], campaigns)
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
                key="campaign_uplift.no_outcome",
                values=problem_fields(outcome=unknown[0], metrics=", ".join(EVENT_METRICS)),
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
    sums = arm_sums(frame, list(metrics), covariates)
    binary = {m: "/" not in m and bool(frame[m].dropna().isin([0, 1]).all()) for m in metrics}
    return Experiment(campaign, control, frame, list(metrics), binary, covariates, source, sums)


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
    day = ds.calendar.date(joined.event_at)  # active days are local days of the dataset's calendar
    per_user = joined.group_by("user_id").aggregate(
        # A true/false as 1/0 by a condition, then a float: PostgreSQL casts no boolean to a float, and a
        # float literal there is a decimal.
        converted=(after & (joined.revenue > 0)).any().ifelse(1, 0).cast("float64"),
        revenue=engine.exact_sum(joined.revenue, where=after),
        active_days=day.nunique(where=after).cast("float64"),
        pre_converted=(before & (joined.revenue > 0)).any().ifelse(1, 0).cast("float64"),
        pre_revenue=engine.exact_sum(joined.revenue, where=before),
        pre_active_days=day.nunique(where=before).cast("float64"),
    )
    joined_back = table.left_join(per_user, "user_id")
    out = joined_back.select(*table.columns, *[c for c in per_user.columns if c != "user_id"])
    fills = {
        c: out[c].fill_null(0)
        for c in ("converted", "revenue", "active_days", "pre_converted", "pre_revenue", "pre_active_days")
    }
    return out.mutate(**fills), {m: f"pre_{m}" for m in EVENT_METRICS}


SUMS = ("n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")


def arm_sums(frame: pd.DataFrame, metrics: list[str], covariates: dict[str, str]) -> pd.DataFrame:
    """The readout's sufficient statistics: per arm and metric, ``n`` (users with the outcome), ``sum_y``,
    ``sum_y2`` and, where the metric has a CUPED covariate or is a ratio ``y/x``, ``sum_x``, ``sum_x2``,
    ``sum_xy`` (as gbstats keeps them); 0 where there is no x.

    Summed from the per-user rows the engine already returned (one row per assigned user), not in a second
    engine pass: that pass joined every event in the windows again (1.5-1.9x the SQL floor at 10M events)."""
    codes, arms = pd.factorize(frame.arm, sort=True)  # arm is text already (experiment() made it so)
    rows = []
    for metric in metrics:
        y, _, x = metric.partition("/")
        x = x or covariates.get(metric, "")
        value = frame[y].to_numpy(dtype=float)
        other = frame[x].to_numpy(dtype=float) if x else np.zeros(len(frame))  # no x: zeros
        present = ~np.isnan(value) & ~np.isnan(other)
        value, other = np.where(present, value, 0.0), np.where(present, other, 0.0)

        def per_arm(weights: np.ndarray) -> np.ndarray:
            return np.bincount(codes, weights=weights, minlength=len(arms))

        sums = {"n": per_arm(present.astype(float)), "sum_y": per_arm(value), "sum_y2": per_arm(value * value)}
        sums.update({"sum_x": per_arm(other), "sum_x2": per_arm(other * other), "sum_xy": per_arm(value * other)})
        rows += [{"arm": a, "metric": metric, **{k: v[i] for k, v in sums.items()}} for i, a in enumerate(arms)]
    out = pd.DataFrame(rows, columns=["arm", "metric", *SUMS])
    out["n"] = out.n.astype(int)
    return out.sort_values(["metric", "arm"]).reset_index(drop=True)
