"""The overview: what a dataset holds and the headline KPIs user-operations teams live by.

Definitions (all times UTC, all periods calendar periods; a period counts as *complete* only when
it lies wholly between the first day of data and the snapshot, and incomplete periods are shown
but never used for a headline or a trend):

* **new users** per period: users by ``signup_at`` (or their first event when there is no signup
  time);
* **DAU / WAU / MAU** on day *d*: distinct users with an event on *d* / in the 7 / in the 30 days
  ending on *d*; a WAU or MAU whose window reaches before the data starts is incomplete;
* **stickiness**: DAU / MAU, averaged over the last 30 complete days;
* **paying conversion**: the share of users who paid (an event with revenue > 0) within 30 days of
  first being seen, among users seen at least 30 days before the snapshot, with a Wilson interval;
* **ARPU** per month: revenue / users active that month; **ARPPU**: revenue / paying users that month.

Every reduction runs in the engine; pandas only sees one row per day, period or month.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from userops_lib import narrative, periods, plots
from userops_lib.data import Dataset
from userops_lib.errors import DataError

DEFINITIONS = [
    "All times are UTC; weeks start on Monday. A period is complete when it lies wholly between the first day "
    "of data and the snapshot; incomplete periods are shown faded or grey and never used for a headline.",
    "New users: users by the period of their signup (or first event where there is no signup time).",
    "DAU / WAU / MAU on a day: distinct users with at least one event that day / in the 7 / 30 days ending "
    "that day. WAU and MAU are not shown until the data covers their whole window.",
    "Stickiness: DAU divided by MAU, averaged over the last 30 complete days.",
    "Paying conversion: share of users with an event with revenue > 0 within 30 days of first being seen, among "
    "users first seen at least 30 days before the snapshot; 95% Wilson interval.",
    "ARPU: a month's revenue divided by the users active that month. ARPPU: divided by the users who paid that month.",
    "Churned share (user tables with a churn flag): churned users over all users, 95% Wilson interval; "
    "time to churn is in the churn survival report.",
]
CONVERSION_DAYS = 30
TOP_VALUES = 8


@dataclasses.dataclass(frozen=True)
class Overview:
    """Headline KPIs of a dataset. Tables are tidy DataFrames; ``findings`` are plain sentences."""

    dataset: str
    period: str
    currency: str
    snapshot_at: dt.datetime | None
    headlines: list[tuple[str, str]]
    findings: list[str]
    tables: dict[str, pd.DataFrame]
    paying_conversion: dict | None = None

    def has(self, name: str) -> bool:
        return name in self.tables and not self.tables[name].empty

    def display_formats(self) -> dict:
        """How the tables' columns read in a report."""
        money = lambda v: narrative.money(v, self.currency)  # noqa: E731
        return {"month": narrative.month, "paying_share": narrative.percent, "share": narrative.percent,
                "revenue": money, "arpu": money, "arppu": money, "complete": narrative.yes_no,
                "active_users": narrative.count, "paying_users": narrative.count, "users": narrative.count}

    def _repr_html_(self) -> str:
        return narrative.headlines_html(self.headlines) + narrative.findings_html(self.findings)

    # -- pictures -------------------------------------------------------------------------------
    def plot_new_users(self, ax=None):
        frame = self.tables["new_users"]
        ax = plots.axes(ax)
        colors = [plots.sns.color_palette(plots.PALETTE)[0] if c else plots.INCOMPLETE_COLOR for c in frame.complete]
        width = {"day": 0.8, "week": 5.5, "month": 25}[self.period]
        ax.bar(frame.period_start, frame.new_users, width=width, color=colors, align="edge")
        return plots.finish(ax, title=f"New users per {self.period} (grey: incomplete {self.period})",
                            xlabel=f"{self.period} starting (UTC)", ylabel="new users (count)")

    def plot_active_users(self, ax=None):
        frame = self.tables["active_users"]
        ax = plots.axes(ax)
        for column, label in (("mau", "MAU (30 days)"), ("wau", "WAU (7 days)"), ("dau", "DAU")):
            complete = frame[f"{column}_complete"]
            ax.plot(frame.day, frame[column].where(complete), label=label)
        ax.legend(loc="upper left")
        return plots.finish(ax, title="Daily, weekly and monthly active users", xlabel="day (UTC)",
                            ylabel="active users (count)")

    def plot_stickiness(self, ax=None):
        frame = self.tables["active_users"]
        ax = plots.axes(ax)
        ax.plot(frame.day, frame.stickiness.where(frame.mau_complete), color="C2")
        return plots.finish(ax, title="Stickiness: DAU as a share of MAU", xlabel="day (UTC)",
                            ylabel="DAU / MAU (%)", percent=True)

    def plot_monetisation(self, ax=None):
        frame = self.tables["monthly"]
        ax = plots.axes(ax)
        months = frame.month.dt.strftime("%Y-%m")
        x = np.arange(len(frame))
        alpha = np.where(frame.complete, 1.0, 0.35)
        for offset, column, label in ((-0.2, "arpu", "ARPU"), (0.2, "arppu", "ARPPU")):
            bars = ax.bar(x + offset, frame[column], width=0.4, label=label)
            for bar, a in zip(bars, alpha, strict=True):
                bar.set_alpha(a)
        ax.set_xticks(x, months, rotation=45, ha="right")
        ax.legend(loc="upper left")
        unit = self.currency.strip() or "revenue units"
        return plots.finish(ax, title="Revenue per active user (ARPU) and per paying user (ARPPU), by month "
                                      "(faded: incomplete)", xlabel="month", ylabel=f"revenue per user ({unit})")

    def plot_durations(self, ax=None):
        frame = self.tables["durations"]
        ax = plots.axes(ax)
        ax.bar(frame.duration, frame.churned, label="churned", width=0.9)
        ax.bar(frame.duration, frame.censored, bottom=frame.churned, label="still a customer", width=0.9)
        ax.legend(loc="upper right")
        unit = frame.attrs.get("unit", "units")
        return plots.finish(ax, title=f"Users by time as a customer ({unit})", xlabel=f"duration ({unit})",
                            ylabel="users (count)")

    def plot_arms(self, ax=None):
        frame = self.tables["arms"]
        ax = plots.axes(ax)
        labels = frame.campaign.astype(str) + " · " + frame.arm.astype(str)
        ax.barh(labels, frame.users)
        ax.invert_yaxis()
        return plots.finish(ax, title="Users per campaign arm", xlabel="users (count)", ylabel="campaign · arm")


