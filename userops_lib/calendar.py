"""The one place timestamps become local days, weeks and months.

Canonical timestamps are naive UTC instants everywhere inside userops. People count in their own
calendar: a Beijing team's day runs from 00:00 to 24:00 Beijing time (UTC+8), so its DAU, 次日留存 and
daily new users are taken over Beijing days, not UTC days. A :class:`Calendar` names that zone and the
first day of the week; every bucket an analysis makes (days, weeks, months, cohorts, N-day retention,
"the last complete day", purchase days) goes through it, in the engine (:meth:`Calendar.day`,
:meth:`Calendar.start`, :meth:`Calendar.date`) and in pandas (:meth:`Calendar.floor`,
:meth:`Calendar.to_local`). ``tests/test_calendar.py`` fails when analysis code truncates a timestamp
any other way.

Rules
-----
* A bucket is a local wall-clock period: a local day may last 23 or 25 hours where the zone changes to
  or from summer time, and a week or month is whole local days.
* The values of bucket columns (``day``, ``cohort``, ``period_start``) are naive local wall-clock
  times (local midnight); the snapshot is compared with them through :meth:`Calendar.to_local`.
* Input wall times that do not exist (the hour skipped in spring) are read with the offset in force
  before the change, so they land that far after it (02:30 on Europe/Berlin's spring day is 03:30 CEST);
  wall times that exist twice (the hour repeated in autumn) are the first of the two, still summer
  time. This is Python's ``fold=0``, DuckDB's ICU and Java's (Spark's) rule alike.
* With the zone ``UTC`` nothing is converted: the buckets are UTC days, as before calendars existed.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pandas as pd

from userops_lib import engine
from userops_lib.errors import DataError

PERIODS = ("day", "week", "month")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Ibis/DuckDB truncation units, and the length of one period as a calendar offset.
_TRUNCATE = {"day": "D", "week": "W", "month": "M"}
OFFSET = {"day": pd.DateOffset(days=1), "week": pd.DateOffset(weeks=1), "month": pd.DateOffset(months=1)}
_PANDAS_WEEK = {day: f"W-{day[:3].upper()}" for day in WEEKDAYS}
UTC = "UTC"


def check_zone(zone: str, *, where: str = "timezone") -> str:
    """``zone`` if it is an IANA time zone name (``Asia/Shanghai``, ``UTC``); a DataError naming ``where`` otherwise."""
    try:
        zoneinfo.ZoneInfo(str(zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise DataError.single(
            "dataset",
            f"'{zone}' is not a time zone",
            "give an IANA time zone name such as Asia/Shanghai, Europe/Berlin, America/New_York or UTC",
            column=where,
            example=zone,
            key="calendar.bad_zone",
            values={"zone": str(zone)},
        ) from None
    return str(zone)


@dataclass(frozen=True)
class Calendar:
    """The calendar days, weeks and months are counted in: an IANA zone and the first day of the week."""

    timezone: str = UTC
    week_start: str = "monday"

    def __post_init__(self) -> None:
        check_zone(self.timezone)
        if self.week_start not in WEEKDAYS:
            raise DataError.single(
                "dataset",
                f"'{self.week_start}' is not a day of the week",
                f"use one of: {', '.join(WEEKDAYS)}",
                column="calendar.week_start",
                example=self.week_start,
                key="calendar.week_start",
                values={"value": self.week_start, "days": ", ".join(WEEKDAYS)},
            )

    @property
    def is_utc(self) -> bool:
        return self.timezone == UTC

    @property
    def _week_shift(self) -> int:
        """Days from Monday to the first day of the week."""
        return WEEKDAYS.index(self.week_start)

    # -- in the engine (Ibis) ---------------------------------------------------------------------
    def local(self, timestamp: ir.TimestampValue) -> ir.TimestampValue:
        """A UTC instant (naive) as the naive wall-clock time of this calendar's zone."""
        return timestamp if self.is_utc else engine.utc_to_wall(self.timezone, timestamp)

    def start(self, timestamp: ir.TimestampValue, period: str) -> ir.TimestampValue:
        """The local start (midnight) of the day, week or month holding the instant ``timestamp``."""
        return self.start_of_day(self.local(timestamp), period)

    def start_of_day(self, local: ir.TimestampValue, period: str) -> ir.TimestampValue:
        """The local start of the day, week or month holding a local day or wall time (a value of :meth:`day`)."""
        if period == "week" and self._week_shift:
            # Weeks starting on day s: move s days back so that day s falls on a Monday, take the ISO week.
            shift = ibis.interval(days=self._week_shift)
            return (local - shift).truncate("W") + shift
        return local.truncate(_TRUNCATE[period])

    def day(self, timestamp: ir.TimestampValue) -> ir.TimestampValue:
        """The local midnight starting the day of the instant ``timestamp``."""
        return self.start(timestamp, "day")

    def date(self, timestamp: ir.TimestampValue) -> ir.DateValue:
        """The local date of the instant ``timestamp``."""
        return self.local(timestamp).date()

    @staticmethod
    def periods_between(later: ir.TimestampValue, earlier: ir.TimestampValue, period: str) -> ir.IntegerValue:
        """Whole periods from one period start to another (both values of :meth:`start` for ``period``)."""
        if period == "month":
            return (later.year() * 12 + later.month()) - (earlier.year() * 12 + earlier.month())
        days = _as_date(later).delta(_as_date(earlier), unit="day")
        return days // 7 if period == "week" else days

    @staticmethod
    def days_between(later: ir.Value, earlier: ir.Value) -> ir.IntegerValue:
        """Whole days from one local day (a value of :meth:`day` or :meth:`date`) to another."""
        return _as_date(later).delta(_as_date(earlier), unit="day")

    def date_literal(self, moment: dt.datetime | pd.Timestamp) -> ir.DateValue:
        """The local date of a UTC instant given in Python, as an engine literal."""
        return ibis.literal(self.local_date(moment))

    # -- in Python (pandas) -----------------------------------------------------------------------
    def to_local(self, moment: dt.datetime | pd.Timestamp) -> pd.Timestamp:
        """A naive UTC instant as naive local wall time."""
        moment = pd.Timestamp(moment)
        if self.is_utc:
            return moment
        return moment.tz_localize(UTC).tz_convert(self.timezone).tz_localize(None)

    def to_utc(self, wall: dt.datetime | pd.Timestamp) -> pd.Timestamp:
        """A naive local wall time as a naive UTC instant (the module's rule for gaps and repeats)."""
        wall = pd.Timestamp(wall)
        if self.is_utc:
            return wall
        aware = wall.to_pydatetime().replace(tzinfo=zoneinfo.ZoneInfo(self.timezone), fold=0)
        return pd.Timestamp(aware.astimezone(dt.UTC).replace(tzinfo=None))

    def local_date(self, moment: dt.datetime | pd.Timestamp) -> dt.date:
        """The local date of a naive UTC instant."""
        return self.to_local(moment).date()

    def floor(self, wall: dt.datetime | pd.Timestamp, period: str) -> pd.Timestamp:
        """The start of the day, week or month holding the local wall time ``wall``."""
        wall = pd.Timestamp(wall).normalize()
        if period == "day":
            return wall
        if period == "week":
            return wall - pd.Timedelta(days=(wall.weekday() - self._week_shift) % 7)
        return wall.replace(day=1)

    def frequency(self, period: str) -> str:
        """The pandas frequency of consecutive period starts."""
        return {"day": "D", "week": _PANDAS_WEEK[self.week_start], "month": "MS"}[period]

    def every_period(self, frame: pd.DataFrame, column: str, period: str, *, until: pd.Timestamp) -> pd.DataFrame:
        """``frame`` with a row for every period from its first to the one holding the local time ``until``,
        zeros where the data had none: a week without new users is a week of 0, not a missing week (averages
        and the "last complete period" would skip it)."""
        if frame.empty:
            return frame
        last = max(frame[column].max(), self.floor(until - pd.Timedelta(microseconds=1), period))
        starts = pd.date_range(frame[column].min(), last, freq=self.frequency(period))
        filled = frame.set_index(column).reindex(starts, fill_value=0).rename_axis(column).reset_index()
        return filled.astype({c: frame[c].dtype for c in frame.columns if c != column})

    def label(self) -> str:
        """The zone as pages name it (``Asia/Shanghai``)."""
        return self.timezone


def _as_date(value: ir.Value) -> ir.DateValue:
    """A local day (a midnight timestamp or a date) as a date."""
    return value.date() if value.type().is_timestamp() else value


__all__ = ["OFFSET", "PERIODS", "UTC", "WEEKDAYS", "Calendar", "check_zone"]
