"""Super-resolve faces: load a model, run it on PIL images, tensors or files.

This is the library behind ``pkdn sr`` (and the Python API)::

    from pkdn.inference import load, super_resolve
    model = load()                       # the shipped student (or load("my.safetensors"))
    big = super_resolve(model, pil_img)  # PIL in, PIL out (x8)
    t = super_resolve(model, lr_tensor)  # (3, h, w) or (B, 3, h, w) in [0, 1] -> x8, clamped to [0, 1]

Sizes. The networks need LR sides whose x8 grid divides by 2**levels (even
sides for the shipped x8, 4-level models). Other sizes are reflect-padded on
the right / bottom to the next valid size and the output is cropped back to
exactly 8x the input, so any size works; the last few output rows / columns
of an odd-sized input are then predicted from mirrored context.

Files. :func:`sr_files` reads each input through :func:`pkdn.data.degrade.load_rgb`
(the one place images are validated), batches equal-sized images, and
writes ``OUT_DIR/<stem>.png`` atomically (a temporary file renamed into
place), so an output is whole or absent. A bad input is reported as one
line naming it and the others are still processed.
"""
from __future__ import annotations

import glob
import math
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pkdn.data.degrade import ImageError, load_rgb, to_float_tensor
from pkdn.fileio import atomic_save_png

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif"}


#: smallest input side ``pkdn sr`` accepts.
MIN_SIDE = 2
#: ``pkdn sr`` refuses LR inputs with a side longer than this (x8 output of 512 px is 4096 px).
MAX_SIDE = 512


class TeacherModelError(ValueError):
    """A teacher checkpoint was given where the LR-only student is needed."""


# --------------------------------------------------------------------------- models


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/"auto" -> cuda when available, else cpu; "cuda" without a GPU is a clear error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is available to this PyTorch build")
    return dev


def check_student(model: nn.Module, source: str = "model") -> nn.Module:
    kind = getattr(getattr(model, "config", None), "kind", None)
    if kind == "teacher":
        raise TeacherModelError(
            f"{source}: is a teacher network, which needs a facial parsing map of the HR face as a second "
            "input; super-resolution from a face alone needs a student model (omit --model for the shipped one)"
        )
    if kind != "student":
        raise ValueError(f"{source}: not a pkdn student model")
    return model


def prepare(model: nn.Module, device: str | torch.device | None = "cpu") -> nn.Module:
    """Put a network in its fastest inference form: eval mode, no grads, channels-last."""
    dev = resolve_device(device)
    model = model.eval().to(dev)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(memory_format=torch.channels_last)


def load(path: str | os.PathLike | None = None, device: str | torch.device | None = "cpu") -> nn.Module:
    """Load a student model file (``None``: the shipped student), ready for inference on ``device``.

    Teacher files are refused with :class:`TeacherModelError`.
    """
    from pkdn.checkpoint import load_model

    model = load_model(path, map_location="cpu")
    check_student(model, str(path) if path is not None else "shipped model")
    return prepare(model, device)


# --------------------------------------------------------------------------- tensors


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image -> (3, h, w) float32 in [0, 1]."""
    if img.mode != "RGB":
        raise ValueError(f"expected an RGB image, got mode {img.mode}")
    return to_float_tensor(img)


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """(3, H, W) in [0, 1] -> 8-bit RGB PIL image (clamped and rounded)."""
    a = t.detach().clamp(0, 1).mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(a), "RGB")


def _valid_multiple(model: nn.Module) -> int:
    c = model.config
    step = 2 ** c.levels
    return step // math.gcd(step, c.scale)


@torch.inference_mode()
def sr_tensor(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """(B, 3, h, w) LR in [0, 1] -> (B, 3, s*h, s*w) SR clamped to [0, 1], for any h, w >= 1.

    Sizes the network cannot take directly are reflect-padded (right/bottom)
    and the output cropped back.
    """
    if lr.dim() != 4 or lr.shape[1] != 3:
        raise ValueError(f"expected an LR batch of shape (B, 3, h, w), got {tuple(lr.shape)}")
    param = next(model.parameters())
    s = model.config.scale
    h, w = lr.shape[-2:]
    m = _valid_multiple(model)
    ph, pw = (-h) % m, (-w) % m
    x = lr.to(device=param.device, dtype=param.dtype)
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    x = x.contiguous(memory_format=torch.channels_last)
    sr, _ = model(x)
    return sr[..., : h * s, : w * s].clamp_(0.0, 1.0).contiguous()


def super_resolve(model: nn.Module, image: Image.Image | torch.Tensor, batch_size: int = 32):
    """Super-resolve a PIL image (-> PIL image) or a tensor ``(3, h, w)`` / ``(B, 3, h, w)`` (-> same rank)."""
    check_student(model)
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise ValueError(f"expected an RGB image, got mode {image.mode}; use image.convert('RGB')")
        return tensor_to_pil(sr_tensor(model, pil_to_tensor(image)[None])[0])
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"expected a PIL image or a tensor, got {type(image).__name__}")
    single = image.dim() == 3
    x = image[None] if single else image
    outs = [sr_tensor(model, x[i : i + batch_size]).to(image.device) for i in range(0, x.shape[0], batch_size)]
    out = torch.cat(outs)
    return out[0] if single else out


# --------------------------------------------------------------------------- files


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]], bool]:
    """Files, folders (their image files, sorted, not recursive) and globs -> (files, errors, any_folder).

    ``errors`` holds (input, reason) for arguments that matched nothing.
    """
    files: list[Path] = []
    errors: list[tuple[str, str]] = []
    many = False
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(p)

    for raw in inputs:
        s = str(raw)
        p = Path(s)
        if p.is_dir():
            many = True
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                errors.append((s, "folder holds no image files"))
            for q in found:
                add(q)
        elif p.exists():
            add(p)
        elif glob.has_magic(s):
            many = True
            found = sorted(Path(q) for q in glob.glob(s) if Path(q).is_file())
            if not found:
                errors.append((s, "pattern matched no files"))
            for q in found:
                add(q)
        else:
            errors.append((s, "no such file or folder"))
    return files, errors, many


def input_dirs(inputs: Sequence[str | os.PathLike], files: Iterable[Path]) -> set[Path]:
    dirs = {Path(f).resolve().parent for f in files}
    dirs |= {Path(i).resolve() for i in inputs if Path(i).is_dir()}
    return dirs


def check_out_dir(out_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike], files: Iterable[Path]) -> Path:
    """Refuse an output folder that is an input folder (outputs must never overwrite inputs)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: output path exists and is not a folder")
    if out.resolve() in input_dirs(inputs, files):
        raise ValueError(f"{out}: the output folder is also an input folder; choose another one so inputs are never overwritten")
    return out