def overview(ds: Dataset, *, period: str = "week", top_values: int = TOP_VALUES) -> Overview:
    """Compute the overview of ``ds``; adapts to the tables it has.

    ``period`` (day, week, month) buckets new users; ``top_values`` caps the values listed per attribute.
    """
    if top_values < 1:
        raise DataError.single("parameters", "top_values must be at least 1", "give a positive count",
                               column="top_values", example=top_values)
    if period not in periods.NAMES:
        raise DataError.single("parameters", f"unknown period '{period}'", "use day, week or month",
                               column="period", example=period)
    tables: dict[str, pd.DataFrame] = {}
    headlines: list[tuple[str, str]] = []
    findings: list[str] = []
    conversion = None
    currency = ds.currency
    headlines.append(("users", narrative.count(ds.quality.users)))

    if ds.events is not None:
        first_seen = _first_seen(ds)
        start = first_seen.first_seen.min().execute()
        start_day = pd.Timestamp(start).floor("D")
        snapshot = pd.Timestamp(ds.snapshot_at)
        tables["new_users"] = _new_users(first_seen, period, start_day, snapshot)
        last_seen = first_seen.first_seen.max().execute()
        findings.append(_new_users_sentence(tables["new_users"], period, start, last_seen))
        tables["active_users"] = _active_users(ds.events, start_day, snapshot)
        findings.append(_activity_sentence(tables["active_users"]))
        last = tables["active_users"][tables["active_users"].mau_complete]
        if not last.empty:
            stickiness = last.tail(30).stickiness.mean()
            headlines.append(("stickiness (DAU/MAU, last 30 days)", narrative.percent(stickiness)))
            headlines.append(("MAU on the last complete day" + _change(last.mau, 30, "30 days before"),
                              narrative.count(last.mau.iloc[-1])))
        if "revenue" in ds.events.columns:
            tables["monthly"] = _monthly(ds.events, start_day, snapshot)
            conversion = _paying_conversion(ds.events, first_seen, snapshot)
            tables["paying_conversion"] = pd.DataFrame([conversion])
            findings.extend(_money_sentences(tables["monthly"], conversion, currency))
            headlines.append((f"paying within {CONVERSION_DAYS} days", narrative.percent(conversion["rate"])))
            complete = tables["monthly"][tables["monthly"].complete]
            if not complete.empty:
                headlines.append((f"ARPU, {complete.month.iloc[-1]:%b %Y}" + _change(complete.arpu, 1, "the month before"),
                                  narrative.money(complete.arpu.iloc[-1], currency)))
    if ds.users is not None and {"duration", "churned"} <= set(ds.users.columns):
        tables["durations"], sentence, share = _durations(ds.users, ds.duration_unit or "units")
        findings.append(sentence)
        headlines.append(("churned", narrative.percent(share)))
    if ds.assignments is not None:
        tables["arms"], tables["arm_outcomes"] = _arms(ds.assignments)
        findings.append(_arms_sentence(tables["arms"], ds.control_arm))
    if ds.users is not None:
        tables["attributes"] = _attribute_mix(ds.users, ds.attributes("users"), top_values)
    if ds.quality.rows_set_aside:
        findings.append(f"{narrative.count(ds.quality.rows_set_aside)} rows were set aside as unusable "
                        "(see 'Data quality' at the end); they are not in any figure.")
    return Overview(ds.name, period, currency, ds.snapshot_at, headlines, findings, tables, conversion)


