"""The `pkdn` command line: argument parsing and printing only.

Every sub-command calls into the library; each ``_add_*`` function below
registers one sub-command and names the library function it runs.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameter counts and GFLOPs of every network and preset")
    p.add_argument("--size", type=int, default=16, help="LR side length (HR = 8x)")
    p.set_defaults(func=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from pkdn.models.summary import summary_table

    print(summary_table(lr_size=args.size))
    return 0


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_info]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pkdn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
