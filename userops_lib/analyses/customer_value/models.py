"""The BG/NBD purchase model and the Gamma-Gamma spend model, fitted with pymc-marketing.

* ``method="map"`` (default): the maximum-likelihood fit the literature reports (MAP with flat priors,
  ``Prior("HalfFlat")``, optimised without the log-transform's Jacobian). Intervals are Wald intervals on
  the log scale from the observed information (a numerical Hessian of pymc's own log-likelihood at the
  optimum), so they stay positive; parameter draws for intervals of totals come from the same normal
  approximation.
* ``method="mcmc"``: the full posterior (NUTS, flat priors); intervals are equal-tailed credible intervals
  and predictions are posterior means.

The likelihoods and the per-customer predictions are pymc-marketing's (``BetaGeoModel``,
``GammaGammaModel``); this module only fits, draws and discounts.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from userops_lib.processes import tied_context

PURCHASE_PARAMETERS = ("r", "alpha", "a", "b")
SPEND_PARAMETERS = ("p", "q", "v")
DAYS_PER_YEAR = 365.25
RHAT_LIMIT, ESS_LIMIT = 1.05, 100  # MCMC: chains that agree, enough effective draws (stated in the report)
CELLS = 5_000_000  # draws x customers per prediction step (about 40 MB of float64)


@dataclasses.dataclass
class Fitted:
    """A fitted model: the pymc-marketing model, its parameter table and parameter draws (one per row)."""

    model: Any  # pymc_marketing.clv BetaGeoModel or GammaGammaModel
    name: str  # bgnbd or gamma_gamma
    parameters: pd.DataFrame  # model, parameter, value, ci_low, ci_high
    draws: pd.DataFrame  # one column per parameter
    diagnostics: dict = dataclasses.field(default_factory=dict)  # mcmc: the largest R-hat, the smallest ESS

    def value(self, name: str) -> float:
        return float(self.parameters.set_index("parameter").value[name])

    @property
    def problem(self) -> str | None:
        """Why the fit cannot be used, or None: ``not_identified`` when a parameter's interval is not finite
        (the likelihood is flat in some direction: the data do not pin the parameter down), ``not_converged``
        when MCMC chains disagree (R-hat above 1.05) or have too few effective draws (ESS under 100)."""
        table = self.parameters
        bounds = table[["value", "ci_low", "ci_high"]].to_numpy(float)
        if not np.isfinite(bounds).all() or (table.ci_low <= 0).any():
            return "not_identified"
        if self.diagnostics and (self.diagnostics["rhat"] > RHAT_LIMIT or self.diagnostics["ess"] < ESS_LIMIT):
            return "not_converged"
        return None


def _quiet():
    """pymc and arviz talk on import and while fitting; a report shows none of it."""
    for name in ("pymc", "pymc.sampling", "pytensor", "arviz", "pymc_marketing"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="arviz")
    warnings.filterwarnings("ignore", module="pymc")
    warnings.filterwarnings("ignore", module="pymc_marketing")
    warnings.filterwarnings("ignore", category=FutureWarning)


def fit_purchases(data: pd.DataFrame, *, method: str = "map", alpha: float = 0.05, seed: int = 0) -> Fitted:
    """BG/NBD on ``data`` (``customer_id, frequency, recency, T`` in time units)."""
    _quiet()
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel

    model = BetaGeoModel(model_config={k: Prior("HalfFlat") for k in PURCHASE_PARAMETERS})
    return _fit(model, data, "bgnbd", PURCHASE_PARAMETERS, method, alpha, seed)


def fit_spend(data: pd.DataFrame, *, method: str = "map", alpha: float = 0.05, seed: int = 0) -> Fitted:
    """Gamma-Gamma on ``data`` (``customer_id, frequency, monetary_value``: repeat buyers only)."""
    _quiet()
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import GammaGammaModel

    model = GammaGammaModel(model_config={k: Prior("HalfFlat") for k in SPEND_PARAMETERS})
    return _fit(model, data, "gamma_gamma", SPEND_PARAMETERS, method, alpha, seed)


def _fit(model, data, name, names, method, alpha, seed) -> Fitted:
    rng = np.random.default_rng(seed)
    if method == "mcmc":
        model.fit(
            data=data,
            method="mcmc",
            chains=4,
            cores=2,
            draws=1000,
            tune=1000,
            random_seed=seed,
            progressbar=False,
            mp_ctx=tied_context(),  # the sampler's workers die with the kernel, even on kill -9
        )
        posterior = model.idata.posterior
        draws = pd.DataFrame({k: posterior[k].values.ravel() for k in names})
        values = draws.mean()
        low, high = draws.quantile(alpha / 2), draws.quantile(1 - alpha / 2)
        import arviz as az

        diagnostics = {
            "rhat": float(max(az.rhat(model.idata, var_names=list(names))[k].item() for k in names)),
            "ess": float(min(az.ess(model.idata, var_names=list(names))[k].item() for k in names)),
        }
    else:
        model.fit(data=data, method="map", progressbar=False)
        posterior = model.idata.posterior
        values = pd.Series({k: float(posterior[k].values.ravel()[0]) for k in names})
        mean, cov = _laplace(model, values)
        z = sps.norm.ppf(1 - alpha / 2)
        sd = np.sqrt(np.diag(cov))
        low = pd.Series(np.exp(mean - z * sd), index=names)
        high = pd.Series(np.exp(mean + z * sd), index=names)
        draws = pd.DataFrame(np.exp(rng.multivariate_normal(mean, cov, size=400, method="eigh")), columns=names)
        diagnostics = {}
    table = pd.DataFrame(
        {
            "model": name,
            "parameter": list(names),
            "value": values[list(names)].to_numpy(float),
            "ci_low": low[list(names)].to_numpy(float),
            "ci_high": high[list(names)].to_numpy(float),
        }
    )
    return Fitted(model, name, table, draws[list(names)], diagnostics)


def _laplace(model, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the log parameters: the inverse observed information of pymc's
    log-likelihood (flat priors, no Jacobian) at the maximum, by central differences."""
    from statsmodels.tools.numdiff import approx_hess3

    logp = model.model.compile_logp(jacobian=False)
    names = list(values.index)
    keys = [f"{k}_log__" for k in names]
    mean = np.log(values.to_numpy(float))
    hessian = -approx_hess3(mean, lambda x: float(logp(dict(zip(keys, x, strict=True)))))
    try:
        cov = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        cov = np.full((len(names), len(names)), np.nan)
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        cov = np.diag(np.full(len(names), np.inf))  # a flat direction: intervals from 0 to infinity
    return mean, cov


