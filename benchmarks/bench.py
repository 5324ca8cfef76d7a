"""Scale benchmark: userops reductions against hand-written DuckDB SQL and idiomatic pandas.

    python benchmarks/bench.py --events 1000000 10000000 [--out benchmarks/results.md]

For each size it writes a synthetic dataset (users.parquet, events.parquet, about 20 events per user,
made by DuckDB, not Python loops) to a scratch folder, then runs every measurement in its own child
process and records wall time and peak resident memory (the child's ru_maxrss: DuckDB's threads live
in that process). Results are appended to the Markdown file with the machine description.

Every reduction's userops time is compared with the hand-written SQL's (best runs of --repeat): the ratios
are printed at the end and written under each size, and a reduction above REGRESSION (1.5×) the floor is
marked as a regression there and makes the run exit 1, so a slowdown is seen the day it lands.

Not run by the tests: speed and memory are measured here, never asserted in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
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
       ['ios', 'android', 'web'][1 + CAST(hash(i * 11 + 3) % 3 AS INTEGER)] AS platform,
       -- 60 regions with a long tail (a square law), so reports must fold the tail into "other"
       'region_' || lpad(CAST(CAST(floor(60 * pow((hash(i * 23 + 7) % 1000000) / 1000000.0, 2)) AS INTEGER)
                              AS VARCHAR), 2, '0') AS region
FROM range({users}) t(i);
COPY users TO '{folder}/users.parquet' (FORMAT parquet);
-- 40% of the users who signed up before the campaign, each in one of three arms
COPY (
    SELECT user_id, 'autumn_promo' AS campaign,
           ['control', 'discount', 'reminder'][1 + CAST(hash(user_id * 29 + 11) % 3 AS INTEGER)] AS arm,
           TIMESTAMP '2025-10-01' AS assigned_at
    FROM users WHERE signup_at < TIMESTAMP '2025-10-01' AND hash(user_id * 19 + 5) % 10 < 4
) TO '{folder}/assignments.parquet' (FORMAT parquet);
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
  assignments: {path: assignments.parquet, control_arm: control}
"""

