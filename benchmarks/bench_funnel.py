"""Funnel matrix: 2, 3 and 4 steps in ordered, strict and any order, userops against hand-written DuckDB SQL
written for each and against idiomatic pandas.

    python benchmarks/bench_funnel.py --events 10000000 100000000 [--repeat 3] [--keep DIR]

The world is bench.py's (about 20 events per user over their lifetime, made by DuckDB), with the sessions
renamed to four kinds so that funnels have steps to climb: ``session``, ``view``, ``cart``, ``checkout``
(and ``purchase`` as in bench.py). The funnels: view → purchase; view → cart → purchase;
view → cart → checkout → purchase; each user's first view enters, 14-day window, snapshot 2026-01-01.

Every path returns the users by (window complete, last step reached); the run fails when any path's counts
differ from the SQL's, so a fast wrong answer never enters results.md. Each cell runs in its own child
process (bench.measure): wall time of the timed lines and peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench

STEPS = {2: ["view", "purchase"], 3: ["view", "cart", "purchase"], 4: ["view", "cart", "checkout", "purchase"]}
ORDERS = ("ordered", "strict", "any")
WINDOW_DAYS = 14
SNAPSHOT = "2026-01-01"
TARGET = 1.2  # userops at most this many times the SQL written for the funnel
PANDAS = 3.0  # and at least this many times faster than pandas

RENAME = """
COPY (
    SELECT user_id, event_at,
           CASE WHEN event = 'purchase' THEN 'purchase'
                ELSE ['session', 'session', 'session', 'session', 'session', 'session', 'session', 'session',
                      'view', 'view', 'view', 'view', 'view', 'cart', 'cart', 'cart', 'checkout', 'checkout',
                      'checkout'][1 + CAST(hash(user_id * 31 + epoch(event_at)) % 19 AS INTEGER)] END AS event,
           revenue
    FROM '{source}/events.parquet'
) TO '{source}/funnel/funnel_events.parquet' (FORMAT parquet, ROW_GROUP_SIZE 1000000);
"""

MANIFEST = f"""name: bench-funnel
snapshot_at: {SNAPSHOT}
tables:
  users: {{path: users.parquet}}
  events: {{path: funnel_events.parquet}}
"""

USEROPS = """
    from userops_lib.data import load_dataset
    from userops_lib.analyses.funnel import engine
    ds = load_dataset(FOLDER + "/funnel")
    # -- timed --
    times = engine.step_times(ds.table("events"), {steps!r}, window_days={window}, order={order!r},
                              snapshot=ds.snapshot_at)
    counts = engine.reached_counts(times, {k})
    rows = sorted([bool(c), int(r), int(n)] for c, r, n in zip(counts.complete, counts.reached, counts.users))
