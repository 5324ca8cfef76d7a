"""The overview's charts: functions of an :class:`~userops_lib.analyses.overview.Overview`, text from the catalogue."""

from __future__ import annotations

import numpy as np
import pandas as pd

from userops_lib import narrative, plots
from userops_lib.contract import Chart
from userops_lib.i18n import t
from userops_lib.proportions import wilson

BAR_WIDTH_DAYS = {"day": 0.8, "week": 5.5, "month": 25}


def charts(result) -> list[Chart]:
    out = []
    if result.has("new_users"):
        out.append(Chart("new_users", lambda: new_users(result), t("overview.note.new_users")))
    if result.has("active_users"):
        out.append(Chart("active_users", lambda: active_users(result)))
        out.append(Chart("stickiness", lambda: stickiness(result)))
    if result.has("daily") and any(_complete(result.frames["daily"], n).any() for n in (1, 7, 30)):
        out.append(Chart("retention", lambda: retention(result), t("overview.note.retention")))
    if result.has("monthly"):
        out.append(Chart("monetisation", lambda: monetisation(result)))
    if result.has("durations"):
        out.append(Chart("durations", lambda: durations(result)))
    if result.has("arms"):
        out.append(Chart("arms", lambda: arms(result)))
    return out


def _complete(daily, n: int):
    """Days whose N-th day has wholly passed (days without new users have no flag)."""
    return daily[f"d{n}_complete"].astype("boolean").fillna(False).astype(bool)


def new_users(result, ax=None):
    frame, period = result.frames["new_users"], result.period
    ax = plots.axes(ax)
    colors = [plots.sns.color_palette(plots.PALETTE)[0] if c else plots.INCOMPLETE_COLOR for c in frame.complete]
    ax.bar(frame.period_start, frame.new_users, width=BAR_WIDTH_DAYS[period], color=colors, align="edge")
    plots.date_axis(ax)
    name = t(f"period.{period}")
    return plots.finish(
        ax,
        title=t("overview.chart.new_users.title", period=name),
        xlabel=t("overview.chart.new_users.x", period=name, zone=narrative.zone(result.calendar)),
        ylabel=t("overview.chart.new_users.y"),
    )


def active_users(result, ax=None):
    frame = result.frames["active_users"]
    ax = plots.axes(ax)
    for column in ("mau", "wau", "dau"):
        ax.plot(frame.day, frame[column].where(frame[f"{column}_complete"]), label=t(f"overview.chart.active.{column}"))
    ax.legend(loc="upper left")
    plots.date_axis(ax)
    return plots.finish(
        ax,
        title=t("overview.chart.active.title"),
        xlabel=t("overview.chart.active.x", zone=narrative.zone(result.calendar)),
        ylabel=t("overview.chart.active.y"),
    )


def stickiness(result, ax=None):
    """Daily stickiness faint, its 7-day average bold (one day's DAU/MAU swings with the weekday)."""
    frame = result.frames["active_users"]
    ax = plots.axes(ax)
    daily = frame.set_index("day").stickiness.where(frame.set_index("day").mau_complete)
    ax.plot(daily.index, daily, color="C2", alpha=0.3, linewidth=1, label=t("overview.chart.daily"))
    week = daily.rolling("7D", min_periods=7).mean() if isinstance(daily.index, pd.DatetimeIndex) else daily
    ax.plot(week.index, week, color="C2", linewidth=2.2, label=t("overview.chart.seven_day"))
    ax.legend(loc="upper left")
    plots.date_axis(ax)
    return plots.finish(
        ax,
        title=t("overview.chart.stickiness.title"),
        xlabel=t("overview.chart.active.x", zone=narrative.zone(result.calendar)),
        ylabel=t("overview.chart.stickiness.y"),
        percent=True,
    )


