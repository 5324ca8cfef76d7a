"""Segment profiling: RFM segments, value tiers, lifecycle stages and core users, with profiles that are checked.

Definitions (all as of the snapshot, UTC days; the catalogue's ``segment_profiling.definition.*``
states them in every report):

* **Recency**: days from the last purchase (``frequency_basis='purchases'``: events with revenue > 0)
  or last activity (``'active_days'``) to the snapshot. **Frequency**: number of purchase events, or
  of distinct active days. **Monetary**: total revenue.
* **Scores 1–5**: each user's position among users with at least one purchase (or activity), by the
  *average rank* of their value (tied values share one rank, so ties always share a score):
  ``score = 1 + floor(5 * (average_rank - 0.5) / n)``. Recency is scored in reverse (recent = 5).
* **RFM segments** from a map of score ranges, first match wins (``DEFAULT_SEGMENTS``); users without
  a purchase are "No purchase".
* **Value tiers**: users sorted by revenue; *high* are those making the top ``high_share`` of revenue,
  *mid* the next ``mid_share``, *low* everyone else (no revenue included).
* **Lifecycle stage**: *new* (first seen within ``new_days``), *active* (seen within ``dormant_days``,
  first seen less than ``mature_days`` ago), *mature* (seen within ``dormant_days``, older), *dormant*
  (last seen ``dormant_days`` to ``churn_days`` ago), *churned* (longer).

Per-user features are computed in the engine (:mod:`.engine`); the statistics (:mod:`.stats`) see one
row per user. Text comes from :mod:`userops_lib.analyses.segment_profiling.text`, charts from
:mod:`userops_lib.analyses.segment_profiling.charts`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from userops_lib import contract, rfm
from userops_lib.analyses.segment_profiling import engine, stats
from userops_lib.analyses.segment_profiling.engine import lifecycle_counts
from userops_lib.analyses.segment_profiling.stats import STAGE_ACTIONS, STAGES, TIER_ACTIONS, TIERS
from userops_lib.calendar import Calendar
from userops_lib.contract import param
from userops_lib.data import Dataset
from userops_lib.engine import frame as engine_frame
from userops_lib.rfm import DEFAULT_SEGMENTS, KEPT, NO_PURCHASE, OTHERS, assign, features, scores, tiers

PERIOD_DAYS = {"day": 1, "week": 7, "month": 30}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params(contract.Common):
    frequency_basis: str = param(
        "", "what frequency counts (empty: purchases when there is revenue)", choices=("", "purchases", "active_days")
    )
    high_share: float = param(0.2, "the high tier makes this share of revenue", gt=0, lt=1)
    mid_share: float = param(0.3, "the mid tier makes the next share", ge=0, lt=1)
    new_days: int = param(30, "lifecycle: first seen within this many days is new", ge=1)
    dormant_days: int = param(30, "lifecycle: not seen for this many days is dormant", ge=1)
    churn_days: int = param(90, "lifecycle: not seen for this many days is churned", ge=1)
    mature_days: int = param(180, "lifecycle: active users first seen longer ago are mature", ge=1)
    period_days: int = param(30, "migration and validation look back this many days", ge=1)
    lifecycle_period: str = param("week", "period of the lifecycle chart", choices=("day", "week", "month"))
    dormant_after_periods: int = param(1, "lifecycle chart: inactive periods before a user counts as dormant", ge=1)
    core_window_days: int = param(28, "core users: activity counted over the last this many days", ge=1)
    core_share: float = param(0.2, "core users: the most active share of recently active users", gt=0, le=1)
    scatter_points: int = param(
        5000, "the recency/spend scatter draws this many users or fewer (a random sample, stated)", ge=1
    )

    def checks(self) -> list[contract.Problem]:
        found = super().checks()
        if self.high_share + self.mid_share > 1:
            found.append(
                contract.problem("mid_share", "segment_profiling.shares", f"{self.high_share:g} + {self.mid_share:g}")
            )
        if self.churn_days < self.dormant_days:
            found.append(
                contract.problem(
                    "churn_days", "segment_profiling.churn_days", f"{self.churn_days} < {self.dormant_days}"
                )
            )
        return found


@dataclasses.dataclass(frozen=True)
class Segments(contract.Presented):
    ANALYSIS = "segment_profiling"

    users: pd.DataFrame  # one row per user: features, scores and segments
    profiles: dict[str, pd.DataFrame]  # per segmentation
    pareto: pd.DataFrame
    lifecycle: pd.DataFrame  # per period: new, returning, resurrecting, dormant
    core: dict
    migration: pd.DataFrame | None
    validation: pd.DataFrame | None
    validation_tests: dict
    basis: str
    currency: str
    lifecycle_days: int  # length of the lifecycle chart's period, for bar widths
    period_days: int = 30  # migration and validation look back this many days
    segment_map: tuple = tuple(DEFAULT_SEGMENTS)
    alpha: float = 0.05
    params: Params | None = None
    calendar: Calendar = dataclasses.field(default_factory=Calendar)  # the days, weeks and months counted in

    @property
    def level(self) -> float:
        return self.alpha

    def artifact(self) -> pd.DataFrame:
        return self.users[["user_id", "recency_days", "frequency", "monetary", *stats.ASSIGNED]]

    def tables(self) -> dict[str, pd.DataFrame]:
        # Data only: who each segment is and what to do about it are words of the report (text.py).
        profiles = self.profiles
        out = {
            "user_segments": self.artifact(),
            "segment_profile": pd.concat([p.assign(segmentation=k) for k, p in profiles.items()], ignore_index=True),
            "pareto": self.pareto,
            "lifecycle": self.lifecycle,
            "core_attributes": self.core["attributes"],
        }
        if self.migration is not None:
            out["migration"] = self.migration
        if self.validation is not None:
            out["validation"] = self.validation
        return out


def run(ds: Dataset, params: Params) -> Segments:
    """Segment profiling of ``ds`` with the notebook's parameters."""
    result = _analyse(
        ds,
        basis=params.frequency_basis or None,
        period_days=params.period_days,
        high_share=params.high_share,
        mid_share=params.mid_share,
        new_days=params.new_days,
        dormant_days=params.dormant_days,
        churn_days=params.churn_days,
        mature_days=params.mature_days,
        core_window_days=params.core_window_days,
        core_share=params.core_share,
        lifecycle_period=params.lifecycle_period,
        dormant_after_periods=params.dormant_after_periods,
        alpha=params.alpha,
    )
    return dataclasses.replace(result, params=params)


