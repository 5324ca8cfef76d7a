"""Segments users act on: RFM, value tiers, lifecycle stages and core users, with profiles that are checked.

Definitions (all as of the snapshot, UTC days):

* **Recency**: days from the last purchase (``frequency_basis='purchases'``: events with revenue > 0)
  or last activity (``'active_days'``) to the snapshot. **Frequency**: number of purchase events, or
  of distinct active days. **Monetary**: total revenue.
* **Scores 1–5**: each user's position among users with at least one purchase (or activity), by the
  *average rank* of their value (tied values share one rank, so ties always share a score):
  ``score = 1 + floor(5 * (average_rank - 0.5) / n)``. Recency is scored in reverse (recent = 5). The
  rule needs no distinct quantile edges, so it works on skewed and few-valued data (most users buying
  once all get the same frequency score).
* **RFM segments** from a map of score ranges, first match wins (``DEFAULT_SEGMENTS``); users without
  a purchase are "No purchase".
* **Value tiers**: users sorted by revenue; *high* are those making the top ``high_share`` of revenue,
  *mid* the next ``mid_share``, *low* everyone else (no revenue included).
* **Lifecycle stage**: *new* (first seen within ``new_days``), *active* (seen within ``dormant_days``,
  first seen less than ``mature_days`` ago), *mature* (seen within ``dormant_days``, older), *dormant*
  (last seen ``dormant_days`` to ``churn_days`` ago), *churned* (longer).

Per-user features are computed in the engine; pandas sees one row per user.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from userops_lib import engine, narrative, periods, plots
from userops_lib.data import Dataset, with_revenue
from userops_lib.errors import DataError

NO_PURCHASE = "No purchase"
OTHERS = "Others"
# The per-user columns the segmentations and their statistics use (what is pulled out of the engine).
KEPT = ("recency_days", "frequency", "monetary", "since_seen", "age_days")
TOP_LEVELS = 8  # values shown per attribute in breakdowns; the rest are pooled as "other"

# name, (recency, frequency, monetary) inclusive score ranges, description, action. First match wins.
DEFAULT_SEGMENTS: list[tuple[str, tuple, tuple, tuple, str, str]] = [
    ("Champions", (4, 5), (4, 5), (4, 5), "bought recently, often and for the most", "reward; ask for referrals"),
    ("Can't Lose Them", (1, 2), (4, 5), (4, 5), "used to buy often and for a lot, not lately", "win back now, personally"),
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
TIER_ACTIONS = {"high": ("the users making most of the revenue", "retain; protect the relationship"),
                "mid": ("steady contributors", "upsell towards high value"),
                "low": ("little or no revenue", "activate cheaply; automate")}
STAGE_ACTIONS = {"new": ("first seen recently", "onboard"), "active": ("recently active, still growing", "build habits"),
                 "mature": ("long-standing and active", "retain; upsell"),
                 "dormant": ("quiet for a while", "reactivate"), "churned": ("gone", "win back or let go")}
STAGES = ("new", "active", "mature", "dormant", "churned")
TIERS = ("high", "mid", "low")

DEFINITIONS = [
    "Recency: days from the last purchase (or activity) to the snapshot. Frequency: purchases (or active days). "
    "Monetary: total revenue.",
    "Scores 1-5 by average rank among users with a purchase: score = 1 + floor(5 x (average rank - 0.5) / n); tied "
    "values share a rank and so a score. Recency is scored in reverse (most recent = 5).",
    "RFM segments come from score ranges, first match wins; the map is in the segment table.",
    "Value tiers: high = users making the top share of revenue, mid = the next share, low = the rest.",
    "Lifecycle: new (first seen within new_days), active (seen within dormant_days, younger than mature_days), "
    "mature (seen within dormant_days, older), dormant (last seen dormant_days to churn_days ago), churned (longer).",
    "Validation: segments computed one period before the snapshot, then that period's revenue and churn (no "
    "activity in it) per segment, with 95% Wilson intervals; Kruskal-Wallis and chi-square tests across segments.",
]


def scores(values: pd.Series, *, reverse: bool = False) -> pd.Series:
    """Scores 1-5 by average rank (ties share a score); ``reverse`` gives 5 to the smallest values."""
    ranks = (-values if reverse else values).rank(method="average")
    return (1 + np.floor(5 * (ranks - 0.5) / len(values))).clip(1, 5).astype(int)


def features(ds: Dataset, *, snapshot: dt.datetime | None = None, basis: str = "purchases") -> ir.Table:
    """One row per user (engine): recency_days, frequency, monetary, first/last seen, since_seen, age_days."""
    events = ds.table("events")
    snapshot = pd.Timestamp(snapshot or ds.snapshot_at).to_pydatetime()
    events = events.filter(events.event_at < snapshot)
    has_revenue = "revenue" in events.columns
    if basis == "purchases" and not has_revenue:
        raise DataError.single("events", "no revenue column, so purchases cannot be told apart",
                               "map revenue in dataset.yml, or use frequency_basis=active_days", column="revenue")
    events = with_revenue(events)
    revenue = events.revenue
    bought = revenue > 0
    if basis == "purchases":
        # One aggregation per user: purchase frequency needs no distinct days (the costly part at scale).
        per_user = events.group_by("user_id").aggregate(
            first_at=events.event_at.min(), last_at=events.event_at.max(),
            last_key=events.event_at.max(where=bought), frequency=bought.cast("int64").sum(),
            monetary=revenue.sum())
    else:
        # Active days: user-days, then users (two plain aggregations an engine can spill to disk, rather
        # than COUNT(DISTINCT day) per user).
        per_day = events.group_by(["user_id", events.event_at.date().name("day")]).aggregate(
            first_at=events.event_at.min(), last_at=events.event_at.max(), revenue=revenue.sum())
        per_user = per_day.group_by("user_id").aggregate(
            first_at=per_day.first_at.min(), last_at=per_day.last_at.max(), last_key=per_day.last_at.max(),
            frequency=per_day.count(), monetary=per_day.revenue.sum())
    end = ibis.literal(snapshot).date()
    return per_user.mutate(
        recency_days=end.delta(per_user.last_key.date(), unit="day"),
        since_seen=end.delta(per_user.last_at.date(), unit="day"),
        age_days=end.delta(per_user.first_at.date(), unit="day"))


def assign(frame: pd.DataFrame, *, segment_map=None, high_share: float = 0.2, mid_share: float = 0.3,
           new_days: int = 30, dormant_days: int = 30, churn_days: int = 90, mature_days: int = 180) -> pd.DataFrame:
    """Scores, RFM segment, value tier and lifecycle stage for each user row of :func:`features`."""
    segment_map = segment_map or DEFAULT_SEGMENTS
    out = frame.copy(deep=False)  # new columns only: the caller's frame is left as it was, and not copied
    scored = out.frequency > 0
    for column, name, reverse in (("recency_days", "r_score", True), ("frequency", "f_score", False),
                                  ("monetary", "m_score", False)):
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
    stage = np.select([out.since_seen >= churn_days, out.since_seen >= dormant_days, out.age_days < new_days,
                       out.age_days < mature_days], [0, 1, 2, 3], default=4)
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


@dataclasses.dataclass(frozen=True)
class Segments:
    users: pd.DataFrame                 # one row per user: features, scores and segments
    profiles: dict[str, pd.DataFrame]   # per segmentation
    pareto: pd.DataFrame
    lifecycle: pd.DataFrame             # per period: new, returning, resurrecting, dormant
    core: dict
    migration: pd.DataFrame | None
    validation: pd.DataFrame | None
    validation_tests: dict
    basis: str
    currency: str
    period_days: int
    findings: list[str]
    headlines: list[tuple[str, str]]

    def artifact(self) -> pd.DataFrame:
        return self.users[["user_id", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score",
                           "rfm_segment", "value_tier", "lifecycle_stage"]]

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"user_segments": self.artifact(),
               "segment_profile": pd.concat([p.assign(segmentation=k) for k, p in self.profiles.items()],
                                            ignore_index=True),
               "pareto": self.pareto, "lifecycle": self.lifecycle, "core_attributes": self.core["attributes"]}
        if self.migration is not None:
            out["migration"] = self.migration
        if self.validation is not None:
            out["validation"] = self.validation
        return out

    def plot_pareto(self, ax=None):
        ax = plots.axes(ax, size=(7, 4.5))
        ax.plot(self.pareto.user_share, self.pareto.revenue_share, color="C0")
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="equal spend")
        ax.xaxis.set_major_formatter(plots.mticker.PercentFormatter(1.0, 0))
        ax.legend(loc="lower right")
        return plots.finish(ax, title="Pareto curve: share of revenue from the top users", xlabel="users, highest "
                            "revenue first (% of users)", ylabel="cumulative revenue (% of total)", percent=True)

    def plot_users(self, ax=None, *, points: int = 5000, seed: int = 0):
        """Each buyer's recency against spend (or active days), coloured by value tier.

        One dot per user does not scale to millions of users, so at most ``points`` users are drawn:
        a uniform random sample (fixed ``seed``), stated in the title with the number it was drawn from.
        Users with nothing to put on the log axis (no purchase, no spend) are not candidates.
        """
        if points < 1:
            raise DataError.single("parameters", "the scatter needs at least one point", "set scatter_points to 1 "
                                   "or more", column="scatter_points", example=str(points))
        y, label = (("monetary", f"spend ({self.currency or 'revenue units'}, log scale)")
                    if self.basis == "purchases" else ("frequency", "active days (count, log scale)"))
        users = self.users
        eligible = users.index[users.recency_days.notna().to_numpy() & (users[y] > 0).to_numpy()]
        who, total = ("buyers" if self.basis == "purchases" else "active users"), len(eligible)
        if total > points:
            eligible = np.sort(np.random.default_rng(seed).choice(eligible, size=points, replace=False))
            shown = f"a random sample of {narrative.count(points)} of {narrative.count(total)} {who}"
        else:
            shown = f"all {narrative.count(total)} {who}"
        frame = users.loc[eligible, ["recency_days", y, "value_tier"]]
        ax = plots.axes(ax, size=(8, 4.8))
        for tier, color in (("low", "C7"), ("mid", "C0"), ("high", "C3")):  # the rare high tier drawn last, on top
            part = frame[frame.value_tier == tier]
            ax.scatter(part.recency_days, part[y], s=8, alpha=0.5, color=color, linewidths=0,
                       label=f"{tier} value ({narrative.count(len(part))} shown)")
        plots.log_axis(ax, "y")
        if len(frame):
            ax.legend(loc="upper right", fontsize=8, markerscale=2)
        return plots.finish(ax, title=f"Recency and {'spend' if y == 'monetary' else 'activity'}: {shown}",
                            xlabel="days since the last " + ("purchase" if y == "monetary" else "active day"),
                            ylabel=label)

    def plot_segments(self, ax=None):
        profile = self.profiles["rfm_segment"]
        ax = plots.axes(ax, size=(9, 4.8))
        y = np.arange(len(profile))
        ax.barh(y - 0.2, profile.share_of_users, height=0.4, label="share of users")
        ax.barh(y + 0.2, profile.share_of_revenue, height=0.4, label="share of revenue")
        ax.set_yticks(y, profile.segment)
        ax.invert_yaxis()
        ax.legend(loc="lower right")
        ax.xaxis.set_major_formatter(plots.mticker.PercentFormatter(1.0, 0))
        return plots.finish(ax, title="RFM segments: users and revenue", xlabel="share (%)", ylabel="segment")

    def plot_lifecycle(self, ax=None):
        frame = self.lifecycle[self.lifecycle.complete]
        ax = plots.axes(ax)
        x = frame.period_start
        width = 0.8 * self.period_days
        ax.bar(x, frame.new, width=width, label="new", color="C2")
        ax.bar(x, frame.returning, bottom=frame.new, width=width, label="returning", color="C0")
        ax.bar(x, frame.resurrecting, bottom=frame.new + frame.returning, width=width, label="resurrecting", color="C4")
        ax.bar(x, -frame.dormant, width=width, label="dormant (negative)", color="C3")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.legend(loc="upper left", ncols=4, fontsize=8)
        plots.date_axis(ax)
        return plots.finish(ax, title="Lifecycle: who makes up each period's active users (complete periods)",
                            xlabel="period starting (UTC)", ylabel="users (count)")


def _period_days(period: str) -> int:
    return {"day": 1, "week": 7, "month": 30}[period]


def lifecycle_counts(ds: Dataset, *, period: str = "week", dormant_after_periods: int = 1) -> pd.DataFrame:
    """New / returning / resurrecting / dormant users per calendar period (engine).

    A user is dormant in period p when their last active period was p - k (k = dormant_after_periods)
    and they are not active in p - k + 1 .. p; resurrecting when active again after such a gap.
    """
    events = ds.table("events")
    truncate = periods.TRUNCATE[period]
    user_periods = events.select("user_id", p=events.event_at.truncate(truncate)).distinct()
    index = _index(user_periods.p, period)
    user_periods = user_periods.mutate(i=index)
    window = ibis.window(group_by="user_id", order_by="i")
    user_periods = user_periods.mutate(prev=user_periods.i.lag().over(window),
                                       nxt=user_periods.i.lead().over(window))
    gap_before = user_periods.i - user_periods.prev
    kind = ibis.cases((user_periods.prev.isnull(), "new"), (gap_before <= dormant_after_periods, "returning"),
                      else_="resurrecting")
    # One pass: counts per period and "last active period before a gap" flag; dormancy is then shifted.
    gone = user_periods.nxt.isnull() | (user_periods.nxt - user_periods.i > dormant_after_periods)
    counts = user_periods.group_by(["i", "p", gone.name("gone")]).aggregate(
        new=(kind == "new").cast("int64").sum(), returning=(kind == "returning").cast("int64").sum(),
        resurrecting=(kind == "resurrecting").cast("int64").sum(), users=user_periods.count()).execute()
    active = counts.groupby(["i", "p"], as_index=False)[["new", "returning", "resurrecting"]].sum()
    left = counts[counts.gone.astype(bool)]
    dormant = (left.i + dormant_after_periods).to_frame("i").assign(dormant=left.users).groupby(
        "i", as_index=False).dormant.sum()
    frame = active.merge(dormant, on="i", how="outer").sort_values("i")
    # Every period of the range is a row: a period in which nobody was active is a row of zeros, not a gap.
    frame = frame.set_index("i").reindex(range(int(frame.i.min()), int(frame.i.max()) + 1)).rename_axis(
        "i").reset_index().drop(columns="p")
    step = periods.OFFSET[period]
    frame["period_start"] = [_start_of(int(i), period) for i in frame.i]
    frame = frame.fillna({"new": 0, "returning": 0, "resurrecting": 0, "dormant": 0})
    start_day = pd.Timestamp(events.event_at.min().execute()).floor("D")
    frame["complete"] = (frame.period_start >= start_day) & (frame.period_start + step <= pd.Timestamp(ds.snapshot_at))
    for column in ("new", "returning", "resurrecting", "dormant"):
        frame[column] = frame[column].astype("int64")
    return frame[["period_start", "new", "returning", "resurrecting", "dormant", "complete"]].reset_index(drop=True)


_MONDAY = pd.Timestamp("2000-01-03")


def _start_of(i: int, period: str) -> pd.Timestamp:
    if period == "month":
        return pd.Timestamp(year=(i - 1) // 12, month=(i - 1) % 12 + 1, day=1)
    return _MONDAY + pd.Timedelta(days=i * (7 if period == "week" else 1))


def _index(p: ir.Value, period: str) -> ir.IntegerValue:
    if period == "month":
        return p.year() * 12 + p.month()
    days = p.date().delta(ibis.literal(_MONDAY.date()), unit="day")
    return days // 7 if period == "week" else days


def core_users(ds: Dataset, users: pd.DataFrame, attributes: list[str], *, window_days: int = 28,
               share: float = 0.2) -> dict:
    """The users active on the most days in the last ``window_days``: who they are and what they carry.

    ``users`` is the per-user frame of :func:`analyse` (user_id and the ``attributes`` to compare);
    core users are compared with the other recently active users.
    """
    events = ds.table("events")
    snapshot = pd.Timestamp(ds.snapshot_at).to_pydatetime()
    recent = events.filter((events.event_at < snapshot) &
                           (events.event_at >= snapshot - dt.timedelta(days=window_days)))
    recent = with_revenue(recent)
    revenue = recent.revenue
    days = recent.group_by("user_id").aggregate(days=recent.event_at.date().nunique(), events=recent.count(),
                                                revenue=revenue.sum()).execute()
    if days.empty:
        return {"threshold": None, "users": 0, "share": 0.0, "activity_share": np.nan, "revenue_share": np.nan,
                "attributes": pd.DataFrame(columns=["attribute", "value", "core_share", "others_share",
                                                    "difference"])}
    threshold = float(np.quantile(days.days, 1 - share, method="higher"))
    is_core = (days.days >= threshold).to_numpy()
    result = {"threshold": threshold, "users": int(is_core.sum()), "share": is_core.mean(),
              "activity_share": days.events[is_core].sum() / days.events.sum(),
              "revenue_share": days.revenue[is_core].sum() / days.revenue.sum() if days.revenue.sum() > 0 else np.nan}
    rows = []
    if attributes:
        # Everyone active in the window was active before the snapshot, so is a row of ``users``.
        position = _rows_of(users, days.user_id)
        seen = position >= 0
        core = pd.Series(is_core[seen])
        for attribute in attributes:
            values = top_levels(pd.Series(users[attribute].to_numpy()[position[seen]]))
            mix = pd.crosstab(values, core, normalize="columns")
            for value in mix.index:
                rows.append({"attribute": attribute, "value": value, "core_share": mix.loc[value].get(True, 0.0),
                             "others_share": mix.loc[value].get(False, 0.0)})
    frame = pd.DataFrame(rows, columns=["attribute", "value", "core_share", "others_share"])
    frame["difference"] = frame.core_share - frame.others_share
    result["attributes"] = frame.sort_values("difference", key=abs, ascending=False).reset_index(drop=True)
    return result


def _rows_of(users: pd.DataFrame, ids: pd.Series) -> np.ndarray:
    """The row of ``users`` (a per-user frame) holding each of ``ids``; -1 where there is none."""
    return pd.Index(users.user_id).get_indexer(ids)


def top_levels(values: pd.Series, n: int = TOP_LEVELS) -> pd.Series:
    """The ``n`` most common values as they are, the rest pooled as 'other' (missing: '(missing)')."""
    values = values.astype("string").fillna("(missing)")
    keep = values.value_counts().index[:n]
    return values.where(values.isin(keep), "other")


def _identifier_like(values: pd.Series) -> bool:
    """Mostly distinct values (an id, an e-mail): no breakdown is meaningful."""
    return values.nunique() > max(100, len(values) // 2)


def profile(users: pd.DataFrame, column: str, attributes: list[str], *, churn_next: dict | None = None,
            order=None) -> pd.DataFrame:
    """One row per segment: size, shares, ARPU, mean recency/frequency, next-period churn, top attribute mix.

    ``churn_next`` maps a segment to the share of its users who churned in the period after the
    segment was last measured (segments set one period before the snapshot): the best available
    estimate of how this segment churns next.
    """
    total_users, total_revenue = len(users), users.monetary.sum()
    rows = []
    labels = users[column]
    levels = order or list(labels.value_counts().index)
    for level in levels:
        mask = (labels == level).to_numpy()
        if not mask.any():
            continue
        monetary = users.monetary[mask]
        row = {"segment": level, "users": int(mask.sum()), "share_of_users": mask.sum() / total_users,
               "share_of_revenue": monetary.sum() / total_revenue if total_revenue > 0 else np.nan,
               "arpu": monetary.mean(), "mean_recency_days": users.recency_days[mask].mean(),
               "mean_frequency": users.frequency[mask].mean()}
        if churn_next is not None:
            row["churn_next_period"] = churn_next.get(level, np.nan)
        for attribute in attributes:
            mix = users[attribute][mask].value_counts(normalize=True)
            row[f"top_{attribute}"] = f"{mix.index[0]} ({mix.iloc[0]:.0%})" if len(mix) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def _describe(frame: pd.DataFrame, column: str, segment_map) -> pd.DataFrame:
    if column == "rfm_segment":
        text = {name: (description, action) for name, _, _, _, description, action in segment_map}
        text[NO_PURCHASE] = ("active but never bought", "first-purchase offer")
        text[OTHERS] = ("scores outside every range of the map", "review the segment map")
    else:
        text = TIER_ACTIONS if column == "value_tier" else STAGE_ACTIONS
    frame.insert(1, "description", [text.get(s, ("", ""))[0] for s in frame.segment])
    # What to do comes right after who they are, not in the thirteenth column of a sideways-scrolling table.
    frame.insert(2, "suggested_action", [text.get(s, ("", ""))[1] for s in frame.segment])
    return frame


def analyse(ds: Dataset, *, basis: str | None = None, period_days: int = 30, high_share: float = 0.2,
            mid_share: float = 0.3, new_days: int = 30, dormant_days: int = 30, churn_days: int = 90,
            mature_days: int = 180, core_window_days: int = 28, core_share: float = 0.2, lifecycle_period: str = "week",
            dormant_after_periods: int = 1, segment_map=None) -> Segments:
    """Every segmentation, its profiles, migration over the last period and a holdout validation."""
    if basis is None:
        basis = "purchases" if "revenue" in ds.table("events").columns else "active_days"
    if basis not in ("purchases", "active_days"):
        raise DataError.single("parameters", f"unknown frequency basis '{basis}'", "use purchases or active_days",
                               column="frequency_basis", example=basis)
    if not (0 < high_share < 1 and 0 < mid_share < 1 and high_share + mid_share < 1):
        raise DataError.single("parameters", "tier shares must be between 0 and 1 and add up to less than 1",
                               "e.g. high_share=0.2, mid_share=0.3", column="high_share", example=(high_share, mid_share))
    segment_map = segment_map or DEFAULT_SEGMENTS
    options = dict(segment_map=segment_map, high_share=high_share, mid_share=mid_share, new_days=new_days,
                   dormant_days=dormant_days, churn_days=churn_days, mature_days=mature_days)
    current = features(ds, basis=basis)
    if ds.users is not None:
        attributes = [c for c, t in ds.users.schema().items() if t.is_string() and c != "user_id"]
        current = current.left_join(ds.users.select("user_id", *attributes), "user_id")
    else:
        attributes = []
    # Ordered by user: tier ties and the validation tests must not depend on the engine's row order.
    # Only the columns the statistics use are pulled (a frame per user: 5M rows at 100M events).
    users = assign(engine.frame(current.select("user_id", *KEPT, *attributes), order_by="user_id"), **options)
    attributes = [a for a in attributes if not _identifier_like(users[a])]
    earlier = pd.Timestamp(ds.snapshot_at) - pd.Timedelta(days=period_days)
    before = assign(engine.frame(features(ds, snapshot=earlier, basis=basis).select("user_id", *KEPT),
                                 order_by="user_id"), **options)
    before = before[["user_id", "frequency", "monetary", "r_score", "f_score", "m_score", "rfm_segment",
                     "value_tier", "lifecycle_stage"]]
    migration = validation = None
    tests: dict = {}
    measured = False
    if len(before) >= 50:
        # Where each earlier user is now (-1: no activity before the snapshot, which cannot happen for
        # users seen before the earlier snapshot, but is handled).
        position = _rows_of(users, before.user_id)
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
        migration = _migration(before)
        validation, tests = _validate(before)
    profiles = {}
    for column, order in (("rfm_segment", [s[0] for s in segment_map] + [OTHERS, NO_PURCHASE]),
                          ("value_tier", list(TIERS)), ("lifecycle_stage", list(STAGES))):
        rates = before.groupby(column).churned_next.mean().to_dict() if measured else None
        frame = profile(users, column, attributes, churn_next=rates, order=order)
        profiles[column] = _describe(frame, column, segment_map)
    result = Segments(users, profiles, _pareto(users.monetary), lifecycle_counts(
        ds, period=lifecycle_period, dormant_after_periods=dormant_after_periods),
        core_users(ds, users, attributes, window_days=core_window_days, share=core_share), migration, validation,
        tests, basis, ds.currency, _period_days(lifecycle_period), [], [])
    findings, headlines = _findings(result, period_days)
    return dataclasses.replace(result, findings=findings, headlines=headlines)


def _pareto(monetary: pd.Series, points: int = 200) -> pd.DataFrame:
    ordered = np.sort(monetary.to_numpy(float))[::-1]
    share = np.cumsum(ordered) / ordered.sum() if ordered.sum() > 0 else np.zeros(len(ordered))
    index = np.unique(np.linspace(0, len(ordered) - 1, min(points, len(ordered))).astype(int))
    return pd.DataFrame({"user_share": (index + 1) / len(ordered), "revenue_share": share[index]})


def _migration(before: pd.DataFrame) -> pd.DataFrame:
    """RFM segment one period ago against now, for users present then (counts and row shares)."""
    pairs = pd.DataFrame({"from_segment": before.rfm_segment.to_numpy(), "to_segment": before.segment_now.to_numpy()})
    counts = pairs.value_counts().rename("users").reset_index()
    counts["share_of_from"] = counts.users / counts.groupby("from_segment").users.transform("sum")
    return counts.sort_values(["from_segment", "users"], ascending=[True, False]).reset_index(drop=True)


def _validate(before: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Do segments one period ago predict that period's revenue and churn? (holdout)"""
    rows = []
    summary = before.groupby("rfm_segment").agg(users=("churned_next", "size"), churned=("churned_next", "sum"),
                                                revenue_next_per_user=("revenue_next", "mean"))
    for segment, part in summary.iterrows():
        users, churned = int(part.users), int(part.churned)
        low, high = proportion_confint(churned, users, method="wilson")
        rows.append({"segment": segment, "users": users, "revenue_next_per_user": part.revenue_next_per_user,
                     "churn_next": churned / users, "churn_ci_low": low, "churn_ci_high": high})
    frame = pd.DataFrame(rows).sort_values("revenue_next_per_user", ascending=False).reset_index(drop=True)
    # One column at a time (not copies of the whole frame): it has a row per user.
    groups = [g.to_numpy() for _, g in before.revenue_next.groupby(before.rfm_segment) if len(g) >= 5]
    tests = {}
    # A test is reported only where it can say something: revenue that varies (data without revenue has
    # none: Kruskal-Wallis on all zeros printed 'p = 0'), churn that both happened and did not.
    varies = before.revenue_next.nunique() > 1
    if len(groups) >= 2 and varies:
        tests["revenue_kruskal_p"] = float(stats.kruskal(*groups).pvalue)
    if len(groups) >= 2:
        table = pd.crosstab(before.rfm_segment, before.churned_next)
        if table.shape[1] == 2:
            tests["churn_chi2_p"] = float(stats.chi2_contingency(table)[1])
    scored = (before.frequency > 0).to_numpy()
    if scored.sum() > 10 and varies:
        rfm_sum = before.r_score.to_numpy(int) + before.f_score.to_numpy(int) + before.m_score.to_numpy(int)
        tests["rfm_sum_spearman"] = float(stats.spearmanr(rfm_sum[scored],
                                                          before.revenue_next.to_numpy()[scored]).statistic)
    return frame, tests


