"""Parity: every analysis gives identical tables on embedded DuckDB and on PySpark (local mode).

An analysis is an engine part (Ibis reductions to small tables) and a statistics part (pandas,
lifelines, statsmodels on what comes back), so identical reductions give identical results: the parity
tests compare each analysis' reductions on both engines over the same Parquet files, and the overview
end to end (every table, finding and headline) as a check of that argument. Floats to 1e-9 relative:
sums may add in another order. Needs the [spark] extra and Java 17; `.ci/run` installs both, so this
module never skips.
"""

from __future__ import annotations

import pandas as pd
import pytest

from userops_lib import analyses, engine
from userops_lib.analyses import overview
from userops_lib.analyses.campaign_uplift import experiment as uplift
from userops_lib.analyses.churn_survival import durations
from userops_lib.analyses.overview import engine as overview_engine
from userops_lib.data import load_dataset
from userops_lib.errors import DataError

from .conftest import DATA, write_dataset

pytestmark = pytest.mark.slow  # a Spark session (Java) and every reduction twice


@pytest.fixture(scope="module")
def spark():
    con = engine.connect("spark")
    yield con
    con._session.stop()


@pytest.fixture(scope="module")
def parquet_copies(tmp_path_factory):
    """Telco (durations in a users table) and Hillstrom (measured outcomes) as Parquet, for Spark."""
    root = tmp_path_factory.mktemp("parquet")
    telco = pd.read_csv(DATA / "telco_churn" / "telco_churn.csv", na_values=[" "], keep_default_na=False)
    hillstrom = pd.read_csv(DATA / "hillstrom" / "hillstrom.csv")
    hillstrom.insert(0, "customer", range(1, len(hillstrom) + 1))
    write_dataset(
        root / "telco",
        {"users.parquet": telco},
        {
            "name": "telco",
            "tables": {
                "users": {
                    "path": "users.parquet",
                    "columns": {
                        "user_id": "customerID",
                        "duration": {"column": "tenure", "unit": "months"},
                        "churned": {"column": "Churn", "true_values": ["Yes"], "false_values": ["No"]},
                    },
                }
            },
        },
    )
    write_dataset(
        root / "hillstrom",
        {"assignments.parquet": hillstrom},
        {
            "name": "hillstrom",
            "currency": "$",
            "tables": {
                "assignments": {
                    "path": "assignments.parquet",
                    "control_arm": "No E-Mail",
                    "outcomes": ["visit", "conversion", "spend"],
                    "columns": {"user_id": "customer", "campaign": {"value": "hillstrom"}, "arm": "segment"},
                }
            },
        },
    )
    return root


def _both(spark, source, calendar=None):
    on_duckdb = load_dataset(source, engine="duckdb", calendar=calendar)
    on_spark = load_dataset(source, engine="spark", calendar=calendar)
    assert on_duckdb.con.name == "duckdb" and on_spark.con.name == "pyspark"
    return on_duckdb, on_spark


def _tables(result) -> dict[str, pd.DataFrame]:
    tables = result.tables() if callable(result.tables) else result.tables
    out = {name: frame for name, frame in tables.items()}
    out["findings"] = pd.DataFrame({"text": [str(f) for f in result.findings]})
    out["headlines"] = pd.DataFrame({"text": [str(h) for h in result.headlines]})
    return out


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


def _same_frames(ours: dict[str, pd.DataFrame], theirs: dict[str, pd.DataFrame]) -> int:
    """Every frame equal in any row order (floats to 1e-9 relative); the number of rows compared."""
    assert ours.keys() == theirs.keys()
    rows = 0
    for name in ours:
        pd.testing.assert_frame_equal(
            _canonical(ours[name]), _canonical(theirs[name]), check_dtype=False, rtol=1e-9, obj=name
        )
        rows += len(ours[name])
    return rows


def assert_identical(duck, spark_result) -> int:
    return _same_frames(_tables(duck), _tables(spark_result))


