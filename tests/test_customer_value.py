"""Customer value against the literature (CDNOW, Fader, Hardie & Lee 2005), lifetimes' published summary
and standard errors, pymc-marketing's own CLV arithmetic, and synthetic worlds whose BG/NBD truth we set."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT
from userops_lib import i18n
from userops_lib.analyses import customer_value
from userops_lib.analyses.customer_value import engine, models, predictions, stats
from userops_lib.data import load_dataset
from userops_lib.errors import DataError
from userops_lib.synth import WorldParameters, make_world
from userops_lib.synth_purchases import STORE

LIFETIMES = Path(importlib.util.find_spec("lifetimes").origin).parent / "datasets"
# Fader, Hardie & Lee (2005), CDNOW 1/10th sample, 39-week calibration, weeks: BG/NBD ("Counting your
# customers the easy way") and Gamma-Gamma ("RFM and CLV: using iso-value curves").
PUBLISHED = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258, "p": 6.25, "q": 3.74, "v": 15.44}


def _raw_log() -> pd.DataFrame:
    """The CDNOW sample file as pandas reads it: customer (new id), date as YYYYMMDD, CDs, dollars."""
    return pd.read_csv(LIFETIMES / "CDNOW_sample.txt", sep=r"\s+", header=None, names=["m", "id", "date", "n", "usd"])


@pytest.fixture(scope="module")
def cdnow_sample(tmp_path_factory) -> Path:
    """The CDNOW 1/10th sample (2,357 customers, 1997-01 to 1998-06) as shipped in the lifetimes wheel:
    a whitespace file without a header, ids with leading zeros, every row a purchase."""
    folder = tmp_path_factory.mktemp("cdnow_sample")
    shutil.copy(LIFETIMES / "CDNOW_sample.txt", folder / "CDNOW_sample.txt")
    (folder / "dataset.yml").write_text(
        "name: cdnow_sample\ncurrency: $\nsnapshot_at: '1998-07-01'\ntables:\n  events:\n"
        "    path: CDNOW_sample.txt\n    format: whitespace\n"
        "    names: [master_id, customer_id, date, cds, dollar_value]\n"
        "    columns:\n      user_id: customer_id\n      event_at: {column: date, format: '%Y%m%d'}\n"
        "      revenue: dollar_value\n"
    )
    return folder


@pytest.fixture(scope="module")
def cdnow_result(cdnow_sample):
    # 39 weeks of calibration (to 30 Sep 1997), 39 weeks of holdout (273 days to 30 Jun 1998).
    params = customer_value.Params(dataset=str(cdnow_sample), holdout_days=273, purchase_event="*")
    return customer_value.run(load_dataset(cdnow_sample), params)


def test_the_summary_of_the_raw_cdnow_log_is_fader_and_hardies(cdnow_sample):
    """One engine pass over the raw log gives, for every customer, the x, t_x, T and mean repeat spend
    of the summary Fader and Hardie published (as lifetimes ships it, rounded to 2 decimals)."""
    ds = load_dataset(cdnow_sample)
    days = engine.purchase_days(
        ds.table("events"), snapshot=dt.datetime(1998, 7, 1), purchase_event="*", calendar=ds.calendar
    )
    ours = engine.summary(days, calibration_end=dt.date(1997, 9, 30)).execute()
    published = pd.read_csv(LIFETIMES / "cdnow_customers_summary_with_transactions.csv")
    assert len(ours) == len(published) == 2357
    assert ours.user_id.str.len().eq(4).all() and "0001" in set(ours.user_id)  # leading zeros kept
    both = ours.assign(ID=ours.user_id.astype(int)).merge(published, on="ID")
    assert len(both) == 2357
    assert (both.frequency == both.x).all()
    assert np.abs(both.recency_days / 7 - both.t_x).max() < 0.006
    assert np.abs(both.T_days / 7 - both["T"]).max() < 0.006
    assert np.abs(both.monetary - both.zbar).max() < 0.006
    # Holdout purchases: the purchase days after 30 Sep 1997, counted from the raw file by pandas.
    assert int(both.holdout.sum()) == len(_raw_log().query("date > 19970930").drop_duplicates(["id", "date"]))


@pytest.mark.slow
def test_cdnow_parameters_are_the_published_ones(cdnow_result):
    fitted = cdnow_result.parameters.set_index("parameter")
    for name, value in PUBLISHED.items():
        assert float(f"{fitted.value[name]:.3g}") == float(f"{value:.3g}"), (name, fitted.value[name], value)
        assert fitted.ci_low[name] < fitted.value[name] < fitted.ci_high[name]
    assert cdnow_result.spend_customers == 946  # repeat buyers in the calibration period, as in the paper
    assert round(cdnow_result.spend_correlation, 2) == 0.11  # frequency vs mean spend: the paper's 0.11


def test_bgnbd_intervals_are_lifetimes_standard_errors(cdnow_result):
    """Our Wald intervals on the log scale imply, by the delta method, lifetimes' standard errors."""
    from lifetimes import BetaGeoFitter

    published = pd.read_csv(LIFETIMES / "cdnow_customers_summary.csv")
    reference = BetaGeoFitter().fit(published.frequency, published.recency, published["T"]).summary
    fitted = cdnow_result.parameters.set_index("parameter")
    for name in ("r", "alpha", "a", "b"):
        implied = fitted.value[name] * np.log(fitted.ci_high[name] / fitted.ci_low[name]) / (2 * 1.959964)
        assert implied == pytest.approx(reference.loc[name, "se(coef)"], rel=0.01), name


