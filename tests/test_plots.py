"""Charts: text from data and numbers on log axes are drawn as text, never as TeX."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from tests.conftest import DATA
from userops_lib import analyses, plots
from userops_lib.analyses import churn_survival as survival
from userops_lib.analyses import segment_profiling as segments
from userops_lib.analyses.segment_profiling import charts as segment_charts
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


@pytest.mark.slow
def test_log_axes_read_as_plain_numbers_not_tex():
    """With mathtext off (so that '$' in data is text) the default log ticks showed '$\\mathdefault{10^{-1}}$'."""
    plots.apply_theme()
    telco = survival.run(load_dataset(DATA / "telco_churn"), survival.Params(segment_by="Contract"))
    forest = next(c for c in telco.charts() if c.name == "forest").draw().figure
    scatter = segment_charts.users(segments.run(load_dataset(DATA / "sample"), segments.Params()), points=500).figure
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


ANALYSES = analyses.names()  # every registered analysis


def _number(label: str) -> float | None:
    """A tick label read back as the value it states (None for names and dates)."""
    import re

    text = label.replace("\u2212", "-").replace(",", "").replace("$", "").replace("×", "").strip()
    share = text.endswith("%")
    text = text.rstrip("%").strip()
    if not re.fullmatch(r"[-+]?\d*\.?\d+(?:e[-+]?\d+)?", text):
        return None
    return float(text) / 100 if share else float(text)


def _tick_problems(ax) -> list[tuple]:
    import math

    import matplotlib.ticker as mticker

    problems = []
    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        low, high = sorted(axis.get_view_interval())
        ticks = [(t.get_loc(), t.label1.get_text()) for t in axis.get_major_ticks() if low <= t.get_loc() <= high]
        labels = [text for _, text in ticks if text]
        problems += [(name, "two equal neighbours", a) for a, b in zip(labels, labels[1:], strict=False) if a == b]
        formatter = axis.get_major_formatter()
        numeric = isinstance(formatter, (mticker.ScalarFormatter, mticker.PercentFormatter, mticker.LogFormatter))
        if not (numeric or getattr(formatter, "numeric", False)):
            continue  # names, dates, categories
        if len(labels) == 1:
            problems.append((name, "a single tick", labels[0]))
        for loc, text in ticks:
            value = _number(text)
            if value is not None and not math.isclose(value, loc, rel_tol=1e-6, abs_tol=1e-9):
                problems.append((name, "rounds its tick to another value", loc, text))
    return problems


@pytest.fixture(scope="module")
def sample_results():
    ds = load_dataset(DATA / "sample")
    return {a.name: a.run(ds, a.Params()) for a in analyses.every()}


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_tick_label_states_its_tick(sample_results, language):
    """Each chart of the sample's reports, drawn: no two neighbouring tick labels read the same, and no
    number label rounds its tick to another value (a 2.5% tick printed '2%'); a numeric axis has more than
    one tick (a hazard-ratio axis with the single tick '1'); no title runs off the figure (it wraps)."""
    from userops_lib import i18n

    plots.apply_theme()
    found = []
    with i18n.language(language):
        for name, result in sample_results.items():
            for chart in result.charts():
                drawn = chart.draw()
                drawn.figure.canvas.draw()
                found += [(name, chart.name, *p) for ax in drawn.figure.axes for p in _tick_problems(ax)]
                width = drawn.figure.bbox.width
                for ax in drawn.figure.axes:
                    for title in (ax._left_title, ax.title):  # the theme's titles sit left
                        if title.get_text() and title.get_window_extent().x1 > width + 1:
                            found.append((name, chart.name, "title cut off at the figure's edge", title.get_text()))
                plt.close("all")
    assert not found


def test_percent_ticks_keep_the_decimals_they_need():
    assert plots.Percent().format_ticks([0.0, 0.025, 0.05, 0.075]) == ["0.0%", "2.5%", "5.0%", "7.5%"]
    assert plots.Percent().format_ticks([0.1, 0.105, 0.11]) == ["10.0%", "10.5%", "11.0%"]
    assert plots.Percent().format_ticks([0.0, 0.2, 0.4]) == ["0%", "20%", "40%"]


def test_the_seven_day_retention_line_pools_the_week_with_its_interval():
    """The daily retention chart drew each day's rate from a few new users (a zigzag from 0% to 100%); its
    bold line is the week's pooled rate: returned ÷ new over the last 7 complete days, Wilson interval."""
    import pandas as pd
    from statsmodels.stats.proportion import proportion_confint

    from userops_lib.analyses.overview.charts import seven_day_retention

    days = pd.date_range("2025-03-01", periods=9, freq="D")
    frame = pd.DataFrame(
        {
            "day": days,
            "new_users": [10, 20, 5, 8, 12, 9, 6, 30, 4],
            "d1_users": [2, 5, 0, 8, 3, 1, 6, 9, 1],
            "d1_complete": [True] * 8 + [False],  # the last day's next day has not passed
        }
    )
    week = seven_day_retention(frame, 1, 0.05)
    assert week.day.tolist() == [days[6], days[7]]  # a full week of complete days behind each
    assert week.rate.iloc[0] == pytest.approx(25 / 70) and week.rate.iloc[1] == pytest.approx(32 / 90)
    assert (week.low.iloc[1], week.high.iloc[1]) == pytest.approx(proportion_confint(32, 90, 0.05, "wilson"))


@pytest.mark.slow
def test_artifacts_are_data_the_same_in_every_language(sample_results):
    """The CSV artifacts hold data, never the report's words: every analysis' tables are identical when the
    language is Chinese (a catalogue text in a table would differ)."""
    from userops_lib import i18n

    for name, result in sample_results.items():
        with i18n.language("en"):
            english = result.tables()
        with i18n.language("zh"):
            chinese = result.tables()
        assert english.keys() == chinese.keys(), name
        for table, frame in english.items():
            pd.testing.assert_frame_equal(frame, chinese[table], obj=f"{name}: {table}")
