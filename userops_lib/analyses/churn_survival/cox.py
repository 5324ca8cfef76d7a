"""Cox proportional hazards on aggregated rows, the proportional-hazards check and its stratified remedy.

Exactness
    Up to ``exact_max_users`` users the pattern rows are expanded to one row per user and fitted by
    lifelines as they are: hazard ratios, concordance and the PH test equal lifelines' on the raw rows.
    Above it lifelines fits the pattern rows with frequency weights; tied event times are then
    handled as R's survival package does with weights, which moves coefficients slightly when many
    events share a time (on Telco's whole months about 0.005 on the log scale).
    Concordance and the PH test use every user up to ``check_max_users`` and a simple random sample of
    that many above it: lifelines' Schoenfeld residuals cost time quadratic in the rows (227 s for
    200,000 users), and at that size the test already detects any departure that matters. The report
    says which path ran and how many users the check saw.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError
from lifelines.statistics import proportional_hazard_test

from userops_lib.errors import DataError

EXACT_MAX_USERS = 200_000
CHECK_MAX_USERS = 20_000
LEFT = 1e-6  # durations are whole units; t - LEFT is "just before t"


@dataclasses.dataclass(frozen=True)
class CoxResult:
    summary: pd.DataFrame  # covariate, hazard_ratio, ci_low, ci_high, p_value, coef, se
    concordance: float
    ph_test: pd.DataFrame  # covariate, test_statistic, p_value, violates
    stratified: pd.DataFrame | None
    strata: list[str]
    references: dict[str, str]
    exact: bool
    model: CoxPHFitter | None  # None when the fit failed (``problem``)
    columns: list[str]  # design-matrix columns, in order
    covariates: list[str]
    redundant: list[str]  # columns left out: a linear combination of the others (e.g. 'No internet service')
    stratified_model: CoxPHFitter | None = None
    stratified_columns: list[str] | None = None
    users: int = 0  # users in the fit
    checked_users: int = 0  # users behind concordance and the PH test (a random sample when fewer)
    # Why the model cannot be used, or None: "not_converged" (the fit stopped: covariates that move together
    # or decide churn between them), "not_identified" (a hazard ratio the data cannot pin down: 0 to infinity)
    problem: str | None = None

    @property
    def unusable(self) -> list[str]:
        """The covariates (design columns) whose hazard ratio the data cannot pin down."""
        return [] if self.summary.empty else list(self.summary.covariate[not_estimable(self.summary)])

    @property
    def holds(self) -> bool:
        """Whether predictions may use the model: it converged and every hazard ratio is identified, and no
        covariate violates proportional hazards or the stratified refit takes every violating covariate as a
        stratum."""
        if self.problem is not None:
            return False
        violating = {c.split("=")[0] for c in self.ph_test.covariate[self.ph_test.violates]}
        return not violating or (self.stratified_model is not None and violating <= set(self.strata))


def design(
    frame: pd.DataFrame, covariates: list[str], references: dict[str, str] | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One-hot text covariates against a reference level (default: the largest); numbers as they are."""
    references = dict(references or {})
    parts = [frame[["duration", "churned", "count"]].rename(columns={"churned": "event"})]
    for column in covariates:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            parts.append(values.astype(float).rename(column).to_frame())
            continue
        values = values.astype(str)
        sizes = frame.groupby(values)["count"].sum().sort_values(ascending=False)
        reference = references.get(column, sizes.index[0])
        if reference not in sizes.index:
            raise DataError.single(
                "parameters",
                f"reference level '{reference}' does not occur in '{column}'",
                f"choose one of: {', '.join(map(str, sizes.index[:10]))}",
                column=column,
                example=reference,
                key="churn_survival.no_reference",
                values={"reference": reference, "column": column, "levels": ", ".join(map(str, sizes.index[:10]))},
            )
        references[column] = reference
        for level in sizes.index:
            if level != reference:
                parts.append((values == level).astype(float).rename(f"{column}={level}").to_frame())
    return pd.concat(parts, axis=1), references


def _independent(matrix: pd.DataFrame, columns: list[str]) -> tuple[list[str], list[str]]:
    """Keep columns that add information; drop those that are linear combinations of earlier ones.

    Attributes like 'OnlineSecurity = No internet service' repeat 'InternetService = No' exactly; with
    both in, the model has no unique solution.
    """
    values = np.column_stack([np.ones(len(matrix)), matrix[columns].to_numpy(float)])
    kept, redundant = [0], []
    for i, column in enumerate(columns, start=1):
        if np.linalg.matrix_rank(values[:, [*kept, i]]) > len(kept):
            kept.append(i)
        else:
            redundant.append(column)
    return [columns[i - 1] for i in kept[1:]], redundant


