"""Cohort retention: hand-worked cells in every mode, the synthetic truth, and a real log against SQL."""

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from tests.conftest import DATA
from userops_lib import narrative
from userops_lib.analyses import cohort_retention as cohorts
from userops_lib.data import load_dataset
from userops_lib.errors import DataError
from userops_lib.synth import implied_retention

# Twelve users; day numbers from 2024-01-01; the snapshot is the end of day 10.
DAYS = {
    1: [0, 1, 2, 5],
    2: [0, 3],
    3: [0],
    4: [0, 1, 7],
    5: [1, 2],
    6: [1, 4, 9],
    7: [1],
    8: [2, 3, 4],
    9: [2, 8],
    10: [5, 6],
    11: [9],
    12: [10],
}
REVENUE = {(1, 2): 10.0, (1, 5): 4.0, (4, 7): 5.0, (6, 4): 20.0, (9, 8): 8.0}


@pytest.fixture(scope="module")
def dozen():
    rows = [
        {
            "user_id": u,
            "event_at": pd.Timestamp("2024-01-01") + pd.Timedelta(days=d, hours=9),
            "revenue": REVENUE.get((u, d), 0.0),
        }
        for u, days in DAYS.items()
        for d in days
    ]
    return load_dataset({"events": pd.DataFrame(rows)}, snapshot_at="2024-01-12")


def _matrix(result) -> dict:
    cells = result.cells
    return {
        (int(c.day) - 1, int(k)): (None if pd.isna(a) else int(a))
        for c, k, a in zip(cells.cohort, cells.period, cells.active_users, strict=True)
    }


# Worked out by hand from DAYS: cohort day -> active users per period (None: not yet reached).
ON = {
    0: [4, 2, 1, 1, 0, 1, 0, 1, 0, 0, 0],
    1: [3, 1, 0, 1, 0, 0, 0, 0, 1, 0, None],
    2: [2, 1, 1, 0, 0, 0, 1, 0, 0, None, None],
    5: [1, 1, 0, 0, 0, 0] + [None] * 5,
    9: [1, 0] + [None] * 9,
    10: [1] + [None] * 10,
}
ON_OR_AFTER = {
    0: [4, 3, 3, 3, 2, 2, 1, 1, 0, 0, 0],
    1: [3, 2, 1, 1, 1, 1, 1, 1, 1, 0, None],
    2: [2, 2, 2, 1, 1, 1, 1, 0, 0, None, None],
    5: [1, 1, 0, 0, 0, 0] + [None] * 5,
    9: [1, 0] + [None] * 9,
    10: [1] + [None] * 10,
}
BRACKETS = {0: [3, 2, 0], 1: [2, 0, None], 2: [1, 1, None], 5: [1, None, None], 9: [None] * 3, 10: [None] * 3}


def _expected(table) -> dict:
    return {(c, k): v for c, values in table.items() for k, v in enumerate(values)}


def test_every_cell_in_mode_on(dozen):
    result = cohorts.run(dozen, cohorts.Params(period="day", mode="on"))
    assert _matrix(result) == _expected(ON)
    sizes = result.cells.groupby("cohort").cohort_size.first().tolist()
    assert sizes == [4, 3, 2, 1, 1, 1]


def test_every_cell_in_mode_on_or_after(dozen):
    assert _matrix(cohorts.run(dozen, cohorts.Params(period="day", mode="on_or_after"))) == _expected(ON_OR_AFTER)


def test_every_cell_in_bracket_mode(dozen):
    result = cohorts.run(dozen, cohorts.Params(period="day", mode="brackets", brackets=["1-3", "4-7", "8-10"]))
    assert _matrix(result) == _expected(BRACKETS)
    assert result.text.label(result, 1) == "days 4–7"


def test_the_average_pools_only_cohorts_that_reached_the_period(dozen):
    average = cohorts.run(dozen, cohorts.Params(period="day")).average.set_index("period")
    assert (average.loc[1, "cohorts"], average.loc[1, "users"], average.loc[1, "active_users"]) == (5, 11, 5)
    assert (average.loc[6, "cohorts"], average.loc[6, "users"], average.loc[6, "active_users"]) == (3, 9, 1)
    assert average.loc[6, "retention"] == pytest.approx(1 / 9)
    # Wilson 95% for 1 of 9, from the formula.
    z, n, p = 1.959963984540054, 9, 1 / 9
    centre, half = (
        (p + z * z / (2 * n)) / (1 + z * z / n),
        z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n),
    )
    assert average.loc[6, "ci_low"] == pytest.approx(centre - half)
    assert average.loc[6, "ci_high"] == pytest.approx(centre + half)


