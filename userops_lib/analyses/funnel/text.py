"""The funnel in words: which catalogue message applies, filled with the result's numbers."""

from __future__ import annotations

from typing import Any

import pandas as pd

from userops_lib import contract, narrative
from userops_lib.analyses.funnel import stats
from userops_lib.i18n import t


def _level(result) -> str:
    return narrative.level(result.alpha)


def _window(result) -> str:
    return t("funnel.window", days=f"{result.window_days:g}")


def headlines(result) -> list[tuple[str, str]]:
    overall = result.overall
    if overall.empty or not overall.entered.iloc[0]:
        return [(t("funnel.tile.entered"), "0")]
    last = overall.iloc[-1]
    out = [
        (t("funnel.tile.entered"), narrative.count(int(overall.users.iloc[0]))),
        (t("funnel.tile.converted", event=last.event, window=_window(result)), narrative.percent(last.conversion)),
    ]
    drop = _biggest_drop(overall)
    if drop is not None:
        out.append((t("funnel.tile.biggest_drop", event=drop.event), narrative.percent(1 - drop.step_conversion)))
    return out


def _biggest_drop(overall: pd.DataFrame):
    steps = overall[(overall.step > 1) & overall.step_conversion.notna()]
    return None if steps.empty else steps.loc[steps.step_conversion.idxmin()]


def findings(result) -> list[str]:
    overall = result.overall
    if overall.empty or not overall.entered.iloc[0]:
        return [t("funnel.finding.none", window=_window(result))]
    first, last = overall.iloc[0], overall.iloc[-1]
    out = []
    out.append(
        narrative.bottom_line(
            t(
                "funnel.finding.overall",
                n=int(first.users),
                users=narrative.spoken(int(first.users)),
                first=first.event,
                last=last.event,
                window=_window(result),
                rate=narrative.percent(last.conversion),
                level=_level(result),
                ci=narrative.interval(last.ci_low, last.ci_high),
                converted=narrative.count(int(last.users)),
            )
        )
    )
    if result.default_steps:
        out.append(t("funnel.finding.default_steps", steps=" → ".join(result.steps)))
    drop = _biggest_drop(overall)
    if drop is not None:
        before = overall[overall.step == drop.step - 1].iloc[0]
        out.append(
            t(
                "funnel.finding.biggest_drop",
                share=narrative.percent(1 - drop.step_conversion),
                before=before.event,
                event=drop.event,
                lost=narrative.count(int(before.users - drop.users)),
            )
        )
        out.extend(_dropoff(result, drop, before))
    waiting = int(overall.in_window_waiting.sum())
    if waiting or overall.in_window_reached.iloc[0]:
        out.append(
            t(
                "funnel.finding.in_window",
                n=int(overall.in_window_reached.iloc[0]),
                users=narrative.count(int(overall.in_window_reached.iloc[0])),
                converted=narrative.count(int(overall.in_window_reached.iloc[-1])),
                window=_window(result),
            )
        )
    out.extend(_groups(result))
    out.extend(_arms(result))
    out.extend(_trend(result))
    return out


def _arms(result) -> list[str]:
    """Each campaign arm against control at the last step (users entering after assignment)."""
    if result.campaign is not None and result.arms.empty:
        return [t("funnel.finding.arm_none", campaign=result.campaign, first=result.steps[0])]
    if result.arm_lifts.empty:
        return []
    last = result.arm_lifts[result.arm_lifts.step == result.arm_lifts.step.max()]
    return [
        t(
            "funnel.finding.arm",
            campaign=result.campaign,
            arm=row.group,
            control=row.reference,
            event=row.event,
            rate=narrative.percent(row.conversion),
            control_rate=narrative.percent(row.reference_conversion),
            points=f"{row.difference * 100:+.1f}",
            level=_level(result),
            low=f"{row.ci_low * 100:+.1f}",
            high=f"{row.ci_high * 100:+.1f}",
            p=narrative.p_value(row.p_adjusted, t("format.p_holm")),
        )
        for _, row in last.iterrows()
    ]


def _dropoff(result, drop, before) -> list[str]:
    """What the users lost at the biggest drop did next, and how many came back after their window."""
    step = int(drop.step)
    paths = result.dropoff[(result.dropoff.step == step) & (result.dropoff.next_event != "other")]
    back = result.returns[result.returns.step == step]
    if paths.empty or back.empty:
        return []
    top = paths.sort_values("users", ascending=False).iloc[0]
    nothing = top.next_event == "(none)"
    return [
        t(
            "funnel.finding.dropoff_nothing" if nothing else "funnel.finding.dropoff",
            before=before.event,
            event=drop.event,
            next=top.next_event,
            share=narrative.percent(top.share),
            back=narrative.percent(float(back.came_back_share.iloc[0])),
            came_back=narrative.count(int(back.came_back.iloc[0])),
        )
    ]


def _groups(result) -> list[str]:
    if result.comparisons.empty:
        return []
    last_step = int(result.comparisons.step.max())
    final = result.comparisons[result.comparisons.step == last_step]
    rates = result.table[(result.table.group != "all") & (result.table.step == last_step)]
    rates = rates[rates.entered > 0]
    best, worst = rates.loc[rates.conversion.idxmax()], rates.loc[rates.conversion.idxmin()]
    significant = final[final.significant]
    key = "differ" if not significant.empty else "same"
    return [
        t(
            f"funnel.finding.groups.{key}",
            breakdown=result.breakdown,
            best=best.group,
            best_rate=narrative.percent(best.conversion),
            worst=worst.group,
            worst_rate=narrative.percent(worst.conversion),
            reference=final.reference.iloc[0],
            event=final.event.iloc[0],
            count=narrative.count(len(significant)),
            groups=narrative.count(len(final)),
        )
    ]


