"""Cut 128 x 128 HR training faces, several framings each, from photos with 300-W 68-point landmarks.

Each source is a folder of ``<photo>_<face>.jpg`` + ``.pts`` pairs (a 300-W
copy of Helen's or AFW's training photos). Every face gets the CelebA framing
plus random zoomed / tilted / shifted framings (``pkdn.data.faces_from_photos``),
cut from the full photo and shrunk with an antialiasing filter; faces whose
standard framing would need upscaling, and close-ups that no framing fits
inside their photo, are left out. Test photos never enter:

* ``--exclude-photos DIR`` (repeatable): a test split's photos (with ``.pts``).
  A candidate is dropped when its photo id (file name before the last ``_``)
  is a test photo id, when its photo's SHA-256 equals a test photo's, when
  its photo thumbnail is a near-duplicate of a test photo's, or when its
  aligned face matches a test face (same face cut from a re-encoded copy).
* ``--exclude-faces DIR`` (repeatable): 128 px test face crops without
  landmarks (FSRNet's Helen test faces); their 5 points are found by the
  project's detector and the aligned faces compared the same way.

Writes ``OUT/crops/<source>_<face>_<k>.png`` and ``OUT/SOURCES.json`` (every
face kept or dropped, why, its photo's SHA-256 and its framings), then
prints counts. Deterministic: per-face seeds come from the face's name::

    python scripts/build_faces.py /work/data/helen_crops \\
        --source helen=/work/data/sources/300w-spinkoo/helen/trainset \\
        --source afw=/work/data/sources/300w-spinkoo/afw/afw \\
        --exclude-photos /work/data/sources/300w-spinkoo/helen/testset \\
        --exclude-faces /work/data/sources/fsrnet/data/helen_val_50_HR
    pkdn prepare /work/data/helen_crops/crops /work/data/helen --split train --crop resize

``--measure N`` also runs the project's face detector on the standard
framing of every N-th kept face and prints where its 5 points land against
the template (the framing check).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pkdn.data.faces_from_photos import (  # noqa: E402
    Framing,
    crop_matrix,
    five_points,
    photo_pixels_per_output_pixel,
    plan_framings,
    read_pts,
    render,
)
from pkdn.faces.align import template  # noqa: E402
from pkdn.fileio import atomic_write_bytes  # noqa: E402
from pkdn.imageio import save_png  # noqa: E402

THUMB = 32  # side of the grey thumbnails compared for near-duplicate photos and same faces
INNER = (24, 24, 104, 112)  # the face's eyes-to-chin box in the 128 frame: context varies between copies
PHOTO_DUP = 0.97  # correlation of photo thumbnails above which two photos are the same picture
#: correlation of mean-removed aligned-face thumbnails above which two faces count as the same face: different
#: Helen photos of one person/scene reach 0.95-0.99, the closest different people (train vs test) 0.85
FACE_DUP = 0.90


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def photo_id(stem: str) -> str:
    """300-W names a face ``<photo id>_<face index>``."""
    return stem.rsplit("_", 1)[0]


def _grey(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX), np.float64).ravel()


def _unit(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(-1, keepdims=True)
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-9)


def photo_thumb(img: Image.Image) -> np.ndarray:
    """Zero-mean unit-norm grey thumbnail of the whole photo (aspect ignored: re-encodes keep it)."""
    return _unit(_grey(img))


class FaceThumbs:
    """Aligned-face thumbnails two ways: by the 68 landmarks (``pts``) and by the project's detector run on
    the face's standard crop (``det``), so faces without landmarks (test crops) compare like with like."""

    def __init__(self) -> None:
        from pkdn.faces.detect import RetinaFaceDetector

        self.det = RetinaFaceDetector(upscales=(2.0,))  # 128 px crops at x2: well inside its anchors

    def pts(self, img: Image.Image, five: np.ndarray) -> tuple[np.ndarray, Image.Image]:
        """(thumbnail, standard crop); a small face is upscaled here, for this comparison only."""
        crop = render(img, crop_matrix(five))
        return _grey(crop.crop(INNER)), crop

    def detected(self, crop: Image.Image) -> np.ndarray | None:
        """Thumbnail of the face nearest the centre of a ~128 px crop, aligned by the detector's 5 points."""
        found = self.det(np.asarray(crop.convert("RGB")))
        if not found:
            return None
        c = np.array(crop.size) / 2
        best = min(found, key=lambda d: float(np.linalg.norm(d.landmarks.mean(0) - c)))
        return _grey(render(crop.convert("RGB"), crop_matrix(best.landmarks)).crop(INNER))


