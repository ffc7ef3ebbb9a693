"""Whole-photo mode on large photos with large faces: each face's path, bounded network passes and memory,
and a photo that would not fit refused before any work.

The photo is 2000 x 1500 with three real CelebA test faces of 85-95 px crop
side (HR: the same faces at 170-190 px, their own resolution) and one of
28 px, pasted on a scikit-image sample; LR = HR shrunk x2 (PIL bicubic). It
goes through the real CLI (``pkdn sr --whole --upscale 2``, default model)
in a child process that records its peak memory and every network input.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pkdn.cli import main
from pkdn.faces import WholePhotoSR, photo
from pkdn.faces.synthetic import background_images, make_photo

SIDES = [95.0, 90.0, 85.0, 28.0]  # LR crop sides; the HR faces are twice that
SIZE = (2000, 1500)
MAX_RSS = 1.5 * 2**30  # the floor benchmark's 4000 x 3000 photo peaks at ~0.75 GiB

#: runs the CLI, recording each network input's side and the process's peak RSS
CHILD = """
import json, resource, sys
from pkdn.restore import Restorer
sides, tensor = [], Restorer.tensor
def recording(self, lr):
    sides.append([int(v) for v in lr.shape])
    return tensor(self, lr)
Restorer.tensor = recording
from pkdn.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "inputs": sides}))
"""


def y_of(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64) / 255.0
    return 16.0 + 65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]


def psnr_in(out: np.ndarray, hr_y: np.ndarray, face) -> float:
    m = face.region(hr_y.shape, scale=2)
    d = y_of(out[m]) - hr_y[m]
    return 10 * math.log10(255.0**2 / float(np.mean(d * d)))


@pytest.fixture(scope="module")
def large(celeba, tmp_path_factory):
    faces = sorted((celeba / "test").glob("*.jpg"))[:100]
    hr, lr, true = make_photo(
        faces, background_images()[1], np.random.default_rng(7), size=SIZE, side_list=SIDES, max_tilt=8, scale=2
    )
    assert len(true) == len(SIDES)
    folder = tmp_path_factory.mktemp("large")
    lr.save(folder / "large.png", compress_level=1)
    return hr, lr, true, folder


@pytest.fixture(scope="module")
def run(large):
    _, _, _, folder = large
    out = folder / "out"
    args = ["sr", "--whole", str(folder / "large.png"), "-o", str(out), "--upscale", "2", "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="2")
    p = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    doc = json.loads((out / "large.json").read_text())
    return stats, doc, np.asarray(Image.open(out / "large.png"))


def _center(f: dict) -> tuple[float, float]:
    return (f["box"][0] + f["box"][2]) / 2, (f["box"][1] + f["box"][3]) / 2


def _match(true, faces: list[dict]) -> list[dict | None]:
    """Each true face's detection (None unless exactly one box centre is within 0.4 crop side of its centre)."""
    out = []
    for t in true:
        near = [f for f in faces if math.dist(_center(f), t.center) < 0.4 * t.side]
        out.append(near[0] if len(near) == 1 else None)
    return out


def test_each_face_takes_its_path(run, large):
    stats, doc, out = run
    _, lr, true, _ = large
    assert stats["rc"] == 0
    assert out.shape == (2 * lr.height, 2 * lr.width, 3) and doc["upscale"] == 2
    found = _match(true, doc["faces"])
    assert all(f is not None for f in found), doc["faces"]
    assert len(doc["faces"]) == len(true)  # no false or duplicate detection
    for t, f in zip(true, found):
        assert f["path"] == ("resample" if t.side > 80 else "network"), (t.side, f)
        assert f["path"] == ("network" if f["crop_side"] <= photo.NET_MAX_SIDE else "resample")


def test_network_passes_and_memory_are_bounded(run):
    stats, doc, _ = run
    n_net = sum(f["path"] == "network" for f in doc["faces"])
    assert sum(shape[0] for shape in stats["inputs"]) == n_net == 1
    for b, _, h, w in stats["inputs"]:
        assert max(h, w) <= photo.NET_MAX_SIDE and b * h * w <= photo.NET_BATCH_PIXELS
    assert stats["maxrss"] < MAX_RSS, f"peak RSS {stats['maxrss'] / 2**30:.2f} GiB"


