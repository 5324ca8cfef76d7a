"""Segment profiling in words: which catalogue message applies, filled with the result's numbers.

Segment, tier and stage names stay as the analysis names them in the CSV files (``Champions``,
``high``, ``dormant``); the report shows each in the reader's language, with who they are and what to
do. A custom segment map's own names and texts are shown as they are.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from userops_lib import contract, i18n, narrative
from userops_lib.analyses.segment_profiling.stats import STAGES
from userops_lib.i18n import t
from userops_lib.rfm import DEFAULT_SEGMENTS, NO_PURCHASE
from userops_lib.rfm import segment_name as name

AT_RISK = ("At Risk", "Can't Lose Them")


def _text(result, segment: str, kind: str) -> str:
    """Who a segment is (``describe``) or what to do (``action``): the catalogue's for the default map,
    else the custom map's own text."""
    own = {row[0]: (row[4], row[5]) for row in result.segment_map}
    default = {row[0] for row in DEFAULT_SEGMENTS}
    if segment in own and segment not in default:
        return own[segment][0 if kind == "describe" else 1]
    key = f"segment_profiling.{kind}.{segment}"
    return t(key) if i18n.has(key) else ""


def described(result, column: str, profile: pd.DataFrame) -> pd.DataFrame:
    """A profile with who each segment is and what to do, right after its name (not in a far column)."""
    frame = profile.copy()
    frame.insert(1, "description", [_text(result, s, "describe") for s in frame.segment])
    frame.insert(2, "suggested_action", [_text(result, s, "action") for s in frame.segment])
    return frame


def _shown_profile(result, column: str) -> pd.DataFrame:
    frame = described(result, column, result.profiles[column])
    frame["segment"] = [name(s) for s in frame.segment]
    return frame.rename(
        columns={
            c: t("segment_profiling.top", attribute=c.removeprefix("top_"))
            for c in frame.columns
            if c.startswith("top_")
        }
    )


def findings(result) -> list[str]:
    users, currency = result.users, result.currency
    rfm = result.profiles["rfm_segment"].set_index("segment")
    tiers = result.profiles["value_tier"].set_index("segment")
    out = []
    has_revenue = bool(users.monetary.sum() > 0)
    if "high" in tiers.index and has_revenue:
        out.append(
            t(
                "segment_profiling.finding.high_tier",
                users=narrative.percent(tiers.loc["high", "share_of_users"]),
                revenue=narrative.percent(tiers.loc["high", "share_of_revenue"]),
                arpu=narrative.money(tiers.loc["high", "arpu"], currency),
            )
        )
    buyers = rfm.drop(index=[NO_PURCHASE], errors="ignore")
    if len(buyers) and has_revenue:
        top = buyers.sort_values("share_of_revenue", ascending=False).iloc[0]
        out.append(
            t(
                "segment_profiling.finding.top_segment",
                segment=name(top.name),
                users=narrative.percent(top.share_of_users),
                revenue=narrative.percent(top.share_of_revenue),
            )
        )
        for segment in AT_RISK:
            if segment in rfm.index and rfm.loc[segment, "users"] > 0:
                out.append(
                    t(
                        "segment_profiling.finding.at_risk",
                        users=narrative.spoken(rfm.loc[segment, "users"]),
                        segment=name(segment),
                        revenue=narrative.percent(rfm.loc[segment, "share_of_revenue"]),
                        action=_text(result, segment, "action"),
                    )
                )
                break
    stages = result.profiles["lifecycle_stage"].set_index("segment")
    out.append(
        t(
            "segment_profiling.finding.lifecycle",
            stages=t("format.list_sep").join(
                t(
                    "segment_profiling.finding.stage",
                    stage=name(s),
                    share=narrative.percent(stages.loc[s, "share_of_users"]),
                )
                for s in STAGES
                if s in stages.index
            ),
        )
    )
    core = result.core
    if core["users"] and core["share"] >= 0.99:
        out.append(t("segment_profiling.finding.core_even", days=f"{core['threshold']:g}"))
    elif core["users"]:
        fields: dict[str, Any] = {
            "days": f"{core['threshold']:g}",
            "share": narrative.percent(core["share"]),
            "activity": narrative.percent(core["activity_share"]),
        }
        out.append(
            t("segment_profiling.finding.core_revenue", revenue=narrative.percent(core["revenue_share"]), **fields)
            if has_revenue
            else t("segment_profiling.finding.core", **fields)
        )
    if result.validation is not None and result.validation_tests:
        out.append(validation_sentence(result.validation_tests, result.period_days, result.alpha))
    # the first sentence (who holds the revenue, or else the lifecycle) is the page's bottom line
    return [narrative.bottom_line(out[0]), *out[1:]] if out else out