"""


def sql(names: list[str], order: str) -> str:
    """The hand-written DuckDB SQL for one funnel: each user's first entry, the events restricted to the
    windows once, then the steps from that small set (ordered: one pass a step; strict: lead() over the
    user's window; any: one pass)."""
    k = len(names)
    quoted = ", ".join(f"'{n}'" for n in names)
    only_steps = "" if order == "strict" else f"AND e.event IN ({quoted})"
    head = f"""
        WITH e AS (SELECT user_id, event_at, event FROM '{{FOLDER}}/funnel/funnel_events.parquet'
                   WHERE event_at < TIMESTAMP '{SNAPSHOT}'),
             entry AS (SELECT user_id, min(event_at) AS t1 FROM e WHERE event = '{names[0]}' GROUP BY user_id),
             w AS (SELECT e.user_id, e.event_at, e.event, entry.t1 FROM e JOIN entry USING (user_id)
                   WHERE e.event_at >= entry.t1 AND e.event_at <= entry.t1 + INTERVAL {WINDOW_DAYS} DAY {only_steps})"""
    complete = f"t1 + INTERVAL {WINDOW_DAYS} DAY <= TIMESTAMP '{SNAPSHOT}'"
    if order == "ordered":
        ctes, joins = [], []
        for step in range(2, k + 1):
            source = "entry" if step == 2 else f"s{step - 1}"
            ctes.append(
                f"s{step} AS (SELECT s.user_id, min(w.event_at) AS t{step} FROM {source} s JOIN w USING (user_id) "
                f"WHERE w.event = '{names[step - 1]}' AND w.event_at >= s.t{step - 1} GROUP BY s.user_id)"
            )
            joins.append(f"LEFT JOIN s{step} USING (user_id)")
        reached = " + ".join(["1"] + [f"(t{step} IS NOT NULL)::INT" for step in range(2, k + 1)])
        return (
            head + ", " + ", ".join(ctes) + f" SELECT {complete} AS complete, {reached} AS reached, count(*) AS users "
            f"FROM entry {' '.join(joins)} GROUP BY ALL"
        )
    if order == "strict":
        leads = ", ".join(f"lead(event, {j}) OVER u AS n{j}, lead(event_at, {j}) OVER u AS a{j}" for j in range(1, k))
        conditions = [f"n{j} = '{names[j]}' AND a{j} <= t1 + INTERVAL {WINDOW_DAYS} DAY" for j in range(1, k)]
        cases = " ".join(f"WHEN {' AND '.join(conditions[:j])} THEN {j + 1}" for j in range(k - 1, 0, -1))
        return (
            head
            + f""",
             led AS (SELECT user_id, event_at, event, t1, {leads},
                            row_number() OVER u AS pos
                     FROM w WINDOW u AS (PARTITION BY user_id ORDER BY event_at, event)),
             start AS (SELECT * FROM led WHERE event_at = t1 AND event = '{names[0]}'
                       QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY pos) = 1)
             SELECT {complete} AS complete, CASE {cases} ELSE 1 END AS reached, count(*) AS users
             FROM start GROUP BY ALL"""
        )
    found = ", ".join(f"min(event_at) FILTER (WHERE event = '{names[j]}') AS f{j + 1}" for j in range(1, k))
    reached = " + ".join(
        ["1"] + [f"({' AND '.join(f'f{i} IS NOT NULL' for i in range(2, j + 1))})::INT" for j in range(2, k + 1)]
    )
    return (
        head
        + f""",
             found AS (SELECT user_id, t1, {found} FROM w GROUP BY user_id, t1)
             SELECT {complete} AS complete, {reached} AS reached, count(*) AS users FROM found GROUP BY ALL"""
    )


SQL = """
    import duckdb
    con = duckdb.connect(); con.execute("SET threads TO 2")
    counts = con.execute(f'''{query}''').fetchall()
    rows = sorted([bool(c), int(r), int(n)] for c, r, n in counts)
"""

PANDAS_CODE = """
    import pandas as pd, pyarrow.parquet as pq
    names, k, order = {names!r}, {k}, {order!r}
    window, snapshot = pd.Timedelta(days={window}), pd.Timestamp("{snapshot}")
    # -- timed --
    e = pq.read_table(FOLDER + "/funnel/funnel_events.parquet", columns=["user_id", "event_at", "event"],
                      read_dictionary=["event"]).to_pandas()
    e = e[e.event_at < snapshot]
    if order != "strict":
        e = e[e.event.isin(names)]
    entry = e[e.event == names[0]].groupby("user_id", sort=False).event_at.min().rename("t1")
    w = e.join(entry, on="user_id", how="inner")
    w = w[(w.event_at >= w.t1) & (w.event_at <= w.t1 + window)]
    reached = pd.Series(1, index=entry.index)
    if order == "ordered":
        at = entry
        for step in range(2, k + 1):
            cand = w[w.event == names[step - 1]].join(at.rename("since"), on="user_id", how="inner")
            at = cand[cand.event_at >= cand.since].groupby("user_id", sort=False).event_at.min()
            reached[at.index] = step
    elif order == "strict":
        w = w.sort_values(["user_id", "event_at", "event"], kind="stable")
        g = w.groupby("user_id", sort=False)
        ok = pd.Series(True, index=w.index)
        start = (w.event_at == w.t1) & (w.event == names[0])
        first = w[start].groupby("user_id", sort=False).head(1).index
        for j in range(1, k):
            ok = ok & (g.event.shift(-j) == names[j]) & (g.event_at.shift(-j) <= w.t1 + window)
            hit = ok.loc[first]
            reached[w.loc[hit[hit].index, "user_id"].to_numpy()] = j + 1
    else:
        have = w.groupby(["user_id", "event"], observed=True, sort=False).size().unstack(fill_value=0) > 0
        ok = pd.Series(True, index=have.index)
        for step in range(2, k + 1):
            ok = ok & have.get(names[step - 1], False)
            reached[ok[ok].index] = step
    complete = entry + window <= snapshot
    counts = pd.DataFrame({{"complete": complete, "reached": reached}}).value_counts()
    rows = sorted([bool(c), int(r), int(n)] for (c, r), n in counts.items())
"""


def paths(k: int, order: str) -> dict[str, str]:
    names = STEPS[k]
    steps = [[n] for n in names]
    return {
        "userops": USEROPS.format(steps=steps, window=WINDOW_DAYS, order=order, k=k),
        "duckdb_sql": SQL.format(query=sql(names, order)),
        "pandas": PANDAS_CODE.format(names=names, k=k, order=order, window=WINDOW_DAYS, snapshot=SNAPSHOT),
    }


def prepare(folder: Path, size: int) -> str:
    import duckdb

    if (folder / "funnel" / "dataset.yml").exists():
        return "dataset kept from an earlier run"
    started = time.perf_counter()
    if not (folder / "events.parquet").exists():
        folder.mkdir(parents=True, exist_ok=True)
        bench.generate(folder, size)
    (folder / "funnel").mkdir(exist_ok=True)
    duckdb.connect().execute(RENAME.format(source=folder))
    os.link(folder / "users.parquet", folder / "funnel" / "users.parquet")
    (folder / "funnel" / "dataset.yml").write_text(MANIFEST, encoding="utf-8")
    return f"generated in {time.perf_counter() - started:.1f} s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--out", default=str(bench.ROOT / "benchmarks" / "results.md"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", metavar="DIR", help="bench.py's --keep: reuse DIR/<size> (and its funnel/)")
    parser.add_argument("--skip-pandas-above", type=int, default=200_000_000)
    parser.add_argument("--only", nargs="+", metavar="TEXT", help="only the cells whose name has TEXT")
    args = parser.parse_args(argv)
    lines = [
        f"\n## Funnel matrix, run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {bench.machine()}. bench_funnel.py: {WINDOW_DAYS}-day window, first entry; "
        f"{'median of ' + str(args.repeat) + ' runs, ratios from the best of each' if args.repeat > 1 else 'one run per cell'}. "
        f"Targets: at most {TARGET}× the SQL, at least {PANDAS:.0f}× faster than pandas; counts equal on every path.",
        "",
    ]
    failures = []
    for size in args.events:
        with tempfile.TemporaryDirectory(prefix="userops-bench-") as scratch:
            folder = Path(args.keep) / str(size) if args.keep else Path(scratch)
            made = prepare(folder, size)
            lines += [
                f"### {size:,} events ({made})",
                "",
                "| funnel | order | userops s | SQL s | pandas s | vs SQL | faster than pandas | peak MiB (userops / SQL / pandas) |",
                "|---|---|---:|---:|---:|---:|---:|---|",
            ]
            for k in STEPS:
                for order in ORDERS:
                    name = f"{k} steps, {order}"
                    if args.only and not any(text in name for text in args.only):
                        continue
                    results = {}
                    for path, code in paths(k, order).items():
                        if path == "pandas" and size > args.skip_pandas_above:
                            results[path] = {"error": "skipped"}
                            continue
                        results[path] = bench.measure(folder, code, repeat=args.repeat)
                        print(size, name, path, results[path], flush=True)
                    sql_, ours, pandas_ = results["duckdb_sql"], results["userops"], results["pandas"]
                    wrong = [p for p, r in results.items() if "rows" in r and r["rows"] != sql_.get("rows")]
                    errors = [
                        f"{p}: {r['error']}" for p, r in results.items() if "error" in r and r["error"] != "skipped"
                    ]
                    if wrong or errors:
                        failures.append(f"{size:,} {name}: counts differ on {wrong} {errors}")
                        lines.append(
                            f"| {name} | | | | | **counts differ: {', '.join(wrong)}** {'; '.join(errors)} | | |"
                        )
                        continue
                    ratio = min(ours["all_seconds"]) / min(sql_["all_seconds"])
                    speed = (min(pandas_["all_seconds"]) / min(ours["all_seconds"])) if "seconds" in pandas_ else None
                    missed = ratio > TARGET or (speed is not None and speed < PANDAS)
                    if missed:
                        failures.append(
                            f"{size:,} {name}: {ratio:.2f}× the SQL" + (f", {speed:.1f}× pandas" if speed else "")
                        )
                    pandas_s = f"{pandas_['seconds']:.2f}" if "seconds" in pandas_ else "skipped"
                    peaks = " / ".join(
                        f"{r['peak_mib']:.0f}" if "peak_mib" in r else "–" for r in (ours, sql_, pandas_)
                    )
                    lines.append(
                        f"| {STEPS[k][0]} → … → {STEPS[k][-1]} ({k}) | {order} | {ours['seconds']:.2f} | "
                        f"{sql_['seconds']:.2f} | {pandas_s} | {ratio:.2f}×{' **missed**' if missed else ''} | "
                        f"{f'{speed:.1f}×' if speed else ''} | {peaks} |"
                    )
            lines.append("")
    lines.append(("Missed or wrong: " + "; ".join(failures)) if failures else "Every cell within its targets.")
    lines.append("")
    print("\n".join(lines))
    bench.append(args.out, lines)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
