"""The engine connection and the few backend functions Ibis does not name itself.

Everything heavy runs as Ibis expressions, on embedded DuckDB by default. The same expressions run on
PySpark when the engine is ``spark`` (``load_dataset(..., engine="spark")``, ``userops report --engine
spark``, or ``USEROPS_ENGINE=spark`` in the environment, which notebook kernels inherit).

On Spark the session comes from, in order: a session already active in the process (a Databricks or
``pyspark`` shell), ``SPARK_REMOTE`` (Spark Connect), else a new session whose master is
``USEROPS_SPARK_MASTER`` (default ``local[2]``). Every session's time zone is set to UTC, the time
zone canonical timestamps are in.

The builtin UDFs below map one-to-one onto engine functions; Ibis quotes their arguments, so no SQL is
built from user values. Each has a DuckDB and a Spark spelling; :func:`backend_of` picks one. PostgreSQL
(a ``connection:`` in dataset.yml) shares DuckDB's time-zone spelling and has no strptime.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from userops_lib.errors import DataError

TIMESTAMP = dt.Timestamp()
TIMESTAMP_UTC = dt.Timestamp(timezone="UTC")
ENGINES = ("duckdb", "spark")
ENV = "USEROPS_ENGINE"
MEMORY_ENV = "USEROPS_MEMORY_LIMIT"  # DuckDB's memory_limit per connection (e.g. 1GB); see connect()
NO_LIMIT = "none"  # USEROPS_MEMORY_LIMIT=none: DuckDB's own default (80% of the RAM)
THREADS_ENV = "USEROPS_THREADS"  # DuckDB's threads per connection; see connect()
RUN_SHARE = 2  # `userops report` hands its kernels' DuckDBs this fraction (1/2) of the RAM, split between the jobs


# -- DuckDB ---------------------------------------------------------------------------------------
@ibis.udf.scalar.builtin(name="try_strptime")
def _duckdb_strptime(text: str, format: str) -> TIMESTAMP:  # type: ignore[valid-type]
    """Parse ``text`` with strptime codes; NULL where it does not parse."""


@ibis.udf.scalar.builtin(name="timezone")
def _duckdb_wall_to_utc(zone: str, timestamp: TIMESTAMP) -> TIMESTAMP_UTC:  # type: ignore[valid-type]
    """Read a naive wall-clock ``timestamp`` as local time in ``zone`` (an IANA name)."""


@ibis.udf.scalar.builtin(name="timezone")
def _duckdb_utc_wall(zone: str, timestamp: TIMESTAMP_UTC) -> TIMESTAMP:  # type: ignore[valid-type]
    """The naive wall-clock time of an instant in ``zone``."""


# -- Spark (session time zone UTC) ----------------------------------------------------------------
@ibis.udf.scalar.builtin(name="try_to_timestamp")
def _spark_to_timestamp(text: str, format: str) -> TIMESTAMP:  # type: ignore[valid-type]
    """Parse ``text`` with a Java date-time pattern; NULL where it does not parse."""


@ibis.udf.scalar.builtin(name="from_utc_timestamp")
def _spark_utc_to_wall(timestamp: TIMESTAMP, zone: str) -> TIMESTAMP:  # type: ignore[valid-type]
    """The wall-clock time in ``zone`` of a UTC instant (given as UTC wall time)."""


@ibis.udf.scalar.builtin(name="to_utc_timestamp")
def _spark_wall_to_utc(timestamp: TIMESTAMP, zone: str) -> TIMESTAMP:  # type: ignore[valid-type]
    """Read a wall-clock ``timestamp`` as local time in ``zone``; the UTC instant, as UTC wall time."""


_JAVA_PATTERNS = {
    "%Y": "yyyy",
    "%y": "yy",
    "%m": "MM",
    "%d": "dd",
    "%H": "HH",
    "%I": "hh",
    "%M": "mm",
    "%S": "ss",
    "%f": "SSSSSS",
    "%p": "a",
    "%b": "MMM",
    "%B": "MMMM",
    "%j": "DDD",
    "%z": "Z",
    "%%": "%",
}


def java_pattern(strptime_format: str) -> str:
    """A strptime format as a Java date-time pattern (literal letters quoted), for Spark."""
    parts = []
    for token in re.split(r"(%.)", strptime_format):
        if not token:
            continue
        if token.startswith("%"):
            if token not in _JAVA_PATTERNS:
                raise DataError.single(
                    "dataset",
                    f"the format code {token} has no Spark equivalent here",
                    "use %Y %m %d %H %M %S %f %p %b or run on the DuckDB engine",
                    example=strptime_format,
                    key="engine.spark_format",
                    values={"code": token},
                )
            parts.append(_JAVA_PATTERNS[token])
        else:
            parts.append(re.sub(r"([A-Za-z]+)", r"'\1'", token.replace("'", "''")))
    return "".join(parts)


def backend_of(value: ir.Expr) -> str:
    """``duckdb``, ``spark`` or the Ibis name of another backend (``postgres``): the engine an expression
    runs on. Other backends take the DuckDB spelling where they share it (PostgreSQL: ``timezone()``)."""
    backend = value._find_backend(use_default=True)
    return "spark" if backend.name == "pyspark" else backend.name


def try_strptime(text: ir.StringValue, fmt: str) -> ir.TimestampValue:
    """Parse text with strptime codes (``%Y-%m-%d``); NULL where it does not parse."""
    backend = backend_of(text)
    if backend == "spark":
        return _spark_to_timestamp(text, java_pattern(fmt))
    if backend != "duckdb":
        # PostgreSQL's to_timestamp() has other codes and fails the whole query on one bad value.
        raise DataError.single(
            "dataset",
            f"a timestamp format ({fmt}) is read on DuckDB and Spark only, not on {backend}",
            "store the column as a timestamp in the database, or read the data from files on DuckDB",
            example=fmt,
            key="engine.no_format",
            values={"format": fmt, "engine": backend},
        )
    return _duckdb_strptime(text, fmt)


def wall_to_utc(zone: str, timestamp: ir.TimestampValue) -> ir.TimestampValue:
    """A naive wall-clock time in ``zone`` as naive UTC, by one rule on every engine (Python's ``fold=0``,
    Java's): a wall time skipped in spring is read with the offset before the change (02:30 -> 03:30 summer
    time), a wall time repeated in autumn is its first occurrence (summer time)."""
    if backend_of(timestamp) == "spark":
        return _spark_wall_to_utc(timestamp, zone)  # Java's ZonedDateTime rule, the one stated above
    plain = _duckdb_utc_wall("UTC", _duckdb_wall_to_utc(zone, timestamp))
    # DuckDB's ICU reads a repeated wall time as its second occurrence. Reading it with the offset in force
    # three hours earlier gives the first one; that reading stands only where it round-trips to the same wall
    # time (everywhere else it equals the plain one, or names a time that does not exist there).
    shift = ibis.interval(hours=3)
    earlier = _duckdb_utc_wall("UTC", _duckdb_wall_to_utc(zone, timestamp - shift)) + shift
    round_trip = _duckdb_utc_wall(zone, earlier.cast(TIMESTAMP_UTC))
    return ibis.ifelse(round_trip == timestamp, earlier, plain)


def utc_to_wall(zone: str, timestamp: ir.TimestampValue) -> ir.TimestampValue:
    """A naive UTC instant as the naive wall-clock time in ``zone`` (see :mod:`userops_lib.calendar`)."""
    if backend_of(timestamp) == "spark":
        return _spark_utc_to_wall(timestamp, zone)
    return _duckdb_utc_wall(zone, timestamp.cast(TIMESTAMP_UTC))


def instant_to_utc(timestamp: ir.Value) -> ir.TimestampValue:
    """A time-zone-aware instant as naive UTC."""
    if backend_of(timestamp) == "spark":
        return timestamp.cast(TIMESTAMP)  # Spark keeps instants and shows them in the session zone, UTC
    return _duckdb_utc_wall("UTC", timestamp.cast(TIMESTAMP_UTC))


DISTINCT_TEXT = ("user_id",)  # text columns frame() converts without sharing repeated strings (ids)
EXACT = dt.Decimal(38, 9)  # 29 digits before the point, 9 after: any revenue, to a billionth


def exact_sum(value: ir.NumericValue, where: ir.BooleanValue | None = None) -> ir.FloatingScalar:
    """The sum of ``value`` (money, or a per-row term of a variance) the same to the last digit on every run.

    A sum of doubles depends on the order the engine's threads add them in: two runs of one report differed
    in the 16th digit ('660.8' and '660.8000000000001' in a CSV, a model fit on such sums by 1e-6). Each value
    is rounded to a billionth (a decimal) and added exactly, then turned back into a double.
    """
    return value.cast(EXACT).sum(where=where).cast("float64")


def frame(expr: ir.Table, order_by: str | None = None):
    """``expr`` as a pandas DataFrame, converted by Arrow in one go (for frames with millions of rows).

    ibis' ``execute()`` converts column by column and costs about 1 s per million rows of a ten-column
    frame; Arrow's own conversion is several times faster and frees its buffers as it goes. Numbers,
    text and missing values come out as ``execute()`` gives them (integers with missing values as
    float64, text as object); timestamps keep their unit (microseconds).

    ``order_by`` sorts the rows by that column here, after the transfer (Arrow's stable sort, missing
    values last; text by code point, as Python compares it), not in the engine: under a memory limit
    DuckDB sorts a result of millions of rows externally (5M users' RFM features: 5 s unordered, 23 s
    ordered at a 3 GB limit). Arrow sorts 5M ids in 0.7 s, pandas its Python strings in 2.4 s.

    Ids come out as Python strings made one per row (``user_id``: distinct in a per-user frame): Arrow's
    default looks every string up to share repeated ones, which saves memory on repeated labels but costs
    4 s for 5M distinct ids, against 0.4 s (other text columns keep the sharing).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    table = expr.to_pyarrow()
    if order_by is not None:
        table = table.take(pc.sort_indices(table, sort_keys=[(order_by, "ascending")]))
    names = table.column_names
    text = (pa.types.is_string, pa.types.is_large_string)
    ids = [n for n in DISTINCT_TEXT if n in names and any(is_text(table.schema.field(n).type) for is_text in text)]
    kept = {name: table.column(name).to_pandas(deduplicate_objects=False) for name in ids}
    out = table.drop_columns(ids).to_pandas(self_destruct=True) if ids else table.to_pandas(self_destruct=True)
    for name in ids:
        out.insert(names.index(name), name, kept[name])
    return out


