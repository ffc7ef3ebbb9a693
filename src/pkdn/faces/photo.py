"""The whole-photo pipeline: detect every face, crop it, super-resolve, paste back onto the upscale.

Photos flow: image -> faces (box, landmarks) -> LR crops -> batched SR ->
pasted onto the background upscale. Each face takes one *path* by its crop
side S in the photo and the output's ``upscale`` (chosen by PSNR inside the
faces, ``benchmarks/large_photo.py --paths``, see docs/whole-photos.md):

* ``network``: S <= ``net_max_side`` (48 px): the face's crop goes through
  the x8 network at the face's own scale, then is area-resized to the output
  scale;
* ``resample``: larger faces, and every face at ``upscale`` 1: the face is
  left to the background resampling. At x2 the network gains over bicubic
  on faces up to ~48 px and loses above, while its cost and memory grow
  with the face's area;
* ``network-shrunk``: faces between ``net_max_side`` and ``shrink_max_side``
  are shrunk (PIL bicubic, how training LR is made) to ``net_max_side`` px,
  super-resolved x8 and resized to the output scale. Off by default
  (``shrink_max_side`` = ``net_max_side``): measured below ``network`` at
  every size and at or below ``resample`` on faces above 48 px, it is kept
  for that measurement.

A ``network`` face's crop is ``aligned`` when S <= ``align_max_side`` px
(warped bicubic onto a 16 x 16 grid in pkdn's template frame) and otherwise
``native``: an axis-aligned square of the photo's own pixels around the face
(no resampling), with a few pixels of context.

Memory is bounded per photo whatever its faces: network passes see crops of
at most ~``net_max_side`` px in batches of at most ``NET_BATCH_PIXELS`` LR
pixels, the background is resampled straight to the output size in tiles,
and a photo whose output would not fit ``MAX_OUTPUT_PIXELS`` (or the memory
available) is refused by :func:`check_photo` before any work.

The network is only ever called through the one super-resolution object,
:class:`pkdn.restore.Restorer` (device, precision and batching chosen once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from PIL import Image

from pkdn.checkpoint import DEFAULT_MODEL
from pkdn.faces import align
from pkdn.faces.detect import DEFAULT_SCORE, Detection, Detector, RetinaFaceDetector
from pkdn.faces.paste import mask_for, paste_face

if TYPE_CHECKING:
    from pkdn.restore import Restorer

#: faces whose crop side is at most this (photo px) are aligned onto the 16 x 16 grid; larger ones are
#: cropped at their own scale. Resampling a face onto the aligned grid costs more than the framing it fixes
#: (``python benchmarks/whole_photo.py`` prints both policies side by side; docs/whole-photos.md), so 0.
ALIGN_MAX_SIDE = 0.0
#: LR grid of aligned faces: the training crops' 128 x 128 frame / 8.
ALIGN_GRID = 16
#: ``native`` crops cover this central part of the face's crop (the pasted region plus its feather)
#: and NATIVE_PAD photo pixels of context around it.
NATIVE_FRACTION = 0.875
NATIVE_PAD = 2
#: faces whose crop side is at most this (photo px) go through the network at their own scale; larger ones are
#: left to the background resampling (``python benchmarks/large_photo.py --paths``, docs/whole-photos.md).
NET_MAX_SIDE = 48.0
#: faces between NET_MAX_SIDE and this are shrunk to NET_MAX_SIDE for the network ("network-shrunk"): none by
#: default, as that path measured below "network" at every size and at or below "resample" above 48 px.
SHRINK_MAX_SIDE = NET_MAX_SIDE
#: a network pass holds at most this many LR pixels (B x h x w): ~35 kB each on the CPU (peak of a 128 x 128 pass).
NET_BATCH_PIXELS = 16_384
#: photos with a longer side are refused.
MAX_PHOTO_SIDE = 4096
#: outputs with more pixels are refused: 8192 x 8192 (~0.5 GB while the output is built and written).
MAX_OUTPUT_PIXELS = 8192 * 8192
#: bytes a photo needs per output pixel (the uint8 canvas, its PIL copy, PNG encoding) and per input pixel
#: (the decoded photo, its BGR copy and detector levels): :func:`memory_needed`.
BYTES_PER_OUTPUT_PIXEL = 8
BYTES_PER_INPUT_PIXEL = 16
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
    mode: str  # "aligned" or "native": how a ``network`` face is cropped
    lr: Image.Image | None = field(default=None, repr=False)  # the crop fed to the network
    sr: Image.Image | None = field(default=None, repr=False)  # its x8 super-resolution
    path: str = "network"  # "network", "network-shrunk" or "resample" (module doc)

    def to_json(self) -> dict:
        return {
            "box": [round(v, 2) for v in self.box],
            "landmarks": [[round(x, 2), round(y, 2)] for x, y in self.landmarks],
            "score": round(self.score, 4),
            "crop_side": round(self.crop_side, 2),
            "mode": self.mode,
            "path": self.path,
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


def memory_needed(size: tuple[int, int], upscale: int) -> int:
    """Bytes a photo of ``size`` needs at x``upscale`` beyond the loaded model: its output, its copies for
    the detector, and one network pass (bounded by ``NET_BATCH_PIXELS`` whatever the faces)."""
    w, h = size
    return w * h * (BYTES_PER_INPUT_PIXEL + BYTES_PER_OUTPUT_PIXEL * upscale * upscale) + NET_BATCH_PIXELS * 36_000


def available_memory() -> int | None:
    """Bytes the kernel can give this process now (``MemAvailable``), or None where it does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_photo(size: tuple[int, int], upscale: int) -> None:
    """Refuse, with a one-line :class:`PhotoError`, a photo that the pipeline would not fit (before any work)."""
    w, h = size
    if max(w, h) > MAX_PHOTO_SIDE:
        raise PhotoError(f"photo too large ({w}x{h}; whole-photo mode takes at most {MAX_PHOTO_SIDE} px a side)")
    if w * h * upscale * upscale > MAX_OUTPUT_PIXELS:
        fit = max(1, int(np.sqrt(MAX_OUTPUT_PIXELS / (w * h))))
        raise PhotoError(
            f"output too large at x{upscale} ({w * upscale}x{h * upscale} px, at most "
            f"{MAX_OUTPUT_PIXELS // 1_000_000} Mpx): use --upscale {fit} or less"
        )
    need, free = memory_needed(size, upscale), available_memory()
    if free is not None and need > free:
        raise PhotoError(
            f"not enough memory at x{upscale} ({w * upscale}x{h * upscale} px needs ~{need / 2**30:.1f} GiB, "
            f"{free / 2**30:.1f} GiB available): use a smaller --upscale or free memory"
        )


