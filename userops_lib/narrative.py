"""Findings as sentences with numbers, and the HTML they are shown in: every data string escaped.

Numbers and dates are formatted for the report's language (:mod:`i18n`): '1 Dec 2025' or
'2025年12月1日', 'Dec 2025' or '2025年12月'; counts spoken in a Chinese sentence read '1.2万'.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import TYPE_CHECKING

from userops_lib import i18n

if TYPE_CHECKING:  # pandas is imported where it is used: report jobs import escape() and should stay light
    import pandas as pd


def escape(value: object) -> str:
    """HTML-escape any value (quotes included)."""
    return html.escape(str(value), quote=True)


def count(value: float) -> str:
    return f"{value:,.0f}"


def spoken(value: float) -> str:
    """A count in a sentence: '12,345' in English, '1.2万' in Chinese from ten thousand up."""
    if i18n.current().code == "zh" and abs(value) >= 10_000:
        from babel.numbers import format_compact_decimal

        return format_compact_decimal(value, locale=i18n.current().locale, fraction_digits=1)
    return count(value)


def na() -> str:
    return i18n.t("format.na")


def number(value: float) -> str:
    """A table number: thousands separated, no scientific notation for ordinary sizes ('21,310', not
    '2.131e+04'), two decimals from 1 to 100, three significant digits below 1 (p-values stay readable)."""
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    size = abs(value)
    if size >= 100 or value == int(value):
        return f"{value:,.0f}"
    if size >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def level(alpha: float) -> str:
    """The confidence level of intervals at ``alpha``: '95%' for 0.05, '90%' for 0.1."""
    return f"{(1 - alpha) * 100:g}%"


def p_text(value: float) -> str:
    """A p-value for a table cell: '0.012', or '< 0.001' for smaller ones (one that underflows to 0 is not 0)."""
    if value is None or math.isnan(value):
        return na()
    return "< 0.001" if value < 0.001 else f"{value:.2g}"


def p_value(value: float, name: str = "p") -> str:
    """A p-value in a sentence: 'p = 0.012' or 'p < 0.001'."""
    text = p_text(value)
    return f"{name} = {text}" if text[0].isdigit() else f"{name} {text}"


def percent(value: float, digits: int = 1) -> str:
    return na() if value is None or math.isnan(value) else f"{value * 100:.{digits}f}%"


def money(value: float, currency: str = "") -> str:
    """An amount as a reader reads it: cents below 1,000 ('$4.36', '$1,237.30' is '$1,237'), whole units
    from 1,000 ('$491,078', not '$491,078.36': predictions are not known to the cent), and in Chinese
    万/亿 from ten thousand ('$49.1万'), as Chinese dashboards write money."""
    if value is None or math.isnan(value):
        return na()
    size = abs(value)
    if i18n.current().code == "zh" and size >= 10_000:
        from babel.numbers import format_compact_decimal

        text = format_compact_decimal(value, locale=i18n.current().locale, fraction_digits=1)
    elif size >= 1_000:
        text = f"{value:,.0f}"
    else:
        text = f"{value:,.2f}"
    return f"{currency}{text}" if currency else text


def duration(hours: float) -> str:
    """A time a reader reads: '35 min', '2.5 h', '3.2 d' (not '0.583 h'); under a minute '< 1 min'."""
    if hours is None or math.isnan(hours):
        return na()
    minutes = hours * 60
    if minutes < 1:
        return i18n.t("format.duration.under_minute")
    if minutes < 60:
        return i18n.t("format.duration.minutes", time=f"{minutes:.0f}")
    if hours < 48:
        return i18n.t("format.duration.hours", time=f"{hours:.1f}".removesuffix(".0"))
    return i18n.t("format.duration.days", time=f"{hours / 24:.1f}".removesuffix(".0"))


def interval(low: float, high: float, digits: int = 1) -> str:
    """A percentage interval such as '30.1–32.4%'."""
    return f"{low * 100:.{digits}f}–{high * 100:.{digits}f}%"


def day(value) -> str:
    import pandas as pd

    if value is None or pd.isna(value):
        return na()
    if i18n.current().code != "en":
        from babel.dates import format_skeleton

        return format_skeleton("yMMMd", pd.Timestamp(value).date(), locale=i18n.current().locale)
    return pd.Timestamp(value).strftime("%-d %b %Y")


def parameter(value: object) -> str:
    """A parameter's value as a reader reads it: text as it is, lists joined, an empty value as '(default)'
    — never Python's quotes and brackets."""
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(parameter(v) for v in value) if value else i18n.t("format.default")
    if value is None or value == "":
        return i18n.t("format.default")
    return str(value)