def memory_limit() -> str | None:
    """DuckDB's memory limit for a new connection: ``$USEROPS_MEMORY_LIMIT``, else an eighth of the RAM.

    DuckDB's own default (80% of the RAM) suits a database server, not a notebook kernel that also
    holds pandas frames: a big aggregation then takes memory pandas needs next, or the machine's.
    An eighth (at least 1 GB; 3 GiB on a 24 GiB machine) keeps the reductions at full speed on 100M
    events (``benchmarks/results.md``); beyond it DuckDB spills to disk. ``none``: DuckDB's default.
    """
    limit = os.environ.get(MEMORY_ENV, "").strip()
    if limit.lower() == NO_LIMIT:
        return None
    if limit:
        if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", limit, flags=re.IGNORECASE):
            raise DataError.single(
                "parameters",
                f"{MEMORY_ENV} is not a size",
                f"write it like 1GB or 1500MB, or '{NO_LIMIT}' for DuckDB's own default",
                column=MEMORY_ENV,
                example=limit,
                key="engine.memory_limit",
                values={"variable": MEMORY_ENV, "none": NO_LIMIT},
            )
        return limit
    total = ram()
    if total is None:
        return None  # a system that does not say: DuckDB's own default
    return f"{max(total // 8, 2**30) // 2**20}MiB"