def _reduced(tables: dict) -> dict[str, pd.DataFrame]:
    """Each engine output as a frame (an Ibis table executed, numbers as one-row frames)."""
    out = {}
    for name, value in tables.items():
        if hasattr(value, "execute"):
            value = value.execute()
        elif not isinstance(value, pd.DataFrame):
            value = pd.DataFrame({"value": list(value) if isinstance(value, tuple) else [value]})
        out[name] = value
    return out


def assert_reductions_identical(ours: dict, theirs: dict) -> int:
    return _same_frames(_reduced(ours), _reduced(theirs))


# Every registered analysis' reductions (REDUCTIONS in its folder): a new analysis is checked here unasked.
REDUCTIONS = {f"{a.name}: {name}": reduce for a in analyses.every() for name, reduce in a.reductions().items()}


@pytest.fixture(scope="module")
def sample_pair(spark):
    return _both(spark, DATA / "sample")


@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_sample_reductions_are_identical_on_spark(sample_pair, name):
    on_duckdb, on_spark = sample_pair
    rows = assert_reductions_identical(REDUCTIONS[name](on_duckdb), REDUCTIONS[name](on_spark))
    assert rows > 10  # tables with content were compared, not empty ones


@pytest.fixture(scope="module")
def beijing_pair(spark):
    """The sample counted in Beijing days (UTC+8): every bucket moves, on both engines alike."""
    return _both(spark, DATA / "sample", calendar="Asia/Shanghai")


# The daily recurring cohorts are left out in Beijing days only for time: the same calendar calls serve them.
BEIJING = [name for name in REDUCTIONS if name != "cohort_retention: daily brackets, recurring"]


@pytest.mark.parametrize("name", BEIJING)
def test_reductions_in_beijing_days_are_identical_on_spark(beijing_pair, sample_pair, name):
    on_duckdb, on_spark = beijing_pair
    ours = REDUCTIONS[name](on_duckdb)
    assert assert_reductions_identical(ours, REDUCTIONS[name](on_spark)) > 10
    if name in (
        "overview: KPIs and attributes",
        "cohort_retention: weekly, on",
        "segment_profiling: features, lifecycle and recent activity",
        "customer_value: summary with a holdout",
    ):
        # ... and they are other numbers than the UTC days' (the comparison above is not of equal inputs).
        with pytest.raises(AssertionError):
            assert_reductions_identical(ours, REDUCTIONS[name](sample_pair[0]))


def test_the_overview_is_identical_on_spark_end_to_end(sample_pair):
    """The argument above, checked once: identical reductions, identical tables, findings and headlines."""
    on_duckdb, on_spark = sample_pair
    params = overview.Params(period="week")
    assert assert_identical(overview.run(on_duckdb, params), overview.run(on_spark, params)) > 10


def test_durations_from_a_users_table_are_identical_on_spark(spark, parquet_copies):
    on_duckdb, on_spark = _both(spark, parquet_copies / "telco")

    def reduce(ds):
        table, unit, used = durations.user_durations(ds)
        return {
            "patterns": durations.aggregate(table, ["Contract", "InternetService"], max_levels=8),
            "overview_durations": overview_engine.durations(ds.users),
            "unit": (unit, used),
        }

    assert assert_reductions_identical(reduce(on_duckdb), reduce(on_spark)) > 10


def test_measured_outcomes_are_identical_on_spark(spark, parquet_copies):
    on_duckdb, on_spark = _both(spark, parquet_copies / "hillstrom")
    assert on_spark.quality.tables[0].rows_read == 64_000

    def reduce(ds):
        exp = uplift.experiment(ds, segment_by=["zip_code"])
        return {"outcomes": exp.frame, "sums": exp.sums}

    assert assert_reductions_identical(reduce(on_duckdb), reduce(on_spark)) > 10


