"""Loading and validating datasets: every error's message, set-aside counts, formats and sources."""

import datetime as dt

import ibis
import pandas as pd
import pytest

from tests.conftest import DATA, EVENTS_CSV, USERS_CSV
from userops_lib.data import load_dataset
from userops_lib.errors import DataError

BASIC = {"tables": {"users": {"path": "users.csv"}, "events": {"path": "events.csv"}}}


def _problems(path):
    with pytest.raises(DataError) as caught:
        load_dataset(path)
    return caught.value


def test_a_clean_dataset_loads_with_canonical_types(make_dataset):
    ds = load_dataset(make_dataset({"users.csv": USERS_CSV, "events.csv": EVENTS_CSV}, BASIC))
    assert ds.events.schema()["event_at"].is_timestamp()
    assert ds.events.schema()["revenue"].is_floating()
    assert ds.users.schema()["user_id"].is_integer()
    assert ds.attributes("users") == ["channel"]
    assert ds.events.count().execute() == 4
    assert ds.events.revenue.sum().execute() == pytest.approx(30.5)
    assert ds.quality.users == 3
    assert ds.snapshot_at == dt.datetime(2024, 1, 5, 12, 0)
    assert ds.quality.rows_set_aside == 0


def test_missing_mapped_column_names_table_column_and_available_columns(make_dataset):
    manifest = {"tables": {"events": {"path": "events.csv", "columns": {"user_id": "customer"}}}}
    error = _problems(make_dataset({"events.csv": EVENTS_CSV}, manifest))
    text = str(error)
    assert "table 'events', column 'customer': column 'customer' (for canonical 'user_id') is not in the source" in text
    assert "example 'user_id, event_at, event, revenue'" in text


def test_unmapped_required_column_says_how_to_map_it(make_dataset):
    error = _problems(
        make_dataset(
            {"events.csv": "customer,event_at\n1,2024-01-01\n"}, {"tables": {"events": {"path": "events.csv"}}}
        )
    )
    assert "no column maps to the required canonical column 'user_id'" in str(error)
    assert "tables.events.columns.user_id: <source column>" in str(error)


def test_unparseable_timestamp_counts_rows_and_shows_one(make_dataset):
    events = EVENTS_CSV + "2,not a date,session,\n2,also bad,session,\n"
    error = _problems(make_dataset({"users.csv": USERS_CSV, "events.csv": events}, BASIC))
    [problem] = error.problems
    assert (problem.table, problem.column, problem.rows) == ("events", "event_at", 2)
    assert problem.example in ("not a date", "also bad")
    assert "format" in problem.fix


def test_timestamp_with_a_declared_format(make_dataset):
    manifest = {
        "tables": {"events": {"path": "e.csv", "columns": {"event_at": {"column": "day", "format": "%d/%m/%Y"}}}}
    }
    ds = load_dataset(make_dataset({"e.csv": "user_id,day\n1,13/02/2024\n2,01/03/2024\n"}, manifest))
    got = ds.events.order_by("user_id").event_at.execute().tolist()
    assert got == [pd.Timestamp("2024-02-13"), pd.Timestamp("2024-03-01")]


def test_wrong_type_and_negative_revenue_are_reported_together(make_dataset):
    events = EVENTS_CSV + "2,2024-01-03 10:00:00,purchase,abc\n3,2024-01-04 09:00:00,refund,-5\n"
    error = _problems(make_dataset({"users.csv": USERS_CSV, "events.csv": events}, BASIC))
    by_message = {p.message: p for p in error.problems}
    assert by_message["values that are not numbers"].example == "abc"
    assert by_message["values that are not numbers"].rows == 1
    assert by_message["negative revenue"].example == "-5"
    assert by_message["negative revenue"].rows == 1
    assert all(p.column == "revenue" for p in error.problems)


def test_negative_revenue_in_a_numeric_column(make_dataset):
    events = "user_id,event_at,revenue\n1,2024-01-01,3.5\n1,2024-01-02,-5\n2,2024-01-02,-1.25\n"
    error = _problems(make_dataset({"events.csv": events}, {"tables": {"events": {"path": "events.csv"}}}))
    [problem] = error.problems
    assert (problem.message, problem.rows) == ("negative revenue", 2)
    assert problem.example in (-5.0, -1.25)


