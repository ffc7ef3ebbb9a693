"""Cut 128 x 128 HR training faces, several framings each, from photos with 300-W 68-point landmarks.

Each source is a folder of ``<photo>_<face>.jpg`` + ``.pts`` pairs (a 300-W
copy of Helen's or AFW's training photos). Every face gets the CelebA framing
plus random zoomed / tilted / shifted framings (``pkdn.data.faces_from_photos``),
cut from the full photo and shrunk with an antialiasing filter; faces whose
standard framing would need upscaling are left out. Test photos never enter:

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
    crop_matrix,
    five_points,
    plan_framings,
    read_pts,
    render,
)
from pkdn.faces.align import template  # noqa: E402
from pkdn.fileio import atomic_write_bytes  # noqa: E402

THUMB = 24  # side of the grey thumbnails compared for near-duplicates (photos) and same faces (aligned)
PHOTO_DUP = 0.97  # correlation of photo thumbnails above which two photos are the same picture
FACE_DUP = 0.92  # correlation of aligned face thumbnails above which two faces are the same face


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def photo_id(stem: str) -> str:
    """300-W names a face ``<photo id>_<face index>``."""
    return stem.rsplit("_", 1)[0]


def _unit(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64).ravel()
    a -= a.mean()
    return a / max(np.linalg.norm(a), 1e-9)


def photo_thumb(img: Image.Image) -> np.ndarray:
    """Zero-mean unit-norm grey thumbnail of the whole photo (aspect ignored: re-encodes keep it)."""
    return _unit(np.asarray(img.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX)))


def face_thumb(img: Image.Image, five: np.ndarray) -> np.ndarray:
    """Zero-mean unit-norm grey thumbnail of the face's inner region at the standard framing
    (a small face is upscaled here, for this comparison only)."""
    inner = render(img, crop_matrix(five)).crop((32, 32, 96, 104))  # eyes to chin: context varies between copies
    return _unit(np.asarray(inner.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX)))


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
    """What the test sets hold: photo ids, photo hashes, photo thumbnails, aligned face thumbnails."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.hashes: dict[str, str] = {}
        self.photos: list[tuple[str, np.ndarray]] = []
        self.faces: list[tuple[str, np.ndarray]] = []

    def add_photos(self, folder: Path) -> None:
        seen: set[Path] = set()
        for img_path, pts in pairs(folder):
            img = Image.open(img_path)
            self.faces.append((f"{folder.name}/{pts.stem}", face_thumb(img, five_points(read_pts(pts)))))
            self.ids.add(photo_id(img_path.stem))
            if img_path not in seen:
                seen.add(img_path)
                self.hashes[sha256(img_path)] = f"{folder.name}/{img_path.name}"
                self.photos.append((f"{folder.name}/{img_path.name}", photo_thumb(img)))

    def add_faces(self, folder: Path) -> int:
        """128 px face crops without landmarks; returns how many had no detectable face."""
        from pkdn.faces.detect import RetinaFaceDetector

        det, missed = RetinaFaceDetector(upscales=(2.0,)), 0
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() not in (".jpg", ".png", ".jpeg"):
                continue
            img = Image.open(p).convert("RGB")
            self.hashes[sha256(p)] = f"{folder.name}/{p.name}"
            found = det(np.asarray(img))
            if not found:
                missed += 1
                continue
            best = max(found, key=lambda d: d.score)
            self.faces.append((f"{folder.name}/{p.name}", face_thumb(img, best.landmarks)))
        return missed

    def reason(self, img_path: Path, digest: str, pthumb: np.ndarray, fthumb: np.ndarray) -> str | None:
        if photo_id(img_path.stem) in self.ids:
            return f"photo id {photo_id(img_path.stem)} is a test photo"
        if digest in self.hashes:
            return f"same file as test {self.hashes[digest]}"
        for name, t in self.photos:
            if float(t @ pthumb) > PHOTO_DUP:
                return f"photo near-duplicate of test {name} (r={float(t @ pthumb):.3f})"
        for name, t in self.faces:
            if float(t @ fthumb) > FACE_DUP:
                return f"face matches test {name} (r={float(t @ fthumb):.3f})"
        return None

    def best_face_match(self, fthumb: np.ndarray) -> tuple[str, float]:
        if not self.faces:
            return "", float("nan")
        rs = [float(t @ fthumb) for _, t in self.faces]
        i = int(np.argmax(rs))
        return self.faces[i][0], rs[i]


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
    ex = Excluder()
    for d in a.exclude_photos:
        ex.add_photos(d)
    fsr_missed = sum(ex.add_faces(d) for d in a.exclude_faces)
    print(
        f"test sets: {len(ex.ids)} photo ids, {len(ex.hashes)} files hashed, {len(ex.faces)} faces to compare"
        + (f" ({fsr_missed} test crops without a detected face)" if fsr_missed else "")
    )

    crops_dir = a.out / "crops"
    crops_dir.mkdir(parents=True, exist_ok=True)
    records, counts = [], {}
    nearest: list[float] = []
    for spec in a.source:
        name, _, folder = spec.partition("=")
        c = counts.setdefault(name, {"faces": 0, "photos": set(), "kept": 0, "crops": 0, "excluded": 0, "small": 0})
        for img_path, pts_path in pairs(Path(folder)):
            c["faces"] += 1
            c["photos"].add(photo_id(img_path.stem))
            five = five_points(read_pts(pts_path))
            img = Image.open(img_path)
            img.load()
            digest = sha256(img_path)
            ft = face_thumb(img, five)
            rec = {
                "source": name,
                "face": img_path.stem,
                "photo_id": photo_id(img_path.stem),
                "photo_sha256": digest,
                "photo_size": list(img.size),
                "eye_distance_px": round(float(np.linalg.norm(five[1] - five[0])), 2),
            }
            why = ex.reason(img_path, digest, photo_thumb(img), ft)
            match, r = ex.best_face_match(ft)
            rec["nearest_test_face"], rec["nearest_test_r"] = match, round(r, 4)
            nearest.append(r)
            if why:
                rec["dropped"] = why
                c["excluded"] += 1
            else:
                framings = plan_framings(f"{name}/{img_path.stem}", five, img.size, n=a.crops, seed=a.seed)
                if not framings:
                    rec["dropped"] = "face too small (its standard framing would need upscaling)"
                    c["small"] += 1
                else:
                    c["kept"] += 1
                    rec["crops"] = []
                    for k, f in enumerate(framings):
                        out = crops_dir / f"{name}_{img_path.stem}_{k}.png"
                        if not out.exists():
                            crop = render(img, crop_matrix(five, f))
                            buf = _png(crop)
                            atomic_write_bytes(out, buf)
                        rec["crops"].append({"file": out.name, **asdict(f)})
                    c["crops"] += len(framings)
            records.append(rec)

    summary = {
        name: {**{k: v for k, v in c.items() if k != "photos"}, "photos": len(c["photos"])}
        for name, c in counts.items()
    }
    doc = {
        "command": "python scripts/build_faces.py " + " ".join(sys.argv[1:]),
        "sources": {s.partition("=")[0]: s.partition("=")[2] for s in a.source},
        "exclude_photos": [str(d) for d in a.exclude_photos],
        "exclude_faces": [str(d) for d in a.exclude_faces],
        "thresholds": {"photo_thumbnail_r": PHOTO_DUP, "face_thumbnail_r": FACE_DUP, "thumb": THUMB},
        "summary": summary,
        "faces": records,
    }
    atomic_write_bytes(a.out / "SOURCES.json", (json.dumps(doc, indent=1) + "\n").encode())
    for name, s in summary.items():
        print(
            f"{name}: {s['faces']} faces in {s['photos']} photos -> {s['kept']} kept, {s['crops']} crops; "
            f"{s['excluded']} excluded as test, {s['small']} too small"
        )
    if nearest and np.isfinite(nearest).all():
        print(
            f"highest aligned-face correlation of a kept face with any test face: "
            f"{max(r['nearest_test_r'] for r in records if 'dropped' not in r):.3f} (threshold {FACE_DUP})"
        )
    print(f"wrote {a.out / 'SOURCES.json'} in {time.time() - t0:.0f} s")
    if a.measure:
        measure(records, crops_dir, a.measure)


def _png(img: Image.Image) -> bytes:
    import io

    b = io.BytesIO()
    img.save(b, format="PNG")
    return b.getvalue()


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
