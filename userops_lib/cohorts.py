"""Cohort retention that respects censoring, with intervals, computed in the engine.

Definitions (stated in every report):

* A user's **cohort** is the calendar period (UTC day, ISO week starting Monday, or month) of their
  anchor: ``signup_at`` where the dataset has it, else their first qualifying event (*first-time*
  cohorts). With *recurring* cohorts a user joins the cohort of every period in which they did the
  start event.
* **Period k** is the k-th calendar period after the cohort's own (k = 0 is the cohort period).
* Modes: ``on`` — active in period k (classic N-day / N-week retention, bounded); ``on_or_after`` —
  active in period k or any later period up to the snapshot (unbounded); ``brackets`` — active in any
  period of a custom range such as days 1–3, 4–7, 8–14.
* **Censoring**: a cell is observed only when period k (or the whole bracket) has ended for the
  whole cohort by the snapshot; otherwise it is missing, never zero. The average curve at k pools
  only the cohorts that reached k, and says how many they are.
* Intervals are 95% Wilson intervals on the pooled counts (users treated as independent).

Only counts leave the engine: one row per cohort (and group) and period.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

from userops_lib import narrative, periods, plots
from userops_lib.data import Dataset
from userops_lib.errors import DataError

PERIODS = periods.NAMES
MODES = ("on", "on_or_after", "brackets")
TREND_PERIODS = {"day": (1, 7, 30), "week": (1, 4, 12), "month": (1, 3, 6)}
MISSING_GROUP = "(missing)"

DEFINITIONS = [
    "Cohort: the calendar period (UTC; weeks start on Monday) of a user's signup, or of their first "
    "qualifying event where the data has no signup time. Period k is the k-th calendar period after it.",
    "Retention 'on' period k: share of the cohort active in period k (bounded). 'On or after': active in "
    "period k or any later period up to the snapshot (unbounded). Brackets: active in any period of the range.",
    "Censoring: a cell is shown only when period k has ended for the whole cohort by the snapshot; "
    "otherwise it is blank, never zero. The average curve at k pools only the cohorts that reached k.",
    "Intervals are 95% Wilson intervals on pooled counts. Group differences use two-proportion z-tests "
    "against the reference group, Holm-corrected across groups and periods.",
    "Revenue per member: revenue in period k divided by the cohort size (all members, payers or not); "
    "cumulative revenue per user (LTV) adds periods 0..k over the same cohorts at every k (those that reached "
    "the curve's last period, the longest one reached by cohorts holding at least half of all members), so "
    "it never falls as young cohorts drop out; intervals from the per-user spread (normal approximation).",
]


@dataclasses.dataclass(frozen=True)
class Retention:
    """Retention matrix, average curve, group comparisons and value retention of one dataset.

    Tables: ``cells`` (one row per group, cohort and period of the grid; ``retention`` is NaN where
    censored), ``average`` (per group and period: cohorts and users contributing, pooled retention
    and interval), ``comparisons``, ``value`` and ``ltv`` (when the data has revenue).
    """

    period: str
    mode: str
    cohort_type: str
    group_by: str | None
    brackets: tuple[tuple[int, int], ...] | None
    snapshot_at: dt.datetime
    currency: str
    cells: pd.DataFrame
    average: pd.DataFrame
    comparisons: pd.DataFrame
    value: pd.DataFrame | None
    ltv: pd.DataFrame | None
    findings: list[str]
    headlines: list[tuple[str, str]]
    alpha: float = 0.05

    @property
    def level(self) -> str:
        """The confidence level of every interval, e.g. '95%' for alpha 0.05."""
        return narrative.level(self.alpha)

    @property
    def definitions(self) -> list[str]:
        """:data:`DEFINITIONS` at this result's confidence level."""
        return [d.replace("95%", self.level) for d in DEFINITIONS]

    def label(self, k: int) -> str:
        if self.brackets:
            a, b = self.brackets[k]
            return f"{self.period}s {a}–{b}"
        return f"{self.period} {k}"

    def artifact(self) -> pd.DataFrame:
        """``retention.csv``: cohort as ISO date, period as integer offset, blanks where censored."""
        out = self.cells.copy()
        out["cohort"] = out.cohort.dt.strftime("%Y-%m-%d")
        columns = ["cohort", "period", "cohort_size", "active_users", "retention", "ci_low", "ci_high"]
        if self.group_by:
            out = out.rename(columns={"group_value": "group"})
            columns = ["group", *columns]
        return out[columns]

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"retention": self.artifact(), "average": self.average}
        if not self.comparisons.empty:
            out["comparisons"] = self.comparisons
        if self.value is not None:
            out["value"] = self.value.assign(cohort=self.value.cohort.dt.strftime("%Y-%m-%d"))
            out["ltv"] = self.ltv
        return out

    def key_periods(self, first: int = 8) -> pd.DataFrame:
        """The average curve at periods 0..first and at the trend periods, for a readable table."""
        keep = set(range(first + 1)) | set(TREND_PERIODS[self.period])
        return self.average[self.average.period.isin(keep)].reset_index(drop=True)

    def _repr_html_(self) -> str:
        return narrative.headlines_html(self.headlines) + narrative.findings_html(self.findings)

    # -- pictures -------------------------------------------------------------------------------
    def plot_heatmap(self, ax=None, *, group: str | None = None, max_cohorts: int = 26, max_periods: int = 26):
        cells = self.cells if group is None else self.cells[self.cells.group_value == group]
        cells = cells.groupby(["cohort", "period"], as_index=False)[["cohort_size", "active_users"]].sum(min_count=1)
        cells["retention"] = cells.active_users.astype(float) / cells.cohort_size
        matrix = cells.pivot_table(index="cohort", columns="period", values="retention", dropna=False)
        sizes = cells.groupby("cohort").cohort_size.first()
        matrix = matrix.iloc[-max_cohorts:, :max_periods]
        ax = plots.axes(ax, size=(10, max(3.5, 0.28 * len(matrix) + 1.5)))
        annotate = matrix.shape[1] <= 16
        plots.sns.heatmap(matrix, ax=ax, cmap="Blues", vmin=0, vmax=max(0.05, np.nanmax(matrix.to_numpy()) if
                          np.isfinite(matrix.to_numpy()).any() else 1), annot=annotate, fmt=".0%",
                          annot_kws={"fontsize": 7}, cbar_kws={"label": "retention (share of cohort)",
                                                             "format": plots.mticker.PercentFormatter(1.0, 0)},
                          linewidths=0.3, linecolor="white")
        ax.set_yticklabels([f"{c:%Y-%m-%d} ({sizes[c]:,})" for c in matrix.index], rotation=0, fontsize=8)
        ax.set_xticklabels([self.label(int(k)) if self.brackets else str(int(k)) for k in matrix.columns],
                           rotation=0 if matrix.shape[1] <= 16 else 90, fontsize=8)
        shown = "" if len(cells.cohort.unique()) <= max_cohorts else f", latest {max_cohorts} cohorts"
        title = f"Retention by cohort ({self.mode.replace('_', ' ')}; blank: not yet reached{shown})"
        if group is not None:
            title += f" — {self.group_by} = {group}"
        return plots.finish(ax, title=title, xlabel=f"{self.period}s since the cohort's {self.period}"
                            if not self.brackets else "bracket", ylabel="cohort (users)")

    def plot_curves(self, ax=None):
        ax = plots.axes(ax)
        average = self.average[self.average.period > 0] if not self.brackets else self.average
        for i, (group, frame) in enumerate(average.groupby("group_value", sort=False)):
            label = None if not self.group_by else str(group)
            ax.plot(frame.period, frame.retention, marker="o", markersize=3, label=label, color=f"C{i}")
            ax.fill_between(frame.period, frame.ci_low, frame.ci_high, alpha=0.2, color=f"C{i}")
        if self.group_by:
            ax.legend(title=self.group_by, loc="upper right")
        if self.brackets:
            ax.set_xticks(range(len(self.brackets)), [self.label(k) for k in range(len(self.brackets))])
        ax.set_ylim(bottom=0)
        return plots.finish(ax, title=f"Average retention curve with {self.level} intervals (only cohorts that reached "
                                      "each point)", xlabel=f"{self.period}s since the cohort's {self.period}"
                            if not self.brackets else "bracket", ylabel="retention (% of cohort)", percent=True)

    def plot_trend(self, ax=None):
        ax = plots.axes(ax)
        pooled = self.cells.groupby(["cohort", "period"], as_index=False)[["cohort_size", "active_users"]].sum(
            min_count=1)
        for i, k in enumerate(TREND_PERIODS[self.period]):
            frame = pooled[(pooled.period == k) & pooled.active_users.notna()]
            if frame.empty:
                continue
            rate = frame.active_users / frame.cohort_size
            low, high = proportion_confint(frame.active_users, frame.cohort_size, alpha=self.alpha, method="wilson")
            ax.plot(frame.cohort, rate, label=f"{self.period} {k}", color=f"C{i}")
            ax.fill_between(frame.cohort, low, high, alpha=0.15, color=f"C{i}")
        ax.legend(loc="upper right")
        ax.set_ylim(bottom=0)
        plots.date_axis(ax)
        return plots.finish(ax, title=f"Retention at fixed {self.period}s, by cohort (bands: {self.level} intervals)",
                            xlabel=f"cohort ({self.period} starting, UTC)", ylabel="retention (% of cohort)",
                            percent=True)

    def plot_ltv(self, ax=None):
        ax = plots.axes(ax)
        for i, (group, frame) in enumerate(self.ltv.groupby("group_value", sort=False)):
            ax.plot(frame.period, frame.ltv, label=None if not self.group_by else str(group), color=f"C{i}")
            ax.fill_between(frame.period, frame.ci_low, frame.ci_high, alpha=0.2, color=f"C{i}")
        if self.group_by:
            ax.legend(title=self.group_by, loc="upper left")
        ax.xaxis.set_major_locator(plots.mticker.MaxNLocator(integer=True))
        unit = self.currency.strip() or "revenue units"
        return plots.finish(ax, title=f"Cumulative revenue per cohort member (LTV), {self.level} intervals",
                            xlabel=f"{self.period}s since the cohort's {self.period}",
                            ylabel=f"revenue per user ({unit})")


