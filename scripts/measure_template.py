"""Measure pkdn's alignment template: the mean 5 landmarks of the training crops, 128 x 128 frame.

The whole-photo pipeline warps every detected face so that its landmarks land
on these points; they must be where the faces the network learned from have
them (CelebA crops framed by ``pkdn.data.degrade.hr_from_image``), not
FFHQ's. Landmarks come from the same detector the pipeline uses, so its
biases cancel. Writes ``src/pkdn/faces/template.json`` and prints a summary::

    python scripts/measure_template.py [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pkdn.data.degrade import hr_from_image
from pkdn.faces.detect import RetinaFaceDetector
from pkdn.fileio import atomic_write_bytes

NAMES = ["eye_left_in_image", "eye_right_in_image", "nose", "mouth_left_in_image", "mouth_right_in_image"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "celeba" / "train"))
    ap.add_argument("--limit", type=int, default=None, help="first N faces (sorted by name) only")
    ap.add_argument("--out", default=str(REPO / "src" / "pkdn" / "faces" / "template.json"))
    a = ap.parse_args()
    files = sorted(Path(a.data).glob("*.jpg"))[: a.limit]
    det = RetinaFaceDetector(upscales=(2.0,))  # a 128 px crop at x2: the face is well inside the anchors' range
    pts, missed, t0 = [], 0, time.time()
    for f in files:
        hr = np.asarray(hr_from_image(Image.open(f)))
        found = det(hr)
        if not found:
            missed += 1
            continue
        best = max(found, key=lambda d: d.score)
        pts.append(best.landmarks)
    p = np.stack(pts)
    mean, std = p.mean(0), p.std(0)
    eye_dist = np.linalg.norm(p[:, 1] - p[:, 0], axis=1)
    doc = {
        "frame": "128 x 128 HR training crop (central square of a CelebA crop resized to 128); "
        "continuous pixel coordinates, pixel i covers [i, i+1)",
        "points": NAMES,
        "template": np.round(mean, 3).tolist(),
        "std": np.round(std, 3).tolist(),
        "faces": len(p),
        "not_detected": missed,
        "source": f"{Path(a.data).name} split, {len(files)} faces" + (" (first N by name)" if a.limit else ""),
        "command": "python scripts/measure_template.py" + (f" --limit {a.limit}" if a.limit else ""),
    }
    atomic_write_bytes(a.out, (json.dumps(doc, indent=1) + "\n").encode())
    print(f"{len(p)} faces measured, {missed} without a detection, {time.time() - t0:.0f} s")
    for n, m, s in zip(NAMES, mean, std):
        print(f"  {n:22s} x {m[0]:6.2f} y {m[1]:6.2f}   (std {s[0]:.2f}, {s[1]:.2f})")
    print(f"  eye distance {eye_dist.mean():.2f} px (std {eye_dist.std():.2f}); wrote {a.out}")


if __name__ == "__main__":
    main()
