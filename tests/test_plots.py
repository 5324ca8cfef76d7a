"""Charts: text from data and numbers on log axes are drawn as text, never as TeX."""

import matplotlib.pyplot as plt

from tests.conftest import DATA
from userops_lib import churn_survival as survival
from userops_lib import plots
from userops_lib import segment_profiling as segments
from userops_lib.data import load_dataset


def _texts(figure) -> list[str]:
    """Every tick label, title and axis label, as drawn (the canvas is drawn first: ticks are made then)."""
    figure.canvas.draw()
    out = []
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            out += [t.get_text() for t in axis.get_ticklabels(which="both")]
        out += [ax.get_title(loc="left"), ax.get_xlabel(), ax.get_ylabel()]
    return [t for t in out if t]


def test_log_axes_read_as_plain_numbers_not_tex():
    """With mathtext off (so that '$' in data is text) the default log ticks showed '$\\mathdefault{10^{-1}}$'."""
    plots.apply_theme()
    telco = survival.analyse(load_dataset(DATA / "telco_churn"), segment_by="Contract")
    forest = next(c for c in telco.charts() if c.name == "forest").draw().figure
    scatter = segments.analyse(load_dataset(DATA / "sample")).plot_users(points=500).figure
    for figure in (forest, scatter):
        texts = _texts(figure)
        assert texts and not [t for t in texts if "mathdefault" in t or "^{" in t], texts
    assert {"0.1", "1"} <= set(_texts(forest))
    plt.close("all")


def test_a_dollar_in_a_label_is_drawn_as_written():
    plots.apply_theme()
    figure, ax = plt.subplots()
    ax.bar(["$5 off $6", "{unknown}"], [1, 2])
    plots.finish(ax, title="Spend by offer ($)", xlabel="offer", ylabel="users")
    assert {"$5 off $6", "{unknown}", "Spend by offer ($)"} <= set(_texts(figure))
    plt.close("all")
