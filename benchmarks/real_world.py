"""Clean vs realistic LR: the shipped models and bicubic on the 1,000 test faces, clean and degraded.

    python benchmarks/real_world.py                       # lite, robust and bicubic
    python benchmarks/real_world.py --model cand=runs/robust_student/best.safetensors --limit 200
    python benchmarks/real_world.py --model lite --model robust --sets clean degraded   # the first two rows only

Test sets (all from the same HR faces, fixed seed; built once into --work):
  clean     the literature's LR (PIL bicubic x1/8)
  degraded  pkdn's realistic degradation (`pkdn degrade --seed 0`, docs/degradation.md)
  blur / noise / jpeg / warp   one family of it alone (`pkdn degrade --family F`)
  foreign-*  two degradations that are not pkdn's (OpenCV, fixed parameters), to see generalisation:
            opencv: Gaussian blur (sigma 1.5 HR px), cv2.resize INTER_LINEAR without antialiasing, cv2 JPEG 50;
            reshared: area shrink to 32 px, JPEG 60, bicubic shrink to 16 px, JPEG 75 (a picture shared twice).
Prints one Markdown table (PSNR / SSIM, Y channel, 8-px border), the paired per-face difference of every
model against each one named before it, on each set, with its standard error, and writes a grid of degraded faces.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from pkdn import evaluate, inference
from pkdn.data.degrade import BICUBIC, family, hr_from_image
from pkdn.data.degraded_set import make_degraded_set
from pkdn.imageio import load_rgb, save_png
from pkdn.metrics import paired_difference

REPO = Path(__file__).resolve().parents[1]
SETS = ("clean", "degraded", "blur", "noise", "jpeg", "warp", "foreign-opencv", "foreign-reshared")


def _foreign(hr: np.ndarray, kind: str) -> np.ndarray:
    import cv2

    if kind == "opencv":
        x = cv2.GaussianBlur(hr, (0, 0), 1.5)
        x = cv2.resize(x, (16, 16), interpolation=cv2.INTER_LINEAR)
        ok, buf = cv2.imencode(".jpg", x[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 50])
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
    img = Image.fromarray(hr).resize((32, 32), Image.Resampling.BOX)
    for size, q in ((32, 60), (16, 75)):
        img = img.resize((size, size), BICUBIC) if img.size != (size, size) else img
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=q)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return np.asarray(img)


def build_sets(faces: Path, work: Path, limit: int | None, wanted: tuple[str, ...] = SETS) -> dict[str, Path]:
    """The `wanted` test sets (names of SETS), each built into `work` once and reused after."""
    sets = {"clean": faces} if "clean" in wanted else {}  # in the order of SETS
    for fam in ("full", "blur", "noise", "jpeg", "warp"):
        if ("degraded" if fam == "full" else fam) not in wanted:
            continue
        out = work / fam
        if not (out / "lr").is_dir() or (limit and len(list((out / "lr").glob("*.png"))) < limit):
            make_degraded_set(faces, out, seed=0, degradation=family(fam), limit=limit)
        sets["degraded" if fam == "full" else fam] = out
    files = sorted(p for p in faces.iterdir() if p.suffix.lower() == ".jpg")[:limit]
    for kind in ("opencv", "reshared"):
        if f"foreign-{kind}" not in wanted:
            continue
        out = work / f"foreign-{kind}"
        if not (out / "lr").is_dir() or len(list((out / "lr").glob("*.png"))) < len(files):
            for p in files:
                hr = np.asarray(hr_from_image(load_rgb(p)))
                save_png(Image.fromarray(hr), out / "hr" / f"{p.stem}.png")
                save_png(Image.fromarray(_foreign(hr, kind)), out / "lr" / f"{p.stem}.png")
        sets[f"foreign-{kind}"] = out
    return sets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "data" / "celeba" / "test")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "real_world_sets")
    ap.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME[=FILE]",
        help="shipped name or NAME=FILE (default: lite and real)",
    )
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="rows to score (default: all)")
    ap.add_argument("--grid", type=Path, default=REPO / "docs" / "images" / "real_world_grid.png")
    args = ap.parse_args()

    models = {}
    for spec in args.model or ["lite", "robust"]:
        name, _, path = spec.partition("=")
        models[name] = inference.load(path or name)
    sets = build_sets(args.faces, args.work, args.limit, tuple(args.sets))
    names = list(models)
    header = "| test set | " + " | ".join(["bicubic", *names]) + " |"
    print("PSNR (dB) / SSIM, Y channel, 8-px border; x8 from 16 x 16.\n")
    print(header + "\n|" + " --- |" * (len(names) + 2), flush=True)
    paired = []
    for label, folder in sets.items():
        res, kept = evaluate.evaluate(
            models, folder, split="test", limit=args.limit, batch_size=32, keep=6 if label == "degraded" else 0
        )
        cells = [f"{res.mean(m)[0]:.2f} / {res.mean(m)[1]:.4f}" for m in res.methods]
        print(f"| {label} ({len(res.names)}) | " + " | ".join(cells) + " |", flush=True)  # each row as it is done
        for j, later in enumerate(names):  # every model against each one named before it
            for earlier in names[:j]:
                m, se, higher = paired_difference(res.psnr[later], res.psnr[earlier])
                paired.append(
                    f"{label}: {later} - {earlier} = {m:+.3f} dB (s.e. {se:.3f}), better on {100 * higher:.0f}% of faces"
                )
        if label == "degraded" and args.grid:
            save_png(evaluate.comparison_grid(kept, res.methods), args.grid)
    if paired:
        print("\nPaired per face:\n" + "\n".join(f"- {p}" for p in paired))
    if args.grid and "degraded" in sets:
        print(f"\ngrid of degraded faces: {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