def retention(
    ds: Dataset,
    *,
    period: str = "week",
    mode: str = "on",
    brackets: list[tuple[int, int]] | None = None,
    cohort_by: str | None = None,
    cohort_type: str = "first_time",
    start_event: str | None = None,
    active_events: list[str] | None = None,
    compare_periods: list[int] | None = None,
    reference_group: str | None = None,
    alpha: float = 0.05,
) -> Retention:
    """Compute cohort retention of ``ds`` (see the module docstring for every definition)."""
    events = ds.table("events")
    _check(period, mode, brackets, cohort_type, alpha)
    if cohort_by and (ds.users is None or cohort_by not in ds.users.columns) and cohort_by not in ds.event_attributes():
        raise DataError.single("users", f"no user attribute '{cohort_by}' to break cohorts down by",
                               "choose an attribute of the users table, or leave cohort_by empty",
                               column=cohort_by, example=", ".join(ds.attributes("users")) if ds.users is not None
                               else None)
    snapshot = pd.Timestamp(ds.snapshot_at)
    members = _memberships(ds, events, period, cohort_type, start_event, cohort_by)
    sizes, counts = _counts(events, members, period, mode, brackets, active_events)
    cells = _grid(sizes, counts, period, snapshot, brackets, alpha)
    average = _average(cells, alpha)
    comparisons = _compare(average, compare_periods or list(TREND_PERIODS[period]), reference_group, alpha) \
        if cohort_by else pd.DataFrame()
    value = ltv = None
    if "revenue" in events.columns:
        value, ltv = _value(events, members, period, cells, alpha)
    result = Retention(period, mode, cohort_type, cohort_by, tuple(map(tuple, brackets)) if brackets else None,
                       snapshot.to_pydatetime(), ds.currency, cells, average, comparisons, value, ltv, [], [],
                       alpha)
    findings, headlines = _findings(result)
    return dataclasses.replace(result, findings=findings, headlines=headlines)


