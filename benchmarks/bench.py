"""Scale benchmark: userops reductions against hand-written DuckDB SQL and idiomatic pandas.

    python benchmarks/bench.py --events 1000000 10000000 [--out benchmarks/results.md]

For each size it writes a synthetic dataset (users.parquet, events.parquet, about 20 events per user,
made by DuckDB, not Python loops) to a scratch folder, then runs every measurement in its own child
process and records wall time and peak resident memory (the child's ru_maxrss: DuckDB's threads live
in that process). Results are appended to the Markdown file with the machine description.

Not run by the tests: speed and memory are measured here, never asserted in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GENERATE = """
SET threads TO 2;
CREATE TABLE users AS
SELECT i AS user_id,
       TIMESTAMP '2025-01-01' + to_seconds(CAST(hash(i) % (330 * 86400) AS BIGINT)) AS signup_at,
       ['organic', 'paid_search', 'social', 'referral'][1 + CAST(hash(i * 7 + 1) % 4 AS INTEGER)] AS channel,
       ['ios', 'android', 'web'][1 + CAST(hash(i * 11 + 3) % 3 AS INTEGER)] AS platform
FROM range({users}) t(i);
COPY users TO '{folder}/users.parquet' (FORMAT parquet);
COPY (
    SELECT u.user_id,
           u.signup_at + to_seconds(CAST((k * (1 + hash(u.user_id) % 9) * 86400 + hash(e.i) % 86400)
                                         % GREATEST(date_diff('second', u.signup_at, TIMESTAMP '2026-01-01') - 1, 1)
                                         AS BIGINT)) AS event_at,
           CASE WHEN hash(e.i * 13) % 20 = 0 THEN 'purchase' ELSE 'session' END AS event,
           CASE WHEN hash(e.i * 13) % 20 = 0 THEN (hash(e.i * 17) % 10000) / 100.0 END AS revenue
    FROM (SELECT i, i % {users} AS user_id, i // {users} AS k FROM range({events}) t(i)) e
    JOIN users u USING (user_id)
) TO '{folder}/events.parquet' (FORMAT parquet, ROW_GROUP_SIZE 1000000);
"""

MANIFEST = """name: bench
snapshot_at: 2026-01-01
tables:
  users: {path: users.parquet}
  events: {path: events.parquet}
"""

# Each measurement: a child process that imports what it needs and runs one reduction to a small table.
MEASUREMENTS = {
    "load and validate the dataset": {
        "userops": """
            from userops_lib.data import load_dataset
            ds = load_dataset(FOLDER)
            rows = ds.quality.tables[1].rows_read
        """,
    },
    "cohort counts (monthly, on)": {
        "userops": """
            from userops_lib.data import load_dataset
            from userops_lib import cohorts
            ds = load_dataset(FOLDER)
            # -- timed --
            result = cohorts.retention(ds, period="month")
            rows = int(result.cells.active_users.notna().sum())
        """,
        "duckdb_sql": """
            import duckdb
            con = duckdb.connect(); con.execute("SET threads TO 2")
            rows = len(con.execute(f'''
                WITH members AS (SELECT user_id, date_trunc('month', signup_at) AS cohort FROM '{FOLDER}/users.parquet'),
                     activity AS (SELECT DISTINCT user_id, date_trunc('month', event_at) AS m FROM '{FOLDER}/events.parquet')
                SELECT cohort, (year(m) * 12 + month(m)) - (year(cohort) * 12 + month(cohort)) AS k, count(*) AS n
                FROM members JOIN activity USING (user_id) WHERE m >= cohort GROUP BY ALL
            ''').fetchall())
        """,
        "pandas": """
            import pandas as pd
            users = pd.read_parquet(f"{FOLDER}/users.parquet", columns=["user_id", "signup_at"])
            events = pd.read_parquet(f"{FOLDER}/events.parquet", columns=["user_id", "event_at"])
            cohort = users.signup_at.dt.to_period("M")
            months = events.assign(m=events.event_at.dt.to_period("M"))[["user_id", "m"]].drop_duplicates()
            merged = months.merge(users.assign(cohort=cohort)[["user_id", "cohort"]], on="user_id")
            merged["k"] = (merged.m.dt.year - merged.cohort.dt.year) * 12 + merged.m.dt.month - merged.cohort.dt.month
            rows = len(merged[merged.k >= 0].groupby(["cohort", "k"]).size())
        """,
    },
    "per-user RFM features": {
        "userops": """
            from userops_lib.data import load_dataset
            from userops_lib import segments
            ds = load_dataset(FOLDER)
            # -- timed --
            rows = len(segments.features(ds).execute())
        """,
        "duckdb_sql": """
            import duckdb
            con = duckdb.connect(); con.execute("SET threads TO 2")
            rows = len(con.execute(f'''
                SELECT user_id, max(event_at) FILTER (WHERE revenue > 0) AS last_purchase,
                       count(*) FILTER (WHERE revenue > 0) AS frequency, sum(coalesce(revenue, 0)) AS monetary,
                       min(event_at) AS first_at, max(event_at) AS last_at, count(DISTINCT event_at::DATE) AS days
                FROM '{FOLDER}/events.parquet' GROUP BY user_id
            ''').df())
        """,
        "pandas": """
            import pandas as pd
            events = pd.read_parquet(f"{FOLDER}/events.parquet", columns=["user_id", "event_at", "revenue"])
            paid = events[events.revenue.fillna(0) > 0]
            base = events.groupby("user_id").agg(first_at=("event_at", "min"), last_at=("event_at", "max"),
                                                 monetary=("revenue", "sum"))
            base["days"] = events.assign(d=events.event_at.dt.normalize()).groupby("user_id").d.nunique()
            bought = paid.groupby("user_id").agg(last_purchase=("event_at", "max"), frequency=("event_at", "size"))
            rows = len(base.join(bought, how="left"))
        """,
    },
    "DAU/WAU/MAU": {
        "userops": """
            import pandas as pd
            from userops_lib.data import load_dataset
            from userops_lib import kpis
            ds = load_dataset(FOLDER)
            first_day = pd.Timestamp(ds.events.event_at.min().execute()).floor("D")
            # -- timed --
            rows = len(kpis._active_users(ds.events, first_day, pd.Timestamp(ds.snapshot_at)))
        """,
        "duckdb_sql": """
            import duckdb
            con = duckdb.connect(); con.execute("SET threads TO 2")
            rows = len(con.execute(f'''
                WITH days AS (SELECT DISTINCT user_id, event_at::DATE AS d FROM '{FOLDER}/events.parquet'),
                     nx AS (SELECT d, lead(d) OVER (PARTITION BY user_id ORDER BY d) AS nd FROM days),
                     ev AS (SELECT d AS day, 1 AS dau, 1 AS w, 1 AS m FROM nx
                            UNION ALL SELECT least(d + 7, coalesce(nd, d + 7)), 0, -1, 0 FROM nx
                            UNION ALL SELECT least(d + 30, coalesce(nd, d + 30)), 0, 0, -1 FROM nx)
                SELECT day, sum(dau) AS dau, sum(sum(w)) OVER (ORDER BY day) AS wau,
                       sum(sum(m)) OVER (ORDER BY day) AS mau
                FROM ev GROUP BY day
            ''').fetchall())
        """,
        "pandas": """
            import pandas as pd
            events = pd.read_parquet(f"{FOLDER}/events.parquet", columns=["user_id", "event_at"])
            days = events.assign(d=events.event_at.dt.normalize())[["user_id", "d"]].drop_duplicates()
            days = days.sort_values(["user_id", "d"])
            days["next"] = days.groupby("user_id").d.shift(-1)
            out = {"dau": days.groupby("d").size()}
            for name, width in (("wau", 7), ("mau", 30)):
                end = (days.d + pd.Timedelta(days=width)).where(days.next.isna() | (days.next > days.d + pd.Timedelta(days=width)), days.next)
                out[name] = out["dau"].sub(end.value_counts(), fill_value=0).sort_index().cumsum()
            rows = len(out["mau"])
        """,
    },
}

CHILD = """
import resource, sys, time, json
import duckdb, pandas, ibis  # imports are not what is measured
import userops_lib.cohorts, userops_lib.kpis, userops_lib.segments
FOLDER = {folder!r}
{setup}
_started = time.perf_counter()
{code}
print(json.dumps({{"seconds": time.perf_counter() - _started, "rows": rows,
                   "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def generate(folder: Path, events: int) -> float:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(GENERATE.format(folder=folder, users=max(events // 20, 1), events=events))
    (folder / "dataset.yml").write_text(MANIFEST, encoding="utf-8")
    return time.perf_counter() - started


def measure(folder: Path, code: str) -> dict:
    """Run ``code`` in a child; lines before a ``# -- timed --`` marker are set-up, not timed."""
    code = textwrap.dedent(code)
    setup, _, timed = code.rpartition("# -- timed --") if "# -- timed --" in code else ("", "", code)
    script = CHILD.format(folder=str(folder), setup=setup, code=timed)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))) / 1024 ** 2
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, Python {platform.python_version()}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.md"))
    parser.add_argument("--skip-pandas-above", type=int, default=200_000_000)
    args = parser.parse_args(argv)
    lines = [f"\n## Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "", f"Machine: {machine()}.", ""]
    for size in args.events:
        with tempfile.TemporaryDirectory(prefix="userops-bench-") as scratch:
            folder = Path(scratch)
            made = generate(folder, size)
            lines += [f"### {size:,} events ({size // 20:,} users; generated in {made:.1f} s)", "",
                      "| reduction | path | seconds | peak MiB | time vs SQL | faster than pandas | lighter than pandas |",
                      "|---|---|---:|---:|---:|---:|---:|"]
            for name, paths in MEASUREMENTS.items():
                results = {}
                for path, code in paths.items():
                    if path == "pandas" and size > args.skip_pandas_above:
                        results[path] = {"error": "skipped"}
                        continue
                    results[path] = measure(folder, code)
                    print(size, name, path, results[path], flush=True)
                sql, ours, pandas_ = results.get("duckdb_sql", {}), results.get("userops", {}), results.get("pandas", {})
                for path, result in results.items():
                    if "error" in result:
                        lines.append(f"| {name} | {path} | {result['error']} | | | | |")
                        continue
                    ratio = f"{result['seconds'] / sql['seconds']:.2f}×" if "seconds" in sql else ""
                    speed = (f"{pandas_['seconds'] / result['seconds']:.1f}×" if path == "userops" and "seconds" in
                             pandas_ else "")
                    memory = (f"{pandas_['peak_mib'] / result['peak_mib']:.1f}×" if path == "userops" and "peak_mib" in
                              pandas_ else "")
                    lines.append(f"| {name} | {path} | {result['seconds']:.2f} | {result['peak_mib']:.0f} | {ratio} | "
                                 f"{speed} | {memory} |")
            lines.append("")
    with open(args.out, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"appended to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
