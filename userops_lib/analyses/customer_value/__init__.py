"""Customer value: who is probably still alive, how many purchases each customer will make and what they
are worth, from the BG/NBD model of repeat purchasing and dropout and the Gamma-Gamma model of spend
(Fader, Hardie & Lee 2005), fitted with pymc-marketing.

Definitions are in :mod:`.engine` (purchases by day, frequency, recency, T, monetary) and :mod:`.models`
(fits and intervals); the catalogue's ``customer_value.definition.*`` states them in every report.
``run(ds, Params(...))`` reduces in the engine (one row per customer), fits and scores (:mod:`.models`)
and tabulates (:mod:`.stats`); text comes from :mod:`userops_lib.analyses.customer_value.text`, charts from
:mod:`userops_lib.analyses.customer_value.charts`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from userops_lib import contract
from userops_lib.analyses.customer_value import engine, models, predictions, stats
from userops_lib.calendar import Calendar
from userops_lib.contract import param
from userops_lib.data import Dataset
from userops_lib.engine import frame as engine_frame
from userops_lib.errors import DataError

UNIT_DAYS = {"day": 1.0, "week": 7.0}
METHODS = ("map", "mcmc")
DAYS_PER_MONTH = models.DAYS_PER_YEAR / 12
MIN_CUSTOMERS, MIN_REPEAT = 20, 5  # fewer customers or repeat buyers: no model is fitted, the report says why


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params(contract.Common):
    time_unit: str = param("week", "unit of frequency, recency and T", choices=("day", "week"))
    holdout_days: int = param(0, "0: fit on everything; more: fit before the last this many days, check on them", ge=0)
    horizon_days: int = param(365, "expected purchases, revenue and value over this many days ahead", ge=1)
    discount_rate: float = param(0.1, "yearly discount rate of customer value", ge=0)
    method: str = param("map", "map: maximum likelihood; mcmc: full posterior (slower)", choices=("map", "mcmc"))
    min_purchases: int = param(1, "the spend model fits customers with at least this many repeat purchases", ge=1)
    purchase_event: str = param(
        "", 'event counted as a purchase; empty: revenue > 0; "*": every event', refers_to="event"
    )
    max_fit_customers: int = param(
        1000000, "fit on a random sample of this many customers when there are more (all are scored)", ge=1000
    )

    def named(self, field_name: str, value: str) -> list[str]:
        return [] if field_name == "purchase_event" and value == "*" else [value]  # "*": every event


@dataclasses.dataclass(frozen=True, kw_only=True)
class CustomerValue(contract.Presented):
    """The fitted models and every customer's predictions. ``customers`` has one row per customer
    (the ``customers.csv`` columns plus ``revenue``, their calibration revenue, ``first_day`` and
    ``last_purchase``). With too few customers to fit (``too_few``), only the counts and no models."""

    ANALYSIS = "customer_value"

    customers: pd.DataFrame
    parameters: pd.DataFrame
    tiers_vs_rfm: pd.DataFrame
    value_reason: str | None  # why there is no spend model (None: there is one)
    calibration_customers: int  # customers with a first purchase by the calibration end
    repeat_buyers: int  # calibration customers who bought again
    calibration_end: dt.date
    end_day: dt.date
    currency: str
    params: Params
    purchase_model: models.Fitted | None = None  # for further predictions in a notebook (pymc-marketing's)
    spend_model: models.Fitted | None = None
    model_problem: str | None = None  # the purchase model was fitted but cannot be used: why (models.Fitted.problem)
    fitted_customers: int = 0  # customers the purchase model was fitted on (a random sample when there are more)
    spend_customers: int = 0
    spend_correlation: float = np.nan
    totals: dict = dataclasses.field(default_factory=dict)  # alive, purchases, revenue: (low, high) intervals
    concentration: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    holdout: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    cumulative: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    winback: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    winback_facts: dict = dataclasses.field(default_factory=lambda: {"customers": 0, "revenue": 0.0})
    alive_grid: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # frequency, recency, T, p_alive
    calendar: Calendar = dataclasses.field(default_factory=Calendar)  # the days, weeks and months counted in

    @property
    def level(self) -> float:
        return self.params.alpha

    @property
    def too_few(self) -> bool:
        """No predictions: fewer than MIN_CUSTOMERS customers or MIN_REPEAT repeat buyers (nothing was fitted),
        or a purchase model that cannot be used (``model_problem``)."""
        return self.purchase_model is None or self.model_problem is not None

    @property
    def has_value(self) -> bool:
        return self.value_reason is None

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {
            "parameters": self.parameters,
            "customers": self.customers[list(CUSTOMER_COLUMNS)],
            "tiers_vs_rfm": self.tiers_vs_rfm,
        }
        if not self.holdout.empty:
            out["holdout"] = self.holdout
        return out


CUSTOMER_COLUMNS = (
    "user_id",
    "frequency",
    "recency",
    "T",
    "monetary",
    "p_alive",
    "expected_purchases",
    "expected_revenue",
    "clv",
    "clv_tier",
)


def run(ds: Dataset, params: Params) -> CustomerValue:
    """Customer value of ``ds`` with the notebook's parameters."""
    unit = UNIT_DAYS[params.time_unit]
    snapshot = pd.Timestamp(ds.snapshot_at).to_pydatetime()
    end_day = engine.end_day(snapshot, ds.calendar)
    calibration_end = end_day - dt.timedelta(days=params.holdout_days)
    events = ds.table("events")
    if params.purchase_event and params.purchase_event != "*" and "event" not in events.columns:
        raise DataError.single(
            "events",
            "the events have no names, so purchase_event cannot choose among them",
            'leave purchase_event empty, or give "*" for every event',
            column="purchase_event",
            example=params.purchase_event,
            key="customer_value.no_event_names",
        )
    if params.purchase_event and params.purchase_event != "*":
        ds.check_events([params.purchase_event], "purchase_event")
    days = engine.purchase_days(
        events, snapshot=snapshot, purchase_event=params.purchase_event or None, calendar=ds.calendar
    ).cache()
    calibration_customers = engine.summary(days, calibration_end=calibration_end).cache()  # read twice below
    calibration = engine_frame(calibration_customers, order_by="user_id")
    repeat_buyers = int((calibration.frequency > 0).sum())
    if len(calibration) < MIN_CUSTOMERS or repeat_buyers < MIN_REPEAT:
        # Not bad input, too little of it: a page that says so (and a run that succeeds), not a failed report.
        return _too_few(calibration, repeat_buyers, params, calibration_end, end_day, ds.currency, ds.calendar)
    fit_frame = stats.modelling_frame(calibration, unit)
    sample = fit_frame
    if len(fit_frame) > params.max_fit_customers:
        sample = fit_frame.sample(params.max_fit_customers, random_state=0).sort_index()
    purchases = models.fit_purchases(sample, method=params.method, alpha=params.alpha)
    if purchases.problem is not None:
        # A fit that is not identified or did not converge predicts nothing worth reading: the page says so.
        return _too_few(
            calibration,
            repeat_buyers,
            params,
            calibration_end,
            end_day,
            ds.currency,
            ds.calendar,
            failed=purchases,
        )
    parameters = [purchases.parameters]

    holdout = pd.DataFrame()
    if params.holdout_days > 0:
        predicted = models.predict(purchases, fit_frame, params.holdout_days / unit).expected_purchases.to_numpy()
        holdout = stats.holdout_table(calibration, predicted)
    cumulative = stats.cumulative(
        engine_frame(engine.daily(days, calibration_customers)),
        purchases,
        unit,
        end_day,
    )
    # Today's customers, scored with the calibration fit on their whole history.
    summary = (
        calibration
        if params.holdout_days == 0
        else engine_frame(engine.summary(days, calibration_end=end_day), order_by="user_id")
    )
    frame = fit_frame if params.holdout_days == 0 else stats.modelling_frame(summary, unit)
    histories = predictions.Histories.of(frame)  # every prediction below is computed once per distinct history
    horizon = params.horizon_days / unit
    scored = models.predict(purchases, histories, horizon)

    value_reason, spend, spend_correlation, spend_n = _value_model(fit_frame, params, ds)
    if spend is not None:
        parameters.append(spend.parameters)
        per_purchase = models.expected_spend(spend, frame)
        steps = max(1, round(params.horizon_days / DAYS_PER_MONTH))
        rate = (1 + params.discount_rate) ** (params.horizon_days / steps / models.DAYS_PER_YEAR) - 1
        clv = models.clv(purchases, histories, per_purchase, horizon=horizon, steps=steps, discount=rate)
        expected_revenue = scored.expected_purchases.to_numpy() * per_purchase
    else:
        clv = expected_revenue = np.full(len(frame), np.nan)
    customers = pd.DataFrame(
        {
            "user_id": summary.user_id.to_numpy(),
            "frequency": summary.frequency.to_numpy(int),
            "recency": frame.recency.to_numpy(),
            "T": frame["T"].to_numpy(),
            "monetary": summary.monetary.to_numpy(float),
            "p_alive": scored.p_alive.to_numpy(),
            "expected_purchases": scored.expected_purchases.to_numpy(),
            "expected_revenue": expected_revenue,
            "clv": clv,
            "revenue": summary.revenue.to_numpy(float),
            "first_day": summary.first_day.to_numpy(),
            "last_purchase": pd.to_datetime(summary.first_day)
            + pd.to_timedelta(summary.recency_days.to_numpy(float), unit="D"),
        }
    )
    if value_reason == "no_revenue":  # the data has no revenue: none is shown, not 0.00 for everyone
        customers[["monetary", "revenue"]] = np.nan
    ranking = customers.clv if spend is not None else customers.expected_purchases
    customers["clv_tier"] = stats.value_tiers(ranking)
    totals = stats.totals(purchases, frame, horizon, params.alpha, spend, histories=histories)
    winback, winback_facts = stats.winback(customers)
    return CustomerValue(
        calendar=ds.calendar,
        customers=customers,
        parameters=pd.concat(parameters, ignore_index=True),
        value_reason=value_reason,
        totals=totals,
        concentration=stats.concentration(ranking),
        holdout=holdout,
        cumulative=cumulative,
        tiers_vs_rfm=_tiers_vs_rfm(ds, customers, snapshot),
        winback=winback,
        winback_facts=winback_facts,
        alive_grid=_alive_grid(purchases, frame),
        spend_customers=spend_n,
        spend_correlation=spend_correlation,
        fitted_customers=len(sample),
        calibration_customers=len(fit_frame),
        calibration_end=calibration_end,
        end_day=end_day,
        currency=ds.currency,
        params=params,
        purchase_model=purchases,
        spend_model=spend,
        repeat_buyers=repeat_buyers,
    )


