"""Notebook parameters checked against the dataset before any kernel starts.

A registered analysis' Params checks its own values when it is built (types, allowed values, limits and
cross-field rules: :class:`userops_lib.contract.Common`); this module checks what only the data can tell,
asking each Params what its values name (:meth:`~userops_lib.contract.Common.references_in_data`: events,
attributes, campaigns, outcome metrics, groups) and for the data checks of its own
(:meth:`~userops_lib.contract.Common.against`), and checks ``snapshot_at`` against the data's time span.
It knows no analysis by name. A notebook of the user's own (``--notebooks DIR``), which has no Params, is
checked by its parameters' names (:data:`BY_NAME`). A run that would fail in a kernel (or, worse, publish a
report on nothing) exits 2 instead, listing every problem with the values the data offers, in the run's
language.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from userops_lib import campaigns as campaigns_module
from userops_lib.contract import Reference, problem
from userops_lib.data import Dataset, as_utc
from userops_lib.errors import DataError, Problem

# What a parameter of a notebook that is not a registered analysis names, by the parameter's name.
BY_NAME = {
    **dict.fromkeys(("segment_by", "cohort_by", "covariates", "breakdown", "filter_column"), "attribute"),
    **dict.fromkeys(("active_events", "start_event", "purchase_event"), "event"),
    "campaign": "campaign",
}
_SHOWN = 12


def _listed(values) -> list:
    if values in (None, ""):
        return []
    return list(values) if isinstance(values, list) else [values]


def _preview(values: list[str]) -> str:
    shown = ", ".join(map(str, values[:_SHOWN]))
    return (shown + ", ...") if len(values) > _SHOWN else (shown or "none")


class Lookups:
    """What the dataset offers, each looked up once (one small engine query each)."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self._cache: dict[str, Any] = {}

    def attributes(self) -> list[str]:
        if "attributes" not in self._cache:
            names: list[str] = []
            for table in ("users", "assignments"):
                if self.ds.has(table):
                    names += [a for a in self.ds.attributes(table) if a not in names]
            self._cache["attributes"] = names + [a for a in self.ds.event_attributes() if a not in names]
        return self._cache["attributes"]

    def events(self) -> list[str] | None:
        """Event names, or None when the events have no names."""
        if "events" not in self._cache:
            self._cache["events"] = self.ds.event_names()
        return self._cache["events"]

    def campaigns(self) -> list[str]:
        if "campaigns" not in self._cache:
            self._cache["campaigns"] = campaigns_module.names(self.ds)
        return self._cache["campaigns"]

    def arms(self, campaign: str) -> list[str]:
        """The arms of ``campaign`` (empty: the first campaign), by name; none without assignments."""
        known = self.campaigns()
        campaign = campaign or (known[0] if known else "")
        table = self.ds.assignments
        if campaign not in known or table is None:
            return []
        key = f"arms/{campaign}"
        if key not in self._cache:
            chosen = table.filter(table.campaign.cast("string") == campaign)
            self._cache[key] = sorted(map(str, chosen.select("arm").distinct().execute()["arm"].dropna()))
        return self._cache[key]

    def metrics(self) -> list[str]:
        """Outcomes a campaign can be read on: measured columns, and those events give."""
        measured = self.ds.attributes("assignments") if self.ds.has("assignments") else []
        return [*measured, *(campaigns_module.EVENT_METRICS if self.ds.has("events") else ())]

    def groups(self, attribute: str) -> list[str] | None:
        """The values of a user attribute (None when the data has no such attribute)."""
        key = f"groups/{attribute}"
        if key not in self._cache:
            values = None
            for table in (self.ds.users, self.ds.assignments):
                if table is not None and attribute in table.columns:
                    values = table.select(attribute).distinct().execute()[attribute].dropna()
                    break
            else:
                if attribute in self.ds.event_attributes():
                    events = self.ds.table("events")
                    values = events.select(attribute).distinct().execute()[attribute].dropna()
            self._cache[key] = None if values is None else sorted(map(str, values))
        return self._cache[key]


def _reference_problems(ref: Reference, look: Lookups) -> list[Problem]:
    if ref.kind == "attribute":
        offered = look.attributes()
        if ref.name not in offered:
            return [problem(ref.field, "param.no_attribute", ref.value, value=ref.name, offered=_preview(offered))]
    elif ref.kind == "event":
        known = look.events()
        if known is None:
            return [problem(ref.field, "param.no_event_names", ref.value)]
        if ref.name not in known:
            # A value naming alternatives ("cart|wishlist") has a bar; anywhere else '|' is part of one name.
            key = "param.no_event_bar" if "|" in ref.name else "param.no_event"
            return [problem(ref.field, key, ref.value, value=ref.name, offered=_preview(known))]
    elif ref.kind == "campaign":
        known = look.campaigns()
        if ref.name not in known:
            return [problem(ref.field, "param.no_campaign", ref.value, value=ref.name, offered=_preview(known))]
    elif ref.kind == "metric":
        offered = look.metrics()
        if ref.name not in offered:
            return [problem(ref.field, "param.no_metric", ref.value, value=ref.name, offered=_preview(offered))]
    elif ref.kind == "group" and ref.of:
        values = look.groups(ref.of)
        if values is not None and ref.name not in values:
            return [
                problem(
                    ref.field, "param.no_group", ref.value, value=ref.name, attribute=ref.of, offered=_preview(values)
                )
            ]
    return []


def _by_name(values: dict) -> list[Reference]:
    """The references of a notebook without Params, by its parameters' names."""
    return [
        Reference(name, kind, str(item), str(item))
        for name, kind in BY_NAME.items()
        for item in _listed(values.get(name))
        if not (name == "purchase_event" and item == "*")
    ]


def _snapshot_problems(values: dict, ds: Dataset) -> list[Problem]:
    snapshot = values.get("snapshot_at")
    if not snapshot:
        return []
    zone = ds.calendar.timezone
    try:
        moment = as_utc(str(snapshot), zone)
    except DataError:
        return [problem("snapshot_at", "param.snapshot_format", snapshot, zone=zone)]
    first = ds.quality.first_event_at
    if first is not None and moment <= first:
        return [problem("snapshot_at", "param.snapshot_early", snapshot, first=f"{first:%Y-%m-%d %H:%M}")]
    if moment > dt.datetime(2262, 1, 1):
        return [problem("snapshot_at", "param.snapshot_late", snapshot)]
    return []


def problems(values: dict, ds: Dataset, params: Any = None, lookups: Lookups | None = None) -> list[Problem]:
    """Every value the dataset cannot serve: of ``params`` (a built Params) when the notebook is a registered
    analysis, else of ``values`` read by name."""
    look = lookups or Lookups(ds)
    found = _snapshot_problems(values, ds)
    references = params.references_in_data() if params is not None else _by_name(values)
    for ref in references:
        found += _reference_problems(ref, look)
    if params is not None:
        found += params.against(look)
    return found


def check(jobs: list[tuple[dict, Any]], ds: Dataset) -> None:
    """Raise one :class:`DataError` listing every problem of every job, each once (``jobs``: each job's
    values and its built Params, or None for a notebook without one)."""
    look = Lookups(ds)
    found: list[Problem] = []
    for values, params in jobs:
        for each in problems(values, ds, params, look):
            if each not in found:
                found.append(each)
    if found:
        raise DataError(found)


__all__ = ["BY_NAME", "Lookups", "check", "problems"]
