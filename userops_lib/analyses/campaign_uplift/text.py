"""Campaign uplift in words: which catalogue message applies, filled with the result's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from userops_lib import contract, i18n, narrative
from userops_lib.i18n import t

CUPED = " (CUPED)"


VERDICTS = ("better", "worse", "no_difference")


def _level(result) -> str:
    return narrative.level(result.alpha)


def metric_name(metric: str) -> str:
    """An outcome in words: the event metrics from the catalogue, the dataset's own columns as they are."""
    if metric.endswith(CUPED):
        return t("campaign_uplift.metric.cuped", metric=metric_name(metric.removesuffix(CUPED)))
    key = f"campaign_uplift.metric.{metric}"
    return t(key) if i18n.has(key) else metric.replace("_", " ")


def signed(value: float, currency: str) -> str:
    """A signed lift: money with its currency and two decimals; other amounts to three significant digits."""
    if currency or abs(value) >= 1:
        return f"{'+' if value >= 0 else '-'}{currency}{abs(value):,.2f}"
    return f"{value:+.3g}"


def _amount(result, metric: str, value: float) -> str:
    """A lift in its own unit: points for 0/1 metrics, the currency for money, else a signed number."""
    if pd.isna(value):
        return "–"
    if result.binary.get(metric.removesuffix(CUPED)):
        return t("campaign_uplift.points", value=f"{value * 100:+.1f}")
    return signed(value, result.currency if result.is_money(metric) else "")


def _arm_rows(result) -> pd.DataFrame:
    readout = result.readout
    return readout[readout.abs_lift.notna() & ~readout.metric.str.endswith(CUPED)]


def verdicts(result) -> pd.Series:
    """GrowthBook's reading of each treated arm x metric: ``better`` or ``worse`` when the adjusted p-value
    is under alpha (by the lift's sign), else ``no_difference`` (no detectable difference); by readout row."""
    readout = result.readout
    significant = readout.p_adjusted < result.alpha
    verdict = np.where(significant & (readout.abs_lift > 0), "better", "no_difference")
    verdict = np.where(significant & (readout.abs_lift < 0), "worse", verdict)
    return pd.Series(np.where(readout.abs_lift.isna(), "", verdict), index=readout.index)


def bottom_line(result) -> str:
    """The page's first sentence: which arms moved the primary metric, and how, or that none did."""
    rows = _arm_rows(result)
    rows = rows[rows.metric == result.primary]
    said = verdicts(result).loc[rows.index]
    better, worse = list(rows.arm[said == "better"]), list(rows.arm[said == "worse"])
    fields = {"metric": metric_name(result.primary), "campaign": result.campaign, "level": _level(result)}
    if not better and not worse:
        return t("campaign_uplift.bottom.none", arms=len(rows), **fields)

    def join(arms: list[str]) -> str:
        quoted = [t("format.quoted", name=arm) for arm in arms]
        return (
            quoted[0]
            if len(quoted) == 1
            else t("format.and", first=t("format.comma").join(quoted[:-1]), last=quoted[-1])
        )

    if better and worse:
        return t("campaign_uplift.bottom.mixed", better=join(better), worse=join(worse), **fields)
    key = "better" if better else "worse"
    return t(f"campaign_uplift.bottom.{key}", arms=join(better or worse), n=len(better or worse), **fields)


def warnings(result) -> list[str]:
    """The who-to-target model was fitted but cannot be used: said on the page and marked on the index."""
    model = result.model
    if model is None or model.problem is None:
        return []
    return [
        t(
            f"campaign_uplift.warning.model.{model.problem}",
            arm=model.arm,
            metric=metric_name(model.metric),
            features=", ".join(model.features),
        )
    ]


