"""`pkdn sr --whole` on synthetic group photos with known faces: recall, false detections, PSNR, speed.

Photos: shared CelebA *test* faces (random crop side 12-40 px in the LR photo,
tilt up to 15 degrees, 4-7 a photo) pasted on scikit-image's non-face sample
photos at 8x; LR photo = HR canvas / 8 (PIL bicubic), 160 x 120. Prints, by
face size: recall, PSNR (Y, the inner 70 % of each face's square) of bicubic,
of the network run over the whole photo (what `pkdn sr PHOTO` does), and of
`--whole` with each per-size policy (faces up to ``align_max_side`` px
aligned onto 16 x 16, larger ones cropped at their own scale); false
detections on the photos and on the bare backgrounds; seconds per photo of
`--whole` (default policy) and of the whole-photo pass, timed alternately in
one run. ``--photo-degrade`` degrades the whole LR photo as a camera or an app
would (not pkdn's training degradation): ``jpeg`` saves it as JPEG quality 60,
``camera`` adds Gaussian noise (sigma 4 of 255) then JPEG quality 70::

    python benchmarks/whole_photo.py [--photos 40] [--model lite] [--seed 0] [--photo-degrade camera] [--skip-pass]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: see docs/evaluation.md

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pkdn.checkpoint import DEFAULT_MODEL
from pkdn.faces import WholePhotoSR, photo
from pkdn.faces.synthetic import TrueFace, background_images, make_photo
from pkdn.restore import ENSEMBLES

BUCKETS = [(12, 16), (16, 18), (18, 24), (24, 32), (32, 40.01)]
POLICIES = {"all native": 0.0, "aligned <= 18 px": 18.0, "all aligned": 1e9}


def y_of(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64) / 255.0
    return 16.0 + 65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]


def face_psnr(out: np.ndarray, hr_y: np.ndarray, f: TrueFace) -> float:
    m = f.region(hr_y.shape)
    d = y_of(out)[m] - hr_y[m]
    return 10 * math.log10(255.0**2 / max(float(np.mean(d * d)), 1e-10))


def match(true: list[TrueFace], found) -> tuple[list[bool], int]:
    """Greedy: a detection matches a true face when its box centre is within 0.4 crop side of the face's
    centre and its crop side within 0.6-1.6x; unmatched detections are false."""
    used, hit = set(), []
    for t in true:
        ok = False
        for k, f in enumerate(found):
            if k in used:
                continue
            cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
            if math.dist((cx, cy), t.center) < 0.4 * t.side and 0.6 < f.crop_side / t.side < 1.6:
                used.add(k)
                ok = True
                break
        hit.append(ok)
    return hit, len(found) - len(used)


class CachedDetector:
    """Detect each photo once, whatever the number of policies evaluated on it."""

    def __init__(self, det):
        self.det, self.cache = det, {}

    def __call__(self, rgb):
        key = hash(rgb.tobytes())
        if key not in self.cache:
            self.cache[key] = self.det(rgb)
        return self.cache[key]


def degrade_photo(lr: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """The LR photo as a phone or an app delivers it: JPEG (and sensor noise before it)."""
    if kind == "none":
        return lr
    img = lr
    if kind == "camera":
        a = np.asarray(lr).astype(np.float64) + rng.normal(0.0, 4.0, (lr.height, lr.width, 3))
        img = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=60 if kind == "jpeg" else 70)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--model", default=DEFAULT_MODEL, help="shipped model name or student file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "celeba" / "test"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--photo-degrade", choices=["none", "jpeg", "camera"], default="none")
    ap.add_argument("--skip-pass", action="store_true", help="leave out the (slow) whole-photo network pass")
    ap.add_argument("--ensemble", type=int, default=1, choices=ENSEMBLES, help="self-ensemble views (docs/cli.md)")
    ap.add_argument("--upscales", help="the detector's pyramid levels above x1, e.g. 6,3 (default: the shipped ones)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    faces = sorted(Path(a.data).glob("*.jpg"))
    bgs = background_images()
    rng = np.random.default_rng(a.seed)

    detector = None
    if a.upscales:
        from pkdn.faces.detect import RetinaFaceDetector

        detector = RetinaFaceDetector(upscales=tuple(float(u) for u in a.upscales.split(",")))
    timed = WholePhotoSR(model=a.model, detector=detector, ensemble=a.ensemble)  # the pipeline, timed end to end
    pipe = WholePhotoSR(model=a.model, ensemble=a.ensemble)
    pipe.detector = CachedDetector(timed.detector)

    rows = []  # per true face: side, found, psnr bicubic / whole pass / each policy
    false_photo, t_whole, t_pass, n_det_faces = 0, 0.0, 0.0, 0
    for i in range(a.photos):
        hr, lr, true = make_photo(faces, bgs[i % len(bgs)], rng)
        lr = degrade_photo(lr, a.photo_degrade, np.random.default_rng([a.seed, i]))
        hr_y = y_of(np.asarray(hr))
        t0 = time.perf_counter()
        res = timed(lr)
        t1 = time.perf_counter()
        if not a.skip_pass:
            x = torch.from_numpy(np.array(lr)).permute(2, 0, 1)[None].float().div_(255)
            y = timed.restorer.tensor(x)  # the same network, device and precision as --whole
            full = y[0].mul(255).round_().clamp_(0, 255).byte().permute(1, 2, 0).numpy()
        t2 = time.perf_counter()
        t_whole += t1 - t0
        t_pass += t2 - t1
        bic = np.asarray(lr.resize(hr.size, Image.BICUBIC))
        hit, false = match(true, res.faces)
        false_photo += false
        n_det_faces += len(res.faces)
        outs = {}
        for name, ams in POLICIES.items():
            pipe.align_max_side = ams
            outs[name] = np.asarray(pipe(lr).image)
        for t, h in zip(true, hit):
            r = {"side": t.side, "found": h, "bicubic": face_psnr(bic, hr_y, t)}
            r["pass"] = math.nan if a.skip_pass else face_psnr(full, hr_y, t)
            r.update({n: face_psnr(o, hr_y, t) for n, o in outs.items()})
            rows.append(r)
        print(
            f"photo {i + 1}/{a.photos}: {len(true)} faces, {sum(hit)} found, {false} false; "
            f"--whole {t1 - t0:.2f} s, whole pass {t2 - t1:.2f} s",
            file=sys.stderr,
            flush=True,
        )

    # false detections on the bare backgrounds: the LR photo size and each sample at its own size
    bg_false, bg_imgs = 0, 0
    det = timed.detector
    for b in bgs:
        for img in (b, np.asarray(Image.fromarray(b).resize((160, 120), Image.BICUBIC))):
            bg_false += len(det(np.ascontiguousarray(img)))
            bg_imgs += 1

    print(
        f"\n{a.photos} photos 160 x 120, {len(rows)} faces, model {a.model}, seed {a.seed}, "
        f"photo degradation {a.photo_degrade}\n"
    )
    head = ["crop side (px)", "faces", "recall", "bicubic (dB)", "whole-photo pass"] + [
        f"--whole, {n}" for n in POLICIES
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for lo, hi in BUCKETS + [(0, 1e9)]:
        sel = [r for r in rows if lo <= r["side"] < hi]
        if not sel:
            continue
        label = "all" if hi > 1e8 else (f"{lo}-{hi:.0f}" if hi < 40 else f"{lo}-40")
        b = np.mean([r["bicubic"] for r in sel])
        cells = [label, str(len(sel)), f"{100 * np.mean([r['found'] for r in sel]):.0f} %", f"{b:.2f}"]
        cells += [f"{np.mean([r[k] - r['bicubic'] for r in sel]):+.2f}" for k in ["pass", *POLICIES]]
        print("| " + " | ".join(cells) + " |")
    small = [r for r in rows if r["side"] < 18]
    default = next(n for n, v in POLICIES.items() if v == photo.ALIGN_MAX_SIDE)
    gain = lambda key: np.mean([r[key] - r["bicubic"] for r in small])  # noqa: E731
    print(
        f"\nfaces under 18 px: {len(small)}; --whole ({default}) {gain(default):+.2f} dB"
        + ("" if a.skip_pass else f", whole-photo pass {gain('pass'):+.2f} dB")
    )
    print(
        f"recall: >= 16 px {100 * np.mean([r['found'] for r in rows if r['side'] >= 16]):.1f} %, "
        f"12-16 px {100 * np.mean([r['found'] for r in rows if r['side'] < 16]):.1f} %"
    )
    print(
        f"false detections: {false_photo} on the photos ({n_det_faces} detections), {bg_false} on {bg_imgs} bare background images"
    )
    if not a.skip_pass:
        print(
            f"seconds per photo: --whole {t_whole / a.photos:.2f} (default policy: aligned <= "
            f"{photo.ALIGN_MAX_SIDE:g} px), whole-photo pass {t_pass / a.photos:.2f}; --whole is "
            f"{t_pass / t_whole:.1f}x faster ({a.threads} threads, same run)"
        )


if __name__ == "__main__":
    main()