def job_settings(jobs: int) -> dict[str, str]:
    """The DuckDB memory limit and threads of each of ``jobs`` notebook kernels run at once: half of the RAM
    (or of a container's limit) split between them, at least 1 GB each (a 24 GiB machine: 12 GiB with one
    job, 6 GiB each with two), and the cores split between them, at least one each. Environment entries
    for the kernels; a limit the caller set in ``$USEROPS_MEMORY_LIMIT`` or ``$USEROPS_THREADS`` wins.

    DuckDB holds only what a query needs: the limit is where it starts to spill, not what it takes. At
    1 GB a kernel spilled on 100M events (RFM 27.5 s against 6.5 s uncapped; benchmarks/results.md)."""
    jobs = max(1, int(jobs))
    total = ram()
    memory = f"{max(total // RUN_SHARE // jobs, 2**30) // 2**20}MiB" if total else "1GB"
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    return {
        MEMORY_ENV: os.environ.get(MEMORY_ENV) or memory,
        THREADS_ENV: os.environ.get(THREADS_ENV) or threads,
    }


def threads() -> int | None:
    """DuckDB's threads for a new connection: ``$USEROPS_THREADS`` when set (a whole number), else DuckDB's
    own default (the cores)."""
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise DataError.single(
            "parameters",
            f"{THREADS_ENV} is not a whole number of threads",
            "write a whole number of at least 1, or unset it for one thread a core",
            column=THREADS_ENV,
            example=text,
            key="engine.threads",
            values={"variable": THREADS_ENV},
        )
    return int(text)


