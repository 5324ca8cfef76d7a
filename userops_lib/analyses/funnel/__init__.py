"""Funnel: where users drop between entering and the last step, how long each step takes, how it
changes by entry period and differs between groups of users.

Definitions are in :mod:`userops_lib.analyses.funnel.engine` (and the catalogue's ``funnel.definition.*`` states
them in every report). ``run(ds, Params(...))`` reduces in the engine (:mod:`.engine`: step times per
user, then small count tables) and computes on the small tables (:mod:`.stats`); text comes from
:mod:`userops_lib.analyses.funnel.text`, charts from :mod:`userops_lib.analyses.funnel.charts`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from userops_lib import calendar, contract, topn
from userops_lib.analyses.funnel import engine, stats
from userops_lib.analyses.funnel.engine import ENTRIES, EXCLUSIONS, ORDERS
from userops_lib.calendar import Calendar
from userops_lib.campaigns import check_campaign
from userops_lib.campaigns import names as campaign_names
from userops_lib.contract import param
from userops_lib.data import Dataset
from userops_lib.errors import DataError

# The sample world's funnel (a signup, a return visit, a purchase), used when the data has these events.
DEFAULT_STEPS = ("signup", "session", "purchase")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params(contract.Common):
    steps: list[str] = param(
        [],
        'event names in order, alternatives as "cart|wishlist"; empty: signup, session, purchase, or else one event per recognised stage (view, add to cart, checkout, purchase)',
        refers_to="event",
    )
    window_days: float = param(7.0, "days from entering within which every step must happen", gt=0)
    order: str = param("ordered", "", choices=ORDERS)
    exclude_events: list[str] = param(
        [],
        'events that end an attempt between two steps; "refund@2-3": between step 2 and step 3 only',
        refers_to="event",
    )
    entry: str = param("first", "the attempt counted per user; best: the one that got furthest", choices=ENTRIES)
    exclusion: str = param(
        "drop",
        "what an excluded event does; drop: a drop at that step, remove: not counted",
        choices=EXCLUSIONS,
    )
    breakdown: str = param("", "user attribute to compare groups by, e.g. channel; empty: none", refers_to="attribute")
    reference_group: str = param(
        "", "group the others are compared with; empty: the largest", refers_to="group", of="breakdown"
    )
    max_groups: int = param(8, "groups shown by name (the largest), the rest as other", ge=1)
    period: str = param("week", "entry period of the trend", choices=calendar.PERIODS)
    campaign: str = param(
        "",
        "campaign whose arms get their own funnel (entering after assignment); empty: the first",
        refers_to="campaign",
    )

    def named(self, field_name: str, value: str) -> list[str]:
        if field_name == "steps":  # alternatives: "cart|wishlist"
            return [name.strip() for name in value.split("|") if name.strip()]
        if field_name == "exclude_events":  # "refund@2-3": the event between two steps only
            return [engine.split_exclusion(value)[0]]
        return [value]

    def checks(self) -> list[contract.Problem]:
        found = super().checks()
        if self.steps:
            found += contract.raised(lambda: parse_steps(self.steps))
            if not found:
                found += contract.raised(lambda: parse_exclusions(self.exclude_events, len(self.steps)))
        return found


@dataclasses.dataclass(frozen=True)
class Funnel(contract.Presented):
    """A funnel of one dataset. ``steps`` are the step labels ("cart|wishlist"); tables: ``table``
    (one row per group and step, see :func:`stats.funnel`), ``times`` (quartiles of the time to each
    step), ``trend`` (by entry period), ``comparisons`` (groups against the reference, with a
    breakdown)."""

    ANALYSIS = "funnel"

    steps: tuple[str, ...]
    default_steps: bool
    window_days: float
    order: str
    exclude: tuple[str, ...]  # as given: "refund", "refund@2-3"
    breakdown: str | None
    period: str
    snapshot_at: dt.datetime
    table: pd.DataFrame
    times: pd.DataFrame
    histograms: pd.DataFrame  # step, since, minutes, users: the time to each step, by whole minutes
    trend: pd.DataFrame
    comparisons: pd.DataFrame
    dropoff: pd.DataFrame
    returns: pd.DataFrame
    campaign: str | None = None
    control: str | None = None
    arms: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    arm_lifts: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    alpha: float = 0.05
    params: Params | None = None
    calendar: Calendar = dataclasses.field(default_factory=Calendar)  # the days, weeks and months counted in
    entry: str = "first"
    exclusion: str = "drop"
    removed: int = 0  # users left out: every attempt had an excluded event (exclusion="remove")
    arm_removed: int = 0

    @property
    def level(self) -> float:
        return self.alpha

    @property
    def overall(self) -> pd.DataFrame:
        """The funnel of all users (groups summed) as :func:`stats.funnel` gives it."""
        return self.table[self.table.group == stats.ALL].reset_index(drop=True)

    def tables(self) -> dict[str, pd.DataFrame]:
        funnel = self.table[list(stats.FUNNEL_COLUMNS)]
        trend = self.trend.assign(period_start=self.trend.period_start.dt.strftime("%Y-%m-%d"))
        out = {"funnel": funnel, "times": self.times, "trend": trend, "dropoff": self.dropoff}
        if not self.comparisons.empty:
            out["comparisons"] = self.comparisons
        if not self.arms.empty:
            out["arms"] = self.arms[list(stats.FUNNEL_COLUMNS)].rename(columns={"group": "arm"})
            out["arm_lifts"] = self.arm_lifts
        return out


def parse_steps(texts: list[str]) -> list[list[str]]:
    """Steps as event-name sets: ``"cart|wishlist"`` is either; at least two steps."""
    steps = [[name.strip() for name in str(text).split("|") if name.strip()] for text in texts]
    if len(steps) < 2 or any(not step for step in steps):
        raise DataError.single(
            "parameters",
            "a funnel needs at least two steps, each an event name",
            'list the steps in order, e.g. ["view", "cart|wishlist", "purchase"]',
            column="steps",
            example=texts,
            key="funnel.steps",
        )
    return steps


def parse_exclusions(texts: list[str], steps: int) -> list[tuple[str, int, int]]:
    """``"refund"`` (between any two steps) or ``"refund@2-3"`` (between step 2 and step 3 only) as
    ``(name, a, b)``; a name may itself hold an '@' when what follows is not a step range."""
    out = []
    for text in texts:
        name, bounds = engine.split_exclusion(text)
        a, b = bounds or (1, steps)
        if bounds:
            if not 1 <= a < b <= steps:
                raise DataError.single(
                    "parameters",
                    f"the exclusion '{text}' names steps outside the funnel's 1 to {steps}",
                    f'give two steps in order between 1 and {steps}, e.g. "{name}@1-2"',
                    column="exclude_events",
                    example=text,
                    key="funnel.exclusion_steps",
                    values={"text": text, "steps": steps, "event": name},
                )
        out.append((name, a, b))
    return out


def run(ds: Dataset, params: Params) -> Funnel:
    """The funnel of ``ds`` with the notebook's parameters (empty texts and lists: the defaults)."""
    events = ds.table("events")
    default = not params.steps
    known = ds.event_names() or []
    steps = parse_steps(params.steps or _default_steps(events, set(known)))
    ds.check_events([name for step in steps for name in step], "steps", known)
    exclusions = parse_exclusions(params.exclude_events, len(steps))
    ds.check_events([name for name, _, _ in exclusions], "exclude_events", known)
    snapshot = pd.Timestamp(ds.snapshot_at).to_pydatetime()
    times, removed = _kept(_step_times(events, steps, params, snapshot, exclusions))
    labels = ["|".join(step) for step in steps]
    histograms = engine.minute_histograms(times, len(steps))
    counts = engine.reached_counts(times, len(steps))
    table = stats.funnel(counts.assign(group=stats.ALL), labels, params.alpha, histograms)
    comparisons = pd.DataFrame()
    breakdown = params.breakdown or None
    if breakdown:
        grouped = ds.user_attributes(times, [breakdown])
        if breakdown not in grouped.columns:
            if ds.users is None or breakdown not in ds.users.columns:
                raise DataError.single(
                    "users",
                    f"no user attribute '{breakdown}'",
                    "choose an attribute of the users table",
                    column=breakdown,
                    key="no_attribute",
                    values={"column": breakdown},
                )
            grouped = grouped.left_join(ds.users.select("user_id", breakdown), "user_id").drop("user_id_right")
        by_group = engine.reached_counts(grouped, len(steps), grouped[breakdown].cast("string"))
        by_group["group"] = _fold(by_group, params.max_groups)
        by_group = by_group.groupby(["group", "complete", "reached"], as_index=False).users.sum()
        table = pd.concat([table, stats.funnel(by_group, labels, params.alpha)], ignore_index=True)
        comparisons = stats.compare(table[table.group != stats.ALL], params.reference_group or None, params.alpha)
    dropoff, returns = stats.dropoff(engine.dropoffs(times, events, steps, snapshot))
    campaign, control, arms, lifts, arm_removed = _by_arm(ds, events, steps, labels, params, snapshot, exclusions)
    return Funnel(
        calendar=ds.calendar,
        steps=tuple(labels),
        default_steps=default,
        window_days=params.window_days,
        order=params.order,
        exclude=tuple(params.exclude_events),
        breakdown=breakdown,
        period=params.period,
        snapshot_at=snapshot,
        table=table,
        times=stats.time_quantiles(histograms),
        histograms=histograms,
        trend=stats.trend(engine.entries_by_period(times, len(steps), params.period, ds.calendar), params.alpha),
        comparisons=comparisons,
        dropoff=dropoff,
        returns=returns,
        campaign=campaign,
        control=control,
        arms=arms,
        arm_lifts=lifts,
        alpha=params.alpha,
        params=params,
        entry=params.entry,
        exclusion=params.exclusion,
        removed=removed,
        arm_removed=arm_removed,
    )