def _change(series: pd.Series, back: int, when: str) -> str:
    """' (+3.2% on 30 days before)' for a headline tile: the last value against the one ``back`` rows earlier."""
    if len(series) <= back:
        return ""
    now, before = float(series.iloc[-1]), float(series.iloc[-1 - back])
    if not before or np.isnan(before) or np.isnan(now):
        return ""
    return f" ({(now / before - 1) * 100:+.1f}% on {when})"


def _first_seen(ds: Dataset) -> ir.Table:
    """One row per user: when they were first seen (signup, else first event)."""
    events = ds.events
    first_event = events.group_by("user_id").aggregate(first_seen=events.event_at.min())
    if ds.users is not None and "signup_at" in ds.users.columns:
        users = ds.users.select("user_id", signup=ds.users.signup_at)
        joined = users.left_join(first_event, "user_id")
        return joined.select("user_id", first_seen=ibis.coalesce(joined.signup, joined.first_seen)).filter(
            lambda t: t.first_seen.notnull())
    return first_event


def _period_end(starts: pd.Series, period: str) -> pd.Series:
    return starts + periods.OFFSET[period]


def _new_users(first_seen: ir.Table, period: str, start_day: pd.Timestamp, snapshot: pd.Timestamp) -> pd.DataFrame:
    bucket = first_seen.first_seen.truncate(periods.TRUNCATE[period])
    frame = (first_seen.group_by(period_start=bucket).aggregate(new_users=first_seen.count())
             .order_by("period_start").execute())
    frame["period_start"] = pd.to_datetime(frame.period_start)
    frame = periods.every_period(frame, "period_start", period, until=snapshot)
    frame["period_end"] = _period_end(frame.period_start, period)
    frame["complete"] = (frame.period_start >= start_day) & (frame.period_end <= snapshot)
    return frame[["period_start", "period_end", "new_users", "complete"]]


def _new_users_sentence(frame: pd.DataFrame, period: str, first, last) -> str:
    total = frame.new_users.sum()
    complete = frame[frame.complete]
    sentence = (f"{narrative.count(total)} users were first seen between {narrative.day(first)} "
                f"and {narrative.day(last)}")
    if len(complete):
        sentence += (f"; a complete {period} brought {narrative.count(complete.new_users.mean())} new users on "
                     f"average (last complete {period}: {narrative.count(complete.new_users.iloc[-1])})")
    incomplete = len(frame) - len(complete)
    if incomplete:
        sentence += f"; {incomplete} incomplete {period}{'s are' if incomplete > 1 else ' is'} shown in grey"
    return sentence + "."


