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

``--framing-of DIR`` cuts ONE crop per face at the framing of the test crops
in DIR instead (the Helen x8 set, framed like FSRNet's Helen test faces): the
project's detector finds the 5 points of every crop in DIR; their mean, fitted
by a similarity to the mean detected 5 points of the test photos' standard
crops (cut from their 68 landmarks exactly as training faces are, so the
detector-versus-68-point offset cancels), is the framing. DIR is excluded as a
test set too. ``--val-fraction F`` puts the faces of a deterministic F of the
photo ids (hashed) into ``crops/val/`` and the rest into ``crops/train/``.
``--same-person D`` embeds every kept face and every test face with dlib's
face recogniser (``pkdn.identity``) and writes each face whose nearest test
face is closer than D (dlib's same-person threshold is 0.6) beside that test
face into ``OUT/same_person/``, to be looked at; ``--drop-same-person`` also
drops them. At 0.6 most such pairs are different people (children above
all), so look first: ``--drop-faces FILE`` drops the faces listed there
(``SOURCE/FACE TEST_FACE`` lines), those judged the same person by eye::

    python scripts/build_faces.py /work/data/helen_x8_crops \\
        --source helen=/work/data/sources/300w-spinkoo/helen/trainset \\
        --exclude-photos /work/data/sources/300w-spinkoo/helen/testset \\
        --framing-of /work/data/sources/fsrnet/data/helen_val_50_HR \\
        --val-fraction 0.05 --same-person 0.6 --drop-faces benchmarks/data/helen_same_person.txt
    pkdn prepare /work/data/helen_x8_crops/crops /work/data/helen_x8 --split folders

``--measure N`` also runs the project's face detector on the first framing
of every N-th kept face and prints where its 5 points land against where
they should (the template, or the measured test framing).
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
    face_seed,
    fits,
    five_points,
    photo_pixels_per_output_pixel,
    plan_framings,
    read_pts,
    render,
)
from pkdn.faces.align import similarity, template  # noqa: E402
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

    def landmarks(self, crop: Image.Image) -> np.ndarray | None:
        """The detector's 5 points of the face nearest the centre of a ~128 px crop."""
        found = self.det(np.asarray(crop.convert("RGB")))
        if not found:
            return None
        c = np.array(crop.size) / 2
        return min(found, key=lambda d: float(np.linalg.norm(d.landmarks.mean(0) - c))).landmarks

    def aligned(self, crop: Image.Image, five: np.ndarray | None) -> np.ndarray | None:
        """Thumbnail of the crop's face aligned by its detected 5 points."""
        return None if five is None else _grey(render(crop.convert("RGB"), crop_matrix(five)).crop(INNER))

    def detected(self, crop: Image.Image) -> np.ndarray | None:
        """Thumbnail of the face nearest the centre of a ~128 px crop, aligned by the detector's 5 points."""
        return self.aligned(crop, self.landmarks(crop))


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
        self.std_points: list[np.ndarray] = []  # detected 5 points on the test photos' standard crops
        self.crop_points: dict[Path, list[np.ndarray]] = {}  # detected 5 points of the test crops, per folder
        self.faces: dict[str, np.ndarray] = {}  # every test face as an RGB crop, for the identity check
        self.crop_names: list[str] = []  # the names in ``faces`` of the test crops (--exclude-faces)

    def add_photos(self, folder: Path) -> None:
        for img_path, pts in pairs(folder):
            img = Image.open(img_path)
            name = f"{folder.name}/{pts.stem}"
            raw, crop = self.thumbs.pts(img, five_points(read_pts(pts)))
            self.by_pts.add(name, raw)
            lm = self.thumbs.landmarks(crop)
            if lm is not None:
                self.std_points.append(lm)
            self.by_det.add(name, self.thumbs.aligned(crop, lm))
            self.faces[name] = np.asarray(crop.convert("RGB"))
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
            crop = Image.open(p).convert("RGB")
            lm = self.thumbs.landmarks(crop)
            if lm is None:
                missed.append(p.name)
            else:
                self.crop_points.setdefault(folder, []).append(lm)
            self.by_det.add(f"{folder.name}/{p.name}", self.thumbs.aligned(crop, lm))
            self.faces[f"{folder.name}/{p.name}"] = np.asarray(crop)
            self.crop_names.append(f"{folder.name}/{p.name}")
        return missed

    def framing_of(self, folder: Path) -> tuple[Framing, np.ndarray]:
        """(framing, mean detected 5 points) of the test crops in ``folder``, relative to the standard framing
        as the detector sees it on the test photos' standard crops (the template when there are none)."""
        target = np.mean(self.crop_points[folder], 0)
        return Framing.of_matrix(similarity(self.reference_points(), target)), target

    def reference_points(self) -> np.ndarray:
        """The standard framing's 5 points as the detector sees them: the mean over the test photos' standard
        crops, or the template when there are none."""
        return np.mean(self.std_points, 0) if self.std_points else template()

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
    ap.add_argument("--framing-of", type=Path, help="one crop per face at the framing of these test crops")
    ap.add_argument("--val-fraction", type=float, default=0.0, help="photo ids held out into crops/val/")
    ap.add_argument("--same-person", type=float, help="show faces this close (dlib distance) to a test face")
    ap.add_argument("--drop-same-person", action="store_true", help="and drop them")
    ap.add_argument("--drop-faces", type=Path, help="file of SOURCE/FACE names judged the same person as a test face")
    ap.add_argument("--measure", type=int, default=0, help="detect landmarks on every N-th first crop")
    a = ap.parse_args()
    if a.framing_of and a.framing_of not in a.exclude_faces:
        a.exclude_faces.append(a.framing_of)
    if not 0.0 <= a.val_fraction < 1.0:
        ap.error(f"--val-fraction {a.val_fraction}: must be in [0, 1)")

    t0 = time.time()
    ex = Excluder(FaceThumbs())
    for d in a.exclude_photos:
        ex.add_photos(d)
    crops_missed = [m for d in a.exclude_faces for m in ex.add_faces(d)]
    ex.freeze()
    fixed, target = None, template()
    if a.framing_of:
        fixed, target = ex.framing_of(a.framing_of)
        report_framing(a.framing_of, ex, fixed, target)
    ident = Identity(ex.faces, ex.crop_names) if a.same_person is not None else None
    judged = read_face_list(a.drop_faces) if a.drop_faces else {}
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
    for split in ("train", "val") if a.val_fraction else ():
        (crops_dir / split).mkdir(exist_ok=True)
    records, counts, written = [], {}, set()
    for spec in a.source:
        name, _, folder = spec.partition("=")
        c = counts.setdefault(
            name,
            {"faces": 0, "photos": set(), "kept": 0, "crops": 0, "excluded": 0, "small": 0, "close_up": 0}
            | ({"same_person": 0} if ident else {})
            | ({"judged": 0} if judged else {})
            | ({"val": 0} if a.val_fraction else {}),
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
            if "dropped" not in rec and f"{name}/{img_path.stem}" in judged:
                test_face = judged[f"{name}/{img_path.stem}"]
                rec["dropped"] = f"same person as test {test_face} (looked at; {a.drop_faces.name})"
                c["judged"] += 1
                records.append(rec)
                continue
            if "dropped" in rec:
                c["excluded"] += 1
                records.append(rec)
                continue
            if fixed is not None:
                framings = [fixed] if fits(five, img.size, fixed) else []
            else:
                framings = plan_framings(f"{name}/{img_path.stem}", five, img.size, n=a.crops, seed=a.seed)
            first = fixed or Framing()
            if not framings and photo_pixels_per_output_pixel(crop_matrix(five, first)) < 1.0:
                rec["dropped"] = "face too small (its first framing would need upscaling)"
                c["small"] += 1
            elif not framings:
                rec["dropped"] = "close-up or photo edge: no framing stays inside the photo"
                c["close_up"] += 1
            else:
                crops = [std_crop if f == Framing() else render(img, crop_matrix(five, f)) for f in framings]
                if ident:
                    found = ident.nearest(crops[0])
                    rec["nearest_test"].update({k: [n, round(d, 4)] for k, (n, d) in found.items()})
                    near, dist = found["identity"]
                    if dist < a.same_person:
                        c["same_person"] += 1
                        pair_dir = a.out / "same_person"  # each such face beside its test face, to look at
                        pair_dir.mkdir(exist_ok=True)
                        save_png(ident.pair(crops[0], near), pair_dir / f"{dist:.3f}_{name}_{img_path.stem}.png")
                        if a.drop_same_person:
                            rec["dropped"] = f"same person as test {near}? (dlib distance {dist:.3f})"
                            records.append(rec)
                            continue
                split = ""
                if a.val_fraction:
                    held = face_seed(f"val:{rec['photo_id']}", a.seed) / 2**64 < a.val_fraction
                    split = "val/" if held else "train/"
                    rec["split"] = split.rstrip("/")
                    c["val"] += held
                c["kept"] += 1
                rec["crops"] = []
                for k, (f, crop) in enumerate(zip(framings, crops)):
                    rel = f"{split}{name}_{img_path.stem}_{k}.png"
                    if not (crops_dir / rel).exists():
                        save_png(crop, crops_dir / rel)
                    written.add(rel)
                    rec["crops"].append({"file": rel, **asdict(f)})
                c["crops"] += len(framings)
            records.append(rec)
    stale = [p for p in crops_dir.rglob("*") if p.is_file() and p.relative_to(crops_dir).as_posix() not in written]
    for p in stale:  # crops of an earlier run whose face is now dropped (or moved between splits)
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
        "thresholds": {"photo_thumbnail_r": PHOTO_DUP, "face_thumbnail_r": FACE_DUP, "thumb": THUMB}
        | ({"same_person_dlib_distance": a.same_person} if ident else {}),
        "framing": asdict(fixed) if fixed else None,
        "framing_target_points": target.round(3).tolist() if fixed else None,
        "val_fraction": a.val_fraction,
        "test_crops_nearest_test_photo_face": [[n, m, round(r, 4)] for n, m, r in crop_links],
        "summary": summary,
        "faces": records,
    }
    atomic_write_bytes(a.out / "SOURCES.json", (json.dumps(doc, indent=1) + "\n").encode())
    for name, s in summary.items():
        print(
            f"{name}: {s['faces']} faces in {s['photos']} photos -> {s['kept']} kept, {s['crops']} crops"
            + (f" ({s['val']} faces in val)" if "val" in s else "")
            + f"; {s['excluded']} excluded as test, {s['small']} too small, {s['close_up']} without a framing inside"
            " the photo"
            + (f"; {s['same_person']} under the same-person distance" if "same_person" in s else "")
            + (f"; {s['judged']} dropped as the same person as a test face (looked at)" if "judged" in s else "")
        )
    if len(zooms):
        print(f"random framings: zoom quartiles {np.round(np.percentile(zooms, [0, 25, 50, 75, 100]), 2).tolist()}")
    for key in ("photo", "face_by_pts", "face_by_detector"):
        rs = [r["nearest_test"][key][1] for r in kept if np.isfinite(r["nearest_test"][key][1])]
        if rs:
            print(f"kept faces' highest correlation with a test {key.replace('_', ' ')}: {max(rs):.3f}")
    if ident:
        report_identity(records, a.same_person)
    print(f"removed {len(stale)} stale crops; wrote {a.out / 'SOURCES.json'} in {time.time() - t0:.0f} s")
    if a.measure:
        measure(records, crops_dir, a.measure, fixed or Framing(), target)


def read_face_list(path: Path) -> dict[str, str]:
    """``SOURCE/FACE  TEST_FACE`` lines (``#`` comments): training faces judged the same person as a test face."""
    out = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2 or "/" not in words[0]:
            raise SystemExit(f"{path}:{i}: expected 'SOURCE/FACE TEST_FACE', got {line!r}")
        out[words[0]] = words[1]
    return out


class Identity:
    """dlib face-recognition embeddings of the test faces; a face's nearest one (:mod:`pkdn.identity`)."""

    def __init__(self, faces: dict[str, np.ndarray], crop_names: list[str]) -> None:
        from pkdn.identity import FaceEmbedder

        self.emb = FaceEmbedder()
        self.faces = faces
        self.names = list(faces)
        self.vecs = self.emb.embed(list(faces.values()))
        self.is_crop = np.isin(self.names, crop_names)

    def nearest(self, crop: Image.Image) -> dict[str, tuple[str, float]]:
        """The nearest test face (``identity``) and the nearest test crop (``identity_crops``), with distances."""
        v = self.emb.embed([np.asarray(crop.convert("RGB"))])[0]
        d = np.linalg.norm(self.vecs - v, axis=1)
        out = {"identity": int(np.argmin(d))}
        if self.is_crop.any():
            out["identity_crops"] = int(np.flatnonzero(self.is_crop)[np.argmin(d[self.is_crop])])
        return {k: (self.names[i], float(d[i])) for k, i in out.items()}

    def pair(self, crop: Image.Image, name: str) -> Image.Image:
        """The crop beside the test face ``name`` (both at 128 px), to look at a match."""
        test = Image.fromarray(self.faces[name]).resize(crop.size, Image.Resampling.LANCZOS)
        out = Image.new("RGB", (crop.width * 2, crop.height))
        out.paste(crop.convert("RGB"), (0, 0))
        out.paste(test, (crop.width, 0))
        return out


def report_framing(folder: Path, ex: Excluder, f: Framing, target: np.ndarray) -> None:
    """Print the measured test framing: mean 5 points, eye distance, the framing against the standard one."""
    pts = np.stack(ex.crop_points[folder])
    ref = ex.reference_points()
    print(f"framing of {folder} ({len(pts)} crops, detector): mean 5 points (x, y) and spread (sd)")
    for n, m, sd in zip(["eye L", "eye R", "nose", "mouth L", "mouth R"], target, pts.std(0)):
        print(f"  {n:8s} {m[0]:6.2f} {m[1]:6.2f}   sd {sd[0]:5.2f} {sd[1]:5.2f}")
    ed = np.linalg.norm(pts[:, 1] - pts[:, 0], axis=1).mean()
    ref_ed = np.linalg.norm(ref[1] - ref[0])
    print(
        f"  eye distance {ed:.2f} px; the standard framing's, detected on {len(ex.std_points)} test-photo crops: "
        f"{ref_ed:.2f} px (template {np.linalg.norm(template()[1] - template()[0]):.2f})"
    )
    print(f"  -> framing: zoom {f.zoom:.4f}, tilt {f.tilt:+.3f} deg, shift ({f.shift[0]:+.2f}, {f.shift[1]:+.2f}) px")


def report_identity(records: list[dict], threshold: float) -> None:
    """The closest identity pairs (dlib distance of a face to its nearest test face, and to its nearest test
    crop), kept or dropped."""
    for key, what in (("identity", "test face"), ("identity_crops", "test crop (--exclude-faces)")):
        rows = sorted(
            (r["nearest_test"][key][1], r["face"], r["nearest_test"][key][0], "dropped" in r)
            for r in records
            if key in r.get("nearest_test", {})
        )
        if not rows:
            continue
        d = np.array([x[0] for x in rows])
        print(
            f"identity (dlib) to the nearest {what} over {len(d)} faces: min {d.min():.3f}, "
            f"1% {np.percentile(d, 1):.3f}, median {np.median(d):.3f}; {int((d < threshold).sum())} under "
            f"{threshold}, {int((d < 0.5).sum())} under 0.5"
        )
        for dist, face, near, dropped in rows[:8]:
            print(f"  {dist:.3f} {face} ~ {near}" + (" (dropped)" if dropped else ""))


def measure(
    records: list[dict], crops_dir: Path, every: int, framing: Framing, target: np.ndarray | None = None
) -> None:
    """Where the project's detector puts the 5 points on the first crops at ``framing``, against ``target``
    (the template by default)."""
    from pkdn.faces.detect import RetinaFaceDetector

    det = RetinaFaceDetector(upscales=(2.0,))
    want = asdict(framing)
    kept = [r for r in records if "crops" in r and all(np.allclose(r["crops"][0][k], v) for k, v in want.items())]
    pts, missed = [], 0
    for r in kept[::every]:
        hr = np.asarray(Image.open(crops_dir / r["crops"][0]["file"]).convert("RGB"))
        found = det(hr)
        if not found:
            missed += 1
            continue
        pts.append(min(found, key=lambda d: float(np.linalg.norm(d.landmarks.mean(0) - 64))).landmarks)
    p, t = np.stack(pts), template() if target is None else np.asarray(target)
    print(f"framing check on {len(p)} first crops ({missed} without a detection): detected mean - target")
    for n, m, d in zip(["eye L", "eye R", "nose", "mouth L", "mouth R"], p.mean(0), p.mean(0) - t):
        print(f"  {n:8s} x {m[0]:6.2f} y {m[1]:6.2f}   ({d[0]:+.2f}, {d[1]:+.2f})")
    ed = np.linalg.norm(p[:, 1] - p[:, 0], axis=1)
    print(f"  eye distance {ed.mean():.2f} px (target {np.linalg.norm(t[1] - t[0]):.2f})")


if __name__ == "__main__":
    main()
