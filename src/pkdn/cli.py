"""The `pkdn` command line: argument parsing and printing only; every command calls into the library.

Each ``_add_<command>`` function registers one sub-command's parser and each
``_run_<command>`` is its handler, so commands are added or changed one pair at a time.

Error policy, the same for every command (docs/cli.md): a bad input is reported as it
happens, as one line ``pkdn <command>: error: PATH: reason`` on stderr, and the other
inputs are still processed; a converted input gets ``pkdn <command>: warning: ...``.
Exit status 0: all done; 1: some inputs failed (a handler returns it); 2: nothing could
start (bad arguments, model, config, output folder or a missing optional module): a
handler raises, and :func:`main` alone turns the exception into its one line.

Building the parser imports no torch (option values come from :mod:`pkdn.options`), so
``pkdn --help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from pkdn.extras import install_hint

# Before torch loads OpenMP: idle threads sleep instead of spinning. On a machine shared with other
# work, spinning threads made 2-thread inference up to 30x slower (docs/evaluation.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DESCRIPTION = (
    "pkdn: x8 face super-resolution (16 x 16 -> 128 x 128) with PKDN, a student network distilled from a "
    "teacher that saw facial parsing maps. Super-resolve faces with `pkdn sr`; prepare data, train, evaluate "
    "and export with the other commands."
)


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
    p.add_argument(
        "--crop",
        choices=["center", "resize"],
        default="center",
        help="take the central square of each crop (default) or squeeze the whole crop into the square",
    )
    p.add_argument("--parser", default="landmarks", help="facial parser: landmarks (default, offline) or bisenet")
    p.add_argument("--checkpoint", default=None, help="BiSeNet weights (79999_iter.pth) for --parser bisenet")
    p.add_argument(
        "--split",
        default=None,
        help="'auto' (default: train/val/test folders if present, else seeded 0.9,0.05,0.05), "
        "'folders', one split name, or fractions 'TRAIN,VAL,TEST'",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the hash split (default 0)")
    p.add_argument("--limit", type=int, default=None, help="prepare only the first N images of each split")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    import logging

    from pkdn.data.prepare import prepare

    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    summary = prepare(
        args.images_dir,
        args.out_dir,
        scale=args.scale,
        hr_size=args.hr_size,
        crop=args.crop,
        parser=args.parser,
        checkpoint=args.checkpoint,
        split=args.split,
        seed=args.seed,
        limit=args.limit,
        progress=not args.no_progress,
        on_error=lambda line: _err("prepare", line),
        on_note=lambda line: _warn("prepare", line),
    )
    print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


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
    from pkdn.data.show import make_grid
    from pkdn.imageio import save_png

    grid = make_grid(args.root, split=args.split, n=args.num, seed=None if args.seed < 0 else args.seed, zoom=args.zoom)
    path = save_png(grid, args.out_png)
    print(f"wrote {path}")
    return 0


#: the shipped models' names for --help, written out so that `pkdn --help` does not import torch
#: (pkdn.checkpoint.SHIPPED_MODELS is the source; tests/test_cli.py keeps the two equal).
SHIPPED_NAMES = ("robust", "lite")
_MODEL_HELP = f"shipped model name ({', '.join(SHIPPED_NAMES)}) or a student model file"


def _err(cmd: str, msg: str) -> None:
    """One line on stderr, prefixed like argparse's own errors so scripts can grep one pattern."""
    print(f"pkdn {cmd}: error: {msg}", file=sys.stderr, flush=True)


def _warn(cmd: str, msg: str) -> None:
    print(f"pkdn {cmd}: warning: {msg}", file=sys.stderr, flush=True)


def _note(cmd: str, msg: str) -> None:
    print(f"pkdn {cmd}: note: {msg}", file=sys.stderr, flush=True)


