"""The overview in words: which catalogue message applies, filled with the result's numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from userops_lib import contract, narrative
from userops_lib.i18n import t

RETENTION_KEYS = ("d1_retention", "d7_retention", "d30_retention")


def _level(result) -> str:
    return narrative.level(result.level)


def _ci(low: float, high: float, result) -> str:
    return narrative.ci(low, high, _level(result))


def change_text(series: pd.Series, back: int, when: str) -> str:
    """'+3.2% on 30 days before' for a headline tile: the last value against the one ``back`` rows earlier
    (empty when there is nothing to compare with)."""
    if len(series) <= back:
        return ""
    now, before = float(series.iloc[-1]), float(series.iloc[-1 - back])
    if not before or np.isnan(before) or np.isnan(now):
        return ""
    return t("change.relative", change=f"{(now / before - 1) * 100:+.1f}%", when=when)


def _tile(label: str, change: str) -> str:
    return t("overview.tile.change", label=label, change=change) if change else label


def _cards(result) -> dict:
    """The KPI cards with a value, by KPI (empty without cards): what the tiles, the bottom line and the
    activity sentence all read, so a KPI has one value on the page."""
    frame = result.frames.get("kpis")
    if frame is None or frame.empty:
        return {}
    return {row.kpi: row for row in frame.itertuples() if pd.notna(row.value)}


def headlines(result) -> list[tuple[str, str]]:
    """The tiles. A KPI the cards show (MAU, stickiness, ARPU) has the card's value and period here, so a
    page shows one value per KPI; without cards, the last complete day's (or month's) value."""
    out = [(t("overview.tile.users"), narrative.count(result.users))]
    card = _cards(result)

    def from_card(kpi: str, label_key: str) -> tuple[str, str] | None:
        row = card.get(kpi)
        if row is None:
            return None
        label = t(label_key, period=period_label(result.period, row.period_start))
        return _tile(label, _change_note(row, result.period)), _value(row.unit, row.value, result.currency)

    if result.has("active_users"):
        last = result.frames["active_users"][result.frames["active_users"].mau_complete]
        if not last.empty:
            out.append(
                from_card("stickiness", "overview.tile.stickiness_in")
                or (t("overview.tile.stickiness"), narrative.percent(last.tail(30).stickiness.mean()))
            )
            out.append(
                from_card("mau", "overview.tile.mau_in")
                or (
                    _tile(t("overview.tile.mau"), change_text(last.mau, 30, t("overview.when.30_days"))),
                    narrative.count(last.mau.iloc[-1]),
                )
            )
    if result.paying_conversion is not None:
        out.append(
            (
                t("overview.tile.paying", days=result.paying_conversion["window_days"]),
                narrative.percent(result.paying_conversion["rate"]),
            )
        )
        complete = result.frames["monthly"][result.frames["monthly"].complete]
        tile = from_card("arpu", "overview.tile.arpu_in")
        if tile is None and not complete.empty:
            label = t("overview.tile.arpu", month=narrative.month(complete.month.iloc[-1]))
            tile = (
                _tile(label, change_text(complete.arpu, 1, t("period.before.month"))),
                narrative.money(complete.arpu.iloc[-1], result.currency),
            )
        if tile is not None:
            out.append(tile)
    if result.has("churn"):
        out.append((t("overview.tile.churned"), narrative.percent(result.frames["churn"].rate.iloc[0])))
    return out


def _change(value: float, unit: str, when: str) -> str:
    """A change in words: percentage points for rates, per cent for counts and money."""
    if unit == "points":
        return t("change.points", change=f"{value * 100:+.1f}", when=when)
    return t("change.relative", change=f"{value * 100:+.1f}%", when=when)


def _change_note(row, period: str) -> str:
    """A card's change against the period before, as a tile shows it."""
    return "" if pd.isna(row.change) else _change(row.change, row.change_unit, t(f"period.before.{period}"))


def period_label(period: str, start) -> str:
    """'week of 8 Dec 2025' / '2025年12月8日当周', '8 Dec 2025', 'Dec 2025'."""
    date = narrative.month(start) if period == "month" else narrative.day(start)
    return t(f"period.start.{period}", date=date)


def _value(unit: str, value: float, currency: str) -> str:
    if unit == "share":
        return narrative.percent(value)
    if unit == "money":
        return narrative.money(value, currency)
    return narrative.count(value)