def ram() -> int | None:
    """The bytes of RAM this process may use: the machine's, or its container's limit when lower (as DuckDB sees it)."""
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):  # cgroup v2, v1
        try:
            text = open(path, encoding="ascii").read().strip()
        except OSError:
            continue
        if text.isdigit():
            ram = min(ram, int(text))
    return ram


def chosen(name: str | None = None) -> str:
    """The engine to use: ``name``, else ``$USEROPS_ENGINE``, else DuckDB."""
    name = (name or os.environ.get(ENV) or "duckdb").lower()
    if name not in ENGINES:
        raise DataError.single(
            "parameters",
            f"unknown engine '{name}'",
            f"use one of: {', '.join(ENGINES)}",
            column="engine",
            example=name,
            key="engine.unknown",
            values={"name": name, "engines": ", ".join(ENGINES)},
        )
    return name


def connect(name: str | None = None) -> ibis.BaseBackend:
    """A fresh connection to the chosen engine, with session time zone UTC."""
    if chosen(name) == "spark":
        return _spark()
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    # DuckDB spills to ".tmp" in the working folder by default, a name every process shares: two kernels
    # spilling at once read each other's pages. Each connection gets a private folder, removed at exit.
    spill = tempfile.mkdtemp(prefix="userops-duckdb-")
    atexit.register(shutil.rmtree, spill, ignore_errors=True)
    con.raw_sql(f"SET temp_directory = '{spill}'")
    limit = memory_limit()
    if limit is not None:
        # DuckDB spills sorts, joins, windows and aggregates to the folder above beyond this.
        con.raw_sql(f"SET memory_limit = '{limit}'")
    count = threads()
    if count is not None:
        con.raw_sql(f"SET threads = {count}")
    return con


def prepare(con: ibis.BaseBackend) -> None:
    """Session settings for a connection a dataset.yml names (``connection:``).

    PostgreSQL: the session's time zone is UTC, as on every engine (canonical timestamps are naive UTC), and
    the planner may not nest loops. The reductions are whole-table joins and window scans; on join keys
    such as (user, time) the planner guesses a handful of rows and nests loops over the events table (a
    reduction matching each user's next event: over ten minutes on 272k events instead of 5 s). Hash and merge joins serve every
    reduction here.
    """
    if con.name == "postgres":
        con.raw_sql("SET TIME ZONE 'UTC'").close()
        con.raw_sql("SET enable_nestloop = off").close()


def _spark() -> ibis.BaseBackend:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError.single(
            "parameters",
            "the spark engine needs PySpark",
            "pip install -e '.[spark]' (Java 17 must be installed)",
            column="engine",
            example="spark",
            key="engine.no_spark",
        ) from None
    session = SparkSession.getActiveSession()
    if session is None:
        builder = SparkSession.builder.appName("userops")
        if os.environ.get("SPARK_REMOTE"):
            builder = builder.remote(os.environ["SPARK_REMOTE"])
        else:
            builder = (
                builder.master(os.environ.get("USEROPS_SPARK_MASTER", "local[2]"))
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.catalogImplementation", "in-memory")
                .config("spark.sql.shuffle.partitions", os.environ.get("USEROPS_SPARK_PARTITIONS", "8"))
            )
        session = builder.getOrCreate()
        if not os.environ.get("SPARK_REMOTE"):
            session.sparkContext.setLogLevel("ERROR")
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return ibis.pyspark.connect(session)
