"""The BG/NBD and Gamma-Gamma predictions in closed form, over distinct purchase histories.

The formulas and their order of operations are pymc-marketing's (``BetaGeoModel.expected_purchases``,
``expected_probability_alive``, ``expected_purchases_new_customer``, ``GammaGammaModel.expected_customer_spend``:
eq. 10 of Fader, Hardie & Lee 2005 with scipy's ``hyp2f1``), evaluated on NumPy arrays instead of xarray:
a prediction depends on a customer's history (frequency x, recency t_x, age T) only, so each is computed
once per distinct history, and the hypergeometric term, which depends on (x, T) and the horizon only, once per
distinct (x, T). The expected purchases in any horizon are ``numerator(x, T, t) / denominator(x, t_x, T)``, so
every step of the value's discounted sum shares one denominator. Tests hold the results to
pymc-marketing's own methods (relative 1e-9), at one parameter draw (MAP) and at many (MCMC, interval draws).

Parameters are arrays with one value per draw; predictions for customers are means over the draws.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy.special import expit, hyp2f1

CELLS = 5_000_000  # draws x histories evaluated at a time (about 40 MB of float64 per array)


@dataclasses.dataclass(frozen=True)
class Histories:
    """The distinct (frequency, recency, T) of a set of customers, which one each customer holds
    (``of_customer``), and the distinct (frequency, T) of each history (``pair`` into ``pair_x``/``pair_T``)."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    of_customer: np.ndarray
    pair: np.ndarray
    pair_x: np.ndarray
    pair_T: np.ndarray

    @classmethod
    def of(cls, data: pd.DataFrame) -> Histories:
        """``data``: pymc-marketing's columns ``frequency``, ``recency``, ``T`` (in time units), one row per customer."""
        x, t_x, T = (data[k].to_numpy(float) for k in ("frequency", "recency", "T"))
        of_customer, first = _distinct(x, t_x, T)
        x, t_x, T = x[first], t_x[first], T[first]
        pair, first_pair = _distinct(x, T)
        return cls(x, t_x, T, of_customer, pair, x[first_pair], T[first_pair])

    def __len__(self) -> int:
        return len(self.x)

    def counts(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Customers per history (or the sum of ``weights`` over them)."""
        return np.bincount(self.of_customer, weights=weights, minlength=len(self))


def _distinct(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group numbers of the rows of ``columns`` (in order of first appearance) and each group's first row."""
    frame = pd.DataFrame(dict(enumerate(columns)))
    codes = frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy(np.int64)
    # numbered in order of first appearance: a row is its group's first where the running maximum rises
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0) if len(codes) else codes
    return codes, first


def parameters(source, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each parameter as a column of draws, shape (draws, 1): from a fitted pymc-marketing model's posterior
    (``fit_result``: chains x draws) or a table of draws (one row per draw)."""
    if isinstance(source, pd.DataFrame):
        return {k: source[k].to_numpy(float).reshape(-1, 1) for k in names}
    return {k: np.asarray(source[k].values, dtype=float).reshape(-1, 1) for k in names}


def numerator(p: dict, x: np.ndarray, T: np.ndarray, t: float) -> np.ndarray:
    """BG/NBD's expected purchases in (T, T + t] before the P(alive)-like denominator, per draw x (x, T)."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1, t / (alpha + T + t)
        )
        value *= (a + b + x - 1) / (a - 1)
    return value


def denominator(p: dict, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x)