def _findings(result: Segments, period_days: int) -> tuple[list[str], list[tuple[str, str]]]:
    users, currency = result.users, result.currency
    rfm = result.profiles["rfm_segment"].set_index("segment")
    tiers_ = result.profiles["value_tier"].set_index("segment")
    findings = []
    has_revenue = bool(users.monetary.sum() > 0)
    if "high" in tiers_.index and has_revenue:
        findings.append(f"{narrative.percent(tiers_.loc['high', 'share_of_users'])} of users make "
                        f"{narrative.percent(tiers_.loc['high', 'share_of_revenue'])} of revenue (the high-value tier); "
                        f"their ARPU is {narrative.money(tiers_.loc['high', 'arpu'], currency)}.")
    buyers = rfm.drop(index=[NO_PURCHASE], errors="ignore")
    if len(buyers) and has_revenue:
        top = buyers.sort_values("share_of_revenue", ascending=False).iloc[0]
        findings.append(f"'{top.name}' is the most valuable RFM segment: {narrative.percent(top.share_of_users)} of "
                        f"users and {narrative.percent(top.share_of_revenue)} of revenue.")
        for name in ("At Risk", "Can't Lose Them"):
            if name in rfm.index and rfm.loc[name, "users"] > 0:
                findings.append(f"{narrative.count(rfm.loc[name, 'users'])} users are '{name}' "
                                f"({narrative.percent(rfm.loc[name, 'share_of_revenue'])} of revenue): "
                                f"{rfm.loc[name, 'suggested_action']}.")
                break
    stages = result.profiles["lifecycle_stage"].set_index("segment")
    findings.append("Lifecycle now: " + ", ".join(f"{s} {narrative.percent(stages.loc[s, 'share_of_users'])}"
                                                  for s in STAGES if s in stages.index) + ".")
    core = result.core
    if core["users"] and core["share"] >= 0.99:
        findings.append("Recent activity is too even to single out core users: almost everyone active in the window "
                        f"was active on {core['threshold']:g} day(s).")
    elif core["users"]:
        revenue = f" and {narrative.percent(core['revenue_share'])} of revenue" if has_revenue else ""
        findings.append(f"Core users (active on at least {core['threshold']:g} of the last days in the window) are "
                        f"{narrative.percent(core['share'])} of recently active users and carry "
                        f"{narrative.percent(core['activity_share'])} of events{revenue}.")
    if result.validation is not None and result.validation_tests:
        findings.append(_validation_sentence(result.validation_tests, period_days))
    headlines = [("users", narrative.count(len(users)))]
    if "high" in tiers_.index and has_revenue:
        # The high tier makes ~high_share of revenue by definition; how few users make it is the news.
        headlines.append((f"of users make {narrative.percent(tiers_.loc['high', 'share_of_revenue'])} of revenue",
                          narrative.percent(tiers_.loc["high", "share_of_users"])))
    if len(buyers) and "Champions" in rfm.index:
        headlines.append(("Champions", narrative.percent(rfm.loc["Champions", "share_of_users"])))
    return findings, headlines


def _validation_sentence(tests: dict, period_days: int, level: float = 0.05) -> str:
    """What the holdout showed, claiming a difference only where its test found one at ``level``."""
    parts, found = [], False
    for key, what, test in (("revenue_kruskal_p", "revenue", "Kruskal-Wallis"), ("churn_chi2_p", "churn", "chi-square")):
        if key in tests:
            differs = tests[key] < level
            found |= differs
            verdict = "differs across segments" if differs else "shows no detectable difference"
            parts.append(f"{what} {verdict}, {test} {narrative.p_value(tests[key])}")
    if "rfm_sum_spearman" in tests:
        parts.append(f"RFM score sum vs next revenue: Spearman {tests['rfm_sum_spearman']:.2f}")
    lead = (f"Segments set {period_days} days before the snapshot "
            + ("told apart what users did in the next " if found else "did not detectably tell apart what users "
               "did in the next ") + f"{period_days} days")
    return f"{lead} ({'; '.join(parts)})."
