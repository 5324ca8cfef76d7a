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

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from userops_lib import engine, i18n
from userops_lib.calendar import Calendar
from userops_lib.data import Dataset, find_kept, kept_key, with_revenue
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


KEY = "rfm"  # per-user aggregations kept in the connection (Dataset.shared, data.kept_key)


def default_basis(ds: Dataset) -> str:
    """Purchases when the events have revenue, else active days."""
    return "purchases" if "revenue" in ds.table("events").columns else "active_days"


def features(ds: Dataset, *, snapshot: dt.datetime | None = None, basis: str = "purchases") -> ir.Table:
    """One row per user (engine): recency_days, frequency, monetary, first/last seen, since_seen, age_days."""
    return features_at(ds, [snapshot], basis=basis)[0]


def features_at(ds: Dataset, snapshots: list, *, basis: str = "purchases") -> list[ir.Table]:
    """:func:`features` as of each of ``snapshots`` (None: the dataset's), from one pass over the events.

    With several snapshots every aggregate is taken once per snapshot, over the events before it (a
    ``FILTER``), in one aggregation per user that is kept in the connection: segment profiling's now and
    a period ago read the events once instead of twice. An aggregation kept for moments including these
    (an earlier call in the same connection) is read instead of the events.
    """
    calendar: Calendar = ds.calendar
    moments = [pd.Timestamp(s or ds.snapshot_at).to_pydatetime() for s in snapshots]
    kept = find_kept(ds, KEY, basis, moments)
    if kept is not None:  # an earlier call in this connection
        per_user, index = kept
        one = False
    else:
        per_user, index = _aggregate(ds, moments, basis), list(range(len(moments)))
        one = len(moments) == 1
        if not one:
            per_user = per_user.cache()
            ds.shared[kept_key(KEY, basis, moments)] = (ds.table("events"), per_user)
    names = ("first_at", "last_at", "last_key", "frequency", "monetary")
    tables = []
    for k, moment in zip(index, moments, strict=True):
        table = per_user.select("user_id", **{name: per_user[f"{name}_{k}"] for name in names})
        if not one:
            table = table.filter(table.first_at.notnull())  # users with an event before this snapshot
        # Whole local days from the day of each moment to the snapshot's day.
        end = calendar.date_literal(moment)
        tables.append(
            table.mutate(
                recency_days=calendar.days_between(end, calendar.date(table.last_key)),
                since_seen=calendar.days_between(end, calendar.date(table.last_at)),
                age_days=calendar.days_between(end, calendar.date(table.first_at)),
            )
        )
    return tables


def _aggregate(ds: Dataset, moments: list, basis: str) -> ir.Table:
    """The per-user aggregation behind :func:`features_at` (not computed): first and last event, last purchase
    (or active day), frequency and revenue before each of ``moments``, as columns ``<name>_<k>``. With one
    moment no filter is needed (every event kept is before it)."""
    events = ds.table("events")
    calendar: Calendar = ds.calendar
    if basis == "purchases" and "revenue" not in events.columns:
        raise DataError.single(
            "events",
            "no revenue column, so purchases cannot be told apart",
            "map revenue in dataset.yml, or use frequency_basis=active_days",
            column="revenue",
            key="rfm.no_revenue",
        )
    events = with_revenue(events.filter(events.event_at < max(moments)))
    revenue = events.revenue
    bought = revenue > 0
    one = len(moments) == 1
    before = [None if one else events.event_at < moment for moment in moments]
    aggregates: dict = {}
    if basis == "purchases":
        # One aggregation per user: purchase frequency needs no distinct days (the costly part at scale).
        for k, b in enumerate(before):
            aggregates |= {
                f"first_at_{k}": events.event_at.min(where=b),
                f"last_at_{k}": events.event_at.max(where=b),
                f"last_key_{k}": events.event_at.max(where=bought if b is None else bought & b),
                f"frequency_{k}": bought.sum() if b is None else ibis.ifelse(bought & b, 1, 0).sum(),
                f"monetary_{k}": engine.exact_sum(revenue, where=b),
            }
        return events.group_by("user_id").aggregate(**aggregates)
    # Active days: user-days, then users (two plain aggregations an engine can spill to disk, rather
    # than COUNT(DISTINCT day) per user).
    for k, b in enumerate(before):
        aggregates |= {
            f"first_at_{k}": events.event_at.min(where=b),
            f"last_at_{k}": events.event_at.max(where=b),
            f"revenue_{k}": engine.exact_sum(revenue, where=b),
        }
    per_day = events.group_by(["user_id", calendar.date(events.event_at).name("day")]).aggregate(**aggregates)
    aggregates = {}
    for k, b in enumerate(before):
        first, last = per_day[f"first_at_{k}"], per_day[f"last_at_{k}"]
        seen = None if b is None else first.notnull()
        aggregates |= {
            f"first_at_{k}": first.min(),
            f"last_at_{k}": last.max(),
            f"last_key_{k}": last.max(),
            f"frequency_{k}": per_day.count() if b is None else first.count(),
            f"monetary_{k}": engine.exact_sum(per_day[f"revenue_{k}"], where=seen),
        }
    return per_day.group_by("user_id").aggregate(**aggregates)


def scores(values: pd.Series, *, reverse: bool = False) -> pd.Series:
    """Scores 1-5 by average rank (ties share a score); ``reverse`` gives 5 to the smallest values."""
    ranks = _average_ranks((-values if reverse else values).to_numpy(float))
    return pd.Series((1 + np.floor(5 * (ranks - 0.5) / len(values))).clip(1, 5).astype(int), index=values.index)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average (pandas' ``rank(method="average")``), by counting the distinct
    values instead of sorting every row: users share few distinct recencies and frequencies."""
    codes, uniques = pd.factorize(values, sort=True)
    counts = np.bincount(codes, minlength=len(uniques))
    average = np.cumsum(counts) - (counts - 1) / 2  # the first rank of a value plus the last, halved
    return average[codes]


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
    values = monetary.to_numpy(float)
    present = ~np.isnan(values)
    total = values[present].sum()
    order = np.argsort(-values, kind="stable")  # largest first, ties in user order, missing values last
    ranked = np.where(present[order], values[order], 0.0)
    before = (ranked.cumsum() - ranked) / total if total > 0 else np.ones(len(ranked))
    level = np.zeros(len(values), dtype=np.int8)  # low
    level[order] = np.where(
        (ranked > 0) & present[order], (before < high_share + mid_share).astype(np.int8) + (before < high_share), 0
    )
    return pd.Series(np.array(["low", "mid", "high"], dtype=object)[level], index=monetary.index)


def segment_name(segment: str) -> str:
    """A segment's name in the current language (a custom map's own names are shown as they are)."""
    key = f"rfm.name.{segment}"
    return i18n.t(key) if i18n.has(key) else str(segment)
