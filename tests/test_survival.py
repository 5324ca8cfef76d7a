"""Churn survival against lifelines on one row per user, the synthetic truth and Telco's published facts."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test, proportional_hazard_test
from lifelines.utils import median_survival_times, restricted_mean_survival_time

from tests.conftest import DATA
from userops_lib.analyses import churn_survival as survival
from userops_lib.analyses.churn_survival import cox as hazards
from userops_lib.analyses.churn_survival import curves, durations
from userops_lib.data import load_dataset

# lifelines warns on the small, tied samples some tests build on purpose; scoped to this module's tests
# (a filter set at import would silence every module collected after this one).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def telco():
    return load_dataset(DATA / "telco_churn")


@pytest.fixture(scope="module")
def telco_rows(telco):
    table, *_ = durations.user_durations(telco)
    return table.select("duration", "churned", "Contract", "InternetService", "OnlineSecurity").execute()


@pytest.mark.slow
def test_kaplan_meier_on_aggregated_rows_equals_lifelines_per_user(telco, telco_rows):
    table, *_ = durations.user_durations(telco)
    frame = durations.aggregate(table, ["Contract"])
    assert len(frame) < len(telco_rows) / 10  # the point of aggregating
    result = curves.by_segment(frame, "Contract", horizons=(6, 12, 24))
    for segment in ("Month-to-month", "One year", "Two year"):
        raw = telco_rows[telco_rows.Contract == segment]
        reference = KaplanMeierFitter().fit(raw.duration, raw.churned)
        km = result.km[result.km.segment == segment].set_index("time")
        assert np.allclose(km.survival, reference.survival_function_.iloc[:, 0].loc[km.index], atol=1e-6)
        ci = reference.confidence_interval_survival_function_.loc[km.index]
        assert np.allclose(km.ci_low, ci.iloc[:, 0], atol=1e-6) and np.allclose(km.ci_high, ci.iloc[:, 1], atol=1e-6)
        assert np.array_equal(km.at_risk.to_numpy(), reference.event_table.at_risk.loc[km.index].to_numpy())
        median = result.medians.set_index("segment").loc[segment]
        bounds = median_survival_times(reference.confidence_interval_)
        assert median["median"] == reference.median_survival_time_
        assert median.ci_low == bounds.iloc[0, 0] and median.ci_high == bounds.iloc[0, 1]
        expected, variance = restricted_mean_survival_time(reference, t=24, return_variance=True)
        assert result.rmst.set_index("segment").loc[segment, "rmst"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_log_rank_on_aggregated_rows_equals_lifelines_per_user(telco, telco_rows):
    table, *_ = durations.user_durations(telco)
    tests = curves.logrank(durations.aggregate(table, ["Contract"]), "Contract").set_index("comparison")
    overall = multivariate_logrank_test(telco_rows.duration, telco_rows.Contract, telco_rows.churned)
    assert tests.loc["all segments", "test_statistic"] == pytest.approx(overall.test_statistic, abs=1e-6)
    pair = telco_rows[telco_rows.Contract.isin(["One year", "Two year"])]
    expected = multivariate_logrank_test(pair.duration, pair.Contract, pair.churned)
    name = next(c for c in tests.index if "One year" in c and "Two year" in c)
    assert tests.loc[name, "test_statistic"] == pytest.approx(expected.test_statistic, abs=1e-6)
    assert tests.loc[name, "p_adjusted"] >= tests.loc[name, "p_value"]


def _raw_design(rows):
    X = pd.get_dummies(rows[["Contract", "InternetService"]]).astype(float)
    X = X.drop(columns=["Contract_Month-to-month", "InternetService_Fiber optic"])
    return pd.concat([rows[["duration"]], rows.churned.astype(int).rename("event"), X], axis=1)


def test_cox_exact_path_equals_lifelines_per_user(telco, telco_rows):
    table, *_ = durations.user_durations(telco)
    frame = durations.aggregate(table, ["Contract", "InternetService"])
    result = hazards.fit_cox(frame, ["Contract", "InternetService"])
    assert result.exact
    raw = _raw_design(telco_rows)
    reference = CoxPHFitter().fit(raw, "duration", "event")
    names = {
        "Contract=One year": "Contract_One year",
        "Contract=Two year": "Contract_Two year",
        "InternetService=DSL": "InternetService_DSL",
        "InternetService=No": "InternetService_No",
    }
    summary = result.summary.set_index("covariate")
    for ours, theirs in names.items():
        assert summary.loc[ours, "coef"] == pytest.approx(reference.params_[theirs], abs=1e-6)
        assert summary.loc[ours, "se"] == pytest.approx(reference.standard_errors_[theirs], abs=1e-6)
        assert summary.loc[ours, "p_value"] == pytest.approx(reference.summary.p[theirs], abs=1e-6)
    assert result.concordance == pytest.approx(reference.concordance_index_, abs=1e-6)
    ph = proportional_hazard_test(reference, raw, time_transform="km").summary
    ours_ph = result.ph_test.set_index("covariate")
    for ours, theirs in names.items():
        assert ours_ph.loc[ours, "test_statistic"] == pytest.approx(ph.test_statistic[theirs], abs=1e-6)


def test_cox_weighted_path_is_close_and_says_so(telco):
    table, *_ = durations.user_durations(telco)
    frame = durations.aggregate(table, ["Contract", "InternetService"])
    exact = hazards.fit_cox(frame, ["Contract", "InternetService"]).summary.set_index("covariate")
    weighted = hazards.fit_cox(frame, ["Contract", "InternetService"], exact_max_users=5_000)
    assert not weighted.exact
    # Ties in whole months are handled the weighted (R survival) way: close, not identical.
    difference = (weighted.summary.set_index("covariate").coef - exact.coef).abs()
    assert 1e-6 < difference.max() < 0.02


def test_cox_check_runs_on_a_stated_random_sample_above_its_limit(telco):
    table, *_ = durations.user_durations(telco)
    frame = durations.aggregate(table, ["Contract", "InternetService"])
    full = hazards.fit_cox(frame, ["Contract", "InternetService"])
    sampled = hazards.fit_cox(frame, ["Contract", "InternetService"], check_max_users=2_000)
    assert (full.users, full.checked_users) == (7_043, 7_043)
    assert (sampled.users, sampled.checked_users) == (7_043, 2_000)
    # The fit itself is untouched; the check sees fewer users, so its statistics differ but stay of one kind:
    # Contract's effect changes over time on every sample (Telco's well-known PH violation).
    assert sampled.summary.coef.tolist() == full.summary.coef.tolist()
    assert sampled.concordance != full.concordance and abs(sampled.concordance - full.concordance) < 0.03
    violating = set(sampled.ph_test.covariate[sampled.ph_test.violates])
    assert any(name.startswith("Contract=") for name in violating)


def _true_ratios(truth):
    out = {}
    for name, spec in truth["attributes"].items():
        for level, ratio in spec["hazard_ratio"].items():
            if level != spec["reference"]:
                out[f"{name}={level}"] = ratio / spec["hazard_ratio"][spec["reference"]]
    return out


@pytest.mark.slow
def test_synthetic_hazard_ratios_lie_inside_their_intervals():
    ds = load_dataset(DATA / "sample")
    truth = json.loads((DATA / "sample" / "truth.json").read_text())
    references = {name: spec["reference"] for name, spec in truth["attributes"].items()}
    true = _true_ratios(truth)
    # Nine intervals at once: family-wise 95% (each at 1 - 0.05/9), as for any set of simultaneous claims.
    result = survival.run(
        ds,
        survival.Params(
            segment_by="channel",
            covariates=list(references),
            references=[f"{k}={v}" for k, v in references.items()],
            alpha=0.05 / len(true),
        ),
    )
    summary = result.cox.summary.set_index("covariate")
    assert set(summary.index) == set(true)
    for covariate, ratio in true.items():
        row = summary.loc[covariate]
        assert row.ci_low <= ratio <= row.ci_high, (covariate, ratio, row.ci_low, row.ci_high)


@pytest.mark.slow
def test_hazard_ratio_intervals_cover_the_truth_at_their_stated_rate():
    """Across eight independent worlds, 95% intervals from event-derived durations cover the truth ~95% of the time."""
    from userops_lib.synth import make_world

    covered = total = 0
    for seed in range(100, 108):
        world = make_world(users=3000, seed=seed)
        ds = load_dataset(
            {"users": world["users"], "events": world["events"]}, snapshot_at=world["truth"]["snapshot_at"]
        )
        references = {name: spec["reference"] for name, spec in world["truth"]["attributes"].items()}
        table, *_ = durations.user_durations(ds)
        frame = durations.aggregate(table, list(references))
        summary = hazards.fit_cox(frame, list(references), references=references).summary.set_index("covariate")
        for covariate, ratio in _true_ratios(world["truth"]).items():
            covered += summary.loc[covariate, "ci_low"] <= ratio <= summary.loc[covariate, "ci_high"]
            total += 1
    assert total == 72
    # Expected 68.4 of 72; 62 is 3.5 standard deviations below.
    assert covered >= 62, covered


def test_telco_month_to_month_with_internet_has_median_34_months(telco):
    users = telco.users
    subset = durations.aggregate(
        users.filter((users.Contract == "Month-to-month") & (users.InternetService != "No")), []
    )
    fitter = curves.kaplan_meier(subset)
    assert fitter.median_survival_time_ == 34


def test_telco_churn_rates_by_contract_match_the_source_note(telco):
    text = (DATA / "telco_churn" / "SOURCE.md").read_text()
    table = {
        m[0]: (int(m[1].replace(",", "")), int(m[2].replace(",", "")), float(m[3]))
        for m in re.findall(r"\| (Month-to-month|One year|Two year) \| ([\d,]+) \| ([\d,]+) \| ([\d.]+)% \|", text)
    }
    assert len(table) == 3
    users = telco.users
    counts = users.group_by("Contract").aggregate(n=users.count(), churned=users.churned.cast("int64").sum()).execute()
    for _, row in counts.iterrows():
        customers, churned, rate = table[row.Contract]
        assert (row.n, row.churned) == (customers, churned)
        assert round(100 * row.churned / row.n, 1) == rate


def test_event_log_durations_by_hand():
    day = pd.Timestamp("2024-01-01")
    events = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c", "d"],
            "event_at": [
                day,
                day + pd.Timedelta(days=10),
                day,
                day + pd.Timedelta(days=55),
                day + pd.Timedelta(days=5),
                day + pd.Timedelta(days=50),
            ],
        }
    )
    ds = load_dataset({"events": events}, snapshot_at="2024-03-01")  # day 60
    table, unit, used = durations.user_durations(ds, churn_after_days=30)
    rows = table.execute().set_index("user_id").sort_index()
    assert (unit, used) == ("days", "events")
    # a: last seen day 10 < day 30: churned, duration 10. b: seen day 55: censored at day 30 (60 - 30).
    # c: one visit on day 5: churned at duration 0. d: first seen day 50, too new to judge: left out.
    assert rows.churned.to_dict() == {"a": True, "b": False, "c": True}
    assert rows.duration.to_dict() == {"a": 10.0, "b": 30.0, "c": 0.0}
    assert rows.seen.to_dict() == {"a": 10.0, "b": 55.0, "c": 0.0}


def test_durations_at_two_snapshots_from_one_pass_are_each_snapshots_own():
    """The main fit asks for the calibration's cutoff too (``also``): one aggregation with a filter per
    snapshot, kept; the cutoff's durations read from it equal those computed alone, by hand."""
    day = pd.Timestamp("2024-01-01")
    events = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c", "d", "e"],
            "event": ["x", "y", "x", "x", "y", "x", "x"],
            "event_at": [day + pd.Timedelta(days=d) for d in (0, 10, 0, 55, 5, 50, 35)],
        }
    )
    snapshot, cutoff = pd.Timestamp("2024-03-01"), pd.Timestamp("2024-02-10")  # days 60 and 40
    for active in (None, ["x"]):
        ds = load_dataset({"events": events}, snapshot_at=snapshot)
        now, *_ = durations.user_durations(ds, churn_after_days=30, active_events=active, also=[cutoff])
        assert len(ds.shared) == 1  # the two snapshots' spans, kept
        then, *_ = durations.user_durations(ds, churn_after_days=30, active_events=active, snapshot=cutoff)
        alone = load_dataset({"events": events}, snapshot_at=snapshot)
        for table, at in ((now, None), (then, cutoff)):
            fresh, *_ = durations.user_durations(alone, churn_after_days=30, active_events=active, snapshot=at)
            a, b = (t.execute().sort_values("user_id", ignore_index=True) for t in (table, fresh))
            pd.testing.assert_frame_equal(a, b)
        rows = then.execute().set_index("user_id").sort_index()
        # At day 40 (churn window ends day 10): a last seen day 10 (or day 0 counting x only) and c (day 5,
        # y only) churned; b seen on day 0 only (day 55 is after the cutoff), churned at duration 0; d and e
        # not yet seen or too new (first seen after day 10): left out.
        if active is None:
            assert rows.churned.to_dict() == {"a": False, "b": True, "c": True}
            assert rows.duration.to_dict() == {"a": 10.0, "b": 0.0, "c": 0.0}
        else:
            assert rows.churned.to_dict() == {"a": True, "b": True}
            assert rows.duration.to_dict() == {"a": 0.0, "b": 0.0}