def findings(result) -> list[str]:
    out = [bottom_line(result)]
    srm = result.health[result.health.check == "sample ratio"].iloc[0]
    if srm.status == "fail":
        out.append(t("campaign_uplift.finding.srm_stop", p=narrative.p_value(srm.value)))
    for _, row in _arm_rows(result).iterrows():
        verdict = t(
            "campaign_uplift.verdict." + ("significant" if row.p_adjusted < result.alpha else "not_significant")
        )
        fields = {
            "arm": row.arm,
            "metric": metric_name(row.metric),
            "relative": f"{row.rel_lift:+.0%}",
            "verdict": verdict,
            "level": _level(result),
            "p": narrative.p_value(row.p_adjusted, t("format.p_adjusted")),
        }
        if result.binary.get(row.metric):
            out.append(
                t(
                    "campaign_uplift.finding.lift_points",
                    lift=f"{row.abs_lift * 100:+.1f}",
                    low=f"{row.ci_low * 100:+.1f}",
                    high=f"{row.ci_high * 100:+.1f}",
                    **fields,
                )
            )
        else:
            money = result.currency if result.is_money(row.metric) else ""
            out.append(
                t(
                    "campaign_uplift.finding.lift_amount",
                    lift=signed(row.abs_lift, money),
                    low=signed(row.ci_low, money),
                    high=signed(row.ci_high, money),
                    **fields,
                )
            )
    checks = {r.check: r.status for r in result.health.itertuples()}
    others = [_said(c, checks[c]) for c in ("minimum sample", "covariate balance") if c in checks]
    out.append(
        t(
            "campaign_uplift.finding.health",
            srm=_said("sample ratio", srm.status),
            p=f"{srm.value:.2g}",
            others=t("format.list_sep").join(others),
        )
    )
    cuped = result.readout[result.readout.metric.str.endswith(CUPED) & result.readout.abs_lift.notna()]
    if not cuped.empty:
        best = cuped.sort_values("variance_reduction", ascending=False).iloc[0]
        out.append(
            t(
                "campaign_uplift.finding.cuped",
                metric=metric_name(best.metric.removesuffix(CUPED)),
                share=f"{best.variance_reduction:.0%}",
            )
        )
    if not result.segments.empty:
        top = result.segments.sort_values("abs_lift", ascending=False).iloc[0]
        het = result.segments.heterogeneity_p.min()
        out.append(
            t(
                "campaign_uplift.finding.segments",
                segment_by=top.segment_by,
                metric=metric_name(result.primary),
                arm=top.arm,
                segment=top.segment,
                lift=f"{top.abs_lift * 100:+.1f}",
                verdict=t("campaign_uplift.verdict." + ("beyond_chance" if het < result.alpha else "within_chance")),
                p=narrative.p_value(het),
            )
        )
    if result.model is not None and result.model.problem is None:
        q, (low, high) = result.model.qini_coefficient, result.model.qini_ci
        better = bool(low > 0)  # advice only when the bootstrap interval excludes random targeting
        key = "campaign_uplift.finding.model_better" if better else "campaign_uplift.finding.model_random"
        out.append(t(key, arm=result.model.arm, q=f"{q:.4f}", low=f"{low:.4f}", high=f"{high:.4f}"))
    out.extend(warnings(result))
    return out


def _said(check: str, status: str) -> str:
    key = f"campaign_uplift.health.{check}.{status}"
    return t(key) if i18n.has(key) else f"{check} {status}"


def headlines(result) -> list[tuple[str, str]]:
    out = []
    rows = _arm_rows(result)
    best = rows[rows.metric == result.primary].sort_values("abs_lift", ascending=False)
    if len(best):
        lift = best.abs_lift.iloc[0]
        value = (
            t("campaign_uplift.points", value=f"{lift * 100:+.1f}")
            if result.binary.get(result.primary)
            else _amount(result, result.primary, lift)
        )
        out.append((t("campaign_uplift.tile.best", metric=metric_name(result.primary), arm=best.arm.iloc[0]), value))
    srm = result.health[result.health.check == "sample ratio"].iloc[0].status
    key = f"campaign_uplift.tile.split.{srm}"
    out.append((t("campaign_uplift.tile.check"), t(key) if i18n.has(key) else srm))
    return out