def seven_day_retention(frame: pd.DataFrame, n: int, alpha: float) -> pd.DataFrame:
    """N-day retention of the new users of the last 7 days, pooled (returned ÷ new over the 7 days) with
    its Wilson interval, for each day whose 7 days have all had their N-th day: ``day, rate, low, high``."""
    complete = _complete(frame, n)
    days = frame.assign(new=frame.new_users.where(complete), back=frame[f"d{n}_users"].where(complete))
    days = days.set_index(pd.DatetimeIndex(days.day))[["new", "back"]].astype(float)
    counted = days.new.notna().astype(float).rolling("7D").sum()
    sums = days.rolling("7D").sum()[counted >= 7]
    low, high = wilson(sums.back.to_numpy(), sums.new.to_numpy(), alpha)
    return pd.DataFrame({"day": sums.index, "rate": (sums.back / sums.new).to_numpy(), "low": low, "high": high})


def retention(result, ax=None):
    """Each day's N-day retention faint, and the 7-day pooled retention bold with its interval band (one
    day's few new users make a day's rate jump); days whose N-th day has not passed are absent."""
    frame = result.frames["daily"]
    ax = plots.axes(ax)
    for i, n in enumerate((1, 7, 30)):
        shown = frame[_complete(frame, n)]
        ax.plot(shown.day, shown[f"d{n}_retention"], color=f"C{i}", alpha=0.25, linewidth=0.8)
        week = seven_day_retention(frame, n, result.level)
        ax.plot(week.day, week.rate, color=f"C{i}", linewidth=2.2, label=t(f"overview.chart.retention.d{n}"))
        ax.fill_between(week.day, week.low, week.high, color=f"C{i}", alpha=0.18, linewidth=0)
    ax.legend(loc="upper right")
    plots.date_axis(ax)
    return plots.finish(
        ax,
        title=t("overview.chart.retention.title", level=narrative.level(result.level)),
        xlabel=t("overview.chart.retention.x", zone=narrative.zone(result.calendar)),
        ylabel=t("overview.chart.retention.y"),
        percent=True,
    )


def monetisation(result, ax=None):
    frame = result.frames["monthly"]
    ax = plots.axes(ax)
    x = np.arange(len(frame))
    alpha = np.where(frame.complete, 1.0, 0.35)
    for offset, column, label in ((-0.2, "arpu", "ARPU"), (0.2, "arppu", "ARPPU")):
        bars = ax.bar(x + offset, frame[column], width=0.4, label=label)
        for bar, a in zip(bars, alpha, strict=True):
            bar.set_alpha(a)
    ax.set_xticks(x, frame.month.dt.strftime("%Y-%m"), rotation=45, ha="right")
    ax.legend(loc="upper left")
    unit = result.currency.strip() or t("unit.revenue")
    return plots.finish(
        ax,
        title=t("overview.chart.money.title"),
        xlabel=t("overview.chart.money.x"),
        ylabel=t("overview.chart.money.y", unit=unit),
    )


def durations(result, ax=None):
    frame = result.frames["durations"]
    ax = plots.axes(ax)
    ax.bar(frame.duration, frame.churned, label=t("overview.chart.durations.churned"), width=0.9)
    ax.bar(
        frame.duration, frame.censored, bottom=frame.churned, label=t("overview.chart.durations.censored"), width=0.9
    )
    ax.legend(loc="upper right")
    unit = result.duration_unit
    return plots.finish(
        ax,
        title=t("overview.chart.durations.title", unit=unit),
        xlabel=t("overview.chart.durations.x", unit=unit),
        ylabel=t("overview.chart.durations.y"),
    )


def arms(result, ax=None):
    frame = result.frames["arms"]
    ax = plots.axes(ax)
    ax.barh(frame.campaign.astype(str) + " · " + frame.arm.astype(str), frame.users)
    ax.invert_yaxis()
    return plots.finish(
        ax, title=t("overview.chart.arms.title"), xlabel=t("overview.chart.arms.x"), ylabel=t("overview.chart.arms.y")
    )
