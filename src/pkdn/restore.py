"""Super-resolution: one object that the CLI, the Python API, whole photos and the web app all call.

::

    from pkdn.restore import Restorer
    r = Restorer()                       # the shipped student on the CPU, fastest precision this host offers
    big = r.image(pil_img)               # PIL in, PIL out (x8)
    t = r.tensor(lr)                     # (3, h, w) or (B, 3, h, w) in [0, 1] -> x8, clamped to [0, 1]
    report = r.files(["faces/"], "out/") # OUT/<stem>.png per input; bad inputs reported, never raised

A ``Restorer`` loads its model once (a shipped name, a file or a ready
network), puts it on a device and picks a precision (:func:`choose_precision`:
bf16 autocast where the CPU computes bf16 natively, float32 elsewhere; the
choice and its reason are in :attr:`Restorer.path`).

Sizes. The networks need LR sides whose x8 grid divides by 2**levels (even
sides for the shipped models). Other sizes are reflect-padded on the right /
bottom and the output cropped back to exactly 8x, so any size works; the last
rows / columns of an odd-sized input are then predicted from mirrored context.

Files. :meth:`Restorer.files` is the driver of :mod:`pkdn.batch` (read-ahead, batching, atomic writes,
the report, torchrun shards) with :class:`CropJob` as the work of a face crop; an input that
:func:`pkdn.kind.input_kind` calls a photo gets the whole-photo job (:mod:`pkdn.faces.files`) on the same
network, unless ``kind`` forces one.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pkdn.batch import SrReport, run_files
from pkdn.device import cpu_bf16_kind, resolve_device
from pkdn.imageio import ImageError, save_png, tensor_to_pil, to_float_tensor
from pkdn.kind import Kind
from pkdn.options import DEFAULT_BATCH_SIZE, ENSEMBLES, MAX_SIDE, MIN_SIDE, PRECISIONS

#: PNG compression of bulk outputs: level 1 writes several times faster than 6 for a few per cent more bytes.
OUTPUT_COMPRESS_LEVEL = 1


class TeacherModelError(ValueError):
    """A teacher checkpoint was given where the LR-only student is needed."""


def check_student(model: nn.Module, source: str = "model") -> nn.Module:
    """``model`` if it is a pkdn student, else a one-line error naming ``source``."""
    kind = getattr(getattr(model, "config", None), "kind", None)
    if kind == "teacher":
        raise TeacherModelError(
            f"{source}: is a teacher network, which needs a facial parsing map of the HR face as a second "
            "input; super-resolution from a face alone needs a student model (omit --model for the shipped one)"
        )
    if kind != "student":
        raise ValueError(f"{source}: not a pkdn student model")
    return model


def choose_precision(device: torch.device, requested: str = "auto") -> tuple[str, str]:
    """(precision, why) for ``device``; ``auto``: bf16 autocast only where the CPU has native bf16.

    On the first 100 test faces bf16 changed the shipped student's PSNR by +0.0004 dB
    (``benchmarks/sr_precision.py --limit 100``), well inside the 0.02 dB a default may cost.
    On CUDA ``auto`` stays float32: bf16's cost there has not been measured.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested != "auto":
        return requested, "requested"
    if device.type == "cpu":
        kind = cpu_bf16_kind()
        if kind:
            return "bf16", f"CPU has {kind}"
        return "fp32", "CPU has no native bf16"
    return "fp32", f"default on {device.type}"


def valid_multiple(model: nn.Module) -> int:
    """LR sides must be multiples of this for ``model`` (2 for the shipped x8, 4-level networks)."""
    step = 2**model.config.levels
    return step // math.gcd(step, model.config.scale)


def _ensemble_views(n: int) -> list[tuple[int, bool]]:
    """(quarter turns, mirrored) of each view; training augments with the same flips and rotations."""
    return [(k, f) for k in range(4 if n == 8 else 1) for f in ((False, True) if n > 1 else (False,))]


class EnsembleWarning(UserWarning):
    """A self-ensemble that the model in use is not made for (see ``Restorer.notes``)."""


