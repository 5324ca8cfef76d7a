"""One look for every chart: the seaborn theme, and helpers that insist on titles, labels and units."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import seaborn as sns

from userops_lib import fonts, i18n

PALETTE = "colorblind"
INCOMPLETE_COLOR = "#bbbbbb"


def apply_theme() -> None:
    """The workbench theme: white grid, colour-blind palette, readable sizes, CJK text (see :mod:`fonts`)."""
    sns.set_theme(
        style="whitegrid",
        palette=PALETTE,
        context="notebook",
        rc={
            "font.family": fonts.register(),
            "figure.figsize": (9, 4.2),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "axes.titleweight": "bold",
            "axes.titlesize": 13,
            "axes.titlelocation": "left",
            # Text is text: a '$' in a value or a currency ('$5 plan', 'US$') is not TeX.
            "text.parse_math": False,
        },
    )


def axes(ax=None, *, size: tuple[float, float] | None = None):
    """The axes to draw on: ``ax`` if given, else a new figure's."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=size)
    return ax


def date_axis(ax) -> None:
    """Concise date ticks (no overlapping full dates)."""
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    if i18n.current().code == "zh":  # '2025年', '12月', '8日' instead of English month names
        formats = ["%Y年", "%-m月", "%-d日", "%H:%M", "%H:%M", "%S.%f"]
        offsets = ["", "%Y年", "%Y年%-m月", "%Y年%-m月%-d日", "%Y年%-m月%-d日", "%Y年%-m月%-d日 %H:%M"]
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, formats=formats, offset_formats=offsets))
    else:
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def log_axis(ax, which: str = "x") -> None:
    """A log scale whose ticks read as plain numbers (0.1, 1, 10): matplotlib's default log labels are TeX
    ('$10^{-1}$'), which the theme does not parse (text.parse_math is off so that data is never TeX)."""
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_formatter(mticker.FuncFormatter(lambda value, _: f"{value:,g}"))
    axis.set_minor_formatter(mticker.NullFormatter())


def finish(ax, *, title: str, xlabel: str, ylabel: str, percent: bool = False, legend: bool | None = None):
    """Set the title and axis labels (with units) every chart must have."""
    if not title or not xlabel or not ylabel:
        raise ValueError("every chart needs a title and both axis labels")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if percent:
        ax.yaxis.set_major_formatter(mticker.PercentFormatter(xmax=1.0, decimals=0))
    if legend is False and ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.figure.tight_layout()
    return ax


def describe(figure) -> str:
    """A text alternative for ``figure``: each chart's title and what its axes show.

    Every chart has a title (see :func:`finish`), so untitled axes are colour bars: their label
    is said as the colour scale of the chart before.
    """
    parts = []
    for ax in figure.axes:
        title = " ".join(t for t in (ax.get_title(loc=where) for where in ("left", "center", "right")) if t)
        labels = [(name, label) for name, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())) if label]
        if title:
            parts.append(title + (f" ({'; '.join(f'{n}: {v}' for n, v in labels)})" if labels else ""))
        elif labels and parts:
            parts[-1] += "; " + i18n.t("report.colour", label=labels[0][1])
    return ". ".join(parts) or i18n.t("report.chart")
