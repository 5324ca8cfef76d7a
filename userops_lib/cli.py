"""The ``userops`` command.

Exit codes: 0 success, 1 an analysis failed, 2 bad input or usage (printed without a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from userops_lib.errors import DataError, Interrupted, RunWriteError


def _use_engine(name: str | None) -> None:
    """Choose the engine for this process and the notebook kernels it starts (they inherit the environment)."""
    from userops_lib import engine

    if name:
        os.environ[engine.ENV] = engine.chosen(name)


def _validate(args: argparse.Namespace) -> int:
    from userops_lib.data import load_dataset

    _use_engine(args.engine)
    dataset = load_dataset(args.dataset, snapshot_at=args.snapshot_at, calendar=args.timezone)
    print(dataset.quality)
    print("valid")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from userops_lib.synth_files import write_world

    if args.users < 10:
        raise DataError.single(
            "synth", "--users must be at least 10", "give --users 10 or more", example=args.users, key="synth.users"
        )
    out = write_world(
        args.out,
        users=args.users,
        seed=args.seed,
        force=args.force,
        funnel=args.funnel,
        clv=args.clv,
        timezone=args.timezone,
    )
    print(f"wrote a synthetic world of {args.users:,} users (seed {args.seed}) to {out}")
    return 0


def _parameter(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    return name.strip(), value


def _positive(kind: type, *, most: float):
    """An argparse type: a number of ``kind`` above 0 and at most ``most`` (argparse exits 2 otherwise)."""

    def read(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a {'whole ' if kind is int else ''}number, got {text!r}"
            ) from None
        if not 0 < value <= most:
            raise argparse.ArgumentTypeError(f"must be above 0 and at most {most:g}, got {text}")
        return value

    return read


def _report(args: argparse.Namespace) -> int:
    from userops_lib import imports

    imports.jsonschema()  # before nbformat, which report and runner import: without the IRI grammar
    from userops_lib import report, runner

    _use_engine(args.engine)
    parameters: dict[str, str] = {}
    for name, value in args.parameter or []:
        parameters[name] = value
    plan = report.plan_run(
        dataset=args.dataset,
        only=args.only,
        parameters=parameters,
        config=args.config,
        notebooks_dir=args.notebooks,
        language=args.lang,
        timezone=args.timezone,
    )
    if args.check:
        # everything checked that can be before a kernel starts: say what would run, run nothing
        print(f"checked: dataset {plan.dataset_name}, {len(plan.jobs)} report(s) would run in {plan.language}:")
        for job in plan.jobs:
            grid = ", ".join(f"{k}={v}" for k, v in job.grid_values.items())
            print(f"  {job.name}" + (f"  ({grid})" if grid else ""))
        for skipped in plan.skipped:
            print(f"  {skipped['name']}  skipped: {skipped['reason']}")
        return 0
    code, folder = runner.execute(
        plan, out=args.out, jobs=args.jobs, timeout_minutes=args.timeout_minutes, use_store=not args.no_store
    )
    state = "all reports OK" if code == 0 else "some reports FAILED (see the index)"
    print(f"{state}: {folder / 'index.html'}")
    return code


TIMEZONE_HELP = (
    "zone of the calendar that days, weeks and months are counted in (an IANA name such as Asia/Shanghai); "
    "default: the dataset's calendar (dataset.yml's calendar.timezone, else its timezone, else UTC)"
)
ENGINE_HELP = (
    "where the reductions run for dataset folders: duckdb (embedded, default) or spark (PySpark; "
    "needs the [spark] extra and Java 17; Parquet files only). Default: $USEROPS_ENGINE, else duckdb"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="userops", description="User-operations analytics workbench: datasets, analyses and reports."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a dataset and print its data-quality summary",
        description="Load a dataset (a folder with dataset.yml, or a connection URL), check every table and "
        "print what was read, kept and set aside. Exit 0 if valid, 2 if not.",
    )
    validate.add_argument("dataset", help="dataset folder, path of a dataset.yml, or an Ibis connection URL")
    validate.add_argument(
        "--snapshot-at",
        help="'as of' time, in the calendar's zone unless it carries an offset, e.g. 2025-12-31; default: the "
        "manifest's, else the latest event that is not in the future",
    )
    validate.add_argument("--timezone", metavar="ZONE", help=TIMEZONE_HELP)
    validate.add_argument("--engine", choices=["duckdb", "spark"], help=ENGINE_HELP)
    validate.set_defaults(run=_validate)

    synth = commands.add_parser(
        "synth",
        help="write a synthetic dataset whose true parameters are known",
        description="Generate a deterministic synthetic world (users, events, a randomised campaign) and write "
        "it as a dataset folder with truth.json. The same seed gives the same data.",
    )
    synth.add_argument("--out", required=True, help="a new or empty folder to write (see --force)")
    synth.add_argument(
        "--users", type=_positive(int, most=100_000_000), default=10_000, help="number of users (default 10000)"
    )
    synth.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    synth.add_argument(
        "--force", action="store_true", help="replace --out even if it holds files (default: refuse a non-empty folder)"
    )
    synth.add_argument(
        "--funnel",
        action="store_true",
        help="add a product funnel on the signup day (view, add_to_cart, checkout, order) whose step "
        "probabilities differ by platform (in truth.json)",
    )
    synth.add_argument(
        "--clv",
        action="store_true",
        help="add store orders (shop_order) from signup on whose process is BG/NBD with Gamma-Gamma spend, "
        "with known parameters (in truth.json)",
    )
    synth.add_argument(
        "--timezone",
        metavar="ZONE",
        default="UTC",
        help="the zone the world lives in (an IANA name, e.g. Asia/Shanghai): its times are written as wall "
        "times of that zone and its days are local days (default UTC)",
    )
    synth.set_defaults(run=_synth)

    report = commands.add_parser(
        "report",
        help="run the analysis notebooks and publish HTML reports",
        description="Execute each notebook in notebooks/ with papermill against a dataset and render "
        "self-contained HTML, CSV artifacts and a manifest into reports/<run-id>/ "
        "(reports/latest points at the newest fully successful run). Exit 0 all OK, 1 a report "
        "failed, 2 bad dataset, parameters or config (before any kernel starts).",
    )
    report.add_argument("dataset", nargs="?", help="dataset folder or connection URL (default: data/sample)")
    report.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks (by file name stem)")
    report.add_argument(
        "-p",
        "--parameter",
        action="append",
        type=_parameter,
        metavar="NAME=VALUE",
        help="set a notebook parameter (checked against each notebook's declared type)",
    )
    report.add_argument("--config", help="YAML batch file: dataset, parameters, per-notebook parameters, grid")
    report.add_argument("--out", help="folder for runs (default: reports/)")
    report.add_argument(
        "--jobs",
        type=_positive(int, most=64),
        help="notebooks run at once, each worker in its own process with a kernel it keeps (default: one a core, "
        "at most 4, each with 2 GiB of DuckDB memory)",
    )
    report.add_argument(
        "--timeout-minutes", type=_positive(float, most=24 * 60), help="whole-run limit per notebook (default 20)"
    )
    report.add_argument("--notebooks", help="folder of notebooks (default: the project's notebooks/)")
    report.add_argument(
        "--check",
        action="store_true",
        help="check the dataset, parameters and config and list the reports that would run; run nothing (exit 0 or 2)",
    )
    report.add_argument("--engine", choices=["duckdb", "spark"], help=ENGINE_HELP)
    report.add_argument(
        "--no-store",
        action="store_true",
        help="have every notebook read and check the dataset itself (default: once per run, kept in a DuckDB "
        "file in the run's folder while it runs)",
    )
    report.add_argument(
        "--lang",
        choices=["en", "zh"],
        help="language of the reports: en (English, default) or zh "
        "(Simplified Chinese); sets every notebook's `language` parameter",
    )
    report.add_argument(
        "--timezone", metavar="ZONE", help=TIMEZONE_HELP + "; sets every notebook's `timezone` parameter"
    )
    report.set_defaults(run=_report)

    notebooks = commands.add_parser(
        "notebooks",
        help="write the analysis notebooks from the registry",
        description="Write notebooks/<analysis>.ipynb for every analysis folder in userops_lib/analyses/ (the "
        "parameters cell from its Params). With --check, write nothing and exit 1 when a notebook differs.",
    )
    notebooks.add_argument("--out", help="folder to write (default: the project's notebooks/)")
    notebooks.add_argument("--check", action="store_true", help="only compare; exit 1 when a notebook differs")
    notebooks.set_defaults(run=_notebooks)
    return parser


def _notebooks(args: argparse.Namespace) -> int:
    from userops_lib import imports

    imports.jsonschema()  # before nbformat: without the IRI grammar
    from userops_lib import notebooks
    from userops_lib.report import PROJECT_ROOT

    folder = Path(args.out) if args.out else PROJECT_ROOT / "notebooks"
    differ = notebooks.write(folder, check=args.check)
    if args.check:
        for name in differ:
            print(f"{folder / name}: differs from its generation (run: userops notebooks)")
        return 1 if differ else 0
    print(f"wrote {len(differ)} notebook(s) in {folder}" if differ else f"the notebooks in {folder} are up to date")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except DataError as error:
        print(f"userops {args.command}: {error}", file=sys.stderr)
        return 2
    except RunWriteError as error:
        print(f"userops {args.command}: the run FAILED: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted) as error:
        print(f"userops {args.command}: stopped ({error or 'interrupted'})", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