def _too_few(
    calibration, repeat_buyers, params, calibration_end, end_day, currency, calendar, failed=None
) -> CustomerValue:
    """The result when there is too little to fit, or the fit ``failed`` (not identified, not converged): the
    customers as counted, no predictions; a failed fit's parameters are kept to show why."""
    customers = calibration.assign(
        recency=calibration.recency_days / UNIT_DAYS[params.time_unit],
        T=calibration.T_days / UNIT_DAYS[params.time_unit],
        p_alive=np.nan,
        expected_purchases=np.nan,
        expected_revenue=np.nan,
        clv=np.nan,
        clv_tier=None,
        last_purchase=pd.NaT,
    )
    return CustomerValue(
        calendar=calendar,
        customers=customers,
        parameters=(
            failed.parameters
            if failed is not None
            else pd.DataFrame(columns=["model", "parameter", "value", "ci_low", "ci_high"])
        ),
        tiers_vs_rfm=pd.DataFrame(columns=list(stats.TIERS_VS_RFM)),
        value_reason="too_few",
        model_problem=None if failed is None else failed.problem,
        purchase_model=failed,
        calibration_customers=len(calibration),
        repeat_buyers=repeat_buyers,
        calibration_end=calibration_end,
        end_day=end_day,
        currency=currency,
        params=params,
    )