def parse_brackets(texts: list[str]) -> list[tuple[int, int]]:
    """Brackets written as text, e.g. ``["1-3", "4-7", "8-14"]`` (inclusive period ranges)."""
    out = []
    for text in texts:
        parts = str(text).replace("–", "-").split("-")
        try:
            a, b = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (None, None)
        except ValueError:
            a = b = None
        if a is None:
            raise DataError.single("parameters", "a bracket is not a range of periods", "write ranges like 1-3, 4-7",
                                   column="brackets", example=text)
        out.append((a, b))
    return out


def _check(period, mode, brackets, cohort_type, alpha) -> None:
    def bad(name, value, fix):
        return DataError.single("parameters", f"invalid {name}", fix, column=name, example=value)

    if period not in PERIODS:
        raise bad("period", period, "use day, week or month")
    if mode not in MODES:
        raise bad("mode", mode, "use on, on_or_after or brackets")
    if cohort_type not in ("first_time", "recurring"):
        raise bad("cohort_type", cohort_type, "use first_time or recurring")
    if not 0 < alpha < 1:
        raise bad("alpha", alpha, "give a level between 0 and 1, e.g. 0.05")
    if mode == "brackets":
        if not brackets:
            raise bad("brackets", brackets, "give ranges such as [[1, 3], [4, 7], [8, 14]]")
        previous = -1
        for a, b in brackets:
            if not (0 <= a <= b) or a <= previous:
                raise bad("brackets", brackets, "ranges must be ordered, non-overlapping, with start <= end")
            previous = b


