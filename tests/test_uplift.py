"""Campaign readouts against Hillstrom's published figures and the synthetic world's true lifts."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA
from userops_lib.analyses import campaign_uplift as targeting
from userops_lib.analyses.campaign_uplift import experiment as uplift
from userops_lib.analyses.campaign_uplift import stats as uplift_stats
from userops_lib.data import load_dataset
from userops_lib.synth import make_world


@pytest.fixture(scope="module")
def hillstrom():
    return uplift.experiment(load_dataset(DATA / "hillstrom"))


@pytest.mark.slow
def test_hillstrom_arm_means_and_lifts_equal_the_published_figures(hillstrom):
    assert hillstrom.metrics == ["visit", "conversion", "spend"]  # from 'outcomes' in its dataset.yml
    table = uplift_stats.readout(hillstrom).set_index(["arm", "metric"])
    assert table.loc[("No E-Mail", "visit"), "mean"] == pytest.approx(0.106167, abs=5e-7)
    assert table.loc[("Mens E-Mail", "visit"), "mean"] == pytest.approx(0.182757, abs=5e-7)
    assert table.loc[("Womens E-Mail", "visit"), "mean"] == pytest.approx(0.151400, abs=5e-7)
    assert table.loc[("Mens E-Mail", "spend"), "abs_lift"] == pytest.approx(0.7698, abs=5e-5)
    assert table.loc[("Mens E-Mail", "visit"), "p_adjusted"] < 1e-10
    assert table.loc[("No E-Mail", "visit"), "n"] == 21_306


def test_hillstrom_health_passes(hillstrom):
    checks = uplift_stats.health(hillstrom).set_index("check")
    assert checks.loc["sample ratio", "status"] == "pass"
    assert checks.loc["sample ratio", "value"] == pytest.approx(0.9037, abs=1e-3)
    assert checks.loc["covariate balance", "status"] == "pass"


def test_a_broken_split_fails_the_sample_ratio_check():
    assignments = pd.DataFrame(
        {"user_id": range(2200), "campaign": "c", "arm": ["control"] * 1000 + ["treat"] * 1200, "converted": 0}
    )
    ds = load_dataset({"assignments": assignments}, control_arm="control")
    exp = uplift.experiment(ds, metrics=["converted"])
    checks = uplift_stats.health(exp).set_index("check")
    assert checks.loc["sample ratio", "status"] == "fail"
    # A planned 1:1.2 split is what happened: pass.
    assert uplift_stats.health(exp, expected_split=[1, 1.2]).set_index("check").loc["sample ratio", "status"] == "pass"


def test_holm_and_benjamini_hochberg_adjust_across_arms_and_metrics(hillstrom):
    holm = uplift_stats.readout(hillstrom, correction="holm").dropna(subset=["p_value"])
    holm = holm[~holm.metric.str.endswith("(CUPED)")]
    raw = holm.p_value.to_numpy()
    order = np.argsort(raw)
    expected = np.maximum.accumulate(np.minimum(1, raw[order] * (len(raw) - np.arange(len(raw)))))
    assert np.allclose(holm.p_adjusted.to_numpy()[order], expected)
    bh = uplift_stats.readout(hillstrom, correction="bh").dropna(subset=["p_value"])
    assert (bh.p_adjusted.to_numpy() <= holm.p_adjusted.to_numpy() + 1e-15).all()


@pytest.mark.slow
def test_every_true_lift_lies_inside_its_interval():
    ds = load_dataset(DATA / "sample")
    truth = json.loads((DATA / "sample" / "truth.json").read_text())["campaign"]
    claims = 2 + 6
    alpha = 0.05 / claims  # family-wise 95% over the eight intervals
    result = targeting.run(ds, targeting.Params(metrics=["converted"], segment_by="platform", alpha=alpha))
    overall = result.readout.set_index(["arm", "metric"])
    for arm, lift in truth["conversion_lift_overall"].items():
        row = overall.loc[(arm, "converted")]
        assert row.ci_low <= lift <= row.ci_high, (arm, lift, row.ci_low, row.ci_high)
    segments = result.segments.set_index(["arm", "segment"])
    for arm, by_platform in truth["conversion_lift"].items():
        for platform, lift in by_platform.items():
            row = segments.loc[(arm, platform)]
            assert row.ci_low <= lift <= row.ci_high, (arm, platform, lift, row.ci_low, row.ci_high)


@pytest.mark.slow
def test_the_uplift_model_beats_random_targeting():
    world = make_world(users=40_000, seed=77)
    ds = load_dataset(
        {k: world[k] for k in ("users", "events", "assignments")},
        control_arm="control",
        snapshot_at=world["truth"]["snapshot_at"],
    )
    result = targeting.run(
        ds, targeting.Params(metrics=["converted"], segment_by="platform", features=["platform", "channel"])
    )
    assert result.model.arm == "discount"
    assert result.model.qini_coefficient > 0
    assert result.model.qini_ci[0] > 0  # the bootstrap interval excludes random targeting: advice is given
    assert any("should beat picking users at random" in f for f in result.findings)
    deciles = result.model.deciles
    # The users the model ranks first gain more from the e-mail than those it ranks last.
    assert deciles.observed_uplift.iloc[:3].mean() > deciles.observed_uplift.iloc[-3:].mean()


@pytest.mark.slow
def test_cuped_narrows_the_interval_and_stays_unbiased():
    """Across ten worlds: the CUPED interval is narrower every time and its errors average to zero."""
    errors, narrower = [], 0
    for seed in range(300, 310):
        world = make_world(users=4000, seed=seed)
        ds = load_dataset(
            {k: world[k] for k in ("users", "events", "assignments")},
            control_arm="control",
            snapshot_at=world["truth"]["snapshot_at"],
        )
        table = uplift_stats.readout(uplift.experiment(ds, metrics=["revenue"])).set_index(["arm", "metric"])
        plain, adjusted = table.loc[("discount", "revenue")], table.loc[("discount", "revenue (CUPED)")]
        narrower += (adjusted.ci_high - adjusted.ci_low) < (plain.ci_high - plain.ci_low)
        shares = pd.Series(world["truth"]["campaign"]["revenue_lift_per_user"]["discount"])
        platform = world["assignments"].merge(world["users"], on="user_id").platform.value_counts(normalize=True)
        true = float((shares * platform.reindex(shares.index)).sum())
        errors.append((adjusted.abs_lift - true) / ((adjusted.ci_high - adjusted.ci_low) / 3.92))
    assert narrower == 10
    # Standardised errors of an unbiased estimator average ~N(0, 1/10): within 3 of their standard error.
    assert abs(np.mean(errors)) < 3 / np.sqrt(10)


@pytest.mark.slow
def test_ratio_metrics_use_the_delta_method():
    ds = load_dataset(DATA / "sample")
    exp = uplift.experiment(ds, metrics=["revenue/active_days"])
    row = uplift_stats.readout(exp).set_index(["arm", "metric"]).loc[("discount", "revenue/active_days")]
    frame = exp.frame
    treated, control = frame[frame.arm == "discount"], frame[frame.arm == "control"]
    assert row["mean"] == pytest.approx(treated.revenue.sum() / treated.active_days.sum())
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(300):
        t = treated.iloc[rng.integers(0, len(treated), len(treated))]
        c = control.iloc[rng.integers(0, len(control), len(control))]
        draws.append(t.revenue.sum() / t.active_days.sum() - c.revenue.sum() / c.active_days.sum())
    delta_se = (row.ci_high - row.ci_low) / (2 * 1.959963984540054)
    assert delta_se == pytest.approx(np.std(draws), rel=0.15)  # against a bootstrap


def test_event_outcomes_count_the_two_windows_by_hand():
    """14-day windows either side of assignment, half-open: [t - 14d, t) before, [t, t + 14d) after."""
    t = pd.Timestamp("2025-03-01 12:00")
    day, second = pd.Timedelta(days=1), pd.Timedelta(seconds=1)
    events = pd.DataFrame(
        [
            # user 1: the window edges
            (1, t - 14 * day - second, 50.0),  # before the pre-window: not counted
            (1, t - 14 * day, 0.0),  # first instant of the pre-window: a pre active day
            (1, t - 2 * day, 7.0),  # a pre purchase
            (1, t, 0.0),  # the assignment instant counts as after
            (1, t + 3 * day, 10.0),  # two purchases on one day: one active day, revenue 30
            (1, t + 3 * day + 60 * second, 20.0),
            (1, t + 14 * day - second, 0.0),  # last instant of the window
            (1, t + 14 * day, 99.0),  # after the window: not counted
            # user 2: active only outside both windows
            (2, t - 30 * day, 5.0),
            (2, t + 20 * day, 5.0),
            # user 3: no events at all in the log except one long before
            (3, t - 100 * day, 0.0),
            # user 4: a control user with one session after
            (4, t + day, 0.0),
        ],
        columns=["user_id", "event_at", "revenue"],
    )
    assignments = pd.DataFrame(
        {"user_id": [1, 2, 3, 4], "campaign": "spring", "arm": ["offer", "offer", "offer", "control"], "assigned_at": t}
    )
    ds = load_dataset({"events": events, "assignments": assignments}, snapshot_at="2025-06-01", control_arm="control")
    frame = uplift.experiment(ds).frame.set_index("user_id")
    columns = ["converted", "revenue", "active_days", "pre_converted", "pre_revenue", "pre_active_days"]
    # User 1 after: t (day 0), t+3d (two events), t+14d-1s (day 13 after noon: the calendar day of
    # 2025-03-15) -> three calendar days; before: t-14d and t-2d -> two days.
    assert frame.loc[1, columns].tolist() == [1.0, 30.0, 3.0, 1.0, 7.0, 2.0]
    assert frame.loc[2, columns].tolist() == [0.0] * 6
    assert frame.loc[3, columns].tolist() == [0.0] * 6
    assert frame.loc[4, columns].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    # Events without a revenue column: no purchases, the same active days.
    bare = load_dataset(
        {"events": events.drop(columns="revenue"), "assignments": assignments},
        snapshot_at="2025-06-01",
        control_arm="control",
    )
    frame = uplift.experiment(bare).frame.set_index("user_id")
    assert frame.loc[1, columns].tolist() == [0.0, 0.0, 3.0, 0.0, 0.0, 2.0]


@pytest.mark.slow
def test_targeting_advice_needs_a_qini_interval_above_zero():
    """'Target the top deciles first' rested on a Qini of 0.0043 with no uncertainty. Where outcomes do not
    depend on the features at all, the 95% bootstrap interval includes 0 in most worlds (10 of 12 here,
    19 of 20 expected) and the advice follows the interval, never the sign of the coefficient alone."""
    includes_zero = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        n = 6_000
        frame = pd.DataFrame(
            {
                "user_id": np.arange(n),
                "campaign": "noise",
                "arm": rng.choice(["control", "mail"], n),
                "region": rng.choice(list("abcdef"), n),
                "tier": rng.choice(list("xyz"), n),
                "converted": (rng.random(n) < 0.1).astype(int),
            }
        )
        ds = load_dataset({"assignments": frame}, control_arm="control")
        result = targeting.run(
            ds, targeting.Params(metrics=["converted"], segment_by="region", features=["region", "tier"])
        )
        low, high = result.model.qini_ci
        assert low <= result.model.qini_coefficient <= high
        includes_zero += low <= 0 <= high
        sentence = next(f for f in result.findings if "Qini coefficient" in f)
        assert "95% bootstrap interval" in sentence
        assert ("should beat picking users at random" in sentence) == (low > 0)
        assert ("do not target by its scores" in sentence) == (low <= 0)
    assert includes_zero >= 10


@pytest.mark.slow
def test_campaign_findings_say_money_in_the_currency_and_health_in_words():
    """Lifts of revenue read '+2.855 per user' and health 'sample ratio pass'; money now has its currency and
    two decimals, and each health check says what it found."""
    result = targeting.run(load_dataset(DATA / "sample"), targeting.Params())
    revenue = next(f for f in result.findings if f.startswith("'discount' moved revenue"))
    row = result.readout.set_index(["arm", "metric"]).loc[("discount", "revenue")]
    assert f"by +${row.abs_lift:,.2f} per user (95% CI +${row.ci_low:,.2f} to +${row.ci_high:,.2f})" in revenue
    assert any(f.startswith("'discount' moved active days by") for f in result.findings)
    health = next(f for f in result.findings if f.startswith("Health:"))
    assert health.startswith("Health: arm sizes match the planned split (sample-ratio test p = ")
    assert ("assignment check", "arm sizes match the planned split") in result.headlines


@pytest.mark.slow
def test_the_readout_table_shows_each_lift_in_its_unit():
    """The arm table showed revenue lifts without currency next to 0/1 lifts as fractions; the CSV keeps numbers."""
    result = targeting.run(load_dataset(DATA / "sample"), targeting.Params())
    shown = result.text.readout_shown(result).set_index(["arm", "metric"])
    row = result.readout.set_index(["arm", "metric"]).loc[("discount", "revenue")]
    assert shown.loc[("discount", "revenue"), "lift"] == f"+${row.abs_lift:,.2f}"
    converted = result.readout.set_index(["arm", "metric"]).loc[("reminder", "converted")]
    assert shown.loc[("reminder", "converted"), "lift"] == f"{converted.abs_lift * 100:+.1f} pts"
    assert shown.loc[("reminder", "converted"), "adjusted_p"] == f"{converted.p_adjusted:.2g}"
    assert shown.loc[("discount", "converted"), "adjusted_p"] == "< 0.001"
    assert shown.loc[("control", "revenue"), "lift"] == "–"
    assert result.tables()["arm_summary"].abs_lift.dtype.kind == "f"  # the artifact keeps numbers


def test_arm_sums_by_hand_and_the_readout_needs_nothing_else():
    """The engine's per-arm sums on a tiny campaign, worked by hand; the readout computed from them alone
    (the per-user frame emptied) equals Welch and CUPED computed per user with scipy and numpy."""
    from scipy import stats as scipy_stats

    assignments = pd.DataFrame(
        {
            "user_id": range(8),
            "campaign": "c",
            "arm": ["control"] * 4 + ["treat"] * 4,
            "spend": [1.0, 2.0, 3.0, 6.0, 2.0, 4.0, 7.0, 7.0],
            "visits": [1.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0],
        }
    )
    ds = load_dataset({"assignments": assignments}, control_arm="control")
    exp = uplift.experiment(ds, metrics=["spend", "spend/visits"])
    sums = exp.sums.set_index(["metric", "arm"])
    assert sums.loc[("spend", "control")].tolist() == [4, 12.0, 50.0, 0.0, 0.0, 0.0]
    assert sums.loc[("spend/visits", "treat")].tolist() == [4, 20.0, 118.0, 10.0, 30.0, 59.0]
    hollow = uplift.Experiment(**{**exp.__dict__, "frame": exp.frame.iloc[0:0]})
    row = uplift_stats.readout(hollow).set_index(["arm", "metric"]).loc[("treat", "spend")]
    welch = scipy_stats.ttest_ind([2, 4, 7, 7], [1, 2, 3, 6], equal_var=False)
    assert row.abs_lift == pytest.approx(2.0) and row.p_value == pytest.approx(welch.pvalue, rel=1e-12)
    ratio = uplift_stats.readout(hollow).set_index(["arm", "metric"]).loc[("treat", "spend/visits")]
    assert ratio["mean"] == pytest.approx(20 / 10) and ratio.abs_lift == pytest.approx(20 / 10 - 12 / 7)


def test_the_minimum_detectable_effect_is_the_stated_formula_on_the_control_arms_spread():
    """By hand: control 0/1 outcomes with variance s2 over 1,000 users, two treated arms of 1,100 and 900 (mean
    1,000) whose own spread differs; MDE = (z(0.975) + z(0.8)) * sqrt(s2 * (1/1000 + 1/1000))."""
    from scipy import stats

    rng = np.random.default_rng(1)
    control = (rng.random(1000) < 0.10).astype(float)
    treat_a, treat_b = (rng.random(1100) < 0.30).astype(float), (rng.random(900) < 0.45).astype(float)
    assignments = pd.DataFrame(
        {
            "user_id": range(3000),
            "campaign": "c",
            "arm": ["control"] * 1000 + ["a"] * 1100 + ["b"] * 900,
            "converted": np.concatenate([control, treat_a, treat_b]),
        }
    )
    exp = uplift.experiment(load_dataset({"assignments": assignments}, control_arm="control"), metrics=["converted"])
    checks = uplift_stats.health(exp).set_index("check")
    expected = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * np.sqrt(control.var(ddof=1) * (1 / 1000 + 1 / 1000))
    assert checks.loc["minimum detectable effect: converted", "value"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
def test_each_arm_and_metric_gets_a_verdict_and_the_page_opens_with_the_bottom_line():
    """GrowthBook's convention: better / worse when the adjusted p is under alpha (by the lift's sign), else no
    detectable difference; the first finding says which arms moved the primary metric; the tile names the arm."""
    from userops_lib import i18n, narrative
    from userops_lib.analyses.campaign_uplift import text as text

    result = targeting.run(load_dataset(DATA / "sample"), targeting.Params())
    readout = result.readout
    said = text.verdicts(result)
    for index, row in readout.iterrows():
        if pd.isna(row.abs_lift):
            assert said[index] == ""
        elif row.p_adjusted < result.alpha:
            assert said[index] == ("better" if row.abs_lift > 0 else "worse")
        else:
            assert said[index] == "no_difference"
    assert {"better", "no_difference"} <= set(said)  # the sample's converted and active days
    with i18n.language("en"):
        assert result.findings[0].startswith("Bottom line: 'discount' and 'reminder' raised converted")
        assert result.headlines[0] == ("best lift in converted: discount", "+6.1 pts")
        [shown] = [s for s in result.shown_tables() if s.name == "arm_summary"]
        page = narrative.table_html(shown.frame, classes=shown.classes)
        assert "<td class='verdict-better'>better</td>" in page
        assert "<td class='verdict-no_difference'>no detectable difference</td>" in page
    with i18n.language("zh"):
        assert result.findings[0].startswith("结论：在活动“autumn_promo”中，“discount”和“reminder”提高了转化")


def test_a_campaign_that_moved_nothing_says_so_first():
    assignments = pd.DataFrame(
        {"user_id": range(400), "campaign": "c", "arm": ["control", "treat"] * 200, "converted": [0, 0, 1, 1] * 100}
    )
    result = targeting.run(
        load_dataset({"assignments": assignments}, control_arm="control"), targeting.Params(metrics=["converted"])
    )
    from userops_lib import i18n

    with i18n.language("en"):
        assert result.findings[0].startswith("Bottom line: no arm of 'c' moved converted by a difference the data")


@pytest.mark.slow
def test_a_who_to_target_model_a_feature_decides_is_a_warning_not_advice():
    """Data built to break the uplift model: in the mail arm everyone in region z converts, so the
    logistic fit's log-odds for z runs to ~30 with a standard error in the thousands. The page says the
    model cannot be used and why, gives no targeting advice and no deciles, and the index marks it."""
    rng = np.random.default_rng(3)
    n = 6_000
    frame = pd.DataFrame(
        {
            "user_id": np.arange(n),
            "campaign": "mail",
            "arm": rng.choice(["control", "mail"], n),
            "region": rng.choice(list("abcdez"), n, p=[0.19, 0.19, 0.19, 0.19, 0.19, 0.05]),
            "converted": (rng.random(n) < 0.1).astype(int),
        }
    )
    frame.loc[(frame.arm == "mail") & (frame.region == "z"), "converted"] = 1
    ds = load_dataset({"assignments": frame}, control_arm="control")
    result = targeting.run(ds, targeting.Params(metrics=["converted"], segment_by="region", features=["region"]))
    assert result.model.problem == "not_identified"
    assert not any("Qini coefficient" in f for f in result.findings)
    assert result.warnings and "could not be used" in result.warnings[0] and "region" in result.warnings[0]
    assert result.warnings[0] in result.findings
    assert "uplift_deciles" not in result.tables() and "qini" not in {c.name for c in result.charts()}
    # the same world without the separation: a usable model
    frame.loc[(frame.arm == "mail") & (frame.region == "z"), "converted"] = (rng.random(n) < 0.1).astype(int)[
        : int(((frame.arm == "mail") & (frame.region == "z")).sum())
    ]
    ds = load_dataset({"assignments": frame}, control_arm="control")
    assert (
        targeting.run(
            ds, targeting.Params(metrics=["converted"], segment_by="region", features=["region"])
        ).model.problem
        is None
    )


@pytest.mark.slow
def test_value_columns_appear_only_when_a_value_or_a_cost_is_set():
    """With no value per conversion and no cost, the segment table carried value_per_user and
    incremental_value columns of zeros that read as results; they now appear only when set, and then
    equal lift × value − cost per user and that times the segment's users."""
    ds = load_dataset(DATA / "sample")
    plain = targeting.run(ds, targeting.Params(metrics=["converted"], segment_by="platform"))
    assert not {"value_per_user", "incremental_value"} & set(plain.segments.columns)
    assert not {"value_per_user", "incremental_value"} & set(plain.tables()["segment_uplift"].columns)
    valued = targeting.run(
        ds,
        targeting.Params(metrics=["converted"], segment_by="platform", value_per_conversion=40.0, cost_per_contact=0.5),
    )
    row = valued.segments.iloc[0]
    assert row.value_per_user == pytest.approx(row.abs_lift * 40.0 - 0.5)
    assert row.incremental_value == pytest.approx(row.value_per_user * (row.n_treated + row.n_control))