def test_null_and_duplicate_user_ids_in_users(make_dataset):
    users = USERS_CSV + ",2024-01-05 00:00:00,organic\n2,2024-01-06 00:00:00,paid\n2,2024-01-07 00:00:00,paid\n"
    error = _problems(make_dataset({"users.csv": users}, {"tables": {"users": {"path": "users.csv"}}}))
    by_message = {p.message: p for p in error.problems}
    assert by_message["user_id is null"].rows == 1
    duplicate = by_message["user_id is not unique (rows beyond the first of each id)"]
    assert (duplicate.rows, duplicate.example) == (2, 2)


def test_empty_table(make_dataset):
    error = _problems(
        make_dataset({"events.csv": "user_id,event_at\n"}, {"tables": {"events": {"path": "events.csv"}}})
    )
    [problem] = error.problems
    assert (problem.table, problem.message, problem.rows) == ("events", "the table is empty", 0)


def test_unknown_file(make_dataset):
    error = _problems(make_dataset({}, {"tables": {"events": {"path": "missing.csv"}}}))
    [problem] = error.problems
    assert problem.message == "unknown file: it does not exist"
    assert problem.example.endswith("missing.csv")


def test_flag_values_outside_the_stated_ones(make_dataset):
    manifest = {
        "tables": {
            "users": {
                "path": "u.csv",
                "columns": {
                    "duration": {"column": "tenure", "unit": "months"},
                    "churned": {"column": "Churn", "true_values": ["Yes"], "false_values": ["No"]},
                },
            }
        }
    }
    error = _problems(make_dataset({"u.csv": "user_id,tenure,Churn\na,3,Yes\nb,5,No\nc,1,Maybe\n"}, manifest))
    [problem] = error.problems
    assert (problem.column, problem.rows, problem.example) == ("Churn", 1, "Maybe")


def test_set_aside_rows_are_counted_by_reason_and_kept(make_dataset):
    events = EVENTS_CSV + (
        "9,2024-01-03 00:00:00,session,\n"  # unknown user
        "2,2024-01-01 00:00:00,session,\n"  # before user 2 signed up
        "1,2024-02-01 00:00:00,session,\n"  # after the snapshot
        "1,2024-02-02 00:00:00,session,\n"  # after the snapshot
        ",2024-01-03 00:00:00,session,\n"  # no user
    )
    manifest = dict(BASIC, snapshot_at="2024-01-31")
    ds = load_dataset(make_dataset({"users.csv": USERS_CSV, "events.csv": events}, manifest))
    counts = {s.reason: s.rows for s in ds.quality.set_aside}
    assert counts == {
        "user not in the users table": 1,
        "before the user's signup": 1,
        "after the snapshot": 2,
        "missing user_id": 1,
    }
    assert ds.events.count().execute() == 4
    assert ds.quality.tables[1].rows_read == 9
    assert ds.quality.tables[1].rows_kept == 4
    aside = ds.set_aside("events").execute()
    assert sorted(aside.set_aside_reason.value_counts().to_dict().items()) == sorted(counts.items())
    assert "set aside 5 rows" in str(ds.quality)


def test_default_snapshot_ignores_future_events(make_dataset):
    events = EVENTS_CSV + "1,2099-01-01 00:00:00,session,\n"
    ds = load_dataset(make_dataset({"users.csv": USERS_CSV, "events.csv": events}, BASIC))
    assert ds.snapshot_at == dt.datetime(2024, 1, 5, 12, 0)
    assert [(s.reason, s.rows) for s in ds.quality.set_aside] == [("after the snapshot", 1)]


