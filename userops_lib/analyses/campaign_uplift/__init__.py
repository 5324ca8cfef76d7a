"""Campaign uplift: did the campaign work, for whom, and who to target next time.

Definitions (the catalogue's ``campaign_uplift.definition.*`` states them in every report):

* **Outcomes** are measured columns of the assignment table (``outcomes`` in dataset.yml) or computed
  from events in ``[assigned_at, assigned_at + window_days)``: ``converted`` (any purchase), ``revenue``
  and ``active_days``; the same metrics before assignment are the pre-period covariates (CUPED).
* **Readout** per treatment arm and metric against control (:mod:`.experiment`): absolute lift with an
  interval (Newcombe for 0/1 metrics, Welch otherwise), relative lift (delta method), p-values corrected
  across arms and metrics (Holm, or Benjamini–Hochberg).
* **Health**: sample-ratio mismatch, covariate balance, minimum sample, minimum detectable effect.
* **Targeting** (:mod:`.targeting`): lift per segment with Cochran's Q and incremental value; an uplift
  model (two logistic models) ranked on a held-out split, its Qini curve and a bootstrap interval.

``run(ds, Params(...))`` returns a :class:`CampaignResult`; text comes from
:mod:`userops_lib.analyses.campaign_uplift.text`, charts from :mod:`userops_lib.analyses.campaign_uplift.charts`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pandas as pd

from userops_lib import contract
from userops_lib.analyses.campaign_uplift import experiment as uplift
from userops_lib.campaigns import EVENT_METRICS
from userops_lib.contract import param
from userops_lib.data import Dataset

if TYPE_CHECKING:  # the statistics (statsmodels, scipy) load when an analysis runs, not when a run is planned
    from userops_lib.analyses.campaign_uplift.targeting import UpliftModel

MONEY_METRICS = ("revenue",)  # event outcomes in the dataset's currency


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params(contract.Common):
    campaign: str = param("", "campaign to read out; empty: the first", refers_to="campaign")
    metrics: list[str] = param(
        [],
        "outcome columns; empty: the dataset's outcomes, else converted, revenue and active days from events",
        refers_to="metric",
    )
    window_days: int = param(14, "event outcomes: days after assignment that count", ge=1)
    segment_by: str = param("", "attribute for segment uplift; empty: the first text attribute", refers_to="attribute")
    correction: str = param("holm", "multiple-testing correction", choices=("holm", "bh"))
    expected_split: list[float] = param([], "planned share per arm in arm-name order; empty: equal", gt=0)
    min_sample: int = param(100, "smallest acceptable arm", ge=1)
    value_per_conversion: float = param(0.0, "value of one extra conversion, for incremental value by segment", ge=0)
    cost_per_contact: float = param(0.0, "cost of contacting one user", ge=0)
    features: list[str] = param(
        [],
        "attributes the who-to-target model learns from; empty: every attribute with 30 values or fewer, and numbers",
        refers_to="attribute",
    )

    def named(self, field_name: str, value: str) -> list[str]:
        return value.split("/") if field_name == "metrics" else [value]  # a ratio: "revenue/converted"

    def checks(self) -> list[contract.Problem]:
        found = super().checks()
        found += [
            contract.problem("metrics", "campaign_uplift.ratio", metric)
            for metric in self.metrics
            if metric.count("/") > 1
        ]
        return found

    def against(self, data) -> list[contract.Problem]:
        """The planned split has one share per arm of the campaign."""
        if not self.expected_split:
            return []
        arms = data.arms(self.campaign)
        if arms and len(arms) != len(self.expected_split):
            return [
                contract.problem(
                    "expected_split",
                    "campaign_uplift.split_count",
                    ", ".join(arms),
                    shares=len(self.expected_split),
                    arms=len(arms),
                )
            ]
        return []


@dataclasses.dataclass(frozen=True)
class CampaignResult(contract.Presented):
    ANALYSIS = "campaign_uplift"

    campaign: str
    control: str
    source: str
    readout: pd.DataFrame
    health: pd.DataFrame
    segments: pd.DataFrame
    model: UpliftModel | None
    primary: str
    binary: dict
    currency: str
    alpha: float = 0.05  # the level of every interval and test (95% for 0.05)
    params: Params | None = None

    @property
    def level(self) -> float:
        return self.alpha

    def is_money(self, metric: str) -> bool:
        return metric.split(" ")[0] in MONEY_METRICS

    def tables(self) -> dict[str, pd.DataFrame]:
        from userops_lib.analyses.campaign_uplift import stats as uplift_stats

        # Data only: what each check found (check, status, value, about, threshold); the report says it in words.
        out = {"arm_summary": self.readout[list(uplift_stats.ARM_SUMMARY)], "health": self.health}
        if not self.segments.empty:
            out["segment_uplift"] = self.segments
        if self.model is not None and self.model.problem is None:
            out["uplift_deciles"] = self.model.deciles
            out["qini"] = self.model.qini
        return out


def run(ds: Dataset, params: Params) -> CampaignResult:
    """The campaign readout of ``ds`` with the notebook's parameters (empty texts and lists: the defaults)."""
    result = _analyse(
        ds,
        campaign=params.campaign or None,
        metrics=params.metrics or None,
        window_days=params.window_days,
        segment_by=params.segment_by or None,
        alpha=params.alpha,
        correction=params.correction,
        expected_split=params.expected_split or None,
        min_sample=params.min_sample,
        value_per_conversion=params.value_per_conversion,
        cost_per_contact=params.cost_per_contact,
        features=params.features or None,
    )
    return dataclasses.replace(result, params=params)