def _analyse(
    ds: Dataset,
    *,
    basis: str | None = None,
    period_days: int = 30,
    high_share: float = 0.2,
    mid_share: float = 0.3,
    new_days: int = 30,
    dormant_days: int = 30,
    churn_days: int = 90,
    mature_days: int = 180,
    core_window_days: int = 28,
    core_share: float = 0.2,
    lifecycle_period: str = "week",
    dormant_after_periods: int = 1,
    segment_map=None,
    alpha: float = 0.05,
) -> Segments:
    """Every segmentation, its profiles, migration over the last period and a holdout validation."""
    if basis is None:
        basis = rfm.default_basis(ds)
    segment_map = segment_map or DEFAULT_SEGMENTS
    options = dict(
        segment_map=segment_map,
        high_share=high_share,
        mid_share=mid_share,
        new_days=new_days,
        dormant_days=dormant_days,
        churn_days=churn_days,
        mature_days=mature_days,
    )
    earlier = pd.Timestamp(ds.snapshot_at) - pd.Timedelta(days=period_days)
    current, earlier_features = rfm.features_at(ds, [None, earlier], basis=basis)  # one pass over the events
    if ds.users is not None:
        attributes = [c for c, t in ds.users.schema().items() if t.is_string() and c != "user_id"]
        current = current.left_join(ds.users.select("user_id", *attributes), "user_id")
    else:
        attributes = []
    # Ordered by user: tier ties and the validation tests must not depend on the engine's row order.
    # Only the columns the statistics use are pulled (a frame per user: 5M rows at 100M events).
    users = rfm.assign(engine_frame(current.select("user_id", *KEPT, *attributes), order_by="user_id"), **options)
    attributes = [a for a in attributes if not stats.identifier_like(users[a])]
    before = rfm.assign(engine_frame(earlier_features.select("user_id", *KEPT), order_by="user_id"), **options)
    before = before[["user_id", "frequency", "monetary", *stats.ASSIGNED]]
    migration = validation = None
    tests: dict = {}
    measured = False
    if len(before) >= 50:
        # Where each earlier user is now (-1: no activity before the snapshot, which cannot happen for
        # users seen before the earlier snapshot, but is handled).
        position = stats.rows_of(users, before.user_id)
        found = position >= 0
        position = np.where(found, position, 0)
        # A difference of two float sums: rounded so that "no new revenue" is exactly 0 on every engine
        # (summation order leaves ~1e-13 otherwise, which splits rank ties in the tests below).
        monetary_now = np.where(found, users.monetary.to_numpy(float)[position], 0.0)
        before["revenue_next"] = np.round(monetary_now - before.monetary.to_numpy(float), 6)
        since_seen = users.since_seen.to_numpy(float)[position]
        before["churned_next"] = ~(found & (since_seen < period_days))
        before["segment_now"] = np.where(found, users.rfm_segment.to_numpy()[position], NO_PURCHASE)
        measured = True
        migration = stats.migration(before)
        validation, tests = stats.validate(before, alpha)
    profiles = {}
    for column, order in (
        ("rfm_segment", [s[0] for s in segment_map] + [OTHERS, NO_PURCHASE]),
        ("value_tier", list(TIERS)),
        ("lifecycle_stage", list(STAGES)),
    ):
        rates = before.groupby(column).churned_next.mean().to_dict() if measured else None
        profiles[column] = stats.profile(users, column, attributes, churn_next=rates, order=order)
    core = stats.core_users(engine.recent_activity(ds, core_window_days), users, attributes, share=core_share)
    return Segments(
        users,
        profiles,
        stats.pareto(users.monetary),
        engine.lifecycle_counts(ds, period=lifecycle_period, dormant_after_periods=dormant_after_periods),
        core,
        migration,
        validation,
        tests,
        basis,
        ds.currency,
        PERIOD_DAYS[lifecycle_period],
        period_days=period_days,
        segment_map=tuple(segment_map),
        alpha=alpha,
        calendar=ds.calendar,
    )


ABOUT = contract.About(
    summary="RFM segments, value tiers, lifecycle stages and core users.",
    requires=(("events",),),
    shared=("activity_days",),
)


__all__ = [
    "ABOUT",
    "DEFAULT_SEGMENTS",
    "KEPT",
    "NO_PURCHASE",
    "OTHERS",
    "STAGES",
    "STAGE_ACTIONS",
    "TIERS",
    "TIER_ACTIONS",
    "Params",
    "Segments",
    "assign",
    "features",
    "lifecycle_counts",
    "run",
    "scores",
    "tiers",
]
