"""Calendar periods shared by every analysis: UTC days, ISO weeks (Monday first) and months."""

from __future__ import annotations

import pandas as pd

NAMES = ("day", "week", "month")
# Ibis/DuckDB truncation units, and the length of one period as a calendar offset.
TRUNCATE = {"day": "D", "week": "W", "month": "M"}
OFFSET = {"day": pd.DateOffset(days=1), "week": pd.DateOffset(weeks=1), "month": pd.DateOffset(months=1)}