def _active_users(events: ir.Table, start_day: pd.Timestamp, snapshot: pd.Timestamp) -> pd.DataFrame:
    """DAU, WAU and MAU per day, from user-days in the engine.

    Each active user-day at ``a`` covers the window days ``[a, min(a + W, next active day))``; these
    intervals do not overlap within a user, so the number of users active in the W days ending on
    ``d`` is the running sum of interval starts minus ends. One window pass over user-days instead of
    a W-fold self-join.
    """
    days = events.select("user_id", day=events.event_at.truncate("D")).distinct()
    window = ibis.window(group_by="user_id", order_by="day")
    days = days.mutate(next_day=days.day.lead().over(window))
    one, zero = ibis.literal(1), ibis.literal(0)
    streams = [days.select(day=days.day, dau=one, wau=one, mau=one)]
    for name, width in (("wau", 7), ("mau", 30)):
        horizon = days.day + ibis.interval(days=width)
        end = ibis.least(horizon, ibis.coalesce(days.next_day, horizon))
        streams.append(days.select(day=end, dau=zero, wau=-one if name == "wau" else zero,
                                   mau=-one if name == "mau" else zero))
    # One pass: interval starts and both kinds of ends, summed per day, then running sums here.
    stream = ibis.union(*streams, distinct=False)
    changes = stream.group_by("day").aggregate(dau=stream.dau.sum(), wau=stream.wau.sum(),
                                               mau=stream.mau.sum()).execute()
    changes["day"] = pd.to_datetime(changes.day)
    out = pd.DataFrame({"day": pd.date_range(start_day, snapshot.ceil("D") - pd.Timedelta(days=1), freq="D")})
    out = out.merge(changes, on="day", how="left").fillna({"dau": 0, "wau": 0, "mau": 0})
    for name, width in (("wau", 7), ("mau", 30)):
        out[name] = out[name].cumsum()
        out[f"{name}_complete"] = out.day >= start_day + pd.Timedelta(days=width - 1)
    out["dau_complete"] = True
    day_complete = out.day + pd.Timedelta(days=1) <= snapshot
    for name in ("dau", "wau", "mau"):
        out[name] = out[name].astype("int64")
        out[f"{name}_complete"] &= day_complete
    out["stickiness"] = out.dau / out.mau.where(out.mau > 0)
    return out


def _activity_sentence(frame: pd.DataFrame) -> str:
    complete = frame[frame.mau_complete]
    if complete.empty:
        return "The data covers less than 30 complete days, so MAU and stickiness are not shown."
    last = complete.iloc[-1]
    recent = complete.tail(30)
    return (f"On {narrative.day(last.day)}, the last complete day, {narrative.count(last.dau)} users were active "
            f"(WAU {narrative.count(last.wau)}, MAU {narrative.count(last.mau)}); over the last 30 days DAU/MAU "
            f"averaged {narrative.percent(recent.stickiness.mean())}, i.e. a monthly user is active on about "
            f"{recent.stickiness.mean() * 30:.1f} days a month.")


def _monthly(events: ir.Table, start_day: pd.Timestamp, snapshot: pd.Timestamp) -> pd.DataFrame:
    month = events.event_at.truncate("M")
    paid = events.revenue.fill_null(0) > 0
    frame = (events.group_by(month=month).aggregate(
        active_users=events.user_id.nunique(),
        paying_users=events.user_id.nunique(where=paid),
        revenue=events.revenue.fill_null(0).sum(),
    ).order_by("month").execute())
    frame["month"] = pd.to_datetime(frame.month)
    frame = periods.every_period(frame, "month", "month", until=snapshot)
    frame["complete"] = (frame.month >= start_day) & (_period_end(frame.month, "month") <= snapshot)
    frame["arpu"] = frame.revenue / frame.active_users
    frame["arppu"] = frame.revenue / frame.paying_users.where(frame.paying_users > 0)
    frame["paying_share"] = frame.paying_users / frame.active_users
    return frame[["month", "active_users", "paying_users", "paying_share", "revenue", "arpu", "arppu", "complete"]]


def _paying_conversion(events: ir.Table, first_seen: ir.Table, snapshot: pd.Timestamp) -> dict:
    """Share of users paying within CONVERSION_DAYS of first seen, among users observed that long."""
    horizon = ibis.interval(days=CONVERSION_DAYS)
    eligible = first_seen.filter(first_seen.first_seen + horizon <= snapshot.to_pydatetime())
    payments = events.filter(events.revenue.fill_null(0) > 0)
    joined = eligible.left_join(payments.select("user_id", "event_at"), "user_id")
    in_window = (joined.event_at >= joined.first_seen) & (joined.event_at < joined.first_seen + horizon)
    per_user = joined.group_by("user_id").aggregate(paid=in_window.fill_null(False).any())
    row = per_user.aggregate(users=per_user.count(), paying=per_user.paid.cast("int64").sum()).execute().iloc[0]
    users, paying = int(row["users"]), int(row["paying"] or 0)
    low, high = proportion_confint(paying, users, alpha=0.05, method="wilson") if users else (np.nan, np.nan)
    return {"window_days": CONVERSION_DAYS, "users": users, "paying_users": paying,
            "rate": paying / users if users else np.nan, "ci_low": low, "ci_high": high}


