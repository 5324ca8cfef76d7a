"""Customer value's tables from the per-customer frame and the fitted models: the holdout check by
calibration purchases and over time, totals with intervals, how concentrated value is, value tiers
against RFM segments and the win-back list."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from userops_lib.analyses.customer_value import models
from userops_lib.rfm import tiers

GONE_BELOW = 0.5  # P(alive) under this: probably gone
HOLDOUT_BINS = 7  # calibration purchases 0..6 and 7+, as in Fader, Hardie & Lee's figure
TOP_SHARES = (0.01, 0.05, 0.1, 0.2, 0.5)
HIGH_SHARE, MID_SHARE = 0.2, 0.3
CHUNK = 20_000
TIERS_VS_RFM = (
    "rfm_segment",
    "customers",
    "high",
    "mid",
    "low",
    "probably_gone",
    "mean_p_alive",
    "mean_clv",
)  # groups of customers per step of the interval draws  # value tiers as segment profiling's: top 20% of value, next 30%


def modelling_frame(summary: pd.DataFrame, unit_days: float) -> pd.DataFrame:
    """pymc-marketing's columns: customer_id, frequency, recency and T in time units, monetary_value."""
    return pd.DataFrame(
        {
            "customer_id": np.arange(len(summary)),
            "frequency": summary.frequency.to_numpy(float),
            "recency": summary.recency_days.to_numpy(float) / unit_days,
            "T": summary.T_days.to_numpy(float) / unit_days,
            "monetary_value": summary.monetary.to_numpy(float),
        }
    )


def holdout_table(calibration: pd.DataFrame, predicted: np.ndarray) -> pd.DataFrame:
    """Mean purchases per customer in the holdout, actual and predicted, by calibration repeat purchases."""
    label = np.minimum(calibration.frequency.to_numpy(int), HOLDOUT_BINS)
    frame = pd.DataFrame({"bin": label, "actual": calibration.holdout.to_numpy(float), "predicted": predicted})
    out = frame.groupby("bin").agg(
        customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")
    )
    out = out.reset_index()
    out.insert(0, "calibration_purchases", [f"{b}+" if b == HOLDOUT_BINS else str(b) for b in out.pop("bin")])
    return out


def cumulative(daily: pd.DataFrame, purchases: models.Fitted, unit_days: float, end_day) -> pd.DataFrame:
    """Cumulative repeat purchases of the calibration customers by day, actual and expected: each day's
    new customers times a new customer's expected purchases since (BG/NBD, pymc-marketing)."""
    days = pd.to_datetime(daily.day)
    start = days.min()
    length = int((pd.Timestamp(end_day) - start).days) + 1
    index = (days - start).dt.days.to_numpy()
    first = np.bincount(index, weights=daily["first"].to_numpy(float), minlength=length)
    repeat = np.bincount(index, weights=daily.repeat.to_numpy(float), minlength=length)
    # A customer first buying on day d has T = t - d days by the end of day t (T as the summary counts it).
    curve = models.expected_new_customer(purchases, np.arange(length) / unit_days)
    expected = np.convolve(first, curve)[:length]
    return pd.DataFrame(
        {"day": start + pd.to_timedelta(np.arange(length), unit="D"), "actual": repeat.cumsum(), "expected": expected}
    )


