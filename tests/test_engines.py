"""The engine matrix: every registered analysis' reductions give identical tables on embedded DuckDB, on
PySpark (local mode) and on a real PostgreSQL server (Ibis' backend test suite is the model).

An analysis is an engine part (Ibis reductions to small tables) and a statistics part (pandas, lifelines,
statsmodels on what comes back), so identical reductions give identical results: one test body runs each
analysis' ``REDUCTIONS`` (declared in its folder, handed out by the registry, so a new analysis is checked
here unasked) on every engine against DuckDB over the same data, and the overview end to end (every table,
finding and headline) checks that argument once. Floats to 1e-9 relative: sums may add in another order.

Spark reads the sample's Parquet files; PostgreSQL gets the same rows copied into typed tables
(``tests/warehouse.py``) and a dataset.yml naming ``connection:`` and ``table:``, as a team's warehouse
would. What an engine cannot do is declared in ``GAPS`` at the test: such a case must raise the declared
error (a gap that starts to work fails the test, so the declaration is removed).

Needs Java 17 and PostgreSQL's server binaries (Debian's ``postgresql``); ``.ci/run`` installs both and
``tests/postgres.sh`` starts the server (``make postgres``; or name one in ``$USEROPS_TEST_POSTGRES``).
Without PostgreSQL the PostgreSQL half is skipped locally and fails under CI.
"""

from __future__ import annotations

import gc
import os

import pandas as pd
import pytest

from userops_lib import analyses, engine
from userops_lib.analyses import overview
from userops_lib.analyses.campaign_uplift import experiment as uplift
from userops_lib.analyses.churn_survival import durations
from userops_lib.analyses.overview import engine as overview_engine
from userops_lib.data import load_dataset
from userops_lib.errors import DataError

from . import warehouse
from .conftest import DATA, write_dataset

pytestmark = pytest.mark.slow  # a Spark session (Java), a PostgreSQL database, every reduction three times

ENGINES = ("spark", "postgres")

# Every registered analysis' reductions (REDUCTIONS in its folder): a new analysis is checked here unasked.
REDUCTIONS = {f"{a.name}: {name}": reduce for a in analyses.every() for name, reduce in a.reductions().items()}

# Declared gaps, (engine, case) -> the error the case must raise there (Ibis' `notimpl` markers).
GAPS: dict[tuple[str, str], type[Exception]] = {
    # PostgreSQL has no strptime that returns NULL on a bad value (to_timestamp fails the query, with other
    # codes): a `format:` on a warehouse column is refused with the fix (store it as a timestamp).
    ("postgres", "text timestamps in a format"): DataError,
}


@pytest.fixture(scope="module")
def spark():
    con = engine.connect("spark")
    yield con
    con._session.stop()


@pytest.fixture(scope="module")
def postgres():
    """A database of our own on the PostgreSQL server, dropped at the end."""
    try:
        server = warehouse.server_url()
    except warehouse.NoServer as missing:
        if os.environ.get("CI"):
            pytest.fail(f"no PostgreSQL server: .ci/run must install Debian's postgresql ({missing})", pytrace=False)
        pytest.skip(f"no PostgreSQL server here: {missing}")
    database = warehouse.Database(server)
    yield database
    # The tables the datasets keep (Ibis caches: per-user aggregations in Dataset.shared) are dropped while
    # their connections are open, not by a finalizer after the database is gone (an ignored error then).
    for ds in database.datasets:
        ds.shared.clear()
    gc.collect()
    database.drop()


class Engines:
    """Datasets on each engine, loaded once per (engine, source, calendar): a folder read on DuckDB or Spark,
    or its tables copied once into the PostgreSQL database and read through a dataset.yml naming them."""

    def __init__(self, request, root):
        self.request, self.root, self.cache, self.copies = request, root, {}, {}

    def load(self, name: str, source, calendar: str | None = None):
        key = (name, str(source), calendar)
        if key not in self.cache:
            if name == "postgres":
                database = self.request.getfixturevalue("postgres")
                if str(source) not in self.copies:
                    folder = self.root / f"pg{len(self.copies)}"
                    self.copies[str(source)] = database.dataset(source, folder)
                ds = load_dataset(self.copies[str(source)], calendar=calendar)
                assert ds.con.name == "postgres"
                database.datasets.append(ds)
            else:
                if name == "spark":
                    self.request.getfixturevalue("spark")
                ds = load_dataset(source, engine=name, calendar=calendar)
                assert ds.con.name == {"spark": "pyspark"}.get(name, name)
            self.cache[key] = ds
        return self.cache[key]


@pytest.fixture(scope="module")
def engines(request, tmp_path_factory):
    return Engines(request, tmp_path_factory.mktemp("engines"))


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


def agree(name: str, case: str, reduce, on_duckdb, load) -> int:
    """``reduce`` gives DuckDB's tables on engine ``name`` (the rows compared), or raises the declared gap."""
    gap = GAPS.get((name, case))
    if gap is not None:
        with pytest.raises(gap):
            reduce(load())
        return 0
    return assert_reductions_identical(reduce(on_duckdb), reduce(load()))


