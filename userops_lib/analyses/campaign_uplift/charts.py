"""Campaign uplift's charts: functions of a :class:`~userops_lib.analyses.campaign_uplift.CampaignResult`."""

from __future__ import annotations

import numpy as np

from userops_lib import narrative, plots
from userops_lib.analyses.campaign_uplift.text import CUPED, metric_name
from userops_lib.contract import Chart
from userops_lib.i18n import t


def charts(result) -> list[Chart]:
    out = [Chart("forest", lambda: forest(result))]
    if not result.segments.empty:
        out.append(Chart("segments", lambda: segments(result)))
    if result.model is not None and result.model.problem is None:
        out.append(Chart("qini", lambda: qini(result)))
    return out


def forest(result, ax=None):
    rows = result.readout[result.readout.abs_lift.notna()].iloc[::-1]
    ax = plots.axes(ax, size=(8, max(2.8, 0.42 * len(rows) + 1.2)))
    for i, (_, row) in enumerate(rows.iterrows()):
        low, high = row.rel_ci_low, row.rel_ci_high
        ax.errorbar(
            row.rel_lift,
            i,
            xerr=[[row.rel_lift - low], [high - row.rel_lift]],
            fmt="o",
            color="C1" if row.metric.endswith(CUPED) else "C0",
            capsize=3,
        )
    ax.set_yticks(range(len(rows)), [f"{r.arm} · {metric_name(r.metric)}" for r in rows.itertuples()])
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    plots.percent_axis(ax.xaxis)
    return plots.finish(
        ax,
        title=t("campaign_uplift.chart.forest.title", level=narrative.level(result.alpha)),
        xlabel=t("campaign_uplift.chart.forest.x"),
        ylabel=t("campaign_uplift.chart.forest.y"),
    )


def segments(result, ax=None):
    frame = result.segments.iloc[::-1]
    ax = plots.axes(ax, size=(8, max(2.8, 0.4 * len(frame) + 1.2)))
    y = np.arange(len(frame))
    ax.errorbar(
        frame.abs_lift, y, xerr=[frame.abs_lift - frame.ci_low, frame.ci_high - frame.abs_lift], fmt="o", capsize=3
    )
    ax.set_yticks(y, [f"{r.arm} · {r.segment}" for r in frame.itertuples()])
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    metric = metric_name(result.primary)
    return plots.finish(
        ax,
        title=t(
            "campaign_uplift.chart.segments.title",
            metric=metric,
            segment_by=frame.segment_by.iloc[0],
            level=narrative.level(result.alpha),
        ),
        xlabel=t("campaign_uplift.chart.segments.x", metric=metric),
        ylabel=t("campaign_uplift.chart.segments.y"),
    )


def qini(result, ax=None):
    q = result.model.qini
    ax = plots.axes(ax, size=(7, 4.5))
    ax.plot(
        q.share_targeted,
        q.incremental,
        label=t("campaign_uplift.chart.qini.model", q=f"{result.model.qini_coefficient:.4f}"),
    )
    ax.plot(q.share_targeted, q.random, linestyle="--", color="grey", label=t("campaign_uplift.chart.qini.random"))
    plots.percent_axis(ax.xaxis)
    ax.legend(loc="lower right")
    return plots.finish(
        ax,
        title=t("campaign_uplift.chart.qini.title", arm=result.model.arm),
        xlabel=t("campaign_uplift.chart.qini.x"),
        ylabel=t("campaign_uplift.chart.qini.y", metric=metric_name(result.primary)),
    )
