"""Customer value's tables from the per-customer frame and the fitted models: the holdout check by
calibration purchases and over time, totals with intervals, how concentrated value is, value tiers
against RFM segments and the win-back list."""

from __future__ import annotations

import numpy as np
import pandas as pd

from userops_lib.analyses.customer_value import models, predictions
from userops_lib.rfm import tiers

GONE_BELOW = 0.5  # P(alive) under this: probably gone
HOLDOUT_BINS = 7  # calibration purchases 0..6 and 7+, as in Fader, Hardie & Lee's figure
TOP_SHARES = (0.01, 0.05, 0.1, 0.2, 0.5)
HIGH_SHARE, MID_SHARE = 0.2, 0.3  # value tiers as segment profiling's: top 20% of value, next 30%
TIERS_VS_RFM = (
    "rfm_segment",
    "customers",
    "high",
    "mid",
    "low",
    "probably_gone",
    "mean_p_alive",
    "mean_clv",
)


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
    histories: predictions.Histories | None = None,
) -> dict:
    """Expected customers alive, purchases in the horizon and (with a spend model) revenue: the value at
    the fitted parameters and an interval from parameter draws (Laplace or posterior). Customers sharing
    frequency, recency and T share their predictions, so the draws are computed once per such history
    (``histories``: those of ``frame``, when already at hand)."""
    h = histories if histories is not None else predictions.Histories.of(frame)
    n = h.counts()
    chosen = predictions.parameters(
        purchases.draws.iloc[: min(draws, len(purchases.draws))], models.PURCHASE_PARAMETERS
    )
    size = len(chosen["r"])
    out = {"alive": np.zeros(size), "purchases": np.zeros(size)}
    if spend is not None:
        drawn = spend.draws.sample(size, replace=True, random_state=1) if len(spend.draws) else spend.draws
        spend_p = predictions.parameters(drawn, models.SPEND_PARAMETERS)
        m = h.counts(frame.monetary_value.to_numpy(float))
        out["revenue"] = np.zeros(size)
    model = predictions.Purchases(chosen, h)
    for i in predictions.blocks(chosen, len(h)):  # draws x histories at a time: memory stays small at any size
        bought, alive = model.per_draw(horizon, i)
        out["alive"] += alive @ n[i]
        out["purchases"] += bought @ n[i]
        if spend is not None:
            base, weight = predictions.spend_terms(spend_p, h.x[i])
            out["revenue"] += (bought * (base * n[i] + weight * m[i])).sum(axis=1)
    return {key: _interval(values, alpha) for key, values in out.items()}


def _interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) < len(values) or not len(finite):
        return (np.nan, np.nan)
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return (float(low), float(high))


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
    codes, segments = pd.factorize(rfm.to_numpy(), sort=True)
    size = len(segments)

    def per_segment(values=None) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=size)

    def mean(values: np.ndarray) -> np.ndarray:  # pandas' grouped mean (compensated sums, missing values left out)
        return pd.Series(values).groupby(codes).mean().reindex(range(size)).to_numpy()

    tier = customers.clv_tier.to_numpy()
    p_alive = customers.p_alive.to_numpy(float)
    out = pd.DataFrame(
        {
            "customers": per_segment().astype(np.int64),  # the columns of TIERS_VS_RFM
            **{name: per_segment((tier == name).astype(float)).astype(np.int64) for name in ("high", "mid", "low")},
            "probably_gone": per_segment((p_alive < GONE_BELOW).astype(float)).astype(np.int64),
            "mean_p_alive": mean(p_alive),
            "mean_clv": mean(customers.clv.to_numpy(float)),
        },
        index=pd.Index(segments, name="rfm_segment"),
    )
    out = out.reindex([s for s in order if s in out.index] + [s for s in out.index if s not in order])
    return out.reset_index()


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