@contextmanager
def _ensemble_warnings_as_lines(cmd: str, show: bool = True) -> Iterator[None]:
    """Print each :class:`pkdn.restore.EnsembleWarning` raised inside the block (a Restorer being built) as one
    ``pkdn CMD: warning:`` line when it is raised, as the CLI reports everything, instead of Python's two-line
    warning; other warnings as Python shows them."""
    from pkdn.restore import EnsembleWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", EnsembleWarning)
        python_shows = warnings.showwarning

        def one_line(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, EnsembleWarning):
                python_shows(message, category, filename, lineno, file, line)
            elif show:
                _warn(cmd, str(message))

        warnings.showwarning = one_line  # catch_warnings puts Python's back
        yield


def _add_ensemble(p: argparse.ArgumentParser) -> None:
    """``--ensemble`` of `pkdn sr` and `pkdn eval`: the self-ensemble of :class:`pkdn.restore.Restorer`."""
    from pkdn.options import ENSEMBLES

    p.add_argument(
        "--ensemble",
        type=int,
        choices=ENSEMBLES,
        default=1,
        metavar="N",
        help="average N mirrored/rotated views of each face: 1 (default), 2 or 8 (more PSNR for N times the compute)",
    )


def _add_sr(sub: argparse._SubParsersAction) -> None:
    from pkdn.kind import MAX_CROP_SIDE
    from pkdn.options import DEFAULT_BATCH_SIZE, MAX_SIDE, PRECISIONS

    p = sub.add_parser(
        "sr",
        help="super-resolve face crops x8 (16x16 -> 128x128 is the trained case) and the faces of photos",
        description="Super-resolve faces x8 with a student model. INPUT: files, folders (their image "
        f"files) or glob patterns. An input up to {MAX_CROP_SIDE} px a side is a face crop, enlarged x8 whole "
        "into OUT_DIR/<stem>.png; a larger one is a photo: its faces are found, super-resolved and pasted "
        "back (OUT_DIR/<stem>.png and <stem>.json); --crop or --whole decides for every input instead. "
        "Exit status: 0 all done, 1 some inputs failed (each named on stderr), 2 nothing could start (bad "
        "model, output folder...). Under `torchrun --nproc_per_node N -m pkdn.cli sr ...` the N processes "
        "share the inputs.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder or glob")
    p.add_argument("-o", "--out-dir", required=True, metavar="OUT_DIR", help="output folder (not an input folder)")
    p.add_argument(
        "--model",
        metavar="NAME|FILE",
        default=None,
        help=f"{_MODEL_HELP} (default: robust)",
    )
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="cpu",
        help="cpu (default), cuda, or auto (cuda when available)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto (default): bf16 autocast where the CPU computes bf16 natively, else float32; the choice is printed",
    )
    _add_ensemble(p)
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"faces per forward pass (default {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument(
        "--max-side",
        type=int,
        default=MAX_SIDE,
        metavar="PX",
        help=f"refuse face crops with a longer side (default {MAX_SIDE})",
    )
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch (default: torch's)")
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail inputs that are not 8-bit RGB (grayscale, RGBA, 16-bit...) instead of converting "
        "them with a warning",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show a progress bar")
    g.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show one (default: for folders/globs)"
    )
    w = p.add_argument_group("crops and whole photos (docs/whole-photos.md)")
    k = w.add_mutually_exclusive_group()
    k.add_argument(
        "--whole",
        action="store_true",
        help="every input is a whole photo: find every face, super-resolve it, "
        "paste it back -> OUT_DIR/<stem>.png and <stem>.json (faces: box, landmarks, score)",
    )
    k.add_argument(
        "--crop",
        action="store_true",
        help=f"every input is one face crop, enlarged x8 whole, even one over {MAX_CROP_SIDE} px a side",
    )
    w.add_argument(
        "--upscale",
        type=int,
        default=None,
        metavar="N",
        help="photos' output scale 1-8 (default 8; faces are SR'd x8 then resized)",
    )
    w.add_argument(
        "--background",
        default=None,
        choices=["bicubic", "lanczos", "bilinear", "nearest"],
        help="how a photo around its faces is upscaled (default bicubic)",
    )
    w.add_argument(
        "--save-faces",
        action="store_true",
        help="also write each photo face's LR crop and SR to OUT_DIR/<stem>_faces/",
    )
    p.set_defaults(func=_run_sr)


