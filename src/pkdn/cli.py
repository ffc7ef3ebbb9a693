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


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="turn a folder of face photos into HR / LR / parsing-map triples")
    p.add_argument("images_dir", help="folder of face crops (or one holding train/ val/ test/)")
    p.add_argument("out_dir", help="output dataset folder (re-runs resume and skip finished files)")
    p.add_argument("--scale", type=int, default=8, help="downscaling factor HR -> LR (default 8)")
    p.add_argument("--hr-size", type=int, default=128, help="HR side length in pixels (default 128)")
    p.add_argument("--crop", choices=["center", "resize"], default="center",
                   help="take the central square of each crop (default) or squeeze the whole crop into the square")
    p.add_argument("--parser", default="landmarks", help="facial parser: landmarks (default, offline) or bisenet")
    p.add_argument("--checkpoint", default=None, help="BiSeNet weights (79999_iter.pth) for --parser bisenet")
    p.add_argument("--split", default=None,
                   help="'auto' (default: train/val/test folders if present, else seeded 0.9,0.05,0.05), "
                        "'folders', one split name, or fractions 'TRAIN,VAL,TEST'")
    p.add_argument("--seed", type=int, default=0, help="seed of the hash split (default 0)")
    p.add_argument("--limit", type=int, default=None, help="prepare only the first N images of each split")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    import logging

    from pkdn.data.prepare import prepare

    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    try:
        summary = prepare(args.images_dir, args.out_dir, scale=args.scale, hr_size=args.hr_size, crop=args.crop,
                          parser=args.parser, checkpoint=args.checkpoint, split=args.split, seed=args.seed,
                          limit=args.limit, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"pkdn prepare: error: {e}", file=sys.stderr)
        return 2
    print("\n".join(summary.lines()))
    return 0


def _add_show(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="PNG grid of HR, LR and the parsing map over the face for N samples")
    p.add_argument("root", help="a prepared dataset folder (pkdn prepare's OUT_DIR)")
    p.add_argument("out_png", help="the grid PNG to write")
    p.add_argument("--split", default="test", help="split to sample (default test)")
    p.add_argument("-n", "--num", type=int, default=6, help="number of samples (default 6)")
    p.add_argument("--seed", type=int, default=0, help="sample seed; -1 takes the first N by name")
    p.add_argument("--zoom", type=int, default=1, help="integer magnification of the tiles")
    p.set_defaults(func=_run_show)


def _run_show(args: argparse.Namespace) -> int:
    from pkdn.data.show import write_grid

    try:
        path = write_grid(args.root, args.out_png, split=args.split, n=args.num,
                          seed=None if args.seed < 0 else args.seed, zoom=args.zoom)
    except (ValueError, FileNotFoundError) as e:
        print(f"pkdn show: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the teacher, or the student distilled from a teacher",
                       description="Train from a YAML config (see configs/). Runs under torchrun for DDP.")
    p.add_argument("stage", choices=["teacher", "student"])
    p.add_argument("--config", required=True, help="YAML config, e.g. configs/lite_teacher.yaml")
    p.add_argument("--data", help="prepared data folder (overrides data.root)")
    p.add_argument("--out", help="run folder (overrides out_dir)")
    p.add_argument("--teacher", help="teacher model file for distillation (overrides teacher)")
    p.add_argument("--no-distill", action="store_true", help="student on L_SR alone (the distillation baseline)")
    p.add_argument("--resume", action="store_true", help="continue the run in the run folder")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set optim.lr=2e-4 --set steps=500")
    p.add_argument("--stop-after", type=int, metavar="STEPS", help="end this invocation after STEPS steps "
                   "(with a checkpoint; --resume continues)")
    p.add_argument("--max-minutes", type=float, help="end this invocation after this much time (with a checkpoint)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from pkdn.config import load_config
    from pkdn.train import train

    sets = [f"stage={args.stage}", *args.set]
    for flag, key in ((args.data, "data.root"), (args.out, "out_dir"), (args.teacher, "teacher")):
        if flag:
            sets.append(f"{key}={flag}")
    if args.no_distill:
        sets.append("distill.enabled=false")
    try:
        cfg = load_config(args.config, sets)
        out = train(cfg, resume=args.resume, progress=not args.no_progress, stop_after=args.stop_after,
                    max_minutes=args.max_minutes)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"pkdn train: error: {e}", file=sys.stderr)
        return 2
    print(f"run folder: {out} (best model: {out / 'best.safetensors'})")
    return 0


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_info, _add_prepare, _add_show, _add_train]


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
