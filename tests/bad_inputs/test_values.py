"""Values: non-finite and malformed numbers, flags, ids and timestamps; odd but valid values kept as text."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.bad_inputs.corpus import Case, build, check, run
from userops_lib.data import load_dataset

EV = "tables:\n  events:\n    path: events.csv\n"


def events(*rows: str, header: str = "user_id,event_at,revenue") -> dict:
    return {"events.csv": header + "\n" + "\n".join(rows) + "\n"}


CASES = [
    Case("revenue_inf", events("1,2024-01-01,5", "2,2024-01-02,inf"), says=("not finite numbers", "example inf")),
    Case("revenue_minus_inf", events("1,2024-01-01,-inf"), says=("not finite",)),
    Case("revenue_nan", events("1,2024-01-01,NaN", "2,2024-01-02,1"), says=("not finite",)),
    Case("revenue_currency_sign", events("1,2024-01-01,$5.00"), says=("values that are not numbers", "'$5.00'")),
    Case("revenue_thousands", events('1,2024-01-01,"1,000"'), says=("values that are not numbers",)),
    Case("revenue_negative", events("1,2024-01-01,-5"), says=("negative revenue",)),
    Case("revenue_word", events("1,2024-01-01,free"), says=("values that are not numbers",)),
    Case(
        "duration_negative",
        {"users.csv": "id,t\n1,-3\n"},
        "tables:\n  users:\n    path: users.csv\n    columns: {user_id: id, duration: {column: t, unit: days}}\n",
        says=("negative durations",),
    ),
    Case(
        "duration_inf",
        {"users.csv": "id,t\n1,inf\n"},
        "tables:\n  users:\n    path: users.csv\n    columns: {user_id: id, duration: {column: t, unit: days}}\n",
        says=("not finite",),
    ),
    Case(
        "flag_unknown_value",
        {"users.csv": "id,t,c\n1,3,Yes\n2,3,maybe\n"},
        "tables:\n  users:\n    path: users.csv\n    columns:\n      user_id: id\n"
        "      duration: {column: t, unit: days}\n      churned: {column: c, true_values: [Yes], false_values: [No]}\n",
        says=("neither a 'true' nor a 'false' value", "'maybe'"),
    ),
    Case(
        "flag_unrecognised_word",
        {"users.csv": "id,t,c\n1,3,churned\n"},
        "tables:\n  users:\n    path: users.csv\n    columns:\n      user_id: id\n"
        "      duration: {column: t, unit: days}\n      churned: c\n",
        says=("neither a 'true' nor a 'false'",),
    ),
    # Ids
    Case(
        "ids_with_leading_zeros",
        events("007,2024-01-01,1", "7,2024-01-02,2", "0007,2024-01-03,3"),
        code=0,
        rows={"events": (3, 3)},
        users=3,
    ),
    Case(
        "ids_longer_than_int64",
        events("123456789012345678901,2024-01-01,1", "123456789012345678902,2024-01-02,1"),
        code=0,
        rows={"events": (2, 2)},
        users=2,
    ),
    Case("ids_negative_integers", events("-1,2024-01-01,1", "1,2024-01-02,1"), code=0, users=2),
    Case("ids_text", events("alice,2024-01-01,1", "Bob,2024-01-02,1", "bob,2024-01-03,1"), code=0, users=3),
    Case("ids_cjk", events("张三,2024-01-01,1", "李四,2024-01-02,1"), code=0, users=2),
    Case(
        "users_ids_zero_padded_unique",
        {"users.csv": "user_id\n007\n7\n0007\n"},
        code=0,
        rows={"users": (3, 3)},
        users=3,
    ),
    Case("users_ids_null", {"users.csv": "user_id,channel\n1,a\n,b\n"}, says=("user_id is null",)),
    Case("users_ids_duplicate", {"users.csv": "user_id\n5\n5\n6\n"}, says=("user_id is not unique", "example 5")),
    Case(
        "events_without_user_set_aside",
        events("1,2024-01-01,1", ",2024-01-02,1"),
        code=0,
        rows={"events": (2, 1)},
        says=("missing user_id",),
    ),
    Case(
        "events_of_unknown_users_set_aside",
        {"users.csv": "user_id\n1\n", **events("1,2024-01-01,1", "2,2024-01-02,1")},
        code=0,
        rows={"events": (2, 1), "users": (1, 1)},
        says=("user not in the users table",),
    ),
    Case(
        "assigned_twice",
        {"a.csv": "user_id,campaign,arm\n1,c,control\n1,c,control\n"},
        "tables:\n  assignments: {path: a.csv}\n",
        says=("assigned more than once",),
    ),
    # Timestamps and time zones
    Case(
        "epoch_seconds",
        events("1,1704103200,1", "2,1704189600.5,1", header="user_id,ts,revenue"),
        EV + "    columns: {event_at: {column: ts, format: epoch_seconds}}\n",
        code=0,
        rows={"events": (2, 2)},
    ),
    Case(
        "epoch_milliseconds",
        events("1,1704103200000,1", header="user_id,ts,revenue"),
        EV + "    columns: {event_at: {column: ts, format: epoch_milliseconds}}\n",
        code=0,
        rows={"events": (1, 1)},
    ),
    Case(
        "epoch_garbage",
        events("1,yesterday,1", header="user_id,ts,revenue"),
        EV + "    columns: {event_at: {column: ts, format: epoch_seconds}}\n",
        says=("do not parse as format 'epoch_seconds'", "'yesterday'"),
    ),
    Case("timestamp_garbage", events("1,not a date,1", "2,2024-01-01,1"), says=("do not parse as ISO 8601",)),
    Case(
        "timestamp_wrong_format",
        events("1,2024-01-01,1", header="user_id,d,revenue"),
        EV + "    columns: {event_at: {column: d, format: '%d/%m/%Y'}}\n",
        says=("do not parse as format '%d/%m/%Y'",),
    ),
    Case(
        "timestamp_format_without_code",
        events("1,2024-01-01,1"),
        EV + "    columns: {event_at: {column: event_at, format: 'YYYY-MM-DD'}}\n",
        says=("has no % code",),
    ),
    Case(
        "timestamp_offsets",
        events("1,2024-01-01T10:00:00+02:00,1", "2,2024-01-01T10:00:00Z,1"),
        code=0,
        rows={"events": (2, 2)},
    ),
    Case(
        "events_in_the_future_set_aside",
        events("1,2024-01-01,1", "2,2999-01-01,1"),
        code=0,
        rows={"events": (2, 1)},
        says=("after the snapshot",),
    ),
    Case(
        "events_before_signup_set_aside",
        {"users.csv": "user_id,signup_at\n1,2024-02-01\n", **events("1,2024-01-01,1", "1,2024-03-01,1")},
        code=0,
        rows={"events": (2, 1)},
        says=("before the user's signup",),
    ),
    # Strings that are markup or format strings elsewhere are plain values here.
    Case(
        "format_and_markup_values",
        events("1,2024-01-01,1", "2,2024-01-02,2", header="user_id,event_at,revenue")
        | {"users.csv": "user_id,channel\n1,{unknown}\n2,<b>$5 %s {0}</b>\n"},
        code=0,
        users=2,
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_a_value_is_checked_or_kept_as_written(case, tmp_path, capsys):
    check(case, build(tmp_path, case), capsys)


def test_epoch_times_are_the_instants_they_say(tmp_path, capsys):
    case = CASES[[c.id for c in CASES].index("epoch_seconds")]
    ds = load_dataset(build(tmp_path, case))
    times = sorted(ds.events.execute()["event_at"])
    assert times == [pd.Timestamp("2024-01-01 10:00:00"), pd.Timestamp("2024-01-02 10:00:00.5")]


def test_offsets_and_the_manifest_time_zone_give_utc(tmp_path, capsys):
    case = Case(
        "zones",
        events("1,2024-01-01T10:00:00+02:00,1", "2,2024-01-01 10:00:00,1"),
        "timezone: Asia/Shanghai\n" + EV,
        code=0,
    )
    ds = load_dataset(build(tmp_path, case))
    frame = ds.events.execute().sort_values("user_id")
    assert frame["event_at"].astype(str).tolist() == ["2024-01-01 08:00:00", "2024-01-01 02:00:00"]


def test_zero_padded_ids_stay_distinct_customers_in_rfm(tmp_path):
    """'007', '7' and '0007' bought separately: three RFM rows, not one user 7 with three purchases."""
    from userops_lib.analyses import segment_profiling as segments

    case = Case(
        "rfm_ids", events("007,2024-01-01,10", "7,2024-01-02,20", "0007,2024-01-03,30", "8,2024-01-04,0"), code=0
    )
    ds = load_dataset(build(tmp_path, case))
    ids = ds.events.execute()["user_id"].tolist()
    assert sorted(ids) == ["0007", "007", "7", "8"]
    frame = segments.features(ds).execute().set_index("user_id")
    assert frame.loc[["007", "7", "0007"], "monetary"].tolist() == [10.0, 20.0, 30.0]
    assert frame.loc[["007", "7", "0007"], "frequency"].tolist() == [1, 1, 1]


def test_markup_and_format_values_survive_the_load_unchanged(tmp_path, capsys):
    case = CASES[[c.id for c in CASES].index("format_and_markup_values")]
    ds = load_dataset(build(tmp_path, case))
    assert sorted(ds.users.execute()["channel"]) == ["<b>$5 %s {0}</b>", "{unknown}"]
    code, out, _ = run(capsys, "validate", str(tmp_path / case.id))
    assert code == 0