def _run_sr(args: argparse.Namespace) -> int:
    """`pkdn sr`: the files driver (:func:`pkdn.batch.run_files`) with the crop job, the photo job or both."""
    from pkdn.batch import gather_report, run_files, torchrun_world

    kind = "photo" if args.whole else "crop" if args.crop else "auto"
    if kind == "crop" and (args.upscale is not None or args.background is not None or args.save_faces):
        raise ValueError("--upscale, --background and --save-faces are for photos; they cannot go with --crop")
    upscale = 8 if args.upscale is None else args.upscale
    if not 1 <= upscale <= 8:
        raise ValueError(f"--upscale must be from 1 to 8, not {upscale}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with torchrun_world(args.device) as env:  # a world of one unless run under torchrun
        jobs = _SrJobs(args, env.device, upscale)
        with _ensemble_warnings_as_lines("sr", show=env.is_main):
            report = run_files(
                args.inputs,
                args.out_dir,
                jobs.get,
                kind=kind,
                strict=args.strict,
                progress=args.progress,
                shard=(env.rank, env.world),
                ahead=jobs.read_ahead(kind),
                io_threads=jobs.io_threads(kind),
                first=["crop"] if kind == "auto" else [kind],  # the model must load before any input is read
                on_error=lambda name, reason: _err("sr", f"{name}: {reason}"),
                on_note=lambda line: _warn("sr", line),
                on_info=lambda line: _note("sr", line),
                on_done=lambda src, res: (
                    print(f"{src}: {len(res.faces)} face(s)", flush=True)
                    if hasattr(res, "faces") and args.progress is not False
                    else None
                ),
            )
        total = gather_report(report, env)
        if env.is_main:
            n_crops, n_photos = total.done["crop"], total.done["photo"]
            what = [f"{n_crops} image(s)"] if n_crops or kind != "photo" else []
            what += [f"{n_photos} photo(s)"] if n_photos or kind == "photo" else []
            procs = f" by {env.world} processes" if env.distributed else ""
            print(
                f"wrote {' and '.join(what)} to {args.out_dir}{procs} [{jobs.path}]"
                + (f"; {len(total.failed)} input(s) failed" if total.failed else "")
            )
        return 1 if total.failed else 0


class _SrJobs:
    """The crop job and the photo job of one `pkdn sr` run, each made once; the photo job on first use in
    auto mode (a folder of crops never loads the face detector)."""

    def __init__(self, args: argparse.Namespace, device, upscale: int):
        self.args, self.device, self.upscale = args, device, upscale
        self.crop = self.photo = None

    def get(self, kind: str):
        from pkdn.restore import CropJob, Restorer

        a = self.args
        if kind == "crop":
            if self.crop is None:
                r = Restorer(a.model, self.device, a.precision, batch_size=a.batch_size, ensemble=a.ensemble)
                self.crop = CropJob(r, max_side=a.max_side)
            return self.crop
        if self.photo is None:
            from pkdn.faces import WholePhotoSR
            from pkdn.faces.files import PhotoJob

            if self.crop is not None:  # one network for the crops and the photos of a run
                pipe = WholePhotoSR(model=self.crop.restorer)
            else:
                pipe = WholePhotoSR(
                    model=a.model,
                    device=self.device,
                    batch_size=a.batch_size,
                    precision=a.precision,
                    ensemble=a.ensemble,
                )
            self.photo = PhotoJob(pipe, self.upscale, a.background or "bicubic", a.save_faces)
        return self.photo

    def read_ahead(self, kind: str) -> int:
        """Inputs decoded ahead: two batches of crops; fewer where photos (large) may come."""
        from pkdn.batch import PHOTO_READ_AHEAD

        return {"crop": 2 * self.args.batch_size, "photo": PHOTO_READ_AHEAD}.get(kind, 2 * PHOTO_READ_AHEAD)

    def io_threads(self, kind: str) -> int:
        """Reader / writer threads: crops 4; photos none on a CPU (pkdn.faces.files.photo_io_threads)."""
        if kind != "photo":
            return 4
        from pkdn.faces.files import photo_io_threads

        return photo_io_threads(self.device)

    @property
    def path(self) -> str:
        job = self.crop or self.photo
        return (job.restorer if job is self.crop else job.pipe.restorer).path


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from pkdn.options import DEFAULT_BATCH_SIZE

    p = sub.add_parser(
        "eval",
        help="PSNR/SSIM of student models beside bicubic on a data set (Y channel, 8-px border)",
        description="Evaluate models as the literature does (Y channel of BT.601, 8-pixel border cropped, "
        "SR rounded to 8 bits, Gaussian SSIM): per image (--csv) and averaged (a Markdown table on stdout). "
        "DATASET: a prepared data set, a folder with hr/ (and lr/), a folder with a SPLIT/ folder of face "
        "crops, or a folder of face crops (degraded here: HR 128 px, LR 16 px, PIL bicubic).",
    )
    p.add_argument("dataset", metavar="DATASET")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]CKPT",
        help="student model file; repeat for one table of several (default: the shipped student)",
    )
    p.add_argument("--split", default="test", help="split folder inside DATASET, when it has one (default test)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="first N images only")
    p.add_argument("--csv", metavar="FILE", help="per-image scores (plus a final mean row)")
    p.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    p.add_argument("--grid", metavar="FILE.png", help="LR | bicubic | model(s) | HR rows for a few faces")
    p.add_argument(
        "--crop",
        choices=["center", "resize"],
        default="center",
        help="how face crops become HR: their central square (default, as pkdn prepare) or the whole crop squeezed",
    )
    p.add_argument("--grid-faces", type=int, default=4, metavar="N", help="faces in the grid (default 4)")
    p.add_argument(
        "--identity",
        action="store_true",
        help='also score identity with dlib\'s face recogniser: embedding distance to HR, rank-1 (pip install "pkdn[eval]")',
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"faces per forward pass (default {DEFAULT_BATCH_SIZE})",
    )
    _add_ensemble(p)
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=_run_eval)