def test_wall_times_are_read_in_the_manifest_time_zone_and_offsets_honoured(make_dataset):
    events = "user_id,event_at\n1,2024-01-15 12:00:00\n2,2024-07-15 12:00:00\n3,2024-07-15T12:00:00+05:30\n"
    manifest = {"timezone": "Europe/Berlin", "tables": {"events": {"path": "e.csv"}}}
    ds = load_dataset(make_dataset({"e.csv": events}, manifest))
    got = ds.events.order_by("user_id").event_at.execute().tolist()
    # Berlin is UTC+1 in January, UTC+2 in July; an explicit offset wins over the zone.
    assert got == [pd.Timestamp("2024-01-15 11:00"), pd.Timestamp("2024-07-15 10:00"), pd.Timestamp("2024-07-15 06:30")]


def test_a_whitespace_transaction_log_described_by_the_manifest_alone(make_dataset):
    log = (
        "00001 19970101  1   11.77\n00002 19970112  1   12.00\n"
        "00002 19970112  5   77.00\n   00003 19970102  2   20.76\n"
    )
    manifest = {
        "tables": {
            "events": {
                "path": "CDNOW_master.txt",
                "format": "whitespace",
                "header": False,
                "names": ["cust", "date", "qty", "amount"],
                "columns": {"user_id": "cust", "event_at": {"column": "date", "format": "%Y%m%d"}, "revenue": "amount"},
            }
        }
    }
    ds = load_dataset(make_dataset({"CDNOW_master.txt": log}, manifest))
    frame = ds.events.order_by(["user_id", "revenue"]).execute()
    assert frame.user_id.tolist() == ["00001", "00002", "00002", "00003"]  # zero-padded ids stay text
    assert frame.event_at.tolist() == [
        pd.Timestamp(d) for d in ("1997-01-01", "1997-01-12", "1997-01-12", "1997-01-02")
    ]
    assert frame.revenue.tolist() == [11.77, 12.0, 77.0, 20.76]
    assert frame.qty.tolist() == [1, 1, 5, 2]


def test_a_ragged_whitespace_file_is_rejected(make_dataset):
    manifest = {
        "tables": {
            "events": {
                "path": "t.txt",
                "format": "whitespace",
                "header": False,
                "names": ["cust", "date"],
                "columns": {"user_id": "cust", "event_at": {"column": "date", "format": "%Y%m%d"}},
            }
        }
    }
    error = _problems(make_dataset({"t.txt": "1 19970101\n2 19970102 extra\n"}, manifest))
    assert error.problems[0].message == "lines without exactly 2 fields"
    assert error.problems[0].rows == 1