def test_holdout_table_counts_every_calibration_customer_and_their_holdout_purchases(cdnow_result):
    holdout = cdnow_result.holdout
    assert list(holdout.columns) == ["calibration_purchases", "customers", "actual", "predicted"]
    assert list(holdout.calibration_purchases) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert holdout.customers.sum() == 2357 and holdout.customers.iloc[0] == 1411
    # Fader, Hardie & Lee's conditional expectations: about 0.23 holdout purchases for x = 0.
    assert holdout.predicted.iloc[0] == pytest.approx(0.225, abs=0.005)
    # The x = 0 customers' holdout purchase days, counted from the raw file by pandas.
    raw = _raw_log().drop_duplicates(["id", "date"])
    calibration = raw[raw.date <= 19970930]
    one_timers = calibration.groupby("id").size().loc[lambda n: n == 1].index
    holdout_days = raw[(raw.date > 19970930) & raw.id.isin(one_timers)]
    assert holdout.actual.iloc[0] == pytest.approx(len(holdout_days) / len(one_timers))


def test_expected_cumulative_purchases_are_the_sum_of_each_customers_expectation(cdnow_result):
    """The day-by-day convolution equals, at the calibration end, the sum over calibration customers of
    a new customer's expected repeat purchases over their own T (pymc-marketing, per customer)."""
    frame = cdnow_result.cumulative.set_index("day")
    cal = pd.Timestamp(cdnow_result.calibration_end)
    customers = cdnow_result.customers
    t = (cal - pd.to_datetime(customers.first_day)).dt.days.to_numpy() / 7
    fitted = cdnow_result.purchase_model
    direct = models.expected_new_customer(fitted, t).sum()
    assert frame.expected[cal] == pytest.approx(direct, rel=1e-9)
    assert frame.actual.iloc[-1] > frame.actual[cal]  # holdout purchases continue the actual line


@pytest.mark.slow
def test_clv_is_pymc_marketings_arithmetic_on_the_same_steps(cdnow_result):
    """Our discounted sum equals pymc-marketing's customer_lifetime_value when both step by its months
    (4.345 weeks) at its monthly rate."""
    from pymc_marketing.clv.utils import customer_lifetime_value

    customers = cdnow_result.customers.head(200)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(200),
            "frequency": customers.frequency,
            "recency": customers.recency,
            "T": customers["T"],
        }
    )
    purchases = cdnow_result.purchase_model
    spend = np.linspace(10, 50, len(frame))
    ours = models.clv(purchases, frame, spend, horizon=12 * 4.345, steps=12, discount=0.01)
    theirs = customer_lifetime_value(
        purchases.model, frame.assign(future_spend=spend), future_t=12, discount_rate=0.01, time_unit="W"
    )
    assert np.allclose(ours, theirs.to_numpy().ravel(), rtol=1e-9)
    undiscounted = models.clv(purchases, frame, spend, horizon=52.14, steps=12, discount=0.0)
    expected = models.predict(purchases, frame, 52.14).expected_purchases.to_numpy() * spend
    assert np.allclose(undiscounted, expected, rtol=1e-9)


