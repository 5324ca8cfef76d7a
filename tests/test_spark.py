"""Reading data on PySpark (local mode): what only Spark does differently (Java date patterns, Parquet
timestamps, text files refused) read alike or refused with the fix. Every analysis' reductions on Spark
and PostgreSQL are the engine matrix, ``tests/test_engines.py``. Needs the [spark] extra and Java 17;
`.ci/run` installs both, so this module never skips.
"""

from __future__ import annotations

import pandas as pd
import pytest

from userops_lib import engine
from userops_lib.data import load_dataset
from userops_lib.errors import DataError

from .conftest import DATA, write_dataset

pytestmark = pytest.mark.slow  # a Spark session (Java)


@pytest.fixture(scope="module")
def spark():
    con = engine.connect("spark")
    yield con
    con._session.stop()


def _both(spark, source, calendar=None):
    on_duckdb = load_dataset(source, engine="duckdb", calendar=calendar)
    on_spark = load_dataset(source, engine="spark", calendar=calendar)
    assert on_duckdb.con.name == "duckdb" and on_spark.con.name == "pyspark"
    return on_duckdb, on_spark


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