def _value_model(frame: pd.DataFrame, params: Params, ds: Dataset):
    """The Gamma-Gamma fit on the calibration period's repeat buyers with at least ``min_purchases``
    repeats and positive spend (as the purchase model, fitted before any holdout), or why there is none: (reason, fitted or None, correlation of frequency and spend, customers fitted)."""
    if "revenue" not in ds.table("events").columns:
        return "no_revenue", None, np.nan, 0
    chosen = frame[(frame.frequency >= params.min_purchases) & (frame.monetary_value > 0)]
    if len(chosen) < 20:
        return "few_repeat", None, np.nan, len(chosen)
    correlation = float(np.corrcoef(chosen.frequency, chosen.monetary_value)[0, 1]) if len(chosen) > 2 else np.nan
    sample = chosen
    if len(chosen) > params.max_fit_customers:
        sample = chosen.sample(params.max_fit_customers, random_state=0).sort_index()
    spend = models.fit_spend(
        sample[["customer_id", "frequency", "monetary_value"]], method=params.method, alpha=params.alpha
    )
    if not spend.value("q") > 1:
        return "heavy_tail", None, correlation, len(sample)
    if spend.problem is not None:  # the spend model cannot be used: purchases are predicted, revenue is not
        return "spend_failed", None, correlation, len(sample)
    return None, spend, correlation, len(sample)