def _expand(matrix: pd.DataFrame) -> pd.DataFrame:
    """One row per user from pattern rows (no event-level data: this is a user-level table)."""
    return matrix.loc[matrix.index.repeat(matrix["count"].astype(int))].drop(columns="count").reset_index(drop=True)


def fit_cox(
    frame: pd.DataFrame,
    covariates: list[str],
    *,
    references: dict[str, str] | None = None,
    alpha: float = 0.05,
    exact_max_users: int = EXACT_MAX_USERS,
    check_max_users: int = CHECK_MAX_USERS,
    seed: int = 0,
) -> CoxResult:
    """Cox PH with hazard ratios, concordance, the PH check and, if it fails, a stratified refit."""
    if not covariates:
        raise DataError.single(
            "parameters",
            "no covariates for the Cox model",
            "name at least one user attribute",
            column="covariates",
            key="churn_survival.no_covariates",
        )
    matrix, references = design(frame, covariates, references)
    matrix = matrix[matrix["count"] > 0]
    columns = [c for c in matrix.columns if c not in ("duration", "event", "count")]
    constant = [c for c in columns if matrix[c].nunique() < 2]
    if constant:
        raise DataError.single(
            "users",
            f"covariate column '{constant[0]}' has a single value",
            "drop the covariate or choose a dataset where it varies",
            column=constant[0],
            key="churn_survival.constant_covariate",
            values={"column": constant[0]},
        )
    columns, redundant = _independent(matrix, columns)
    matrix = matrix.drop(columns=redundant)
    users = int(matrix["count"].sum())
    exact = users <= exact_max_users
    try:
        return _fit(
            matrix, columns, covariates, redundant, references, users, exact, frame, alpha, check_max_users, seed
        )
    except ConvergenceError:
        # lifelines stopped (a matrix it could not invert: covariates moving together, or one that decides
        # churn): a result that says so, with no estimates and no predictions
        return CoxResult(
            pd.DataFrame(columns=["covariate", "hazard_ratio", "ci_low", "ci_high", "p_value", "coef", "se"]),
            float("nan"),
            pd.DataFrame(columns=["covariate", "test_statistic", "p_value", "violates"]),
            None,
            [],
            references,
            exact,
            None,
            columns,
            list(covariates),
            redundant,
            users=users,
            problem="not_converged",
        )


