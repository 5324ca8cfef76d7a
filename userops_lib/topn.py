"""The one "top N values + other" folding every report uses for categories."""

from __future__ import annotations

import pandas as pd

OTHER = "other"
MISSING = "(missing)"


def fold_counts(counts: pd.DataFrame, n: int, *, value: str = "value", count: str = "users") -> pd.DataFrame:
    """The ``n`` largest rows of a ``value, count`` table as they are and the rest summed into one
    ``other`` row (none when nothing is left over); missing values are named ``(missing)``."""
    ranked = counts.assign(**{value: counts[value].astype("object").where(counts[value].notna(), MISSING)})
    ranked = ranked.sort_values(count, ascending=False, kind="stable")
    top = ranked.head(n)
    rest = ranked[count].iloc[n:].sum()
    if not rest:
        return top.reset_index(drop=True)
    return pd.concat([top, pd.DataFrame({value: [OTHER], count: [rest]})], ignore_index=True)


def fold_values(values: pd.Series, n: int) -> pd.Series:
    """Each value as it is when among the ``n`` most common, else ``other`` (missing: ``(missing)``)."""
    values = values.astype("string").fillna(MISSING)
    keep = values.value_counts().index[:n]
    return values.where(values.isin(keep), OTHER)
