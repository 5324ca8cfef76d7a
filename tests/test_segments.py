"""Segments: hand-worked scores and segments (ties included), a real log against SQL, the synthetic truth."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from userops_lib import topn
from userops_lib.analyses import segment_profiling as segments
from userops_lib.analyses.segment_profiling import charts as segment_charts
from userops_lib.analyses.segment_profiling import stats as segment_stats
from userops_lib.analyses.segment_profiling.text import validation_sentence
from userops_lib.data import load_dataset
from userops_lib.errors import DataError


def test_scores_by_average_rank_keep_ties_together():
    values = pd.Series([10, 20, 20, 30, 40, 40, 40, 50, 60, 70], dtype=float)
    # average ranks 1, 2.5, 2.5, 4, 6, 6, 6, 8, 9, 10 -> 1 + floor(5 (rank - 0.5) / 10)
    assert segments.scores(values).tolist() == [1, 2, 2, 2, 3, 3, 3, 4, 5, 5]
    # Reversed, the average ranks are 10, 8.5, 8.5, 7, 5, 5, 5, 3, 2, 1: not a mirror image of the above.
    assert segments.scores(values, reverse=True).tolist() == [5, 5, 5, 4, 3, 3, 3, 2, 1, 1]


def test_scores_on_skewed_few_valued_data():
    # Six one-time buyers, three two-time, one five-time: average ranks 3.5, 8 and 10.
    values = pd.Series([1] * 6 + [2] * 3 + [5], dtype=float)
    assert segments.scores(values).tolist() == [2] * 6 + [4] * 3 + [5]


def test_value_tiers_by_revenue_share():
    equal = pd.Series([10.0] * 10)
    assert segments.tiers(equal, high_share=0.2, mid_share=0.3).tolist() == ["high"] * 2 + ["mid"] * 3 + ["low"] * 5
    skewed = pd.Series([5.0, 50.0, 0.0, 30.0, 10.0, 5.0])
    # 50 alone is half of revenue: high. Everyone after it starts at 50% or more: low.
    assert segments.tiers(skewed, high_share=0.2, mid_share=0.3).tolist() == ["low", "high", "low", "low", "low", "low"]


@pytest.fixture(scope="module")
def shop():
    """Eight customers with purchases on known days; snapshot 2024-04-01 (day 91 from 1 Jan)."""
    day = pd.Timestamp("2024-01-01")
    buys = {
        "a": [(85, 100), (80, 100), (70, 100), (60, 100)],
        "b": [(88, 20)],
        "c": [(10, 300), (20, 300)],
        "d": [(40, 30), (45, 30)],
        "e": [(89, 15), (5, 15), (30, 15)],
        "f": [(2, 5)],
        "g": [(50, 60)],
        "h": [(75, 40), (76, 40)],
    }
    rows = [
        {"user_id": u, "event_at": day + pd.Timedelta(days=d, hours=12), "revenue": r}
        for u, items in buys.items()
        for d, r in items
    ]
    rows.append({"user_id": "i", "event_at": day + pd.Timedelta(days=89), "revenue": 0.0})  # visits, never buys
    return load_dataset({"events": pd.DataFrame(rows)}, snapshot_at="2024-04-01")


def test_rfm_features_scores_and_segments_by_hand(shop):
    users = segments.assign(segments.features(shop).execute()).set_index("user_id").sort_index()
    assert users.recency_days.drop("i").to_dict() == {
        "a": 6,
        "b": 3,
        "c": 71,
        "d": 46,
        "e": 2,
        "f": 89,
        "g": 41,
        "h": 15,
    }
    assert np.isnan(users.recency_days["i"])  # never bought
    assert users.frequency.to_dict() == {"a": 4, "b": 1, "c": 2, "d": 2, "e": 3, "f": 1, "g": 1, "h": 2, "i": 0}
    assert users.monetary.to_dict() == {"a": 400, "b": 20, "c": 600, "d": 60, "e": 45, "f": 5, "g": 60, "h": 80, "i": 0}
    # Eight buyers, score = 1 + floor(5 (rank - 0.5) / 8), so ranks 1..8 give scores 1 1 2 3 3 4 5 5.
    # Recency, most recent ranked highest: f 89 (1), c 71 (2), d 46 (3), g 41 (4), h 15 (5), a 6 (6), b 3 (7), e 2 (8).
    assert users.r_score.drop("i").to_dict() == {"f": 1, "c": 1, "d": 2, "g": 3, "h": 3, "a": 4, "b": 5, "e": 5}
    # Frequency 1 (b f g: average rank 2), 2 (c d h: rank 5), 3 (e: 7), 4 (a: 8).
    assert users.f_score.drop("i").to_dict() == {"b": 1, "f": 1, "g": 1, "c": 3, "d": 3, "h": 3, "e": 5, "a": 5}
    # Monetary 5 f (1), 20 b (2), 45 e (3), 60 and 60 d g (4.5 each), 80 h (6), 400 a (7), 600 c (8).
    assert users.m_score.drop("i").to_dict() == {"f": 1, "b": 1, "e": 2, "d": 3, "g": 3, "h": 4, "a": 5, "c": 5}
    assert (users.loc["i", ["r_score", "f_score", "m_score"]] == 0).all()
    # First match in DEFAULT_SEGMENTS: a 4/5/5 Champions; b 5/1/1 New; c 1/3/5 and d 2/3/3 At Risk;
    # e 5/5/2 Loyal (M too low for Champions); f 1/1/1 Lost; g 3/1/3 Need Attention; h 3/3/4 Loyal.
    assert users.rfm_segment.to_dict() == {
        "a": "Champions",
        "b": "New",
        "c": "At Risk",
        "d": "At Risk",
        "e": "Loyal",
        "f": "Lost",
        "g": "Need Attention",
        "h": "Loyal",
        "i": "No purchase",
    }


def test_the_default_map_names_every_score_combination():
    import itertools

    for r, f, m in itertools.product(range(1, 6), repeat=3):
        matched = [
            name
            for name, R, F, M, *_ in segments.DEFAULT_SEGMENTS
            if R[0] <= r <= R[1] and F[0] <= f <= F[1] and M[0] <= m <= M[1]
        ]
        assert matched, (r, f, m)


def test_lifecycle_stage_thresholds():
    frame = pd.DataFrame(
        {
            "user_id": list("abcde"),
            "recency_days": 1,
            "frequency": 1,
            "monetary": 1.0,
            "since_seen": [5, 5, 5, 40, 100],
            "age_days": [10, 100, 400, 400, 400],
        }
    )
    stages = segments.assign(frame).lifecycle_stage.tolist()
    assert stages == ["new", "active", "mature", "dormant", "churned"]


def test_lifecycle_counts_by_hand():
    monday = pd.Timestamp("2024-01-01")
    weeks = {"a": [0, 1, 2], "b": [0, 2], "c": [1], "d": [3]}
    rows = [{"user_id": u, "event_at": monday + pd.Timedelta(weeks=w, days=1)} for u, ws in weeks.items() for w in ws]
    ds = load_dataset({"events": pd.DataFrame(rows)}, snapshot_at="2024-01-29")
    counts = segments.lifecycle_counts(ds, period="week").set_index("period_start")
    w = [monday + pd.Timedelta(weeks=k) for k in range(5)]
    # week 0: a, b new. week 1: a returning, c new; b dormant. week 2: a returning, b resurrecting; c dormant.
    # week 3: d new; a and b dormant. week 4 (after the snapshot): d dormant.
    assert counts.loc[w[0], ["new", "returning", "resurrecting", "dormant"]].tolist() == [2, 0, 0, 0]
    assert counts.loc[w[1], ["new", "returning", "resurrecting", "dormant"]].tolist() == [1, 1, 0, 1]
    assert counts.loc[w[2], ["new", "returning", "resurrecting", "dormant"]].tolist() == [0, 1, 1, 1]
    assert counts.loc[w[3], ["new", "returning", "resurrecting", "dormant"]].tolist() == [1, 0, 0, 2]
    assert counts.loc[w[4], "dormant"] == 1
    assert bool(counts.loc[w[3], "complete"]) and not bool(counts.loc[w[4], "complete"])


@pytest.mark.slow
def test_a_real_log_matches_independent_sql_and_every_user_has_one_segment(cdnow):
    ds = load_dataset(cdnow)
    result = segments.run(ds, segments.Params())
    users = result.users.set_index("user_id").sort_index()
    assert users.index[0] == "00001"  # zero-padded ids are text; as numbers they sort the same way here
    users.index = users.index.astype("int64")
    sql = """
        WITH raw AS (
            SELECT string_split(trim(regexp_replace(line, '\\s+', ' ', 'g')), ' ') AS f
            FROM read_csv(?, columns = {'line': 'VARCHAR'}, header = true, delim = '|', quote = '', auto_detect = false)
        ), tx AS (
            SELECT CAST(f[1] AS BIGINT) AS customer, CAST(strptime(f[2], '%Y%m%d') AS DATE) AS day,
                   CAST(f[4] AS DOUBLE) AS amount FROM raw
        )
        SELECT customer,
               DATE '1998-07-01' - max(day) FILTER (WHERE amount > 0) AS recency_days,
               count(*) FILTER (WHERE amount > 0) AS frequency,
               sum(amount) AS monetary
        FROM tx GROUP BY customer ORDER BY customer
    """
    expected = duckdb.execute(sql, [str(cdnow / "CDNOW_master.txt")]).df().set_index("customer")
    assert len(users) == len(expected) == 23_570
    assert (users.frequency == expected.frequency).all()
    assert np.allclose(users.monetary, expected.monetary)
    buyers = expected.frequency > 0
    assert (users.recency_days[buyers] == expected.recency_days[buyers]).all()
    for column in ("rfm_segment", "value_tier", "lifecycle_stage"):
        assert users[column].notna().all() and (users[column] != "").all()
    assert users.index.is_unique
    assert set(users.rfm_segment) <= {s[0] for s in segments.DEFAULT_SEGMENTS} | {segments.OTHERS, segments.NO_PURCHASE}


@pytest.mark.slow
def test_high_value_users_reach_the_top_tier_at_the_rate_the_truth_implies(tmp_path):
    from userops_lib.synth_files import write_world

    def recall(folder):
        result = segments.run(load_dataset(folder), segments.Params())
        truth = pd.read_parquet(folder / "truth_users.parquet")
        merged = result.users.merge(truth, on="user_id")
        high = merged[merged.value_class == "high"]
        return (
            (high.value_tier == "high").mean(),
            len(high),
            (merged[merged.value_tier == "high"].value_class == "high").mean(),
        )

    observed, n, precision = recall(DATA / "sample")
    # What the truth implies, by simulating the same parameters with another seed and three times the users.
    implied, m, _ = recall(write_world(tmp_path / "reference", users=30_000, seed=2024))
    se = np.sqrt(implied * (1 - implied) / n + implied * (1 - implied) / m)
    assert abs(observed - implied) < 3 * se, (observed, implied)
    assert precision > 0.95  # the top tier is made of the generator's high-value users


@pytest.mark.slow
def test_profiles_migration_and_validation_on_the_sample():
    result = segments.run(load_dataset(DATA / "sample"), segments.Params())
    for name, frame in result.tables()["segment_profile"].groupby("segmentation"):
        assert frame.users.sum() == 10_000, name
        assert frame.share_of_users.sum() == pytest.approx(1.0)
        said = result.text.described(result, name, frame)  # the page says who each segment is and what to do
        assert (said.suggested_action != "").all() and (said.description != "").all()
    migration = result.migration
    assert np.allclose(migration.groupby("from_segment").share_of_from.sum(), 1.0)
    validation = result.validation.set_index("segment")
    # Champions spend more in the next period than the lapsed, and churn less.
    assert validation.loc["Champions", "revenue_next_per_user"] > validation.loc["Hibernating", "revenue_next_per_user"]
    assert validation.loc["Champions", "churn_next"] < validation.loc["Hibernating", "churn_next"]
    assert result.validation_tests["revenue_kruskal_p"] < 1e-6


def test_breakdowns_keep_the_top_values_and_pool_the_rest():
    values = pd.Series(["a"] * 5 + ["b"] * 3 + ["c", "d", None])
    folded = topn.fold_values(values, 2)
    assert folded.value_counts().to_dict() == {"a": 5, "b": 3, "other": 3}
    # Identifier-like columns (mostly distinct) get no breakdown; a long tail of regions does.
    assert segment_stats.identifier_like(pd.Series([f"id{i}" for i in range(1_000)]))
    assert not segment_stats.identifier_like(pd.Series([f"region_{i % 60}" for i in range(1_000)]))


def test_core_users_are_compared_with_other_recently_active_users():
    """By hand: days active in the 28-day window a 5, b 3, c d e 1 each; x was active only in January and y
    never, so neither is "recently active". The data has no revenue (frequency is active days)."""
    day = pd.Timestamp("2024-03-10 12:00")
    active = {"a": 5, "b": 3, "c": 1, "d": 1, "e": 1}
    rows = [
        {"user_id": u, "event_at": day + pd.Timedelta(days=i), "event": "session"}
        for u, n in active.items()
        for i in range(n)
    ]
    rows.append({"user_id": "x", "event_at": pd.Timestamp("2024-01-15 12:00"), "event": "session"})
    users = pd.DataFrame(
        {"user_id": list("abcdexy"), "channel": ["paid", "organic", "organic", "paid", "organic", "paid", "paid"]}
    )
    ds = load_dataset({"events": pd.DataFrame(rows), "users": users}, snapshot_at="2024-04-01")
    core = segments.run(ds, segments.Params(core_share=0.2)).core
    # Sorted days 1 1 1 3 5: the 80% quantile (higher) is 5, so a alone is core: 5 of 11 recent events.
    assert (core["threshold"], core["users"], core["share"]) == (5.0, 1, 0.2)
    assert core["activity_share"] == pytest.approx(5 / 11)
    mix = core["attributes"].set_index("value")
    # Others are b c d e (3 organic, 1 paid), not x and y: with them paid would be 3 of 6.
    assert mix.loc["paid", "core_share"] == 1.0 and mix.loc["paid", "others_share"] == 0.25
    assert mix.loc["organic", "others_share"] == 0.75


def test_the_user_scatter_draws_a_stated_sample_of_buyers(shop):
    """At most `points` dots, a sample of buyers only, and the title says how many of how many."""
    import matplotlib

    matplotlib.use("Agg")
    result = segments.run(shop, segments.Params())
    # (recency_days, monetary) of the eight buyers, worked by hand above; "i" never bought.
    buyers = {(6, 400), (3, 20), (71, 600), (46, 60), (2, 45), (89, 5), (41, 60), (15, 80)}

    def dots(ax):
        return [tuple(map(float, xy)) for c in ax.collections for xy in c.get_offsets()]

    def title(ax):  # wherever the theme puts it
        return "".join(ax.get_title(loc=where) for where in ("left", "center", "right"))

    ax = segment_charts.users(result, points=100)
    assert title(ax) == "Recency and spend: all 8 buyers"
    assert sorted(dots(ax)) == sorted(buyers)
    sampled = segment_charts.users(result, points=3, seed=7)
    assert title(sampled) == "Recency and spend: a random sample of 3 of 8 buyers"
    drawn = dots(sampled)
    assert len(drawn) == 3 and len(set(drawn) - buyers) == 0
    assert dots(segment_charts.users(result, points=3, seed=7)) == drawn  # the seed fixes the sample
    assert sampled.get_xlabel() == "days since the last purchase" and "log scale" in sampled.get_ylabel()
    with pytest.raises(DataError, match="'scatter_points' must be at least 1"):
        segment_charts.users(result, points=0)


@pytest.mark.slow
def test_data_without_revenue_gets_no_revenue_test_nor_most_valuable_segment():
    """On a clickstream without revenue the report said 'revenue differs across segments, Kruskal-Wallis p = 0'
    and named 'the most valuable' segment: tests that cannot be computed are not reported."""
    events = load_dataset(DATA / "sample").events
    clicks = events.filter(events.event == "session").select("user_id", "event_at", "event").limit(40_000).execute()
    ds = load_dataset({"events": clicks})
    result = segments.run(ds, segments.Params(frequency_basis="active_days"))
    text = " ".join(result.findings)
    assert "revenue_kruskal_p" not in result.validation_tests
    assert "rfm_sum_spearman" not in result.validation_tests
    assert "Kruskal" not in text and "most valuable" not in text and "of revenue" not in text
    assert [label for label, _ in result.headlines if "revenue" in label] == []
    assert "churn differs across segments, chi-square p " in text  # churn can be told: it is reported


@pytest.mark.slow
def test_headlines_carry_information_and_validation_claims_follow_their_p_values():
    """'20.1% of revenue from the high tier' is true by definition; the share of users making it is not."""
    result = segments.run(load_dataset(DATA / "sample"), segments.Params())
    tiers = result.profiles["value_tier"].set_index("segment")
    label, value = next(h for h in result.headlines if "of revenue" in h[0])
    assert value == f"{tiers.loc['high', 'share_of_users'] * 100:.1f}%"
    assert validation_sentence({"revenue_kruskal_p": 0.4, "churn_chi2_p": 0.2}, 30).startswith(
        "Segments set 30 days before the snapshot did not detectably tell apart"
    )
    assert "revenue shows no detectable difference, Kruskal-Wallis p = 0.4" in validation_sentence(
        {"revenue_kruskal_p": 0.4}, 30
    )
    assert "told apart" in validation_sentence({"revenue_kruskal_p": 0.001}, 30)


def test_the_lifecycle_chart_has_a_row_for_every_week_zeros_included():
    """One user active in the weeks of 1 and 22 January: the week of 8 January has the dormant user, and the
    week of 15 January, when nothing happened, is a row of zeros, not a missing week."""
    events = pd.DataFrame({"user_id": [1, 1], "event_at": pd.to_datetime(["2024-01-02", "2024-01-23"])})
    ds = load_dataset({"events": events}, snapshot_at="2024-02-01")
    frame = segments.lifecycle_counts(ds, period="week")
    assert frame.period_start.dt.strftime("%m-%d").tolist() == ["01-01", "01-08", "01-15", "01-22", "01-29"]
    assert frame[["new", "returning", "resurrecting", "dormant"]].to_numpy().tolist() == [
        [1, 0, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
    ]


@pytest.fixture(scope="module")
def sample_segments():
    return segments.run(load_dataset(DATA / "sample"), segments.Params())


@pytest.mark.slow
def test_the_charts_say_what_a_value_tier_is(sample_segments):
    """Tiers are cut by revenue, not by users: the high tier's 20% of revenue is 0.9% of the sample's
    users, so a scatter coloured by tier is mostly one colour. Every tier label says both shares, and the
    Pareto curve marks where the tiers are cut."""
    from userops_lib import i18n
    from userops_lib.analyses.segment_profiling import charts as charts

    tiers = sample_segments.profiles["value_tier"].set_index("segment")
    high = tiers.loc["high"]
    users, revenue = f"{high.share_of_users:.1%}", f"{high.share_of_revenue:.1%}"
    with i18n.language("en"):
        legend = [text.get_text() for text in charts.users(sample_segments).get_legend().get_texts()]
        assert f"high value: {users} of users, {revenue} of revenue" in " | ".join(legend)
        marks = [text.get_text() for text in charts.pareto(sample_segments).texts]
        assert marks[0] == f"high value: the top {users} of users make {revenue} of revenue"
    assert high.share_of_users < 0.05 and high.share_of_revenue > 0.19  # why the labels are needed


@pytest.mark.parametrize("basis", ["purchases", "active_days"])
def test_features_at_two_snapshots_in_one_pass_equal_each_snapshot_alone(basis):
    """Segment profiling reads now and a period ago in one aggregation with a filter per snapshot; each must
    be what the features of that snapshot alone are (Beijing days; the earlier moment inside a local day)."""
    from userops_lib import engine, rfm

    ds = load_dataset(DATA / "sample", calendar="Asia/Shanghai")
    earlier = (pd.Timestamp(ds.snapshot_at) - pd.Timedelta(days=30, hours=-5)).to_pydatetime()
    together = rfm.features_at(ds, [None, earlier], basis=basis)
    alone = (rfm.features(ds, basis=basis), rfm.features(ds, snapshot=earlier, basis=basis))
    for table, single in zip(together, alone, strict=True):
        pd.testing.assert_frame_equal(engine.frame(table, order_by="user_id"), engine.frame(single, order_by="user_id"))
    now, before = (engine.frame(t, order_by="user_id") for t in together)
    assert 8_000 < len(before) < len(now) <= 10_000  # users first seen in the last 30 days drop out
    assert (before.frequency <= now.set_index("user_id").frequency.loc[before.user_id].to_numpy()).all()
