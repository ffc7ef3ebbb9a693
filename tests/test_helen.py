"""The Helen x8 set: cutting faces at a measured test framing, and the paired difference its benchmark prints
(``pkdn.metrics.paired_difference``).

A CelebA test crop enlarged x4 stands in for a full-resolution Helen photo (its 5 points from the project's
detector, as in test_faces_from_photos.py). Crops cut at a known framing are measured back by
``scripts/build_faces.py``'s framing measurement (the detector on those crops, against the detector on the
standard crops) and must give that framing again; the detected points of such a crop must land where the
framing sends the template.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pkdn.data import faces_from_photos as ffp
from pkdn.faces.align import template
from pkdn.faces.detect import RetinaFaceDetector
from pkdn.metrics import paired_difference

REPO = Path(__file__).resolve().parents[1]
#: about the framing of FSRNet's Helen test faces against the standard (CelebA) one (docs/data.md, "Helen x8")
HELEN = ffp.Framing(1.6, 1.7, (1.0, -17.5))


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def build_faces():
    return _module(REPO / "scripts" / "build_faces.py")


@pytest.fixture(scope="module")
def photos(celeba) -> list[tuple[Image.Image, np.ndarray]]:
    """Three CelebA test crops enlarged x4 with their detected 5 points."""
    det = RetinaFaceDetector(upscales=(2.0,))
    out = []
    for f in sorted((celeba / "test").glob("*.jpg"))[3:6]:
        im = Image.open(f).convert("RGB")
        big = im.resize((im.width * 4, im.height * 4), Image.Resampling.LANCZOS)
        found = det(np.asarray(big))
        c = np.array(big.size) / 2
        out.append((big, min(found, key=lambda d: float(np.linalg.norm(d.landmarks.mean(0) - c))).landmarks))
    return out


def test_framing_of_matrix_inverts_matrix():
    for f in (HELEN, ffp.Framing(), ffp.Framing(0.7, -25.0, (-8.0, 5.0))):
        g = ffp.Framing.of_matrix(f.matrix())
        assert g.zoom == pytest.approx(f.zoom) and g.tilt == pytest.approx(f.tilt)
        assert np.allclose(g.shift, f.shift)


def test_a_framing_measured_from_crops_is_the_framing_they_were_cut_at(photos, build_faces):
    """Cut at HELEN, the crops' detected points against the standard crops' give HELEN back, and each crop's
    points sit where HELEN sends the template (within the detector's noise)."""
    ex = build_faces.Excluder(build_faces.FaceThumbs())
    folder = Path("helen_test_crops")
    want = HELEN.matrix()
    for photo, five in photos:
        assert ffp.fits(five, photo.size, HELEN)
        std = ffp.render(photo, ffp.crop_matrix(five))
        cut = ffp.render(photo, ffp.crop_matrix(five, HELEN))
        ex.std_points.append(ex.thumbs.landmarks(std))
        got = ex.thumbs.landmarks(cut)
        ex.crop_points.setdefault(folder, []).append(got)
        t = template() @ want[:, :2].T + want[:, 2]
        assert np.abs(got[:2] - t[:2]).max() < 4.0, (got[:2], t[:2])  # eyes: 1.6x the detector's ~2 px noise
    f, _ = ex.framing_of(folder)
    assert f.zoom == pytest.approx(HELEN.zoom, rel=0.03)
    assert f.tilt == pytest.approx(HELEN.tilt, abs=1.5)
    assert np.abs(np.subtract(f.shift, HELEN.shift)).max() < 1.5, f.shift


def test_a_face_too_small_for_a_zoomed_framing_does_not_fit():
    """Zoom 1.6 needs 1.6x the photo pixels of the standard framing: a face that just fits that one does not."""
    five = template() * 1.2 + 300
    size = (1000, 1000)
    assert ffp.fits(five, size, ffp.Framing())
    assert not ffp.fits(five, size, HELEN)
    assert ffp.fits(template() * 2.0 + 300, size, HELEN)


def test_paired_difference():
    a = np.array([25.1, 26.3, 24.0, 27.2, 25.5])
    b = a - np.array([0.2, 0.4, 0.1, 0.3, 0.5])
    mean, se, higher = paired_difference(a, b)
    assert mean == pytest.approx(0.3)
    assert se == pytest.approx(np.std([0.2, 0.4, 0.1, 0.3, 0.5], ddof=1) / np.sqrt(5))
    assert higher == 1.0
    # the same shift on every face is exact however much the faces differ: pairing removes the spread
    assert paired_difference(a + 0.25, a)[:2] == pytest.approx((0.25, 0.0), abs=1e-12)
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])
