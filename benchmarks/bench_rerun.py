"""A notebook re-run as an analyst does it in JupyterLab: the kernel already started and the notebook run once,
then "Run All" again. Target (issue 30): under 5 s on the sample for every notebook.

    python benchmarks/bench_rerun.py [--dataset data/sample] [--out benchmarks/results.md]

Each notebook of notebooks/ runs in its own kernel (nbclient, as JupyterLab's kernel would), with its default
parameters and ``dataset`` set; the first run (imports, the dataset's first load) and the second are timed
separately over the code cells. The figures are appended to results.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench

TARGET = 5.0


def rerun(path: Path, dataset: str) -> tuple[float, float]:
    """Seconds of the first run and of the re-run of every code cell of ``path`` in one kernel."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    cells = [(i, c) for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    client = NotebookClient(notebook, kernel_name="python3", resources={"metadata": {"path": str(bench.ROOT)}})
    times = []
    with client.setup_kernel():
        client.execute_cell(nbformat.v4.new_code_cell(f"dataset = {dataset!r}"), 0)
        for _ in range(2):
            started = time.perf_counter()
            for index, cell in cells:
                source = cell.source
                if "parameters" in cell.metadata.get("tags", []):
                    cell.source = source + f"\ndataset = {dataset!r}"
                client.execute_cell(cell, index)
                cell.source = source
            times.append(time.perf_counter() - started)
    return times[0], times[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="data/sample")
    parser.add_argument("--out", default=str(bench.ROOT / "benchmarks" / "results.md"))
    args = parser.parse_args(argv)
    rows, missed = [], []
    for path in sorted((bench.ROOT / "notebooks").glob("*.ipynb")):
        first, again = rerun(path, args.dataset)
        print(f"{path.stem}: first run {first:.1f} s, re-run {again:.1f} s", flush=True)
        rows.append(f"| {path.stem} | {first:.1f} | {again:.1f}{' **missed**' if again > TARGET else ''} |")
        if again > TARGET:
            missed.append(path.stem)
    lines = [
        f"\n## Notebook re-runs in a started kernel, run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {bench.machine()}. bench_rerun.py on {args.dataset}: every code cell, in one kernel, twice "
        f"(the second is JupyterLab's Run All after a first run); target under {TARGET:.0f} s.",
        "",
        "| notebook | first run s | re-run s |",
        "|---|---:|---:|",
        *rows,
        "",
        ("Above the target: " + ", ".join(missed)) if missed else "Every notebook re-runs within the target.",
        "",
    ]
    print("\n".join(lines))
    bench.append(args.out, lines)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