def cards(result) -> tuple[str, list[tuple[str, str, str]]]:
    """The KPI cards' heading (日报, 周报 or 月报 by the period) and (label, value, note) per card."""
    period = result.period
    frame = result.frames.get("kpis")
    if frame is None or frame.empty:
        return t("overview.cards.none", period=t(f"period.{period}")), []
    latest = frame.period_start.max()
    heading = t(f"overview.cards.heading.{period}", period=period_label(period, latest))
    out = []
    for row in frame.itertuples():
        label = t(f"overview.card.{row.kpi}")
        if pd.isna(row.period_start):  # a retention card without a cohort whose day N has passed
            out.append((label, narrative.na(), t("overview.card.no_cohort", days=row.kpi[1:].split("_")[0])))
            continue
        notes = []
        if row.kpi in RETENTION_KEYS:
            notes.append(t("overview.card.cohort_n", n=int(row.n), period=period_label(period, row.period_start)))
        elif row.period_start != latest:
            notes.append(t("overview.card.cohort", period=period_label(period, row.period_start)))
        for change_value, when in (
            (row.change, t(f"period.before.{period}")),
            (row.change_week, t("period.week_before")),
        ):
            if not pd.isna(change_value):
                notes.append(_change(change_value, row.change_unit, when))
        if not np.isnan(row.ci_low):
            notes.append(_ci(row.ci_low, row.ci_high, result))
        out.append((label, _value(row.unit, row.value, result.currency), t("format.list_sep").join(notes)))
    return heading, out


def bottom_line(result) -> str | None:
    """The page's first sentence, from the KPI cards the tiles show (one value per KPI): monthly active
    users and new users in the last complete period, each against the period before, and ARPU with money."""
    card = _cards(result)
    if "mau" not in card or "new_users" not in card:
        return None

    def change(row, key: str = "overview.bottom.change") -> str:
        note = _change_note(row, result.period)
        return t(key, change=note) if note else ""

    mau, new = card["mau"], card["new_users"]
    money = ""
    if "arpu" in card:
        arpu = card["arpu"]
        money = t("overview.bottom.arpu", arpu=_value("money", arpu.value, result.currency), change=change(arpu))
    return narrative.bottom_line(
        t(
            "overview.bottom.active",
            period=t(f"overview.bottom.when.{result.period}", label=period_label(result.period, mau.period_start)),
            mau=narrative.count(mau.value),
            mau_change=change(mau, "overview.bottom.change_in"),
            new=narrative.count(new.value),
            new_change=change(new),
            money=money,
        )
    )


def findings(result) -> list[str]:
    out = []
    if result.has("new_users"):
        out.extend(_new_users(result))
        out.append(_activity_in_period(result) or _activity(result.frames["active_users"]))
        retention = _retention(result)
        if retention:
            out.append(retention)
    if result.paying_conversion is not None:
        out.extend(_money(result))
    if result.has("churn"):
        churn = result.frames["churn"].iloc[0]
        out.append(
            t(
                "overview.finding.churned",
                share=narrative.percent(churn.rate),
                users=narrative.spoken(churn.users),
                ci=narrative.interval(churn.ci_low, churn.ci_high),
                level=_level(result),
                unit=result.duration_unit,
            )
        )
    if result.has("arms"):
        out.append(_arms(result))
    if result.rows_set_aside:
        out.append(
            t("overview.finding.set_aside", n=result.rows_set_aside, rows=narrative.count(result.rows_set_aside))
        )
    first = bottom_line(result)
    if first is not None:
        return [first, *out]
    return [narrative.bottom_line(out[0]), *out[1:]] if out else out


def _new_users(result) -> list[str]:
    frame, period = result.frames["new_users"], result.period
    complete = frame[frame.complete]
    fields: dict[str, Any] = {
        "total": narrative.spoken(frame.new_users.sum()),
        "first": narrative.day(result.calendar.to_local(result.first_seen)),
        "last": narrative.day(result.calendar.to_local(result.last_seen)),
        "period": t(f"period.{period}"),
    }
    if len(complete):
        out = [
            t(
                "overview.finding.new_users_average",
                mean=narrative.count(complete.new_users.mean()),
                last_value=narrative.count(complete.new_users.iloc[-1]),
                **fields,
            )
        ]
    else:
        out = [t("overview.finding.new_users", **fields)]
    incomplete = len(frame) - len(complete)
    if incomplete:
        out.append(t("overview.finding.incomplete", n=incomplete, periods=t(f"period.plural.{period}", n=incomplete)))
    return out


def _activity_in_period(result) -> str | None:
    """Activity in the cards' period, with the cards' values (one value per KPI on a page)."""
    card = _cards(result)
    if not {"dau", "wau", "mau", "stickiness"} <= set(card):
        return None
    stickiness = float(card["stickiness"].value)
    text = t(
        f"overview.finding.activity_in.{result.period}",
        when=t(f"overview.bottom.when.{result.period}", label=period_label(result.period, card["mau"].period_start)),
        dau=narrative.spoken(card["dau"].value),
        wau=narrative.spoken(card["wau"].value),
        mau=narrative.spoken(card["mau"].value),
        stickiness=narrative.percent(stickiness),
        days=f"{stickiness * 30:.1f}",
    )
    return text[:1].upper() + text[1:]


