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


def _err(msg: str) -> None:
    print(f"pkdn: error: {msg}", file=sys.stderr, flush=True)


def _add_sr(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sr",
        help="super-resolve face crops x8 (16x16 -> 128x128 is the trained case) into PNG files",
        description="Super-resolve face crops x8 with a student model. INPUT: files, folders (their image "
        "files) or glob patterns. Each output is OUT_DIR/<stem>.png. Exit status: 0 all done, 1 some "
        "inputs failed (each named on stderr), 2 nothing could start (bad model, output folder...).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder or glob")
    p.add_argument("-o", "--out-dir", required=True, metavar="OUT_DIR", help="output folder (not an input folder)")
    p.add_argument("--model", metavar="CKPT", default=None, help="student model file (default: the shipped student)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--batch-size", type=int, default=32, metavar="N")
    p.add_argument("--max-side", type=int, default=512, metavar="PX", help="refuse inputs with a longer side (default 512)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch (default: torch's)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show a progress bar")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="never show one (default: for folders/globs)")
    p.set_defaults(func=_run_sr)


def _run_sr(args: argparse.Namespace) -> int:
    import torch

    from pkdn import inference

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = inference.load(args.model, device=args.device)
    except (OSError, ValueError, RuntimeError) as e:
        _err(str(e))
        return 2
    try:
        report = inference.sr_files(
            model, args.inputs, args.out_dir, batch_size=args.batch_size, max_side=args.max_side,
            progress=args.progress, on_error=lambda name, reason: _err(f"{name}: {reason}"),
        )
    except ValueError as e:
        _err(str(e))
        return 2
    n_fail = len(report.failed)
    print(f"wrote {len(report.written)} image(s) to {args.out_dir}" + (f"; {n_fail} input(s) failed" if n_fail else ""))
    return 1 if n_fail else 0


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_info, _add_sr]


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
