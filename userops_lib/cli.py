"""The ``userops`` command.

Exit codes: 0 success, 1 an analysis failed, 2 bad input or usage (printed without a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from userops_lib.errors import DataError


def _validate(args: argparse.Namespace) -> int:
    from userops_lib.data import load_dataset

    dataset = load_dataset(args.dataset, snapshot_at=args.snapshot_at)
    print(dataset.quality)
    print("valid")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from userops_lib.synth import write_world

    if args.users < 10:
        raise DataError.single("synth", "--users must be at least 10", "give --users 10 or more",
                               example=args.users)
    out = write_world(args.out, users=args.users, seed=args.seed)
    print(f"wrote a synthetic world of {args.users:,} users (seed {args.seed}) to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="userops", description="User-operations analytics workbench: datasets, analyses and reports.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check a dataset and print its data-quality summary",
        description="Load a dataset (a folder with dataset.yml, or a connection URL), check every table and "
                    "print what was read, kept and set aside. Exit 0 if valid, 2 if not.")
    validate.add_argument("dataset", help="dataset folder, path of a dataset.yml, or an Ibis connection URL")
    validate.add_argument("--snapshot-at", help="'as of' time (UTC), e.g. 2025-12-31; default: the manifest's, "
                                                "else the latest event that is not in the future")
    validate.set_defaults(run=_validate)

    synth = commands.add_parser(
        "synth", help="write a synthetic dataset whose true parameters are known",
        description="Generate a deterministic synthetic world (users, events, a randomised campaign) and write "
                    "it as a dataset folder with truth.json. The same seed gives the same data.")
    synth.add_argument("--out", required=True, help="folder to write (replaced only once complete)")
    synth.add_argument("--users", type=int, default=10_000, help="number of users (default 10000)")
    synth.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    synth.set_defaults(run=_synth)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except DataError as error:
        print(f"userops {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
