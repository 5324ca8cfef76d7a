"""The data-quality summary in words, in the report's language (the terminal keeps quality.lines())."""

from __future__ import annotations

from userops_lib import i18n, narrative
from userops_lib.i18n import t


def reason(text: str) -> str:
    """A set-aside reason in the report's language (unknown reasons as they are)."""
    return t(f"quality.reason.{text}") if i18n.has(f"quality.reason.{text}") else text


def facts(quality) -> list[str]:
    """Snapshot, users, date range, churned share and campaign arms: the lines under 'Data quality'."""
    users = (
        t(
            "report.fact.users_restricted",
            users=narrative.count(quality.users),
            restriction=quality.restriction,
            everyone=narrative.count(quality.users_in_dataset or 0),
        )
        if quality.restriction
        else narrative.count(quality.users)
    )
    calendar = quality.calendar
    out = [
        t("report.fact.snapshot", time=narrative.timestamp(quality.snapshot_at, calendar)),
        t("report.fact.users", users=users),
    ]
    if quality.first_event_at is not None:
        out.append(
            t(
                "report.fact.range",
                first=narrative.day(calendar.to_local(quality.first_event_at)),
                last=narrative.day(calendar.to_local(quality.last_event_at)),
            )
        )
    out.append(
        t(
            "report.fact.calendar",
            zone=narrative.zone(calendar),
            week_start=t(f"calendar.weekday.{calendar.week_start}"),
        )
    )
    if quality.duration_unit:
        out.append(t("report.fact.durations", unit=quality.duration_unit))
    if quality.churned is not None:
        churned, everyone = quality.churned
        out.append(
            t(
                "report.fact.churned",
                churned=narrative.count(churned),
                users=narrative.count(everyone),
                share=narrative.percent(churned / everyone if everyone else float("nan")),
            )
        )
    for campaign, arms in quality.campaigns[:10]:
        words = " · ".join(
            (t("report.fact.control", arm=arm) if control and arm.lower() != "control" else arm)
            + f" {narrative.count(n)}"
            for arm, n, control in arms
        )
        out.append(t("report.fact.campaign", campaign=campaign, arms=words))
    if len(quality.campaigns) > 10:
        out.append(t("report.fact.more_campaigns", n=len(quality.campaigns) - 10))
    return out


def summary(quality) -> list[str]:
    """Everything the terminal's summary says, as lines for a run's index page."""
    out = [t("report.fact.dataset", name=quality.dataset, source=quality.shown_source)]
    out += [
        t(
            "report.fact.table",
            table=s.name,
            read=narrative.count(s.rows_read),
            kept=narrative.count(s.rows_kept),
            columns=len(s.columns),
        )
        for s in quality.tables
    ]
    out += facts(quality)
    out += [
        t("report.fact.set_aside_reason", table=s.table, rows=narrative.count(s.rows), reason=reason(s.reason))
        for s in quality.set_aside
    ]
    if not quality.set_aside:
        out.append(t("report.none_set_aside"))
    return out
