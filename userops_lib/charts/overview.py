"""The overview's charts: functions of an :class:`~userops_lib.overview.Overview`, text from the catalogue."""

from __future__ import annotations

import numpy as np

from userops_lib import narrative, plots
from userops_lib.contract import Chart
from userops_lib.i18n import t

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
    frame = result.frames["active_users"]
    ax = plots.axes(ax)
    ax.plot(frame.day, frame.stickiness.where(frame.mau_complete), color="C2")
    plots.date_axis(ax)
    return plots.finish(
        ax,
        title=t("overview.chart.stickiness.title"),
        xlabel=t("overview.chart.active.x", zone=narrative.zone(result.calendar)),
        ylabel=t("overview.chart.stickiness.y"),
        percent=True,
    )


def retention(result, ax=None):
    """Each day's N-day retention with its interval band; days whose N-th day has not passed are absent."""
    frame = result.frames["daily"]
    ax = plots.axes(ax)
    for i, n in enumerate((1, 7, 30)):
        complete = _complete(frame, n)
        shown = frame[complete]
        ax.plot(shown.day, shown[f"d{n}_retention"], color=f"C{i}", label=t(f"overview.chart.retention.d{n}"))
        ax.fill_between(
            shown.day, shown[f"d{n}_ci_low"], shown[f"d{n}_ci_high"], color=f"C{i}", alpha=0.18, linewidth=0
        )
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
