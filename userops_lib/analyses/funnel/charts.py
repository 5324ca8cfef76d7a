"""The funnel's charts: functions of a :class:`~userops_lib.analyses.funnel.Funnel`."""

from __future__ import annotations

import numpy as np

from userops_lib import narrative, plots
from userops_lib.analyses.funnel.text import _window
from userops_lib.contract import Chart
from userops_lib.i18n import t


def charts(result) -> list[Chart]:
    if result.overall.empty or not result.overall.entered.iloc[0]:
        return []
    out = [Chart("funnel", lambda: steps(result))]
    if result.trend.entered_complete.gt(0).sum() > 1:
        out.append(Chart("trend", lambda: trend(result), t("funnel.note.trend")))
    if not result.histograms.empty:
        out.append(Chart("time", lambda: time_to_step(result)))
    if result.breakdown:
        out.append(Chart("groups", lambda: groups(result)))
    return out


def time_to_step(result, ax=None):
    """The distribution of the time from entering to each step: the cumulative share of the users who
    reached the step (windows ended) by hours since entering, from the minute histograms."""
    ax = plots.axes(ax)
    frame = result.histograms[result.histograms.since == "start"]
    for i, (step, part) in enumerate(frame.groupby("step", sort=True)):
        part = part.sort_values("minutes")
        hours = np.concatenate([[0.0], part.minutes.to_numpy() / 60])
        share = np.concatenate([[0.0], part.users.cumsum().to_numpy() / part.users.sum()])
        ax.step(hours, share, where="post", color=f"C{i}", label=f"{int(step)}. {result.steps[int(step) - 1]}")
    ax.set_xlim(0, result.window_days * 24)
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    return plots.finish(
        ax,
        title=t("funnel.chart.time.title", window=_window(result)),
        xlabel=t("funnel.chart.time.x"),
        ylabel=t("funnel.chart.time.y"),
        percent=True,
    )


def steps(result, ax=None):
    """Users at each step (complete windows), with the share of entrants and of the step before."""
    overall = result.overall
    ax = plots.axes(ax, size=(8, 1.2 + 0.8 * len(overall)))
    positions = np.arange(len(overall))[::-1]
    ax.barh(positions, overall.users, color="C0")
    for y, (_, row) in zip(positions, overall.iterrows(), strict=True):
        text = narrative.percent(row.conversion)
        if row.step > 1:
            text += " · " + t("funnel.chart.of_previous", share=narrative.percent(row.step_conversion))
        ax.text(row.users, y, f"  {narrative.count(int(row.users))} ({text})", va="center", fontsize=9)
    ax.set_yticks(positions, [f"{int(r.step)}. {r.event}" for _, r in overall.iterrows()])
    ax.set_xlim(0, overall.users.max() * 1.6)
    return plots.finish(
        ax,
        title=t("funnel.chart.steps.title", window=_window(result)),
        xlabel=t("funnel.chart.steps.x"),
        ylabel=t("funnel.chart.steps.y"),
    )


def trend(result, ax=None):
    """Conversion to the last step by entry period with its band; periods with open windows faded."""
    ax = plots.axes(ax)
    frame = result.trend[result.trend.entered_complete > 0]
    for complete, alpha in ((True, 1.0), (False, 0.35)):
        part = frame[frame.complete == complete]
        if part.empty:
            continue
        label = t("funnel.chart.trend.complete") if complete else t("funnel.chart.trend.incomplete")
        ax.plot(part.period_start, part.conversion, "o-" if complete else "o", color="C0", alpha=alpha, label=label)
        ax.fill_between(part.period_start, part.ci_low, part.ci_high, color="C0", alpha=0.15 * alpha)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right")
    plots.date_axis(ax)
    return plots.finish(
        ax,
        title=t(
            "funnel.chart.trend.title",
            event=result.steps[-1],
            period=t(f"period.{result.period}"),
            level=narrative.level(result.alpha),
        ),
        xlabel=t("funnel.chart.trend.x", period=t(f"period.{result.period}"), zone=narrative.zone(result.calendar)),
        ylabel=t("funnel.chart.conversion_y"),
        percent=True,
    )


def groups(result, ax=None):
    """Conversion to the last step by group, with intervals."""
    last = result.table[(result.table.group != "all") & (result.table.step == len(result.steps))]
    last = last[last.entered > 0].sort_values("conversion")
    ax = plots.axes(ax, size=(8, 1.2 + 0.45 * len(last)))
    y = np.arange(len(last))
    ax.errorbar(
        last.conversion,
        y,
        xerr=[(last.conversion - last.ci_low).clip(lower=0), (last.ci_high - last.conversion).clip(lower=0)],
        fmt="o",
        color="C0",
        capsize=3,
    )
    ax.set_yticks(y, [str(g) for g in last.group])
    plots.percent_axis(ax.xaxis)
    return plots.finish(
        ax,
        title=t(
            "funnel.chart.groups.title",
            event=result.steps[-1],
            breakdown=result.breakdown,
            level=narrative.level(result.alpha),
        ),
        xlabel=t("funnel.chart.conversion_y"),
        ylabel=result.breakdown,
    )
