"""Cohort retention: how many users of each cohort come back, period after period, censoring-aware.

Definitions (the catalogue's ``cohort_retention.definition.*`` states them in every report):

* **Cohort**: the calendar period (UTC; ISO weeks) of a user's signup, or of their first qualifying
  event (``start_event``) where the data has no signup time; ``cohort_type="recurring"`` puts a user in
  every period they did ``start_event``. Period *k* is the *k*-th calendar period after the cohort's.
* **Retention** ``on`` period *k* (bounded): share of the cohort active in period *k*; ``on_or_after``
  (unbounded): active in *k* or any later period up to the snapshot; ``brackets``: active in any period
  of a range.
* **Censoring**: a cell exists only when period *k* has ended for the whole cohort by the snapshot;
  otherwise it is blank (NaN), never zero. Averages pool only the cohorts that reached *k*.
* Wilson intervals on pooled counts; group differences by two-proportion z-tests against the reference
  group with Newcombe intervals, Holm-corrected across groups and periods.
* **Value**: revenue per member by period (all members, payers or not) and cumulative revenue per user
  (LTV) over the same cohorts at every period (:func:`stats.ltv_cohorts`).

``run(ds, Params(...))`` reduces in the engine (:mod:`.engine`) and computes on the small tables
(:mod:`.stats`); text comes from :mod:`userops_lib.analyses.cohort_retention.text`, charts from
:mod:`userops_lib.analyses.cohort_retention.charts`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from userops_lib import calendar, contract
from userops_lib.analyses.cohort_retention import engine, stats
from userops_lib.analyses.cohort_retention.stats import LTV_SHARE, TREND_PERIODS
from userops_lib.calendar import Calendar
from userops_lib.contract import param
from userops_lib.data import Dataset
from userops_lib.errors import DataError

PERIODS = calendar.PERIODS
MODES = ("on", "on_or_after", "brackets")
MISSING_GROUP = engine.MISSING_GROUP


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params(contract.Common):
    period: str = param("week", "cohort and retention period", choices=("day", "week", "month"))
    mode: str = param("on", "retention measure", choices=("on", "on_or_after", "brackets"))
    brackets: list[str] = param(["1-3", "4-7", "8-14"], "period ranges used when mode is brackets")
    cohort_type: str = param("first_time", "", choices=("first_time", "recurring"))
    cohort_by: str = param(
        "", 'user attribute to break cohorts down by, e.g. "channel"; empty: none', refers_to="attribute"
    )
    reference_group: str = param(
        "", "group the others are compared with; empty: the largest", refers_to="group", of="cohort_by"
    )
    compare_periods: list[int] = param(
        [], "periods at which groups are compared; empty: 1/7/30 days, 1/4/12 weeks or 1/3/6 months", ge=1
    )
    start_event: str = param("", "event that puts a user in a cohort; empty: signup or first event", refers_to="event")
    active_events: list[str] = param([], "events that count as active; empty: any event", refers_to="event")

    def checks(self) -> list[contract.Problem]:
        found = super().checks()
        if self.mode == "brackets":
            found += contract.raised(lambda: check_brackets(parse_brackets(self.brackets)))
        return found


@dataclasses.dataclass(frozen=True)
class Retention(contract.Presented):
    """Retention matrix, average curve, group comparisons and value retention of one dataset.

    Tables: ``cells`` (one row per group, cohort and period of the grid; ``retention`` is NaN where
    censored), ``average`` (per group and period: cohorts and users contributing, pooled retention
    and interval), ``comparisons``, ``value`` and ``ltv`` (when the data has revenue).
    """

    ANALYSIS = "cohort_retention"

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
    alpha: float = 0.05
    params: Params | None = None
    calendar: Calendar = dataclasses.field(default_factory=Calendar)  # the days, weeks and months counted in

    @property
    def level(self) -> float:
        return self.alpha

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


def run(ds: Dataset, params: Params) -> Retention:
    """Cohort retention of ``ds`` with the notebook's parameters (empty texts and lists: the defaults)."""
    result = _retention(
        ds,
        period=params.period,
        mode=params.mode,
        brackets=parse_brackets(params.brackets) if params.mode == "brackets" else None,
        cohort_by=params.cohort_by or None,
        cohort_type=params.cohort_type,
        start_event=params.start_event or None,
        active_events=params.active_events or None,
        compare_periods=params.compare_periods or None,
        reference_group=params.reference_group or None,
        alpha=params.alpha,
    )
    return dataclasses.replace(result, params=params)