def test_risk_now_is_the_conditional_kaplan_meier_probability():
    rng = np.random.default_rng(5)
    n = 400
    users = pd.DataFrame(
        {"user_id": np.arange(n), "duration": rng.integers(1, 40, n).astype(float), "churned": rng.random(n) < 0.6}
    )
    ds = load_dataset({"users": users}, columns={"users": {"duration": {"column": "duration", "unit": "months"}}})
    result = survival.run(ds, survival.Params(risk_horizon=3))
    assert result.cox is None
    fitter = KaplanMeierFitter().fit(users.duration, users.churned)
    at_risk = result.at_risk.set_index("user_id")
    assert set(at_risk.index) == set(users.user_id[~users.churned])
    for user in at_risk.index[:20]:
        t = users.duration[user]
        if t + 3 > users.duration.max():
            assert np.isnan(at_risk.loc[user, "churn_probability"])
            continue
        # A censored duration t: the customer was there after t, so P(T <= t + 3 | T > t).
        expected = 1 - fitter.survival_function_at_times(t + 3).iloc[0] / fitter.survival_function_at_times(t).iloc[0]
        assert at_risk.loc[user, "churn_probability"] == pytest.approx(expected, abs=1e-9)
    ranked = result.at_risk.churn_probability.dropna().to_numpy()
    assert (np.diff(ranked) <= 0).all()
    assert result.calibration is None and "event log" in " ".join(result.findings)


