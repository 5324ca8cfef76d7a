"""The funnel's statistics (pandas and statsmodels only), from the engine's small tables: conversion to
each step and from the step before with Wilson intervals, time to each step from minute histograms, and
conversion by entry period with incomplete periods marked."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

from userops_lib import topn
from userops_lib.proportions import two_sample_p, wilson

ALL = "all"  # the group of every user (funnel.csv's group without a breakdown)

FUNNEL_COLUMNS = (
    "group",
    "step",
    "event",
    "users",
    "conversion",
    "ci_low",
    "ci_high",
    "step_conversion",
    "step_ci_low",
    "step_ci_high",
    "median_hours_from_start",
    "median_hours_from_previous",
    "in_window_waiting",
    "in_window_reached",
)


def funnel(counts: pd.DataFrame, labels: list[str], alpha: float, times: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per group and step. ``users``: complete users (window ended) who reached the step;
    ``conversion`` from step 1 and ``step_conversion`` from the step before, each with its Wilson
    interval; ``in_window_waiting``: users still in their window who reached the step before and not this
    one yet (0 on the entry row: nobody waits to enter), ``in_window_reached``: those in their window who
    reached this step already (on the entry row, every user still in their window). Neither is in the rates."""
    rows = []
    for group, part in counts.groupby("group", sort=True):
        done, open_ = part[part.complete.astype(bool)], part[~part.complete.astype(bool)]
        reached = [int(done.loc[done.reached >= k, "users"].sum()) for k in range(1, len(labels) + 1)]
        pending = [int(open_.loc[open_.reached == k - 1, "users"].sum()) for k in range(1, len(labels) + 1)]
        already = [int(open_.loc[open_.reached >= k, "users"].sum()) for k in range(1, len(labels) + 1)]
        for k, label in enumerate(labels, start=1):
            rows.append(
                {
                    "group": group,
                    "step": k,
                    "event": label,
                    "users": reached[k - 1],
                    "entered": reached[0],
                    "before": reached[k - 2] if k > 1 else reached[0],
                    "in_window_waiting": pending[k - 1] if k > 1 else 0,
                    "in_window_reached": already[k - 1],
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=[*FUNNEL_COLUMNS, "entered"])
    frame["conversion"] = frame.users / frame.entered.where(frame.entered > 0)
    frame["ci_low"], frame["ci_high"] = wilson(frame.users, frame.entered, alpha)
    frame["step_conversion"] = frame.users / frame.before.where(frame.before > 0)
    frame["step_ci_low"], frame["step_ci_high"] = wilson(frame.users, frame.before, alpha)
    medians = time_quantiles(times) if times is not None and not times.empty else pd.DataFrame()
    for since in ("start", "previous"):
        column = f"median_hours_from_{since}"
        if medians.empty:
            frame[column] = np.nan
            continue
        lookup = medians[medians.since == since].set_index("step").median_hours
        frame[column] = frame.step.map(lookup).where(frame.step > 1)
    return frame.reindex(columns=[*FUNNEL_COLUMNS, "entered"])  # entered: complete users at step 1


def time_quantiles(histograms: pd.DataFrame) -> pd.DataFrame:
    """From ``step, since, minutes, users`` counts: the quartiles of the time to each step, in hours, at
    minute resolution (the lower quantile: the first minute at which the share reaches p)."""
    rows = []
    for (step, since), part in histograms.groupby(["step", "since"], sort=True):
        part = part.sort_values("minutes")
        cumulative = part.users.cumsum().to_numpy() / part.users.sum()
        minutes = part.minutes.to_numpy()
        quantile = {p: minutes[np.searchsorted(cumulative, p - 1e-12)] / 60 for p in (0.25, 0.5, 0.75)}
        rows.append(
            {
                "step": int(step),
                "since": since,
                "users": int(part.users.sum()),
                "q1_hours": quantile[0.25],
                "median_hours": quantile[0.5],
                "q3_hours": quantile[0.75],
            }
        )
    return pd.DataFrame(rows, columns=["step", "since", "users", "q1_hours", "median_hours", "q3_hours"])


def trend(entries: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Conversion to the last step by entry period, over the complete users of each period:
    ``period_start, entered, converted, conversion, ci_low, ci_high, complete`` (complete: every user who
    entered in the period has a finished window; an incomplete period's rate rests on its early entrants)."""
    if entries.empty:
        return pd.DataFrame(columns=["period_start", "entered", "converted", "conversion", "ci_low", "ci_high"])
    done = entries[entries.complete.astype(bool)]
    by = entries.groupby("period_start").users.sum().rename("entered").to_frame()
    by["entered_complete"] = done.groupby("period_start").users.sum()
    by["converted"] = done[done.converted.astype(bool)].groupby("period_start").users.sum()
    by = by.fillna(0).astype(int).reset_index().sort_values("period_start")
    by["conversion"] = by.converted / by.entered_complete.where(by.entered_complete > 0)
    by["ci_low"], by["ci_high"] = wilson(by.converted, by.entered_complete, alpha)
    by["complete"] = by.entered_complete == by.entered
    return by[
        ["period_start", "entered", "entered_complete", "converted", "conversion", "ci_low", "ci_high", "complete"]
    ]


def compare(table: pd.DataFrame, reference: str | None, alpha: float) -> pd.DataFrame:
    """Each group's conversion to each step (from step 1) against the reference group's (default: the
    group with most users entered): difference with its Newcombe interval, two-proportion z-test, Holm
    across groups and steps. ``other`` and ``(missing)`` are compared like any group."""
    entered = table[table.step == 1].set_index("group").users
    if len(entered) < 2:
        return pd.DataFrame()
    reference = reference if reference in entered.index else str(entered.idxmax())
    rows = []
    for step, part in table[table.step > 1].groupby("step"):
        part = part.set_index("group")
        ref = part.loc[reference]
        for group, row in part.drop(index=reference).iterrows():
            if row.entered == 0 or ref.entered == 0:
                continue
            p_value = two_sample_p(row.users, row.entered, ref.users, ref.entered)
            low, high = confint_proportions_2indep(
                row.users, row.entered, ref.users, ref.entered, method="newcomb", alpha=alpha
            )
            rows.append(
                {
                    "step": int(step),
                    "event": row.event,
                    "group": group,
                    "reference": reference,
                    "users": int(row.entered),
                    "conversion": row.conversion,
                    "reference_conversion": ref.conversion,
                    "difference": row.conversion - ref.conversion,
                    "ci_low": low,
                    "ci_high": high,
                    "p_value": float(p_value) if np.isfinite(p_value) else 1.0,
                }
            )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["p_adjusted"] = multipletests(frame.p_value, alpha=alpha, method="holm")[1]
        frame["significant"] = frame.p_adjusted < alpha
    return frame


def dropoff(counts: pd.DataFrame, top: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From ``step, next_event, came_back, users``: per step, the ``top`` next events of the users who
    dropped there and the rest as other (``step, next_event, users, share`` of that step's dropped users),
    and per step how many dropped and how many did the step later, after their window
    (``step, dropped, came_back, came_back_share``)."""
    if counts.empty:
        return (
            pd.DataFrame(columns=["step", "next_event", "users", "share"]),
            pd.DataFrame(columns=["step", "dropped", "came_back", "came_back_share"]),
        )
    paths, returns = [], []
    for step, part in counts.groupby("step", sort=True):
        dropped = int(part.users.sum())
        events = part.groupby("next_event", as_index=False).users.sum()
        folded = topn.fold_counts(events.rename(columns={"next_event": "value"}), top)
        paths.append(
            folded.rename(columns={"value": "next_event"}).assign(step=int(step), share=folded.users / dropped)
        )
        back = int(part.loc[part.came_back.astype(bool), "users"].sum())
        returns.append({"step": int(step), "dropped": dropped, "came_back": back, "came_back_share": back / dropped})
    table = pd.concat(paths, ignore_index=True)[["step", "next_event", "users", "share"]]
    return table, pd.DataFrame(returns)


TREND_MIN_USERS = 30  # fewer users on either side of the trend comparison: too few to tell


def trend_change(trend: pd.DataFrame, alpha: float, periods: int = 4) -> dict | None:
    """Conversion of users who entered in the last ``periods`` complete periods against the ``periods``
    before: each rate with its Wilson interval and n, their difference with a Newcombe interval; None
    without enough complete periods."""
    complete = trend[trend.complete & (trend.entered_complete > 0)]
    if len(complete) < periods + 1:
        return None
    recent, earlier = complete.tail(periods), complete.iloc[:-periods].tail(periods)
    k_now, n_now = int(recent.converted.sum()), int(recent.entered_complete.sum())
    k_before, n_before = int(earlier.converted.sum()), int(earlier.entered_complete.sum())
    (now_low, before_low), (now_high, before_high) = wilson([k_now, k_before], [n_now, n_before], alpha)
    low, high = confint_proportions_2indep(k_now, n_now, k_before, n_before, method="newcomb", alpha=alpha)
    return {
        "now": k_now / n_now,
        "now_low": float(now_low),
        "now_high": float(now_high),
        "n_now": n_now,
        "before": k_before / n_before,
        "before_low": float(before_low),
        "before_high": float(before_high),
        "n_before": n_before,
        "difference": k_now / n_now - k_before / n_before,
        "difference_low": float(low),
        "difference_high": float(high),
        "too_few": min(n_now, n_before) < TREND_MIN_USERS,
    }


__all__ = ["ALL", "FUNNEL_COLUMNS", "compare", "dropoff", "funnel", "time_quantiles", "trend"]
