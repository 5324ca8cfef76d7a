"""The run-local store: a report run reads and validates its dataset once, and every notebook reads the result.

``userops report`` loads the dataset while planning (every check runs there). Before the first kernel
starts, the runner writes what the load kept and set aside, table by table, to a DuckDB file in the run's
staging folder, with the dataset's description (its data-quality summary, snapshot, calendar, manifest),
and the reductions several analyses share, when the run's notebooks read them (``About.shared``: the active
days, :mod:`userops_lib.activity`), and hands each kernel the file's path in ``$USEROPS_RUN_STORE``. A notebook's
:func:`userops_lib.notebook.open_dataset` opens it read-only when it was written for the same dataset,
snapshot and calendar, and loads the source as always otherwise (in JupyterLab, or for a job whose
parameters name another snapshot or zone). The file is deleted with the run's other internal files.

What a kernel gets is what loading the source gives: the same rows, types, set-aside rows and summary
(``tests/test_store.py`` compares every artifact of every analysis both ways). The store is written only
for datasets read into embedded DuckDB (files); a Spark run or a ``connection:`` to a database reads the
source in each kernel, as before. At 100M events writing the tables takes about 16 s and 0.8 GB of disk,
against 10 s of reading and checking in each of seven kernels, and with the active days 59 s and 3.8 GiB
(bench.py's world has about one event per active day; ``benchmarks/results.md``).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
from pathlib import Path

import ibis

from userops_lib import activity, engine
from userops_lib.data import Dataset

ENV = "USEROPS_RUN_STORE"  # the store's path, for the kernels of a run
CATALOG = "userops_store"
_DESCRIPTION = "userops_dataset"
_SKIP = {"con", "tables", "_set_aside", "shared"}  # the connection and the tables are the store's own
SHARED = (activity.KEY,)  # the shared reductions a store can hold


def key(dataset: str, snapshot_at: object = "", timezone: object = "") -> tuple[str, str, str]:
    """What a load depends on: the dataset (a folder's absolute path), the snapshot and the calendar's zone as given."""
    where = dataset if "://" in dataset else str(Path(dataset).resolve())
    return where, str(snapshot_at or ""), str(timezone or "")


def storable(ds: Dataset) -> bool:
    """Only datasets read into embedded DuckDB: a database's tables stay in the database."""
    return ds.con.name == "duckdb" and ds.manifest is not None and ds.manifest.connection is None


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def write(ds: Dataset, path: Path, dataset_key: tuple[str, str, str], shared=SHARED) -> dict:
    """Write ``ds``'s kept and set-aside tables, the active days when ``shared`` (the names the run's analyses
    read, ``About.shared``) holds them, and its description to a new DuckDB file at ``path``.

    Returns what was written (rows per table, seconds). The file is complete or absent: it is written
    under a temporary name and renamed.
    """
    started = time.monotonic()
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    con = ds.con
    con.raw_sql(f"ATTACH {_quoted(partial)} AS {CATALOG}")
    # No kernel runs yet: the reductions get the run's whole share of the memory (half the RAM, or
    # $USEROPS_MEMORY_LIMIT), not one connection's eighth: at 100M events a per-user aggregation (RFM) took
    # 52 s at 2.7 GiB (spilling) and 14 s at 11 GiB.
    share = engine.job_settings(1)[engine.MEMORY_ENV]
    con.raw_sql("RESET memory_limit" if share.lower() == engine.NO_LIMIT else f"SET memory_limit = '{share}'")
    done = False
    try:
        try:
            rows = _fill(ds, dataset_key, activity.KEY in shared and ds.events is not None)
        finally:
            limit = engine.memory_limit()
            con.raw_sql(f"SET memory_limit = '{limit}'" if limit else "RESET memory_limit")
            con.raw_sql(f"DETACH {CATALOG}")  # writes the file out: can fail on a full disk too
        partial.rename(path)
        done = True
    finally:
        if not done:  # nothing half-written is left, even when the detach failed
            for left in (partial, partial.with_name(partial.name + ".wal")):
                left.unlink(missing_ok=True)
    return {"tables": rows, "seconds": round(time.monotonic() - started, 2)}


def _fill(ds: Dataset, dataset_key: tuple[str, str, str], with_days: bool) -> dict:
    """Create the store's tables in the attached catalogue; rows kept per table."""
    con = ds.con
    rows = {}
    for prefix, tables in (("kept", ds.tables), ("aside", ds._set_aside)):
        for name, table in tables.items():
            con.raw_sql(f"CREATE TABLE {CATALOG}.{prefix}_{name} AS {ibis.to_sql(table, dialect='duckdb')}")
            if prefix == "kept":
                rows[name] = con.raw_sql(f"SELECT count(*) FROM {CATALOG}.kept_{name}").fetchone()[0]
    shared = []
    if with_days:  # reduced once here for every kernel that reads them
        con.raw_sql(
            f"CREATE TABLE {CATALOG}.shared_{activity.KEY} AS {ibis.to_sql(activity.expression(ds), dialect='duckdb')}"
        )
        shared.append(activity.KEY)
    fields = {f.name: getattr(ds, f.name) for f in dataclasses.fields(ds) if f.name not in _SKIP}
    described = {
        "key": dataset_key,
        "fields": fields,
        "kept": list(ds.tables),
        "aside": list(ds._set_aside),
        "shared": shared,
    }
    description = pickle.dumps(described)
    con.raw_sql(f"CREATE TABLE {CATALOG}.{_DESCRIPTION} (description BLOB)")
    con.con.execute(f"INSERT INTO {CATALOG}.{_DESCRIPTION} VALUES (?)", [description])
    return rows


def open_store(path: Path, dataset_key: tuple[str, str, str]) -> Dataset | None:
    """The dataset held in the store at ``path`` if it was written for ``dataset_key``, else None.

    The store is attached read-only to a new connection (with the run's memory and thread settings),
    so several kernels read one file at once; the connection's own catalogue stays writable.
    """
    if not path.is_file():
        return None
    con = engine.connect("duckdb")
    con.raw_sql(f"ATTACH {_quoted(path)} AS {CATALOG} (READ_ONLY)")
    blob = con.raw_sql(f"SELECT description FROM {CATALOG}.{_DESCRIPTION}").fetchone()[0]
    described = pickle.loads(blob)  # written by this run's own runner, in its locked staging folder
    if tuple(described["key"]) != tuple(dataset_key):
        con.disconnect()
        return None
    where = (CATALOG, "main")
    tables = {name: con.table(f"kept_{name}", database=where) for name in described["kept"]}
    aside = {name: con.table(f"aside_{name}", database=where) for name in described["aside"]}
    ds = Dataset(con=con, tables=tables, _set_aside=aside, **described["fields"])
    if activity.KEY in described.get("shared", ()):
        activity.keep(ds, con.table(f"shared_{activity.KEY}", database=where))
    return ds


def for_kernel(dataset: str, snapshot_at: object, timezone: object) -> Dataset | None:
    """The run's store for this load when ``$USEROPS_RUN_STORE`` names one written for it, else None."""
    where = os.environ.get(ENV, "").strip()
    if not where or "://" in dataset:
        return None
    return open_store(Path(where), key(dataset, snapshot_at, timezone))
