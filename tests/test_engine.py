"""The engine connection: DuckDB's memory cap from the environment, and the strptime→Java mapping for Spark."""

from __future__ import annotations

import os

import pytest

from userops_lib import engine
from userops_lib.errors import DataError


def test_memory_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(engine.MEMORY_ENV, "1GB")
    con = engine.connect("duckdb")
    # DuckDB reports 1 GB (10^9 bytes) in binary units.
    assert con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0] == "953.6 MiB"


def _mib(shown: str) -> float:
    """DuckDB's shown memory setting ("2.9 GiB", "953.6 MiB") in MiB."""
    number, unit = shown.split()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "TiB": 1024**2}[unit]


def test_without_the_variable_duckdb_gets_an_eighth_of_the_ram(monkeypatch):
    import duckdb

    monkeypatch.delenv(engine.MEMORY_ENV, raising=False)
    setting = "SELECT current_setting('memory_limit')"
    ours = _mib(engine.connect("duckdb").raw_sql(setting).fetchone()[0])
    # DuckDB's own default is 80% of the RAM, so an eighth is its default / 6.4 (but never under 1 GB).
    own = _mib(duckdb.connect().execute(setting).fetchone()[0])
    assert ours == pytest.approx(max(own / 6.4, 1024), rel=0.03)


def test_none_leaves_duckdb_its_own_default(monkeypatch):
    import duckdb

    monkeypatch.setenv(engine.MEMORY_ENV, "None")
    assert engine.memory_limit() is None
    con = engine.connect("duckdb")
    own = duckdb.connect().execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0] == own


def test_a_memory_limit_that_is_not_a_size_is_refused(monkeypatch):
    monkeypatch.setenv(engine.MEMORY_ENV, "lots; DROP TABLE users")
    with pytest.raises(DataError) as caught:
        engine.connect("duckdb")
    assert "USEROPS_MEMORY_LIMIT is not a size" in str(caught.value)


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_each_report_job_gets_its_share_of_half_the_ram_and_of_the_cores(monkeypatch, jobs):
    import duckdb

    monkeypatch.delenv(engine.MEMORY_ENV, raising=False)
    monkeypatch.delenv(engine.THREADS_ENV, raising=False)
    settings = engine.job_settings(jobs)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    con = engine.connect("duckdb")
    ours = _mib(con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0])
    # DuckDB's own default is 80% of the RAM: half of the RAM is that / 1.6, split between the jobs
    own = _mib(duckdb.connect().execute("SELECT current_setting('memory_limit')").fetchone()[0])
    assert ours == pytest.approx(max(own / 1.6 / jobs, 1024), rel=0.03)
    assert con.raw_sql("SELECT current_setting('threads')").fetchone()[0] == max(1, os.cpu_count() // jobs)


def test_a_limit_the_caller_set_wins_over_the_jobs_share(monkeypatch):
    monkeypatch.setenv(engine.MEMORY_ENV, "1GB")
    monkeypatch.setenv(engine.THREADS_ENV, "1")
    assert engine.job_settings(1) == {engine.MEMORY_ENV: "1GB", engine.THREADS_ENV: "1"}


@pytest.mark.parametrize("text", ["0", "two", "-1", "1.5"])
def test_threads_that_are_not_a_whole_number_are_refused(monkeypatch, text):
    monkeypatch.setenv(engine.THREADS_ENV, text)
    with pytest.raises(DataError) as caught:
        engine.connect("duckdb")
    assert caught.value.problems[0].key == "engine.threads"
    assert "USEROPS_THREADS is not a whole number of threads" in str(caught.value)


@pytest.mark.parametrize(
    ("strptime", "java"),
    [
        ("%Y-%m-%d %H:%M:%S", "yyyy-MM-dd HH:mm:ss"),
        ("%m/%d/%Y %I:%M %p", "MM/dd/yyyy hh:mm a"),
        ("%Y%m%dT%H%M", "yyyyMMdd'T'HHmm"),
        ("%d %b %Y", "dd MMM yyyy"),
    ],
)
def test_strptime_formats_become_java_patterns(strptime, java):
    assert engine.java_pattern(strptime) == java


def test_a_format_code_without_a_java_equivalent_is_refused():
    with pytest.raises(DataError) as caught:
        engine.java_pattern("%Y week %U")
    assert "%U has no Spark equivalent" in str(caught.value)


def test_frame_converts_as_execute_does():
    """Arrow's conversion (for per-user frames) gives the values and dtypes ibis' execute() gives."""
    import pandas as pd

    con = engine.connect("duckdb")
    table = con.sql(
        "SELECT * FROM (VALUES (3, 'b', 1.5, true, NULL), (1, NULL, NULL, false, 7), "
        "(2, 'a', 2.25, true, 8)) t(user_id, channel, monetary, bought, recency_days)"
    ).order_by("user_id")
    got, expected = engine.frame(table), table.execute()
    assert got.user_id.tolist() == [1, 2, 3]
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()  # int with a null: float64; text: object
    pd.testing.assert_frame_equal(got, expected)


def test_frame_orders_after_the_transfer():
    """order_by sorts in pandas, stably, with a fresh index: the same rows as ORDER BY in the engine."""
    con = engine.connect("duckdb")
    table = con.sql("SELECT * FROM (VALUES (3, 'c'), (1, 'a'), (2, 'b'), (10, 'j')) t(user_id, name)")
    got = engine.frame(table, order_by="user_id")
    assert got.user_id.tolist() == [1, 2, 3, 10]
    assert got.name.tolist() == ["a", "b", "c", "j"]
    assert got.index.tolist() == [0, 1, 2, 3]