def test_value_retention_and_ltv_by_hand(dozen):
    result = cohorts.run(dozen, cohorts.Params(period="day"))
    value = result.value.set_index(["cohort", "period"])
    first = pd.Timestamp("2024-01-01")
    assert value.loc[(first, 2), "revenue_per_member"] == pytest.approx(10 / 4)
    # User 1 pays 10 on day 2 and 4 on day 5; user 4 pays 5 on day 7.
    assert value.loc[(first, 4), "cumulative_revenue_per_member"] == pytest.approx(10 / 4)
    assert value.loc[(first, 5), "cumulative_revenue_per_member"] == pytest.approx(14 / 4)
    assert value.loc[(first, 7), "cumulative_revenue_per_member"] == pytest.approx(19 / 4)
    ltv = result.ltv.set_index("period")
    # The curve follows the same cohorts at every period: those that reached day 9, the longest period reached
    # by cohorts holding half the members (days 0 and 1: 7 of 12; day 10 is reached by 4 of 12 only).
    assert ltv.index.tolist() == list(range(10))
    assert (ltv.users == 7).all() and (ltv.cohorts == 2).all()
    assert ltv.ltv.is_monotonic_increasing
    # Users 1-7: user 1 pays 10 on day 2 (k=2) and 4 on day 5; user 6 (cohort day 1) 20 on day 4 (k=3);
    # user 4 pays 5 on day 7.
    for k, per_user in ((3, [10, 0, 0, 0, 0, 20, 0]), (5, [14, 0, 0, 0, 0, 20, 0]), (9, [14, 0, 0, 5, 0, 20, 0])):
        per_user = np.array(per_user, dtype=float)
        assert ltv.loc[k, "users"] == 7
        assert ltv.loc[k, "ltv"] == pytest.approx(per_user.mean())
        se = per_user.std(ddof=0) / np.sqrt(len(per_user))
        assert ltv.loc[k, "ci_high"] - ltv.loc[k, "ltv"] == pytest.approx(1.959963984540054 * se)


def test_recurring_cohorts_count_each_period_a_user_was_active(dozen):
    result = cohorts.run(dozen, cohorts.Params(period="day", cohort_type="recurring"))
    sizes = result.cells.groupby("cohort").cohort_size.first()
    # Users active on day 1: users 1, 4, 5, 6, 7.
    assert sizes[pd.Timestamp("2024-01-02")] == 5
    cells = result.cells.set_index(["cohort", "period"])
    # Of those, active on day 2: users 1 and 5.
    assert cells.loc[(pd.Timestamp("2024-01-02"), 1), "active_users"] == 2


def test_the_artifact_has_the_documented_columns(dozen):
    artifact = cohorts.run(dozen, cohorts.Params(period="day")).artifact()
    assert list(artifact.columns) == [
        "cohort",
        "period",
        "cohort_size",
        "active_users",
        "retention",
        "ci_low",
        "ci_high",
    ]
    assert artifact.cohort.iloc[0] == "2024-01-01"
    censored = artifact[(artifact.cohort == "2024-01-11") & (artifact.period == 1)]
    assert censored.retention.isna().all() and censored.active_users.isna().all()


@pytest.mark.slow
@pytest.mark.parametrize(("period", "periods"), [("day", [1, 2, 7, 14, 30, 60, 90]), ("week", [1, 2, 4, 8, 12, 20])])
def test_the_synthetic_curve_matches_the_truth(period, periods):
    truth = json.loads((DATA / "sample" / "truth.json").read_text())
    # Family-wise 95%: each of the m points at level 1 - 0.05/m.
    alpha = 0.05 / len(periods)
    result = cohorts.run(load_dataset(DATA / "sample"), cohorts.Params(period=period, alpha=alpha))
    average = result.average.set_index("period")
    implied = implied_retention(truth, period=period, periods=periods)
    for k in periods:
        assert average.loc[k, "ci_low"] <= implied[k] <= average.loc[k, "ci_high"], (period, k)


