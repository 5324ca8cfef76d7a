"""The data-quality summary every report shows: what was read, what was kept, what was set aside."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from userops_lib.calendar import Calendar


@dataclass(frozen=True)
class SetAside:
    """Rows of one table left out of the analysis for one reason (never dropped silently)."""

    table: str
    reason: str
    rows: int
    example: object = None


@dataclass(frozen=True)
class TableSummary:
    name: str
    source: str
    rows_read: int
    rows_kept: int
    columns: tuple[str, ...]


@dataclass(frozen=True)
class DataQuality:
    """What a dataset held and what the analyses will use.

    ``users`` counts the users the analyses see: for a dataset restricted to one segment
    (``restriction``, e.g. ``channel = paid``) that segment's users, with ``users_in_dataset`` beside it;
    table rows read, kept and set aside are always the whole dataset's.

    ``snapshot_at`` is the "as of" time (UTC) that censors every analysis: events after it are set
    aside, and users still active at it are censored, not churned. ``calendar`` is the zone and week
    start that days, weeks and months are counted in; dates and times are shown in it. ``churned`` and ``campaigns`` say
    what the data holds (churned share, campaign arm sizes); :attr:`facts` words them for the terminal.
    """

    dataset: str
    source: str
    timezone: str
    snapshot_at: dt.datetime | None
    tables: tuple[TableSummary, ...]
    users: int
    first_event_at: dt.datetime | None
    last_event_at: dt.datetime | None
    set_aside: tuple[SetAside, ...]
    duration_unit: str | None = None
    churned: tuple[int, int] | None = None  # churned users, all users (a users table with a churn flag)
    campaigns: tuple = ()  # (campaign, ((arm, users, is_control), ...)), by campaign name
    restriction: str | None = None
    users_in_dataset: int | None = None
    calendar: Calendar = field(default_factory=Calendar)

    @property
    def users_text(self) -> str:
        """How many users the analyses see; for a restricted dataset, of how many in the whole dataset."""
        if not self.restriction:
            return f"{self.users:,}"
        return (
            f"{self.users:,} with {self.restriction} (of {self.users_in_dataset:,} in the dataset; table rows "
            "are the whole dataset's)"
        )

    @property
    def facts(self) -> list[str]:
        """Short lines on what the data holds, for the terminal."""
        lines = []
        if self.churned is not None:
            churned, users = self.churned
            lines.append(f"churned   {churned:,} of {users:,} users ({churned / users if users else 0.0:.1%})")
        for campaign, arms in self.campaigns[:10]:
            text = " · ".join(
                f"{arm} {n:,}{' (control)' if control and arm.lower() != 'control' else ''}" for arm, n, control in arms
            )
            lines.append(f"campaign  {campaign}: {text}")
        if len(self.campaigns) > 10:
            lines.append(f"campaign  ... and {len(self.campaigns) - 10} more")
        return lines

    @property
    def rows_set_aside(self) -> int:
        return sum(item.rows for item in self.set_aside)

    @property
    def shown_source(self) -> str:
        """The dataset as a page names it: its folder's name, never the machine's path."""
        from userops_lib.files import public_path

        return public_path(self.source)

    def table_frame(self) -> pd.DataFrame:
        """One row per table: rows read, kept and set aside (each file named within the dataset's folder)."""
        from userops_lib.files import public_path

        return pd.DataFrame(
            [
                {
                    "table": t.name,
                    "source": public_path(t.source, self.source),
                    "rows_read": t.rows_read,
                    "rows_kept": t.rows_kept,
                    "rows_set_aside": t.rows_read - t.rows_kept,
                    "columns": len(t.columns),
                }
                for t in self.tables
            ]
        )

    def set_aside_frame(self) -> pd.DataFrame:
        """One row per table and reason with the count and an example."""
        return pd.DataFrame(
            [{"table": s.table, "reason": s.reason, "rows": s.rows, "example": s.example} for s in self.set_aside],
            columns=["table", "reason", "rows", "example"],
        )

    def lines(self) -> list[str]:
        """The summary as plain text lines, for the terminal."""
        out = [f"dataset   {self.dataset}  ({self.source})"]
        for t in self.tables:
            kept = "" if t.rows_kept == t.rows_read else f", {t.rows_kept:,} kept"
            out.append(f"table     {t.name:<12} {t.rows_read:>12,} rows{kept}, {len(t.columns)} columns")
        out.append(f"users     {self.users_text}")
        zone = self.calendar.timezone
        if self.first_event_at is not None:
            first, last = (
                self.calendar.to_local(t) if t is not None else None for t in (self.first_event_at, self.last_event_at)
            )
            out.append(f"events    {_day(first)} to {_day(last)} ({zone} days)")
        if self.snapshot_at is not None:
            local = f"{self.calendar.to_local(self.snapshot_at):%Y-%m-%d %H:%M:%S} {zone}"
            out.append(
                f"snapshot  {local}" + ("" if self.calendar.is_utc else f" ({self.snapshot_at:%Y-%m-%d %H:%M:%S} UTC)")
            )
        out.append(f"calendar  days, weeks and months in {zone}; weeks start on {self.calendar.week_start.title()}")
        if self.duration_unit:
            out.append(f"durations in {self.duration_unit}")
        out.extend(self.facts)
        if self.set_aside:
            out.append(f"set aside {self.rows_set_aside:,} rows:")
            for s in self.set_aside:
                example = "" if s.example is None else f"  e.g. {s.example!r}"
                out.append(f"  {s.table:<12} {s.rows:>10,}  {s.reason}{example}")
        else:
            out.append("set aside 0 rows")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        from userops_lib import i18n, templating

        return templating.block("quality", i18n.t("report.data_quality"), [line.strip() for line in self.lines()])


def _day(value: dt.datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d}"