@pytest.mark.slow
def test_the_sample_report_has_a_holdout_calibration():
    result = survival.run(load_dataset(DATA / "sample"), survival.Params())
    assert result.calibration is not None
    assert result.calibration.users.sum() > 1000
    calibration = result.calibration
    # Ranking works: the riskiest tenth churns far more than the safest tenth.
    assert calibration.observed.iloc[-1] > 10 * calibration.observed.iloc[0]
    # And the level is about right: predicted and observed churn over the holdout within 40% of each other
    # (a survival model that ignored how long users have been silent predicted a quarter of what happened).
    predicted = (calibration.predicted * calibration.users).sum()
    observed = (calibration.observed * calibration.users).sum()
    assert 0.6 < predicted / observed < 1.4


@pytest.mark.slow
def test_rmst_intervals_use_the_estimators_variance_hand_worked_and_against_a_bootstrap():
    """The interval was built from the spread of individual times (sample: 105.5 days, '95% CI -32.7 to 243.8'
    within a 180-day horizon). Hand-worked: times 1, 2, 3 all events, horizon 3: RMST 2, variance
    (1^2 * 1/(3*2)) + ((1/3)^2 * 1/(2*1)) = 2/9."""
    from userops_lib.analyses.churn_survival.curves import rmst, rmst_variance

    tiny = KaplanMeierFitter().fit([1, 2, 3], [1, 1, 1])
    assert rmst_variance(tiny, 3) == pytest.approx(2 / 9, abs=1e-12)
    rng = np.random.default_rng(7)
    n = 400
    times, censor = rng.exponential(100, n), rng.uniform(0, 250, n)
    durations, events = np.minimum(times, censor), times <= censor
    fitter = KaplanMeierFitter().fit(durations, events)
    boot = []
    for _ in range(300):
        pick = rng.integers(0, n, n)
        boot.append(restricted_mean_survival_time(KaplanMeierFitter().fit(durations[pick], events[pick]), t=180))
    assert np.sqrt(rmst_variance(fitter, 180)) == pytest.approx(np.std(boot), rel=0.15)
    row = rmst(fitter, "all", 180, 0.05)
    assert 0 < row["ci_low"] < row["rmst"] < row["ci_high"] < 180
    assert row["ci_high"] - row["ci_low"] < 20  # was ~270 with the variance of min(T, 180)
    # Frequency-weighted rows (as the engine returns them) give the same variance as one row per user.
    frame = pd.DataFrame({"d": np.round(durations), "e": events}).value_counts().reset_index(name="count")
    weighted = KaplanMeierFitter().fit(frame.d, frame.e, weights=frame["count"])
    single = KaplanMeierFitter().fit(np.round(durations), events)
    assert rmst_variance(weighted, 180) == pytest.approx(rmst_variance(single, 180), rel=1e-9)