def p_alive(p: dict, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_div = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(a / (b + np.maximum(x, 1) - 1))
    return np.where(x == 0, 1.0, expit(-log_div))


def new_customer(p: dict, t: np.ndarray) -> np.ndarray:
    """Expected repeat purchases of a new customer within ``t``, per draw x t."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def spend_terms(p: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gamma-Gamma's expected spend per purchase is ``base + weight * mean spend`` for a customer with x
    repeat purchases: ``base`` = (1 - w) x the population mean, ``weight`` = w = p x / (p x + q - 1); per draw x x."""
    pp, q, v = p["p"], p["q"], p["v"]
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = pp * x / (pp * x + q - 1)
        return (1 - weight) * (v * pp / (q - 1)), weight


def _draws(p: dict) -> int:
    return len(next(iter(p.values())))


def blocks(p: dict, size: int):
    """Rows 0..size-1 in blocks of draws x rows of about CELLS cells (at least 1,000 rows): memory stays
    bounded at any number of rows and draws."""
    rows = max(1_000, CELLS // max(_draws(p), 1))
    for start in range(0, size, rows):
        yield np.arange(start, min(size, start + rows))


def mean_over_draws(p: dict, size: int, compute) -> np.ndarray:
    """``compute(draws, index)`` (an array of draws x len(index)) averaged over the draws, for index 0..size-1."""
    out = np.empty(size)
    for index in blocks(p, size):
        out[index] = compute(p, index).mean(axis=0)
    return out


class Purchases:
    """BG/NBD predictions for ``histories`` at the parameter draws ``p`` (means over the draws)."""

    def __init__(self, p: dict, histories: Histories):
        self.p, self.h = p, histories
        self._denominator = None if _draws(p) > 1 else denominator(p, histories.x, histories.t_x, histories.T)[0]

    def _numerators(self, p: dict, index: np.ndarray, horizons) -> list[np.ndarray]:
        """Numerators per horizon for the histories in ``index``, computed per distinct (x, T)."""
        pairs, back = np.unique(self.h.pair[index], return_inverse=True)
        x, T = self.h.pair_x[pairs], self.h.pair_T[pairs]
        return [numerator(p, x, T, t)[:, back] for t in horizons]

    def _denominators(self, p: dict, index: np.ndarray) -> np.ndarray:
        if self._denominator is not None:
            return self._denominator[index]
        return denominator(p, self.h.x[index], self.h.t_x[index], self.h.T[index])

    def per_draw(self, horizon: float, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected purchases in the next ``horizon`` and P(alive) for the histories in ``index``, one row per
        draw. P(alive) is 1 / the denominator of the expected purchases (Fader, Hardie & Lee 2008), the value of
        :func:`p_alive` to the last bits, without computing the power twice."""
        denominators = self._denominators(self.p, index)
        return self._numerators(self.p, index, [horizon])[0] / denominators, 1 / denominators

    def expected(self, horizon: float) -> np.ndarray:
        """Expected purchases in the next ``horizon`` time units, per customer."""
        return self.cumulative([horizon])[0][self.h.of_customer]

    def alive(self) -> np.ndarray:
        """P(alive), per customer."""
        h = self.h
        return mean_over_draws(self.p, len(h), lambda p, i: p_alive(p, h.x[i], h.t_x[i], h.T[i]))[h.of_customer]

    def cumulative(self, horizons) -> list[np.ndarray]:
        """Expected purchases by each of ``horizons``, per history (one array per horizon), all horizons of a
        block of histories sharing one denominator."""
        horizons = list(horizons)
        out = [np.empty(len(self.h)) for _ in horizons]
        for index in blocks(self.p, len(self.h)):
            denominators = self._denominators(self.p, index)
            for values, numerators in zip(out, self._numerators(self.p, index, horizons), strict=True):
                values[index] = (numerators / denominators).mean(axis=0)
        return out


def spend_per_purchase(p: dict, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """Gamma-Gamma's expected spend per future purchase of each customer, averaged over the draws."""
    codes, first = _distinct(frequency)
    x = frequency[first]
    base = mean_over_draws(p, len(x), lambda q, i: spend_terms(q, x[i])[0])
    weight = mean_over_draws(p, len(x), lambda q, i: spend_terms(q, x[i])[1])
    return base[codes] + weight[codes] * monetary


__all__ = [
    "Histories",
    "Purchases",
    "blocks",
    "denominator",
    "mean_over_draws",
    "new_customer",
    "numerator",
    "p_alive",
    "parameters",
    "spend_per_purchase",
    "spend_terms",
]