def _analyse(
    ds: Dataset,
    *,
    campaign: str | None = None,
    metrics: list[str] | None = None,
    window_days: int = 14,
    segment_by: str | None = None,
    features: list[str] | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    expected_split: list[float] | None = None,
    min_sample: int = 100,
    value_per_conversion: float = 0.0,
    cost_per_contact: float = 0.0,
    seed: int = 0,
) -> CampaignResult:
    from userops_lib.analyses.campaign_uplift import stats as uplift_stats
    from userops_lib.analyses.campaign_uplift.targeting import segment_uplift, uplift_model

    exp = uplift.experiment(
        ds, campaign=campaign, metrics=metrics, window_days=window_days, segment_by=[segment_by] if segment_by else None
    )
    readout = uplift_stats.readout(exp, alpha=alpha, correction=correction)
    checks = uplift_stats.health(exp, expected_split=expected_split, min_sample=min_sample, alpha=alpha)
    primary = next((m for m in exp.metrics if exp.binary[m]), exp.metrics[0])
    text_columns = [
        c
        for c in exp.frame.columns
        if exp.frame[c].dtype == object and c not in ("campaign", "arm") and 1 < exp.frame[c].nunique() <= 30
    ]
    segment_by = segment_by or (text_columns[0] if text_columns else None)
    segments = (
        segment_uplift(
            exp,
            segment_by,
            primary,
            alpha=alpha,
            value_per_conversion=value_per_conversion,
            cost_per_contact=cost_per_contact,
        )
        if segment_by
        else pd.DataFrame()
    )
    if features is None:
        skip = {
            *exp.metrics,
            *[p for m in exp.metrics for p in m.split("/")],
            "user_id",
            "campaign",
            "arm",
            "assigned_at",
        }
        features = [
            c
            for c in exp.frame.columns
            if c not in skip and (pd.api.types.is_numeric_dtype(exp.frame[c]) or 1 < exp.frame[c].nunique() <= 30)
        ]
    arms = readout[readout.abs_lift.notna() & (readout.metric == primary)].sort_values("abs_lift", ascending=False)
    model = uplift_model(exp, arms.arm.iloc[0], primary, features, seed=seed) if len(arms) and features else None
    return CampaignResult(
        exp.campaign, exp.control, exp.source, readout, checks, segments, model, primary, exp.binary, ds.currency, alpha
    )


ABOUT = contract.About(
    summary="Did the campaign work, for whom, and who to target next time.",
    requires=(("assignments",),),
)


__all__ = ["ABOUT", "EVENT_METRICS", "CampaignResult", "Params", "run", "uplift"]