def _identity_embedder():
    """``pkdn eval --identity``: dlib's face recogniser (an ImportError, a RuntimeError here, names what to install)."""
    from pkdn.identity import FaceEmbedder, IdentityUnavailable

    try:
        return FaceEmbedder()
    except IdentityUnavailable as e:
        raise RuntimeError(str(e)) from None


def _model_specs(specs: Sequence[str]) -> dict[str, str | None]:
    """``--model [NAME=]CKPT`` values -> {table name: model}; none: the shipped student."""
    from pathlib import Path

    from pkdn import evaluate

    models: dict[str, str | None] = {}
    for spec in specs or [None]:
        if spec is None:
            name, path = "PKDN student (shipped)", None
        elif "=" in spec and not Path(spec).exists():
            name, path = spec.split("=", 1)
        else:
            name, path = Path(spec).stem, spec
        if name in models or name == evaluate.BICUBIC:
            raise ValueError(f"model name {name!r} is used twice (or is 'bicubic'); name them with NAME=CKPT")
        models[name] = path
    return models


def _run_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pkdn import evaluate
    from pkdn.restore import Restorer

    models = {}
    for name, path in _model_specs(args.model).items():
        with _ensemble_warnings_as_lines("eval"):
            models[name] = Restorer(
                path, device=args.device, precision="fp32", batch_size=args.batch_size, ensemble=args.ensemble
            )
    result, kept = evaluate.evaluate(
        models,
        args.dataset,
        split=args.split,
        limit=args.limit,
        batch_size=args.batch_size,
        keep=args.grid_faces if args.grid else 0,
        progress=args.progress,
        crop=args.crop,
        on_error=lambda name, reason: _err("eval", reason if reason.startswith(name) else f"{name}: {reason}"),
        embedder=_identity_embedder() if args.identity else None,
    )
    table = result.markdown()
    print(table)
    if args.csv:
        result.write_csv(args.csv)
        print(f"per-image scores: {args.csv}")
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.grid:
        from pkdn.imageio import save_png

        save_png(evaluate.comparison_grid(kept, result.methods), args.grid)
        print(f"grid: {args.grid}")
    return 1 if result.failed else 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a student model to ONNX (checked in onnxruntime against PyTorch)")
    p.add_argument("output", metavar="OUT.onnx")
    p.add_argument(
        "--model",
        metavar="NAME|FILE",
        default=None,
        help=f"{_MODEL_HELP} (default: robust)",
    )
    p.add_argument("--size", type=int, default=16, help="LR side length the graph takes (default 16); batch is dynamic")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    import torch

    from pkdn import export
    from pkdn.restore import Restorer

    model = Restorer(args.model, device="cpu", precision="fp32").model
    path = export.export_onnx(model, args.output, lr_size=args.size, opset=args.opset)
    print(
        f"wrote {path} (input lr: (batch, 3, {args.size}, {args.size}) in [0, 1]; output sr: x{model.config.scale}, clamped)"
    )
    if not args.no_check:
        diff = export.check_parity(
            model, path, torch.rand(4, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
        )
        ok = diff <= 1e-4
        print(f"onnxruntime vs PyTorch: max abs difference {diff:.2e} ({'ok' if ok else 'ABOVE 1e-4'})")
        return 0 if ok else 1
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the teacher, or the student distilled from a teacher",
        description="Train from a YAML config (see configs/). Runs under torchrun for DDP.",
    )
    p.add_argument("stage", choices=["teacher", "student"])
    p.add_argument("--config", required=True, help="YAML config, e.g. configs/lite_teacher.yaml")
    p.add_argument("--data", help="prepared data folder (overrides data.root)")
    p.add_argument("--out", help="run folder (overrides out_dir)")
    p.add_argument("--teacher", help="teacher model file for distillation (overrides teacher)")
    p.add_argument("--no-distill", action="store_true", help="student on L_SR alone (the distillation baseline)")
    p.add_argument("--resume", action="store_true", help="continue the run in the run folder")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field, e.g. --set optim.lr=2e-4 --set steps=500",
    )
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="STEPS",
        help="end this invocation after STEPS steps (with a checkpoint; --resume continues)",
    )
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
    cfg = load_config(args.config, sets)
    out = train(
        cfg, resume=args.resume, progress=not args.no_progress, stop_after=args.stop_after, max_minutes=args.max_minutes
    )
    print(f"run folder: {out} (best model: {out / 'best.safetensors'})")
    return 0