def _money_sentences(monthly: pd.DataFrame, conversion: dict, currency: str) -> list[str]:
    out = []
    if conversion["users"]:
        out.append(f"{narrative.percent(conversion['rate'])} of users paid within {CONVERSION_DAYS} days of first "
                   f"being seen (95% CI {narrative.interval(conversion['ci_low'], conversion['ci_high'])}; "
                   f"{narrative.count(conversion['users'])} users observed for at least {CONVERSION_DAYS} days).")
    complete = monthly[monthly.complete]
    if not complete.empty:
        last = complete.iloc[-1]
        out.append(f"In {last.month:%B %Y}, the last complete month, {narrative.percent(last.paying_share)} of "
                   f"active users paid; ARPU was {narrative.money(last.arpu, currency)} and ARPPU "
                   f"{narrative.money(last.arppu, currency)} on revenue of {narrative.money(last.revenue, currency)}.")
    return out


def _durations(users: ir.Table, unit: str) -> tuple[pd.DataFrame, str, float]:
    duration = users.duration.round().cast("int64")
    frame = (users.group_by(duration=duration).aggregate(
        churned=users.churned.cast("int64").sum(), users=users.count()).order_by("duration").execute())
    frame["censored"] = frame.users - frame.churned
    frame.attrs["unit"] = unit
    total, churned = frame.users.sum(), frame.churned.sum()
    low, high = proportion_confint(churned, total, alpha=0.05, method="wilson")
    share = churned / total
    sentence = (f"{narrative.percent(share)} of {narrative.count(total)} users have churned "
                f"(95% CI {narrative.interval(low, high)}); the rest are still customers, so their durations "
                f"({unit}) are censored: see the churn survival report for time-to-churn.")
    return frame[["duration", "users", "churned", "censored"]], sentence, share


def _arms(assignments: ir.Table) -> tuple[pd.DataFrame, pd.DataFrame]:
    arms = assignments.group_by(["campaign", "arm"]).aggregate(users=assignments.count()).order_by(
        ["campaign", "arm"]).execute()
    arms["share"] = arms.users / arms.groupby("campaign").users.transform("sum")
    numeric = [c for c, t in assignments.schema().items() if c not in ("user_id",) and
               (t.is_numeric() or t.is_boolean())]
    if not numeric:
        return arms, pd.DataFrame(columns=["campaign", "arm"])
    metrics = {c: assignments[c].cast("float64").mean() for c in numeric}
    outcomes = assignments.group_by(["campaign", "arm"]).aggregate(**metrics).order_by(["campaign", "arm"]).execute()
    return arms, outcomes


def _arms_sentence(arms: pd.DataFrame, control: str | None) -> str:
    campaigns = arms.campaign.nunique()
    parts = "; ".join(f"{arm} {narrative.count(n)} ({narrative.percent(s)})"
                      for arm, n, s in zip(arms.arm, arms.users, arms.share, strict=True))
    control_text = f" The control arm is '{control}'." if control else " No control arm is named."
    return (f"{campaigns} campaign{'s' if campaigns > 1 else ''} assigned {narrative.count(arms.users.sum())} "
            f"users: {parts}.{control_text} The campaign uplift report reads each arm against control.")


def _attribute_mix(users: ir.Table, attributes: list[str], top_values: int) -> pd.DataFrame:
    """Top values of each text attribute with their share; the rest pooled as 'other'."""
    rows = []
    for column in attributes:
        if not users.schema()[column].is_string():
            continue
        counts = users.group_by(value=users[column]).aggregate(users=users.count()).order_by(
            ibis.desc("users")).execute()
        if len(counts) > 50 or len(counts) < 2:
            continue
        total = counts.users.sum()
        top = counts.head(top_values)
        for value, n in zip(top.value, top.users, strict=True):
            rows.append({"attribute": column, "value": value, "users": int(n), "share": n / total})
        rest = counts.users.iloc[top_values:].sum()
        if rest:
            rows.append({"attribute": column, "value": "other", "users": int(rest), "share": rest / total})
    return pd.DataFrame(rows, columns=["attribute", "value", "users", "share"])