def totals(
    purchases: models.Fitted,
    frame: pd.DataFrame,
    horizon: float,
    alpha: float,
    spend: models.Fitted | None = None,
    draws: int = 100,
) -> dict:
    """Expected customers alive, purchases in the horizon and (with a spend model) revenue: the value at
    the fitted parameters and an interval from parameter draws (Laplace or posterior). Customers sharing
    frequency, recency and T share their predictions, so the draws are computed once per such group."""
    keys = ["frequency", "recency", "T"]
    groups = frame.groupby(keys, sort=False).agg(n=("customer_id", "size"), m=("monetary_value", "sum")).reset_index()
    groups["customer_id"] = np.arange(len(groups))
    chosen = purchases.draws.iloc[: min(draws, len(purchases.draws))]
    model = _with_draws(purchases.model, chosen)
    spend_model = None
    if spend is not None:
        drawn = spend.draws.sample(len(chosen), replace=True, random_state=1) if len(spend.draws) else spend.draws
        spend_model = _with_draws(spend.model, drawn)
    out = {"alive": np.zeros(len(chosen)), "purchases": np.zeros(len(chosen))}
    if spend_model is not None:
        out["revenue"] = np.zeros(len(chosen))
    for start in range(0, len(groups), CHUNK):  # draws x groups at a time: memory stays small at any size
        part = groups.iloc[start : start + CHUNK]
        n = part.n.to_numpy(float)
        alive = model.expected_probability_alive(data=part[["customer_id", *keys]]).to_numpy()[0]
        bought = model.expected_purchases(data=part[["customer_id", *keys]], future_t=horizon).to_numpy()[0]
        out["alive"] += alive @ n
        out["purchases"] += bought @ n
        if spend_model is not None:
            x = part[["customer_id", "frequency"]].assign(monetary_value=0.0)
            base = spend_model.expected_customer_spend(data=x).to_numpy()[0]  # (1 - w) * population mean
            weight = spend_model.expected_customer_spend(data=x.assign(monetary_value=1.0)).to_numpy()[0] - base
            out["revenue"] += (bought * (base * n + weight * part.m.to_numpy(float))).sum(axis=1)
    return {key: _interval(values, alpha) for key, values in out.items()}


def _interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) < len(values) or not len(finite):
        return (np.nan, np.nan)
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return (float(low), float(high))


def _with_draws(model, draws: pd.DataFrame):
    """A copy of a fitted pymc-marketing model whose posterior is ``draws`` (one chain)."""
    import arviz as az

    clone = copy.copy(model)
    clone.idata = az.from_dict(posterior={k: draws[k].to_numpy()[None, :] for k in draws.columns})
    return clone


def concentration(values: pd.Series) -> pd.DataFrame:
    """The share of total value held by the top 1%, 5%, 10%, 20% and 50% of customers."""
    ordered = np.sort(values.to_numpy(float))[::-1]
    total = ordered.sum()
    rows = []
    for share in TOP_SHARES:
        k = max(1, int(round(share * len(ordered))))
        rows.append({"top_share": share, "customers": k, "value_share": ordered[:k].sum() / total if total else np.nan})
    return pd.DataFrame(rows)


def value_tiers(values: pd.Series) -> pd.Series:
    """high / mid / low by predicted value, as segment profiling tiers revenue (top 20%, next 30%)."""
    return tiers(values, high_share=HIGH_SHARE, mid_share=MID_SHARE)


def tiers_vs_rfm(customers: pd.DataFrame, rfm: pd.Series, order: list[str]) -> pd.DataFrame:
    """Customers per RFM segment (today's, as segment profiling assigns them) and predicted value tier,
    with how many the model thinks probably gone and their mean P(alive) and value."""
    frame = customers.assign(rfm_segment=rfm.to_numpy())
    counts = pd.crosstab(frame.rfm_segment, frame.clv_tier).reindex(columns=["high", "mid", "low"], fill_value=0)
    grouped = frame.groupby("rfm_segment")
    out = pd.DataFrame(
        {
            "customers": grouped.size(),  # the columns of TIERS_VS_RFM
            "high": counts.high,
            "mid": counts.mid,
            "low": counts.low,
            "probably_gone": grouped.p_alive.apply(lambda p: int((p < GONE_BELOW).sum())),
            "mean_p_alive": grouped.p_alive.mean(),
            "mean_clv": grouped.clv.mean(),
        }
    )
    out = out.reindex([s for s in order if s in out.index] + [s for s in out.index if s not in order])
    return out.rename_axis("rfm_segment").reset_index()


def winback(customers: pd.DataFrame, rows: int = 20) -> tuple[pd.DataFrame, dict]:
    """Customers probably gone (P(alive) < 0.5) who bought often and for much: by past revenue, then by
    repeat purchases (the only order when the data has no revenue)."""
    gone = customers[(customers.p_alive < GONE_BELOW) & (customers.frequency > 0)]
    ranked = gone.sort_values(
        ["revenue", "frequency", "user_id"], ascending=[False, False, True], kind="stable", na_position="last"
    )
    facts = {"customers": len(gone), "revenue": float(gone.revenue.sum())}
    return ranked.head(rows), facts


__all__ = [
    "GONE_BELOW",
    "concentration",
    "cumulative",
    "holdout_table",
    "modelling_frame",
    "tiers_vs_rfm",
    "totals",
    "value_tiers",
    "winback",
]
