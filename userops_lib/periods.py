"""Calendar periods shared by every analysis: UTC days, ISO weeks (Monday first) and months."""

from __future__ import annotations

import pandas as pd

NAMES = ("day", "week", "month")
# Ibis/DuckDB truncation units, and the length of one period as a calendar offset.
TRUNCATE = {"day": "D", "week": "W", "month": "M"}
OFFSET = {"day": pd.DateOffset(days=1), "week": pd.DateOffset(weeks=1), "month": pd.DateOffset(months=1)}
# pandas frequency of consecutive period starts.
FREQUENCY = {"day": "D", "week": "W-MON", "month": "MS"}


def floor(moment: pd.Timestamp, period: str) -> pd.Timestamp:
    """The start of the period holding ``moment``."""
    moment = pd.Timestamp(moment)
    if period == "day":
        return moment.floor("D")
    if period == "week":
        return (moment - pd.Timedelta(days=moment.weekday())).floor("D")
    return moment.to_period("M").start_time


def every_period(frame: pd.DataFrame, column: str, period: str, *, until: pd.Timestamp) -> pd.DataFrame:
    """``frame`` with a row for every period from its first to the one holding ``until``, zeros where the
    data had none: a week without new users is a week of 0, not a missing week (averages and the
    "last complete period" would skip it)."""
    if frame.empty:
        return frame
    last = max(frame[column].max(), floor(until - pd.Timedelta(microseconds=1), period))
    starts = pd.date_range(frame[column].min(), last, freq=FREQUENCY[period])
    filled = frame.set_index(column).reindex(starts, fill_value=0).rename_axis(column).reset_index()
    return filled.astype({c: frame[c].dtype for c in frame.columns if c != column})
