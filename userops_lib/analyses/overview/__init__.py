"""The overview: what a dataset holds and the daily KPIs user-operations teams report (日报).

``run(ds, Params(...))`` reduces the data in the engine (:mod:`.engine`), computes on the small tables
(:mod:`.stats`) and returns an :class:`Overview`; its text comes from the message catalogues
(:mod:`userops_lib.analyses.overview.text`) and its charts from :mod:`userops_lib.analyses.overview.charts`.
Definitions are stated in the catalogue (``overview.definition.*``) and listed in every report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from userops_lib import activity, contract, topn
from userops_lib.analyses.overview import engine, stats
from userops_lib.calendar import Calendar
from userops_lib.contract import param
from userops_lib.data import Dataset

CONVERSION_DAYS = 30
RETENTION_DAYS = engine.RETENTION_DAYS


@dataclass(frozen=True, kw_only=True)
class Params(contract.Common):
    period: str = param("week", "KPI cards and new users per period", choices=("day", "week", "month"))
    top_values: int = param(8, "most common values shown per user attribute", ge=1)


@dataclass(frozen=True)
class Overview(contract.Presented):
    """Headline KPIs of a dataset as tidy tables (English column names: they are the CSV artifacts)."""

    ANALYSIS = "overview"

    params: Params
    dataset: str
    currency: str
    snapshot_at: dt.datetime | None
    users: int
    rows_set_aside: int
    first_seen: pd.Timestamp | None = None
    last_seen: pd.Timestamp | None = None
    control_arm: str | None = None
    duration_unit: str | None = None
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    paying_conversion: dict | None = None
    calendar: Calendar = field(default_factory=Calendar)  # the days, weeks and months counted in

    @property
    def level(self) -> float:
        return self.params.alpha

    @property
    def period(self) -> str:
        return self.params.period

    def has(self, name: str) -> bool:
        return name in self.frames and not self.frames[name].empty

    def tables(self) -> dict[str, pd.DataFrame]:
        return dict(self.frames)


def run(ds: Dataset, params: Params) -> Overview:
    """The overview of ``ds``; it adapts to the tables the dataset has."""
    frames: dict[str, pd.DataFrame] = {}
    facts: dict = {}
    if ds.events is not None:
        facts.update(_activity(ds, params, frames))
    if ds.users is not None and {"duration", "churned"} <= set(ds.users.columns):
        durations = engine.durations(ds.users)
        durations["censored"] = durations.users - durations.churned
        frames["durations"] = durations[["duration", "users", "churned", "censored"]]
        facts["duration_unit"] = ds.duration_unit or "units"
        frames["churn"] = pd.DataFrame(
            [stats.share(int(durations.churned.sum()), int(durations.users.sum()), params.alpha)]
        )
    if ds.assignments is not None:
        sizes, outcomes = engine.arms(ds.assignments)
        sizes["share"] = sizes.users / sizes.groupby("campaign").users.transform("sum")
        frames["arms"], frames["arm_outcomes"] = sizes, outcomes
        facts["control_arm"] = ds.control_arm
    if ds.users is not None:
        frames["attributes"] = _attribute_mix(engine.value_counts(ds.users, ds.attributes("users")), params.top_values)
    return Overview(
        params=params,
        dataset=ds.name,
        currency=ds.currency,
        calendar=ds.calendar,
        snapshot_at=ds.snapshot_at,
        users=ds.quality.users,
        rows_set_aside=ds.quality.rows_set_aside,
        frames=frames,
        **facts,
    )


def _activity(ds: Dataset, params: Params, frames: dict) -> dict:
    """New users, DAU/WAU/MAU, N-day retention and money per day, period and month."""
    seen = engine.first_seen(ds).cache()  # one row per user, read by five reductions below
    first, last = engine.span(seen)
    # Days are local days of the dataset's calendar: the first day, the snapshot and every bucket below.
    calendar = ds.calendar
    start_day, snapshot = calendar.floor(calendar.to_local(first), "day"), calendar.to_local(ds.snapshot_at)
    days = activity.days(ds)  # read by four reductions below, and by churn survival and segment profiling
    daily_new = engine.new_users(seen, calendar)
    frames["new_users"] = stats.by_period(daily_new, params.period, start_day, snapshot, calendar)
    active = stats.active_users(engine.activity_changes(days, calendar), start_day, snapshot)
    frames["active_users"] = active
    retention = stats.retention(
        engine.returning(seen, days, calendar),
        daily_new,
        RETENTION_DAYS,
        start_day=start_day,
        snapshot=snapshot,
        alpha=params.alpha,
    )
    daily = active[
        [
            "day",
            "dau",
            "wau",
            "mau",
            "stickiness",
            "dau_complete",
            "wau_complete",
            "mau_complete",
            "stickiness_complete",
        ]
    ].merge(retention.rename(columns={"first_day": "day"}), on="day", how="left")
    daily["new_users"] = daily.new_users.fillna(0).astype("int64")
    money_period = conversion = None
    if "revenue" in ds.table("events").columns:
        by_day = stats.money(engine.money_by(days, "day", calendar), "day", start_day, snapshot, calendar)
        daily = daily.merge(
            by_day.rename(columns={"start": "day"})[["day", "paying_users", "revenue", "arpu", "arppu"]],
            on="day",
            how="left",
        )
        monthly = stats.money(engine.money_by(days, "month", calendar), "month", start_day, snapshot, calendar)
        frames["monthly"] = monthly.rename(columns={"start": "month"})
        money_period = (
            monthly
            if params.period == "month"
            else by_day
            if params.period == "day"
            else stats.money(
                engine.money_by(days, params.period, calendar), params.period, start_day, snapshot, calendar
            )
        )
        users, paying = engine.paying_within(ds.events, seen, pd.Timestamp(ds.snapshot_at), CONVERSION_DAYS)
        conversion = {
            "window_days": CONVERSION_DAYS,
            "users": users,
            "paying_users": paying,
            **{k: v for k, v in stats.share(paying, users, params.alpha).items() if k in ("rate", "ci_low", "ci_high")},
        }
        frames["paying_conversion"] = pd.DataFrame([conversion])
    frames["daily"] = daily
    frames["kpis"] = stats.cards(
        period=params.period,
        new=frames["new_users"],
        active=active,
        money_by_period=money_period,
        retention_by_day=retention,
        offsets=RETENTION_DAYS,
        snapshot=snapshot,
        alpha=params.alpha,
        calendar=calendar,
    )
    return {"first_seen": first, "last_seen": last, "paying_conversion": conversion}


def _attribute_mix(counts: dict[str, pd.DataFrame], top_values: int) -> pd.DataFrame:
    """Top values of each text attribute with their share; the rest pooled as 'other'."""
    parts = []
    for column, frame in counts.items():
        folded = topn.fold_counts(frame, top_values)
        folded["share"] = folded.users / folded.users.sum()
        parts.append(folded.assign(attribute=column))
    if not parts:
        return pd.DataFrame(columns=["attribute", "value", "users", "share"])
    out = pd.concat(parts, ignore_index=True)[["attribute", "value", "users", "share"]]
    return out.astype({"users": "int64"})


ABOUT = contract.About(
    summary="What the dataset holds and the daily KPIs (日报) of user operations.",
    rank=0,
    shared=("activity_days",),
)