def test_faces_are_close_to_hr(run, large):
    _, doc, out = run
    hr, lr, true, _ = large
    hr_y = y_of(np.asarray(hr))
    bic = photo.background_upscale(lr, 2)
    for t in true:
        got, ref = psnr_in(out, hr_y, t), psnr_in(bic, hr_y, t)
        if t.side > 80:  # left to the background: bicubic of a face of its own resolution, no network artefact
            assert got >= ref - 0.05 and got > 30.0, (t.side, got, ref)
        else:  # the network's face: close to HR (the gain over bicubic is the model's; its tests measure it)
            assert got > ref - 1.0 and got > 27.0, (t.side, got, ref)
            assert not np.array_equal(out[t.region(out.shape[:2], scale=2)], bic[t.region(out.shape[:2], scale=2)])
    # far from every face the output is exactly the background upscale
    far = np.ones(out.shape[:2], bool)
    for t in true:
        c = np.array(t.center) * 2
        r = int(t.side * 2)
        far[max(int(c[1]) - r, 0) : int(c[1]) + r, max(int(c[0]) - r, 0) : int(c[0]) + r] = False
    assert np.array_equal(out[far], bic[far])


def test_path_rule():
    pipe = WholePhotoSR.__new__(WholePhotoSR)  # the rule alone: no model or detector needed
    pipe.net_max_side, pipe.shrink_max_side = photo.NET_MAX_SIDE, photo.SHRINK_MAX_SIDE
    assert [pipe.path_for(s, 2) for s in (12, 40, 48, 48.5, 300)] == ["network"] * 3 + ["resample"] * 2
    assert pipe.path_for(30, 1) == "resample"  # x1: the photo is the output
    assert pipe.path_for(30, 8) == "network" and pipe.path_for(100, 8) == "resample"
    pipe.shrink_max_side = 200.0
    assert [pipe.path_for(s, 2) for s in (48, 100, 201)] == ["network", "network-shrunk", "resample"]


def _must_not_run(*_a, **_k):
    raise AssertionError("a refused photo reached the face pipeline")


def test_photo_beyond_the_limit_is_refused_before_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(WholePhotoSR, "_crops", _must_not_run)
    monkeypatch.setattr(photo, "background_upscale", _must_not_run)
    g = np.linspace(0, 255, 4000, dtype=np.uint8)
    big = tmp_path / "big.jpg"
    Image.fromarray(np.broadcast_to(g[None, :, None], (3000, 4000, 3)).copy()).save(big, quality=80)
    out = tmp_path / "out"
    rc = main(["sr", "--whole", str(big), "-o", str(out), "--upscale", "3", "--no-progress"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith(f"pkdn sr: error: {big}: output too large at x3") and "use --upscale 2 or less" in err[0]
    assert not list(out.glob("*"))


def test_photo_beyond_the_memory_available_is_refused_before_work(large, tmp_path, capsys, monkeypatch):
    _, lr, _, folder = large
    need = photo.memory_needed(lr.size, 2)
    monkeypatch.setattr(photo, "available_memory", lambda: need - 1)
    monkeypatch.setattr(WholePhotoSR, "_crops", _must_not_run)
    out = tmp_path / "out"
    rc = main(["sr", "--whole", str(folder / "large.png"), "-o", str(out), "--upscale", "2", "--no-progress"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith(f"pkdn sr: error: {folder / 'large.png'}: not enough memory at x2"), err[0]
    assert not list(out.glob("*.png"))
    monkeypatch.setattr(photo, "available_memory", lambda: need)  # exactly enough: accepted
    photo.check_photo(lr.size, 2)


def test_network_shrunk_path_pastes_in_place(celeba):
    """The path kept for the measurement (off by default): a 60 px face shrunk to 40 px, x8, pasted back at x2
    where it belongs (shifting the output by half a pixel either way moves it away from HR)."""
    import cv2

    faces = sorted((celeba / "test").glob("*.jpg"))[:20]
    hr, lr, true = make_photo(faces, background_images()[2], np.random.default_rng(1), size=(200, 150), side_list=[60])
    hr = hr.resize((400, 300), Image.BICUBIC)  # the x2 reference: the x8 canvas shrunk to x2
    pipe = WholePhotoSR(model="lite", net_max_side=40.0, shrink_max_side=1e9)
    res = pipe(lr, upscale=2, keep_crops=True)
    assert [f.path for f in res.faces] == ["network-shrunk"]
    assert res.faces[0].lr.size == (40, 40) and res.faces[0].sr.size == (320, 320)
    hr_y, out = y_of(np.asarray(hr)), np.asarray(res.image)
    got = psnr_in(out, hr_y, true[0])
    for dx, dy in [(0.5, 0), (-0.5, 0), (0, 0.5), (0, -0.5)]:
        moved = cv2.warpAffine(out, np.float32([[1, 0, dx], [0, 1, dy]]), (400, 300), flags=cv2.INTER_CUBIC)
        assert got > psnr_in(moved, hr_y, true[0]) + 0.2, (dx, dy)
    # and it is a face, not far from bicubic (measured: a 1.5x shrink costs ~2 dB against bicubic)
    assert got > psnr_in(photo.background_upscale(lr, 2), hr_y, true[0]) - 3.0
