"""Customer value's charts: functions of a :class:`~userops_lib.analyses.customer_value.CustomerValue`."""

from __future__ import annotations

import numpy as np

from userops_lib import narrative, plots
from userops_lib.analyses.customer_value.text import _horizon
from userops_lib.contract import Chart
from userops_lib.i18n import t
from userops_lib.rfm import segment_name


def charts(result) -> list[Chart]:
    if result.too_few:
        return []
    out = [Chart("alive", lambda: alive(result), t("customer_value.note.alive"))]
    if not result.holdout.empty:
        out.append(Chart("holdout", lambda: holdout(result)))
    out.append(Chart("cumulative", lambda: cumulative(result), t("customer_value.note.cumulative")))
    out.append(Chart("distribution", lambda: distribution(result)))
    if len(result.tiers_vs_rfm) > 1:
        out.append(Chart("tiers_vs_rfm", lambda: tiers_vs_rfm(result)))
    return out


def _unit(result) -> str:
    return t(f"customer_value.unit.{result.params.time_unit}")


def alive(result, ax=None):
    """P(alive) by frequency and recency for a customer observed for the longest T (Fader–Hardie)."""
    ax = plots.axes(ax, size=(7.5, 5.5))
    grid = result.alive_grid
    frequencies = np.unique(grid.frequency)
    recencies = np.unique(grid.recency)
    values = grid.pivot(index="frequency", columns="recency", values="p_alive").to_numpy()
    mesh = ax.pcolormesh(recencies, frequencies, values, shading="nearest", cmap="viridis", vmin=0, vmax=1)
    ax.yaxis.set_major_locator(plots.mticker.MaxNLocator(integer=True))
    bar = ax.figure.colorbar(mesh, ax=ax)
    bar.set_label(t("customer_value.chart.alive.colour"))
    plots.percent_axis(bar.ax.yaxis)
    return plots.finish(
        ax,
        title=t("customer_value.chart.alive.title", T=f"{result.alive_grid['T'].iloc[0]:.0f}", unit=_unit(result)),
        xlabel=t("customer_value.chart.alive.x", unit=_unit(result)),
        ylabel=t("customer_value.chart.alive.y"),
    )


def holdout(result, ax=None):
    """Mean purchases per customer in the holdout, actual and predicted, by calibration repeat purchases."""
    ax = plots.axes(ax)
    frame = result.holdout
    x = np.arange(len(frame))
    ax.plot(x, frame.actual, marker="o", color="C0", label=t("customer_value.chart.actual"))
    ax.plot(x, frame.predicted, marker="s", linestyle="--", color="C1", label=t("customer_value.chart.predicted"))
    ax.set_xticks(x, list(frame.calibration_purchases))
    ax.legend(loc="upper left")
    return plots.finish(
        ax,
        title=t("customer_value.chart.holdout.title", days=result.params.holdout_days),
        xlabel=t("customer_value.chart.holdout.x"),
        ylabel=t("customer_value.chart.holdout.y"),
    )


def cumulative(result, ax=None):
    """Cumulative repeat purchases of the calibration customers by day, actual and expected."""
    ax = plots.axes(ax)
    frame = result.cumulative
    ax.plot(frame.day, frame.actual, color="C0", label=t("customer_value.chart.actual"))
    ax.plot(frame.day, frame.expected, color="C1", linestyle="--", label=t("customer_value.chart.expected"))
    if result.params.holdout_days:
        ax.axvline(np.datetime64(result.calibration_end), color="0.4", linewidth=1, linestyle=":")
        top = ax.get_ylim()[1]
        ax.text(
            np.datetime64(result.calibration_end),
            top * 0.97,
            " " + t("customer_value.chart.holdout_starts"),
            va="top",
            fontsize=9,
        )
    ax.legend(loc="upper left")
    plots.date_axis(ax)
    ax.yaxis.set_major_formatter(plots.mticker.FuncFormatter(lambda v, _: narrative.count(v)))
    return plots.finish(
        ax,
        title=t("customer_value.chart.cumulative.title"),
        xlabel=t("customer_value.chart.cumulative.x"),
        ylabel=t("customer_value.chart.cumulative.y"),
    )


def distribution(result, ax=None):
    """How predicted value (or, without a spend model, expected purchases) is spread over customers."""
    ax = plots.axes(ax)
    values = (result.customers.clv if result.has_value else result.customers.expected_purchases).to_numpy(float)
    positive = values[np.isfinite(values) & (values > 0)]
    if len(positive):
        low, high = np.quantile(positive, [0.001, 1.0])
        bins = np.geomspace(max(low, 1e-3), max(high, low * 10, 1e-2), 40)
        ax.hist(np.clip(positive, bins[0], bins[-1]), bins=bins, color="C0")
        plots.log_axis(ax, "x")
    key = "clv" if result.has_value else "purchases"
    unit = result.currency or t("customer_value.chart.money")
    return plots.finish(
        ax,
        title=t(f"customer_value.chart.distribution.title.{key}", horizon=_horizon(result)),
        xlabel=t(f"customer_value.chart.distribution.x.{key}", currency=unit),
        ylabel=t("customer_value.chart.distribution.y"),
    )


def tiers_vs_rfm(result, ax=None):
    """Each RFM segment's customers by predicted value tier, with the share the model calls probably gone."""
    frame = result.tiers_vs_rfm
    ax = plots.axes(ax, size=(8, 1.2 + 0.45 * len(frame)))
    positions = np.arange(len(frame))[::-1]
    left = np.zeros(len(frame))
    total = frame.customers.to_numpy(float)
    for i, tier in enumerate(("high", "mid", "low")):
        share = frame[tier].to_numpy(float) / total
        ax.barh(positions, share, left=left, color=f"C{i}", label=t(f"customer_value.tier.{tier}"))
        left += share
    gone = frame.probably_gone.to_numpy(float) / total
    ax.scatter(gone, positions, marker="|", s=300, color="black", zorder=3, label=t("customer_value.chart.gone"))
    ax.set_yticks(positions, [segment_name(s) for s in frame.rfm_segment])
    ax.set_xlim(0, 1)
    plots.percent_axis(ax.xaxis)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.06 - 0.6 / (1.2 + 0.45 * len(frame))),
        ncol=4,
        fontsize=9,
        frameon=False,
    )
    return plots.finish(
        ax,
        title=t("customer_value.chart.tiers.title"),
        xlabel=t("customer_value.chart.tiers.x"),
        ylabel=t("customer_value.chart.tiers.y"),
    )