def save_png_atomic(img: Image.Image, path: Path) -> None:
    """Write ``img`` as PNG through a temporary file and a rename (fast compression: outputs are many)."""
    atomic_save_png(img, path, compress_level=1)


@dataclass
class SrReport:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, one-line reason)
    notes: list[str] = field(default_factory=list)  # inputs converted to 8-bit RGB, one line each

    @property
    def ok(self) -> bool:
        return not self.failed


def sr_files(
    model: nn.Module,
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    batch_size: int = 32,
    max_side: int = MAX_SIDE,
    progress: bool | None = None,
    on_error: Callable[[str, str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    strict: bool = False,
) -> SrReport:
    """Super-resolve every input file into ``out_dir/<stem>.png``; never raises for a bad input.

    ``progress``: a tqdm bar on stderr (``None``: when a folder or glob was given).
    ``on_error(input, reason)`` is called for each failure as it happens.
    Inputs that :func:`~pkdn.data.degrade.load_rgb` converts to 8-bit RGB
    (grayscale, palette, RGBA, CMYK, 16-bit) are processed and reported
    through ``on_note(line)``; with ``strict`` they fail instead.
    Raises ``ValueError`` only for an unusable ``out_dir`` (checked before any work).
    """
    check_student(model)
    files, report_errors, many = expand_inputs(inputs)
    out = check_out_dir(out_dir, inputs, files)
    out.mkdir(parents=True, exist_ok=True)
    report = SrReport()

    def note(line: str) -> None:
        report.notes.append(line)
        if on_note:
            on_note(line)

    def fail(name: str, reason: str) -> None:
        report.failed.append((name, reason))
        if on_error:
            on_error(name, reason)

    for name, reason in report_errors:
        fail(name, reason)

    # one output name per input: a later input with an already used stem fails instead of overwriting
    owner: dict[str, Path] = {}
    todo: list[tuple[Path, Path]] = []
    for f in files:
        target = out / f"{f.stem}.png"
        if f.stem in owner:
            fail(str(f), f"output {target.name} is already written for {owner[f.stem]}; rename one of them")
            continue
        owner[f.stem] = f
        todo.append((f, target))

    from tqdm import tqdm

    show = many if progress is None else progress
    bar = tqdm(total=len(todo), unit="face", disable=not show, dynamic_ncols=True, leave=True)
    if show:  # print messages above the bar, not through it
        def above(fn):
            if fn is None:
                return None

            def wrapped(*a):
                bar.clear()
                fn(*a)
                bar.refresh()
            return wrapped

        on_error, on_note = above(on_error), above(on_note)

    writer = ThreadPoolExecutor(max_workers=2)
    pending = []

    def flush(group: list[tuple[Path, Path, torch.Tensor]]) -> None:
        try:
            sr = sr_tensor(model, torch.stack([t for _, _, t in group])).cpu()
        except Exception as e:  # noqa: BLE001 - a failed batch must not stop the others
            for f, _, _ in group:
                fail(str(f), f"super-resolution failed ({' '.join(str(e).split())[:200]})")
            bar.update(len(group))
            return
        for (f, target, _), img in zip(group, sr):
            pending.append((f, target, writer.submit(save_png_atomic, tensor_to_pil(img), target)))
        bar.update(len(group))

    groups: dict[tuple[int, int], list[tuple[Path, Path, torch.Tensor]]] = defaultdict(list)
    try:
        for f, target in todo:
            notes: list[str] = []
            try:
                img = load_rgb(f, min_size=MIN_SIDE, notes=notes)
            except ImageError as e:
                fail(str(f), str(e).removeprefix(f"{f}: "))
                bar.update(1)
                continue
            except Exception as e:  # noqa: BLE001 - anything else unexpected about one file
                fail(str(f), f"unreadable ({' '.join(str(e).split())[:200]})")
                bar.update(1)
                continue
            if notes and strict:
                fail(str(f), "; ".join(n.removeprefix(f"{f}: ") for n in notes) + " (refused: --strict)")
                bar.update(1)
                continue
            for n in notes:
                note(n)
            w, h = img.size
            if max(w, h) > max_side:
                fail(str(f), f"image too large for x{model.config.scale} super-resolution ({w}x{h}; at most {max_side} px a side)")
                bar.update(1)
                continue
            g = groups[(h, w)]
            g.append((f, target, pil_to_tensor(img)))
            if len(g) >= batch_size:
                flush(g)
                groups[(h, w)] = []
        for g in groups.values():
            if g:
                flush(g)
        for f, target, fut in pending:
            try:
                fut.result()
                report.written.append(target)
            except Exception as e:  # noqa: BLE001
                fail(str(f), f"cannot write {target} ({' '.join(str(e).split())[:200]})")
    finally:
        writer.shutdown(wait=True)
        bar.close()
    return report
