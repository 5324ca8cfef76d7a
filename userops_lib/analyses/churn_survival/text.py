"""Churn survival in words: which catalogue message applies, filled with the result's numbers."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from userops_lib import contract, narrative
from userops_lib.analyses.churn_survival import cox as cox_model
from userops_lib.analyses.churn_survival.curves import ALL, EVERY_SEGMENT
from userops_lib.analyses.churn_survival.risk import FEW_AT_RISK
from userops_lib.i18n import t

AT_RISK_SHOWN = 20


def _level(result) -> str:
    return narrative.level(result.alpha)


def unit_name(result) -> str:
    """'days' / '天': the unit of every duration."""
    return t(f"churn_survival.unit_name.{result.unit}")


def span(value: float, unit: str) -> str:
    """A length of time: '30 days', '1 month' / '30 天', '1 个月'."""
    return t(f"churn_survival.unit.{unit}", n=int(value) if value == int(value) else 2, time=f"{value:g}")


def segment(name: str) -> str:
    """A curve's name for people: the pooled curve ('all users' / '全部用户'), else the data's value."""
    return t("churn_survival.all_users") if name in (ALL, "all") else str(name)


def headlines(result) -> list[tuple[str, str]]:
    out = [
        (t("churn_survival.tile.users"), narrative.count(result.users)),
        (t("churn_survival.tile.churned"), narrative.percent(result.churned / result.users)),
    ]
    if result.cox is not None and result.cox.problem is None:
        # Concordance said as what it means to a manager: how often the model orders two customers right.
        out.append((t("churn_survival.tile.concordance"), narrative.percent(result.cox.concordance, 0)))
    if result.segment_by is None:
        h = result.km.horizons.iloc[0]
        out.append(
            (t("churn_survival.tile.still_active", time=span(h.horizon, result.unit)), narrative.percent(h.survival))
        )
    return out


def warnings(result) -> list[str]:
    """A churn model that was fitted but cannot be used, said first and marked on the index."""
    cox = result.cox
    if cox is None or cox.problem is None:
        return []
    if cox.problem == "not_converged":
        return [t("churn_survival.warning.not_converged", covariates=", ".join(cox.covariates))]
    return [t("churn_survival.warning.not_identified", covariates=t("format.list_sep").join(cox.unusable))]


def bottom_line(result) -> str:
    """How long users stay: when half of all users are gone, and which segment leaves soonest."""
    medians = result.km.medians
    overall = medians[medians.segment.isin([ALL, "all"])]
    row = overall.iloc[0] if len(overall) else medians.iloc[0]
    fields: dict[str, Any] = {
        "share": narrative.percent(result.churned / result.users),
        "users": narrative.count(result.users),
    }
    if np.isinf(row["median"]):
        text = t("churn_survival.bottom.open", **fields)
    else:
        text = t(
            "churn_survival.bottom.median",
            time=t(f"churn_survival.at_time.{result.unit}", time=f"{row['median']:g}"),
            level=_level(result),
            low=f"{row.ci_low:g}",
            high=t("churn_survival.median.not_reached") if np.isinf(row.ci_high) else f"{row.ci_high:g}",
            **fields,
        )
    segments = medians[~medians.segment.isin([ALL, "all"]) & np.isfinite(medians["median"])]
    if result.segment_by and len(segments) > 1:
        soonest = segments.sort_values("median").iloc[0]
        text += t(
            "churn_survival.bottom.soonest",
            segment_by=result.segment_by,
            segment=segment(soonest.segment),
            time=t(f"churn_survival.at_time.{result.unit}", time=f"{soonest['median']:g}"),
        )
    else:
        text += t("churn_survival.bottom.end")
    return narrative.bottom_line(text)


def findings(result) -> list[str]:
    out = [
        *warnings(result),
        bottom_line(result),
        t(
            "churn_survival.finding.churned",
            churned=narrative.count(result.churned),
            users=narrative.count(result.users),
            share=narrative.percent(result.churned / result.users),
        ),
    ]
    if result.too_new:
        out.append(_too_new(result))
    if result.cox is not None and result.cox.problem != "not_converged":
        summary = result.cox.summary
        loose = cox_model.not_estimable(summary)
        summary = summary[~loose]
        strongest = summary.assign(size=np.abs(np.log(summary.hazard_ratio)))
        strongest = strongest[strongest.p_value < result.alpha].sort_values("size", ascending=False)
        out.extend(hazard_sentence(row, result) for _, row in strongest.head(2).iterrows())
        if strongest.empty:
            out.append(t("churn_survival.finding.no_covariate", alpha=f"{result.alpha * 100:g}%"))
        out.extend(ph_sentences(result))
    out.append(
        t(
            "churn_survival.finding.medians",
            medians=t("format.list_sep").join(_median(result, row) for _, row in result.km.medians.head(4).iterrows()),
        )
    )
    if not result.km.logrank.empty:
        p = result.km.logrank.p_value.iloc[0]
        key = "differ" if p < result.alpha else "same"
        out.append(t(f"churn_survival.finding.logrank.{key}", segment_by=result.segment_by, p=narrative.p_value(p)))
    risky = result.at_risk.dropna(subset=["churn_probability"])
    if len(risky):
        top = risky.head(max(1, len(risky) // 10))
        out.append(
            t(
                "churn_survival.finding.risk",
                active=narrative.spoken(len(result.at_risk)),
                top=narrative.percent(top.churn_probability.mean()),
                horizon=span(result.risk_horizon, result.unit),
                all=narrative.percent(risky.churn_probability.mean()),
            )
        )
        if "users_at_risk" in top:
            few = int((top.users_at_risk.astype(float) < FEW_AT_RISK).sum())
            if few:
                out.append(
                    t(
                        "churn_survival.finding.few_at_risk",
                        n=few,
                        few=narrative.count(few),
                        top=narrative.count(len(top)),
                        minimum=FEW_AT_RISK,
                    )
                )
    if result.calibration is not None:
        out.append(calibration_sentence(result))
    else:
        out.append(calibration_note(result))
    return out


def _too_new(result) -> str:
    return t(
        "churn_survival.note.too_new",
        n=result.too_new,
        users=narrative.count(result.too_new),
        days=result.churn_after_days,
    )


def _median(result, row) -> str:
    name = segment(row.segment)
    if np.isinf(row["median"]):
        return t("churn_survival.median.open", segment=name)
    return t(
        "churn_survival.median.value",
        segment=name,
        time=t(f"churn_survival.at_time.{result.unit}", time=f"{row['median']:g}"),
        level=_level(result),
        low=f"{row.ci_low:g}",
        high=t("churn_survival.median.not_reached") if np.isinf(row.ci_high) else f"{row.ci_high:g}",
    )


def hazard_sentence(row, result) -> str:
    """One covariate's hazard ratio in words, against its reference level."""
    column, _, value = row.covariate.partition("=")
    fields = {"column": column, "level": _level(result), "p": narrative.p_value(row.p_value)}
    if not value:
        return t(
            "churn_survival.hazard.numeric",
            ratio=f"{row.hazard_ratio:.3f}",
            low=f"{row.ci_low:.3f}",
            high=f"{row.ci_high:.3f}",
            **fields,
        )
    ratio = row.hazard_ratio
    size = (
        t("churn_survival.hazard.up", ratio=f"{ratio:.2f}")
        if ratio >= 1
        else t("churn_survival.hazard.down", ratio=f"{ratio:.2f}", inverse=f"{1 / ratio:.1f}")
    )
    return t(
        "churn_survival.hazard.level",
        value=value,
        size=size,
        reference=result.cox.references.get(column, "?"),
        low=f"{row.ci_low:.2f}",
        high=f"{row.ci_high:.2f}",
        **fields,
    )


