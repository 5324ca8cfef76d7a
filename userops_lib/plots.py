"""One look for every chart: the seaborn theme, and helpers that insist on titles, labels and units."""

from __future__ import annotations

import math
import re
import unicodedata

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
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


def _fewest_decimals(values, scale: float, most: int = 4) -> int:
    """The fewest decimals (up to ``most``) at which every ``value * scale`` is written exactly and no two
    neighbours read the same: 2.5% is never printed '2%', and 10.5% beside 11% never both read '11%'."""
    scaled = [v * scale for v in values if np.isfinite(v)]
    for digits in range(most + 1):
        texts = [f"{v:.{digits}f}" for v in scaled]
        exact = all(math.isclose(float(t), v, rel_tol=1e-9, abs_tol=1e-9) for t, v in zip(texts, scaled, strict=True))
        if exact and all(a != b for a, b in zip(texts, texts[1:], strict=False)):
            return digits
    return most


class Percent(mticker.Formatter):
    """Shares (0.025) as percent ticks with as many decimals as the ticks need ('2.5%'), never fewer."""

    numeric = True  # a tick label that states its tick's value (the tick-label test reads it back)

    def __init__(self) -> None:
        self.decimals = 0

    def format_ticks(self, values):
        self.decimals = _fewest_decimals(values, 100)
        return [self(value) for value in values]

    def __call__(self, x, pos=None) -> str:
        return f"{x * 100:.{self.decimals}f}%"


def percent_axis(axis) -> None:
    """Percent ticks on ``axis`` (``ax.xaxis`` or ``ax.yaxis``, or a colour bar's)."""
    axis.set_major_formatter(Percent())


class _Plain(mticker.Formatter):
    """Plain numbers with thousands separators and the decimals the ticks need (0.6, 0.8, 1, 2, 1,000)."""

    numeric = True

    def format_ticks(self, values):
        out = []
        for value in values:
            digits = _fewest_decimals([value], 1, most=6)
            out.append(f"{value:,.{digits}f}")
        return out

    def __call__(self, x, pos=None) -> str:
        return self.format_ticks([x])[0]


class _ReadableLogLocator(mticker.Locator):
    """Log-scale ticks a reader can use: decades, then 1-2-5, then every digit, then even steps, until at
    least three ticks fall in view (a hazard-ratio axis from 0.6 to 1.9 had the single tick '1')."""

    def __call__(self):
        low, high = sorted(self.axis.get_view_interval())
        return self.tick_values(low, high)

    def tick_values(self, vmin, vmax):
        vmin, vmax = max(min(vmin, vmax), 1e-300), max(vmin, vmax)
        for subs in ((1.0,), (1.0, 2.0, 5.0), tuple(np.arange(1.0, 10.0))):
            ticks = mticker.LogLocator(base=10, subs=subs).tick_values(vmin, vmax)
            if ((ticks >= vmin) & (ticks <= vmax)).sum() >= 3:
                return ticks
        return mticker.MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(vmin, vmax)


def log_axis(ax, which: str = "x") -> None:
    """A log scale whose ticks read as plain numbers (0.1, 1, 10) and are enough to read a value by:
    matplotlib's default log labels are TeX ('$10^{-1}$'), which the theme does not parse (text.parse_math
    is off so that data is never TeX), and a narrow range gets a single decade tick."""
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(_ReadableLogLocator())
    axis.set_major_formatter(_Plain())
    axis.set_minor_formatter(mticker.NullFormatter())


def _columns(text: str) -> int:
    """Width in columns: a CJK character takes two, as it is drawn about twice as wide."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(text: str, columns: int) -> str:
    """``text`` in lines of at most ``columns`` (CJK counted double), broken at spaces, or between CJK
    characters, never inside a word."""
    lines, line = [], ""
    for token in re.findall(
        r"\s+|[\u2e80-\u9fff\uac00-\ud7af\uff00-\uffef]|[^\s\u2e80-\u9fff\uac00-\ud7af\uff00-\uffef]+", text
    ):
        if line and _columns(line + token) > columns and not token.isspace():
            lines.append(line.rstrip())
            line = ""
        if not (token.isspace() and not line):
            line += token
    lines.append(line.rstrip())
    return "\n".join(lines)


def finish(ax, *, title: str, xlabel: str, ylabel: str, percent: bool = False, legend: bool | None = None):
    """Set the title and axis labels (with units) every chart must have; a title longer than the figure is
    wide is wrapped, never cut off at the figure's edge."""
    if not title or not xlabel or not ylabel:
        raise ValueError("every chart needs a title and both axis labels")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if percent:
        percent_axis(ax.yaxis)
    if legend is False and ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.figure.tight_layout()
    # the title starts at the axes' left edge: wrapped to the axes' width (about 9.5 columns per inch at the
    # theme's 13-point bold title), then laid out again
    columns = max(16, int(ax.get_position().width * ax.figure.get_figwidth() * 9.5))
    if _columns(title) > columns:
        ax.set_title(wrap(title, columns))
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