class FaceIndex:
    """Named raw thumbnails; compared after removing their mean face (what all faces share)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.raw: list[np.ndarray] = []

    def add(self, name: str, raw: np.ndarray | None) -> None:
        if raw is not None:
            self.names.append(name), self.raw.append(raw)

    def freeze(self) -> None:
        self.mean = np.mean(self.raw, 0) if self.raw else 0.0
        self.unit = _unit(np.asarray(self.raw) - self.mean) if self.raw else np.zeros((0, THUMB * THUMB))

    def best(self, raw: np.ndarray | None, among: slice = slice(None)) -> tuple[str, float]:
        if raw is None or not len(self.unit[among]):
            return "", float("nan")
        r = self.unit[among] @ _unit(raw - self.mean)
        i = int(np.argmax(r))
        return self.names[among][i], float(r[i])


def pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(image, .pts) pairs of a 300-W folder, sorted by name; an image without landmarks is an error."""
    out = []
    for pts in sorted(folder.glob("*.pts")):
        img = next((pts.with_suffix(e) for e in (".jpg", ".png", ".jpeg") if pts.with_suffix(e).exists()), None)
        if img is None:
            raise SystemExit(f"{pts}: no image beside these landmarks")
        out.append((img, pts))
    if not out:
        raise SystemExit(f"{folder}: no .pts files")
    return out


