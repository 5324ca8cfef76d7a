"""Customer value in words: which catalogue message applies, filled with the result's numbers."""

from __future__ import annotations

import numpy as np

from userops_lib import contract, narrative
from userops_lib.analyses.customer_value import MIN_CUSTOMERS, MIN_REPEAT, models
from userops_lib.i18n import t
from userops_lib.rfm import segment_name


def _level(result) -> str:
    return narrative.level(result.level)


def _money(result, value: float) -> str:
    return narrative.money(value, result.currency)


def _horizon(result) -> str:
    return t("customer_value.horizon", days=result.params.horizon_days)


def _range(low: float, high: float, show) -> str:
    return f"{show(low)}–{show(high)}" if np.isfinite(low) and np.isfinite(high) else narrative.na()


def _top_share(result, share: float) -> float:
    row = result.concentration[np.isclose(result.concentration.top_share, share)]
    return float(row.value_share.iloc[0]) if len(row) else np.nan


def headlines(result) -> list[tuple[str, str]]:
    customers = result.customers
    if result.too_few:
        out = [(t("customer_value.tile.customers"), narrative.count(len(customers)))]
        if result.model_problem:
            out.append((t("customer_value.tile.model"), t(f"customer_value.tile.model.{result.model_problem}")))
        return out
    repeat = customers[customers.frequency > 0]
    alive = repeat.p_alive.sum()  # one-time buyers are active by the model's assumption: not a finding
    out = [
        (t("customer_value.tile.customers"), narrative.count(len(customers))),
        (
            t("customer_value.tile.alive"),
            f"{narrative.count(alive)} ({narrative.percent(alive / len(repeat) if len(repeat) else float('nan'))})",
        ),
        (
            t("customer_value.tile.purchases", horizon=_horizon(result)),
            narrative.count(customers.expected_purchases.sum()),
        ),
    ]
    if result.has_value:
        out.append(
            (
                t("customer_value.tile.revenue", horizon=_horizon(result)),
                _money(result, customers.expected_revenue.sum()),
            )
        )
    out.append((t("customer_value.tile.top20"), narrative.percent(_top_share(result, 0.2))))
    return out


def warnings(result) -> list[str]:
    """What a reader must know before trusting the page: a model that was fitted but cannot be used."""
    if result.model_problem:
        return [_model_failed(result)]
    if result.value_reason == "spend_failed":
        return [t("customer_value.finding.no_value.spend_failed")]
    return []


def _model_failed(result) -> str:
    table = result.parameters
    bounds = table[["value", "ci_low", "ci_high"]].to_numpy(float)
    flat = table[~np.isfinite(bounds).all(axis=1) | (table.ci_low <= 0).to_numpy()]
    diagnostics = _diagnostics(result)
    return t(
        f"customer_value.finding.model_failed.{result.model_problem}",
        parameters=", ".join(flat.parameter) or "-",
        customers=narrative.count(len(result.customers)),
        repeat=narrative.count(result.repeat_buyers),
        rhat=diagnostics.get("rhat", ""),
        ess=diagnostics.get("ess", ""),
    )


