"""Notebook parameters checked against the dataset before any kernel starts.

:mod:`userops_lib.params` checks types, allowed values and ranges from each notebook's parameters
cell; this module checks what only the data can tell: that ``segment_by`` names an attribute, that
``campaign`` exists, that ``active_events`` are events the data has, that ``snapshot_at`` is a time
inside the data. A run that would fail in a kernel (or, worse, publish a report on nothing) exits 2
instead, listing every problem with the values the data offers.

Parameters are recognised by name, the same name meaning the same thing in every notebook.
"""

from __future__ import annotations

import datetime as dt

from userops_lib.calendar import check_zone
from userops_lib.data import Dataset, as_utc
from userops_lib.errors import DataError, Problem

ATTRIBUTES = ("segment_by", "cohort_by", "covariates", "breakdown")
EVENTS = ("active_events", "start_event", "steps", "exclude_events", "purchase_event")  # only a step may be "a|b"
_SHOWN = 12


def _listed(values) -> list:
    if values in (None, ""):
        return []
    return list(values) if isinstance(values, list) else [values]


def _preview(values: list[str]) -> str:
    shown = ", ".join(map(str, values[:_SHOWN]))
    return (shown + ", ...") if len(values) > _SHOWN else (shown or "none")


class _Lookups:
    """What the dataset offers, each looked up once (one small engine query each)."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self._cache: dict[str, list[str]] = {}

    def attributes(self) -> list[str]:
        names: list[str] = []
        for table in ("users", "assignments"):
            if self.ds.has(table):
                names += [a for a in self.ds.attributes(table) if a not in names]
        return names + [a for a in self.ds.event_attributes() if a not in names]

    def events(self) -> list[str] | None:
        """Event names, or None when the events have no names."""
        if "events" not in self._cache:
            names = self.ds.event_names()
            if names is None:
                return None
            self._cache["events"] = names
        return self._cache["events"]

    def campaigns(self) -> list[str]:
        if "campaigns" not in self._cache:
            table = self.ds.assignments
            self._cache["campaigns"] = (
                []
                if table is None
                else sorted(map(str, table.select("campaign").distinct().execute()["campaign"].dropna()))
            )
        return self._cache["campaigns"]

    def outcomes(self) -> list[str]:
        return self.ds.attributes("assignments") if self.ds.has("assignments") else []


def problems(notebook: str, values: dict, ds: Dataset, lookups: _Lookups | None = None) -> list[Problem]:
    """Every parameter of ``notebook`` whose value the dataset cannot serve."""
    look = lookups or _Lookups(ds)
    found: list[Problem] = []

    def bad(name: str, message: str, fix: str, example: object) -> None:
        # Worded without the notebook: the same value fails the same way in every notebook, and is said once.
        found.append(Problem("parameters", message, fix, column=name, example=example))

    zone = ds.calendar.timezone
    if values.get("timezone"):
        try:
            zone = check_zone(str(values["timezone"]))
        except DataError:
            bad(
                "timezone",
                "not a time zone",
                "give an IANA name such as Asia/Shanghai, Europe/Berlin or UTC; or leave it empty",
                values["timezone"],
            )
    snapshot = values.get("snapshot_at")
    if snapshot:
        try:
            moment = as_utc(str(snapshot), zone)
        except DataError:
            bad(
                "snapshot_at",
                "not a date or time",
                f"write it as YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS' (in {zone} unless it carries an offset)",
                snapshot,
            )
        else:
            first = ds.quality.first_event_at
            if first is not None and moment <= first:
                bad(
                    "snapshot_at",
                    f"before the data begins ({first:%Y-%m-%d %H:%M})",
                    "choose a time after the first event",
                    snapshot,
                )
            if moment > dt.datetime(2262, 1, 1):
                bad("snapshot_at", "beyond the year 2262", "choose a time within the data's years", snapshot)

    column, value = values.get("filter_column", ""), values.get("filter_value", "")
    if bool(column) != bool(value):
        missing = "filter_value" if column else "filter_column"
        bad(missing, "filter_column and filter_value go together", f"give {missing} too, or neither", column or value)

    offered = None
    for name in ATTRIBUTES:
        for attribute in _listed(values.get(name)):
            offered = offered if offered is not None else look.attributes()
            if attribute not in offered:
                bad(
                    name,
                    f"no attribute '{attribute}' in the dataset",
                    f"choose one of: {_preview(offered)}; or leave it empty",
                    attribute,
                )
    for reference in _listed(values.get("references")):
        from userops_lib.analyses.churn_survival import parse_references  # the notebook's own reading of 'column=level'

        try:
            (column_name,) = parse_references([reference])
        except DataError:
            bad("references", "not written as column=level", "write e.g. references=channel=organic", reference)
            continue
        offered = offered if offered is not None else look.attributes()
        if column_name not in offered:
            bad(
                "references",
                f"no attribute '{column_name}' in the dataset",
                f"choose one of: {_preview(offered)}",
                reference,
            )

    for name in EVENTS:
        wanted = [w for w in _listed(values.get(name)) if not (name == "purchase_event" and w == "*")]
        if not wanted:
            continue
        known = look.events()
        if known is None:
            bad(
                name,
                "the events have no names (no 'event' column)",
                "map an event-name column in dataset.yml, or leave it empty",
                wanted[0],
            )
            continue
        # Only a funnel step may name alternatives ("cart|wishlist"); anywhere else '|' is part of one name.
        split = name == "steps"
        if name == "exclude_events":  # "refund@2-3": the event between two steps only
            from userops_lib.analyses.funnel.engine import split_exclusion

            wanted = [split_exclusion(w)[0] for w in wanted]
        for event in (e.strip() for w in wanted for e in (str(w).split("|") if split else [str(w)])):
            if event not in known:
                fix = f"choose from: {_preview(known)}"
                if not split and "|" in event:
                    fix += f"; {name} names one event ('a|b' alternatives are for funnel steps)"
                bad(name, f"no event named '{event}' in the data", fix, event)

    campaign = values.get("campaign")
    if campaign:
        known = look.campaigns()
        if campaign not in known:
            bad(
                "campaign",
                f"no campaign '{campaign}' in the assignments",
                f"choose one of: {_preview(known)}",
                campaign,
            )
    metrics = _listed(values.get("metrics"))
    if metrics:
        from userops_lib.campaigns import EVENT_METRICS  # the outcomes any campaign derives from events

        offered_metrics = [*look.outcomes(), *(EVENT_METRICS if ds.has("events") else ())]
        for metric in metrics:
            parts = str(metric).split("/")
            unknown = [p for p in parts if p not in offered_metrics]
            if unknown or len(parts) > 2:
                bad(
                    "metrics",
                    f"no outcome '{unknown[0] if unknown else metric}'",
                    f"choose from: {_preview(offered_metrics)} (a ratio as a/b)",
                    metric,
                )

    high, mid = values.get("high_share"), values.get("mid_share")
    if isinstance(high, float) and isinstance(mid, float) and high + mid > 1:
        bad(
            "mid_share",
            "high_share + mid_share is more than 1",
            "make the two shares add up to 1 or less",
            f"{high:g} + {mid:g}",
        )
    dormant, churn = values.get("dormant_days"), values.get("churn_days")
    if isinstance(dormant, int) and isinstance(churn, int) and churn < dormant:
        bad(
            "churn_days",
            "shorter than dormant_days",
            "users are dormant before they are churned: give churn_days >= dormant_days",
            f"{churn} < {dormant}",
        )
    return found


def check(jobs: list[tuple[str, dict]], ds: Dataset) -> None:
    """Raise one :class:`DataError` listing every problem of every job (each problem once)."""
    look = _Lookups(ds)
    found: list[Problem] = []
    for notebook, values in jobs:
        for problem in problems(notebook, values, ds, look):
            if problem not in found:
                found.append(problem)
    if found:
        raise DataError(found)


__all__ = ["check", "problems"]
