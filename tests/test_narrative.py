"""What people read: table numbers and headers, headline tiles with their change, plain-words headlines."""

import pandas as pd
import pytest

from tests.conftest import DATA
from userops_lib import narrative
from userops_lib.analyses import overview
from userops_lib.analyses.overview.text import change_text
from userops_lib.data import load_dataset


def test_table_numbers_read_as_numbers_and_headers_as_words():
    frame = pd.DataFrame(
        {
            "share_of_users": [0.0123],
            "revenue_total": [21310.4],
            "arpu": [3.14159],
            "p_value": [1.4e-278],
            "users": [12.0],
        }
    )
    html = narrative.table_html(frame)
    assert "2.131e+04" not in html and "21,310" in html
    assert "3.14<" in html and "0.0123" in html and "1.4e-278" in html
    assert "share of users" in html and "share_of_users" not in html
    assert narrative.number(float("inf")) == "∞" and narrative.number(float("nan")) == "–"


@pytest.mark.slow
def test_headline_tiles_say_the_change_on_the_period_before():
    """By hand: MAU 100 thirty rows before the last value 110 is +10.0%; ARPU 20 then 15 is -25.0%."""
    assert change_text(pd.Series([100.0] + [0.0] * 29 + [110.0]), 30, "30 days before") == "+10.0% on 30 days before"
    assert change_text(pd.Series([20.0, 15.0]), 1, "the month before") == "-25.0% on the month before"
    assert change_text(pd.Series([15.0]), 1, "the month before") == ""  # nothing to compare with
    labels = [label for label, _ in overview.run(load_dataset(DATA / "sample"), overview.Params()).headlines]
    # With cards, a tile names the cards' period and their change (one value per KPI on a page).
    assert "MAU, week of 22 Dec 2025 (+1.2% on the week before)" in labels
    assert "ARPU, week of 22 Dec 2025 (+8.3% on the week before)" in labels


def test_p_values_below_a_thousandth_are_not_zero_and_counts_have_separators():
    assert narrative.p_value(0.0) == "p < 0.001" and narrative.p_value(1.3e-250) == "p < 0.001"
    assert narrative.p_value(0.0123) == "p = 0.012" and narrative.p_value(0.4, "adjusted p") == "adjusted p = 0.4"
    html = narrative.table_html(pd.DataFrame({"users": [5137, 12], "active": pd.array([9906, None], dtype="Int64")}))
    assert "5,137" in html and "9,906" in html and "–" in html
    assert "nan" not in html and "9,906.0" not in html
    ids = narrative.table_html(pd.DataFrame({"user_id": [6498], "users": [6498]}))
    assert "<td>6498</td>" in ids and "<td>6,498</td>" in ids  # an identifier is not a count


@pytest.mark.slow
def test_every_analysis_says_the_level_it_was_run_at():
    """retention(alpha=0.01) said '95%' in its findings; survival and campaign results took alpha too and said
    '95%' whatever it was. Run at alpha 0.1, every interval they mention is a 90% one."""
    from userops_lib.analyses import campaign_uplift as targeting
    from userops_lib.analyses import churn_survival as survival

    telco = survival.run(load_dataset(DATA / "telco_churn"), survival.Params(segment_by="Contract", alpha=0.1))
    campaign = targeting.run(load_dataset(DATA / "sample"), targeting.Params(metrics=["converted"], alpha=0.1))
    for findings in (telco.findings, campaign.findings):
        text = " ".join(findings)
        assert "90% CI" in text and "95% CI" not in text

    def title(ax):
        return " ".join(ax.get_title(loc=where) for where in ("left", "center"))

    assert "90% bands" in title(next(c for c in telco.charts() if c.name == "km").draw())
    assert "(90% CI)" in title(next(c for c in campaign.charts() if c.name == "forest").draw())


def test_money_durations_and_labels_read_as_people_write_them():
    """One formatting layer for findings, tiles and tables: money to the cent only below 1,000 (a
    prediction of $491,078.36 is not known to the cent), 万/亿 in Chinese; times in min/h/d ('35 min', not
    '0.583 h'); the program's group label 'all' in words, or gone when it is the only group; dates in the
    reader's format, on footers and timestamps too."""
    import pandas as pd

    from userops_lib import i18n

    with i18n.language("en"):
        assert [narrative.money(v, "$") for v in (4.356, 1237.3, 491078.36)] == ["$4.36", "$1,237", "$491,078"]
        assert [narrative.duration(h) for h in (0.01, 0.583, 2.5, 60)] == ["< 1 min", "35 min", "2.5 h", "2.5 d"]
        table = narrative.table_html(pd.DataFrame({"group": ["all", "ios"], "users": [3, 1]}))
        assert "<td>all users</td>" in table and "<td>ios</td>" in table
        alone = narrative.table_html(pd.DataFrame({"group": ["all", "all"], "period": [0, 1]}))
        assert ">group<" not in alone
    with i18n.language("zh"):
        assert [narrative.money(v, "¥") for v in (4.356, 12000, 491078.36, 123456789)] == [
            "¥4.36",
            "¥1.2万",
            "¥49.1万",
            "¥1.2亿",
        ]
        assert narrative.duration(0.583) == "35 分钟"
        assert "<td>全部用户</td>" in narrative.table_html(pd.DataFrame({"group": ["all", "ios"]}))
        assert (
            narrative.timestamp(pd.Timestamp("2025-12-31 16:30", tz="UTC").to_pydatetime())
            == "2025年12月31日 16:30 UTC"
        )
