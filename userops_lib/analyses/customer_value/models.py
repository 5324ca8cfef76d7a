"""The BG/NBD purchase model and the Gamma-Gamma spend model, fitted with pymc-marketing.

* ``method="map"`` (default): the maximum-likelihood fit the literature reports (MAP with flat priors,
  ``Prior("HalfFlat")``, optimised without the log-transform's Jacobian). Intervals are Wald intervals on
  the log scale from the observed information (a numerical Hessian of pymc's own log-likelihood at the
  optimum), so they stay positive; parameter draws for intervals of totals come from the same normal
  approximation.
* ``method="mcmc"``: the full posterior (NUTS, flat priors); intervals are equal-tailed credible intervals
  and predictions are posterior means.

The likelihoods are pymc-marketing's (``BetaGeoModel``, ``GammaGammaModel``), and so are the formulas of the
per-customer predictions, evaluated once per distinct purchase history by :mod:`.predictions`; this module
fits, draws and discounts.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from userops_lib.analyses.customer_value import predictions
from userops_lib.processes import tied_context

PURCHASE_PARAMETERS = ("r", "alpha", "a", "b")
SPEND_PARAMETERS = ("p", "q", "v")
DAYS_PER_YEAR = 365.25
RHAT_LIMIT, ESS_LIMIT = 1.05, 100  # MCMC: chains that agree, enough effective draws (stated in the report)


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
    log-likelihood (flat priors, no Jacobian) at the maximum, by central differences of pymc's own gradient
    (statsmodels' ``approx_fprime``): 2 x 4 gradients instead of about 40 likelihoods by second differences,
    and nearer the exact Hessian (CDNOW: 1e-9 against 1e-6 relative to pytensor's symbolic one)."""
    from statsmodels.tools.numdiff import approx_fprime

    names = list(values.index)
    gradient = model.model.compile_dlogp(vars=[model.model[k] for k in names], jacobian=False)
    keys = [f"{k}_log__" for k in names]
    mean = np.log(values.to_numpy(float))
    hessian = -approx_fprime(mean, lambda x: np.asarray(gradient(dict(zip(keys, x, strict=True)))), centered=True)
    hessian = (hessian + hessian.T) / 2
    try:
        cov = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        cov = np.full((len(names), len(names)), np.nan)
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        cov = np.diag(np.full(len(names), np.inf))  # a flat direction: intervals from 0 to infinity
    return mean, cov


def _purchases(purchases: Fitted, data: pd.DataFrame | predictions.Histories) -> predictions.Purchases:
    histories = data if isinstance(data, predictions.Histories) else predictions.Histories.of(data)
    return predictions.Purchases(predictions.parameters(purchases.model.fit_result, PURCHASE_PARAMETERS), histories)


def predict(purchases: Fitted, data: pd.DataFrame | predictions.Histories, horizon: float) -> pd.DataFrame:
    """P(alive) and expected purchases in the next ``horizon`` time units, per customer of ``data``
    (pymc-marketing's columns, or their :class:`~.predictions.Histories`), averaged over the fit's draws."""
    model = _purchases(purchases, data)
    index = data.index if isinstance(data, pd.DataFrame) else None
    return pd.DataFrame({"p_alive": model.alive(), "expected_purchases": model.expected(horizon)}, index=index)


def expected_spend(spend: Fitted, data: pd.DataFrame) -> np.ndarray:
    """The expected spend per future purchase (``data``: frequency, monetary_value):
    the population mean shrunk towards each repeat buyer's own mean."""
    p = predictions.parameters(spend.model.fit_result, SPEND_PARAMETERS)
    return predictions.spend_per_purchase(p, data.frequency.to_numpy(float), data.monetary_value.to_numpy(float))


def clv(
    purchases: Fitted,
    data: pd.DataFrame | predictions.Histories,
    spend: np.ndarray,
    *,
    horizon: float,
    steps: int,
    discount: float,
) -> np.ndarray:
    """Discounted value of each customer's expected purchases over ``horizon`` time units, in ``steps``
    equal steps: the purchases expected in step k are valued at ``spend`` and discounted by
    ``(1 + discount) ** k`` (``discount``: the rate per step). The arithmetic of pymc-marketing's
    ``customer_lifetime_value``, with the step length and rate of the report's horizon and yearly rate."""
    model = _purchases(purchases, data)
    value = np.zeros(len(model.h.of_customer))
    before = np.zeros(len(model.h.of_customer))
    for k, cumulative in enumerate(model.cumulative([horizon * k / steps for k in range(1, steps + 1)]), start=1):
        cumulative = cumulative[model.h.of_customer]
        value += spend * (cumulative - before) / (1 + discount) ** k
        before = cumulative
    return value


def expected_new_customer(purchases: Fitted, t: np.ndarray) -> np.ndarray:
    """Expected repeat purchases of a new customer within ``t`` time units (one value per t)."""
    p = predictions.parameters(purchases.model.fit_result, PURCHASE_PARAMETERS)
    t = np.asarray(t, dtype=float)
    return predictions.mean_over_draws(p, len(t), lambda q, i: predictions.new_customer(q, t[i]))


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
