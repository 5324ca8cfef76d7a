"""RFM features and segments: what several analyses build on (segment profiling shows them, customer value
compares its value tiers with them). A layer below the analyses: it imports none of them.

* :func:`features` (engine, Ibis): one row per user with recency, frequency and monetary value as of a
  snapshot, in the dataset's local days.
* :func:`assign` (pandas): scores 1-5, the RFM segment (first match in a map of score ranges), the value
  tier and the lifecycle stage of every user row.
* :func:`segment_name`: a segment's name in the reader's language (catalogue ``rfm.name.<segment>``).
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from userops_lib import engine, i18n
from userops_lib.calendar import Calendar
from userops_lib.data import Dataset, with_revenue
from userops_lib.errors import DataError

NO_PURCHASE = "No purchase"
OTHERS = "Others"
# The per-user columns the segmentations and their statistics use (what is pulled out of the engine).
KEPT = ("recency_days", "frequency", "monetary", "since_seen", "age_days")
# name, (recency, frequency, monetary) inclusive score ranges, description, action. First match wins.
DEFAULT_SEGMENTS: list[tuple[str, tuple, tuple, tuple, str, str]] = [
    ("Champions", (4, 5), (4, 5), (4, 5), "bought recently, often and for the most", "reward; ask for referrals"),
    (
        "Can't Lose Them",
        (1, 2),
        (4, 5),
        (4, 5),
        "used to buy often and for a lot, not lately",
        "win back now, personally",
    ),
    ("Loyal", (3, 5), (3, 5), (1, 5), "buy regularly", "upsell; loyalty programme"),
    ("At Risk", (1, 2), (3, 5), (1, 5), "bought regularly before, quiet for a while", "win back with a tailored offer"),
    ("Potential Loyalist", (4, 5), (2, 3), (1, 5), "recent, a few purchases", "membership; second-purchase offer"),
    ("New", (5, 5), (1, 1), (1, 5), "first purchase very recently", "onboard; build the habit"),
    ("Promising", (4, 4), (1, 1), (1, 5), "recent one-time buyers", "nurture with relevant offers"),
    ("Need Attention", (3, 3), (1, 3), (1, 5), "middling on every count", "limited-time reactivation offer"),
    ("About to Sleep", (2, 2), (1, 2), (1, 5), "below average and fading", "reactivate before they lapse"),
    ("Hibernating", (1, 1), (2, 3), (1, 5), "last bought long ago, a few times", "low-cost win-back"),
    ("Lost", (1, 1), (1, 1), (1, 5), "bought once, long ago", "ignore or cheapest win-back"),
]


def features(ds: Dataset, *, snapshot: dt.datetime | None = None, basis: str = "purchases") -> ir.Table:
    """One row per user (engine): recency_days, frequency, monetary, first/last seen, since_seen, age_days."""
    events = ds.table("events")
    calendar: Calendar = ds.calendar
    snapshot = pd.Timestamp(snapshot or ds.snapshot_at).to_pydatetime()
    events = events.filter(events.event_at < snapshot)
    has_revenue = "revenue" in events.columns
    if basis == "purchases" and not has_revenue:
        raise DataError.single(
            "events",
            "no revenue column, so purchases cannot be told apart",
            "map revenue in dataset.yml, or use frequency_basis=active_days",
            column="revenue",
            key="rfm.no_revenue",
        )
    events = with_revenue(events)
    revenue = events.revenue
    bought = revenue > 0
    if basis == "purchases":
        # One aggregation per user: purchase frequency needs no distinct days (the costly part at scale).
        per_user = events.group_by("user_id").aggregate(
            first_at=events.event_at.min(),
            last_at=events.event_at.max(),
            last_key=events.event_at.max(where=bought),
            frequency=bought.sum(),
            monetary=engine.exact_sum(revenue),
        )
    else:
        # Active days: user-days, then users (two plain aggregations an engine can spill to disk, rather
        # than COUNT(DISTINCT day) per user).
        per_day = events.group_by(["user_id", calendar.date(events.event_at).name("day")]).aggregate(
            first_at=events.event_at.min(), last_at=events.event_at.max(), revenue=engine.exact_sum(revenue)
        )
        per_user = per_day.group_by("user_id").aggregate(
            first_at=per_day.first_at.min(),
            last_at=per_day.last_at.max(),
            last_key=per_day.last_at.max(),
            frequency=per_day.count(),
            monetary=engine.exact_sum(per_day.revenue),
        )
    # Whole local days from the day of each moment to the snapshot's day.
    end = calendar.date_literal(snapshot)
    return per_user.mutate(
        recency_days=calendar.days_between(end, calendar.date(per_user.last_key)),
        since_seen=calendar.days_between(end, calendar.date(per_user.last_at)),
        age_days=calendar.days_between(end, calendar.date(per_user.first_at)),
    )


def scores(values: pd.Series, *, reverse: bool = False) -> pd.Series:
    """Scores 1-5 by average rank (ties share a score); ``reverse`` gives 5 to the smallest values."""
    ranks = (-values if reverse else values).rank(method="average")
    return (1 + np.floor(5 * (ranks - 0.5) / len(values))).clip(1, 5).astype(int)


def assign(
    frame: pd.DataFrame,
    *,
    segment_map=None,
    high_share: float = 0.2,
    mid_share: float = 0.3,
    new_days: int = 30,
    dormant_days: int = 30,
    churn_days: int = 90,
    mature_days: int = 180,
) -> pd.DataFrame:
    """Scores, RFM segment, value tier and lifecycle stage for each user row of :func:`features`."""
    segment_map = segment_map or DEFAULT_SEGMENTS
    out = frame.copy(deep=False)  # new columns only: the caller's frame is left as it was, and not copied
    scored = out.frequency > 0
    for column, name, reverse in (
        ("recency_days", "r_score", True),
        ("frequency", "f_score", False),
        ("monetary", "m_score", False),
    ):
        score = np.zeros(len(out), dtype="int8")
        if scored.any():
            score[scored.to_numpy()] = scores(out.loc[scored, column].astype(float), reverse=reverse).to_numpy()
        out[name] = score
    # Labels as object arrays of shared strings (np.where/np.select on strings would make a copy per row).
    out["rfm_segment"] = np.array([NO_PURCHASE, OTHERS], dtype=object)[scored.to_numpy().astype(int)]
    unassigned = scored.copy()
    for name, r, f, m, *_ in segment_map:
        match = unassigned & out.r_score.between(*r) & out.f_score.between(*f) & out.m_score.between(*m)
        out.loc[match, "rfm_segment"] = name
        unassigned &= ~match
    out["value_tier"] = tiers(out.monetary, high_share=high_share, mid_share=mid_share)
    stage = np.select(
        [
            out.since_seen >= churn_days,
            out.since_seen >= dormant_days,
            out.age_days < new_days,
            out.age_days < mature_days,
        ],
        [0, 1, 2, 3],
        default=4,
    )
    out["lifecycle_stage"] = np.array(["churned", "dormant", "new", "active", "mature"], dtype=object)[stage]
    return out


def tiers(monetary: pd.Series, *, high_share: float, mid_share: float) -> pd.Series:
    """high: the users making the top ``high_share`` of revenue; mid: the next ``mid_share``; low: the rest.

    A user is in a tier when the revenue of everyone ranked above them is below the tier's bound, so
    the tier's users make at least that share of revenue (ties broken by user order, stated in the report).
    """
    total = monetary.sum()
    order = monetary.sort_values(ascending=False, kind="stable")
    before = (order.cumsum() - order) / total if total > 0 else order * 0 + 1
    tier = pd.Series("low", index=order.index)
    tier[(before < high_share + mid_share) & (order > 0)] = "mid"
    tier[(before < high_share) & (order > 0)] = "high"
    return tier.reindex(monetary.index)


def segment_name(segment: str) -> str:
    """A segment's name in the current language (a custom map's own names are shown as they are)."""
    key = f"rfm.name.{segment}"
    return i18n.t(key) if i18n.has(key) else str(segment)