def _with_posterior(fitted: models.Fitted, draws: pd.DataFrame) -> models.Fitted:
    """``fitted`` whose pymc-marketing model has ``draws`` (one row per draw) as its posterior (one chain)."""
    import copy

    import arviz as az

    clone = copy.copy(fitted.model)
    clone.idata = az.from_dict(posterior={k: draws[k].to_numpy()[None, :] for k in draws.columns})
    return dataclasses.replace(fitted, model=clone, draws=draws)


def test_closed_form_predictions_are_pymc_marketings_own_methods(cdnow_result):
    """Our NumPy predictions (once per distinct history) equal pymc-marketing's methods (xarray, per customer,
    mean over the posterior) to 1e-9: at the MAP fit and at 60 parameter draws, for P(alive), expected
    purchases, a new customer's purchases and the expected spend; and the totals' per-draw sums."""
    customers = cdnow_result.customers
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(len(customers)),
            "frequency": customers.frequency.astype(float),
            "recency": customers.recency,
            "T": customers["T"],
            "monetary_value": customers.monetary,
        }
    )
    assert predictions.Histories.of(frame).x.size < len(frame)  # customers do share histories
    map_fit, spend_fit = cdnow_result.purchase_model, cdnow_result.spend_model
    drawn = _with_posterior(map_fit, map_fit.draws.iloc[:60].reset_index(drop=True))
    drawn_spend = _with_posterior(spend_fit, spend_fit.draws.iloc[:60].reset_index(drop=True))

    def mean(values) -> np.ndarray:
        return values.mean(("chain", "draw")).to_numpy()

    for purchases, spend in ((map_fit, spend_fit), (drawn, drawn_spend)):
        ours = models.predict(purchases, frame, 30.0)
        assert np.allclose(ours.p_alive, mean(purchases.model.expected_probability_alive(data=frame)), rtol=1e-9)
        theirs = mean(purchases.model.expected_purchases(data=frame, future_t=30.0))
        assert np.allclose(ours.expected_purchases, theirs, rtol=1e-9)
        t = np.array([0.0, 1.0, 13.5, 52.0, 104.0])
        new = mean(
            purchases.model.expected_purchases_new_customer(data=pd.DataFrame({"customer_id": range(5), "t": t}))
        )
        assert np.allclose(models.expected_new_customer(purchases, t), new, rtol=1e-9)
        per_purchase = mean(spend.model.expected_customer_spend(data=frame))
        assert np.allclose(models.expected_spend(spend, frame), per_purchase, rtol=1e-9)
    # The totals' interval: per draw, the sum over customers of pymc-marketing's predictions at that draw.
    totals = stats.totals(map_fit, frame, 30.0, 0.1, spend_fit, draws=60)
    alive = drawn.model.expected_probability_alive(data=frame).sum("customer_id").to_numpy().ravel()
    bought = drawn.model.expected_purchases(data=frame, future_t=30.0).to_numpy()[0]
    spend_draws = spend_fit.draws.sample(60, replace=True, random_state=1).reset_index(drop=True)
    per_purchase = _with_posterior(spend_fit, spend_draws).model.expected_customer_spend(data=frame).to_numpy()[0]
    for key, per_draw in (
        ("alive", alive),
        ("purchases", bought.sum(axis=1)),
        ("revenue", (bought * per_purchase).sum(axis=1)),
    ):
        assert np.allclose(totals[key], np.quantile(per_draw, [0.05, 0.95]), rtol=1e-9), key


