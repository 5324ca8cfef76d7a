"""Segment profiling's charts: functions of a :class:`~userops_lib.analyses.segment_profiling.Segments`."""

from __future__ import annotations

import numpy as np

from userops_lib import contract, narrative, plots
from userops_lib.analyses.segment_profiling.text import name
from userops_lib.contract import Chart
from userops_lib.errors import DataError
from userops_lib.i18n import t


def charts(result) -> list[Chart]:
    points = result.params.scatter_points if result.params is not None else 5000
    return [
        Chart("segments", lambda: segments(result)),
        Chart("pareto", lambda: pareto(result)),
        Chart("users", lambda: users(result, points=points)),
        Chart("lifecycle", lambda: lifecycle(result)),
    ]


def _tier_shares(result) -> dict[str, tuple[float, float]]:
    """Each value tier's share of users and of revenue: a tier is cut by revenue, so the high tier's
    20% of revenue may be 1% of users; every label that names a tier says both."""
    profile = result.profiles["value_tier"].set_index("segment")
    return {tier: (float(row.share_of_users), float(row.share_of_revenue)) for tier, row in profile.iterrows()}


def pareto(result, ax=None):
    ax = plots.axes(ax, size=(7, 4.5))
    ax.plot(result.pareto.user_share, result.pareto.revenue_share, color="C0")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label=t("segment_profiling.chart.pareto.equal"))
    # where the tiers are cut: the high tier is the top of the curve up to its share of revenue, and so on
    shares, users_above, revenue_above = _tier_shares(result), 0.0, 0.0
    for tier, color in (("high", "C3"), ("mid", "C0")):
        if tier not in shares or not shares[tier][0]:
            continue
        users_above += shares[tier][0]
        revenue_above += shares[tier][1]
        ax.plot([users_above, users_above], [0, revenue_above], color=color, linestyle=":", linewidth=1)
        ax.plot([0, users_above], [revenue_above, revenue_above], color=color, linestyle=":", linewidth=1)
        reach = {"users": narrative.percent(users_above), "revenue": narrative.percent(revenue_above)}
        ax.annotate(
            t("segment_profiling.chart.pareto.tier", tier=name("high"), **reach)
            if tier == "high"
            else t("segment_profiling.chart.pareto.tiers", high=name("high"), mid=name("mid"), **reach),
            (users_above, revenue_above),
            xytext=(6, -12 if tier == "high" else -4),
            textcoords="offset points",
            fontsize=8,
            color=color,
        )
    plots.percent_axis(ax.xaxis)
    ax.legend(loc="lower right")
    return plots.finish(
        ax,
        title=t("segment_profiling.chart.pareto.title"),
        xlabel=t("segment_profiling.chart.pareto.x"),
        ylabel=t("segment_profiling.chart.pareto.y"),
        percent=True,
    )


def users(result, ax=None, *, points: int = 5000, seed: int = 0):
    """Each buyer's recency against spend (or active days), coloured by value tier.

    One dot per user does not scale to millions of users, so at most ``points`` users are drawn:
    a uniform random sample (fixed ``seed``), stated in the title with the number it was drawn from.
    Users with nothing to put on the log axis (no purchase, no spend) are not candidates.
    """
    if points < 1:
        raise DataError(
            contract.problem(
                "scatter_points", "param.limit.one", points, limit=contract.Said("error.param.ge", bound="1")
            )
        )
    spend = result.basis == "purchases"
    y = "monetary" if spend else "frequency"
    label = (
        t("segment_profiling.chart.users.y_spend", unit=result.currency or t("unit.revenue"))
        if spend
        else t("segment_profiling.chart.users.y_activity")
    )
    frame = result.users
    eligible = frame.index[frame.recency_days.notna().to_numpy() & (frame[y] > 0).to_numpy()]
    who, total = ("buyers" if spend else "active"), len(eligible)
    if total > points:
        eligible = np.sort(np.random.default_rng(seed).choice(eligible, size=points, replace=False))
        shown = t(
            f"segment_profiling.chart.users.sample_{who}", points=narrative.count(points), total=narrative.count(total)
        )
    else:
        shown = t(f"segment_profiling.chart.users.all_{who}", total=narrative.count(total))
    drawn = frame.loc[eligible, ["recency_days", y, "value_tier"]]
    ax = plots.axes(ax, size=(8, 4.8))
    shares = _tier_shares(result)
    for tier, color in (("low", "C7"), ("mid", "C0"), ("high", "C3")):  # the rare high tier drawn last, on top
        part = drawn[drawn.value_tier == tier]
        users_share, revenue_share = shares.get(tier, (np.nan, np.nan))
        ax.scatter(
            part.recency_days,
            part[y],
            s=8,
            alpha=0.5,
            color=color,
            linewidths=0,
            label=t(
                "segment_profiling.chart.users.tier",
                tier=name(tier),
                users=narrative.percent(users_share),
                revenue=narrative.percent(revenue_share),
                shown=narrative.count(len(part)),
            ),
        )
    plots.log_axis(ax, "y")
    if len(drawn):
        ax.legend(loc="upper right", fontsize=8, markerscale=2)
    kind = "spend" if spend else "activity"
    return plots.finish(
        ax,
        title=t(f"segment_profiling.chart.users.title_{kind}", shown=shown),
        xlabel=t(f"segment_profiling.chart.users.x_{kind}"),
        ylabel=label,
    )


def segments(result, ax=None):
    profile = result.profiles["rfm_segment"]
    ax = plots.axes(ax, size=(9, 4.8))
    y = np.arange(len(profile))
    ax.barh(y - 0.2, profile.share_of_users, height=0.4, label=t("segment_profiling.chart.segments.users"))
    ax.barh(y + 0.2, profile.share_of_revenue, height=0.4, label=t("segment_profiling.chart.segments.revenue"))
    ax.set_yticks(y, [name(s) for s in profile.segment])
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    plots.percent_axis(ax.xaxis)
    return plots.finish(
        ax,
        title=t("segment_profiling.chart.segments.title"),
        xlabel=t("segment_profiling.chart.segments.x"),
        ylabel=t("segment_profiling.chart.segments.y"),
    )


def lifecycle(result, ax=None):
    frame = result.lifecycle[result.lifecycle.complete]
    ax = plots.axes(ax)
    x, width = frame.period_start, 0.8 * result.lifecycle_days
    bottom = 0
    for column, color in (("new", "C2"), ("returning", "C0"), ("resurrecting", "C4")):
        ax.bar(
            x,
            frame[column],
            bottom=bottom,
            width=width,
            label=t(f"segment_profiling.chart.lifecycle.{column}"),
            color=color,
        )
        bottom = bottom + frame[column]
    ax.bar(x, -frame.dormant, width=width, label=t("segment_profiling.chart.lifecycle.dormant"), color="C3")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.legend(loc="upper left", ncols=4, fontsize=8)
    plots.date_axis(ax)
    return plots.finish(
        ax,
        title=t("segment_profiling.chart.lifecycle.title"),
        xlabel=t("segment_profiling.chart.lifecycle.x", zone=narrative.zone(result.calendar)),
        ylabel=t("segment_profiling.chart.lifecycle.y"),
    )
