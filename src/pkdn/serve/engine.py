"""The work behind each request: models loaded once, a bounded queue, bounded workers.

Uploads are admitted only while fewer than ``max_queue`` requests are in
flight (so memory is bounded by ``max_queue x max_bytes`` plus the workers'
images), and run on ``workers`` threads (torch releases the GIL, so the
event loop keeps answering health checks meanwhile).
"""

from __future__ import annotations

import asyncio
import io
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from pkdn.checkpoint import DEFAULT_MODEL, SHIPPED_MODELS
from pkdn.imageio import MAX_PIXELS
from pkdn.kind import input_kind
from pkdn.restore import MAX_SIDE, EnsembleWarning
from pkdn.serve.upload import MAX_BYTES, UploadError

MODES = ("crop", "whole")
#: the mode a request gets when it names none: crop or whole, as :func:`pkdn.kind.input_kind` decides after decoding
AUTO = "auto"


@dataclass
class ServeConfig:
    """Limits and resources of one server; every field is a ``pkdn serve`` option."""

    device: str = "cpu"
    workers: int = 1  # one worker already uses every core through torch's threads
    max_queue: int = 32  # requests admitted at once (queued + running); more get 503
    max_bytes: int = MAX_BYTES
    max_pixels: int = MAX_PIXELS
    max_side: int = MAX_SIDE  # longest face-crop side, as `pkdn sr --max-side` (x8 output: 4096 px)
    max_photo_side: int = 1024  # longest whole-photo side (x8 output: 8192 px, 200 MB in memory)


@dataclass
class Result:
    """One answer: the PNG, the input's size, the mode and model used, what input_kind calls it, the faces found."""

    png: bytes
    size: tuple[int, int]
    out_size: tuple[int, int]
    faces: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "crop"
    model: str = ""
    kind: str = "crop"


def whole_photo_class() -> type | None:
    """``pkdn.faces.WholePhotoSR`` when whole-photo mode is installed, else None."""
    try:
        from pkdn.faces import WholePhotoSR
    except ImportError:
        return None
    return WholePhotoSR


def encode_png(img: Image.Image) -> bytes:
    """PNG in memory (never a temporary file); level 3 trades a little size for much speed on big photos."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


class Engine:
    """Holds the loaded models and the worker pool; one per server."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self._pool = ThreadPoolExecutor(max_workers=max(1, config.workers), thread_name_prefix="pkdn-serve")
        self._loaded: dict[tuple[str, str], Any] = {}
        self._load_lock = threading.Lock()
        self._in_flight = 0
        self._count_lock = threading.Lock()
        # a model's notes (Restorer.notes) go back with each result instead (process); the server's log stays quiet
        warnings.filterwarnings("ignore", category=EnsembleWarning)

    # ------------------------------------------------------------------ what is offered
    @staticmethod
    def models() -> list[str]:
        return list(SHIPPED_MODELS)

    @staticmethod
    def default_model(mode: str = "crop") -> str:
        """The model a request without one gets: the one default, in every mode."""
        return DEFAULT_MODEL

    @staticmethod
    def modes() -> dict[str, bool]:
        return {AUTO: True, "crop": True, "whole": whole_photo_class() is not None}

    def check(self, mode: str, model: str | None, ensemble: str = "1") -> int:
        """Refuse an unknown mode, model or ensemble size before any upload is decoded; the ensemble size."""
        from pkdn.restore import ENSEMBLES

        if ensemble not in {str(n) for n in ENSEMBLES}:
            raise UploadError(f"unknown ensemble {ensemble!r}; use one of: {', '.join(map(str, ENSEMBLES))}")
        if mode not in (AUTO, *MODES):
            raise UploadError(f"unknown mode {mode!r}; use one of: {', '.join((AUTO, *MODES))}")
        if model is not None and model not in SHIPPED_MODELS:
            raise UploadError(f"unknown model {model!r}; use one of: {', '.join(SHIPPED_MODELS)}")
        if mode == "whole" and whole_photo_class() is None:
            raise UploadError("whole-photo mode is not installed in this pkdn; use mode=crop on a face crop", 400)
        return int(ensemble)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    # ------------------------------------------------------------------ admission and workers
    @contextmanager
    def admit(self) -> Iterator[None]:
        """Count one request in flight, or raise a 503 when the queue is full."""
        with self._count_lock:
            if self._in_flight >= self.config.max_queue:
                raise UploadError(f"server busy ({self._in_flight} requests in progress); try again in a moment", 503)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._count_lock:
                self._in_flight -= 1

    async def run(self, fn: Callable[..., Result], *args: Any) -> Result:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ the work
    def _get(self, mode: str, name: str, ensemble: int = 1) -> Any:
        """Load a model (or whole-photo pipeline) on first use and keep it."""
        key = (mode, name, ensemble)
        with self._load_lock:
            if key not in self._loaded:
                if mode == "crop":
                    from pkdn.restore import Restorer

                    self._loaded[key] = Restorer(name, device=self.config.device, ensemble=ensemble)
                else:
                    self._loaded[key] = whole_photo_class()(model=name, device=self.config.device, ensemble=ensemble)
            return self._loaded[key]

    def decode(self, mode: str, data: bytes, notes: list[str]) -> tuple[Image.Image, str, str]:
        """The image, the mode to run (``auto`` resolved by :func:`input_kind`) and what input_kind calls it."""
        from pkdn.serve.upload import decode_upload

        c = self.config
        whole = whole_photo_class() is not None
        limits = {"crop": c.max_side, "whole": c.max_photo_side}
        limit = max(limits.values()) if mode == AUTO and whole else limits.get(mode, c.max_side)
        img = decode_upload(data, max_bytes=c.max_bytes, max_pixels=c.max_pixels, notes=notes, max_side=limit)
        kind = input_kind(*img.size)
        if mode == AUTO:
            mode = "whole" if kind == "photo" and whole else "crop"
            if max(img.size) > limits[mode]:  # the mode's own one-line 413 (read from the header only)
                decode_upload(data, max_bytes=c.max_bytes, max_pixels=c.max_pixels, max_side=limits[mode])
            if kind == "photo" and not whole:
                notes.append(
                    "this looks like a photo, but whole-photo mode is not installed: enlarged as one face crop"
                )
        return img, mode, kind

    def process(self, mode: str, model: str | None, data: bytes, notes: list[str], ensemble: int = 1) -> Result:
        """Decode, super-resolve and encode one upload (runs on a worker thread); no model: the mode's default."""
        img, mode, kind = self.decode(mode, data, notes)
        del data
        model = model or self.default_model(mode)
        runner = self._get(mode, model, ensemble)
        notes.extend((runner if mode == "crop" else runner.restorer).notes)
        if mode == "crop":
            out = runner.image(img)
            faces: list[dict[str, Any]] = []
        else:
            try:
                res = runner(img)
            except ValueError as e:  # the pipeline's own limits (PhotoError): one line, the client's to fix
                msg = " ".join(str(e).split())
                raise UploadError(msg, 413 if "too large" in msg else 422) from None
            out = res.image
            faces = [f.to_json() for f in res.faces]  # as in `pkdn sr --whole`'s JSON file
        return Result(encode_png(out), img.size, out.size, faces, mode, model, kind)
