"""Cohort retention's charts: functions of a :class:`~userops_lib.analyses.cohort_retention.Retention`."""

from __future__ import annotations

import numpy as np

from userops_lib import narrative, plots
from userops_lib.analyses.cohort_retention.stats import TREND_PERIODS
from userops_lib.analyses.cohort_retention.text import label
from userops_lib.contract import Chart
from userops_lib.i18n import t
from userops_lib.proportions import wilson


def charts(result) -> list[Chart]:
    out = [Chart("heatmap", lambda: heatmap(result)), Chart("curves", lambda: curves(result))]
    if not result.brackets:
        out.append(Chart("trend", lambda: trend(result)))
    if result.ltv is not None and not result.ltv.empty:
        out.append(Chart("ltv", lambda: ltv(result), t("cohort_retention.note.ltv")))
    return out


def _since(result) -> str:
    if result.brackets:
        return t("cohort_retention.chart.bracket")
    return t(
        "cohort_retention.chart.since",
        period=t(f"period.{result.period}"),
        periods=t(f"period.plural.{result.period}", n=2),
    )


SMALL_COHORT = 30  # a cohort with fewer users is not coloured: one user of two made 50%, drawn darkest


def heatmap(result, ax=None, *, group: str | None = None, max_cohorts: int = 26, max_periods: int = 26):
    """Retention by cohort and period, each cell's percentage written in it; cohorts of fewer than
    ``SMALL_COHORT`` users are written in grey and not coloured (their shares jump by whole users)."""
    cells = result.cells if group is None else result.cells[result.cells.group_value == group]
    cells = cells.groupby(["cohort", "period"], as_index=False)[["cohort_size", "active_users"]].sum(min_count=1)
    cells["retention"] = cells.active_users.astype(float) / cells.cohort_size
    matrix = cells.pivot_table(index="cohort", columns="period", values="retention", dropna=False)
    sizes = cells.groupby("cohort").cohort_size.first()
    matrix = matrix.iloc[-max_cohorts:, :max_periods]
    ax = plots.axes(ax, size=(max(10, 0.36 * matrix.shape[1] + 3), max(3.5, 0.28 * len(matrix) + 1.5)))
    small = np.asarray([sizes[c] < SMALL_COHORT for c in matrix.index])
    grid = np.broadcast_to(small[:, None], matrix.shape)
    coloured = matrix.where(~grid)
    values = coloured.to_numpy()
    top = max(0.05, np.nanmax(values)) if np.isfinite(values).any() else 1
    written = (matrix * 100).round().map(lambda v: "" if np.isnan(v) else f"{v:.0f}")
    plots.sns.heatmap(
        coloured,
        ax=ax,
        cmap="Blues",
        vmin=0,
        vmax=top,
        annot=written.where(~grid, ""),
        fmt="",
        annot_kws={"fontsize": 7 if matrix.shape[1] <= 16 else 6},
        linewidths=0.3,
        linecolor="white",
        cbar_kws={
            "label": t("cohort_retention.chart.heatmap.colour"),
            "format": plots.Percent(),
        },
    )
    for row, column in zip(*np.nonzero(grid & matrix.notna().to_numpy()), strict=True):
        ax.text(column + 0.5, row + 0.5, written.iat[row, column], ha="center", va="center", fontsize=6, color="#888")
    ax.set_yticklabels(
        [f"{narrative.day(c)} ({narrative.count(sizes[c])})" for c in matrix.index], rotation=0, fontsize=8
    )
    ax.set_xticklabels(
        [label(result, int(k)) if result.brackets else str(int(k)) for k in matrix.columns],
        rotation=0 if matrix.shape[1] <= 16 else 90,
        fontsize=8,
    )
    shown = (
        "" if len(cells.cohort.unique()) <= max_cohorts else t("cohort_retention.chart.heatmap.latest", n=max_cohorts)
    )
    title = t(
        "cohort_retention.chart.heatmap.title",
        mode=t(f"cohort_retention.mode.{result.mode}"),
        shown=shown,
        small=SMALL_COHORT,
    )
    if group is not None:
        title = t("cohort_retention.chart.heatmap.group", title=title, group_by=result.group_by, group=group)
    return plots.finish(ax, title=title, xlabel=_since(result), ylabel=t("cohort_retention.chart.heatmap.y"))


def curves(result, ax=None):
    ax = plots.axes(ax)
    average = result.average[result.average.period > 0] if not result.brackets else result.average
    for i, (group, frame) in enumerate(average.groupby("group_value", sort=False)):
        ax.plot(
            frame.period,
            frame.retention,
            marker="o",
            markersize=3,
            color=f"C{i}",
            label=None if not result.group_by else str(group),
        )
        ax.fill_between(frame.period, frame.ci_low, frame.ci_high, alpha=0.2, color=f"C{i}")
    if result.group_by:
        ax.legend(title=result.group_by, loc="upper right")
    if result.brackets:
        ax.set_xticks(range(len(result.brackets)), [label(result, k) for k in range(len(result.brackets))])
    ax.set_ylim(bottom=0)
    return plots.finish(
        ax,
        title=t("cohort_retention.chart.curve.title", level=narrative.level(result.alpha)),
        xlabel=_since(result),
        ylabel=t("cohort_retention.chart.retention_y"),
        percent=True,
    )


def trend(result, ax=None):
    """Retention at fixed periods (1/4/12 weeks...) by cohort, from the cells' counts."""
    ax = plots.axes(ax)
    pooled = result.cells.groupby(["cohort", "period"], as_index=False)[["cohort_size", "active_users"]].sum(
        min_count=1
    )
    for i, k in enumerate(TREND_PERIODS[result.period]):
        frame = pooled[(pooled.period == k) & pooled.active_users.notna()]
        if frame.empty:
            continue
        low, high = wilson(frame.active_users, frame.cohort_size, result.alpha)
        ax.plot(frame.cohort, frame.active_users / frame.cohort_size, label=label(result, k), color=f"C{i}")
        ax.fill_between(frame.cohort, low, high, alpha=0.15, color=f"C{i}")
    ax.legend(loc="upper right")
    ax.set_ylim(bottom=0)
    plots.date_axis(ax)
    name = t(f"period.{result.period}")
    return plots.finish(
        ax,
        title=t(
            "cohort_retention.chart.trend.title",
            level=narrative.level(result.alpha),
            period=name,
            periods=t(f"period.plural.{result.period}", n=2),
        ),
        xlabel=t("cohort_retention.chart.trend.x", period=name, zone=narrative.zone(result.calendar)),
        ylabel=t("cohort_retention.chart.retention_y"),
        percent=True,
    )


def ltv(result, ax=None):
    ax = plots.axes(ax)
    for i, (group, frame) in enumerate(result.ltv.groupby("group_value", sort=False)):
        ax.plot(frame.period, frame.ltv, label=None if not result.group_by else str(group), color=f"C{i}")
        ax.fill_between(frame.period, frame.ci_low, frame.ci_high, alpha=0.2, color=f"C{i}")
    if result.group_by:
        ax.legend(title=result.group_by, loc="upper left")
    ax.xaxis.set_major_locator(plots.mticker.MaxNLocator(integer=True))
    unit = result.currency.strip() or t("unit.revenue")
    return plots.finish(
        ax,
        title=t("cohort_retention.chart.ltv.title", level=narrative.level(result.alpha)),
        xlabel=_since(result),
        ylabel=t("cohort_retention.chart.ltv.y", unit=unit),
    )
