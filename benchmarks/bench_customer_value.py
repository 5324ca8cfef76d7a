"""Customer value at scale: fit and score N customers (default 1,000,000) in a child process, timed.

    .venv/bin/python benchmarks/bench_customer_value.py --customers 1000000

generates a purchase log whose process is BG/NBD with Gamma-Gamma spend (``userops_lib.synth_purchases``,
the truth of ``userops synth --clv``): each customer's first purchase uniformly over 2025, repeat
purchases to the end of the year. It writes ``events.parquet`` and a ``dataset.yml``, then runs
``customer_value.run`` as the notebook does (load the dataset, the engine's per-customer pass, the fits
by MAP on a random sample of ``max_fit_customers`` customers, scoring everyone, intervals of the totals,
value tiers against RFM segments) in a child process, and records its wall time and peak resident memory
(``ru_maxrss``) in ``results.md``. Target (issue 17): 1M customers in under 3 minutes and 4 GiB.
The first run on a machine also compiles pytensor's C code (cached in ~/.pytensor): ``--repeat 2``
records both runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    start = time.perf_counter()
    from userops_lib.analyses import customer_value
    from userops_lib.data import load_dataset
    imported = time.perf_counter()
    ds = load_dataset(sys.argv[1])
    result = customer_value.run(ds, customer_value.Params(dataset=sys.argv[1], purchase_event="purchase"))
    tables = result.tables()
    done = time.perf_counter()
    print(json.dumps({
        "seconds": done - imported,
        "import_seconds": imported - start,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "customers": len(result.customers),
        "fitted": result.fitted_customers,
        "parameters": result.parameters.round(4).to_dict("records"),
        "rows": {k: len(v) for k, v in tables.items()},
    }))
    """
)


def generate(folder: Path, customers: int, seed: int = 0) -> tuple[float, int]:
    from userops_lib.synth_purchases import STORE, bgnbd_purchases

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-01-01")
    first = pd.Series(
        start + pd.to_timedelta(rng.integers(0, 365 * 86_400, customers), unit="s"),
        index=[f"c{i:07d}" for i in range(customers)],
    )
    spec = {**STORE, "event": "purchase"}
    events = bgnbd_purchases(first, pd.Timestamp("2026-01-01"), rng, spec)
    events.to_parquet(folder / "events.parquet", index=False, coerce_timestamps="us")
    (folder / "dataset.yml").write_text(
        "name: clv_bench\ncurrency: $\nsnapshot_at: '2026-01-01'\ntables:\n  events:\n    path: events.parquet\n"
    )
    return time.perf_counter() - started, len(events)


def measure(folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (the first may compile pytensor)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to results.md")
    args = parser.parse_args(argv)
    from bench import machine  # the same machine line as the event benchmarks

    lines = [f"\n## Customer value run of {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n", f"Machine: {machine()}.\n"]
    lines += [
        "| customers | events | fitted on | run | seconds | peak MiB | within 3 min and 4 GiB |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for customers in args.customers:
        with tempfile.TemporaryDirectory(prefix="clv-bench-") as tmp:
            seconds, events = generate(Path(tmp), customers)
            print(f"{customers:,} customers: {events:,} events generated in {seconds:.1f} s", flush=True)
            for run in range(1, args.repeat + 1):
                got = measure(Path(tmp))
                ok = got["seconds"] < 180 and got["peak_mib"] < 4096
                print(json.dumps(got), flush=True)
                lines.append(
                    f"| {customers:,} | {events:,} | {got['fitted']:,} | {run} | {got['seconds']:.1f} | "
                    f"{got['peak_mib']:,.0f} | {'yes' if ok else 'NO'} |"
                )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        with (HERE / "results.md").open("a", encoding="utf-8") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