def _squeeze(values) -> np.ndarray:
    """A pymc-marketing prediction (chain, draw, customer) as one number per customer (the draws' mean)."""
    array = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
    while array.ndim > 1:
        array = array.mean(axis=0)
    return array


def _per_customer(fitted: Fitted, data: pd.DataFrame, predict) -> np.ndarray:
    """``predict(rows)`` averaged over the fit's draws, per row of ``data``.

    A prediction depends on the customer's summary only (frequency, recency, T; monetary value for spend),
    and customers share summaries: 5M customers counted in days have far fewer distinct ones. Each distinct
    summary is predicted once (the first customer holding it stands for it) and the values are handed back to
    every customer holding it: the same numbers, computed once per summary."""
    keys = [c for c in data.columns if c != "customer_id"]
    distinct = data.drop_duplicates(subset=keys) if keys else data
    if len(distinct) == len(data):
        return _chunked(fitted, data, predict)
    # groups numbered in order of first appearance: the order drop_duplicates keeps (missing values as equal)
    inverse = data.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    return _chunked(fitted, distinct, predict)[inverse]


def _chunked(fitted: Fitted, data: pd.DataFrame, predict) -> np.ndarray:
    """``predict(rows)`` for ``data`` in chunks of rows small enough that a (draws x customers) array stays
    near 40 MB (one draw for MAP: a single chunk up to 5M rows)."""
    draws = len(fitted.model.fit_result.draw) * len(fitted.model.fit_result.chain)
    size = max(1_000, CELLS // max(draws, 1))
    if len(data) <= size:
        return _squeeze(predict(data))
    return np.concatenate([_squeeze(predict(data.iloc[i : i + size])) for i in range(0, len(data), size)])


def predict(purchases: Fitted, data: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """P(alive) and expected purchases in the next ``horizon`` time units, per customer of ``data``."""
    model = purchases.model
    return pd.DataFrame(
        {
            "p_alive": _per_customer(purchases, data, lambda d: model.expected_probability_alive(data=d)),
            "expected_purchases": _per_customer(
                purchases, data, lambda d: model.expected_purchases(data=d, future_t=horizon)
            ),
        },
        index=data.index,
    )


def expected_spend(spend: Fitted, data: pd.DataFrame) -> np.ndarray:
    """The expected spend per future purchase (``data``: customer_id, frequency, monetary_value):
    the population mean shrunk towards each repeat buyer's own mean."""
    return _per_customer(spend, data, lambda d: spend.model.expected_customer_spend(data=d))


def clv(
    purchases: Fitted, data: pd.DataFrame, spend: np.ndarray, *, horizon: float, steps: int, discount: float
) -> np.ndarray:
    """Discounted value of each customer's expected purchases over ``horizon`` time units, in ``steps``
    equal steps: the purchases expected in step k are valued at ``spend`` and discounted by
    ``(1 + discount) ** k`` (``discount``: the rate per step). The arithmetic of pymc-marketing's
    ``customer_lifetime_value``, with the step length and rate of the report's horizon and yearly rate."""
    model = purchases.model
    value = np.zeros(len(data))
    before = np.zeros(len(data))
    for k in range(1, steps + 1):
        cumulative = _per_customer(
            purchases, data, lambda d, k=k: model.expected_purchases(data=d, future_t=horizon * k / steps)
        )
        value += spend * (cumulative - before) / (1 + discount) ** k
        before = cumulative
    return value


def expected_new_customer(purchases: Fitted, t: np.ndarray) -> np.ndarray:
    """Expected repeat purchases of a new customer within ``t`` time units (one value per t)."""
    frame = pd.DataFrame({"customer_id": np.arange(len(t)), "t": t})
    return _per_customer(purchases, frame, lambda d: purchases.model.expected_purchases_new_customer(data=d))


__all__ = [
    "DAYS_PER_YEAR",
    "PURCHASE_PARAMETERS",
    "SPEND_PARAMETERS",
    "Fitted",
    "clv",
    "expected_new_customer",
    "expected_spend",
    "fit_purchases",
    "fit_spend",
    "predict",
]