def _add_degrade(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "degrade",
        help="write a fixed, realistically degraded (LR, HR) test set from face crops, for pkdn eval",
        description="Degrade face crops the way real small faces arrive (blur, resampling, noise, JPEG, the "
        "whole-photo alignment warp; docs/degradation.md). Writes OUT_DIR/hr/STEM.png (128 px), "
        "OUT_DIR/lr/STEM.png (16 px) and OUT_DIR/degrade.yaml; each file's draw depends on --seed and its "
        "name only. Score it with: pkdn eval OUT_DIR --model lite --model robust",
    )
    p.add_argument("images", metavar="IN_DIR", help="a folder of face crops")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--family",
        default="full",
        help="full (the whole degradation, default) or one family of it alone, always applied: blur, noise, "
        "jpeg, warp, or pose (the clean LR of a face at a photo's tilt, scale and offset)",
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="first N files only (sorted by name)")
    p.set_defaults(func=_run_degrade)


def _run_degrade(args: argparse.Namespace) -> int:
    from pkdn.data.degrade import family
    from pkdn.data.degraded_set import make_degraded_set

    summary = make_degraded_set(
        args.images,
        args.out_dir,
        seed=args.seed,
        degradation=family(args.family),
        limit=args.limit,
        on_error=lambda path, reason: _err("degrade", reason),
    )
    n_fail = len(summary.failed)
    print(f"wrote {len(summary.written)} pair(s) to {args.out_dir}" + (f"; {n_fail} input(s) failed" if n_fail else ""))
    return 1 if n_fail else 0


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="local web page and HTTP API for super-resolving faces and photos",
        description="Serve a web page (and POST /api/sr, GET /api/health) on this computer; "
        "Ctrl-C stops it. Needs the web extra: pip install 'pkdn[web]'.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="images processed at once (default 1)")
    p.add_argument(
        "--max-queue",
        type=int,
        default=32,
        metavar="N",
        help="requests accepted at once, running or waiting; more are answered 503 (default 32)",
    )
    p.add_argument("--max-upload-mb", type=float, default=20, metavar="MB", help="largest upload (default 20 MB)")
    p.add_argument(
        "--max-side", type=int, default=512, metavar="PX", help="refuse face crops with a longer side (default 512)"
    )
    p.add_argument(
        "--max-photo-side",
        type=int,
        default=1024,
        metavar="PX",
        help="refuse whole photos with a longer side (default 1024; x8 is 8192 px)",
    )
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch (default: torch's)")
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    import starlette  # noqa: F401 - fail here, with the fix, if the web app's modules are missing
    import uvicorn  # noqa: F401

    from pkdn.serve import ServeConfig, serve

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if min(args.workers, args.max_queue, args.max_side, args.max_photo_side) < 1 or args.max_upload_mb <= 0:
        raise ValueError("--workers, --max-queue, --max-side, --max-photo-side and --max-upload-mb must be positive")
    config = ServeConfig(
        device=args.device,
        workers=args.workers,
        max_queue=args.max_queue,
        max_bytes=int(args.max_upload_mb * 1_000_000),
        max_side=args.max_side,
        max_photo_side=args.max_photo_side,
    )
    return serve(args.host, args.port, config)


def _add_ablate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ablate",
        help="Table 2: teacher variants, a student from each and without distillation, with seeds",
        description="Train every run of an ablation config (see configs/ablation_lite.yaml) that is not finished "
        "yet, reuse the finished ones, score all on the test faces and print the table. Exit status: 0 the "
        "table is complete, 1 stopped early (--max-minutes / --stop-after; run it again to continue), 2 error.",
    )
    p.add_argument("config", metavar="CONFIG", help="ablation YAML, e.g. configs/ablation_lite.yaml")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of the ablation config, e.g. --set student.steps=2000 --set out_dir=runs/x",
    )
    p.add_argument("--plan", action="store_true", help="list the runs and their state; train nothing")
    p.add_argument(
        "--max-minutes",
        type=float,
        help="end this invocation after this long (the run in progress pauses with a checkpoint)",
    )
    p.add_argument("--stop-after", type=int, metavar="STEPS", help="pause after STEPS steps of a run")
    p.add_argument("--device", default="auto", help="device for scoring (training follows each run's config)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="train N runs at once, each in its own process (teachers, then students; for a GPU or many cores)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_ablate)