def test_pandas_frames_are_accepted_with_a_column_mapping():
    events = pd.DataFrame({"who": ["a", "b", "a"], "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])})
    ds = load_dataset({"events": events}, columns={"events": {"user_id": "who", "event_at": "when"}})
    assert ds.events.user_id.nunique().execute() == 2
    assert ds.events.schema()["user_id"].is_string()


def test_a_connection_url_with_canonical_table_names(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = ibis.duckdb.connect(str(path))
    con.create_table(
        "events", pd.DataFrame({"user_id": [1, 2], "event_at": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    )
    con.disconnect()
    ds = load_dataset(f"duckdb://{path}")
    assert ds.events.count().execute() == 2
    assert ds.quality.users == 2


def test_ids_fall_back_to_text_when_tables_disagree(make_dataset):
    users = "user_id\n1\n2\n"
    events = "user_id,event_at\n1,2024-01-01\nx7,2024-01-02\n"
    ds = load_dataset(make_dataset({"users.csv": users, "events.csv": events}, BASIC))
    assert ds.users.schema()["user_id"].is_string()
    assert [(s.reason, s.rows) for s in ds.quality.set_aside] == [("user not in the users table", 1)]


def test_duplicate_assignments_and_a_missing_control_arm(make_dataset):
    assignments = "user_id,campaign,arm\n1,c1,treat\n1,c1,treat\n2,c1,treat\n"
    manifest = {"tables": {"assignments": {"path": "a.csv"}}}
    error = _problems(make_dataset({"a.csv": assignments}, manifest))
    assert [p.message for p in error.problems] == ["users assigned more than once to the same campaign"]
    manifest = {"tables": {"assignments": {"path": "a.csv", "control_arm": "control"}}}
    error = _problems(make_dataset({"a.csv": "user_id,campaign,arm\n1,c1,treat\n2,c1,other\n"}, manifest))
    assert error.problems[0].message == "control arm 'control' does not occur in every campaign"


def test_the_error_text_is_one_screen(make_dataset):
    events = EVENTS_CSV + "2,not a date,session,-5\n"
    error = _problems(make_dataset({"users.csv": USERS_CSV, "events.csv": events}, BASIC))
    lines = str(error).splitlines()
    assert len(lines) <= 24
    assert max(len(line) for line in lines) < 200


def test_a_manifest_can_point_at_tables_in_a_database(make_dataset, tmp_path):
    path = tmp_path / "shop.duckdb"
    con = ibis.duckdb.connect(str(path))
    con.create_table(
        "orders",
        pd.DataFrame(
            {
                "customer": ["a", "b", "b"],
                "ordered": ["2024-01-01", "2024-01-02", "2024-01-05"],
                "amount": [5.0, 7.5, 2.5],
            }
        ),
    )
    con.disconnect()
    manifest = {
        "connection": f"duckdb://{path}",
        "tables": {
            "events": {
                "table": "orders",
                "columns": {"user_id": "customer", "event_at": "ordered", "revenue": "amount"},
            }
        },
    }
    ds = load_dataset(make_dataset({}, manifest))
    assert ds.events.revenue.sum().execute() == 15.0
    assert ds.events.event_at.max().execute() == pd.Timestamp("2024-01-05")
    assert ds.quality.tables[0].source == "table orders"


def test_a_segment_report_counts_the_segments_users_not_the_whole_datasets():
    """A filter_column/filter_value report said 'users: 10,000' (the whole dataset) in its method section."""
    ds = load_dataset(DATA / "sample")
    organic = ds.restrict("channel", "organic")
    expected = int(ds.users.filter(ds.users.channel == "organic").count().execute())
    assert 0 < expected < ds.quality.users == 10_000
    assert organic.quality.users == expected
    assert organic.quality.users_in_dataset == 10_000
    assert f"users     {expected:,} with channel = organic (of 10,000 in the dataset" in str(organic.quality)


@pytest.mark.slow
def test_event_properties_serve_as_user_attributes_by_their_first_value(tmp_path):
    """A clickstream's country lives in the events file: filter_column, cohort_by and segment_by refused it
    (one with exit 2, one with exit 1 after 9 s). A user's value is the one on their first event that has one."""
    from userops_lib import preflight
    from userops_lib.analyses import churn_survival as survival
    from userops_lib.analyses import cohort_retention as cohorts

    rows = []
    for user in range(60):
        first = pd.Timestamp("2024-01-01") + pd.Timedelta(days=user % 20)
        country = ["DE", "US", "FR"][user % 3]
        days = range(0, 5 + (user % 7) * 10, 5)
        rows += [
            {
                "user_id": f"u{user}",
                "event_at": first + pd.Timedelta(days=d, hours=1),
                "country": country if d == 0 else "XX",
            }
            for d in days
        ]
    ds = load_dataset({"events": pd.DataFrame(rows)}, snapshot_at="2024-06-01")
    assert ds.event_attributes() == ["country"]
    assert preflight.problems({"cohort_by": "country"}, ds, cohorts.Params(cohort_by="country")) == []
    assert preflight.problems({}, ds, cohorts.Params(cohort_by="region"))[0].column == "cohort_by"  # and can fail
    us = ds.restrict("country", "US")
    assert us.quality.users == 20 and set(us.events.execute().user_id) == {f"u{u}" for u in range(1, 60, 3)}
    retention = cohorts.run(ds, cohorts.Params(period="week", cohort_by="country"))
    sizes = retention.cells.groupby("group_value").cohort_size.sum() / retention.cells.period.nunique()
    assert sorted(retention.cells.group_value.unique()) == ["DE", "FR", "US"]  # never 'XX', a later value
    assert sizes.to_dict() == {"DE": 20, "FR": 20, "US": 20}
    churn = survival.run(ds, survival.Params(segment_by="country", covariates=["country"]))
    assert set(churn.km.km.segment) == {"all users", "DE", "FR", "US"}