def test_text_timestamps_in_a_time_zone_parse_alike(spark, make_dataset):
    events = pd.DataFrame({"user_id": [1, 1, 2], "event_at": ["03/30/2025 01:30", "03/30/2025 03:30", "garbage"]})
    folder = make_dataset(
        {"events.parquet": events},
        {
            "timezone": "Europe/Berlin",
            "tables": {
                "events": {
                    "path": "events.parquet",
                    "columns": {"event_at": {"column": "event_at", "format": "%m/%d/%Y %H:%M"}},
                }
            },
        },
    )
    for name in ("duckdb", "spark"):
        with pytest.raises(DataError) as caught:
            load_dataset(folder, engine=name, snapshot_at="2025-04-01")
        # Either engine reads the two good values and refuses the bad one with the same message.
        assert "garbage" in str(caught.value) and "1 row" in str(caught.value)
    good = events.iloc[:2]
    folder = make_dataset(
        {"events.parquet": good},
        {
            "timezone": "Europe/Berlin",
            "tables": {
                "events": {
                    "path": "events.parquet",
                    "columns": {"event_at": {"column": "event_at", "format": "%m/%d/%Y %H:%M"}},
                }
            },
        },
    )
    times = [
        load_dataset(folder, engine=name).events.event_at.execute().sort_values().tolist()
        for name in ("duckdb", "spark")
    ]
    # 01:30 CET is 00:30 UTC; 03:30 CEST (after the spring-forward gap) is 01:30 UTC.
    assert times[0] == times[1] == [pd.Timestamp("2025-03-30 00:30"), pd.Timestamp("2025-03-30 01:30")]


def test_spark_refuses_text_files_with_the_fix(spark):
    with pytest.raises(DataError) as caught:
        load_dataset(DATA / "hillstrom", engine="spark")
    assert "reads Parquet files only" in str(caught.value) and "convert the file to Parquet" in str(caught.value)


def test_spark_explains_parquet_nanoseconds(spark, make_dataset):
    # pandas writes nanosecond timestamps by default; Spark refuses them.
    events = pd.DataFrame({"user_id": [1, 2], "event_at": pd.to_datetime(["2025-01-01 10:00", "2025-01-02 11:00"])})
    folder = make_dataset({"events.parquet": events})
    assert len(load_dataset(folder, engine="duckdb").events.execute()) == 2
    with pytest.raises(DataError) as caught:
        load_dataset(folder, engine="spark")
    assert "TIMESTAMP(NANOS" in str(caught.value) and "coerce_timestamps='us'" in str(caught.value)


def test_unknown_engine_is_refused():
    with pytest.raises(DataError) as caught:
        load_dataset(DATA / "sample", engine="snowflake")
    assert "unknown engine 'snowflake'" in str(caught.value)


def test_epoch_times_and_event_properties_as_attributes_are_identical_on_spark(spark, tmp_path):
    """Epoch seconds become timestamps by interval arithmetic, and an event property stands for a user
    attribute by its value on the user's first event (argmin with a filter): both engines agree, by hand."""
    events = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 3],
            "ts": [1704103200, 1704189600.5, 1704103200, 1704276000],
            "country": ["DE", "US", None, "FR"],
        }
    )
    folder = write_dataset(
        tmp_path / "epoch",
        {"events.parquet": events},
        {
            "tables": {
                "events": {
                    "path": "events.parquet",
                    "columns": {"event_at": {"column": "ts", "format": "epoch_seconds"}},
                }
            }
        },
    )
    for ds in _both(spark, folder):
        times = ds.events.order_by(["user_id", "event_at"]).execute()
        assert times.event_at.tolist() == [
            pd.Timestamp("2024-01-01 10:00"),
            pd.Timestamp("2024-01-02 10:00:00.5"),
            pd.Timestamp("2024-01-01 10:00"),
            pd.Timestamp("2024-01-03 10:00"),
        ]
        first = ds.first_event_values(["country"]).order_by("user_id").execute()
        assert first.country.tolist() == ["DE", None, "FR"]
        assert ds.restrict("country", "DE").quality.users == 1