@pytest.mark.slow
def test_churn_risk_on_a_users_table_conditions_on_survival_past_the_censored_duration(telco):
    """Telco: a censored tenure of 69 months means the customer was still there after month 69. The list
    used P(T <= 72 | T >= 69) with the hazard at 69 counted as churn, from a Cox model whose
    proportional-hazards check fails for every covariate (88.6% for such customers where Kaplan-Meier says
    about 20%). Now: P(T <= s + 3 | T > s) from lifelines' Kaplan-Meier of each customer's Contract, said so."""
    raw = pd.read_csv(DATA / "telco_churn" / "telco_churn.csv")
    result = survival.run(telco, survival.Params(segment_by="Contract"))
    assert not result.cox.holds
    assert any(
        "uses the Kaplan–Meier curve of each user's Contract, not the Cox model" in n for n in result.definitions
    )
    assert any("No stratified refit remedies it" in s for s in result.findings)
    fitters = {c: KaplanMeierFitter().fit(g.tenure, g.Churn == "Yes") for c, g in raw.groupby("Contract")}
    risk = result.at_risk.merge(raw.rename(columns={"customerID": "user_id"})[["user_id", "Contract"]], on="user_id")
    assert len(risk) == (raw.Churn == "No").sum()
    for (tenure, contract), group in risk.dropna(subset=["churn_probability"]).groupby(["tenure", "Contract"]):
        fitter = fitters[contract]
        expected = 1 - fitter.predict(tenure + 3) / fitter.predict(tenure)
        assert group.churn_probability.iloc[0] == pytest.approx(expected, abs=1e-9), (tenure, contract)
    long_stayers = risk[risk.tenure >= 69].churn_probability.dropna()
    assert long_stayers.max() < 0.3