class Excluder:
    """What the test sets hold: photo ids, photo hashes, photo thumbnails, aligned-face thumbnails."""

    def __init__(self, thumbs: FaceThumbs) -> None:
        self.thumbs = thumbs
        self.ids: set[str] = set()
        self.hashes: dict[str, str] = {}
        self.photos: list[tuple[str, np.ndarray]] = []
        self.by_pts, self.by_det = FaceIndex(), FaceIndex()
        self.n_photo_faces = 0  # the first entries of by_det are test-photo faces, then test crops

    def add_photos(self, folder: Path) -> None:
        for img_path, pts in pairs(folder):
            img = Image.open(img_path)
            name = f"{folder.name}/{pts.stem}"
            raw, crop = self.thumbs.pts(img, five_points(read_pts(pts)))
            self.by_pts.add(name, raw)
            self.by_det.add(name, self.thumbs.detected(crop))
            self.n_photo_faces = len(self.by_det.names)
            self.ids.add(photo_id(img_path.stem))
            self.hashes[sha256(img_path)] = name
            self.photos.append((name, photo_thumb(img)))

    def add_faces(self, folder: Path) -> list[str]:
        """128 px face crops without landmarks; returns those without a detected face."""
        missed = []
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() not in (".jpg", ".png", ".jpeg"):
                continue
            self.hashes[sha256(p)] = f"{folder.name}/{p.name}"
            raw = self.thumbs.detected(Image.open(p))
            if raw is None:
                missed.append(p.name)
            self.by_det.add(f"{folder.name}/{p.name}", raw)
        return missed

    def freeze(self) -> None:
        self.photo_unit = np.stack([t for _, t in self.photos]) if self.photos else np.zeros((0, THUMB * THUMB))
        self.by_pts.freeze(), self.by_det.freeze()

    def crops_in_photo_faces(self) -> list[tuple[str, str, float]]:
        """Each test crop's closest test-photo face (detector channel): how the crop sets relate."""
        n = self.n_photo_faces
        return [
            (name, *self.by_det.best(raw, slice(0, n))) for name, raw in zip(self.by_det.names[n:], self.by_det.raw[n:])
        ]

    def check(self, img_path: Path, digest: str, img: Image.Image, raw_pts: np.ndarray, raw_det) -> dict:
        """Nearest test matches and, when one is too close, why the face is dropped."""
        out: dict = {}
        p_name, p_r = "", -1.0
        if len(self.photo_unit):
            r = self.photo_unit @ photo_thumb(img)
            p_name, p_r = self.photos[int(np.argmax(r))][0], float(r.max())
        f_name, f_r = self.by_pts.best(raw_pts)
        d_name, d_r = self.by_det.best(raw_det)
        out["nearest_test"] = {
            "photo": [p_name, round(p_r, 4)],
            "face_by_pts": [f_name, round(f_r, 4)],
            "face_by_detector": [d_name, round(d_r, 4)],
        }
        if photo_id(img_path.stem) in self.ids:
            out["dropped"] = f"photo id {photo_id(img_path.stem)} is a test photo"
        elif digest in self.hashes:
            out["dropped"] = f"same file as test {self.hashes[digest]}"
        elif p_r > PHOTO_DUP:
            out["dropped"] = f"photo near-duplicate of test {p_name} (r={p_r:.3f})"
        elif max(f_r, d_r) > FACE_DUP:
            out["dropped"] = f"face matches test {f_name if f_r >= d_r else d_name} (r={max(f_r, d_r):.3f})"
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output folder (crops/ and SOURCES.json are written into it)")
    ap.add_argument("--source", action="append", required=True, help="NAME=FOLDER of <face>.jpg + <face>.pts")
    ap.add_argument("--exclude-photos", action="append", default=[], type=Path, help="test photos with .pts")
    ap.add_argument("--exclude-faces", action="append", default=[], type=Path, help="test face crops (no .pts)")
    ap.add_argument("--crops", type=int, default=4, help="framings per face (the first is the CelebA one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--measure", type=int, default=0, help="detect landmarks on every N-th standard crop")
    a = ap.parse_args()

    t0 = time.time()
    ex = Excluder(FaceThumbs())
    for d in a.exclude_photos:
        ex.add_photos(d)
    crops_missed = [m for d in a.exclude_faces for m in ex.add_faces(d)]
    ex.freeze()
    print(
        f"test sets: {len(ex.ids)} photo ids, {len(ex.hashes)} files hashed, {len(ex.by_pts.names)} faces by "
        f"landmarks, {len(ex.by_det.names)} by detector"
        + (f"; no face detected in test crops {crops_missed}" if crops_missed else "")
    )
    crop_links = ex.crops_in_photo_faces()
    if crop_links:
        n_in = sum(r > FACE_DUP for _, _, r in crop_links)
        print(f"test crops matching a test-photo face (r > {FACE_DUP}): {n_in} of {len(crop_links)}")

    crops_dir = a.out / "crops"
    crops_dir.mkdir(parents=True, exist_ok=True)
    records, counts, written = [], {}, set()
    for spec in a.source:
        name, _, folder = spec.partition("=")
        c = counts.setdefault(
            name, {"faces": 0, "photos": set(), "kept": 0, "crops": 0, "excluded": 0, "small": 0, "close_up": 0}
        )
        for img_path, pts_path in pairs(Path(folder)):
            c["faces"] += 1
            c["photos"].add(photo_id(img_path.stem))
            five = five_points(read_pts(pts_path))
            img = Image.open(img_path)
            img.load()
            digest = sha256(img_path)
            raw_pts, std_crop = ex.thumbs.pts(img, five)
            rec = {
                "source": name,
                "face": img_path.stem,
                "photo_id": photo_id(img_path.stem),
                "photo_sha256": digest,
                "photo_size": list(img.size),
                "eye_distance_px": round(float(np.linalg.norm(five[1] - five[0])), 2),
                **ex.check(img_path, digest, img, raw_pts, ex.thumbs.detected(std_crop)),
            }
            if "dropped" in rec:
                c["excluded"] += 1
            else:
                framings = plan_framings(f"{name}/{img_path.stem}", five, img.size, n=a.crops, seed=a.seed)
                if not framings and photo_pixels_per_output_pixel(crop_matrix(five)) < 1.0:
                    rec["dropped"] = "face too small (its standard framing would need upscaling)"
                    c["small"] += 1
                elif not framings:
                    rec["dropped"] = "close-up: no framing (zoom up to 1.7) stays inside the photo"
                    c["close_up"] += 1
                else:
                    c["kept"] += 1
                    rec["crops"] = []
                    for k, f in enumerate(framings):
                        out = crops_dir / f"{name}_{img_path.stem}_{k}.png"
                        if not out.exists():
                            crop = std_crop if f == Framing() else render(img, crop_matrix(five, f))
                            save_png(crop, out)
                        written.add(out.name)
                        rec["crops"].append({"file": out.name, **asdict(f)})
                    c["crops"] += len(framings)
            records.append(rec)
    stale = [p for p in crops_dir.iterdir() if p.name not in written]
    for p in stale:  # crops of an earlier run whose face is now dropped
        p.unlink()

    summary = {
        name: {**{k: v for k, v in c.items() if k != "photos"}, "photos": len(c["photos"])}
        for name, c in counts.items()
    }
    kept = [r for r in records if "crops" in r]
    zooms = np.array([f["zoom"] for r in kept for f in r["crops"][1:]])
    doc = {
        "command": "python scripts/build_faces.py " + " ".join(sys.argv[1:]),
        "sources": {s.partition("=")[0]: s.partition("=")[2] for s in a.source},
        "exclude_photos": [str(d) for d in a.exclude_photos],
        "exclude_faces": [str(d) for d in a.exclude_faces],
        "thresholds": {"photo_thumbnail_r": PHOTO_DUP, "face_thumbnail_r": FACE_DUP, "thumb": THUMB},
        "test_crops_nearest_test_photo_face": [[n, m, round(r, 4)] for n, m, r in crop_links],
        "summary": summary,
        "faces": records,
    }
    atomic_write_bytes(a.out / "SOURCES.json", (json.dumps(doc, indent=1) + "\n").encode())
    for name, s in summary.items():
        print(
            f"{name}: {s['faces']} faces in {s['photos']} photos -> {s['kept']} kept, {s['crops']} crops; "
            f"{s['excluded']} excluded as test, {s['small']} too small, {s['close_up']} close-ups without a framing"
        )
    if len(zooms):
        print(f"random framings: zoom quartiles {np.round(np.percentile(zooms, [0, 25, 50, 75, 100]), 2).tolist()}")
    for key in ("photo", "face_by_pts", "face_by_detector"):
        rs = [r["nearest_test"][key][1] for r in kept if np.isfinite(r["nearest_test"][key][1])]
        if rs:
            print(f"kept faces' highest correlation with a test {key.replace('_', ' ')}: {max(rs):.3f}")
    print(f"removed {len(stale)} stale crops; wrote {a.out / 'SOURCES.json'} in {time.time() - t0:.0f} s")
    if a.measure:
        measure(records, crops_dir, a.measure)


