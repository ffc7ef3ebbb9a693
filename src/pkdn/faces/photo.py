"""The whole-photo pipeline: detect every face, crop it, super-resolve, paste back onto the upscale.

Photos flow: image -> faces (box, landmarks) -> LR crops -> batched SR ->
pasted onto the background upscale. Faces are processed by size
(``align_max_side``, measured by ``benchmarks/whole_photo.py``, see
docs/whole-photos.md):

* ``aligned``: crop side <= ``align_max_side`` px: warped (bicubic, the
  exact resampling the ``real`` model is trained with) onto a 16 x 16 grid
  in pkdn's template frame, the pose and scale the network learned;
* ``native``: larger faces: an axis-aligned square of the photo's own
  pixels around the face (no resampling, so nothing is thrown away), at the
  face's own scale, with a few pixels of context.

The network is only ever called through the one super-resolution object,
:class:`pkdn.restore.Restorer` (device, precision and batching chosen once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from PIL import Image

from pkdn.checkpoint import DEFAULT_MODEL
from pkdn.faces import align
from pkdn.faces.detect import DEFAULT_SCORE, Detection, Detector, RetinaFaceDetector
from pkdn.faces.paste import mask_for, paste_face

#: faces whose crop side is at most this (photo px) are aligned onto the 16 x 16 grid; larger ones are
#: cropped at their own scale. No face gains from alignment, with ``lite`` or with ``photo`` (30 photos: +2.32 dB
#: aligned <= 18 px against +2.66 all native; docs/whole-photos.md), so 0.
ALIGN_MAX_SIDE = 0.0
#: LR grid of aligned faces: the training crops' 128 x 128 frame / 8.
ALIGN_GRID = 16
#: ``native`` crops cover this central part of the face's crop (the pasted region plus its feather)
#: and NATIVE_PAD photo pixels of context around it.
NATIVE_FRACTION = 0.875
NATIVE_PAD = 2
#: photos with a longer side are refused.
MAX_PHOTO_SIDE = 4096
#: outputs with more pixels are refused (the output is held in memory once): 8192 x 8192.
MAX_OUTPUT_PIXELS = 8192 * 8192
BACKGROUNDS = {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}
SCALE = 8  # the network's factor


class PhotoError(ValueError):
    """A photo the pipeline cannot take (too large, output too large); the message is one line."""


@dataclass
class Face:
    """One face of a photo, in input pixels (continuous coordinates: pixel i covers [i, i+1))."""

    box: tuple[float, float, float, float]
    landmarks: list[list[float]]  # 5 x 2: eyes, nose, mouth corners (left in the picture first)
    score: float
    crop_side: float  # side of the face's training-style square crop, input px
    mode: str  # "aligned" or "native"
    lr: Image.Image | None = field(default=None, repr=False)  # the crop fed to the network
    sr: Image.Image | None = field(default=None, repr=False)  # its x8 super-resolution

    def to_json(self) -> dict:
        return {
            "box": [round(v, 2) for v in self.box],
            "landmarks": [[round(x, 2), round(y, 2)] for x, y in self.landmarks],
            "score": round(self.score, 4),
            "crop_side": round(self.crop_side, 2),
            "mode": self.mode,
        }


@dataclass
class WholeResult:
    image: Image.Image  # the photo at x``upscale`` with the faces pasted
    faces: list[Face]
    upscale: int
    size: tuple[int, int]  # input (w, h)
    model: str  # the model that super-resolved the faces: a shipped name or the file given


def background_upscale(img: Image.Image, upscale: int, method: str = "bicubic", tile: int = 512) -> np.ndarray:
    """The photo resized x``upscale`` as a uint8 array, computed in tiles.

    PIL's ``resize(box=...)`` reads the filter's support from outside the
    box, so the tiles are exactly the full-image resize, without its
    full-height intermediate buffer.
    """
    if method not in BACKGROUNDS:
        raise ValueError(f"background must be one of {sorted(BACKGROUNDS)}, not {method!r}")
    w, h = img.size
    out = np.empty((h * upscale, w * upscale, 3), np.uint8)
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            x1, y1 = min(x + tile, w), min(y + tile, h)
            part = img.resize(((x1 - x) * upscale, (y1 - y) * upscale), BACKGROUNDS[method], box=(x, y, x1, y1))
            out[y * upscale : y1 * upscale, x * upscale : x1 * upscale] = np.asarray(part)
    return out


def check_photo(size: tuple[int, int], upscale: int) -> None:
    w, h = size
    if max(w, h) > MAX_PHOTO_SIDE:
        raise PhotoError(f"photo too large ({w}x{h}; whole-photo mode takes at most {MAX_PHOTO_SIDE} px a side)")
    if w * h * upscale * upscale > MAX_OUTPUT_PIXELS:
        fit = max(1, int(np.sqrt(MAX_OUTPUT_PIXELS / (w * h))))
        raise PhotoError(
            f"output too large at x{upscale} ({w * upscale}x{h * upscale} px, at most "
            f"{MAX_OUTPUT_PIXELS // 1_000_000} Mpx): use --upscale {fit} or less"
        )


@dataclass
class _Job:
    photo: int
    face: Face
    m_template: np.ndarray  # photo -> template frame
    m_crop: np.ndarray  # photo -> LR crop
    n: int  # LR crop side
    lr: np.ndarray  # (n, n, 3) uint8
    sr: np.ndarray | None = None


class WholePhotoSR:
    """Load a detector and a model once; call on PIL photos to get them upscaled with SR faces.

    >>> pipe = WholePhotoSR(model="lite", device="cpu")
    >>> res = pipe(photo)                      # upscale=8, background="bicubic"
    >>> res.image, [f.box for f in res.faces]
    """

    def __init__(
        self,
        model: str | None = None,
        device: str = "cpu",
        detector: Detector | None = None,
        score: float = DEFAULT_SCORE,
        align_max_side: float = ALIGN_MAX_SIDE,
        batch_size: int = 32,
        precision: str = "auto",
        ensemble: int = 1,
    ) -> None:
        from pkdn.restore import Restorer

        self.model_name = str(model or DEFAULT_MODEL)
        self.restorer = Restorer(
            self.model_name, device=device, precision=precision, batch_size=batch_size, ensemble=ensemble
        )
        self.detector = detector if detector is not None else RetinaFaceDetector(score=score)
        self.align_max_side = align_max_side

    def __call__(
        self, image: Image.Image, upscale: int = SCALE, background: str = "bicubic", keep_crops: bool = False
    ) -> WholeResult:
        return self.process([image], upscale=upscale, background=background, keep_crops=keep_crops)[0]

    def detect(self, image: Image.Image) -> list[Detection]:
        return self.detector(np.asarray(image.convert("RGB")))

    def process(
        self, images: Sequence[Image.Image], upscale: int = SCALE, background: str = "bicubic", keep_crops: bool = False
    ) -> list[WholeResult]:
        """Several photos at once: their faces are super-resolved together in batches."""
        if not 1 <= int(upscale) <= SCALE or int(upscale) != upscale:
            raise ValueError(f"upscale must be an integer from 1 to {SCALE}, not {upscale!r}")
        if background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {sorted(BACKGROUNDS)}, not {background!r}")
        upscale = int(upscale)
        images = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
        rgbs = []
        for im in images:
            check_photo(im.size, upscale)
            rgbs.append(np.asarray(im))
        jobs = [j for i, rgb in enumerate(rgbs) for j in self._crops(i, rgb)]
        self._super_resolve(jobs)
        results = []
        for i, im in enumerate(images):
            canvas = background_upscale(im, upscale, background)
            mine = sorted((j for j in jobs if j.photo == i), key=lambda j: j.face.score)
            for j in mine:
                self._paste(canvas, j, upscale)
                if keep_crops:
                    j.face.lr, j.face.sr = Image.fromarray(j.lr), Image.fromarray(j.sr)
            faces = sorted((j.face for j in mine), key=lambda f: (f.box[1], f.box[0]))
            results.append(WholeResult(Image.fromarray(canvas), faces, upscale, im.size, self.model_name))
        return results

    # ------------------------------------------------------------------ steps

    def _crops(self, photo: int, rgb: np.ndarray) -> list[_Job]:
        jobs = []
        for d in self.detector(rgb):
            m_t = align.to_template(d.landmarks)
            side = align.crop_side(m_t)
            if side <= self.align_max_side:
                mode, n = "aligned", ALIGN_GRID
                m_c = align.aligned_crop_matrix(m_t, n)
            else:
                mode = "native"
                m_c, n = align.native_crop_matrix(m_t, NATIVE_PAD, NATIVE_FRACTION)
            lr = align.warp(rgb, m_c, (n, n))
            face = Face(tuple(float(v) for v in d.box), d.landmarks.tolist(), d.score, side, mode)
            jobs.append(_Job(photo, face, m_t, m_c, n, lr))
        return jobs

    def _super_resolve(self, jobs: list[_Job]) -> None:
        by_size: dict[int, list[_Job]] = defaultdict(list)
        for j in jobs:
            by_size[j.n].append(j)
        for group in by_size.values():
            x = torch.from_numpy(np.stack([j.lr for j in group])).permute(0, 3, 1, 2).float().div_(255)
            y = self.restorer.tensor(x)
            y = y.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            for j, s in zip(group, y):
                j.sr = np.ascontiguousarray(s)

    def _paste(self, canvas: np.ndarray, job: _Job, upscale: int) -> None:
        sr = job.sr
        r = SCALE
        if upscale != SCALE:  # faces are super-resolved x8, then resized to the output scale
            r = upscale
            sr = cv2.resize(sr, (job.n * r, job.n * r), interpolation=cv2.INTER_AREA)
        mask = mask_for(align.scale(align.compose(job.m_crop, align.invert(job.m_template)), r), job.n * r)
        m_out_from_sr = align.scale(align.invert(align.scale(job.m_crop, r)), upscale)
        paste_face(canvas, sr, mask, m_out_from_sr)