@pytest.mark.slow
def test_zero_one_coded_attributes_are_used_and_numeric_segments_fold_to_max_levels():
    """Rossi (lifelines' copy of the recidivism study): its attributes are 0/1 numbers, so the report had one
    'all' curve and no Cox model; segment_by=prio (18 values) drew 18 curves whatever max_levels said."""
    from lifelines.datasets import load_rossi

    rossi = load_rossi().reset_index(names="user_id")
    ds = load_dataset(
        {"users": rossi}, columns={"users": {"duration": {"column": "week", "unit": "weeks"}, "churned": "arrest"}}
    )
    result = survival.run(ds, survival.Params())
    assert result.segment_by in {"fin", "race", "wexp", "mar", "paro"}
    assert result.cox is not None and set(result.cox.covariates) <= {"fin", "race", "wexp", "mar", "paro"}
    assert len(result.cox.covariates) == 3
    label, value = next(h for h in result.headlines if "ranked right" in h[0])  # concordance, in plain words
    assert value == f"{result.cox.concordance * 100:.0f}%"
    reference = CoxPHFitter().fit(rossi[["week", "arrest", *result.cox.covariates]], "week", "arrest")
    ours = result.cox.summary.set_index("covariate").hazard_ratio
    for covariate in result.cox.covariates:
        assert ours[covariate] == pytest.approx(reference.hazard_ratios_[covariate], rel=1e-6)
    folded = survival.run(ds, survival.Params(segment_by="prio", covariates=["fin"], max_levels=4))
    segments = set(folded.km.km.segment) - {"all users"}
    assert len(segments) == 5 and "other" in segments
    # Every censored man was followed to week 52, the end of the study: no risk within 4 more weeks can be told.
    assert len(folded.at_risk) == (rossi.arrest == 0).sum() and folded.at_risk.churn_probability.isna().all()