def counts(ds: Dataset, *, period: str = "week", mode: str = "on", brackets: list[tuple[int, int]] | None = None,
           cohort_by: str | None = None, cohort_type: str = "first_time", start_event: str | None = None,
           active_events: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The engine reduction behind :func:`retention`: cohort sizes, and active users per cohort and period."""
    _check(period, mode, brackets, cohort_type, 0.05)
    events = ds.table("events")
    members = _memberships(ds, events, period, cohort_type, start_event, cohort_by)
    return _counts(events, members, period, mode, brackets, active_events)


def _counts(events, members, period, mode, brackets, active_events) -> tuple[pd.DataFrame, pd.DataFrame]:
    active = events if not active_events else events.filter(events.event.isin(list(active_events)))
    activity = active.select("user_id", active_at=active.event_at.truncate(periods.TRUNCATE[period])).distinct()
    pairs = members.join(activity, "user_id")
    pairs = pairs.mutate(k=_offset(pairs.active_at, pairs.cohort, period)).filter(lambda t: t.k >= 0)

    sizes = members.group_by(["cohort", "group_value"]).aggregate(cohort_size=members.count()).execute()
    if mode == "on":
        counted = pairs.group_by(["cohort", "group_value", "k"]).aggregate(active_users=pairs.count()).execute()
    elif mode == "on_or_after":
        last = pairs.group_by(["user_id", "cohort", "group_value"]).aggregate(last=pairs.k.max())
        counted = _at_or_after(last.group_by(["cohort", "group_value", "last"]).aggregate(n=last.count()).execute())
    else:
        bracket = ibis.cases(*[((pairs.k >= a) & (pairs.k <= b), i) for i, (a, b) in enumerate(brackets)],
                             else_=ibis.null("int64"))
        tagged = pairs.mutate(k=bracket).filter(lambda t: t.k.notnull())
        counted = tagged.group_by(["cohort", "group_value", "k"]).aggregate(
            active_users=tagged.user_id.nunique()).execute()
    return sizes, counted


def _offset(later: ir.Value, earlier: ir.Value, period: str) -> ir.IntegerValue:
    """Whole calendar periods from ``earlier`` to ``later`` (both truncated to the period)."""
    if period == "month":
        return (later.year() * 12 + later.month()) - (earlier.year() * 12 + earlier.month())
    days = later.date().delta(earlier.date(), unit="day")
    return days // 7 if period == "week" else days


def _memberships(ds, events, period, cohort_type, start_event, cohort_by) -> ir.Table:
    """One row per user and cohort (several per user for recurring cohorts), with the group value."""
    truncate = periods.TRUNCATE[period]
    starts = events if not start_event else events.filter(events.event == start_event)
    if cohort_type == "recurring":
        members = starts.select("user_id", cohort=starts.event_at.truncate(truncate)).distinct()
    elif not start_event and ds.users is not None and "signup_at" in ds.users.columns:
        users = ds.users.filter(ds.users.signup_at.notnull())
        members = users.select("user_id", cohort=users.signup_at.truncate(truncate))
    else:
        first = starts.group_by("user_id").aggregate(anchor=starts.event_at.min())
        members = first.select("user_id", cohort=first.anchor.truncate(truncate))
    if cohort_by:
        source = ds.users if ds.users is not None and cohort_by in ds.users.columns else \
            ds.first_event_values([cohort_by])  # an event property: the value on the user's first event
        groups = source.select("user_id", group_value=source[cohort_by].cast("string"))
        members = members.left_join(groups, "user_id")
        members = members.mutate(group_value=members.group_value.fill_null(MISSING_GROUP))
    else:
        members = members.mutate(group_value=ibis.literal("all"))
    return members


def _at_or_after(counts: pd.DataFrame) -> pd.DataFrame:
    """From 'users whose last active period is L' to 'users active in k or later' for every k <= L."""
    rows = []
    for (cohort, group), frame in counts.groupby(["cohort", "group_value"]):
        by_last = frame.set_index("last").n.reindex(range(int(frame["last"].max()) + 1), fill_value=0)
        at_or_after = by_last[::-1].cumsum()[::-1]
        rows.append(pd.DataFrame({"cohort": cohort, "group_value": group, "k": at_or_after.index,
                                  "active_users": at_or_after.to_numpy()}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["cohort", "group_value", "k",
                                                                                   "active_users"])


def _grid(sizes, counts, period, snapshot, brackets, alpha) -> pd.DataFrame:
    """Every cohort x period up to the last period any cohort reached; censored cells are NaN."""
    sizes = sizes.assign(cohort=pd.to_datetime(sizes.cohort))
    counts = counts.assign(cohort=pd.to_datetime(counts.cohort))
    offset = periods.OFFSET[period]

    def reached(cohort: pd.Timestamp, k: int) -> bool:
        end = (brackets[k][1] + 1) if brackets else k + 1
        return cohort + end * offset <= snapshot

    if brackets:
        grid_periods = list(range(len(brackets)))
    else:
        oldest = sizes.cohort.min()
        horizon = 0
        while reached(oldest, horizon + 1):
            horizon += 1
        grid_periods = list(range(horizon + 1)) if reached(oldest, 0) else []
    grid = sizes.merge(pd.DataFrame({"period": grid_periods}), how="cross")
    grid = grid.merge(counts.rename(columns={"k": "period"}), on=["cohort", "group_value", "period"], how="left")
    grid["active_users"] = grid.active_users.fillna(0)
    grid["reached"] = [reached(c, int(k)) for c, k in zip(grid.cohort, grid.period, strict=True)]
    grid.loc[~grid.reached, "active_users"] = np.nan
    grid["retention"] = grid.active_users / grid.cohort_size
    low, high = proportion_confint(grid.active_users.fillna(0), grid.cohort_size, alpha=alpha, method="wilson")
    grid["ci_low"] = np.where(grid.reached, low, np.nan)
    grid["ci_high"] = np.where(grid.reached, high, np.nan)
    grid["active_users"] = grid.active_users.astype("Int64")
    return grid.sort_values(["group_value", "cohort", "period"]).reset_index(drop=True)[
        ["group_value", "cohort", "period", "cohort_size", "active_users", "retention", "ci_low", "ci_high"]]


def _average(cells: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per group and period, pooled over the cohorts that reached it."""
    observed = cells[cells.active_users.notna()]
    average = observed.groupby(["group_value", "period"], as_index=False, sort=False).agg(
        cohorts=("cohort", "nunique"), users=("cohort_size", "sum"), active_users=("active_users", "sum"))
    average["active_users"] = average.active_users.astype("int64")
    average["retention"] = average.active_users / average.users
    low, high = proportion_confint(average.active_users, average.users, alpha=alpha, method="wilson")
    average["ci_low"], average["ci_high"] = np.asarray(low), np.asarray(high)
    return average


def _compare(average, periods, reference, alpha) -> pd.DataFrame:
    """Each group against the reference group at the chosen periods; Holm across all tests."""
    sizes = average[average.period == average.period.min()].set_index("group_value").users
    if len(sizes) < 2:
        return pd.DataFrame()
    reference = reference if reference in sizes.index else sizes.idxmax()
    rows = []
    for k in periods:
        at_k = average[average.period == k].set_index("group_value")
        if reference not in at_k.index:
            continue
        ref = at_k.loc[reference]
        for group, row in at_k.drop(index=reference).iterrows():
            counts = np.array([row.active_users, ref.active_users])
            nobs = np.array([row.users, ref.users])
            _, p_value = proportions_ztest(counts, nobs)
            low, high = confint_proportions_2indep(row.active_users, row.users, ref.active_users, ref.users,
                                                   method="newcomb", alpha=alpha)
            rows.append({"period": k, "group": group, "reference": reference, "retention": row.retention,
                         "reference_retention": ref.retention, "difference": row.retention - ref.retention,
                         "ci_low": low, "ci_high": high, "p_value": p_value})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["p_adjusted"] = multipletests(frame.p_value.fillna(1.0), alpha=alpha, method="holm")[1]
        frame["significant"] = frame.p_adjusted < alpha
    return frame


def _value(events, members, period, cells, alpha) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Revenue per member by period, and cumulative revenue per user (LTV) with intervals.

    Per user, cumulative revenue is a step function of k; each step holds from one paying period to
    the next, so sums of the cumulative value and its square over users come from one window pass
    and a running sum, without a users x periods grid.
    """
    paid = events.filter(events.revenue > 0)
    revenue = paid.select("user_id", paid_at=paid.event_at.truncate(periods.TRUNCATE[period]), revenue=paid.revenue)
    joined = members.join(revenue, "user_id")
    joined = joined.mutate(k=_offset(joined.paid_at, joined.cohort, period)).filter(lambda t: t.k >= 0)
    per_user = joined.group_by(["user_id", "cohort", "group_value", "k"]).aggregate(r=joined.revenue.sum())
    running = ibis.cumulative_window(group_by=["user_id", "cohort", "group_value"], order_by="k")
    window = ibis.window(group_by=["user_id", "cohort", "group_value"], order_by="k")
    steps = per_user.mutate(c=per_user.r.sum().over(running))
    steps = steps.mutate(previous=steps.c.lag().over(window).fill_null(0))
    # At k the user's cumulative value moves from `previous` to `c`: add the change of c and c^2.
    changes = steps.group_by(["cohort", "group_value", "k"]).aggregate(
        revenue=steps.r.sum(), dc=(steps.c - steps.previous).sum(),
        dc2=(steps.c * steps.c - steps.previous * steps.previous).sum()).execute()
    changes["cohort"] = pd.to_datetime(changes.cohort)
    grid = cells[["group_value", "cohort", "period", "cohort_size", "active_users"]].rename(columns={"period": "k"})
    value = grid.merge(changes, on=["cohort", "group_value", "k"], how="left").fillna({"revenue": 0, "dc": 0,
                                                                                        "dc2": 0})
    value = value.sort_values(["group_value", "cohort", "k"])
    value["sum_c"] = value.groupby(["group_value", "cohort"]).dc.cumsum()
    value["sum_c2"] = value.groupby(["group_value", "cohort"]).dc2.cumsum()
    censored = value.active_users.isna()
    value["revenue_per_member"] = (value.revenue / value.cohort_size).mask(censored)
    value["cumulative_revenue_per_member"] = (value.sum_c / value.cohort_size).mask(censored)
    followed, horizon = _ltv_cohorts(value, censored)
    keys = pd.MultiIndex.from_frame(value[["group_value", "cohort"]])
    observed = value[~censored & keys.isin(followed) & (value.k <= horizon)]
    ltv = observed.groupby(["group_value", "k"], as_index=False, sort=False).agg(
        cohorts=("cohort", "nunique"), users=("cohort_size", "sum"), sum_c=("sum_c", "sum"), sum_c2=("sum_c2", "sum"))
    ltv["ltv"] = ltv.sum_c / ltv.users
    spread = np.sqrt(np.maximum(ltv.sum_c2 / ltv.users - ltv.ltv ** 2, 0) / ltv.users)
    z = _z(alpha)
    ltv["ci_low"], ltv["ci_high"] = ltv.ltv - z * spread, ltv.ltv + z * spread
    value = value.rename(columns={"k": "period"})[["group_value", "cohort", "period", "cohort_size", "revenue",
                                                   "revenue_per_member", "cumulative_revenue_per_member"]]
    value["revenue"] = value.revenue.mask(censored.to_numpy())
    ltv = ltv.rename(columns={"k": "period"})[["group_value", "period", "cohorts", "users", "ltv", "ci_low",
                                               "ci_high"]]
    return value, ltv


LTV_SHARE = 0.5  # the LTV curve's cohorts hold at least this share of all cohort members


def _ltv_cohorts(value: pd.DataFrame, censored: pd.Series) -> tuple[pd.MultiIndex, int]:
    """The cohorts the LTV curve follows: the same ones at every period, so that the curve cannot fall as
    later periods lose the young cohorts (it fell from 96 to 72 when each point pooled whoever reached it).

    They are the cohorts that reached the longest period reached by cohorts holding at least
    :data:`LTV_SHARE` of all members; the curve runs up to that period.
    """
    reach = value[~censored].groupby(["group_value", "cohort"]).k.max()
    if reach.empty:
        return reach.index, 0
    sizes = value.groupby(["group_value", "cohort"]).cohort_size.first()
    order = reach.sort_values(ascending=False, kind="stable").index
    covered = sizes.loc[order].cumsum() / sizes.sum()  # of all members, young cohorts' included
    horizon = int(reach.loc[covered.index[int(np.argmax(covered.to_numpy() >= LTV_SHARE))]])
    return reach.index[reach >= horizon], horizon

def _z(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))


def _findings(result: Retention) -> tuple[list[str], list[tuple[str, str]]]:
    average = result.average
    findings: list[str] = []
    headlines: list[tuple[str, str]] = []
    overall = average.groupby("period", as_index=False)[["users", "active_users"]].sum()
    overall = overall.merge(average.groupby("period", as_index=False).cohorts.max(), on="period")
    if overall.empty:
        return ["No cohort has completed its first period yet, so no retention can be measured."], headlines
    how = {"on": "retention", "on_or_after": "unbounded retention (active then or later)",
           "brackets": "retention"}[result.mode]
    points = [k for k in (TREND_PERIODS[result.period] if not result.brackets else range(len(result.brackets)))
              if k in set(overall.period)]
    for k in points[:3]:
        row = overall[overall.period == k].iloc[0]
        low, high = proportion_confint(row.active_users, row.users, alpha=result.alpha, method="wilson")
        rate = row.active_users / row.users
        sentence = (f"{result.label(k).capitalize()} {how} is {narrative.percent(rate)} ({result.level} CI "
                    f"{narrative.interval(low, high)}), from {narrative.count(row.users)} users in "
                    f"{int(row.cohorts)} cohort{'s' if row.cohorts != 1 else ''} that have reached it.")
        findings.append(sentence)
        headlines.append((f"{result.label(k)} {how.split(' (')[0]}", narrative.percent(rate)))
    last = overall.period.max()
    youngest = result.cells[result.cells.active_users.notna()].cohort.max()
    censored = int(result.cells.active_users.isna().sum())
    findings.append(f"Cells for periods a cohort has not yet completed ({censored:,} of {len(result.cells):,}) are "
                    f"left blank, not counted as zero; the curve reaches {result.label(int(last))} and the youngest "
                    f"cohort with a measured cell started {narrative.day(youngest)}.")
    if not result.comparisons.empty:
        significant = result.comparisons[result.comparisons.significant]
        for _, row in significant.sort_values("p_adjusted").head(3).iterrows():
            direction = "better" if row.difference > 0 else "worse"
            findings.append(f"At {result.label(int(row.period))}, {result.group_by} = '{row.group}' retains "
                            f"{abs(row.difference) * 100:.1f} points {direction} than '{row.reference}' "
                            f"({narrative.percent(row.retention)} vs {narrative.percent(row.reference_retention)}; "
                            f"{result.level} CI of the difference {row.ci_low * 100:+.1f} to {row.ci_high * 100:+.1f} points; "
                            f"{narrative.p_value(row.p_adjusted, 'Holm-adjusted p')}).")
        if significant.empty:
            findings.append(f"No {result.group_by} group differs from '{result.comparisons.reference.iloc[0]}' "
                            "by more than chance at the compared periods (Holm-corrected).")
    if result.ltv is not None and not result.ltv.empty:
        ltv = result.ltv.groupby("period", as_index=False)[["users", "cohorts"]].max()
        total = result.ltv.assign(s=result.ltv.ltv * result.ltv.users).groupby("period").s.sum() / \
            result.ltv.groupby("period").users.sum()
        k = int(ltv.period.max())
        users, cohorts_ = int(ltv.users.max()), int(ltv.cohorts.max())
        findings.append(f"Revenue per cohort member adds up to {narrative.money(total.loc[k], result.currency)} by "
                        f"{result.label(k)} (cumulative, over the {narrative.count(users)} members of the "
                        f"{cohorts_} cohort{'s' if cohorts_ != 1 else ''} that have reached it, the same at every "
                        f"{result.period} of the curve).")
        headlines.append((f"revenue per user by {result.label(k)}", narrative.money(total.loc[k], result.currency)))
    return findings, headlines