def measure(records: list[dict], crops_dir: Path, every: int) -> None:
    """Where the project's detector puts the 5 points on the standard (first) crops, against the template."""
    from pkdn.faces.detect import RetinaFaceDetector

    det = RetinaFaceDetector(upscales=(2.0,))
    kept = [r for r in records if "crops" in r and r["crops"][0]["zoom"] == 1.0 and r["crops"][0]["tilt"] == 0.0]
    pts, missed = [], 0
    for r in kept[::every]:
        hr = np.asarray(Image.open(crops_dir / r["crops"][0]["file"]).convert("RGB"))
        found = det(hr)
        if not found:
            missed += 1
            continue
        pts.append(min(found, key=lambda d: float(np.linalg.norm(d.landmarks.mean(0) - 64))).landmarks)
    p, t = np.stack(pts), template()
    print(f"framing check on {len(p)} standard crops ({missed} without a detection): detected mean - template")
    for n, m, d in zip(["eye L", "eye R", "nose", "mouth L", "mouth R"], p.mean(0), p.mean(0) - t):
        print(f"  {n:8s} x {m[0]:6.2f} y {m[1]:6.2f}   ({d[0]:+.2f}, {d[1]:+.2f})")
    ed = np.linalg.norm(p[:, 1] - p[:, 0], axis=1)
    print(f"  eye distance {ed.mean():.2f} px (template {np.linalg.norm(t[1] - t[0]):.2f})")


if __name__ == "__main__":
    main()