# A reduction whose userops path takes more than this many times the hand-written SQL (best runs compared)
# is a regression: flagged in results.md and on the terminal, and the run exits 1.
REGRESSION = 1.5

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
            from userops_lib.analyses import cohort_retention as cohorts
            ds = load_dataset(FOLDER)
            # -- timed --
            sizes, counted = cohorts.counts(ds, period="month")
            rows = len(counted)
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
            # Month numbers as small integers, distinct user-months, then a lookup (not a merge) of the cohort.
            month = (events.event_at.dt.year * 12 + events.event_at.dt.month).astype("int32")
            pairs = pd.DataFrame({"user_id": events.user_id, "m": month}).drop_duplicates()
            del events, month
            cohort = pd.Series((users.signup_at.dt.year * 12 + users.signup_at.dt.month).astype("int32").to_numpy(),
                               index=users.user_id)
            pairs["cohort"] = pairs.user_id.map(cohort)
            pairs = pairs[pairs.m >= pairs.cohort]
            rows = len(pairs.groupby([pairs.cohort, pairs.m - pairs.cohort]).size())
        """,
    },
    "per-user RFM features": {
        "userops": """
            from userops_lib.data import load_dataset
            from userops_lib.analyses import segment_profiling as segments
            ds = load_dataset(FOLDER)
            # -- timed --
            # As segments.analyse pulls it: the used columns, converted by Arrow, ordered by user.
            from userops_lib import engine
            rows = len(engine.frame(segments.features(ds).select("user_id", *segments.KEPT), order_by="user_id"))
        """,
        "duckdb_sql": """
            import duckdb
            con = duckdb.connect(); con.execute("SET threads TO 2")
            rows = len(con.execute(f'''
                SELECT user_id, date_diff('day', max(event_at) FILTER (WHERE revenue > 0)::DATE, DATE '2026-01-01')
                           AS recency_days,
                       count(*) FILTER (WHERE revenue > 0) AS frequency, sum(coalesce(revenue, 0)) AS monetary,
                       date_diff('day', max(event_at)::DATE, DATE '2026-01-01') AS since_seen,
                       date_diff('day', min(event_at)::DATE, DATE '2026-01-01') AS age_days
                FROM '{FOLDER}/events.parquet' WHERE event_at < TIMESTAMP '2026-01-01' GROUP BY user_id
            ''').df())
        """,
        "pandas": """
            import pandas as pd
            events = pd.read_parquet(f"{FOLDER}/events.parquet", columns=["user_id", "event_at", "revenue"])
            events = events[events.event_at < pd.Timestamp("2026-01-01")]
            paid = events[events.revenue.fillna(0) > 0]
            base = events.groupby("user_id").agg(first_at=("event_at", "min"), last_at=("event_at", "max"),
                                                 monetary=("revenue", "sum"))
            bought = paid.groupby("user_id").agg(last_purchase=("event_at", "max"), frequency=("event_at", "size"))
            out = base.join(bought, how="left")
            end = pd.Timestamp("2026-01-01")
            out = pd.DataFrame({"recency_days": (end - out.last_purchase.dt.normalize()).dt.days,
                                "frequency": out.frequency.fillna(0).astype("int64"), "monetary": out.monetary,
                                "since_seen": (end - out.last_at.dt.normalize()).dt.days,
                                "age_days": (end - out.first_at.dt.normalize()).dt.days})
            rows = len(out)
        """,
    },
    "DAU/WAU/MAU": {
        "userops": """
            import pandas as pd
            from userops_lib.data import load_dataset
            from userops_lib import activity
            from userops_lib.analyses.overview import engine, stats
            ds = load_dataset(FOLDER)
            first_day = pd.Timestamp(ds.events.event_at.min().execute()).floor("D")
            # -- timed --
            # the active days without money (the overview reads paid and revenue from them for its other reductions)
            ds.tables["events"] = ds.events.select("user_id", "event_at")
            days = activity.expression(ds)
            rows = len(stats.active_users(engine.activity_changes(days, ds.calendar), first_day, pd.Timestamp(ds.snapshot_at)))
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
                SELECT * FROM (SELECT day, sum(dau) AS dau, sum(sum(w)) OVER (ORDER BY day) AS wau,
                                      sum(sum(m)) OVER (ORDER BY day) AS mau
                               FROM ev GROUP BY day)
                WHERE day < DATE '2026-01-01'  -- the days of the data (ends past the snapshot are not rows)
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
            # The same days as the others: active days only (ends past the last day are not rows).
            rows = len(out["mau"].reindex(out["dau"].index))
        """,
    },
    "churn durations (events, 30-day window)": {
        "userops": """
            from userops_lib.data import load_dataset
            from userops_lib.analyses.churn_survival import durations
            ds = load_dataset(FOLDER)
            # -- timed --
            table, *_ = durations.user_durations(ds, churn_after_days=30)
            rows = len(durations.aggregate(table, ["channel"]))
        """,
        "duckdb_sql": """
            import duckdb
            con = duckdb.connect(); con.execute("SET threads TO 2")
            rows = len(con.execute(f'''
                WITH spans AS (SELECT user_id, min(event_at) AS first_at, max(event_at) AS last_at
                               FROM '{FOLDER}/events.parquet' WHERE event_at < TIMESTAMP '2026-01-01' GROUP BY user_id)
                SELECT channel, last_at < TIMESTAMP '2025-12-02' AS churned,
                       date_diff('day', first_at::DATE, CASE WHEN last_at < TIMESTAMP '2025-12-02' THEN last_at::DATE
                                                              ELSE DATE '2025-12-02' END) AS duration, count(*) AS n
                FROM spans JOIN '{FOLDER}/users.parquet' USING (user_id)
                WHERE first_at < TIMESTAMP '2025-12-02' GROUP BY ALL
            ''').fetchall())
        """,
        "pandas": """
            import pandas as pd
            events = pd.read_parquet(f"{FOLDER}/events.parquet", columns=["user_id", "event_at"])
            users = pd.read_parquet(f"{FOLDER}/users.parquet", columns=["user_id", "channel"])
            snapshot, cutoff = pd.Timestamp("2026-01-01"), pd.Timestamp("2025-12-02")
            spans = events[events.event_at < snapshot].groupby("user_id").event_at.agg(["min", "max"])
            spans = spans[spans["min"] < cutoff]
            churned = spans["max"] < cutoff
            end = spans["max"].dt.normalize().where(churned, cutoff)
            spans = spans.assign(churned=churned, duration=(end - spans["min"].dt.normalize()).dt.days)
            spans = spans.join(users.set_index("user_id"))
            rows = len(spans.groupby(["channel", "churned", "duration"]).size())
        """,
    },
    "campaign outcomes (14 days after assignment)": {
        "userops": """
            from userops_lib.data import load_dataset
            from userops_lib.analyses.campaign_uplift import experiment as uplift
            ds = load_dataset(FOLDER)
            # -- timed --
            rows = len(uplift.experiment(ds, window_days=14).frame)
        """,
        "duckdb_sql": """
            import duckdb
            con = duckdb.connect(); con.execute("SET threads TO 2")
            rows = len(con.execute(f'''
                WITH a AS (SELECT * FROM '{FOLDER}/assignments.parquet'),
                     o AS (SELECT a.user_id,
                             bool_or(e.revenue > 0 AND e.event_at >= a.assigned_at) AS converted,
                             sum(coalesce(e.revenue, 0)) FILTER (WHERE e.event_at >= a.assigned_at) AS revenue,
                             count(DISTINCT e.event_at::DATE) FILTER (WHERE e.event_at >= a.assigned_at) AS active_days,
                             bool_or(e.revenue > 0 AND e.event_at < a.assigned_at) AS pre_converted,
                             sum(coalesce(e.revenue, 0)) FILTER (WHERE e.event_at < a.assigned_at) AS pre_revenue,
                             count(DISTINCT e.event_at::DATE) FILTER (WHERE e.event_at < a.assigned_at) AS pre_active_days
                           FROM a JOIN '{FOLDER}/events.parquet' e USING (user_id)
                           WHERE e.event_at >= a.assigned_at - INTERVAL 14 DAY
                             AND e.event_at < a.assigned_at + INTERVAL 14 DAY
                           GROUP BY a.user_id)
                SELECT a.*, coalesce(converted, false) AS converted, coalesce(revenue, 0) AS revenue,
                       coalesce(active_days, 0) AS active_days, coalesce(pre_converted, false) AS pre_converted,
                       coalesce(pre_revenue, 0) AS pre_revenue, coalesce(pre_active_days, 0) AS pre_active_days,
                       u.channel, u.platform, u.region
                FROM a LEFT JOIN o USING (user_id) LEFT JOIN '{FOLDER}/users.parquet' u USING (user_id)
            ''').df())
        """,
        "pandas": """
            import pandas as pd
            a = pd.read_parquet(f"{FOLDER}/assignments.parquet")
            events = pd.read_parquet(f"{FOLDER}/events.parquet", columns=["user_id", "event_at", "revenue"])
            users = pd.read_parquet(f"{FOLDER}/users.parquet", columns=["user_id", "channel", "platform", "region"])
            e = events.merge(a[["user_id", "assigned_at"]], on="user_id")
            window = pd.Timedelta(days=14)
            e = e[(e.event_at >= e.assigned_at - window) & (e.event_at < e.assigned_at + window)]
            e = e.assign(after=e.event_at >= e.assigned_at, revenue=e.revenue.fillna(0), day=e.event_at.dt.normalize())
            e["bought"] = e.revenue > 0
            parts = []
            for flag, prefix in ((True, ""), (False, "pre_")):
                g = e[e.after == flag].groupby("user_id")
                parts.append(pd.DataFrame({f"{prefix}converted": g.bought.any(), f"{prefix}revenue": g.revenue.sum(),
                                           f"{prefix}active_days": g.day.nunique()}))
            out = a.merge(pd.concat(parts, axis=1), on="user_id", how="left").fillna(0)
            rows = len(out.merge(users, on="user_id", how="left"))
        """,
    },
    "funnel session → purchase (7 days, ordered)": {
        "userops": """
            from userops_lib.data import load_dataset
            from userops_lib.analyses.funnel import engine
            ds = load_dataset(FOLDER)
            # -- timed --
            times = engine.step_times(ds.table("events"), [["session"], ["purchase"]], window_days=7,
                                      snapshot=ds.snapshot_at)
            rows = len(engine.reached_counts(times, 2))
        """,
        "duckdb_sql": """
            import duckdb
            con = duckdb.connect(); con.execute("SET threads TO 2")
            rows = len(con.execute(f'''
                WITH e AS (SELECT * FROM '{FOLDER}/events.parquet' WHERE event_at < TIMESTAMP '2026-01-01'),
                     entry AS (SELECT user_id, min(event_at) AS t1 FROM e WHERE event = 'session' GROUP BY user_id),
                     reached AS (SELECT entry.user_id, min(e.event_at) AS t2 FROM entry JOIN e USING (user_id)
                                 WHERE e.event = 'purchase' AND e.event_at >= entry.t1
                                   AND e.event_at <= entry.t1 + INTERVAL 7 DAY GROUP BY entry.user_id)
                SELECT entry.t1 + INTERVAL 7 DAY <= TIMESTAMP '2026-01-01' AS complete,
                       CASE WHEN t2 IS NULL THEN 1 ELSE 2 END AS reached, count(*) AS users
                FROM entry LEFT JOIN reached USING (user_id) GROUP BY ALL
            ''').fetchall())
        """,
        "pandas": """
            import pandas as pd
            e = pd.read_parquet(f"{FOLDER}/events.parquet", columns=["user_id", "event_at", "event"])
            e = e[e.event_at < pd.Timestamp("2026-01-01")]
            entry = e[e.event == "session"].groupby("user_id").event_at.min().rename("t1").reset_index()
            buys = e[e.event == "purchase"][["user_id", "event_at"]].sort_values("event_at")
            joined = pd.merge_asof(entry.sort_values("t1"), buys, left_on="t1", right_on="event_at", by="user_id",
                                   direction="forward", tolerance=pd.Timedelta(days=7))
            joined["complete"] = joined.t1 + pd.Timedelta(days=7) <= pd.Timestamp("2026-01-01")
            joined["reached"] = 1 + joined.event_at.notna()
            rows = len(joined.groupby(["complete", "reached"]).size())
        """,
    },
}

# Every registered analysis' engine reductions (its REDUCTIONS, as the engine matrix runs them), measured on
# the userops path only: a new analysis is benchmarked without being added here. Each output is executed to
# the small frame its statistics read; `rows` counts their rows.
REGISTERED = """
    from userops_lib import analyses
    from userops_lib.data import load_dataset
    ds = load_dataset(FOLDER)
    reduce = analyses.get({analysis!r}).reductions()[{case!r}]
    # -- timed --
    outputs = reduce(ds)
    rows = sum(len(v.execute()) if hasattr(v, "execute") else len(v) if hasattr(v, "__len__") else 1
               for v in outputs.values())
