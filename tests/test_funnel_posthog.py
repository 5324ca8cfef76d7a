"""The funnel against PostHog's own funnel tests (PostHog/posthog,
posthog/hogql_queries/insights/funnels/test/test_funnel.py and conversion_time_cases.py): their event
logs and the counts PostHog asserts, run here with ``entry="best"`` and ``exclusion="remove"``, the two
definitions PostHog counts by. Where our defaults (``first``, ``drop``) give another number, the test
says which and why: the scenarios differ only by definition."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from userops_lib.analyses import funnel
from userops_lib.data import load_dataset
from userops_lib.errors import DataError

SNAPSHOT = "2021-06-01"  # after every window of every scenario: all users complete


def _log(journeys: dict[str, list[tuple[str, str]]]) -> pd.DataFrame:
    rows = [(user, pd.Timestamp(at), event) for user, events in journeys.items() for event, at in events]
    return pd.DataFrame(rows, columns=["user_id", "event_at", "event"])


def _counts(journeys, steps, window_days=14.0, **params) -> list[int]:
    """Users counted at each step (PostHog's ``count``: reached at least that step)."""
    ds = load_dataset({"events": _log(journeys)}, snapshot_at=SNAPSHOT)
    result = funnel.run(ds, funnel.Params(steps=steps, window_days=window_days, **params))
    users = result.overall.users.tolist()
    return users if users else [0] * len(steps)


POSTHOG = {"entry": "best", "exclusion": "remove"}
SECOND = 1 / 86400

# test_funnel_exclusion_no_end_event: a one-day window, 'x' excluded between signing up and paying.
NO_END_EVENT = {
    "person1": [("user signed up", "2021-05-01 01:00"), ("paid", "2021-05-01 02:00")],
    "person2": [("user signed up", "2021-05-01 03:00"), ("x", "2021-05-01 03:30"), ("paid", "2021-05-01 04:00")],
    "person3": [("user signed up", "2021-05-01 05:00"), ("x", "2021-05-01 06:00")],  # x inside the window
    "person4": [("user signed up", "2021-05-01 07:00"), ("x", "2021-05-02 08:00")],  # x after the window
}


def test_an_excluded_event_removes_the_user_as_posthog_counts_it():
    """PostHog: 2 entered, 1 paid (50%); persons 2 and 3 did x inside their window and are not counted.
    Our default (drop) counts them as drops at step 1: 4 entered, 1 paid (25%)."""
    assert _counts(NO_END_EVENT, ["user signed up", "paid"], 1, exclude_events=["x"], **POSTHOG) == [2, 1]
    assert _counts(NO_END_EVENT, ["user signed up", "paid"], 1, exclude_events=["x"]) == [4, 1]


def test_exclusions_over_the_full_window():
    """test_funnel_exclusions_full_window: person2's x between the steps removes them; PostHog 2, 2."""
    journeys = {
        "person1": [("user signed up", "2021-05-01 01:00"), ("paid", "2021-05-01 02:00")],
        "person2": [
            ("user signed up", "2021-05-01 03:00"),
            ("x 1 name with numbers 2", "2021-05-01 03:30"),
            ("paid", "2021-05-01 04:00"),
        ],
        "person3": [("user signed up", "2021-05-01 05:00"), ("paid", "2021-05-01 06:00")],
    }
    steps = ["user signed up", "paid"]
    assert _counts(journeys, steps, exclude_events=["x 1 name with numbers 2"], **POSTHOG) == [2, 2]
    assert _counts(journeys, steps, exclude_events=["x 1 name with numbers 2"]) == [3, 2]  # drop


@pytest.mark.slow
@pytest.mark.parametrize(
    ("events", "expected", "first_attempt"),
    [
        # ..._no_end_event1: the first attempt holds x; the second (31 s later, after the 10 s window) is clean
        ([("step one", "00:00:00"), ("exclusion", "00:00:01"), ("step one", "00:00:31")], [1, 0], [0, 0]),
        # ..._no_end_event2: the first attempt is clean; the second holds x
        ([("step one", "00:00:00"), ("step one", "00:00:31"), ("exclusion", "00:00:32")], [1, 0], [1, 0]),
        # ..._no_end_event3: both attempts hold x: the user is removed
        ([("step one", "00:00:00"), ("step one", "00:00:01"), ("exclusion", "00:00:02")], [0, 0], [0, 0]),
    ],
)
def test_each_attempt_is_judged_by_its_own_window(events, expected, first_attempt):
    """test_funnel_exclusion_multiple_possible_no_end_event1-3 (a 10-second window): the best attempt
    not holding an exclusion counts; with entry=first only the first attempt is looked at."""
    journeys = {"user_one": [(event, f"2021-05-01 {at}") for event, at in events]}
    journeys["bystander"] = [("step two", "2021-04-01")]  # the event exists; this user never enters
    steps = ["step one", "step two"]
    assert _counts(journeys, steps, 10 * SECOND, exclude_events=["exclusion"], **POSTHOG) == expected
    assert _counts(journeys, steps, 10 * SECOND, exclude_events=["exclusion"], entry="first", exclusion="remove") == (
        first_attempt
    )


ADVANCED = {  # test_advanced_funnel_exclusions_between_steps: 'x' at different places in a 5-step funnel
    "person1": [
        ("user signed up", "01:00"), ("$pageview", "02:00"), ("x", "03:00"), ("insight viewed", "04:00"),
        ("x", "04:30"), ("invite teammate", "05:00"), ("x", "05:30"), ("pageview2", "06:00"),
    ],
    "person2": [
        ("user signed up", "01:00"), ("$pageview", "02:00"), ("insight viewed", "04:00"), ("x", "04:30"),
        ("invite teammate", "05:00"), ("x", "05:30"), ("pageview2", "06:00"),
    ],
    "person3": [
        ("user signed up", "01:00"), ("x", "01:30"), ("$pageview", "02:00"), ("insight viewed", "04:00"),
        ("invite teammate", "05:00"), ("x", "05:30"), ("pageview2", "06:00"),
    ],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("exclusion", "expected"),
    [
        ("x@1-2", 2),  # PostHog's funnel_from_step 0 to 1: person3 removed
        ("x@2-3", 2),  # 1 to 2: person1 removed
        ("x@3-4", 1),  # 2 to 3: persons 1 and 2 removed
        ("x@4-5", 0),  # 3 to 4: everyone removed
        ("x@2-4", 1),  # 1 to 3: persons 1 and 2 removed
    ],
)
def test_exclusions_between_chosen_steps(exclusion, expected):
    journeys = {user: [(e, f"2021-05-01 {at}") for e, at in events] for user, events in ADVANCED.items()}
    steps = ["user signed up", "$pageview", "insight viewed", "invite teammate", "pageview2"]
    counts = _counts(journeys, steps, exclude_events=[exclusion], **POSTHOG)
    assert counts[0] == expected and counts[4] == expected


@pytest.mark.slow
def test_two_exclusions_each_between_their_own_steps():
    """test_advanced_funnel_multiple_exclusions_between_steps: x between steps 1-2 and y between 3-4
    leave only person4."""
    day = "2021-05-01"
    journeys = {
        "person1": [("user signed up", "01:00"), ("x", "02:00"), ("$pageview", "03:00"), ("insight viewed", "04:00"),
                    ("y", "04:30"), ("invite teammate", "05:00"), ("pageview2", "06:00")],
        "person2": [("user signed up", "01:00"), ("y", "01:30"), ("$pageview", "02:00"), ("insight viewed", "04:00"),
                    ("y", "04:30"), ("invite teammate", "05:00"), ("x", "05:30"), ("pageview2", "06:00")],
        "person3": [("user signed up", "01:00"), ("x", "01:30"), ("$pageview", "02:00"), ("insight viewed", "04:00"),
                    ("invite teammate", "05:00"), ("x", "05:30"), ("pageview2", "06:00")],
        "person4": [("user signed up", "01:00"), ("$pageview", "02:00"), ("insight viewed", "04:00"),
                    ("invite teammate", "05:00"), ("pageview2", "06:00")],
    }  # fmt: skip
    journeys = {user: [(e, f"{day} {at}") for e, at in events] for user, events in journeys.items()}
    steps = ["user signed up", "$pageview", "insight viewed", "invite teammate", "pageview2"]
    assert _counts(journeys, steps, exclude_events=["x@1-2", "y@3-4"], **POSTHOG) == [1, 1, 1, 1, 1]


@pytest.mark.slow
@pytest.mark.parametrize(("window_days", "gap"), [(7, dt.timedelta(days=9)), (15 * SECOND, dt.timedelta(seconds=20))])
def test_a_step_after_the_conversion_window_does_not_count(window_days, gap):
    """test_funnel_conversion_window and ..._seconds: 10 users take step two inside the window, 15 after
    it; PostHog 25, 10, 0 (step three never happens)."""
    start = pd.Timestamp("2021-05-01")
    inside = int(window_days * 86400 / 2)
    journeys = {f"user_{i}": [("step one", str(start)), ("step two", str(start + pd.Timedelta(seconds=inside)))]
                for i in range(10)}  # fmt: skip
    journeys |= {f"user_{i}": [("step one", str(start)), ("step two", str(start + gap))] for i in range(10, 25)}
    journeys["user_0"].append(("step three", "2021-04-01"))  # an event 'step three' exists, before entering
    assert _counts(journeys, ["step one", "step two", "step three"], window_days, **POSTHOG) == [25, 10, 0]


def test_a_later_incomplete_try_does_not_replace_the_completed_one():
    """test_funnel_with_multiple_incomplete_tries (one-day window): person1 completes the funnel on May 1
    and later makes two partial tries; counted once, with the completed try's one hour to the second step."""
    journeys = {
        "person1": [
            ("user signed up", "2021-05-01 01:00"), ("$pageview", "2021-05-01 02:00"),
            ("something else", "2021-05-01 03:00"),
            ("user signed up", "2021-05-03 04:00"), ("$pageview", "2021-05-03 05:00"),
            ("user signed up", "2021-05-04 07:00"), ("$pageview", "2021-05-04 10:00"),
        ]
    }  # fmt: skip
    steps = ["user signed up", "$pageview", "something else"]
    ds = load_dataset({"events": _log(journeys)}, snapshot_at=SNAPSHOT)
    result = funnel.run(ds, funnel.Params(steps=steps, window_days=1, **POSTHOG))
    assert result.overall.users.tolist() == [1, 1, 1]
    assert result.overall.median_hours_from_previous.tolist()[1] == pytest.approx(1.0)


@pytest.mark.slow
def test_time_to_convert_with_a_shorter_window():
    """test_funnel_times_with_different_conversion_windows: 3 entered, 2 reach the pageview within 14
    days; with a 5-minute window only the one 5 minutes after signing up."""
    journeys = {
        "stopped_after_signup1": [("user signed up", "2020-01-02 14:00"), ("pageview", "2020-01-02 14:05")],
        "stopped_after_signup2": [("user signed up", "2020-01-02 14:03")],
        "stopped_after_signup3": [("user signed up", "2020-01-02 12:00"), ("pageview", "2020-01-02 12:15")],
    }
    assert _counts(journeys, ["user signed up", "pageview"], 14, **POSTHOG) == [3, 2]
    assert _counts(journeys, ["user signed up", "pageview"], 5 / 1440, **POSTHOG) == [3, 1]


def test_the_best_attempt_counts_a_user_whose_first_try_ran_out_of_time():
    """A shop's view → purchase in 7 days: a first view on day 0, another on day 10, a purchase on day
    11. The first attempt's window ended on day 7 (a drop); the second converts (what dashboards show)."""
    journeys = {"u": [("view", "2021-05-01"), ("view", "2021-05-11"), ("purchase", "2021-05-12")]}
    assert _counts(journeys, ["view", "purchase"], 7, entry="first") == [1, 0]
    assert _counts(journeys, ["view", "purchase"], 7, entry="best") == [1, 1]


def test_a_user_is_in_the_window_while_any_attempt_is_open():
    """With entry=best a user's result can still change while any attempt's window is open: such a user
    is counted apart (in the window), never as a drop."""
    journeys = {
        "old": [("view", "2021-05-01")],
        "recent": [("view", "2021-05-01"), ("view", "2021-05-30")],  # second attempt open at the snapshot
        "bystander": [("purchase", "2021-04-01")],
    }
    ds = load_dataset({"events": _log(journeys)}, snapshot_at=SNAPSHOT)
    result = funnel.run(ds, funnel.Params(steps=["view", "purchase"], window_days=7, entry="best"))
    assert result.overall.users.tolist() == [1, 0]
    assert result.overall.in_window_reached.tolist() == [1, 0] and result.overall.in_window_waiting.tolist() == [0, 1]


def test_users_removed_by_an_exclusion_are_counted_apart():
    ds = load_dataset({"events": _log(NO_END_EVENT)}, snapshot_at=SNAPSHOT)
    params = funnel.Params(steps=["user signed up", "paid"], window_days=1, exclude_events=["x"], **POSTHOG)
    assert funnel.run(ds, params).removed == 2


@pytest.mark.parametrize("text", ["x@2-1", "x@0-1", "x@1-3"])
def test_an_exclusion_between_steps_the_funnel_does_not_have_is_refused(text):
    ds = load_dataset({"events": _log(NO_END_EVENT)}, snapshot_at=SNAPSHOT)
    with pytest.raises(DataError) as caught:
        funnel.run(ds, funnel.Params(steps=["user signed up", "paid"], exclude_events=[text]))
    assert "exclude_events" in str(caught.value) and text in str(caught.value)


@pytest.mark.slow
def test_best_equals_first_when_every_user_tries_once():
    """One attempt per user: both entries give the same funnel, cell for cell (the sample world, users
    with a single signup)."""
    from userops_lib.data import load_dataset as load

    ds = load("data/sample")
    first = funnel.run(ds, funnel.Params(steps=["signup", "session", "purchase"]))
    best = funnel.run(ds, funnel.Params(steps=["signup", "session", "purchase"], entry="best"))
    pd.testing.assert_frame_equal(first.table, best.table)