@pytest.mark.slow
def test_text_ids_never_become_a_covariate_and_active_users_keep_the_fits_levels():
    """Found on a dataset with text ids (用户001): the users join kept 'user_id_right', which was then
    chosen as a Cox covariate; and the active users' own top levels ('other' drawn differently from the
    fit's) made scoring them fail with a KeyError; a user quieter than any returning user got 0 / 0."""
    rng = np.random.default_rng(11)
    day = pd.Timestamp("2024-01-01")
    users, events = [], []
    for i in range(600):
        big = i < 480  # cities A–H: many users, most of them gone; I–L: few users, most still active
        city = "ABCDEFGH"[i % 8] if big else "IJKL"[i % 4]
        users.append({"user_id": f"用户{i:04d}", "city": city})
        start = int(rng.integers(0, 60))
        stops = start + int(rng.integers(2, 40)) if rng.random() < (0.8 if big else 0.3) else 120
        d = start
        while d < stops:  # visits a geometric number of days apart: the gap model has gaps of every length
            events.append({"user_id": f"用户{i:04d}", "event_at": day + pd.Timedelta(days=d), "event": "open"})
            d += int(rng.geometric(0.3))
    ds = load_dataset({"users": pd.DataFrame(users), "events": pd.DataFrame(events)}, snapshot_at="2024-04-30")
    table, *_ = durations.user_durations(ds, churn_after_days=30)
    assert "user_id_right" not in table.columns and "city" in table.columns
    result = survival.run(ds, survival.Params(max_levels=8))
    assert result.segment_by == "city" and set(result.cox.summary.covariate.str.split("=").str[0]) == {"city"}
    rows = table.execute()
    scored = rows[~rows.churned & (rows.duration + 30 <= rows.duration.max())]  # the rest: beyond the data
    assert len(result.at_risk) == int((~rows.churned).sum())
    assert set(result.at_risk.dropna(subset=["churn_probability"]).user_id) == set(scored.user_id)


@pytest.mark.slow
def test_a_level_nobody_churned_in_is_named_not_estimable_not_read_as_a_hazard_ratio():
    """Complete separation: cities I–L keep every user, so 'other' (their pooled level) has no churn and
    lifelines returns a hazard ratio of about 1e8 with an interval from 0 to infinity. The page says first
    that the model cannot be used, the index marks it a warning, the risk list does not use the model, and
    no sentence and no forest point reads the ratio as a number."""
    from userops_lib import i18n

    rng = np.random.default_rng(11)
    day = pd.Timestamp("2024-01-01")
    users, events = [], []
    for i in range(600):
        big = i < 480
        city = "ABCDEFGH"[i % 8] if big else "IJKL"[i % 4]
        users.append({"user_id": f"u{i:04d}", "city": city})
        start = int(rng.integers(0, 60))
        stops = start + int(rng.integers(2, 40)) if big and rng.random() < 0.8 else 120
        d = start
        while d < stops:
            events.append({"user_id": f"u{i:04d}", "event_at": day + pd.Timedelta(days=d), "event": "open"})
            d += int(rng.geometric(0.3))
    ds = load_dataset({"users": pd.DataFrame(users), "events": pd.DataFrame(events)}, snapshot_at="2024-04-30")
    result = survival.run(ds, survival.Params(max_levels=8, covariates=["city"], references=["city=other"]))
    loose = hazards.not_estimable(result.cox.summary)
    assert loose.all() and result.cox.summary.hazard_ratio.min() > 1e6  # every city against the churn-free 'other'
    assert result.cox.problem == "not_identified" and not result.risk_from_cox
    with i18n.language("en"):
        text = " ".join(result.findings)
        assert result.findings[0] == result.warnings[0] and "cannot be used for predictions" in result.warnings[0]
        assert "city=A" in result.warnings[0] and "churn at" not in text
        assert "forest" not in [c.name for c in result.charts()]  # no estimable hazard ratio to draw
        assert not any("ranked right" in label for label, _ in result.headlines)  # no concordance tile