def _activity(frame: pd.DataFrame) -> str:
    complete = frame[frame.mau_complete]
    if complete.empty:
        return t("overview.finding.activity_short")
    last, recent = complete.iloc[-1], complete.tail(30)
    return t(
        "overview.finding.activity",
        day=narrative.day(last.day),
        dau=narrative.spoken(last.dau),
        wau=narrative.spoken(last.wau),
        mau=narrative.spoken(last.mau),
        stickiness=narrative.percent(recent.stickiness.mean()),
        days=f"{recent.stickiness.mean() * 30:.1f}",
    )


def _retention(result) -> str | None:
    frame = result.frames.get("kpis")
    if frame is None or frame.empty:
        return None
    rows = {row.kpi: row for row in frame.itertuples() if row.kpi in RETENTION_KEYS}
    if not rows:
        return None
    same_period = len({row.period_start for row in rows.values()}) == 1
    if len(rows) == len(RETENTION_KEYS) and same_period:
        row = rows["d1_retention"]
        return t(
            "overview.finding.retention",
            period=period_label(result.period, row.period_start),
            period_name=t(f"period.{result.period}"),
            level=_level(result),
            **_retention_fields(rows),
        )
    return t("format.sentence_join").join(
        t(
            "overview.finding.retention_one",
            on_day=t(f"overview.finding.on_{key.split('_')[0]}"),
            period=period_label(result.period, row.period_start),
            rate=narrative.percent(row.value),
            level=_level(result),
            ci=narrative.interval(row.ci_low, row.ci_high),
        )
        for key, row in rows.items()
    )


def _money(result) -> list[str]:
    out = []
    conversion = result.paying_conversion
    if conversion["users"]:
        out.append(
            t(
                "overview.finding.conversion",
                rate=narrative.percent(conversion["rate"]),
                days=conversion["window_days"],
                ci=narrative.interval(conversion["ci_low"], conversion["ci_high"]),
                level=_level(result),
                users=narrative.spoken(conversion["users"]),
            )
        )
    complete = result.frames["monthly"][result.frames["monthly"].complete]
    if not complete.empty:
        last = complete.iloc[-1]
        out.append(
            t(
                "overview.finding.money",
                month=narrative.month(last.month),
                share=narrative.percent(last.paying_share),
                arpu=narrative.money(last.arpu, result.currency),
                arppu=narrative.money(last.arppu, result.currency),
                revenue=narrative.money(last.revenue, result.currency),
            )
        )
    return out


def _arms(result) -> str:
    arms = result.frames["arms"]
    parts = t("format.list_sep").join(
        t("overview.finding.arm_part", arm=arm, users=narrative.count(n), share=narrative.percent(s))
        for arm, n, s in zip(arms.arm, arms.users, arms.share, strict=True)
    )
    control = (
        t("overview.finding.control", arm=result.control_arm)
        if result.control_arm
        else t("overview.finding.no_control")
    )
    campaigns = arms.campaign.nunique()
    return t(
        "overview.finding.arms", n=campaigns, users=narrative.spoken(arms.users.sum()), parts=parts, control=control
    )


def definitions(result) -> list[str]:
    level = _level(result)
    keys = ["time", "new_users", "active", "stickiness", "retention", "cards"]
    if result.paying_conversion is not None:
        keys += ["paying_share", "conversion", "arpu"]
    if result.has("churn"):
        keys.append("churned")
    from userops_lib.analyses.overview import CONVERSION_DAYS

    return [
        t(
            f"overview.definition.{key}",
            level=level,
            days=CONVERSION_DAYS,
            period=t(f"period.{result.period}"),
            zone=narrative.zone(result.calendar),
            week_start=t(f"calendar.weekday.{result.calendar.week_start}"),
        )
        for key in keys
    ]


def shown_tables(result) -> list[contract.Shown]:
    out = []
    money = lambda v: narrative.money(v, result.currency)  # noqa: E731
    formats = {
        "month": narrative.month,
        "paying_share": narrative.percent,
        "share": narrative.percent,
        "revenue": money,
        "arpu": money,
        "arppu": money,
        "complete": narrative.yes_no,
        "active_users": narrative.count,
        "paying_users": narrative.count,
        "users": narrative.count,
    }
    if result.has("monthly"):
        out.append(contract.Shown("monthly", result.frames["monthly"], t("overview.caption.monthly"), formats))
    if result.has("arm_outcomes"):
        out.append(contract.Shown("arm_outcomes", result.frames["arm_outcomes"], t("overview.caption.arm_outcomes")))
    if result.has("attributes"):
        out.append(
            contract.Shown(
                "attributes", result.frames["attributes"], t("overview.caption.attributes"), formats, max_rows=60
            )
        )
    return out


def _retention_fields(rows) -> dict[str, Any]:
    """d1, d7, d30 and their intervals, as the retention finding fills them."""
    out: dict[str, Any] = {}
    for n in (1, 7, 30):
        row = rows[f"d{n}_retention"]
        out[f"d{n}"], out[f"d{n}_ci"] = narrative.percent(row.value), narrative.interval(row.ci_low, row.ci_high)
    return out