def findings(result) -> list[str]:
    customers = result.customers
    if result.model_problem:
        return [_model_failed(result)]
    if result.too_few:
        return [
            t(
                "customer_value.finding.too_few",
                n=len(customers),
                customers=narrative.count(len(customers)),
                repeat=narrative.count(result.repeat_buyers),
                date=narrative.day(result.calibration_end),
                min_customers=MIN_CUSTOMERS,
                min_repeat=MIN_REPEAT,
            )
        ]
    n = len(customers)
    repeat = customers[customers.frequency > 0]
    one_time = n - len(repeat)
    alive = customers.p_alive.sum()
    low, high = result.totals["alive"]
    out = [
        narrative.bottom_line(
            t(
                "customer_value.finding.alive",
                n=n,
                customers=narrative.spoken(n),
                alive=narrative.count(alive),
                share=narrative.percent(alive / n),
                level=_level(result),
                ci=_range(low, high, narrative.count),
                one_time=narrative.count(one_time),
                repeat=narrative.count(len(repeat)),
                alive_repeat=narrative.count(repeat.p_alive.sum()),
                share_repeat=narrative.percent(repeat.p_alive.sum() / len(repeat) if len(repeat) else float("nan")),
            )
        )
    ]
    low, high = result.totals["purchases"]
    horizon, level = _horizon(result), _level(result)
    expected = narrative.count(customers.expected_purchases.sum())
    ci = _range(low, high, narrative.count)
    if result.has_value:
        low, high = result.totals["revenue"]
        out.append(
            t(
                "customer_value.finding.next_value",
                horizon=horizon,
                purchases=expected,
                level=level,
                ci=ci,
                revenue=_money(result, customers.expected_revenue.sum()),
                revenue_ci=_range(low, high, lambda v: _money(result, v)),
                clv=_money(result, customers.clv.sum()),
                rate=narrative.percent(result.params.discount_rate, 0),
            )
        )
    else:
        out.append(t("customer_value.finding.next", horizon=horizon, purchases=expected, level=level, ci=ci))
        out.append(t(f"customer_value.finding.no_value.{result.value_reason}"))
    what = t("customer_value.of_value" if result.has_value else "customer_value.of_purchases")
    out.append(
        t(
            "customer_value.finding.concentration",
            what=what,
            top10=narrative.percent(_top_share(result, 0.1)),
            top20=narrative.percent(_top_share(result, 0.2)),
        )
    )
    facts = result.winback_facts
    if facts["customers"]:
        out.append(
            t(
                "customer_value.finding.winback"
                + (".no_revenue" if result.value_reason == "no_revenue" else ""),  # no spend the data lacks
                n=facts["customers"],
                customers=narrative.count(facts["customers"]),
                revenue=_money(result, facts["revenue"]),
                threshold=narrative.percent(0.5, 0),
            )
        )
    champions = result.tiers_vs_rfm[result.tiers_vs_rfm.rfm_segment == "Champions"]
    if len(champions) and int(champions.probably_gone.iloc[0]):
        out.append(
            t(
                "customer_value.finding.champions_gone",
                n=int(champions.probably_gone.iloc[0]),
                gone=narrative.count(int(champions.probably_gone.iloc[0])),
                champions=narrative.count(int(champions.customers.iloc[0])),
            )
        )
    if not result.holdout.empty:
        predicted = float((result.holdout.predicted * result.holdout.customers).sum())
        actual = float((result.holdout.actual * result.holdout.customers).sum())
        out.append(
            t(
                "customer_value.finding.holdout." + ("over" if predicted > actual else "under"),
                days=result.params.holdout_days,
                date=narrative.day(result.calibration_end),
                predicted=narrative.count(predicted),
                actual=narrative.count(actual),
                error=narrative.percent(abs(predicted - actual) / actual if actual else np.nan),
            )
        )
    if result.fitted_customers < result.calibration_customers:
        out.append(
            t(
                "customer_value.finding.sampled",
                fitted=narrative.count(result.fitted_customers),
                customers=narrative.count(result.calibration_customers),
            )
        )
    return out


def _diagnostics(result) -> dict[str, str]:
    """The worst R-hat and effective sample size over both models' parameters (MCMC only)."""
    fits = [f for f in (result.purchase_model, result.spend_model) if f is not None and f.diagnostics]
    if not fits:
        return {}
    rhat = max(f.diagnostics["rhat"] for f in fits)
    ess = min(f.diagnostics["ess"] for f in fits)
    return {"rhat": f"{rhat:.3f}", "ess": narrative.count(ess)}