def health_details(result) -> list[str]:
    """One sentence per health check, in the current language (the CSV's ``detail`` is the English one)."""
    out = []
    for row in result.health.itertuples():
        if row.check == "sample ratio":
            text = t("campaign_uplift.detail.sample ratio", sizes=row.about, p=f"{row.value:.3g}")
            out.append(t("campaign_uplift.detail.srm_broken", detail=text) if row.status == "fail" else text)
        elif row.check == "minimum sample":
            out.append(
                t(
                    "campaign_uplift.detail.minimum sample",
                    smallest=narrative.count(row.value),
                    minimum=narrative.count(row.threshold),
                )
            )
        elif row.check == "covariate balance":
            out.append(
                t("campaign_uplift.detail.covariate balance", value=f"{row.value:.3f}", about=row.about)
                if row.about
                else t("campaign_uplift.detail.balance_none", value=f"{row.value:.3f}")
            )
        elif pd.notna(row.relative):
            out.append(
                t(
                    "campaign_uplift.detail.mde",
                    mde=f"{row.value:.4g}",
                    relative=f"{row.relative:.1%}",
                    power=f"{row.threshold:.0%}",
                )
            )
        else:
            out.append(t("campaign_uplift.detail.mde_short", mde=f"{row.value:.4g}"))
    return out


def _check_name(check: str) -> str:
    if check.startswith("minimum detectable effect: "):
        return t("campaign_uplift.check.mde", metric=metric_name(check.split(": ", 1)[1]))
    key = f"campaign_uplift.check.{check}"
    return t(key) if i18n.has(key) else check


def readout_shown(result) -> pd.DataFrame:
    """The arm summary as a reader sees it: each lift and its interval in its own unit (points for 0/1
    metrics, the currency for revenue), p-values as '< 0.001'. The CSV keeps the numbers."""
    frame = result.readout[
        ["arm", "metric", "n", "mean", "abs_lift", "ci_low", "ci_high", "rel_lift", "p_adjusted"]
    ].copy()
    for column in ("abs_lift", "ci_low", "ci_high"):
        frame[column] = [_amount(result, m, v) for v, m in zip(frame[column], frame.metric, strict=True)]
    frame["rel_lift"] = [("–" if pd.isna(v) else f"{v:+.1%}") for v in frame.rel_lift]
    frame["p_adjusted"] = [("–" if pd.isna(v) else narrative.p_text(v)) for v in frame.p_adjusted]
    frame["metric"] = [metric_name(m) for m in frame.metric]
    frame.insert(1, "verdict", [t(f"campaign_uplift.verdict.{v}") if v else "" for v in verdicts(result)])
    return frame.rename(columns={"abs_lift": "lift", "rel_lift": "lift_on_control", "p_adjusted": "adjusted_p"})


def shown_tables(result) -> list[contract.Shown]:
    health = pd.DataFrame(
        {
            "check": [_check_name(c) for c in result.health.check],
            "status": [t(f"campaign_uplift.status.{s}") for s in result.health.status],
            "detail": health_details(result),
        }
    )
    out = [
        contract.Shown(
            "arm_summary",
            readout_shown(result),
            t("campaign_uplift.caption.readout"),
            classes={"verdict": {t(f"campaign_uplift.verdict.{v}"): f"verdict-{v}" for v in VERDICTS}},
        ),
        contract.Shown("health", health, t("campaign_uplift.caption.health")),
    ]
    if not result.segments.empty:
        out.append(
            contract.Shown(
                "segment_uplift",
                result.segments.drop(columns=["se", "segment_by", "metric"]),
                t("campaign_uplift.caption.segments"),
            )
        )
    if result.model is not None and result.model.problem is None:
        out.append(contract.Shown("uplift_deciles", result.model.deciles, t("campaign_uplift.caption.deciles")))
    return out


def definitions(result) -> list[str]:
    correction = result.params.correction if result.params is not None else "holm"
    days = result.params.window_days if result.params is not None else 14
    fact = t(f"campaign_uplift.fact.{result.source}", campaign=result.campaign, control=result.control, days=days)
    return [fact] + [
        t(
            f"campaign_uplift.definition.{key}",
            level=_level(result),
            correction=t(f"campaign_uplift.correction.{correction}"),
        )
        for key in ("outcomes", "lift", "cuped", "health", "segments", "model")
    ]
