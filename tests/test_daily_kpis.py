"""The daily report (日报): N-day retention of each day's new users and the KPI cards, worked out by hand."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from userops_lib import i18n, narrative
from userops_lib.analyses import overview
from userops_lib.data import load_dataset

from .conftest import DATA

Z = 1.959963984540054


def _wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * np.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


@pytest.fixture(scope="module")
def tiny():
    """Snapshot 10 Jan 00:00. a and b are new on 1 Jan (b at 23:00, back at 00:30: the next calendar day);
    c on 2 Jan, back on day 7 (9 Jan, which ends exactly at the snapshot); d on 3 Jan, back the next day;
    e on 9 Jan, whose next day (10 Jan) has not passed."""
    rows = [
        ("a", "2024-01-01 10:00", 0),
        ("a", "2024-01-02 09:00", 0),
        ("a", "2024-01-08 12:00", 4.0),
        ("b", "2024-01-01 23:00", 0),
        ("b", "2024-01-02 00:30", 0),
        ("b", "2024-01-03 08:00", 2.0),
        ("c", "2024-01-02 08:00", 0),
        ("c", "2024-01-09 20:00", 0),
        ("d", "2024-01-03 08:00", 0),
        ("d", "2024-01-04 08:00", 0),
        ("e", "2024-01-09 10:00", 0),
    ]
    events = pd.DataFrame(rows, columns=["user_id", "event_at", "revenue"]).assign(
        event_at=lambda f: pd.to_datetime(f.event_at)
    )
    ds = load_dataset({"events": events}, snapshot_at=dt.datetime(2024, 1, 10))
    return overview.run(ds, overview.Params(period="day"))


def test_n_day_retention_counts_exactly_the_nth_calendar_day(tiny):
    daily = tiny.frames["daily"].set_index("day")
    jan = lambda d: pd.Timestamp(f"2024-01-{d:02d}")  # noqa: E731
    assert daily.loc[jan(1), ["new_users", "d1_users", "d7_users", "d30_users"]].tolist() == [2, 2, 1, 0]
    assert daily.loc[jan(2), ["new_users", "d1_users", "d7_users"]].tolist() == [1, 0, 1]
    assert daily.loc[jan(3), ["new_users", "d1_users", "d7_users"]].tolist() == [1, 1, 0]
    assert daily.loc[jan(1), "d1_retention"] == 1.0 and daily.loc[jan(1), "d7_retention"] == 0.5
    assert (daily.loc[jan(1), "d7_ci_low"], daily.loc[jan(1), "d7_ci_high"]) == pytest.approx(_wilson(1, 2))
    # 9 Jan + 7 days ended exactly at the snapshot: complete. 3 Jan's day 7 (10 Jan) has not passed.
    assert daily.loc[jan(2), "d7_complete"] and daily.loc[jan(2), "d7_retention"] == 1.0
    assert not daily.loc[jan(3), "d7_complete"] and np.isnan(daily.loc[jan(3), "d7_retention"])


def test_a_day_whose_nth_day_is_still_to_come_is_never_a_drop(tiny):
    daily = tiny.frames["daily"].set_index("day")
    e_day = daily.loc[pd.Timestamp("2024-01-09")]
    assert e_day.new_users == 1 and e_day.d1_users == 0
    assert not e_day.d1_complete and np.isnan(e_day.d1_retention) and np.isnan(e_day.d1_ci_low)
    assert daily.d30_retention.isna().all()  # nobody's 30th day has passed


def test_kpi_cards_use_the_last_complete_period_and_compare_with_the_one_before(tiny):
    cards = tiny.frames["kpis"].set_index("kpi")
    # 9 Jan is the last complete day: e is its one new user; 8 Jan had none (no relative change from 0).
    assert cards.loc["new_users", "value"] == 1 and cards.loc["new_users", "previous"] == 0
    assert np.isnan(cards.loc["new_users", "change"])
    assert cards.loc["new_users", "period_start"] == pd.Timestamp("2024-01-09")
    # Next-day retention: 9 Jan's day 1 has not passed, so the card is 3 Jan (d: 1 of 1) against 2 Jan (c: 0 of 1).
    d1 = cards.loc["d1_retention"]
    assert d1.period_start == pd.Timestamp("2024-01-03")
    assert (d1.value, d1.previous, d1.change, d1.change_unit) == (1.0, 0.0, 1.0, "points")
    assert (d1.ci_low, d1.ci_high) == pytest.approx(_wilson(1, 1))
    assert d1.n == 1  # d alone is new on 3 Jan
    # Nobody's 30th day has passed: the card says so instead of vanishing.
    assert cards.loc["d30_retention", "n"] == 0 and np.isnan(cards.loc["d30_retention", "value"])
    # 周同比: 9 Jan against 2 Jan. New users 1 (e) against 1 (c); DAU 2 (c, e) against 3 (a, b, c).
    assert (cards.loc["new_users", "week_before"], cards.loc["new_users", "change_week"]) == (1, 0)
    assert cards.loc["dau", "week_before"] == 3 and cards.loc["dau", "change_week"] == pytest.approx(2 / 3 - 1)
    # Paying rate on 8 Jan's... the last complete day (9 Jan): c and e active, nobody paid.
    assert cards.loc["paying_share", "value"] == 0.0 and cards.loc["dau", "value"] == 2
    assert "mau" not in cards.index  # the data covers fewer than 30 days


def test_the_cards_read_in_both_languages(tiny):
    with i18n.language("en"):
        heading, cards = tiny.kpi_cards()
        assert heading == (
            "Daily report: 9 Jan 2024, against the day before (day on day) and the same weekday a week earlier "
            "(week on week)"
        )
        assert (
            "next-day retention",
            "100.0%",
            "cohort 3 Jan 2024: 1 new user; +100.0 pts on the day before; 95% CI 20.7–100.0%",
        ) in cards
        assert ("30-day retention", "n/a", "no recent day with new users whose day 30 has passed") in cards
        assert ("new users", "1", "+0.0% on the same weekday a week earlier") in cards
    with i18n.language("zh"):
        heading, cards = tiny.kpi_cards()
        assert heading == "日报：2024年1月9日，对比前一日（日环比）与上周同日（周同比）"
        assert (
            "次日留存率",
            "100.0%",
            "2024年1月3日的 1 位新增用户；较前一日 +100.0 个百分点；95% 置信区间 20.7–100.0%",
        ) in cards
        labels = [label for label, _, _ in cards]
        assert "次日留存率" in labels and "新增用户" in labels


def test_weekly_cards_pool_the_weeks_new_users():
    """Two full weeks of sign-ups, 7 users a day: in the week of 1 Jan 14 of 49 came back the next day, in the
    week of 8 Jan 21 of 49; the pooled card is 21/49 against 14/49."""
    rows = []
    for day in range(14):
        for i in range(7):
            user = f"u{day}-{i}"
            start = pd.Timestamp("2024-01-01") + pd.Timedelta(days=day, hours=9)
            rows.append((user, start))
            if i < (2 if day < 7 else 3):
                rows.append((user, start + pd.Timedelta(days=1)))
    events = pd.DataFrame(rows, columns=["user_id", "event_at"])
    ds = load_dataset({"events": events}, snapshot_at=dt.datetime(2024, 1, 16))
    cards = overview.run(ds, overview.Params(period="week")).frames["kpis"].set_index("kpi")
    d1 = cards.loc["d1_retention"]
    assert d1.period_start == pd.Timestamp("2024-01-08")
    assert d1.value == pytest.approx(21 / 49) and d1.previous == pytest.approx(14 / 49)
    assert (d1.ci_low, d1.ci_high) == pytest.approx(_wilson(21, 49))
    assert cards.loc["new_users", "value"] == 49 and cards.loc["new_users", "change"] == 0
    assert d1.n == 49 and cards.week_before.isna().all()  # 周同比 belongs to a daily report


@pytest.mark.slow
@pytest.mark.parametrize("period", ["day", "week", "month"])
@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_kpi_has_one_value_on_the_page(period, language):
    """The tiles and the cards show MAU, stickiness and ARPU: the same value for the same period (the sample
    once showed MAU 4,882 beside 4,865 and ARPU $14.31 beside $4.36, told apart by small grey labels)."""
    from userops_lib.analyses.overview.text import period_label

    result = overview.run(load_dataset(DATA / "sample"), overview.Params(period=period))
    rows = result.frames["kpis"].set_index("kpi")
    with i18n.language(language):
        tiles = result.headlines
        cards = {label: value for label, value, _ in result.kpi_cards()[1]}
        for kpi in ("stickiness", "mau", "arpu"):
            label = i18n.t(f"overview.tile.{kpi}_in", period=period_label(period, rows.loc[kpi, "period_start"]))
            [tile] = [value for text, value in tiles if text.startswith(label)]
            assert tile == cards[i18n.t(f"overview.card.{kpi}")], kpi
        # the findings speak of the same period, with the same values (the activity sentence named the last
        # complete day's MAU 4,882 under the week's card of 4,865)
        text = " ".join(result.findings)
        for kpi in ("mau", "stickiness"):
            assert cards[i18n.t(f"overview.card.{kpi}")] in text, kpi
        daily = result.frames["active_users"]
        last_day_mau = narrative.spoken(daily[daily.mau_complete].mau.iloc[-1])
        assert last_day_mau == cards[i18n.t("overview.card.mau")] or last_day_mau not in text


def test_stickiness_before_its_window_fills_is_flagged(tiny):
    """On the data's first days MAU counts a few days only, so DAU/MAU reads near 1: flagged, never a card."""
    daily = tiny.frames["daily"].set_index("day")
    assert daily.loc[pd.Timestamp("2024-01-01"), "stickiness"] == 1.0
    assert not daily.stickiness_complete.any()  # the tiny log covers 9 days, fewer than MAU's 30
    assert "stickiness" not in tiny.frames["kpis"].kpi.tolist()
