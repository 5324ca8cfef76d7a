"""The run-local store (userops_lib.store): a report run reads and checks the dataset once, and what the
notebooks get from the store is what loading the source gives them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.conftest import DATA, EVENTS_CSV, USERS_CSV, write_notebook
from userops_lib import analyses, report, runner, store
from userops_lib import notebook as nb
from userops_lib.data import find_kept, load_dataset


def _same_file(left: Path, right: Path) -> None:
    """Byte-equal files (sums of money are exact, so a run gives the same digits every time); a CSV's first
    differing line is named."""
    if left.read_bytes() == right.read_bytes():
        return
    if left.suffix == ".csv":
        pairs = zip(left.read_text().splitlines(), right.read_text().splitlines(), strict=False)
        first = next(((i, x, y) for i, (x, y) in enumerate(pairs) if x != y), None)
        raise AssertionError(f"{left.parent.name}/{left.name} differs at line {first}")
    raise AssertionError(f"{left.parent.name}/{left.name} differs")


def test_every_artifact_of_the_sample_report_is_what_the_source_gives(sample_run, tmp_path):
    """The sample run read the store (every report); each analysis run here on the source, with the job's
    parameters, writes the same files with the same values."""
    code, folder, _ = sample_run
    assert code == 0
    manifest = json.loads((folder / "manifest.json").read_text())
    reports = manifest["reports"]
    assert manifest["store"]["reports"] == len(reports) == len(analyses.names())
    (written,) = manifest["store"]["stores"]
    source = load_dataset(DATA / "sample")
    assert written["tables"] == {name: int(t.count().execute()) for name, t in source.tables.items()}
    compared = 0
    for entry in reports:
        analysis = analyses.get(entry["name"])
        params = analysis.Params.from_namespace(entry["parameters"])
        here = tmp_path / entry["name"]
        nb.save(analysis.run(source, params), str(here))
        published = folder / entry["name"]
        assert sorted(p.name for p in here.iterdir()) == entry["artifacts"], entry["name"]
        for name in entry["artifacts"]:
            _same_file(published / name, here / name)
            compared += 1
    assert compared >= 40


def test_a_stores_tables_types_summary_and_set_aside_rows_are_the_loads(make_dataset, tmp_path):
    events = (
        "user_id,event_at,event,revenue\n"
        "1,2024-01-01 09:30:00,session,\n"
        "1,2024-01-05 12:00:00,purchase,10.5\n"
        "9,2024-01-02 10:05:00,session,\n"  # no such user: set aside
        "2,2023-12-30 08:00:00,purchase,20\n"  # before signup: set aside
        "2,2024-01-03 08:00:00,purchase,20\n"
    )
    users = "user_id,signup_at,country\n1,2024-01-01 09:00:00,CN\n2,2024-01-02 10:00:00,US\n"
    folder = make_dataset({"users.csv": users, "events.csv": events})
    source = load_dataset(folder, calendar="Asia/Shanghai")
    assert source.quality.rows_set_aside == 2
    wanted = store.key(str(folder), "", "Asia/Shanghai")
    facts = store.write(load_dataset(folder, calendar="Asia/Shanghai"), tmp_path / "s.duckdb", wanted)
    assert facts["tables"] == {"users": 2, "events": 3}
    held = store.open_store(tmp_path / "s.duckdb", wanted)
    assert held is not None
    assert held.quality == source.quality and held.calendar == source.calendar
    assert held.snapshot_at == source.snapshot_at and held.manifest == source.manifest
    for name in ("users", "events"):
        assert held.tables[name].schema() == source.tables[name].schema()
        a = held.tables[name].execute().sort_values(["user_id", *held.tables[name].columns[1:2]], ignore_index=True)
        b = source.tables[name].execute().sort_values(["user_id", *held.tables[name].columns[1:2]], ignore_index=True)
        pd.testing.assert_frame_equal(a, b)
    aside = held.set_aside("events").execute().sort_values("user_id", ignore_index=True)
    assert aside.user_id.tolist() == [2, 9]
    assert sorted(aside.set_aside_reason) == sorted(source.set_aside("events").execute().set_aside_reason)
    # A restriction (one report per segment) works on the store's tables as on the source's.
    assert int(held.restrict("country", "US").events.count().execute()) == 1


def test_a_kernel_reads_the_store_only_when_it_holds_that_load(tmp_path, monkeypatch):
    sample = str(DATA / "sample")
    path = tmp_path / "store.duckdb"
    store.write(load_dataset(sample), path, store.key(sample, "", ""))
    monkeypatch.setenv(store.ENV, str(path))
    held = nb.open_dataset(sample)
    assert _from_store(held)
    other = nb.open_dataset(sample, snapshot_at="2025-06-30")  # another snapshot: loaded from the source
    assert not _from_store(other)
    assert int(other.events.count().execute()) < int(held.events.count().execute())
    zone = nb.open_dataset(sample, timezone="Asia/Shanghai")
    assert not _from_store(zone) and zone.calendar.timezone == "Asia/Shanghai"
    monkeypatch.setenv(store.ENV, str(tmp_path / "missing.duckdb"))
    assert not _from_store(nb.open_dataset(sample))


def _from_store(ds) -> bool:
    attached = ds.con.raw_sql("SELECT database_name FROM duckdb_databases()").fetchall()
    return (store.CATALOG,) in attached


def test_the_notebooks_of_a_run_read_the_store_not_the_files(make_dataset, tmp_path):
    """The events file is gone once the run is planned (its rows were read then): the report still succeeds,
    from the store; without the store (--no-store) it fails, as the kernel then reads the file."""
    tables = {"users": {"path": "users.csv"}, "events": {"path": "events.csv"}}
    data = make_dataset({"users.csv": USERS_CSV, "events.csv": EVENTS_CSV}, {"tables": tables})
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(
        notebooks / "count.ipynb",
        "from userops_lib import notebook as nb\n"
        "from pathlib import Path\n"
        "ds = nb.open_dataset(dataset)\n"
        "Path(artifacts_dir).mkdir(parents=True, exist_ok=True)\n"
        "(Path(artifacts_dir) / 'rows.txt').write_text(str(int(ds.events.count().execute())))\n",
        parameters='dataset: str = ""\nartifacts_dir: str = ""\n',
    )
    outcome = {}
    for use_store in (True, False):
        plan = report.plan_run(dataset=str(data), notebooks_dir=str(notebooks))
        (data / "events.csv").rename(tmp_path / "events.csv")
        outcome[use_store] = runner.execute(plan, out=str(tmp_path / "reports"), use_store=use_store)
        (tmp_path / "events.csv").rename(data / "events.csv")
    code, folder = outcome[True]
    assert code == 0
    assert (folder / "count" / "rows.txt").read_text() == "4"
    assert json.loads((folder / "manifest.json").read_text())["store"]["reports"] == 1
    assert not list(folder.rglob("*.duckdb*"))  # the store goes with the run's internal files
    code, folder = outcome[False]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert code == 1 and manifest["store"] == {}
    assert "tables.events" in manifest["reports"][0]["error_message"]  # its file is missing


def test_a_dataset_in_a_database_is_not_copied_into_a_store(tmp_path):
    import duckdb

    warehouse = tmp_path / "warehouse.db"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE users AS SELECT 1 AS user_id, TIMESTAMP '2024-01-01' AS signup_at")
        con.execute("CREATE TABLE events AS SELECT 1 AS user_id, TIMESTAMP '2024-01-02' AS event_at, 'a' AS event")
    ds = load_dataset(f"duckdb:///{warehouse}")
    assert int(ds.events.count().execute()) == 1
    assert not store.storable(ds)
    assert store.storable(load_dataset(DATA / "sample"))


def test_the_store_holds_the_shared_reductions_the_runs_notebooks_read(tmp_path):
    """Each analysis names the shared reductions it reads (About.shared); the runner stores those its jobs
    read: the active days for the overview, nothing for a funnel-only run or a notebook of one's own."""
    sample = str(DATA / "sample")
    jobs = {name: report.Job(name, Path(f"{name}.ipynb"), name, {}) for name in ("funnel", "overview", "mine")}
    assert runner._shared([jobs["funnel"], jobs["mine"]]) == set()
    assert runner._shared([jobs["overview"], jobs["funnel"]]) == {"activity_days"}
    full, bare = tmp_path / "full.duckdb", tmp_path / "bare.duckdb"
    store.write(load_dataset(sample), full, store.key(sample, "", ""), shared={"activity_days"})
    store.write(load_dataset(sample), bare, store.key(sample, "", ""), shared=set())
    assert list(store.open_store(full, store.key(sample, "", "")).shared) == ["activity_days"]
    assert store.open_store(bare, store.key(sample, "", "")).shared == {}


def test_rfm_features_at_several_moments_are_kept_and_read_for_any_of_them():
    """features_at with two snapshots keeps its one aggregation in the connection; a later call for one of
    its moments reads it, and gives what the events give; another moment is computed from the events."""
    from userops_lib import rfm

    sample = str(DATA / "sample")
    ds = load_dataset(sample)
    snapshot = pd.Timestamp(ds.snapshot_at)
    earlier = snapshot - pd.Timedelta(days=30)
    rfm.features_at(ds, [None, earlier])
    assert find_kept(ds, rfm.KEY, "purchases", [earlier]) is not None
    assert find_kept(ds, rfm.KEY, "purchases", [snapshot - pd.Timedelta(days=14)]) is None
    assert find_kept(ds, rfm.KEY, "active_days", [snapshot]) is None
    for snapshots in ([snapshot], [earlier], [snapshot - pd.Timedelta(days=14)]):
        (ours,) = rfm.features_at(ds, snapshots)
        (theirs,) = rfm.features_at(load_dataset(sample), snapshots)
        a, b = (t.execute().sort_values("user_id", ignore_index=True) for t in (ours, theirs))
        assert len(a) > 100
        pd.testing.assert_frame_equal(a, b)
