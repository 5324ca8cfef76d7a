"""Campaigns in the data: what several analyses share (a campaign readout, any result by arm, the preflight).
A layer below the analyses: it imports none of them."""

from __future__ import annotations

from userops_lib.data import Dataset
from userops_lib.errors import DataError

# The outcomes a campaign's readout can derive from events after assignment (any campaign, any analysis).
EVENT_METRICS = ("converted", "revenue", "active_days")


def names(ds: Dataset) -> list[str]:
    """The campaigns of the assignments table, sorted (none without one)."""
    table = ds.assignments
    if table is None:
        return []
    return sorted(map(str, table.select("campaign").distinct().execute()["campaign"].dropna()))


def check_campaign(campaign: str, campaigns: list[str]) -> str:
    """``campaign`` when the data has it; else the error naming the data's campaigns."""
    if campaign not in campaigns:
        raise DataError.single(
            "assignments",
            f"no campaign '{campaign}'",
            "choose one of the data's campaigns",
            column="campaign",
            key="campaigns.no_campaign",
            values={"campaign": campaign},
            example=", ".join(campaigns[:10]),
        )
    return campaign