def _alive_grid(purchases: models.Fitted, frame: pd.DataFrame, size: int = 40):
    """P(alive) over recency x frequency for a customer observed for the longest T (Fader–Hardie's plot)."""
    T = float(frame["T"].max())
    top = int(max(1, np.ceil(np.quantile(frame.frequency, 0.99))))
    frequencies = np.unique(np.linspace(0, top, min(top + 1, size)).round().astype(int))
    recencies = np.linspace(0, T, size)
    f, r = np.meshgrid(frequencies, recencies, indexing="ij")
    grid = pd.DataFrame({"frequency": f.ravel().astype(float), "recency": r.ravel(), "T": T})
    grid.insert(0, "customer_id", np.arange(len(grid)))
    grid["p_alive"] = models.predict(purchases, grid, 1.0).p_alive.to_numpy()
    return grid.drop(columns="customer_id")


def _tiers_vs_rfm(ds: Dataset, customers: pd.DataFrame, snapshot) -> pd.DataFrame:
    """Value tiers against today's RFM segments, as segment profiling assigns them (its default basis).

    The users' ids stay in Arrow: each customer finds their row among the RFM users by Arrow's hash lookup,
    not by a pandas merge of millions of Python strings (5M customers: 7 s)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from userops_lib.rfm import DEFAULT_SEGMENTS, KEPT, NO_PURCHASE, OTHERS, assign, default_basis, features

    basis = default_basis(ds)
    table = features(ds, snapshot=snapshot, basis=basis).select("user_id", *KEPT).to_pyarrow()
    ids = table.column("user_id")
    users = assign(table.drop(["user_id"]).to_pandas(self_destruct=True))
    row = pc.index_in(pa.array(customers.user_id.to_numpy(), from_pandas=True).cast(ids.type), value_set=ids)
    row = row.to_numpy(zero_copy_only=False)
    found = ~np.isnan(row)
    rfm = np.full(len(customers), NO_PURCHASE, dtype=object)
    rfm[found] = users.rfm_segment.to_numpy()[row[found].astype(np.int64)]
    order = [s[0] for s in DEFAULT_SEGMENTS] + [OTHERS, NO_PURCHASE]
    return stats.tiers_vs_rfm(customers, pd.Series(rfm, index=customers.index), order)


ABOUT = contract.About(
    summary="Who is probably still a customer, how many purchases each customer will make in the horizon and what they are worth: the BG/NBD model of repeat purchasing and dropout with the Gamma-Gamma model of spend (pymc-marketing), checked on a holdout when `holdout_days` > 0.",
    requires=(("events",),),
)


__all__ = ["ABOUT", "CUSTOMER_COLUMNS", "CustomerValue", "Params", "run"]
