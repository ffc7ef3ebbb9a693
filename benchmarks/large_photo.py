"""`pkdn sr --whole` on large photos with large faces: bounded time and memory, and which path suits a face.

Two measurements:

``python benchmarks/large_photo.py`` (the floor): builds a 4000 x 3000 JPEG
(scikit-image's ``coffee`` sample enlarged, with shared CelebA *test* faces
of 200-600 px crop side pasted on it, the large ones enlarged from the
~190 px originals, plus two faces of 44 and 40 px), runs the real CLI
(``pkdn sr --whole --upscale 2``) in a child process and prints its wall
time, its peak resident memory (``ru_maxrss`` of the child) and how many
faces took each path. ``--keep DIR`` keeps the photo, the output and a crop
of the output around each face.

``python benchmarks/large_photo.py --paths`` (the path rule): HR photos with
CelebA faces at their real resolution (HR crop side <= 190 px, never
enlarged) on the same kind of background; LR = HR shrunk x ``u`` with PIL
bicubic, for ``u`` 2 and 4. Every face is run through each path, forced
(``network`` at its own scale, ``network-shrunk`` to 40, 48 or 64 px,
``resample`` = the background's bicubic), and the PSNR (Y, inner 70 % of each
face's square) against HR is printed by LR crop side, with the seconds the
network took::

    python benchmarks/large_photo.py [--keep DIR] [--threads 2]
    python benchmarks/large_photo.py --paths [--model photo] [--photos 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: see docs/evaluation.md

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pkdn.faces import WholePhotoSR, align
from pkdn.faces.synthetic import TrueFace, background_images, make_photo

DATA = Path(os.environ.get("PKDN_CELEBA", REPO.parent / "shared" / "data" / "celeba")) / "test"
#: the floor photo: crop sides (photo px) of its faces
FLOOR_SIDES = [600, 520, 450, 380, 320, 270, 230, 200, 44, 40]
FLOOR_SIZE = (4000, 3000)
#: the path measurement: LR crop sides per upscale (HR side = u x LR side <= 190 px, CelebA's own resolution)
PATH_SIDES = {2: [24, 32, 40, 48, 56, 64, 72, 80, 95], 4: [12, 16, 24, 32, 40, 47]}
SHRINK_TO = [40.0, 48.0, 64.0]


def y_of(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64) / 255.0
    return 16.0 + 65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]


def face_psnr(out: np.ndarray, hr_y: np.ndarray, f: TrueFace, scale: int) -> float:
    m = f.region(hr_y.shape, scale=scale)
    d = y_of(out[m]) - hr_y[m]
    return 10 * math.log10(255.0**2 / max(float(np.mean(d * d)), 1e-10))


def crop_side(d) -> float:
    """The crop side (photo px) the pipeline's path rule reads for a detection."""
    return align.crop_side(align.to_template(d.landmarks))


def floor_photo(faces: list[Path], seed: int = 0) -> tuple[Image.Image, list[TrueFace]]:
    """The 4000 x 3000 photo of the floor, the same every run."""
    bg = background_images()[0]  # coffee
    _, lr, true = make_photo(
        faces, bg, np.random.default_rng(seed), size=FLOOR_SIZE, side_list=FLOOR_SIDES, max_tilt=10.0, scale=1
    )
    return lr, true


def run_floor(a: argparse.Namespace, faces: list[Path]) -> None:
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="pkdn-large-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    img, true = floor_photo(faces)
    src = work / "large.jpg"
    img.save(src, quality=92)
    print(f"built {src.name}: {img.width} x {img.height}, {len(true)} faces ({time.perf_counter() - t0:.1f} s)")
    out = work / "out"
    cmd = [sys.executable, "-c", "import sys; from pkdn.cli import main; sys.exit(main())"]
    cmd += ["sr", "--whole", str(src), "-o", str(out), "--upscale", "2", "--no-progress"]
    if a.model:
        cmd += ["--model", a.model]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS=str(a.threads))
    print("$ pkdn " + " ".join(cmd[3:]) + f"   (OMP_NUM_THREADS={a.threads})", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, env=env).returncode
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
    print(f"exit {rc}; wall {wall:.1f} s; peak RSS {peak / 2**30:.2f} GiB")
    if rc != 0:
        sys.exit(rc)
    doc = json.loads((out / "large.json").read_text())
    paths = Counter(f["path"] for f in doc["faces"])
    print(
        f"faces found {len(doc['faces'])} of {len(true)}; by path: " + ", ".join(f"{k} {v}" for k, v in paths.items())
    )
    for f in sorted(doc["faces"], key=lambda f: -f["crop_side"]):
        print(f"  crop side {f['crop_side']:7.1f} px  {f['path']}")
    res = Image.open(out / "large.png")
    print(f"output {res.width} x {res.height}")
    if a.keep:
        for k, f in enumerate(doc["faces"]):
            x0, y0, x1, y1 = (2 * v for v in f["box"])
            pad = 0.25 * (x1 - x0)
            box = tuple(int(round(v)) for v in (x0 - pad, y0 - pad, x1 + pad, y1 + pad))
            res.crop(box).save(work / f"face{k:02d}_{f['path']}.png")
        print(f"kept in {work}")