def _fit(matrix, columns, covariates, redundant, references, users, exact, frame, alpha, check_max_users, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter and weight notes; the result is checked below
        if exact:
            rows = _expand(matrix)
            model = CoxPHFitter(alpha=alpha).fit(rows, "duration", "event")
        else:
            model = CoxPHFitter(alpha=alpha).fit(matrix, "duration", "event", weights_col="count")
        if exact and users <= check_max_users:
            check_rows, check_model = rows, model
        else:
            # A simple random sample of users, drawn from the pattern counts without expanding them all.
            rng = np.random.default_rng(seed)
            drawn = rng.multivariate_hypergeometric(
                matrix["count"].astype(np.int64).to_numpy(), min(users, check_max_users)
            )
            check_rows = _expand(matrix.assign(count=drawn))
            check_model = CoxPHFitter(alpha=alpha).fit(check_rows, "duration", "event")
        # R cox.zph's default transform; lifelines' "rank" breaks tied times by row order.
        ph = proportional_hazard_test(check_model, check_rows, time_transform="km").summary
    summary = _summary(model, alpha)
    concordance = float(check_model.concordance_index_)
    ph_test = pd.DataFrame(
        {"covariate": ph.index, "test_statistic": ph.test_statistic.to_numpy(), "p_value": ph.p.to_numpy()}
    )
    # The test's level is the report's alpha, as for every other test it runs (lifelines' own default is 0.01).
    ph_test["violates"] = ph_test.p_value < alpha
    strata = sorted({c.split("=")[0] for c in ph_test.covariate[ph_test.violates] if "=" in c})
    try:
        stratified, stratified_model, stratified_columns = (
            _stratified(frame, covariates, strata, references, alpha) if strata else (None, None, None)
        )
    except ConvergenceError:  # no stratified refit: predictions do not use the model (holds is False)
        stratified, stratified_model, stratified_columns = None, None, None
    return CoxResult(
        summary,
        concordance,
        ph_test,
        stratified,
        strata,
        references,
        exact,
        model,
        columns,
        list(covariates),
        redundant,
        stratified_model,
        stratified_columns,
        users,
        len(check_rows),
        "not_identified" if not_estimable(summary).any() else None,
    )


def _summary(model: CoxPHFitter, alpha: float) -> pd.DataFrame:
    table = model.summary
    low = [c for c in table.columns if c.startswith("exp(coef) lower")][0]
    high = [c for c in table.columns if c.startswith("exp(coef) upper")][0]
    return pd.DataFrame(
        {
            "covariate": table.index,
            "hazard_ratio": table["exp(coef)"].to_numpy(),
            "ci_low": table[low].to_numpy(),
            "ci_high": table[high].to_numpy(),
            "p_value": table["p"].to_numpy(),
            "coef": table["coef"].to_numpy(),
            "se": table["se(coef)"].to_numpy(),
        }
    )


def not_estimable(summary: pd.DataFrame) -> pd.Series:
    """Rows whose hazard ratio the data cannot pin down: a level with no churn (or only churn) among its
    users has an interval from 0 to infinity (complete separation; the estimate itself is meaningless)."""
    return ~np.isfinite(summary.ci_high) | (summary.ci_low <= 0) | (summary.se > 10)


def _stratified(frame, covariates, strata, references, alpha):
    """Refit with the violating categorical covariates as strata (their own baseline hazard each)."""
    rest = [c for c in covariates if c not in strata]
    if not rest:
        return None, None, None
    matrix, _ = design(frame, rest, references)
    _, redundant = _independent(matrix, [c for c in matrix.columns if c not in ("duration", "event", "count")])
    matrix = pd.concat([matrix.drop(columns=redundant), frame[strata].astype(str)], axis=1)
    matrix = matrix[matrix["count"] > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CoxPHFitter(alpha=alpha).fit(matrix, "duration", "event", weights_col="count", strata=strata)
    columns = [c for c in matrix.columns if c not in ("duration", "event", "count", *strata)]
    return _summary(model, alpha), model, columns


def survival_steps(result: CoxResult, rows: pd.DataFrame):
    """A function ``S(points, side)`` giving each row's fitted survival at its own point.

    ``side='right'`` is S(t) (right-continuous), ``side='left'`` the value just before t. The fitted step
    function is read directly (lifelines' predict_* interpolate linearly between event times). Uses the
    stratified model when the PH check failed.
    """
    model, columns = (
        (result.stratified_model, result.stratified_columns)
        if result.stratified_model is not None
        else (result.model, result.columns)
    )
    if model is None:  # a fit that failed is never used for predictions (risk_model: holds is False)
        raise ValueError("the Cox fit failed; it has no survival to read")
    design_rows, _ = design(rows.assign(churned=False, count=1), result.covariates, result.references)
    features = design_rows[[c for c in columns or [] if c in design_rows.columns]]
    strata = [model.strata] if isinstance(model.strata, str) else list(model.strata or [])
    if strata:
        features = pd.concat([features, rows[strata].astype(str).reset_index(drop=True)], axis=1)
    partial = np.asarray(model.predict_partial_hazard(features), dtype=float).reshape(-1)
    cumulative = model.baseline_cumulative_hazard_
    times = cumulative.index.to_numpy(float)
    if strata:
        keys = [tuple(r) if len(strata) > 1 else r[0] for r in rows[strata].astype(str).itertuples(index=False)]
        table = np.column_stack(
            [cumulative[k].to_numpy(float) if k in cumulative.columns else np.full(len(times), np.nan) for k in keys]
        )
    else:
        table = np.repeat(cumulative.iloc[:, [0]].to_numpy(float), len(rows), axis=1)

    def survival(points: np.ndarray, side: str) -> np.ndarray:
        position = np.searchsorted(times, points, side=side) - 1  # type: ignore[call-overload]
        hazard = np.where(position >= 0, table[np.clip(position, 0, None), np.arange(len(points))], 0.0)
        return np.exp(-hazard * partial)

    return survival


__all__ = [
    "CHECK_MAX_USERS",
    "EXACT_MAX_USERS",
    "CoxResult",
    "design",
    "fit_cox",
    "not_estimable",
    "survival_steps",
]
