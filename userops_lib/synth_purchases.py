"""Repeat purchasing whose truth we set: the BG/NBD model of purchases and dropout with Gamma-Gamma spend
(Fader, Hardie & Lee 2005), for checking that customer value recovers it (``userops synth --clv``).

Each customer makes a first purchase at time 0 (in the world: at signup). While alive, purchases follow a
Poisson process with rate ``lambda ~ Gamma(r, rate=alpha)`` per week; after each repeat purchase the
customer drops out for good with probability ``p ~ Beta(a, b)``. Each purchase's value is
``Gamma(shape=p_spend, rate=nu)`` with ``nu ~ Gamma(q, rate=gamma)`` per customer, so a customer's mean
spend is ``p_spend / nu`` and the population mean ``p_spend * gamma / (q - 1)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# True parameters of ``userops synth --clv`` (rates per week; spend in the world's currency).
STORE = {
    "event": "shop_order",
    "purchases": {"r": 0.6, "alpha": 6.0, "a": 0.8, "b": 3.0, "time_unit": "week"},
    "spend": {"p": 6.0, "q": 4.0, "gamma": 15.0},
}


def bgnbd_purchases(
    first_at: pd.Series, end: pd.Timestamp, rng: np.random.Generator, spec: dict = STORE
) -> pd.DataFrame:
    """Every purchase of the customers whose first purchase is at ``first_at`` (index: customer ids),
    before ``end``: ``user_id, event_at, revenue``. Vectorised over customers, one purchase at a time."""
    truth, spend = spec["purchases"], spec["spend"]
    n = len(first_at)
    rate = rng.gamma(truth["r"], 1 / truth["alpha"], n) / 7.0  # per day
    dropout = rng.beta(truth["a"], truth["b"], n)
    nu = rng.gamma(spend["q"], 1 / spend["gamma"], n)
    start = pd.to_datetime(first_at).to_numpy()
    horizon = (end - pd.to_datetime(first_at)).dt.total_seconds().to_numpy() / 86_400
    owner, when = [np.arange(n)], [np.zeros(n)]
    t = np.zeros(n)
    alive = horizon > 0
    while alive.any():
        idx = np.flatnonzero(alive)
        with np.errstate(divide="ignore"):
            t[idx] += rng.exponential(1 / rate[idx])
        within = t[idx] < horizon[idx]
        bought = idx[within]
        owner.append(bought)
        when.append(t[bought])
        alive[idx[~within]] = False
        alive[bought[rng.random(bought.size) < dropout[bought]]] = False
    owner_all, days = np.concatenate(owner), np.concatenate(when)  # first purchases at 0, then those in time
    values = rng.gamma(spend["p"], 1 / nu[owner_all])
    return pd.DataFrame(
        {
            "user_id": np.asarray(first_at.index)[owner_all],
            "event_at": start[owner_all] + pd.to_timedelta(np.round(days * 86_400), unit="s").to_numpy(),
            "event": spec["event"],
            "revenue": np.round(np.maximum(values, 0.01), 2),
        }
    )


def truth(spec: dict = STORE) -> dict:
    return {
        **spec,
        "model": "BG/NBD purchases (first purchase at signup) with Gamma-Gamma spend; "
        "see userops_lib/synth_purchases.py",
    }


__all__ = ["STORE", "bgnbd_purchases", "truth"]