@pytest.mark.slow
def test_groups_differ_in_the_direction_of_their_true_hazards():
    result = cohorts.run(load_dataset(DATA / "sample"), cohorts.Params(period="week", cohort_by="channel"))
    at_12 = result.comparisons[result.comparisons.period == 12].set_index("group")
    assert result.comparisons.reference.iloc[0] == "organic"  # the largest channel
    # Truth: social (HR 1.8) and paid_search (1.5) churn faster than organic, referral (0.7) slower.
    assert at_12.loc["social", "difference"] < 0 and at_12.loc["social", "significant"]
    assert at_12.loc["paid_search", "difference"] < 0 and at_12.loc["paid_search", "significant"]
    assert at_12.loc["referral", "difference"] > 0
    assert (result.comparisons.p_adjusted >= result.comparisons.p_value).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"period": "year"}, "'period' must be one of: day, week, month"),
        ({"mode": "brackets", "brackets": ["4-7", "1-3"]}, "in order, not overlapping"),
        ({"cohort_by": "shoe_size"}, "no user attribute 'shoe_size'"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(DataError, match=message):
        cohorts.run(load_dataset(DATA / "sample"), cohorts.Params(**kwargs))


def test_parse_brackets():
    assert cohorts.parse_brackets(["1-3", "4–7", "8"]) == [(1, 3), (4, 7), (8, 8)]
    with pytest.raises(DataError, match="not a range"):
        cohorts.parse_brackets(["soon"])


@pytest.mark.slow
def test_a_real_transaction_log_matches_independent_sql(cdnow):
    ds = load_dataset(cdnow)
    assert ds.events.count().execute() == 69_659
    assert ds.quality.users == 23_570
    result = cohorts.run(ds, cohorts.Params(period="month"))
    sql = """
        WITH raw AS (
            SELECT string_split(trim(regexp_replace(line, '\\s+', ' ', 'g')), ' ') AS f
            FROM read_csv(?, columns = {'line': 'VARCHAR'}, header = true, delim = '|', quote = '', auto_detect = false)
        ), tx AS (
            SELECT CAST(f[1] AS BIGINT) AS customer, strptime(f[2], '%Y%m%d') AS day, CAST(f[4] AS DOUBLE) AS amount
            FROM raw
        ), first_month AS (
            SELECT customer, date_trunc('month', min(day)) AS cohort FROM tx GROUP BY customer
        ), months AS (
            SELECT DISTINCT customer, date_trunc('month', day) AS month FROM tx
        )
        SELECT f.cohort, (year(m.month) * 12 + month(m.month)) - (year(f.cohort) * 12 + month(f.cohort)) AS period,
               count(*) AS active_users
        FROM first_month f JOIN months m USING (customer)
        GROUP BY ALL ORDER BY ALL
    """
    expected = duckdb.execute(sql, [str(cdnow / "CDNOW_master.txt")]).df()
    measured = result.cells.dropna(subset=["active_users"])
    merged = measured.merge(expected, on=["cohort", "period"], how="outer", suffixes=("", "_sql"))
    # Every observed cell equals SQL; SQL has no cell beyond the snapshot (1998-07-01) that we show.
    observed = merged.dropna(subset=["active_users"])
    # First purchases fall in Jan-Mar 1997; up to June 1998 those cohorts reach 18, 17 and 16 months.
    assert len(observed) == 18 + 17 + 16
    assert (observed.active_users.astype(int) == observed.active_users_sql.astype(int)).all()
    sizes = result.cells.groupby("cohort").cohort_size.first()
    assert sizes.sum() == 23_570
    revenue = duckdb.execute(
        """
        SELECT sum(CAST(string_split(trim(regexp_replace(line, '\\s+', ' ', 'g')), ' ')[4] AS DOUBLE))
        FROM read_csv(?, columns = {'line': 'VARCHAR'}, header = true, delim = '|', quote = '', auto_detect = false)
    """,
        [str(cdnow / "CDNOW_master.txt")],
    ).fetchone()[0]
    value = result.value.dropna(subset=["revenue"])
    assert value.revenue.sum() == pytest.approx(revenue, rel=1e-9)


@pytest.mark.slow
def test_cumulative_ltv_never_falls_and_its_headline_says_how_many_users_it_rests_on():
    """Each point pooled whoever reached it, so the curve fell ($96 -> $72) and the headline rested on one
    cohort of 126 users; now every point follows the same cohorts, half the members or more."""
    result = cohorts.run(load_dataset(DATA / "sample"), cohorts.Params(period="week", cohort_by="channel"))
    members = result.cells.groupby(["group_value", "cohort"]).cohort_size.first().sum()
    for _, curve in result.ltv.groupby("group_value"):
        assert curve.ltv.is_monotonic_increasing
        assert curve.users.nunique() == 1 and curve.cohorts.nunique() == 1
    assert result.ltv.groupby("group_value").users.first().sum() >= 0.5 * members
    sentence = next(f for f in result.findings if f.startswith("Revenue per cohort member"))
    assert f"over the {result.ltv.groupby('group_value').users.first().max():,} members" in sentence


def test_alpha_is_carried_through_cells_averages_findings_and_definitions(dozen):
    """retention(alpha=0.01) returned 99% averages but 95% cells and findings that said '95%'."""
    result = cohorts.run(dozen, cohorts.Params(period="day", alpha=0.01))
    cell = result.cells[(result.cells.period == 1) & result.cells.active_users.notna()].iloc[0]
    low, high = proportion_confint(int(cell.active_users), int(cell.cohort_size), alpha=0.01, method="wilson")
    assert (cell.ci_low, cell.ci_high) == pytest.approx((low, high))
    assert result.level == 0.01 and narrative.level(result.level) == "99%"
    assert any("(99% CI" in f for f in result.findings)
    assert not any("95%" in f for f in result.findings)
    assert any("99% Wilson" in d for d in result.definitions)
    average = result.average.set_index("period").loc[1]
    assert (average.ci_low, average.ci_high) == pytest.approx(
        proportion_confint(int(average.active_users), int(average.users), alpha=0.01, method="wilson")
    )


def test_the_heat_map_writes_each_cell_and_does_not_colour_tiny_cohorts():
    """The heat map had no numbers in its cells at 26 periods and drew a cohort of 2 users (1 back: 50%)
    darker than a cohort of 40: every cell now carries its percentage, and a cohort under 30 users is
    written in grey on white, not coloured."""
    import matplotlib.pyplot as plt

    from userops_lib import plots
    from userops_lib.analyses.cohort_retention import charts as charts

    day = pd.Timestamp("2025-01-06")  # a Monday
    rows = [(f"a{i}", day) for i in range(40)] + [(f"a{i}", day + pd.Timedelta(days=7)) for i in range(10)]
    rows += [
        ("b0", day + pd.Timedelta(days=7)),
        ("b1", day + pd.Timedelta(days=7)),
        ("b0", day + pd.Timedelta(days=14)),
    ]
    log = pd.DataFrame(rows, columns=["user_id", "event_at"]).assign(event="open")
    result = cohorts.run(load_dataset({"events": log}, snapshot_at="2025-02-03"), cohorts.Params(period="week"))
    plots.apply_theme()
    ax = charts.heatmap(result)
    mesh = ax.collections[0].get_array()
    texts = [text.get_text() for text in ax.texts]
    assert "25" in texts and "50" in texts  # week 1 of the big cohort (10 of 40), of the small one (1 of 2)
    grid = np.ma.asarray(mesh).reshape(len(ax.get_yticks()), -1)  # cohorts x periods, as drawn
    assert not np.ma.is_masked(grid[0, 1]) and np.ma.is_masked(grid[1, 1])  # the small cohort is not coloured
    grey = [text for text in ax.texts if text.get_text() == "50"]
    assert grey and grey[0].get_color() == "#888"
    plt.close("all")


@pytest.mark.parametrize(("a", "n", "b", "m"), [(0, 40, 0, 25), (40, 40, 25, 25), (3, 40, 9, 25), (30, 40, 9, 25)])
def test_two_groups_compared_get_a_p_value_even_when_both_are_all_or_nothing(a, n, b, m):
    """Groups whose retention is 0% (or 100%) in both: the pooled z statistic is 0/0; the proportions are
    identical, so p = 1 (Fisher's exact test says the same), never NaN and no warning. Otherwise statsmodels'."""
    import warnings

    from scipy.stats import fisher_exact
    from statsmodels.stats.proportion import proportions_ztest

    from userops_lib.proportions import two_sample_p

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = two_sample_p(a, n, b, m)
    if a + b in (0, n + m):
        assert got == 1.0 == fisher_exact([[a, n - a], [b, m - b]])[1]
    else:
        assert got == pytest.approx(proportions_ztest(np.array([a, b]), np.array([n, m]))[1], rel=1e-12)
        assert 0 < got < 1