def run_paths(a: argparse.Namespace, faces: list[Path]) -> None:
    pipe = WholePhotoSR(model=a.model)
    det = pipe.detector
    bg = background_images()
    configs = {"network": (math.inf, math.inf), "resample": (0.0, 0.0)}
    configs.update({f"shrunk to {c:g}": (c, math.inf) for c in SHRINK_TO})
    rows = []
    for u, sides in PATH_SIDES.items():
        for i in range(a.photos):
            rng = np.random.default_rng([a.seed, u, i])
            hr, lr, true = make_photo(faces, bg[i % 3], rng, size=(800, 600), side_list=sides, scale=u, max_tilt=10)
            hr_y = y_of(np.asarray(hr))
            found = det(np.asarray(lr))
            pipe.detector = lambda rgb, found=found: found  # noqa: E731 - detect once, run every path
            outs, secs = {}, {}
            for name, (net, shrink) in configs.items():
                pipe.net_max_side, pipe.shrink_max_side = net, shrink
                t0 = time.perf_counter()
                outs[name] = np.asarray(pipe(lr, upscale=u).image)
                secs[name] = time.perf_counter() - t0
            pipe.detector = det
            for t in true:
                near = [
                    f
                    for f in found
                    if math.dist(((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2), t.center) < 0.4 * t.side
                ]
                side = crop_side(near[0]) if near else math.nan
                r = {"u": u, "side": t.side, "found": bool(near), "detected": side}
                r.update({n: face_psnr(o, hr_y, t, u) for n, o in outs.items()})
                rows.append(r)
            print(
                f"x{u} photo {i + 1}: {len(true)} faces, {len(found)} found; seconds "
                + ", ".join(f"{n} {s:.1f}" for n, s in secs.items()),
                file=sys.stderr,
                flush=True,
            )
    names = list(configs)
    print(f"\nPSNR (Y, dB) inside faces against HR, model {pipe.model_name}; found faces only; bicubic = resample\n")
    others = [n for n in names if n != "resample"]
    print("| upscale | LR crop side (px) | detected (px) | faces | resample | " + " | ".join(others) + " |")
    print("|---|---|---|---|---|" + "---|" * len(others))
    for u, sides in PATH_SIDES.items():
        for s in sides:
            sel = [r for r in rows if r["u"] == u and r["side"] == s and r["found"]]
            if not sel:
                continue
            bic = np.mean([r["resample"] for r in sel])
            det = f"{min(r['detected'] for r in sel):.0f}-{max(r['detected'] for r in sel):.0f}"
            cells = [f"x{u}", f"{s:g}", det, str(len(sel)), f"{bic:.2f}"]
            cells += [f"{np.mean([r[n] - r['resample'] for r in sel]):+.2f}" for n in others]
            print("| " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", action="store_true", help="measure PSNR by path and face size instead of the floor")
    ap.add_argument("--model", default=None, help="shipped model name or student file (default: --whole's)")
    ap.add_argument("--photos", type=int, default=3, help="--paths: photos per upscale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", help="floor: keep the photo, output and face crops in this folder")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    faces = sorted(DATA.glob("*.jpg"))
    if not faces:
        sys.exit(f"{DATA}: no CelebA test faces; set PKDN_CELEBA to the folder holding test/")
    if a.paths:
        run_paths(a, faces)
    else:
        run_floor(a, faces)


if __name__ == "__main__":
    main()