def definitions(result) -> list[str]:
    params = result.params
    diagnostics = _diagnostics(result)
    unit = t(f"customer_value.unit.{params.time_unit}")
    if params.purchase_event == "*":
        purchase = t("customer_value.definition.purchase.every")
    elif params.purchase_event:
        purchase = t("customer_value.definition.purchase.event", event=params.purchase_event)
    elif result.value_reason == "no_revenue":
        purchase = t("customer_value.definition.purchase.active")
    else:
        purchase = t("customer_value.definition.purchase.revenue")
    summary = t(
        "customer_value.definition.summary",
        unit=unit,
        date=narrative.day(result.calibration_end),
        zone=narrative.zone(result.calendar),
    )
    health = t("customer_value.definition.health", rhat=models.RHAT_LIMIT, ess=models.ESS_LIMIT)
    if result.too_few:
        return [purchase, summary, health] if result.model_problem else [purchase, summary]
    out = [
        purchase,
        summary,
        t(
            f"customer_value.definition.method.{params.method}",
            level=_level(result),
            rhat=diagnostics.get("rhat", ""),
            ess=diagnostics.get("ess", ""),
        ),
        t("customer_value.definition.alive"),
    ]
    if params.holdout_days:
        out.append(
            t(
                "customer_value.definition.holdout",
                days=params.holdout_days,
                date=narrative.day(result.calibration_end),
                end=narrative.day(result.end_day),
            )
        )
    if result.has_value:
        out.append(
            t(
                "customer_value.definition.spend",
                customers=narrative.count(result.spend_customers),
                min=params.min_purchases,
                correlation=f"{result.spend_correlation:.2f}",
            )
        )
        out.append(
            t(
                "customer_value.definition.clv",
                horizon=_horizon(result),
                rate=narrative.percent(params.discount_rate, 0),
            )
        )
    out.append(t("customer_value.definition.tiers", threshold=narrative.percent(0.5, 0)))
    out.append(t("customer_value.definition.totals", level=_level(result)))
    out.append(health)
    return out


def shown_tables(result) -> list[contract.Shown]:
    if result.too_few and not result.model_problem:
        return []
    percent = narrative.percent
    money = {c: (lambda v: _money(result, v)) for c in ("revenue", "clv", "mean_clv", "monetary")}
    out = [
        contract.Shown(
            "parameters",
            result.parameters.assign(model=[t(f"customer_value.model.{m}") for m in result.parameters.model]),
            t("customer_value.caption.parameters", level=_level(result)),
            {c: (lambda v: f"{v:.4g}") for c in ("value", "ci_low", "ci_high")},
        )
    ]
    if result.model_problem:
        return out  # the failed fit's parameters show why; nothing was predicted
    if not result.holdout.empty:
        out.append(
            contract.Shown(
                "holdout",
                result.holdout,
                t("customer_value.caption.holdout", days=result.params.holdout_days),
                {c: (lambda v: f"{v:.2f}") for c in ("actual", "predicted")},
            )
        )
    out.append(
        contract.Shown(
            "concentration",
            result.concentration,
            t(
                "customer_value.caption.concentration",
                what=t("customer_value.of_value" if result.has_value else "customer_value.of_purchases"),
            ),
            {"top_share": lambda v: percent(v, 0), "value_share": percent},
        )
    )
    out.append(
        contract.Shown(
            "tiers_vs_rfm",
            result.tiers_vs_rfm.assign(rfm_segment=[segment_name(s) for s in result.tiers_vs_rfm.rfm_segment]),
            t("customer_value.caption.tiers_vs_rfm", threshold=percent(0.5, 0)),
            {"mean_p_alive": percent, **money},
        )
    )
    if not result.winback.empty:
        columns = ["user_id", "frequency", "last_purchase", "revenue", "p_alive"] + (
            ["clv"] if result.has_value else []
        )
        out.append(
            contract.Shown(
                "winback",
                result.winback[columns],
                t("customer_value.caption.winback", threshold=percent(0.5, 0)),
                {"p_alive": percent, "last_purchase": narrative.day, **money},
                max_rows=20,
            )
        )
    return out