def ph_sentences(result) -> list[str]:
    """The proportional-hazards check in plain words, when it changes how the page reads (a check that
    passes is a note beside the definitions)."""
    cox = result.cox
    violating = cox.ph_test[cox.ph_test.violates]
    if violating.empty:
        return []
    out = [
        t(
            "churn_survival.ph.flags",
            n=len(violating),
            names=t("format.list_sep").join(violating.covariate),
            threshold=f"{result.level:g}",
        )
    ]
    if cox.stratified is not None:
        out.append(t("churn_survival.ph.stratified", strata=", ".join(cox.strata)))
    if not cox.holds:
        why = "all" if cox.strata and cox.stratified is None else "numeric"
        out.append(t(f"churn_survival.ph.no_remedy.{why}"))
    return out


def calibration_note(result) -> str:
    """How the risk list was checked on a holdout, or why it was not."""
    check = result.check
    if check.status != "ok":
        return t(f"churn_survival.calibration.{check.status}")
    return t(
        "churn_survival.calibration.holdout",
        day=narrative.day(check.cutoff_local),
        horizon=span(result.risk_horizon, "days"),
        users=narrative.spoken(check.users),
    )


def calibration_sentence(result) -> str:
    """How the holdout predictions compare with what happened, in words."""
    calibration = result.calibration
    users = calibration.users.sum()
    predicted = (calibration.predicted * calibration.users).sum() / users
    observed = (calibration.observed * calibration.users).sum() / users
    top, bottom = calibration.iloc[-1], calibration.iloc[0]
    se = np.sqrt(max(observed * (1 - observed), 1e-12) / users)
    if observed - predicted > 2 * se:
        verdict = "too_low"
    elif predicted - observed > 2 * se:
        verdict = "too_high"
    else:
        verdict = "in_line"
    separates = "separates" if top.ci_low > bottom.ci_high else "not_separates"
    return t(
        "churn_survival.calibration.finding",
        top_observed=narrative.percent(top.observed),
        top_predicted=narrative.percent(top.predicted),
        bottom_observed=narrative.percent(bottom.observed),
        ranking=t(f"churn_survival.calibration.{separates}"),
        observed=narrative.percent(observed),
        predicted=narrative.percent(predicted),
        verdict=t(f"churn_survival.calibration.{verdict}"),
        brier=f"{result.check.brier:.3f}",
    )