class Restorer:
    """A student network ready for inference: device, precision and batching chosen once.

    ``model``: a shipped model's name, a model file, None (the default shipped
    student) or a loaded network (used where it is, unless ``device`` is given).
    Teacher models are refused with :class:`TeacherModelError`. ``ensemble``
    (1, 2 or 8) averages the outputs of that many mirrored / rotated views of
    each input, mapped back (the "self-ensemble" of EDSR, Lim et al. 2017): a
    little more PSNR for ``ensemble`` times the compute (measured in
    ``benchmarks/ensemble.py``).
    """

    def __init__(
        self,
        model: str | os.PathLike | nn.Module | None = None,
        device: str | torch.device | None = None,
        precision: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        ensemble: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, not {batch_size}")
        if ensemble not in ENSEMBLES:
            raise ValueError(f"ensemble must be one of {', '.join(map(str, ENSEMBLES))}, not {ensemble}")
        self.ensemble = ensemble
        #: one-line remarks a user should see about this set-up (the CLI prints them, the web page shows them);
        #: each is also issued as an :class:`EnsembleWarning` for Python callers.
        self.notes: list[str] = []
        #: what the network is called in outputs (a shipped name, the file given, or "network" for a module).
        self.name = "network"
        if isinstance(model, nn.Module):
            net = check_student(model)
            self.device = next(net.parameters()).device if device is None else resolve_device(device)
            if device is not None:
                net = net.to(self.device)
        else:
            from pkdn.checkpoint import DEFAULT_MODEL, load_model

            self.name = str(DEFAULT_MODEL if model is None else model)
            net = load_model(model, map_location="cpu")
            check_student(net, str(model) if model is not None else "shipped model")
            self.device = resolve_device("cpu" if device is None else device)
            net = net.to(self.device).eval()
            for p in net.parameters():
                p.requires_grad_(False)
            net = net.to(memory_format=torch.channels_last)
        self.model = net
        self.batch_size = batch_size
        self.precision, why = choose_precision(self.device, precision)
        #: the compute path, in words, e.g. "cpu, bf16 autocast (CPU has AVX-512 BF16)".
        self.path = f"{self.device.type}, {'bf16 autocast' if self.precision == 'bf16' else 'float32'} ({why})"
        if ensemble > 1:
            self.path += f", self-ensemble of {ensemble} views"
        if ensemble == 8 and not isinstance(model, nn.Module):
            from pkdn.checkpoint import upright_only

            if upright_only(model):
                self.notes.append(
                    f"{model if model is not None else 'the default model'} learned from upright faces only: "
                    "the 8-view self-ensemble (six of its views turned) lowers its PSNR; use 2 views (the mirror)"
                )
        for note in self.notes:
            warnings.warn(note, EnsembleWarning, stacklevel=2)

    @property
    def scale(self) -> int:
        return self.model.config.scale

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    @torch.inference_mode()
    def sr_batch(self, lr: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) LR in [0, 1] -> (B, 3, s*h, s*w) float32 SR in [0, 1] on the Restorer's device.

        Sizes the network cannot take are reflect-padded (right/bottom) and the output cropped back.
        """
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected an LR batch of shape (B, 3, h, w), got {tuple(lr.shape)}")
        if self.ensemble == 1:
            return self._forward(lr)
        out = None
        for k, mirror in _ensemble_views(self.ensemble):
            x = torch.rot90(lr.flip(-1) if mirror else lr, k, (-2, -1))
            y = torch.rot90(self._forward(x), -k, (-2, -1))
            y = y.flip(-1) if mirror else y
            out = y if out is None else out.add_(y)
        return out.div_(self.ensemble)

    def _forward(self, lr: torch.Tensor) -> torch.Tensor:
        s, (h, w), m = self.scale, lr.shape[-2:], valid_multiple(self.model)
        ph, pw = (-h) % m, (-w) % m
        x = lr.to(device=self.device, dtype=next(self.model.parameters()).dtype, non_blocking=True)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if (ph < h and pw < w) else "replicate")
        with self._autocast():
            sr, _ = self.model(x.contiguous(memory_format=torch.channels_last))
        return sr[..., : h * s, : w * s].float().clamp_(0.0, 1.0).contiguous()

    def tensor(self, lr: torch.Tensor) -> torch.Tensor:
        """(3, h, w) or (B, 3, h, w) in [0, 1] -> the same rank x``scale``, on ``lr``'s device, in batches."""
        single = lr.dim() == 3
        x = lr[None] if single else lr
        outs = [self.sr_batch(x[i : i + self.batch_size]).to(lr.device) for i in range(0, x.shape[0], self.batch_size)]
        out = torch.cat(outs)
        return out[0] if single else out

    def image(self, img: Image.Image) -> Image.Image:
        """An 8-bit RGB PIL image -> its x``scale`` super-resolution."""
        return self.images([img])[0]

    def images(self, imgs: Sequence[Image.Image]) -> list[Image.Image]:
        """Several RGB PIL images (any sizes) -> their super-resolutions, equal sizes batched together."""
        for img in imgs:
            if not isinstance(img, Image.Image):
                raise TypeError(f"expected a PIL image, got {type(img).__name__}")
            if img.mode != "RGB":
                raise ValueError(f"expected an RGB image, got mode {img.mode}; use image.convert('RGB')")
        out: list[Image.Image | None] = [None] * len(imgs)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(imgs):
            by_size.setdefault(img.size, []).append(i)
        for idx in by_size.values():
            for k in range(0, len(idx), self.batch_size):
                chunk = idx[k : k + self.batch_size]
                sr = self.sr_batch(torch.stack([to_float_tensor(imgs[i]) for i in chunk])).cpu()
                for i, t in zip(chunk, sr):
                    out[i] = tensor_to_pil(t)
        return out  # type: ignore[return-value]

    def files(
        self,
        inputs: Sequence[str | os.PathLike],
        out_dir: str | os.PathLike,
        *,
        kind: str = "auto",
        max_side: int = MAX_SIDE,
        strict: bool = False,
        progress: bool | None = None,
        on_error: Callable[[str, str], None] | None = None,
        on_note: Callable[[str], None] | None = None,
        on_info: Callable[[str], None] | None = None,
        shard: tuple[int, int] = (0, 1),
        io_threads: int = 4,
    ) -> SrReport:
        """Super-resolve every input file into ``out_dir/<stem>.png``; never raises for a bad input.

        ``kind``: ``auto`` (default) takes each input as :func:`pkdn.kind.input_kind` says, the way
        ``pkdn sr`` does: a face crop is enlarged x``scale`` whole, a photo (over 64 px a side) gets the
        whole-photo job on this network (``pkdn.faces``: ``<stem>.png`` with the faces pasted, plus
        ``<stem>.json``); ``crop`` or ``photo`` forces one. ``max_side``: crop-mode inputs with a longer
        side fail. The rest is :func:`pkdn.batch.run_files`: ``progress``, the callbacks ``on_error(input,
        reason)``, ``on_note(line)`` (``strict`` fails converted inputs instead), ``on_info(line)``,
        ``shard=(rank, world)`` under torchrun. Raises ``ValueError`` only for an unusable ``out_dir``.
        """
        photo: list = []
        lock = threading.Lock()

        def job_for(k: Kind):
            if k == "crop":
                return CropJob(self, max_side=max_side)
            with lock:
                if not photo:
                    from pkdn.faces import WholePhotoSR
                    from pkdn.faces.files import PhotoJob

                    photo.append(PhotoJob(WholePhotoSR(model=self)))
            return photo[0]

        return run_files(
            inputs,
            out_dir,
            job_for,
            kind=kind,
            strict=strict,
            progress=progress,
            on_error=on_error,
            on_note=on_note,
            on_info=on_info,
            shard=shard,
            io_threads=io_threads,
            ahead=2 * self.batch_size,
        )


class CropJob:
    """Crop mode for :func:`pkdn.batch.run_files`: each input enlarged x``scale`` whole as one face; inputs of
    equal size share a forward pass."""

    kind: Kind = "crop"
    min_side = MIN_SIDE
    what = "super-resolution"

    def __init__(self, restorer: Restorer, max_side: int = MAX_SIDE):
        self.restorer, self.max_side = restorer, max_side

    def prepare(self, src: Path, img: Image.Image) -> torch.Tensor:
        w, h = img.size
        if max(w, h) > self.max_side:
            raise ImageError(
                src,
                f"image too large for x{self.restorer.scale} super-resolution ({w}x{h}; at most {self.max_side} "
                "px a side)",
            )
        return to_float_tensor(img)

    def key(self, t: torch.Tensor) -> tuple[int, int]:
        return tuple(t.shape[-2:])

    def full(self, batch: Sequence[torch.Tensor]) -> bool:
        return len(batch) >= self.restorer.batch_size

    def run(self, batch: Sequence[torch.Tensor]) -> Iterator[torch.Tensor]:
        yield from self.restorer.sr_batch(torch.stack(list(batch))).cpu()

    def write(self, src: Path, dst: Path, t: torch.Tensor) -> list[Path]:
        return [save_png(tensor_to_pil(t), dst, compress_level=OUTPUT_COMPRESS_LEVEL)]


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "CropJob",
    "EnsembleWarning",
    "ENSEMBLES",
    "MAX_SIDE",
    "MIN_SIDE",
    "PRECISIONS",
    "Restorer",
    "SrReport",
    "TeacherModelError",
    "check_student",
    "choose_precision",
]