def _kept(times):
    """The users in the funnel (cached) and how many were removed by an exclusion."""
    times = times.cache()
    removed = int(times.filter(times.removed).count().execute())
    return times.filter(~times.removed), removed


def _by_arm(ds: Dataset, events, steps, labels, params: Params, snapshot, exclusions):
    """The funnel of one campaign's assigned users by arm, each entering at their first step-1 event
    after assignment, and each arm against control (the lift of every step's conversion, Holm)."""
    empty = None, None, pd.DataFrame(), pd.DataFrame(), 0
    if not ds.has("assignments") or ds.control_arm is None:
        return empty
    assignments = ds.table("assignments")
    if "assigned_at" not in assignments.columns:
        return empty  # measured outcomes without times: nothing to enter after
    campaigns = campaign_names(ds)
    campaign = check_campaign(params.campaign or (campaigns[0] if campaigns else ""), campaigns)
    chosen = assignments.filter(assignments.campaign.cast("string") == campaign)
    starts = chosen.select("user_id", start_at=chosen.assigned_at, arm=chosen.arm.cast("string"))
    times, removed = _kept(
        _step_times(events, steps, params, snapshot, exclusions, starts.select("user_id", "start_at"))
    )
    times = times.join(starts.select("user_id", "arm"), "user_id")
    counts = engine.reached_counts(times, len(steps), times.arm)
    if counts.empty:  # nobody entered after assignment (say the first step is a signup): the report says so
        return campaign, ds.control_arm, pd.DataFrame(), pd.DataFrame(), removed
    arms = stats.funnel(counts, labels, params.alpha)
    lifts = stats.compare(arms, ds.control_arm, params.alpha)
    return campaign, ds.control_arm, arms, lifts, removed