def test_a_fit_that_does_not_converge_is_a_warning_with_no_estimates():
    """Two covariates that move together to within 1e-9 pass the rank check, and lifelines halts on a
    matrix it cannot invert: the page says the model could not be fitted and what to change, shows no
    hazard ratio, and the risk list comes from the Kaplan–Meier curve."""
    from userops_lib import i18n

    rng = np.random.default_rng(5)
    day = pd.Timestamp("2024-01-01")
    users, events = [], []
    for i in range(300):
        x = float(rng.normal())
        users.append({"user_id": f"u{i:03d}", "x": x, "y": 2 * x + float(rng.normal(0, 1e-9))})
        start = int(rng.integers(0, 60))
        stops = start + int(rng.integers(2, 60))
        for d in range(start, stops, 3):
            events.append({"user_id": f"u{i:03d}", "event_at": day + pd.Timedelta(days=d), "event": "open"})
    ds = load_dataset({"users": pd.DataFrame(users), "events": pd.DataFrame(events)}, snapshot_at="2024-04-30")
    result = survival.run(ds, survival.Params(covariates=["x", "y"]))
    assert result.cox.problem == "not_converged" and result.cox.model is None and result.cox.summary.empty
    assert not result.risk_from_cox
    with i18n.language("en"):
        assert "could not be fitted" in result.findings[0] and "leave out one of the covariates" in result.warnings[0]
        assert "cox" not in {shown.name for shown in result.shown_tables()}
    with i18n.language("zh"):
        assert "未能拟合" in result.warnings[0]


@pytest.mark.slow
def test_the_proportional_hazards_check_runs_at_the_reports_alpha(telco):
    """The check flagged p < 0.01 whatever alpha was; it now uses alpha, as every other test of the report.
    On Telco, gender (p = 0.10) and PhoneService (p = 0.12) are flagged at alpha 0.2 and not at 0.05."""
    table, *_ = durations.user_durations(telco)
    columns = ["gender", "Partner", "Dependents", "PhoneService", "PaperlessBilling", "SeniorCitizen"]
    frame = durations.aggregate(table, columns)
    flagged = {}
    for alpha in (0.05, 0.2):
        ph = hazards.fit_cox(frame, columns, alpha=alpha).ph_test
        assert (ph.violates == (ph.p_value < alpha)).all()
        flagged[alpha] = set(ph.covariate[ph.violates])
    assert flagged[0.2] - flagged[0.05] == {"gender=Female", "PhoneService=No"}


def test_users_at_risk_count_those_still_observed_at_each_time():
    """By hand: durations 1 (x3), 4 (x2), 9 (x1): at 0 all 6, at 1 all 6, at 2 three, at 9 one, at 10 none."""
    from userops_lib.analyses.churn_survival.risk import users_at_risk

    population = pd.DataFrame({"duration": [4.0, 1.0, 9.0], "count": [2, 3, 1]})
    assert users_at_risk(population, np.array([0, 1, 2, 4, 4.5, 9, 10])).tolist() == [6, 6, 3, 3, 1, 1, 0]


@pytest.mark.slow
def test_the_risk_list_says_how_many_users_each_risk_rests_on():
    from userops_lib.analyses import churn_survival

    result = churn_survival.run(load_dataset(DATA / "sample"), churn_survival.Params())
    listed = result.at_risk.dropna(subset=["churn_probability"])
    assert "users_at_risk" in result.tables()["at_risk_users"].columns
    assert (listed.users_at_risk > 0).all() and listed.users_at_risk.max() <= result.users


def test_calibration_tenths_do_not_depend_on_the_engine_row_order():
    """Patterns with the same predicted risk straddle a tenth's edge; the tenths must be the same whatever
    order the engine returned the patterns in (they were not: a join's row order moved users between tenths)."""
    from userops_lib.analyses.churn_survival.risk import calibration_bins

    rng = np.random.default_rng(3)
    counts = pd.DataFrame(
        {
            "duration": np.arange(40),
            "seen": np.arange(40) // 2,
            "silence": 0,
            "users": rng.integers(5, 50, 40),
            "predicted": np.repeat([0.0, 0.1, 0.5, 0.9], 10),  # four risks, ten patterns each
        }
    )
    counts["churned"] = (counts.users * rng.uniform(0, 1, 40)).round().astype(int)
    first, brier = calibration_bins(counts, 0.05)
    for seed in range(5):
        shuffled = counts.sample(frac=1, random_state=seed)
        again, brier_again = calibration_bins(shuffled, 0.05)
        pd.testing.assert_frame_equal(first, again)
        assert brier_again == pytest.approx(brier, rel=1e-12)
    assert first.users.sum() == counts.users.sum() and len(first) > 4