@dataclass
class _Job:
    photo: int
    face: Face
    m_template: np.ndarray  # photo -> template frame
    m_crop: np.ndarray | None  # photo -> LR crop (None: the face is left to the background)
    n: int  # LR crop side
    lr: np.ndarray | None  # (n, n, 3) uint8
    sr: np.ndarray | None = None


def check_options(upscale: int, background: str) -> int:
    if not 1 <= int(upscale) <= SCALE or int(upscale) != upscale:
        raise ValueError(f"upscale must be an integer from 1 to {SCALE}, not {upscale!r}")
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {sorted(BACKGROUNDS)}, not {background!r}")
    return int(upscale)


class WholePhotoSR:
    """Load a detector and a model once; call on PIL photos to get them upscaled with SR faces.

    >>> pipe = WholePhotoSR(model="lite", device="cpu")
    >>> res = pipe(photo)                      # upscale=8, background="bicubic"
    >>> res.image, [f.box for f in res.faces]
    """

    def __init__(
        self,
        model: str | Restorer | None = None,
        device: str = "cpu",
        detector: Detector | None = None,
        score: float = DEFAULT_SCORE,
        align_max_side: float = ALIGN_MAX_SIDE,
        batch_size: int = 32,
        precision: str = "auto",
        ensemble: int = 1,
        net_max_side: float = NET_MAX_SIDE,
        shrink_max_side: float = SHRINK_MAX_SIDE,
    ) -> None:
        from pkdn.restore import Restorer

        if isinstance(model, Restorer):  # share a loaded model (pkdn.batch: crops and photos of one run)
            self.restorer, self.model_name = model, model.name
        else:
            self.model_name = str(model or DEFAULT_MODEL)
            self.restorer = Restorer(
                self.model_name, device=device, precision=precision, batch_size=batch_size, ensemble=ensemble
            )
        self.detector = detector if detector is not None else RetinaFaceDetector(score=score)
        self.align_max_side = align_max_side
        self.net_max_side, self.shrink_max_side = float(net_max_side), float(shrink_max_side)

    def path_for(self, crop_side: float, upscale: int) -> str:
        """Which path (module doc) a face of ``crop_side`` photo px takes at x``upscale``."""
        if upscale == 1 or crop_side > self.shrink_max_side:
            return "resample"
        return "network" if crop_side <= self.net_max_side else "network-shrunk"

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
        upscale = check_options(upscale, background)
        images = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
        for im in images:
            check_photo(im.size, upscale)
        faces = [self.find_faces(im, upscale) for im in images]
        self.super_resolve_faces([j for f in faces for j in f])
        return [self.paste_faces(im, f, upscale, background, keep_crops) for im, f in zip(images, faces)]

    # The three steps of ``process``, for callers that batch faces across photos as they arrive (pkdn.batch):
    # find_faces (no network; any thread), super_resolve_faces (the network), paste_faces (no network).

    def find_faces(self, image: Image.Image, upscale: int = SCALE) -> list[_Job]:
        """Detect the faces of an RGB photo and cut their LR crops (for the path each takes at x``upscale``)."""
        return self._crops(0, np.asarray(image), upscale)

    def super_resolve_faces(self, jobs: list[_Job]) -> None:
        """The crops of any number of photos through the network, equal sizes batched together."""
        self._super_resolve([j for j in jobs if j.lr is not None])

    def paste_faces(
        self,
        image: Image.Image,
        jobs: list[_Job],
        upscale: int = SCALE,
        background: str = "bicubic",
        keep_crops: bool = False,
    ) -> WholeResult:
        """The photo upscaled with its super-resolved faces pasted (most confident last, on top)."""
        canvas = background_upscale(image, upscale, background)
        mine = sorted(jobs, key=lambda j: j.face.score)
        for j in mine:
            if j.sr is None:
                continue
            self._paste(canvas, j, upscale)
            if keep_crops:
                j.face.lr, j.face.sr = Image.fromarray(j.lr), Image.fromarray(j.sr)
            j.lr = j.sr = None  # pasted: free it
        faces = sorted((j.face for j in mine), key=lambda f: (f.box[1], f.box[0]))
        return WholeResult(Image.fromarray(canvas), faces, upscale, image.size, self.model_name)

    # ------------------------------------------------------------------ steps

    def _crops(self, photo: int, rgb: np.ndarray, upscale: int) -> list[_Job]:
        jobs = []
        for d in self.detector(rgb):
            m_t = align.to_template(d.landmarks)
            side = align.crop_side(m_t)
            mode = "aligned" if side <= self.align_max_side else "native"
            path = self.path_for(side, upscale)
            face = Face(tuple(float(v) for v in d.box), d.landmarks.tolist(), d.score, side, mode, path=path)
            m_c, n, lr = None, 0, None
            if path == "network-shrunk":
                m_c, n = align.shrunk_crop_matrix(m_t, self.net_max_side, NATIVE_PAD, NATIVE_FRACTION)
                lr = align.shrink(rgb, m_c, n)
            elif path == "network":
                if mode == "aligned":
                    n = ALIGN_GRID
                    m_c = align.aligned_crop_matrix(m_t, n)
                else:
                    m_c, n = align.native_crop_matrix(m_t, NATIVE_PAD, NATIVE_FRACTION)
                lr = align.warp(rgb, m_c, (n, n))
            jobs.append(_Job(photo, face, m_t, m_c, n, lr))
        return jobs

    def _super_resolve(self, jobs: list[_Job]) -> None:
        """Crops of one size share network passes of at most ``NET_BATCH_PIXELS`` LR pixels."""
        by_size: dict[int, list[_Job]] = defaultdict(list)
        for j in jobs:
            by_size[j.n].append(j)
        for n, same in by_size.items():
            per = max(1, NET_BATCH_PIXELS // (n * n))
            for k in range(0, len(same), per):
                group = same[k : k + per]
                x = torch.from_numpy(np.stack([j.lr for j in group])).permute(0, 3, 1, 2).float().div_(255)
                y = self.restorer.tensor(x)
                y = y.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                for j, s in zip(group, y):
                    j.sr = np.ascontiguousarray(s)

    def _paste(self, canvas: np.ndarray, job: _Job, upscale: int) -> None:
        """The x8 SR, area-resized when the output needs fewer pixels than it has, blended into ``canvas``."""
        sr, n = job.sr, job.n
        k = float(np.sqrt(abs(np.linalg.det(job.m_crop[:, :2]))))  # crop px per photo px
        side = int(round(n * upscale / k))  # the crop's side at the output scale
        r = float(SCALE)
        if side < n * SCALE:
            sr, r = cv2.resize(sr, (side, side), interpolation=cv2.INTER_AREA), side / n
        mask = mask_for(align.scale(align.compose(job.m_crop, align.invert(job.m_template)), r), sr.shape[0])
        m_out_from_sr = align.scale(align.invert(align.scale(job.m_crop, r)), upscale)
        paste_face(canvas, sr, mask, m_out_from_sr)