def _run_ablate(args: argparse.Namespace) -> int:
    from pkdn import ablation

    acfg = ablation.load_ablation(args.config, args.set)
    if args.plan:
        for run in ablation.plan(acfg):
            print(f"{ablation.status(run):8s} {run.name:28s} {run.cfg.steps:6d} steps  {run.cfg.out_dir}")
        return 0
    done, table = ablation.run_ablation(
        acfg,
        progress=not args.no_progress,
        max_minutes=args.max_minutes,
        stop_after=args.stop_after,
        device=args.device,
        jobs=args.jobs,
    )
    print(table)
    print(f"\ntable: {acfg.out_dir}/table.md" + ("" if done else " (incomplete: run the same command again)"))
    return 0 if done else 1


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_info,
    _add_prepare,
    _add_show,
    _add_train,
    _add_sr,
    _add_eval,
    _add_export,
    _add_degrade,
    _add_serve,
    _add_ablate,
]


def build_parser() -> argparse.ArgumentParser:
    from pkdn import __version__

    parser = argparse.ArgumentParser(prog="pkdn", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"pkdn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. The one place an exception becomes an exit status: a handler that
    raises could not start (exit 2, one ``pkdn CMD: error: ...`` line; a missing optional module names what
    to install); a handler returns 1 when some inputs failed, 0 when all were done."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ImportError as e:
        _err(args.command, install_hint(e))
    except (OSError, ValueError, RuntimeError) as e:
        _err(args.command, " ".join(str(e).split()) or type(e).__name__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
