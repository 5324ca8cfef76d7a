"""Cohort retention in words: which catalogue message applies, filled with the result's numbers."""

from __future__ import annotations

from typing import Any

from userops_lib import contract, narrative
from userops_lib.analyses.cohort_retention.stats import TREND_PERIODS
from userops_lib.i18n import t
from userops_lib.proportions import wilson


def _level(result) -> str:
    return narrative.level(result.alpha)


def label(result, k: int) -> str:
    """'week 4' / '第4周', or a bracket 'weeks 1–3' / '第1–3周'."""
    if result.brackets:
        first, last = result.brackets[k]
        return t(
            "cohort_retention.label.bracket", first=first, last=last, periods=t(f"period.plural.{result.period}", n=2)
        )
    return t("cohort_retention.label.period", period=t(f"period.{result.period}"), k=k)


def _how(result, short: bool = False) -> str:
    key = "on_or_after" if result.mode == "on_or_after" else "on"
    return (
        t(f"cohort_retention.how_short.{key}") if short and key == "on_or_after" else t(f"cohort_retention.how.{key}")
    )


def _overall(result):
    average = result.average
    overall = average.groupby("period", as_index=False)[["users", "active_users"]].sum()
    return overall.merge(average.groupby("period", as_index=False).cohorts.max(), on="period")


def _points(result, overall) -> list[int]:
    candidates = TREND_PERIODS[result.period] if not result.brackets else range(len(result.brackets))
    return [k for k in candidates if k in set(overall.period)][:3]


def headlines(result) -> list[tuple[str, str]]:
    overall = _overall(result)
    out = []
    for k in _points(result, overall) if not overall.empty else []:
        row = overall[overall.period == k].iloc[0]
        out.append(
            (
                t("cohort_retention.tile.point", label=label(result, k), how=_how(result, short=True)),
                narrative.percent(row.active_users / row.users),
            )
        )
    if result.ltv is not None and not result.ltv.empty and not overall.empty:
        k, total = _ltv_total(result)
        out.append((t("cohort_retention.tile.ltv", label=label(result, k)), narrative.money(total, result.currency)))
    return out


def _ltv_total(result) -> tuple[int, float]:
    ltv = result.ltv
    total = ltv.assign(s=ltv.ltv * ltv.users).groupby("period").s.sum() / ltv.groupby("period").users.sum()
    k = int(ltv.period.max())
    return k, float(total.loc[k])


def _bottom_line(result, overall) -> str:
    """Retention at the first and the last of the page's periods, the last with its interval and users."""
    points = _points(result, overall) or [int(overall.period.max())]
    rows = [overall[overall.period == k].iloc[0] for k in (points[0], points[-1])]
    (low,), (high,) = wilson([rows[1].active_users], [rows[1].users], result.alpha)
    fields: dict[str, Any] = {
        "how": _how(result),
        "last_label": label(result, points[-1]),
        "last_rate": narrative.percent(rows[1].active_users / rows[1].users),
        "level": _level(result),
        "ci": narrative.interval(low, high),
        "users": narrative.count(rows[1].users),
    }
    if len(points) == 1:
        return narrative.bottom_line(t("cohort_retention.bottom.one", **fields))
    first: dict[str, Any] = {
        "first_label": label(result, points[0]),
        "first_rate": narrative.percent(rows[0].active_users / rows[0].users),
    }
    return narrative.bottom_line(t("cohort_retention.bottom.two", **fields, **first))


def findings(result) -> list[str]:
    overall = _overall(result)
    if overall.empty:
        return [t("cohort_retention.finding.none")]
    out = [_bottom_line(result, overall)]
    for k in _points(result, overall):
        row = overall[overall.period == k].iloc[0]
        (low,), (high,) = wilson([row.active_users], [row.users], result.alpha)
        text = label(result, k)
        out.append(
            t(
                "cohort_retention.finding.point",
                n=int(row.cohorts),
                label=text[:1].upper() + text[1:],
                how=_how(result),
                rate=narrative.percent(row.active_users / row.users),
                level=_level(result),
                ci=narrative.interval(low, high),
                users=narrative.spoken(row.users),
            )
        )
    youngest = result.cells[result.cells.active_users.notna()].cohort.max()
    censored = int(result.cells.active_users.isna().sum())
    out.append(
        t(
            "cohort_retention.finding.censored",
            censored=narrative.count(censored),
            cells=narrative.count(len(result.cells)),
            label=label(result, int(overall.period.max())),
            day=narrative.day(youngest),
        )
    )
    if not result.comparisons.empty:
        out.extend(_differences(result))
    if result.ltv is not None and not result.ltv.empty:
        ltv = result.ltv.groupby("period", as_index=False)[["users", "cohorts"]].max()
        k, total = _ltv_total(result)
        out.append(
            t(
                "cohort_retention.finding.ltv",
                n=int(ltv.cohorts.max()),
                money=narrative.money(total, result.currency),
                label=label(result, k),
                users=narrative.spoken(int(ltv.users.max())),
                period=t(f"period.{result.period}"),
            )
        )
    return out


def _differences(result) -> list[str]:
    significant = result.comparisons[result.comparisons.significant]
    out = []
    for _, row in significant.sort_values("p_adjusted").head(3).iterrows():
        key = "better" if row.difference > 0 else "worse"
        out.append(
            t(
                f"cohort_retention.finding.{key}",
                label=label(result, int(row.period)),
                group_by=result.group_by,
                group=row.group,
                points=f"{abs(row.difference) * 100:.1f}",
                reference=row.reference,
                rate=narrative.percent(row.retention),
                reference_rate=narrative.percent(row.reference_retention),
                level=_level(result),
                low=f"{row.ci_low * 100:+.1f}",
                high=f"{row.ci_high * 100:+.1f}",
                p=narrative.p_value(row.p_adjusted, t("format.p_holm")),
            )
        )
    if significant.empty:
        out.append(
            t(
                "cohort_retention.finding.no_difference",
                group_by=result.group_by,
                reference=result.comparisons.reference.iloc[0],
            )
        )
    return out


def definitions(result) -> list[str]:
    return [
        t(
            f"cohort_retention.definition.{key}",
            level=_level(result),
            zone=narrative.zone(result.calendar),
            week_start=t(f"calendar.weekday.{result.calendar.week_start}"),
        )
        for key in ("cohort", "retention", "censoring", "intervals", "value")
    ]


def shown_tables(result) -> list[contract.Shown]:
    share = narrative.percent
    out = [
        contract.Shown(
            "average",
            result.key_periods(),
            t("cohort_retention.caption.average"),
            {"retention": share, "ci_low": share, "ci_high": share, "users": narrative.count},
        )
    ]
    if not result.comparisons.empty:
        out.append(
            contract.Shown(
                "comparisons",
                result.comparisons,
                t("cohort_retention.caption.comparisons"),
                {
                    **{c: share for c in ("retention", "reference_retention", "difference", "ci_low", "ci_high")},
                    "significant": narrative.yes_no,
                },
            )
        )
    return out