def _trend(result) -> list[str]:
    """The last four complete periods' conversion against the four before, with intervals and n (or the
    sentence that they are too few to tell)."""
    change = stats.trend_change(result.trend, result.level)
    if change is None:
        return []
    percent, incomplete = narrative.percent, int((~result.trend.complete).sum())
    fields: dict[str, Any] = {
        "period": t(f"period.{result.period}"),
        "now": percent(change["now"]),
        "before": percent(change["before"]),
        "n_now": narrative.count(change["n_now"]),
        "n_before": narrative.count(change["n_before"]),
        "incomplete": incomplete,
    }
    if change["too_few"]:
        return [t("funnel.finding.trend.too_few", minimum=stats.TREND_MIN_USERS, **fields)]
    low, high = change["difference_low"], change["difference_high"]
    verdict = "up" if low > 0 else "down" if high < 0 else "same"
    return [
        t(
            f"funnel.finding.trend.{verdict}",
            now_ci=narrative.ci(change["now_low"], change["now_high"], _level(result)),
            before_ci=narrative.ci(change["before_low"], change["before_high"], _level(result)),
            difference=f"{change['difference'] * 100:+.1f}",
            difference_ci=t(
                "format.ci",
                level=_level(result),
                interval=t("format.interval", low=f"{low * 100:+.1f}", high=f"{high * 100:+.1f}"),
            ),
            **fields,
        )
    ]


def definitions(result) -> list[str]:
    out = [
        t("funnel.definition.steps", steps=" → ".join(result.steps), window=_window(result)),
        t(f"funnel.definition.entry.{result.entry}"),
        t(f"funnel.definition.order.{result.order}"),
        t("funnel.definition.window", window=_window(result)),
        t("funnel.definition.rates", level=_level(result)),
        t("funnel.definition.times"),
    ]
    if result.exclude and result.exclusion == "remove":
        count = result.removed
        out.append(t("funnel.definition.exclude_remove", count, events=", ".join(result.exclude), count=count))
    elif result.exclude:
        out.append(t("funnel.definition.exclude", events=", ".join(result.exclude)))
    if result.breakdown:
        out.append(t("funnel.definition.groups", breakdown=result.breakdown))
    return out


def shown_tables(result) -> list[contract.Shown]:
    percent = narrative.percent
    shown = result.table[
        ["group", "step", "event", "users", "conversion", "ci_low", "ci_high", "step_conversion", "in_window_waiting"]
    ]
    out = [
        contract.Shown(
            "funnel",
            shown if result.breakdown else shown.drop(columns="group"),
            t("funnel.caption.funnel", window=_window(result), level=_level(result)),
            {c: percent for c in ("conversion", "ci_low", "ci_high", "step_conversion")},
        ),
        contract.Shown(
            "times",
            result.times[["step", "since", "users", "q1_hours", "median_hours", "q3_hours"]].assign(
                since=[t(f"funnel.since.{s}") for s in result.times.since]
            ),
            t("funnel.caption.times"),
            {c: narrative.duration for c in ("q1_hours", "median_hours", "q3_hours")},
        ),
        contract.Shown(
            "trend",
            result.trend.assign(
                period_start=[narrative.day(d) for d in result.trend.period_start],
                complete=[narrative.yes_no(c) for c in result.trend.complete],
            ),
            t("funnel.caption.trend", period=t(f"period.{result.period}"), window=_window(result)),
            {c: percent for c in ("conversion", "ci_low", "ci_high")},
            max_rows=60,
        ),
    ]
    if not result.dropoff.empty:
        out.append(
            contract.Shown(
                "dropoff",
                result.dropoff.assign(
                    next_event=[t("funnel.none_event") if e == "(none)" else e for e in result.dropoff.next_event]
                ),
                t("funnel.caption.dropoff", window=_window(result)),
                {"share": percent},
            )
        )
    if not result.arm_lifts.empty:
        out.append(
            contract.Shown(
                "arm_lifts",
                result.arm_lifts[
                    [
                        "step",
                        "event",
                        "group",
                        "reference",
                        "users",
                        "conversion",
                        "difference",
                        "ci_low",
                        "ci_high",
                        "p_adjusted",
                    ]
                ].rename(columns={"group": "arm"}),
                t("funnel.caption.arms", campaign=result.campaign, level=_level(result)),
                {c: percent for c in ("conversion", "difference", "ci_low", "ci_high")},
            )
        )
    if not result.comparisons.empty:
        out.append(
            contract.Shown(
                "comparisons",
                result.comparisons[
                    [
                        "step",
                        "event",
                        "group",
                        "reference",
                        "conversion",
                        "difference",
                        "ci_low",
                        "ci_high",
                        "p_adjusted",
                    ]
                ],
                t("funnel.caption.comparisons", level=_level(result)),
                {c: percent for c in ("conversion", "difference", "ci_low", "ci_high")},
            )
        )
    return out