def test_customer_predictions_are_lifetimes_at_the_same_parameters(cdnow_result):
    """P(alive), expected purchases in the horizon and expected revenue of every customer equal the
    formulas of lifetimes (the original implementation) evaluated at our fitted parameters."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    value = cdnow_result.parameters.set_index("parameter").value
    purchases, spend = BetaGeoFitter(), GammaGammaFitter()
    purchases.params_ = value[["r", "alpha", "a", "b"]]
    spend.params_ = value[["p", "q", "v"]]
    customers = cdnow_result.customers
    x, t_x, T = customers.frequency, customers.recency, customers["T"]
    assert np.allclose(customers.p_alive, purchases.conditional_probability_alive(x, t_x, T), rtol=1e-9)
    expected = purchases.conditional_expected_number_of_purchases_up_to_time(365 / 7, x, t_x, T)
    assert np.allclose(customers.expected_purchases, expected, rtol=1e-9)
    per_purchase = spend.conditional_expected_average_profit(x, customers.monetary)
    assert np.allclose(customers.expected_revenue, expected * per_purchase, rtol=1e-9)


def test_customers_artifact_and_headline_totals_agree(cdnow_result):
    tables = cdnow_result.tables()
    assert set(tables) == {"parameters", "customers", "tiers_vs_rfm", "holdout"}
    customers = tables["customers"]
    assert list(customers.columns) == list(customer_value.CUSTOMER_COLUMNS)
    assert len(customers) == 2357 and customers.user_id.is_unique
    assert customers.p_alive.between(0, 1).all() and (customers.p_alive[customers.frequency == 0] == 1).all()
    assert (customers.clv <= customers.expected_revenue + 1e-9).all()  # discounting only lowers value
    assert set(customers.clv_tier) == {"high", "mid", "low"}
    high = customers[customers.clv_tier == "high"]
    assert high.clv.min() >= customers[customers.clv_tier != "high"].clv.max()
    low, high_ci = cdnow_result.totals["purchases"]
    assert low < customers.expected_purchases.sum() < high_ci
    crosstab = tables["tiers_vs_rfm"]
    assert crosstab.customers.sum() == 2357
    assert (crosstab[["high", "mid", "low"]].sum(axis=1) == crosstab.customers).all()


@pytest.mark.slow
def test_the_full_posterior_agrees_with_the_maximum_likelihood_fit():
    """method=mcmc (NUTS, flat priors) on CDNOW's published summary: converged chains whose credible
    intervals hold the maximum-likelihood values."""
    published = pd.read_csv(LIFETIMES / "cdnow_customers_summary.csv").rename(columns={"ID": "customer_id"})
    posterior = models.fit_purchases(published, method="mcmc")
    assert posterior.diagnostics["rhat"] < 1.02 and posterior.diagnostics["ess"] > 300
    table = posterior.parameters.set_index("parameter")
    for name in ("r", "alpha", "a", "b"):
        assert table.ci_low[name] < PUBLISHED[name] < table.ci_high[name], name
    assert len(posterior.draws) == 4000  # 4 chains of 1,000


@pytest.mark.slow
def test_synthetic_bgnbd_worlds_are_recovered_within_their_intervals():
    """Six worlds whose store orders are BG/NBD with Gamma-Gamma spend of known parameters: 95% intervals
    should cover the truth about 40 times in 42 (fewer than 36 would be a 1% event)."""
    truth = {k: v for k, v in STORE["purchases"].items() if k != "time_unit"}
    truth |= {"p": STORE["spend"]["p"], "q": STORE["spend"]["q"], "v": STORE["spend"]["gamma"]}
    world = WorldParameters(store=STORE)
    covered = 0
    for seed in range(6):
        tables = make_world(users=4000, seed=seed, params=world)
        ds = load_dataset({"users": tables["users"], "events": tables["events"]})
        result = customer_value.run(ds, customer_value.Params(purchase_event="shop_order"))
        fitted = result.parameters.assign(truth=lambda f: f.parameter.map(truth))
        covered += int(((fitted.ci_low <= fitted.truth) & (fitted.truth <= fitted.ci_high)).sum())
        assert result.customers.user_id.nunique() == 4000  # every user ordered at signup
    assert covered >= 36


@pytest.mark.slow
def test_without_revenue_there_is_a_purchase_model_only(make_dataset):
    # Visits at random gaps, each customer with their own rate and chance of leaving after a visit (a world
    # BG/NBD can identify; the same visit every 12 days for everyone gave intervals from 0 to infinity).
    rng = np.random.default_rng(3)
    rows = []
    for user in range(300):
        day = int(rng.integers(0, 60))
        rate, leaves = rng.gamma(2.0, 0.05), rng.beta(1.0, 3.0)
        while day < 150:
            when = pd.Timestamp("2025-01-01") + pd.Timedelta(days=day)
            rows.append({"user_id": f"#{user:04d}", "event_at": when, "event": "visit"})
            if rng.random() < leaves:
                break
            day += 1 + int(rng.exponential(1 / rate))
    folder = make_dataset(
        {"events.csv": pd.DataFrame(rows)},
        {"snapshot_at": "2025-06-01 00:00:00", "tables": {"events": {"path": "events.csv"}}},
    )
    result = customer_value.run(load_dataset(folder), customer_value.Params())
    assert result.value_reason == "no_revenue" and set(result.parameters.model) == {"bgnbd"}
    assert result.model_problem is None and np.isfinite(result.parameters.ci_high).all()
    assert result.customers.clv.isna().all() and "#0000" in set(result.customers.user_id)
    # Numbers the data does not have are not shown as 0.00: no spend, no "after spending 0.00".
    assert result.customers.monetary.isna().all() and result.tables()["customers"].monetary.isna().all()
    with i18n.language("en"):
        assert any("no value model" in s and "no revenue" in s for s in result.findings)
        assert not any("spending" in s or "0.00" in s for s in result.findings)
        assert any("probably gone" in s and "by how often they bought" in s for s in result.findings)
        assert "expected revenue" not in " ".join(label for label, _ in result.headlines)
    with i18n.language("zh"):
        assert any("没有价值模型" in s for s in result.findings)


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, column",
    [
        ({"time_unit": "month"}, "time_unit"),
        ({"method": "nuts"}, "method"),
        ({"holdout_days": -1}, "holdout_days"),
        ({"discount_rate": -0.1}, "discount_rate"),
        ({"purchase_event": "refund"}, "purchase_event"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(change, column):
    ds = load_dataset(ROOT / "data" / "sample")
    with pytest.raises(DataError) as caught:
        customer_value.run(ds, customer_value.Params(**change))
    assert caught.value.problems[0].column == column


def test_too_few_customers_give_a_page_that_says_so_not_a_failed_run(cdnow_sample):
    """A holdout longer than the data leaves no calibration customers: nothing is fitted and the report
    says why (the run succeeds, so a batch of reports is not failed by one thin dataset)."""
    result = customer_value.run(load_dataset(cdnow_sample), customer_value.Params(holdout_days=600, purchase_event="*"))
    assert result.too_few and result.charts() == [] and result.shown_tables() == []
    assert len(result.tables()["customers"]) == 0 and result.tables()["parameters"].empty
    with i18n.language("en"):
        assert result.findings == [
            "0 customers made a first purchase by 7 Nov 1996 and 0 bought again: too few to fit the purchase "
            "model (it needs at least 20 customers and 5 repeat buyers). Use data with more customers or repeat "
            "purchases, a shorter holdout_days, or another purchase_event."
        ]
    with i18n.language("zh"):
        assert result.findings[0].startswith("截至 1996年11月7日 有 0 位客户完成首次购买")


@pytest.mark.slow
def test_the_report_publishes_in_english_and_chinese_from_another_directory(cdnow_sample, tmp_path):
    """`userops report --only customer_value`, run from elsewhere with a relative --out, in both languages."""
    for language in ("en", "zh"):
        result = subprocess.run(
            [sys.executable, "-m", "userops_lib.cli", "report", str(cdnow_sample), "--only", "customer_value"]
            + ["--out", f"out-{language}", "--lang", language, "-p", "holdout_days=273", "-p", "purchase_event=*"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        run = (tmp_path / f"out-{language}" / "latest").resolve()
        page = (run / "customer_value.html").read_text(encoding="utf-8")
        files = {p.name for p in (run / "customer_value").iterdir()}
        assert {"parameters.csv", "customers.csv", "holdout.csv", "tiers_vs_rfm.csv", "headline.json"} <= files
        customers = pd.read_csv(run / "customer_value" / "customers.csv", dtype={"user_id": str})
        assert len(customers) == 2357 and customers.user_id.iloc[0] == "0001"
        alive = f"{customers.p_alive.sum():,.0f}"
        repeat = customers[customers.frequency > 0]
        headline = dict(json.loads((run / "customer_value" / "headline.json").read_text()))
        share = repeat.p_alive.sum() / len(repeat)
        assert headline["repeat buyers expected still active"] == f"{repeat.p_alive.sum():,.0f} ({share:.1%})"
        assert "<img" in page and "Traceback" not in page
        if language == "en":
            assert f"Of the {len(repeat):,} customers who bought again, {repeat.p_alive.sum():,.0f} (" in page
            assert f"so all 2,357 together read {alive} (" in page
            holdout = pd.read_csv(run / "customer_value" / "holdout.csv")
            predicted = (holdout.predicted * holdout.customers).sum()
            made = len(_raw_log().query("date > 19970930").drop_duplicates(["id", "date"]))  # from the raw file
            assert (
                f"the model predicted {predicted:,.0f} repeat purchases against {made:,} made, "
                f"{(made - predicted) / made:.1%} too few" in page
            )
        else:
            assert f"全部 2,357 位客户合计为 {alive} 位" in page and f"{len(repeat):,} 位复购客户中" in page
            assert "Of 2,357" not in page


def _nobody_leaves() -> pd.DataFrame:
    """80 customers who each buy every second day until the end: no one ever stops, so BG/NBD's dropout
    process has nothing to be estimated from (its likelihood is flat towards a -> 0, r and alpha -> inf)."""
    rows = [
        (user, pd.Timestamp("2025-01-01") + pd.Timedelta(days=day, hours=10), 10.0)
        for user in range(80)
        for day in range(user % 20, 120, 2)
    ]
    return pd.DataFrame(rows, columns=["user_id", "event_at", "revenue"])


@pytest.mark.slow
def test_a_model_the_data_cannot_identify_is_a_finding_not_a_page_of_predictions():
    result = customer_value.run(
        load_dataset({"events": _nobody_leaves()}, snapshot_at=dt.datetime(2025, 5, 1)), customer_value.Params()
    )
    assert result.model_problem == "not_identified" and result.too_few
    parameters = result.tables()["parameters"]
    assert len(parameters) == 4 and not np.isfinite(parameters.ci_high).all()  # why: shown, not hidden
    customers = result.tables()["customers"]
    assert len(customers) == 80 and customers.p_alive.isna().all() and customers.clv.isna().all()
    assert result.charts() == [] and [s.name for s in result.shown_tables()] == ["parameters"]
    with i18n.language("en"):
        assert result.findings[0].startswith("The purchase model cannot be estimated from these data")
        assert result.warnings == result.findings[:1]
        assert ("purchase model", "cannot be estimated") in result.headlines
        assert not any("still active" in label or "%" in value for label, value in result.headlines)
    with i18n.language("zh"):
        assert result.findings[0].startswith("这些数据无法估计购买模型")


def test_a_healthy_fit_carries_no_warning(cdnow_result):
    assert cdnow_result.model_problem is None and cdnow_result.warnings == []
    assert cdnow_result.purchase_model.problem is None


def test_the_first_finding_counts_repeat_buyers_not_what_the_model_assumes(cdnow_result):
    """CDNOW's first finding read "76.3% still active", counting the one-time buyers BG/NBD treats as alive
    by assumption; it now leads with the repeat buyers' share, and says what the total includes."""
    customers = cdnow_result.customers
    repeat = customers[customers.frequency > 0]
    share = f"{repeat.p_alive.sum() / len(repeat):.1%}"
    with i18n.language("en"):
        first = cdnow_result.findings[0]
    assert (
        first.startswith(f"Bottom line: Of the {len(repeat):,} customers who bought again, ") and f"({share})" in first
    )
    assert first.index(share) < first.index("by the model's assumption")


@pytest.mark.slow
def test_the_index_shows_a_failed_model_as_a_warning_not_ok(make_dataset, tmp_path):
    folder = make_dataset(
        {"events.csv": _nobody_leaves()}, {"snapshot_at": "2025-05-01", "tables": {"events": {"path": "events.csv"}}}
    )
    result = subprocess.run(
        [sys.executable, "-m", "userops_lib.cli", "report", str(folder), "--only", "customer_value"]
        + ["--out", str(tmp_path / "out"), "--lang", "zh"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr  # the page is right: it says the model failed
    assert "WARNING" in result.stderr
    run = (tmp_path / "out" / "latest").resolve()
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    [report] = manifest["reports"]
    assert report["status"] == "ok" and report["warnings"][0].startswith("这些数据无法估计购买模型")
    index = (run / "index.html").read_text(encoding="utf-8")
    assert "class='status-warning'" in index and "这些数据无法估计购买模型" in index
    assert "class='status-ok'" not in index
    assert json.loads((run / "customer_value" / "warnings.json").read_text())[0].startswith("The purchase model")
