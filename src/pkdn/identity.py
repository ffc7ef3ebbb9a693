"""Identity metrics: does a super-resolved face still look like the same person to a face recogniser?

PSNR rewards a blurry average; a face recogniser asks whether the person survived. We use dlib's
face-recognition ResNet (a 128-D embedding; two photos of one person are usually closer than 0.6) with
its 5-point shape predictor. Both models ship inside the ``face-recognition-models`` wheel and dlib
inside ``dlib-bin`` (``pip install "pkdn[eval]"``), so nothing is downloaded at run time.

Faces here are pkdn's 128 px crops. dlib's frontal-face detector finds most of them (it is run with one
upsampling); where it does not, the face is taken where the CelebA framing puts it (:data:`FRAMED_BOX`).
:meth:`FaceEmbedder.embed` takes the boxes found on the HR faces for their super-resolved partners too,
so a blurry output is judged on the same face region instead of failing detection.

Two numbers per method (:func:`distances`, :func:`rank1`): the embedding distance of each output to its
HR face, and rank-1 identification (is the nearest HR embedding among the set's faces the same person?).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: where dlib's detector puts the face on a CelebA-framed crop, as fractions of the side (x0, y0, x1, y1):
#: on the shared test faces it returns (31, 39, 93, 101) for nearly all 128 px crops.
FRAMED_BOX = (31 / 128, 39 / 128, 93 / 128, 101 / 128)
#: face chip the ResNet takes (dlib's defaults for this model).
CHIP_SIZE, CHIP_PADDING = 150, 0.25
#: the distance dlib's authors use as "same person" (99.38 % on LFW).
SAME_PERSON = 0.6


class IdentityUnavailable(ImportError):
    """dlib or its face models are not installed; the message says what to install."""


def model_dir() -> Path:
    """The folder of the face-recognition-models wheel's ``.dat`` files.

    Found without importing the package: its ``__init__`` needs ``pkg_resources``, which recent
    setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise IdentityUnavailable('identity metrics need dlib\'s face models: pip install "pkdn[eval]"')
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class FaceEmbedder:
    """dlib's detector, 5-point shape predictor and face-recognition ResNet, loaded once."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError:
            raise IdentityUnavailable('identity metrics need dlib: pip install "pkdn[eval]"') from None
        d = model_dir()
        files = {k: d / f for k, f in (("shape", "shape_predictor_5_face_landmarks.dat"),
                                         ("net", "dlib_face_recognition_resnet_model_v1.dat"))}  # fmt: skip
        for f in files.values():
            if not f.is_file():
                raise IdentityUnavailable(f"{f}: missing; reinstall face-recognition-models")
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(files["shape"]))
        self.net = dlib.face_recognition_model_v1(str(files["net"]))

    def box(self, image: np.ndarray) -> tuple[int, int, int, int]:
        """The face box (x0, y0, x1, y1) of a face crop: the largest detection, else :data:`FRAMED_BOX`."""
        image = _rgb(image)
        found = self.detector(image, 1)
        if len(found):
            r = max(found, key=lambda r: r.width() * r.height())
            return r.left(), r.top(), r.right(), r.bottom()
        h, w = image.shape[:2]
        return (
            round(FRAMED_BOX[0] * w),
            round(FRAMED_BOX[1] * h),
            round(FRAMED_BOX[2] * w),
            round(FRAMED_BOX[3] * h),
        )

    def embed(
        self, images: Sequence[np.ndarray], boxes: Sequence[tuple[int, int, int, int]] | None = None
    ) -> np.ndarray:
        """(N, 128) float32 embeddings of RGB uint8 face images; ``boxes`` default to :meth:`box` of each."""
        if len(images) == 0:
            return np.zeros((0, 128), np.float32)
        dlib = self._dlib
        chips = []
        for i, img in enumerate(images):
            img = _rgb(img)
            b = boxes[i] if boxes is not None else self.box(img)
            shape = self.shape(img, dlib.rectangle(*(int(v) for v in b)))
            chips.append(dlib.get_face_chip(img, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
        return np.asarray(self.net.compute_face_descriptor(chips), dtype=np.float32).reshape(len(chips), 128)


def _rgb(image: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {a.dtype} {a.shape}")
    return a


def distances(probe: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-face Euclidean distance between ``probe[i]`` and ``reference[i]`` (lower: more alike)."""
    probe, reference = np.asarray(probe, np.float64), np.asarray(reference, np.float64)
    if probe.shape != reference.shape:
        raise ValueError(f"probe and reference shapes differ: {probe.shape} vs {reference.shape}")
    return np.linalg.norm(probe - reference, axis=1)


def rank1(
    probe: np.ndarray, gallery: np.ndarray, ids: Sequence[str] | None = None, leave_own_out: bool = False
) -> np.ndarray:
    """Rank-1 identification of each probe against the gallery (the HR faces, same order): 1 hit, 0 miss.

    A hit: the nearest gallery face is the same person (``ids``, one per face) or, with ``ids`` None, the
    face's own HR. ``leave_own_out``: the face's own HR is left out of its gallery, so a hit means another
    photo of the person is the nearest; people with a single photo are then no probes (``nan``) and stay in
    the gallery as distractors.
    """
    probe, gallery = np.asarray(probe, np.float64), np.asarray(gallery, np.float64)
    if probe.shape != gallery.shape:
        raise ValueError(f"probe and gallery shapes differ: {probe.shape} vs {gallery.shape}")
    ids = np.arange(len(probe)) if ids is None else np.asarray(list(ids))
    if len(ids) != len(probe):
        raise ValueError(f"{len(ids)} ids for {len(probe)} faces")
    d = np.linalg.norm(probe[:, None, :] - gallery[None, :, :], axis=2)
    if leave_own_out:
        np.fill_diagonal(d, np.inf)
    out = (ids[d.argmin(axis=1)] == ids).astype(np.float64)
    if leave_own_out:
        out[np.array([(ids == i).sum() < 2 for i in ids])] = np.nan
    return out