def _step_times(events, steps, params: Params, snapshot, exclusions, starts=None):
    """Each user's step times with the notebook's window, order, entry and exclusions (entering at ``starts``)."""
    return engine.step_times(
        events,
        steps,
        window_days=params.window_days,
        order=params.order,
        exclude=exclusions or None,
        entry=params.entry,
        exclusion=params.exclusion,
        starts=starts,
        snapshot=snapshot,
    )


# The stages of a funnel a manager recognises, in order, by the names products give their events (English
# and Chinese): a default funnel takes one event per stage the data has (the most common of its names).
STAGES = (
    ("signup", "sign_up", "register", "registration", "注册"),
    ("view", "product_view", "page_view", "pageview", "view_item", "item_view", "浏览", "浏览商品"),
    ("add_to_cart", "addtocart", "cart", "add_cart", "加购", "加入购物车"),
    ("checkout", "begin_checkout", "结算"),
    ("purchase", "order", "transaction", "pay", "payment", "购买", "下单", "支付"),
)


def _default_steps(events, known: set[str]) -> list[str]:
    """The sample world's funnel (signup, session, purchase) where the data has those events; else one event
    per recognised stage (view → add to cart → purchase on a shop's clickstream); else the two most common
    events, in the order they first appear. Never one event twice (product_view → product_view)."""
    if set(DEFAULT_STEPS) <= known:
        return list(DEFAULT_STEPS)
    counts = events.group_by("event").aggregate(n=events.count(), first=events.event_at.min()).execute()
    by_name = {str(e).lower(): (str(e), int(n)) for e, n in zip(counts.event, counts.n, strict=True)}
    chosen = []
    for names in STAGES:
        present = [by_name[name] for name in names if name in by_name]
        if present:
            chosen.append(max(present, key=lambda item: item[1])[0])
    if len(chosen) >= 2:
        return chosen
    top = counts.sort_values(["n", "event"], ascending=[False, True]).head(2)
    if len(top) < 2:
        return [str(top.event.iloc[0])] * 2  # one event in the whole log: a return within the window
    return [str(e) for e in top.sort_values(["first", "event"]).event]


def _fold(counts: pd.DataFrame, n: int) -> pd.Series:
    """Each group as it is when among the ``n`` with most users entered, else other (missing named)."""
    sizes = counts.assign(value=counts.group).groupby("value", dropna=False, as_index=False).users.sum()
    kept = set(topn.fold_counts(sizes, n).value) - {topn.OTHER}
    named = counts.group.astype("object").where(counts.group.notna(), topn.MISSING)
    return named.where(named.isin(kept), topn.OTHER)


ABOUT = contract.About(
    summary="Where users drop between the first step and the last, how long each step takes, how conversion moves by entry period and differs between groups; users still inside their window are shown apart, never counted as drops.",
    requires=(("events",),),
)


__all__ = ["ABOUT", "DEFAULT_STEPS", "Funnel", "Params", "parse_exclusions", "parse_steps", "run"]
