"""The overview's statistics on the reduced tables (pandas and statsmodels only, no engine, no text).

A period (day, week, month) is *complete* when it lies wholly between the first day of data and the
snapshot; incomplete periods are kept in the tables (flagged) but never used for a KPI card, a
headline or a trend.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from userops_lib.calendar import OFFSET, Calendar
from userops_lib.proportions import wilson

WINDOWS = {"wau": 7, "mau": 30}


def days_until(start_day: pd.Timestamp, snapshot: pd.Timestamp) -> pd.DatetimeIndex:
    """Every local day from the first day of data to the day holding the (local) snapshot."""
    return pd.date_range(start_day, Calendar().floor(snapshot - pd.Timedelta(microseconds=1), "day"), freq="D")


def active_users(changes: pd.DataFrame, start_day: pd.Timestamp, snapshot: pd.Timestamp) -> pd.DataFrame:
    """DAU, WAU, MAU and stickiness per local day from the engine's per-day changes (running sums); days,
    ``start_day`` and ``snapshot`` are local wall times."""
    out = pd.DataFrame({"day": days_until(start_day, snapshot)})
    out = out.merge(changes, on="day", how="left").fillna({"dau": 0, "wau": 0, "mau": 0})
    for name, width in WINDOWS.items():
        out[name] = out[name].cumsum()
        out[f"{name}_complete"] = out.day >= start_day + pd.Timedelta(days=width - 1)
    out["dau_complete"] = True
    day_complete = out.day + pd.Timedelta(days=1) <= snapshot
    for name in ("dau", "wau", "mau"):
        out[name] = out[name].astype("int64")
        out[f"{name}_complete"] &= day_complete
    out["stickiness"] = out.dau / out.mau.where(out.mau > 0)
    # Stickiness on a day whose 30-day window has not filled (the data's first days) reads 1.0: flagged.
    out["stickiness_complete"] = out.mau_complete
    return out[
        [
            "day",
            "dau",
            "wau",
            "mau",
            "wau_complete",
            "mau_complete",
            "dau_complete",
            "stickiness",
            "stickiness_complete",
        ]
    ]


def by_period(
    daily_new: pd.DataFrame, period: str, start_day: pd.Timestamp, snapshot: pd.Timestamp, calendar: Calendar
) -> pd.DataFrame:
    """New users per calendar period (every period, zeros included), flagged complete or not."""
    frame = (
        daily_new.assign(period_start=[calendar.floor(d, period) for d in daily_new.day])
        .groupby("period_start", as_index=False)
        .new_users.sum()
    )
    frame = calendar.every_period(frame, "period_start", period, until=snapshot)
    frame["period_end"] = frame.period_start + OFFSET[period]
    frame["complete"] = (frame.period_start >= start_day) & (frame.period_end <= snapshot)
    return frame[["period_start", "period_end", "new_users", "complete"]]


def money(
    frame: pd.DataFrame, period: str, start_day: pd.Timestamp, snapshot: pd.Timestamp, calendar: Calendar
) -> pd.DataFrame:
    """Active and paying users, revenue, paying share, ARPU and ARPPU per period, flagged complete."""
    frame = calendar.every_period(frame, "start", period, until=snapshot)
    frame["complete"] = (frame.start >= start_day) & (frame.start + OFFSET[period] <= snapshot)
    frame["arpu"] = frame.revenue / frame.active_users.where(frame.active_users > 0)
    frame["arppu"] = frame.revenue / frame.paying_users.where(frame.paying_users > 0)
    frame["paying_share"] = frame.paying_users / frame.active_users.where(frame.active_users > 0)
    return frame[["start", "active_users", "paying_users", "paying_share", "revenue", "arpu", "arppu", "complete"]]


def retention(
    returning: pd.DataFrame,
    daily_new: pd.DataFrame,
    offsets: tuple[int, ...],
    *,
    start_day: pd.Timestamp,
    snapshot: pd.Timestamp,
    alpha: float,
) -> pd.DataFrame:
    """N-day retention of each day's new users: active on exactly day N after their first day.

    ``dN_complete`` is true only when the N-th day has wholly passed by the snapshot (and the first day
    lies in the data); other days keep their counts but no rate or interval, so a day whose N-th day is
    still to come never reads as a drop.
    """
    out = daily_new.rename(columns={"day": "first_day"})[["first_day", "new_users"]].copy()
    wide = returning.pivot_table(index="first_day", columns="offset", values="users", aggfunc="sum")
    for n in offsets:
        users = out.first_day.map(wide[n] if n in wide.columns else {}).fillna(0).astype("int64")
        complete = (out.first_day >= start_day) & (out.first_day + pd.Timedelta(days=n + 1) <= snapshot)
        low, high = wilson(users, out.new_users, alpha)
        out[f"d{n}_users"] = users
        out[f"d{n}_retention"] = (users / out.new_users).where(complete)
        out[f"d{n}_ci_low"] = pd.Series(low, index=out.index).where(complete)
        out[f"d{n}_ci_high"] = pd.Series(high, index=out.index).where(complete)
        out[f"d{n}_complete"] = complete
    return out


def share(successes: int, trials: int, alpha: float) -> dict:
    """A proportion with its Wilson interval, as a row."""
    low, high = wilson([successes], [trials], alpha)
    return {
        "users": int(trials),
        "successes": int(successes),
        "rate": successes / trials if trials else np.nan,
        "ci_low": float(low[0]),
        "ci_high": float(high[0]),
    }


def change(now: float, before: float, unit: str) -> float:
    """The change of a KPI against the period before: relative for counts and money, points for rates."""
    if before is None or now is None or np.isnan(before) or np.isnan(now):
        return np.nan
    if unit == "points":
        return now - before
    return now / before - 1 if before else np.nan


CARD_COLUMNS = [
    "kpi",
    "unit",
    "period_start",
    "period_end",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "previous",
    "change",
    "week_before",
    "change_week",
    "change_unit",
]


def cards(
    *,
    period: str,
    new: pd.DataFrame,
    active: pd.DataFrame,
    money_by_period: pd.DataFrame | None,
    retention_by_day: pd.DataFrame,
    offsets: tuple[int, ...],
    snapshot: pd.Timestamp,
    alpha: float,
    calendar: Calendar,
) -> pd.DataFrame:
    """The report's KPI cards (日报, 周报 or 月报) for the last complete period, each against the period
    before and, for a daily report, against the same weekday a week earlier (日环比 and 周同比).

    Columns: :data:`CARD_COLUMNS`. ``previous``/``change`` compare with the period before;
    ``week_before``/``change_week`` with the same weekday seven days earlier (daily reports only, NaN
    otherwise). A retention card is about the last cohort whose N-th day has passed (which may be earlier
    than the last complete period: a 30-day retention card is about users new at least 31 days ago); ``n``
    is that cohort's new users. A retention card without such a cohort is kept, with no value
    (``n`` = 0), so that the page can say why.
    """
    rows: list[dict] = []
    complete = new[new.complete]
    if len(complete) < 1:
        return pd.DataFrame(columns=CARD_COLUMNS)
    ends = list(complete.period_start.iloc[-2:])
    week = ends[-1] - pd.Timedelta(days=7)
    if period == "day" and week in set(complete.period_start):
        ends = [week, *ends]

    def add(kpi, unit, starts, values, lows=None, highs=None, change_unit="relative", n=np.nan):
        value = values[-1]
        before = values[-2] if len(values) > 1 else np.nan
        # 周同比: the same weekday seven days before this card's own day (a retention card's cohort day).
        earlier = dict(zip(starts, values, strict=True)).get(starts[-1] - pd.Timedelta(days=7), np.nan)
        rows.append(
            {
                "kpi": kpi,
                "unit": unit,
                "period_start": starts[-1],
                "period_end": starts[-1] + OFFSET[period],
                "value": value,
                "ci_low": lows[-1] if lows else np.nan,
                "ci_high": highs[-1] if highs else np.nan,
                "n": n,
                "previous": before,
                "change": change(value, before, change_unit),
                "week_before": earlier if period == "day" else np.nan,
                "change_week": change(value, earlier, change_unit) if period == "day" else np.nan,
                "change_unit": change_unit,
            }
        )

    def days_of(start):
        return active[(active.day >= start) & (active.day < start + OFFSET[period])]

    add("new_users", "count", ends, [float(new.set_index("period_start").new_users[s]) for s in ends])
    add("dau", "count", ends, [float(days_of(s).dau.mean()) for s in ends])
    for name in ("wau", "mau"):
        last_days = [days_of(s).iloc[-1] for s in ends]
        if all(day[f"{name}_complete"] for day in last_days):
            add(name, "count", ends, [float(day[name]) for day in last_days])
    sticky = [days_of(s) for s in ends]
    if all(frame.mau_complete.all() for frame in sticky):
        add("stickiness", "share", ends, [float(frame.stickiness.mean()) for frame in sticky], change_unit="points")
    for n in offsets:
        pooled = _pooled_retention(retention_by_day, n, period, snapshot, alpha, set(complete.period_start), calendar)
        if pooled is None:
            rows.append({**dict.fromkeys(CARD_COLUMNS, np.nan), "kpi": f"d{n}_retention", "unit": "share", "n": 0})
            rows[-1]["change_unit"] = "points"
            continue
        starts, rates, lows, highs, sizes = pooled
        add(f"d{n}_retention", "share", starts, rates, lows, highs, change_unit="points", n=sizes[-1])
    if money_by_period is not None:
        by_start = money_by_period.set_index("start")
        shown = [s for s in ends if s in by_start.index]
        if shown:
            paying = [share(by_start.paying_users[s], by_start.active_users[s], alpha) for s in shown]
            add(
                "paying_share",
                "share",
                shown,
                [p["rate"] for p in paying],
                [p["ci_low"] for p in paying],
                [p["ci_high"] for p in paying],
                change_unit="points",
                n=float(by_start.active_users[shown[-1]]),
            )
            add("arpu", "money", shown, [float(by_start.arpu[s]) for s in shown])
            add("arppu", "money", shown, [float(by_start.arppu[s]) for s in shown])
    return pd.DataFrame(rows, columns=CARD_COLUMNS)


def _pooled_retention(
    by_day: pd.DataFrame,
    n: int,
    period: str,
    snapshot: pd.Timestamp,
    alpha: float,
    complete_periods: set,
    calendar: Calendar,
):
    """N-day retention pooled over each period's new users, for the last two complete periods whose every
    day has a complete N-th day (and, by day, the day a week before the last): (starts, rates, lows, highs,
    new users), or None when no such period had new users."""
    frame = by_day.assign(start=[calendar.floor(d, period) for d in by_day.first_day])
    grouped = frame.groupby("start").agg(
        new_users=("new_users", "sum"),
        users=(f"d{n}_users", "sum"),
        complete=(f"d{n}_complete", "all"),
        days=("first_day", "size"),
    )
    grouped = grouped[
        grouped.complete
        & grouped.index.isin(list(complete_periods))
        & (grouped.index + OFFSET[period] + pd.Timedelta(days=n) <= snapshot)
    ]
    grouped = grouped[grouped.new_users > 0]
    if grouped.empty:
        return None
    last = grouped.index[-1]
    # The last cohort, the one before it, and (daily reports) the one seven days before the last.
    keep = list(grouped.index[-2:])
    if period == "day" and (last - pd.Timedelta(days=7)) in grouped.index and (last - pd.Timedelta(days=7)) not in keep:
        keep = [last - pd.Timedelta(days=7), *keep]
    grouped = grouped.loc[keep]
    low, high = wilson(grouped.users, grouped.new_users, alpha)
    return (
        list(grouped.index),
        list(grouped.users / grouped.new_users),
        list(low),
        list(high),
        [int(v) for v in grouped.new_users],
    )
