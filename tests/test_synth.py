"""The synthetic world is deterministic and carries the truth it claims."""

import json

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from tests.conftest import DATA
from userops_lib.data import load_dataset
from userops_lib.synth import WorldParameters, make_world
from userops_lib.synth_files import write_world


@pytest.fixture(scope="module")
def world():
    return make_world(users=20_000, seed=7)


def test_same_seed_same_data_and_another_seed_other_data():
    a, b = make_world(users=500, seed=3), make_world(users=500, seed=3)
    for name in ("users", "events", "assignments"):
        pd.testing.assert_frame_equal(a[name], b[name])
    assert a["truth"] == b["truth"]
    c = make_world(users=500, seed=4)
    assert not a["events"].equals(c["events"])


def test_the_written_folder_is_a_valid_dataset_with_its_truth(tmp_path):
    out = write_world(tmp_path / "world", users=300, seed=1)
    ds = load_dataset(out)
    truth = json.loads((out / "truth.json").read_text())
    assert ds.users.count().execute() == 300 == truth["users"]
    assert ds.events.count().execute() == truth["realised"]["events"]
    assert ds.quality.rows_set_aside == 0
    assert ds.control_arm == "control"
    assert ds.snapshot_at.isoformat() == truth["snapshot_at"]


def test_the_bundled_sample_matches_its_truth_file():
    ds = load_dataset(DATA / "sample")
    truth = json.loads((DATA / "sample" / "truth.json").read_text())
    assert ds.users.count().execute() == truth["users"] == 10_000
    assert ds.events.count().execute() == truth["realised"]["events"]
    arms = ds.assignments.arm.value_counts().execute().set_index("arm")["arm_count"].to_dict()
    assert arms == truth["realised"]["assigned_by_arm"]


@pytest.mark.slow
def test_arm_sizes_follow_the_allocation(world):
    arms = world["assignments"].arm.value_counts()
    n = arms.sum()
    for arm, share in world["truth"]["campaign"]["allocation"].items():
        sd = np.sqrt(n * share * (1 - share))
        assert abs(arms[arm] - n * share) < 4 * sd, arm


def test_attribute_shares_follow_the_truth(world):
    users = world["users"]
    for attribute, spec in world["truth"]["attributes"].items():
        observed = users[attribute].value_counts(normalize=True)
        for level, share in spec["share"].items():
            sd = np.sqrt(share * (1 - share) / len(users))
            assert abs(observed[level] - share) < 4 * sd, (attribute, level)


def test_churn_by_snapshot_per_channel_matches_the_weibull_model(world):
    """Expected churn per channel from S(t|x) and each user's observable time, against the realised count."""
    truth = world["truth"]
    shape, scale = truth["churn"]["shape"], truth["churn"]["scale"]
    tu = world["truth_users"].merge(world["users"], on="user_id")
    probability = 1 - np.exp(-((tu.observable_days / scale) ** shape) * tu.hazard_ratio)
    for channel, group in tu.groupby("channel"):
        p = probability[group.index]
        expected, sd = p.sum(), np.sqrt((p * (1 - p)).sum())
        assert abs(group.churned_by_snapshot.sum() - expected) < 4 * sd, channel


@pytest.mark.slow
def test_cox_on_the_latent_lifetimes_recovers_the_hazard_ratios(world):
    truth = world["truth"]
    tu = world["truth_users"].merge(world["users"], on="user_id")
    frame = pd.DataFrame(
        {
            "T": np.minimum(tu.lifetime_days, tu.observable_days),
            "E": tu.churned_by_snapshot.astype(int),
        }
    )
    for attribute in ("channel", "platform"):
        reference = truth["attributes"][attribute]["reference"]
        dummies = pd.get_dummies(tu[attribute]).drop(columns=reference).astype(float)
        frame = frame.join(dummies.add_prefix(f"{attribute}="))
    cox = CoxPHFitter().fit(frame, "T", "E")
    summary = cox.summary
    # The generator is Weibull PH, so Cox's partial likelihood is correctly specified.
    for attribute in ("channel", "platform"):
        for level, hr in truth["attributes"][attribute]["hazard_ratio"].items():
            if level == truth["attributes"][attribute]["reference"]:
                continue
            row = summary.loc[f"{attribute}={level}"]
            assert row["exp(coef) lower 95%"] <= hr <= row["exp(coef) upper 95%"], (attribute, level)


def test_users_are_never_active_after_their_lifetime(world):
    events = world["events"].merge(world["users"][["user_id", "signup_at"]], on="user_id")
    events = events.merge(world["truth_users"][["user_id", "lifetime_days"]], on="user_id")
    day = (events.event_at.dt.normalize() - events.signup_at.dt.normalize()).dt.days
    assert (day < np.ceil(events.lifetime_days)).all()
    assert (events.event_at >= events.signup_at).all()


def test_weekly_seasonality_shows_in_the_session_counts(world):
    sessions = world["events"][world["events"].event == "session"]
    by_day = sessions.event_at.dt.dayofweek.value_counts().sort_index()
    multiplier = np.asarray(WorldParameters().weekday_multiplier)
    # Saturday (5) has the highest multiplier, Monday-Wednesday the lowest.
    assert by_day.idxmax() == int(np.argmax(multiplier))
    assert by_day[5] / by_day[0] == pytest.approx(multiplier[5] / multiplier[0], rel=0.05)


def test_campaign_conversion_lift_matches_the_truth(world):
    truth = world["truth"]["campaign"]
    start = pd.Timestamp(truth["assigned_at"])
    end = start + pd.Timedelta(days=truth["window_days"])
    events = world["events"]
    buyers = events[(events.event == "purchase") & (events.event_at >= start) & (events.event_at < end)].user_id
    a = world["assignments"].merge(world["users"][["user_id", "platform"]], on="user_id")
    a["converted"] = a.user_id.isin(set(buyers))
    rates = a.groupby("arm").converted.agg(["mean", "count"])
    for arm, lift in truth["conversion_lift_overall"].items():
        difference = rates.loc[arm, "mean"] - rates.loc["control", "mean"]
        se = np.sqrt(
            sum(rates.loc[k, "mean"] * (1 - rates.loc[k, "mean"]) / rates.loc[k, "count"] for k in (arm, "control"))
        )
        assert abs(difference - lift) < 4 * se, arm