def notes(result) -> list[str]:
    """What the run chose and why, stated beside the definitions (users left out are a finding)."""
    out = []
    if "segment_by" in result.chosen:
        out.append(t("churn_survival.note.segment_chosen", segment_by=result.segment_by))
    if "covariates" in result.chosen:
        out.append(t("churn_survival.note.covariates_chosen", covariates=", ".join(result.cox.covariates)))
    if result.cox is not None and result.cox.problem is None and not result.cox.ph_test.violates.any():
        out.append(t("churn_survival.ph.none", threshold=f"{result.level:g}"))
    if result.cox is not None and result.cox.redundant:
        out.append(t("churn_survival.ph.redundant", columns=", ".join(result.cox.redundant)))
    if result.cox is not None and result.cox.problem is None and not result.risk_from_cox:
        key = "segment" if result.segment_by else "population"
        out.append(t(f"churn_survival.note.risk_from_km.{key}", segment_by=result.segment_by))
    return out


def definitions(result) -> list[str]:
    if result.source == "events":
        first = t("churn_survival.definition.events", days=result.churn_after_days)
    else:
        first = t("churn_survival.definition.users", unit=unit_name(result))
    common = [
        t("churn_survival.definition.km", level=_level(result)),
        t("churn_survival.definition.logrank"),
        t("churn_survival.definition.rmst", level=_level(result)),
        t("churn_survival.definition.cox", threshold=f"{result.level:g}"),
        t("churn_survival.definition.risk"),
    ]
    return [first, *notes(result), *common]


def _named(frame, column: str = "segment"):
    return frame.assign(**{column: [segment(s) for s in frame[column]]})


def _comparisons(result):
    """The log-rank table with its comparisons in words ('all segments', 'A vs B' / '全部分群', 'A 对比 B')."""
    tests = result.km.logrank
    levels = [s for s in result.km.fitters if s != ALL]
    pairs = list(itertools.combinations(levels, 2))
    names = [t("churn_survival.all_segments") if c == EVERY_SEGMENT else c for c in tests.comparison]
    if len(pairs) == len(tests) - 1:
        names[1:] = [t("churn_survival.pair", a=a, b=b) for a, b in pairs]
    return tests.assign(comparison=names)


def shown_tables(result) -> list[contract.Shown]:
    share = narrative.percent
    unit, level = unit_name(result), _level(result)
    out = [
        contract.Shown(
            "median_survival",
            _named(result.km.medians),
            t("churn_survival.caption.medians", unit=unit, level=level),
        ),
        contract.Shown(
            "survival_at_horizons",
            _named(result.km.horizons),
            t("churn_survival.caption.horizons", unit=unit),
            {"survival": share, "ci_low": share, "ci_high": share, "beyond_data": narrative.yes_no},
        ),
        contract.Shown("rmst", _named(result.km.rmst), t("churn_survival.caption.rmst", unit=unit, level=level)),
    ]
    if not result.km.logrank.empty:
        out.append(contract.Shown("logrank", _comparisons(result), t("churn_survival.caption.logrank")))
    cox = result.cox
    if cox is not None and cox.model is not None:
        weighted = "" if cox.exact else t("churn_survival.caption.weighted")
        out.append(
            contract.Shown(
                "cox",
                cox.summary,
                t(
                    "churn_survival.caption.cox",
                    users=narrative.count(cox.users),
                    concordance=f"{cox.concordance:.3f}",
                    weighted=weighted,
                ),
            )
        )
        sampled = (
            ""
            if cox.checked_users == cox.users
            else t("churn_survival.caption.sampled", users=narrative.count(cox.checked_users))
        )
        out.append(
            contract.Shown(
                "ph_test",
                cox.ph_test,
                t("churn_survival.caption.ph", threshold=f"{result.level:g}", sampled=sampled),
                {"violates": narrative.yes_no},
            )
        )
        if cox.stratified is not None:
            out.append(
                contract.Shown(
                    "cox_stratified",
                    cox.stratified,
                    t("churn_survival.caption.stratified", strata=", ".join(cox.strata)),
                )
            )
    out.append(
        contract.Shown(
            "at_risk_users",
            result.at_risk.head(AT_RISK_SHOWN),
            t("churn_survival.caption.at_risk", n=AT_RISK_SHOWN, horizon=span(result.risk_horizon, result.unit)),
            {"churn_probability": share},
        )
    )
    return out