def validation_sentence(tests: dict, period_days: int, level: float = 0.05) -> str:
    """What the holdout showed, claiming a difference only where its test found one at ``level``."""
    parts, found = [], False
    for key, what in (("revenue_kruskal_p", "revenue"), ("churn_chi2_p", "churn")):
        if key in tests:
            differs = tests[key] < level
            found |= differs
            parts.append(
                t(
                    f"segment_profiling.validation.{what}_{'differs' if differs else 'same'}",
                    p=narrative.p_value(tests[key]),
                )
            )
    if "rfm_sum_spearman" in tests:
        parts.append(t("segment_profiling.validation.spearman", rho=f"{tests['rfm_sum_spearman']:.2f}"))
    key = "segment_profiling.validation.told_apart" if found else "segment_profiling.validation.not_told_apart"
    return t(key, days=period_days, parts=t("format.list_sep").join(parts))


def headlines(result) -> list[tuple[str, str]]:
    tiers = result.profiles["value_tier"].set_index("segment")
    rfm = result.profiles["rfm_segment"].set_index("segment")
    out = [(t("segment_profiling.tile.users"), narrative.count(len(result.users)))]
    has_revenue = bool(result.users.monetary.sum() > 0)
    if "high" in tiers.index and has_revenue:
        # The high tier makes ~high_share of revenue by definition; how few users make it is the news.
        out.append(
            (
                t("segment_profiling.tile.high", revenue=narrative.percent(tiers.loc["high", "share_of_revenue"])),
                narrative.percent(tiers.loc["high", "share_of_users"]),
            )
        )
    if len(rfm.drop(index=[NO_PURCHASE], errors="ignore")) and "Champions" in rfm.index:
        out.append((name("Champions"), narrative.percent(rfm.loc["Champions", "share_of_users"])))
    return out


def shown_tables(result) -> list[contract.Shown]:
    shares = {c: narrative.percent for c in ("share_of_users", "share_of_revenue", "churn_next_period")}
    days = result.period_days
    out = [
        contract.Shown(
            "rfm_segment", _shown_profile(result, "rfm_segment"), t("segment_profiling.caption.rfm"), shares
        ),
        contract.Shown(
            "value_tier", _shown_profile(result, "value_tier"), t("segment_profiling.caption.tiers"), shares
        ),
        contract.Shown(
            "lifecycle_stage",
            _shown_profile(result, "lifecycle_stage"),
            t("segment_profiling.caption.lifecycle"),
            shares,
        ),
        contract.Shown(
            "core",
            result.core["attributes"],
            t("segment_profiling.caption.core"),
            {c: narrative.percent for c in ("core_share", "others_share", "difference")},
            max_rows=15,
        ),
    ]
    if result.migration is not None:
        migration = result.migration.assign(
            from_segment=[name(s) for s in result.migration.from_segment],
            to_segment=[name(s) for s in result.migration.to_segment],
        )
        out.append(
            contract.Shown(
                "migration",
                migration,
                t("segment_profiling.caption.migration", days=days),
                {"share_of_from": narrative.percent},
                max_rows=40,
            )
        )
    if result.validation is not None:
        validation = result.validation.assign(segment=[name(s) for s in result.validation.segment])
        out.append(
            contract.Shown(
                "validation",
                validation,
                t("segment_profiling.caption.validation", days=days),
                {c: narrative.percent for c in ("churn_next", "churn_ci_low", "churn_ci_high")},
            )
        )
    return out


def definitions(result) -> list[str]:
    params = result.params
    fields: dict[str, Any] = {
        "level": narrative.level(result.alpha),
        "days": result.period_days,
        "high": narrative.percent(params.high_share if params else 0.2, 0),
        "mid": narrative.percent(params.mid_share if params else 0.3, 0),
        "new_days": params.new_days if params else 30,
        "dormant_days": params.dormant_days if params else 30,
        "mature_days": params.mature_days if params else 180,
        "churn_days": params.churn_days if params else 90,
        "share": narrative.percent(params.core_share if params else 0.2, 0),
    }
    out = [
        t(f"segment_profiling.definition.{key}", **fields)
        for key in ("rfm", "scores", "segments", "tiers", "lifecycle", "validation")
    ]
    core_days = params.core_window_days if params else 28
    out.insert(5, t("segment_profiling.definition.core", share=fields["share"], days=core_days))
    return out
