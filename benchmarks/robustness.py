"""Robustness of x8 face SR: one table from clean CelebA to whole real photos, bicubic / lite / each model.

    python benchmarks/robustness.py                                  # lite and the default model, every row
    python benchmarks/robustness.py --model robust --model cand=runs/x/best.safetensors
    python benchmarks/robustness.py --limit 100 --rows clean degraded framing   # a quick look

Rows (docs/robustness.md says how each is built and what is approximate; all but clean and degraded take the
first 500 test faces):
  clean              the 1,000 CelebA test faces, HR = centre square at 128 px, LR = PIL bicubic x1/8
  degraded           pkdn's realistic degradation (`pkdn degrade --seed 0`), built by benchmarks/real_world.py
  foreign-opencv     real_world.py's OpenCV path (Gaussian blur, linear shrink without antialiasing, JPEG 50)
  foreign-reshared   real_world.py's shared-twice path (area shrink, JPEG 60, bicubic shrink, JPEG 75)
  foreign-camera     a camera path: area shrink to 16 px, Poisson-Gaussian sensor noise, JPEG 75 (OpenCV)
  framing-S          the test faces re-framed at S x the standard framing (0.6, 0.8: zoomed out; 1.25, 1.6: in)
  tilt-A             the standard framing turned by A degrees (20, 30)
  faces-other        benchmarks/data/faces: the London and Canada face sets (not used in training)
  photos-clean       benchmarks/data/photos: whole photos, LR = x1/8, `pkdn sr --whole` vs bicubic, in face boxes
  photos-camera      the same, the LR photo with sensor noise and JPEG 75
Each photos row is followed by its faces under 18 px (LR crop side).

Columns: per method, PSNR / SSIM (Y, 8-px border on crops, none inside photo face boxes): absolute for
bicubic, the gain over bicubic for the models, with p5 = the 5th percentile of the per-face PSNR gain
(the bad faces); then identity: dlib's embedding distance to the HR face and rank-1 identification among
the row's HR faces (a hit: the nearest is the same person; faces-other also with the own HR left out).
Sets are built once, deterministically, under --work; progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: see docs/evaluation.md

import cv2
import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from real_world import build_sets  # noqa: E402 - the degraded and foreign CelebA sets, built one way

from pkdn import evaluate, identity, metrics  # noqa: E402
from pkdn.checkpoint import DEFAULT_MODEL  # noqa: E402
from pkdn.data.degrade import BICUBIC, hr_from_image, lr_from_hr  # noqa: E402
from pkdn.faces import WholePhotoSR, align  # noqa: E402
from pkdn.faces.detect import RetinaFaceDetector  # noqa: E402
from pkdn.imageio import list_images, load_rgb, save_png  # noqa: E402
from pkdn.restore import Restorer  # noqa: E402

FRAMINGS = (0.6, 0.8, 1.25, 1.6)
TILTS = (20, 30)
ROWS = (
    "clean",
    "degraded",
    "foreign-opencv",
    "foreign-reshared",
    "foreign-camera",
    *(f"framing-{s:g}" for s in FRAMINGS),
    *(f"tilt-{a}" for a in TILTS),
    "faces-other",
    "photos-clean",
    "photos-camera",
)
DATA = REPO / "benchmarks" / "data"
#: rows other than clean and degraded take the first 500 test faces (each model's inference on 1,000 faces a
#: row is most of a run's time on 2 cores)
SWEEP_FACES = 500
FULL_ROWS = ("clean", "degraded")
SMALL_FACE = 18  # LR crop side (px) under which a photo face counts as small
FACE_RANGE = (12.0, 40.0)  # LR crop sides of the photo faces scored
#: the camera path: Poisson-Gaussian noise, variance GAIN * x + READ**2 (0-255 units), then JPEG CAMERA_JPEG
CAMERA_GAIN, CAMERA_READ, CAMERA_JPEG, CAMERA_SEED = 0.3, 2.0, 75, 7


# --------------------------------------------------------------------------- degradations and framings


def camera(lr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera's LR: signal-dependent shot noise and read noise on every channel, then OpenCV JPEG 75.

    Written apart from pkdn.data.degrade on purpose: a path the models were not trained on."""
    x = lr.astype(np.float64)
    shot = rng.poisson(x / CAMERA_GAIN) * CAMERA_GAIN
    y = np.clip(np.round(shot + rng.normal(0.0, CAMERA_READ, x.shape)), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", y[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, CAMERA_JPEG])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def _rng(stem: str) -> np.random.Generator:
    return np.random.default_rng([CAMERA_SEED, zlib.crc32(stem.encode())])


def reframe(img: Image.Image, scale: float = 1.0, angle: float = 0.0, size: int = 128) -> Image.Image:
    """HR of a face crop framed ``scale`` x tighter than the standard one (its central square) and turned by
    ``angle`` degrees (counter-clockwise) about the crop's centre.

    Where the square leaves the crop, the crop is mirrored (numpy ``reflect``): CelebA crops hold ~200 px,
    so a 0.6 framing (333 px) mirrors 67 px on each side."""
    img = img.convert("RGB")
    w, h = img.size
    side = min(w, h) / scale
    a = math.radians(angle)
    half = side / 2 * (abs(math.cos(a)) + abs(math.sin(a)))  # half-extent of the turned square
    pad = max(0, math.ceil(half - min(w, h) / 2) + 2)
    arr = np.pad(np.asarray(img), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    big = Image.fromarray(arr)
    cx, cy = big.width / 2, big.height / 2
    if angle:
        big = big.rotate(angle, resample=BICUBIC, center=(cx, cy))
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    return big.resize((size, size), BICUBIC, box=box)


def row_faces(row: str, n: int) -> int:
    """How many of the first ``n`` CelebA test faces a row takes."""
    return n if row in FULL_ROWS else min(n, SWEEP_FACES)


def _complete(out: Path, n: int) -> bool:
    return (out / "lr").is_dir() and len(list((out / "lr").glob("*.png"))) >= n


def build_celeba_rows(faces: Path, work: Path, n: int, wanted: list[str]) -> dict[str, Path]:
    """Folders (``hr/`` + ``lr/``, or the crops themselves for clean) of the CelebA rows in ``wanted``."""
    files = list_images(faces)[:n]
    sets = {}
    for group in (FULL_ROWS, ("foreign-opencv", "foreign-reshared")):
        mine = tuple(r for r in wanted if r in group)
        if mine:
            sets.update(build_sets(faces, work / "real_world", row_faces(mine[0], len(files)), mine))
    for row in wanted:
        if row in sets or not (row == "foreign-camera" or row.startswith(("framing-", "tilt-"))):
            continue
        out = work / row
        mine = files[: row_faces(row, len(files))]
        if not _complete(out, len(mine)):
            print(f"building {row} ({len(mine)} faces) in {out}", file=sys.stderr, flush=True)
            for p in mine:
                kind, value = row.split("-")
                if kind == "foreign":  # the camera path
                    hr = hr_from_image(load_rgb(p))
                    small = cv2.resize(np.asarray(hr), (16, 16), interpolation=cv2.INTER_AREA)
                    lr = Image.fromarray(camera(small, _rng(p.stem)))
                else:
                    turn = {"scale": float(value)} if kind == "framing" else {"angle": float(value)}
                    hr = reframe(load_rgb(p), **turn)
                    lr = lr_from_hr(hr)
                save_png(hr, out / "hr" / f"{p.stem}.png")
                save_png(lr, out / "lr" / f"{p.stem}.png")
        sets[row] = out
    return sets


# --------------------------------------------------------------------------- scoring


@dataclass
class RowScores:
    """Per face and method: PSNR, SSIM, identity distance and rank-1 hit (identity on the first faces)."""

    label: str
    psnr: dict[str, np.ndarray] = field(default_factory=dict)
    ssim: dict[str, np.ndarray] = field(default_factory=dict)
    dist: dict[str, np.ndarray] = field(default_factory=dict)
    hit: dict[str, np.ndarray] = field(default_factory=dict)
    #: rank-1 with the face's own HR left out of the gallery (rows that hold two photos of a person)
    hit_other: dict[str, np.ndarray] = field(default_factory=dict)
    note: str = ""

    @property
    def n(self) -> int:
        return len(next(iter(self.psnr.values())))

    def subset(self, label: str, keep: np.ndarray, ids: list[str] | None, emb: dict[str, np.ndarray]) -> RowScores:
        """The faces where ``keep`` is true, with rank-1 recomputed among them."""
        sub = RowScores(label, {m: v[keep] for m, v in self.psnr.items()}, {m: v[keep] for m, v in self.ssim.items()})
        if emb:
            hr = emb["hr"][keep]
            for m in self.psnr:
                sub.dist[m] = identity.distances(emb[m][keep], hr)
                sub.hit[m] = identity.rank1(emb[m][keep], hr, None if ids is None else list(np.asarray(ids)[keep]))
        return sub


def from_eval(label: str, res: evaluate.EvalResult, res_id: evaluate.EvalResult | None, ids) -> RowScores:
    row = RowScores(label)
    for m in res.methods:
        row.psnr[m], row.ssim[m] = np.asarray(res.psnr[m]), np.asarray(res.ssim[m])
        if res_id is not None:
            people = ids(res_id.names) if ids else None
            row.dist[m], row.hit[m] = res_id.identity_scores(m, people)
            if people is not None:
                row.hit_other[m] = res_id.identity_scores(m, people, leave_own_out=True)[1]
    if res_id is not None and len(res_id.names) < len(res.names):
        row.note = f"identity on the first {len(res_id.names)}"
    return row


def score_folder(label, models, folder, n, embedder, id_faces, ids=None) -> RowScores:
    """PSNR / SSIM on ``n`` faces of a folder row; identity on the first ``id_faces`` of them."""
    k = min(n, id_faces) if embedder is not None else 0
    if k == n:
        res, _ = evaluate.evaluate(models, folder, limit=n, batch_size=32, embedder=embedder)
        return from_eval(label, res, res, ids)
    res, _ = evaluate.evaluate(models, folder, limit=n, batch_size=32)
    res_id = evaluate.evaluate(models, folder, limit=k, batch_size=32, embedder=embedder)[0] if k else None
    return from_eval(label, res, res_id, ids)


def _face_region(box: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _face_crop(img: Image.Image, m_template: np.ndarray) -> np.ndarray:
    """The face's axis-aligned training-style square (its crop side around its centre) at 128 px, for the
    face recogniser; black where it leaves the photo (the same for HR and every output)."""
    side = align.crop_side(m_template)
    cx, cy = align.crop_center(m_template)
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    s = round(side)
    return np.asarray(img.crop((x0, y0, x0 + s, y0 + s)).resize((128, 128), BICUBIC))


def score_photos(
    label, specs, photos, camera_lr, embedder, detector, limit, on_hr: dict
) -> tuple[RowScores, RowScores]:
    """Whole photos: HR = the photo (cropped to a multiple of 8), LR = PIL bicubic x1/8 [+ camera]; each
    model through `pkdn sr --whole` (WholePhotoSR), bicubic = PIL x8 of the LR. Faces are found on HR;
    those with an LR crop side in FACE_RANGE are scored inside their detection box (HR pixels). ``on_hr``
    caches the HR detections per photo across rows."""
    pipes = {name: WholePhotoSR(model=spec, detector=detector, precision="fp32") for name, spec in specs.items()}
    full = RowScores(label)
    per: dict[str, dict[str, list]] = {m: {"p": [], "s": []} for m in [evaluate.BICUBIC, *specs]}
    crops: dict[str, list[np.ndarray]] = {m: [] for m in ["hr", evaluate.BICUBIC, *specs]}
    sides, people = [], []
    for path in photos[:limit] if limit else photos:
        hr = load_rgb(path)
        hr = hr.crop((0, 0, hr.width // 8 * 8, hr.height // 8 * 8))
        lr = hr.resize((hr.width // 8, hr.height // 8), BICUBIC)
        if camera_lr:
            lr = Image.fromarray(camera(np.asarray(lr), _rng(path.stem)))
        outs = {evaluate.BICUBIC: lr.resize(hr.size, BICUBIC)}
        outs.update({m: p(lr).image for m, p in pipes.items()})
        hr_t = torch.from_numpy(np.array(hr)).permute(2, 0, 1).float() / 255
        out_t = {m: torch.from_numpy(np.array(o)).permute(2, 0, 1).float() / 255 for m, o in outs.items()}
        if path not in on_hr:  # faces of 12+ LR px are 96+ px on HR: no upscaled levels needed
            on_hr[path] = on_hr.setdefault("detector", RetinaFaceDetector(upscales=()))(np.asarray(hr))
        for d in on_hr[path]:
            m_t = align.to_template(d.landmarks)
            side = align.crop_side(m_t) / 8
            if not FACE_RANGE[0] <= side <= FACE_RANGE[1]:
                continue
            x0, y0, x1, y1 = _face_region(d.box, hr.width, hr.height)
            if min(x1 - x0, y1 - y0) < 16:
                continue
            sides.append(side)
            people.append(photo_person(path.stem, len(sides)))
            for m, t in out_t.items():
                p, s = metrics.psnr_ssim_y(t[:, y0:y1, x0:x1], hr_t[:, y0:y1, x0:x1], border=0)
                per[m]["p"].append(float(p[0]))
                per[m]["s"].append(float(s[0]))
            if embedder is not None:
                crops["hr"].append(_face_crop(hr, m_t))
                for m, o in outs.items():
                    crops[m].append(_face_crop(o, m_t))
        print(f"  {label}: {path.name}: {len(sides)} faces so far", file=sys.stderr, flush=True)
    for m, v in per.items():
        full.psnr[m], full.ssim[m] = np.asarray(v["p"]), np.asarray(v["s"])
    emb = {}
    if embedder is not None and crops["hr"]:
        boxes = [embedder.box(c) for c in crops["hr"]]
        emb = {m: embedder.embed(c, boxes) for m, c in crops.items()}
        for m in per:
            full.dist[m] = identity.distances(emb[m], emb["hr"])
            full.hit[m] = identity.rank1(emb[m], emb["hr"], people)
    small = full.subset(f"{label}, faces < {SMALL_FACE} px", np.asarray(sides) < SMALL_FACE, people, emb)
    return full, small


# --------------------------------------------------------------------------- table


def cell(row: RowScores, m: str) -> str:
    if row.n == 0:
        return "—"
    p, s = metrics.mean_finite(row.psnr[m]), float(np.mean(row.ssim[m]))
    if m == evaluate.BICUBIC:
        text = f"{p:.2f} / {s:.3f}"
    else:
        gain = row.psnr[m] - row.psnr[evaluate.BICUBIC]
        gain = gain[np.isfinite(gain)]
        text = (
            f"{gain.mean():+.2f} / {s - float(np.mean(row.ssim[evaluate.BICUBIC])):+.3f} "
            f"(p5 {np.percentile(gain, 5):+.2f})"
        )
    if m in row.dist and len(row.dist[m]):
        hits = row.hit[m][np.isfinite(row.hit[m])]
        r1 = f"{100 * hits.mean():.0f} %" if len(hits) else "—"
        if m in row.hit_other:
            other = row.hit_other[m][np.isfinite(row.hit_other[m])]
            r1 += f" (other photo {100 * other.mean():.0f} %)" if len(other) else ""
        text += f" · {row.dist[m].mean():.3f} · {r1}"
    return text


def print_table(rows: list[RowScores], methods: list[str]) -> None:
    print(
        "x8 from 16 px faces. Each cell: PSNR / SSIM (bicubic: absolute, dB / SSIM; models: gain over bicubic, "
        "with p5 = 5th percentile of the per-face PSNR gain) · identity distance to HR (dlib, lower is better) "
        "· rank-1 identification (the output's nearest HR face, own HR included, is the same person; "
        "'other photo': with its own HR left out, another photo of the person is nearest).\n"
    )
    print("| row (faces) | " + " | ".join(methods) + " |")
    print("| --- |" + " --- |" * len(methods))
    for r in rows:
        note = f", {r.note}" if r.note else ""
        print(f"| {r.label} ({r.n}{note}) | " + " | ".join(cell(r, m) for m in methods) + " |", flush=True)


def photo_person(stem: str, k: int) -> str:
    """Who a photo face is, for rank-1: the CC0 series (lisa*, zoom_*) show one person; any other face is
    taken as its own person."""
    return "webmorph-cc0" if stem.startswith(("lisa", "zoom_")) else f"{stem}#{k}"


def person(names: list[str]) -> list[str]:
    """faces-other file names are ``<person>__<photo>``."""
    return [n.split("__")[0] for n in names]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME[=FILE]",
        help=f"shipped name or NAME=FILE, repeatable (default: {DEFAULT_MODEL}); lite is always compared",
    )
    ap.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="faces per CelebA row, photos per photo row (faces-other stays whole)",
    )
    ap.add_argument("--rows", nargs="+", default=["all"], metavar="ROW", help="rows or prefixes (framing, photos)")
    ap.add_argument("--id-faces", type=int, default=100, metavar="N", help="identity on the first N faces of a row")
    ap.add_argument(
        "--faces",
        type=Path,
        default=Path(os.environ.get("PKDN_CELEBA", REPO.parent / "shared" / "data" / "celeba")) / "test",
        help="the CelebA test crops (default: $PKDN_CELEBA/test, else ../shared/data/celeba/test)",
    )
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "robustness")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    wanted = [r for r in ROWS if "all" in a.rows or any(r == w or r.startswith(w + "-") for w in a.rows)]
    unknown = [w for w in a.rows if w != "all" and not any(r == w or r.startswith(w + "-") for r in ROWS)]
    if unknown or not wanted:
        ap.error(f"unknown row(s) {unknown}; rows: {', '.join(ROWS)}")
    specs = {"lite": "lite"}
    for spec in a.model or [DEFAULT_MODEL]:
        name, _, path = spec.partition("=")
        specs[name] = path or name
    models = {n: Restorer(p, device="cpu", precision="fp32", batch_size=32) for n, p in specs.items()}
    methods = [evaluate.BICUBIC, *specs]
    try:
        embedder = identity.FaceEmbedder()
    except identity.IdentityUnavailable as e:
        print(f"robustness: no identity columns: {e}", file=sys.stderr)
        embedder = None

    t0 = time.perf_counter()
    celeba = [r for r in wanted if not r.startswith(("faces-", "photos-"))]
    if celeba and not a.faces.is_dir():
        ap.error(f"{a.faces}: no such folder of CelebA test crops (set PKDN_CELEBA or --faces)")
    n = min(a.limit or 10**9, len(list_images(a.faces))) if celeba else 0
    folders = build_celeba_rows(a.faces, a.work, n, celeba) if celeba else {}
    rows: list[RowScores] = []
    detector, on_hr = None, {}
    for row in wanted:
        t = time.perf_counter()
        print(f"scoring {row} ...", file=sys.stderr, flush=True)
        if row in folders:
            rows.append(score_folder(row, models, folders[row], row_faces(row, n), embedder, a.id_faces))
        elif row == "faces-other":
            k = len(list_images(DATA / "faces"))  # always whole: a first N would split the pairs rank-1 needs
            rows.append(score_folder(row, models, DATA / "faces", k, embedder, k, ids=person))
        else:
            detector = detector or RetinaFaceDetector()
            photos = list_images(DATA / "photos")
            full, small = score_photos(row, specs, photos, row == "photos-camera", embedder, detector, a.limit, on_hr)
            rows += [full, small]
        print(f"  {row}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    print_table(rows, methods)
    print(f"\n{time.perf_counter() - t0:.0f} s in all; sets in {a.work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