def bottom_line(sentence: str) -> str:
    """A page's first finding, marked as its bottom line ('Bottom line: …' / '结论：…')."""
    return i18n.t("format.bottom_line", sentence=sentence)


def findings_html(sentences: list[str], *, title: str | None = None) -> str:
    """A findings box: each sentence escaped, as a list."""
    from userops_lib import templating

    return templating.block("findings", i18n.t("report.findings") if title is None else title, sentences)


def headlines_html(headlines: list[tuple[str, str]]) -> str:
    """Headline figures as label/value tiles."""
    from userops_lib import templating

    return templating.block("tiles", headlines)


def cards_html(cards: list[tuple[str, str, str]], *, heading: str = "") -> str:
    """KPI cards: label, value and a note (the change, the interval) under each."""
    from userops_lib import templating

    return templating.block("cards", cards, heading)


def header(column: object) -> str:
    """A table column's header for people: from the catalogue ('column.<name>'), else its words."""
    key = f"column.{column}"
    return i18n.t(key) if i18n.has(key) else str(column).replace("_", " ")


EVERYONE = "all"  # the group of every user in the analyses' tables (CSV files keep it)
GROUP_COLUMNS = ("group", "group_value")


def table_html(
    frame: pd.DataFrame,
    *,
    max_rows: int = 30,
    caption: str | None = None,
    formats: dict | None = None,
    classes: dict | None = None,
) -> str:
    """A DataFrame as an escaped HTML table (pandas escapes cell values and headers).

    ``formats`` maps column names to functions that turn a value into display text; ``classes`` maps a
    column to {display text: CSS class}, for cells whose colour carries meaning (better, worse).
    """
    na = "–"
    shown = frame.head(max_rows).copy()
    for column in [c for c in GROUP_COLUMNS if c in shown.columns]:
        # the program's label for everyone: said in words, or left out when it is the only group
        if (frame[column].astype(str) == EVERYONE).all():
            shown = shown.drop(columns=column)
        else:
            shown[column] = shown[column].map(lambda v: i18n.t("format.everyone") if v == EVERYONE else v)
    for column, formatter in (formats or {}).items():
        if column in shown.columns:
            shown[column] = shown[column].map(formatter)
    for column in shown.columns:  # counts with thousands separators, like the floats; identifiers as they are
        if column not in (formats or {}) and shown[column].dtype.kind in "iu" and not _identifier(column):
            shown[column] = [na if _missing(v) else f"{int(v):,}" for v in shown[column].astype(object)]
    # Headers for people ('share of users', not 'share_of_users'); the CSV artifacts keep the names.
    shown.columns = [header(c) for c in shown.columns]
    body = shown.to_html(index=False, escape=True, border=0, classes="userops-table", na_rep=na, float_format=number)
    for mapping in (classes or {}).values():
        for text, css in mapping.items():
            cell = html.escape(str(text), quote=False)
            body = body.replace(f"<td>{cell}</td>", f"<td class='{html.escape(css)}'>{cell}</td>")
    note = (
        i18n.t("report.showing_rows", shown=count(max_rows), total=count(len(frame))) if len(frame) > max_rows else ""
    )
    from userops_lib import templating

    return templating.block("table", caption or "", templating.markup(body), note)


def _identifier(column: object) -> bool:
    """Whether a column holds identifiers (user 6498 is not 'user 6,498')."""
    return isinstance(column, str) and (column == "id" or column.endswith("_id"))


def _missing(value: object) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def yes_no(value: object) -> str:
    return i18n.t("format.yes") if bool(value) else i18n.t("format.no")


def month(value) -> str:
    import pandas as pd

    if i18n.current().code != "en":
        from babel.dates import format_skeleton

        return format_skeleton("yMMM", pd.Timestamp(value).date(), locale=i18n.current().locale)
    return pd.Timestamp(value).strftime("%b %Y")


def timestamp(value: dt.datetime | None, calendar=None) -> str:
    """A UTC instant as local time of ``calendar`` (default UTC) with the zone named: '2026-01-01 00:00 北京时间'."""
    if value is None:
        return na()
    from userops_lib.calendar import Calendar

    calendar = calendar or Calendar()
    local = calendar.to_local(value)
    return f"{day(local)} {local:%H:%M} {zone(calendar)}"


_BEIJING = ("Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "PRC")


def zone(calendar) -> str:
    """The calendar's zone as a reader names it: 北京时间 for China's zone in Chinese pages, else its IANA name."""
    name = calendar.timezone
    if name in _BEIJING and i18n.current().code != "en":
        return i18n.t("calendar.beijing")
    return name


def ci(low: float, high: float, level_text: str) -> str:
    """'95% CI 30.1–32.4%' in the report's language."""
    return i18n.t("format.ci", level=level_text, interval=interval(low, high))
