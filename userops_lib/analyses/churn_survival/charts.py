"""Churn survival's charts: functions of a :class:`~userops_lib.analyses.churn_survival.ChurnSurvival`."""

from __future__ import annotations

import warnings

import numpy as np

from userops_lib import narrative, plots
from userops_lib.analyses.churn_survival import cox as cox_model
from userops_lib.analyses.churn_survival.curves import ALL
from userops_lib.analyses.churn_survival.text import calibration_note, segment, span, unit_name
from userops_lib.contract import Chart
from userops_lib.i18n import t

MAX_AT_RISK_ROWS = 6  # curves with an at-risk row under the chart (more would not fit)


def charts(result) -> list[Chart]:
    out = [Chart("km", lambda: km(result))]
    if result.cox is not None and not cox_model.not_estimable(result.cox.summary).all():
        out.append(Chart("forest", lambda: forest(result)))
    if result.calibration is not None:
        out.append(Chart("calibration", lambda: calibration(result), calibration_note(result)))
    return out


def km(result, ax=None, *, at_risk: bool = True):
    """Each segment's Kaplan–Meier curve with its band, everyone's dashed, users at risk underneath."""
    from lifelines.plotting import add_at_risk_counts

    curves, segment_by = result.km, result.segment_by
    ax = plots.axes(ax, size=(9, 5.2))
    shown = [f for name, f in curves.fitters.items() if not (segment_by and name == ALL)]
    if segment_by:
        curves.fitters[ALL].plot_survival_function(
            ax=ax, ci_show=False, color="black", linestyle="--", linewidth=1.2, label=segment(ALL)
        )
    for i, fitter in enumerate(shown):
        fitter.plot_survival_function(ax=ax, ci_show=True, color=f"C{i % 10}", linewidth=1.6)
    ax.set_ylim(0, 1.02)
    if segment_by:
        ax.legend(title=segment_by, loc="lower left")
    elif ax.get_legend() is not None:
        ax.get_legend().remove()
    if at_risk and len(shown) <= MAX_AT_RISK_ROWS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # lifelines builds str.format patterns from the labels: braces in a segment's name ('{unknown}')
            # would be read as fields, so they are doubled here and come out single.
            labels = [segment(f.label).replace("{", "{{").replace("}", "}}") for f in shown]
            add_at_risk_counts(*shown, labels=labels, ax=ax, rows_to_show=["At risk"], fontsize=8)
        _name_at_risk_row(ax)
    level = narrative.level(curves.alpha)
    title = (
        t("churn_survival.chart.km.title_by", segment_by=segment_by, level=level)
        if segment_by
        else t("churn_survival.chart.km.title", level=level)
    )
    return plots.finish(
        ax,
        title=title,
        xlabel=t("churn_survival.chart.km.x", unit=unit_name(result)),
        ylabel=t("churn_survival.chart.km.y"),
        percent=True,
    )


def _name_at_risk_row(ax) -> None:
    """lifelines writes its row name in English ('At risk'): the row is renamed in the report's language."""
    for other in ax.figure.axes:
        if other is ax:
            continue
        labels = [label.get_text() for label in other.get_xticklabels()]
        if labels and labels[0].startswith("At risk"):
            labels[0] = t("churn_survival.chart.km.at_risk") + labels[0][len("At risk") :]
            other.set_xticks(other.get_xticks(), labels, ha="right", fontsize=8)


def forest(result, ax=None, *, stratified: bool = False):
    """Hazard ratios with their intervals on a log scale, 1 (no difference) dashed."""
    cox = result.cox
    table = cox.stratified if stratified else cox.summary
    table = table[~cox_model.not_estimable(table)].iloc[::-1]  # 0 to infinity: said in the findings
    ax = plots.axes(ax, size=(8, max(2.5, 0.45 * len(table) + 1.2)))
    y = np.arange(len(table))
    ax.errorbar(
        table.hazard_ratio,
        y,
        xerr=[table.hazard_ratio - table.ci_low, table.ci_high - table.hazard_ratio],
        fmt="o",
        color="C0",
        ecolor="C0",
        capsize=3,
    )
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    plots.log_axis(ax, "x")
    ax.set_yticks(y, table.covariate)
    reference = t("format.list_sep").join(f"{k} = {v}" for k, v in cox.references.items())
    return plots.finish(
        ax,
        title=t("churn_survival.chart.forest.title", level=narrative.level(cox.model.alpha), reference=reference),
        xlabel=t("churn_survival.chart.forest.x"),
        ylabel=t("churn_survival.chart.forest.y"),
    )


def calibration(result, ax=None):
    """Predicted against observed churn per tenth of holdout users, the diagonal for perfect calibration."""
    frame = result.calibration
    ax = plots.axes(ax, size=(6, 5))
    top = max(frame.predicted.max(), frame.observed.max()) * 1.1
    ax.plot(
        [0, top],
        [0, top],
        color="grey",
        linestyle="--",
        linewidth=1,
        label=t("churn_survival.chart.calibration.perfect"),
    )
    # Wilson bounds can sit a rounding error inside an observed 0 or 1; matplotlib refuses negative bars.
    below, above = (frame.observed - frame.ci_low).clip(lower=0), (frame.ci_high - frame.observed).clip(lower=0)
    ax.errorbar(
        frame.predicted,
        frame.observed,
        yerr=[below, above],
        fmt="o",
        color="C0",
        capsize=3,
        label=t("churn_survival.chart.calibration.tenth"),
    )
    ax.legend(loc="upper left")
    plots.percent_axis(ax.xaxis)  # both axes shares
    return plots.finish(
        ax,
        title=t("churn_survival.chart.calibration.title", horizon=span(result.risk_horizon, result.unit)),
        xlabel=t("churn_survival.chart.calibration.x"),
        ylabel=t("churn_survival.chart.calibration.y"),
        percent=True,
    )