"""


def registered() -> dict[str, dict[str, str]]:
    from userops_lib import analyses

    return {
        f"{a.name}: {case} (registered)": {"userops": REGISTERED.format(analysis=a.name, case=case)}
        for a in analyses.every()
        for case in a.reductions()
    }


CHILD = """
import resource, sys, time, json
import duckdb, pandas, ibis  # imports are not what is measured
from userops_lib import analyses
_every = analyses.every()  # every registered analysis imported
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


def append(out: str, lines: list[str]) -> None:
    """Append a run's lines to the results file and show them."""
    with open(out, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"appended to {out}")


def measure(folder: Path, code: str, env: dict | None = None, repeat: int = 1) -> dict:
    """Run ``code`` in a child ``repeat`` times; the median time and peak, and every time measured.

    Lines before a ``# -- timed --`` marker are set-up, not timed. ``env`` entries set to None are
    removed from the child's environment.
    """
    code = textwrap.dedent(code)
    setup, _, timed = code.rpartition("# -- timed --") if "# -- timed --" in code else ("", "", code)
    script = CHILD.format(folder=str(folder), setup=setup, code=timed)
    environment = {**os.environ, **(env or {})}
    environment = {key: value for key, value in environment.items() if value is not None}
    runs = []
    for _ in range(repeat):
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=environment
        )
        if result.returncode != 0:
            return {"error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
        # DuckDB may draw a progress bar on the same stream, without a newline: take the last JSON object.
        runs.append(json.loads(re.findall(r'\{"seconds".*?\}', result.stdout)[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_mib": statistics.median(r["peak_mib"] for r in runs),
        "rows": runs[0]["rows"],
        "all_seconds": [r["seconds"] for r in runs],
    }


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, stack, page = 0, [root], os.sysconf("SC_PAGE_SIZE")
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except OSError:
            pass
    return total


def measure_report(folder: Path, jobs: int) -> dict:
    """The full `userops report` run: wall time, peak RSS summed over the process tree, largest HTML."""
    out = folder / "reports"
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("userops")), "report", str(folder), "--jobs", str(jobs), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss(process.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    output = process.stdout.read()
    if process.returncode != 0:
        return {"error": f"exit {process.returncode}: {output.strip().splitlines()[-1] if output else ''}"}
    pages = sorted((out / "latest").glob("*.html"))
    largest = max(pages, key=lambda p: p.stat().st_size)
    return {
        "seconds": seconds,
        "peak_mib": peak / 2**20,
        "rows": len(pages),
        "largest": f"{largest.name} {largest.stat().st_size / 2**20:.1f} MB",
    }


def _capped(cap: str) -> str:
    """The row name of the userops path under a memory limit."""
    return f"userops, {'no' if cap.lower() == 'none' else cap} cap"


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = (
        int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        / 1024**2
    )
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, Python {platform.python_version()}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.md"))
    parser.add_argument("--skip-pandas-above", type=int, default=200_000_000)
    parser.add_argument("--only", nargs="+", metavar="TEXT", help="run only the reductions whose name has TEXT")
    parser.add_argument(
        "--report-jobs",
        type=int,
        nargs="*",
        default=[1],
        help="--jobs of the full report runs (default: 1, the CLI's default; none: skip them)",
    )
    parser.add_argument(
        "--capped",
        nargs="*",
        default=["1GB"],
        metavar="LIMIT",
        help="also run the userops path with USEROPS_MEMORY_LIMIT set to each LIMIT (default: 1GB, "
        "as `userops report` caps each kernel's DuckDB; 'none': DuckDB's own default; none given: "
        "skip)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each reduction this many times and report the "
        "median time and peak, with the range of times (default 1)",
    )
    parser.add_argument("--keep", metavar="DIR", help="write the datasets to DIR/<size> and reuse them next time")
    args = parser.parse_args(argv)
    os.environ.pop("USEROPS_MEMORY_LIMIT", None)
    from userops_lib import engine

    caps = "; ".join(f"'{_capped(cap)}' is the same code with USEROPS_MEMORY_LIMIT={cap}" for cap in args.capped)
    lines = [
        f"\n## Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {machine()}. 'userops' runs as in a notebook, with its default DuckDB memory limit (an "
        f"eighth of the RAM: {engine.memory_limit()}); the SQL floor with DuckDB's own default (80% of the RAM)"
        + (f"; {caps} (1GB: as `userops report` runs each notebook kernel; none: DuckDB's own default)" if caps else "")
        + (
            f". Each cell is the median of {args.repeat} runs; the range of times in brackets."
            if args.repeat > 1
            else ". One run per cell."
        ),
        "",
    ]
    floors: list[tuple[int, str, float]] = []  # (events, reduction, best userops time / best SQL time)
    for size in args.events:
        with tempfile.TemporaryDirectory(prefix="userops-bench-") as scratch:
            folder = Path(args.keep) / str(size) if args.keep else Path(scratch)
            if (folder / "dataset.yml").exists():
                made = None  # kept from an earlier run with --keep
            else:
                folder.mkdir(parents=True, exist_ok=True)
                made = generate(folder, size)
            made_ = "dataset kept from an earlier run" if made is None else f"generated in {made:.1f} s"
            lines += [
                f"### {size:,} events ({size // 20:,} users; {made_})",
                "",
                "| reduction | path | seconds | peak MiB | time vs SQL | faster than pandas | lighter than pandas |",
                "|---|---|---:|---:|---:|---:|---:|",
            ]
            for name, paths in {**MEASUREMENTS, **registered()}.items():
                if args.only and not any(text in name for text in args.only):
                    continue
                results = {}
                runs = [(path, code, None) for path, code in paths.items()]
                if "userops" in paths:
                    runs[1:1] = [(_capped(cap), paths["userops"], cap) for cap in args.capped]
                for path, code, cap in runs:
                    if path == "pandas" and size > args.skip_pandas_above:
                        results[path] = {"error": "skipped"}
                        continue
                    results[path] = measure(folder, code, {"USEROPS_MEMORY_LIMIT": cap}, repeat=args.repeat)
                    print(size, name, path, results[path], flush=True)
                sql, pandas_ = results.get("duckdb_sql", {}), results.get("pandas", {})
                for path, result in results.items():
                    if "error" in result:
                        lines.append(f"| {name} | {path} | {result['error']} | | | | |")
                        continue
                    ratio = f"{result['seconds'] / sql['seconds']:.2f}×" if "seconds" in sql else ""
                    if path == "userops" and "seconds" in sql:
                        best = min(result["all_seconds"]) / min(sql["all_seconds"])
                        floors.append((size, name, best))
                        if best > REGRESSION:
                            ratio += f" **regression** (best {best:.2f}× > {REGRESSION}×)"
                    ours = path.startswith("userops") and name != "load and validate the dataset"
                    speed = f"{pandas_['seconds'] / result['seconds']:.1f}×" if ours and "seconds" in pandas_ else ""
                    memory = (
                        f"{pandas_['peak_mib'] / result['peak_mib']:.1f}×" if ours and "peak_mib" in pandas_ else ""
                    )
                    spread = (
                        f" ({min(result['all_seconds']):.2f}–{max(result['all_seconds']):.2f})"
                        if len(result["all_seconds"]) > 1
                        else ""
                    )
                    lines.append(
                        f"| {name} | {path} | {result['seconds']:.2f}{spread} | {result['peak_mib']:.0f} | "
                        f"{ratio} | {speed} | {memory} |"
                    )
            if args.report_jobs:
                lines.append("")
            for jobs in args.report_jobs:
                report = measure_report(folder, jobs)
                print(size, "userops report", jobs, report, flush=True)
                lines += [
                    f"Full `userops report --jobs {jobs}` (all notebooks, process tree): "
                    + (
                        report["error"]
                        if "error" in report
                        else f"{report['seconds']:.0f} s, peak {report['peak_mib']:.0f} MiB, {report['rows']} HTML pages, "
                        f"largest {report['largest']}."
                    ),
                    "",
                ]
            lines.append("")
    regressions = [(size, name, best) for size, name, best in floors if best > REGRESSION]
    if floors:
        lines.append(
            f"Against the SQL floor (best of {args.repeat} each): "
            + "; ".join(f"{name} at {size:,}: {best:.2f}×" for size, name, best in floors)
            + (
                f". **Regressions** (above {REGRESSION}×): " + "; ".join(f"{n} at {s:,}" for s, n, _ in regressions)
                if regressions
                else f". None above {REGRESSION}×."
            )
        )
        lines.append("")
    append(args.out, lines)
    for size, name, best in floors:
        mark = f"  REGRESSION (above {REGRESSION}×)" if best > REGRESSION else ""
        print(f"{size:>12,} events  {best:5.2f}× the SQL floor  {name}{mark}")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