def _retention(
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
    if cohort_by and (ds.users is None or cohort_by not in ds.users.columns) and cohort_by not in ds.event_attributes():
        raise DataError.single(
            "users",
            f"no user attribute '{cohort_by}' to break cohorts down by",
            "choose an attribute of the users table, or leave cohort_by empty",
            column=cohort_by,
            key="cohort_retention.no_attribute",
            values={"column": cohort_by},
            example=", ".join(ds.attributes("users")) if ds.users is not None else None,
        )
    snapshot = ds.calendar.to_local(ds.snapshot_at)  # cohorts are local periods: compared in local time
    members, sizes, counted = _reduce(
        ds, events, period, mode, brackets, cohort_by, cohort_type, start_event, active_events
    )
    cells = stats.grid(sizes, counted, period, snapshot, brackets, alpha)
    average = stats.average(cells, alpha)
    comparisons = (
        stats.compare(average, compare_periods or list(TREND_PERIODS[period]), reference_group, alpha)
        if cohort_by
        else pd.DataFrame()
    )
    value = ltv = None
    if "revenue" in events.columns:
        value, ltv = stats.value(engine.value_changes(events, members, period, ds.calendar), cells, alpha)
    return Retention(
        period,
        mode,
        cohort_type,
        cohort_by,
        tuple((a, b) for a, b in brackets) if brackets else None,
        snapshot.to_pydatetime(),
        ds.currency,
        cells,
        average,
        comparisons,
        value,
        ltv,
        alpha,
        calendar=ds.calendar,
    )


def counts(
    ds: Dataset,
    *,
    period: str = "week",
    mode: str = "on",
    brackets: list[tuple[int, int]] | None = None,
    cohort_by: str | None = None,
    cohort_type: str = "first_time",
    start_event: str | None = None,
    active_events: list[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The engine reduction behind :func:`run`: cohort sizes, and active users per cohort and period (the
    values as a Params checks them; benchmarks and engine checks call it directly)."""
    _, sizes, counted = _reduce(
        ds, ds.table("events"), period, mode, brackets, cohort_by, cohort_type, start_event, active_events
    )
    return sizes, counted


def _reduce(ds, events, period, mode, brackets, cohort_by, cohort_type, start_event, active_events):
    """Memberships (an engine table), cohort sizes and active users per cohort and period k."""
    members = engine.memberships(ds, events, period, cohort_type, start_event, cohort_by)
    sizes, counted = engine.counts(events, members, period, mode, brackets, active_events, ds.calendar)
    return members, sizes, stats.at_or_after(counted) if mode == "on_or_after" else counted


def parse_brackets(texts: list[str]) -> list[tuple[int, int]]:
    """Brackets written as text, e.g. ``["1-3", "4-7", "8-14"]`` (inclusive period ranges)."""
    out = []
    for text in texts:
        parts = str(text).replace("–", "-").split("-")
        try:
            a, b = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (None, None)
        except ValueError:
            a = b = None
        if a is None or b is None:
            raise DataError.single(
                "parameters",
                "a bracket is not a range of periods",
                "write ranges like 1-3, 4-7",
                column="brackets",
                example=text,
                key="cohort_retention.bracket_form",
            )
        out.append((a, b))
    return out


def check_brackets(brackets: list[tuple[int, int]]) -> None:
    """Brackets given, in order, not overlapping, each from its start to an end at or after it."""
    previous = -1
    for a, b in brackets or [(-1, -1)]:
        if not (0 <= a <= b) or a <= previous:
            raise DataError.single(
                "parameters",
                "bracket ranges must be given in order, not overlapping, each start at or before its end",
                "write e.g. brackets=1-3,4-7,8-14",
                column="brackets",
                example=", ".join(f"{x}-{y}" for x, y in brackets),
                key="cohort_retention.brackets_order",
            )
        previous = b


ABOUT = contract.About(
    summary="How many users of each acquisition cohort come back, period after period, with intervals; cohorts that have not reached a period are left out of it, never counted as lost.",
    requires=(("events",),),
)


__all__ = [
    "ABOUT",
    "LTV_SHARE",
    "MODES",
    "PERIODS",
    "Params",
    "Retention",
    "counts",
    "parse_brackets",
    "run",
]