@pytest.mark.parametrize("case", list(REDUCTIONS))
@pytest.mark.parametrize("name", ENGINES)
def test_reductions_are_identical_on_every_engine(engines, name, case):
    on_duckdb = engines.load("duckdb", DATA / "sample")
    rows = agree(name, case, REDUCTIONS[case], on_duckdb, lambda: engines.load(name, DATA / "sample"))
    assert rows > 0 or (name, case) in GAPS  # tables with content were compared, not empty ones


# The daily recurring cohorts are left out in Beijing days only for time: the same calendar calls serve them.
BEIJING = [case for case in REDUCTIONS if case != "cohort_retention: daily brackets, recurring"]


@pytest.mark.parametrize("case", BEIJING)
@pytest.mark.parametrize("name", ENGINES)
def test_reductions_in_beijing_days_are_identical_on_every_engine(engines, name, case):
    """The sample counted in Beijing days (UTC+8): every bucket moves, on every engine alike."""
    on_duckdb = engines.load("duckdb", DATA / "sample", "Asia/Shanghai")
    reduce = REDUCTIONS[case]
    assert agree(name, case, reduce, on_duckdb, lambda: engines.load(name, DATA / "sample", "Asia/Shanghai")) > 0
    if name == ENGINES[0] and case in (
        "overview: KPIs and attributes",
        "cohort_retention: weekly, on",
        "segment_profiling: features, lifecycle and recent activity",
        "customer_value: summary with a holdout",
    ):
        # ... and they are other numbers than the UTC days' (the comparison above is not of equal inputs).
        with pytest.raises(AssertionError):
            assert_reductions_identical(reduce(on_duckdb), reduce(engines.load("duckdb", DATA / "sample")))


@pytest.mark.parametrize("name", ENGINES)
def test_the_overview_is_identical_on_every_engine_end_to_end(engines, name):
    """The argument above, checked once: identical reductions, identical tables, findings and headlines."""
    params = overview.Params(period="week")
    ours = overview.run(engines.load("duckdb", DATA / "sample"), params)
    assert _same_frames(_tables(ours), _tables(overview.run(engines.load(name, DATA / "sample"), params))) > 10


@pytest.fixture(scope="module")
def parquet_copies(tmp_path_factory):
    """Telco (durations in a users table) and Hillstrom (measured outcomes) as Parquet, for every engine."""
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


@pytest.mark.parametrize("name", ENGINES)
def test_durations_from_a_users_table_are_identical_on_every_engine(engines, parquet_copies, name):
    def reduce(ds):
        table, unit, used = durations.user_durations(ds)
        return {
            "patterns": durations.aggregate(table, ["Contract", "InternetService"], max_levels=8),
            "overview_durations": overview_engine.durations(ds.users),
            "unit": (unit, used),
        }

    telco = parquet_copies / "telco"
    assert agree(name, "durations", reduce, engines.load("duckdb", telco), lambda: engines.load(name, telco)) > 10


@pytest.mark.parametrize("name", ENGINES)
def test_measured_outcomes_are_identical_on_every_engine(engines, parquet_copies, name):
    def reduce(ds):
        assert ds.quality.tables[0].rows_read == 64_000
        exp = uplift.experiment(ds, segment_by=["zip_code"])
        return {"outcomes": exp.frame, "sums": exp.sums}

    hillstrom = parquet_copies / "hillstrom"
    assert (
        agree(name, "outcomes", reduce, engines.load("duckdb", hillstrom), lambda: engines.load(name, hillstrom)) > 10
    )


@pytest.mark.parametrize("name", ENGINES)
def test_text_timestamps_in_a_format_and_a_time_zone_are_read_alike_or_refused(engines, tmp_path, name):
    """Wall times in Berlin as text with a strptime format: 01:30 CET is 00:30 UTC; 03:30 CEST (after the
    spring-forward gap) is 01:30 UTC, on every engine that reads formats."""
    events = pd.DataFrame({"user_id": [1, 1], "event_at": ["03/30/2025 01:30", "03/30/2025 03:30"]})
    folder = write_dataset(
        tmp_path / "berlin",
        {"events.parquet": events},
        {
            "name": f"berlin_{name}",
            "timezone": "Europe/Berlin",
            "tables": {
                "events": {
                    "path": "events.parquet",
                    "columns": {"event_at": {"column": "event_at", "format": "%m/%d/%Y %H:%M"}},
                }
            },
        },
    )

    def reduce(ds):
        return {"times": ds.events.select("user_id", "event_at")}

    on_duckdb = engines.load("duckdb", folder)
    assert on_duckdb.events.event_at.execute().sort_values().tolist() == [
        pd.Timestamp("2025-03-30 00:30"),
        pd.Timestamp("2025-03-30 01:30"),
    ]
    gap = GAPS.get((name, "text timestamps in a format"))
    if gap is not None:
        with pytest.raises(gap) as caught:
            engines.load(name, folder)
        assert "store the column as a timestamp" in str(caught.value) and "%m/%d/%Y %H:%M" in str(caught.value)
        return
    assert assert_reductions_identical(reduce(on_duckdb), reduce(engines.load(name, folder))) == 2
