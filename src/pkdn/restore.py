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

Files. Inputs are decoded by a thread pool ahead of the network and outputs
encoded and written by another (PNG work must not leave a GPU idle); equal
sizes are batched; every output is written atomically (:func:`pkdn.imageio.save_png`).
A bad input is reported through ``on_error`` as it happens and the others go on.
Under ``torchrun`` each process takes every ``world``-th input (``shard``).
"""

from __future__ import annotations

import functools
import glob
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pkdn.device import cpu_bf16_kind, resolve_device
from pkdn.imageio import IMAGE_EXTENSIONS, ImageError, list_images, load_rgb, save_png, tensor_to_pil, to_float_tensor

#: faces per forward pass (CLI and API share it).
DEFAULT_BATCH_SIZE = 32
#: smallest input side accepted from files.
MIN_SIDE = 2
#: inputs with a longer side are refused (the x8 output of 512 px is 4096 px).
MAX_SIDE = 512
#: precisions a Restorer runs in; ``auto`` picks with :func:`choose_precision`.
PRECISIONS = ("auto", "fp32", "bf16")
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


@dataclass
class SrReport:
    """What :meth:`Restorer.files` did: outputs written, inputs failed (with one-line reasons), conversions."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, one-line reason)
    notes: list[str] = field(default_factory=list)  # inputs converted to 8-bit RGB, one line each

    @property
    def ok(self) -> bool:
        return not self.failed

    def merge(self, other: SrReport) -> None:
        self.written += other.written
        self.failed += other.failed
        self.notes += other.notes


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


#: self-ensemble sizes: 1 (off), 2 (the face and its mirror), 8 (the mirror x the four 90-degree rotations).
ENSEMBLES = (1, 2, 8)


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
        if isinstance(model, nn.Module):
            net = check_student(model)
            self.device = next(net.parameters()).device if device is None else resolve_device(device)
            if device is not None:
                net = net.to(self.device)
        else:
            from pkdn.checkpoint import load_model

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
        max_side: int = MAX_SIDE,
        strict: bool = False,
        progress: bool | None = None,
        on_error: Callable[[str, str], None] | None = None,
        on_note: Callable[[str], None] | None = None,
        shard: tuple[int, int] = (0, 1),
        io_threads: int = 4,
    ) -> SrReport:
        """Super-resolve every input file into ``out_dir/<stem>.png``; never raises for a bad input.

        ``progress``: a tqdm bar on stderr (None: when a folder or glob was given).
        ``on_error(input, reason)`` is called for each failure as it happens;
        ``on_note(line)`` for each input converted to 8-bit RGB (``strict`` fails those instead).
        ``shard=(rank, world)``: process every ``world``-th input from ``rank`` on (names are
        checked for clashes over all inputs first, so every process agrees).
        Raises ``ValueError`` only for an unusable ``out_dir`` (checked before any work).
        """
        from tqdm import tqdm

        rank, world = shard
        files, missing, many = expand_inputs(inputs)
        out = check_out_dir(out_dir, inputs, files)
        out.mkdir(parents=True, exist_ok=True)
        todo, clashes = _assign_outputs(files, out)
        todo = todo[rank::world]
        show = (many if progress is None else progress) and rank == 0
        bar = tqdm(total=len(todo), unit="face", disable=not show, dynamic_ncols=True, leave=True)
        run = _FileRun(bar, on_error, on_note)
        if rank == 0:  # input-level problems once, not once per process
            for name, reason in missing + clashes:
                run.fail(name, reason)
        reader = functools.partial(_read_input, strict=strict, max_side=max_side, scale=self.scale)
        groups: dict[tuple[int, int], list[tuple[Path, Path, torch.Tensor]]] = {}
        with ThreadPoolExecutor(io_threads) as read_pool, ThreadPoolExecutor(io_threads) as write_pool:
            try:
                for src, dst, fut in _prefetch(read_pool, reader, todo, ahead=2 * self.batch_size):
                    try:
                        t, notes = fut.result()
                    except Exception as e:  # one bad file: report it, go on
                        run.fail(str(src), e.problem if isinstance(e, ImageError) else f"unreadable ({_one_line(e)})")
                        bar.update(1)
                        continue
                    for n in notes:
                        run.note(n)
                    g = groups.setdefault(tuple(t.shape[-2:]), [])
                    g.append((src, dst, t))
                    if len(g) >= self.batch_size:
                        self._run_group(groups.pop(tuple(t.shape[-2:])), write_pool, run)
                for g in groups.values():
                    self._run_group(g, write_pool, run)
                run.collect_writes()
            finally:
                bar.close()
        return run.report

    def _run_group(self, group: list[tuple[Path, Path, torch.Tensor]], pool: ThreadPoolExecutor, run: _FileRun) -> None:
        """One batch of equal-sized inputs through the network; their PNGs go to the writer threads."""
        try:
            sr = self.sr_batch(torch.stack([t for _, _, t in group])).cpu()
        except Exception as e:  # a failed batch must not stop the others
            for src, _, _ in group:
                run.fail(str(src), f"super-resolution failed ({_one_line(e)})")
        else:
            for (src, dst, _), img in zip(group, sr):
                run.pending.append((src, dst, pool.submit(_write_output, img, dst)))
        run.bar.update(len(group))


class _FileRun:
    """The report of one :meth:`Restorer.files` call, its callbacks and its writes in flight."""

    def __init__(self, bar, on_error: Callable[[str, str], None] | None, on_note: Callable[[str], None] | None):
        self.report, self.bar = SrReport(), bar
        self.on_error, self.on_note = on_error, on_note
        self.pending: list[tuple[Path, Path, Future]] = []

    def fail(self, name: str, reason: str) -> None:
        self.report.failed.append((name, reason))
        if self.on_error:
            self.bar.clear()  # print above the progress bar, not through it
            self.on_error(name, reason)
            self.bar.refresh()

    def note(self, line: str) -> None:
        self.report.notes.append(line)
        if self.on_note:
            self.bar.clear()
            self.on_note(line)
            self.bar.refresh()

    def collect_writes(self) -> None:
        for src, dst, fut in self.pending:
            try:
                self.report.written.append(fut.result())
            except Exception as e:
                self.fail(str(src), f"cannot write {dst} ({_one_line(e)})")
        self.pending = []


def _read_input(src: Path, *, strict: bool, max_side: int, scale: int) -> tuple[torch.Tensor, list[str]]:
    """One input file -> (3, h, w) tensor and its conversion notes, or :class:`ImageError` (a reader thread)."""
    notes: list[str] = []
    img = load_rgb(src, min_size=MIN_SIDE, notes=notes)
    if notes and strict:
        raise ImageError(src, "; ".join(n.removeprefix(f"{src}: ") for n in notes) + " (refused: --strict)")
    w, h = img.size
    if max(w, h) > max_side:
        raise ImageError(src, f"image too large for x{scale} super-resolution ({w}x{h}; at most {max_side} px a side)")
    return to_float_tensor(img), notes


def _write_output(t: torch.Tensor, target: Path) -> Path:
    """(3, H, W) SR tensor -> PNG at ``target`` (a writer thread)."""
    return save_png(tensor_to_pil(t), target, compress_level=OUTPUT_COMPRESS_LEVEL)


def _prefetch(pool: ThreadPoolExecutor, fn: Callable, todo: Sequence[tuple[Path, Path]], ahead: int) -> Iterator:
    """(src, dst, future of fn(src)) in order, keeping ``ahead`` reads in flight (bounded memory)."""
    futures: list[tuple[Path, Path, Future]] = []
    it = iter(todo)
    for src, dst in it:
        futures.append((src, dst, pool.submit(fn, src)))
        if len(futures) >= ahead:
            break
    while futures:
        yield futures.pop(0)
        nxt = next(it, None)
        if nxt is not None:
            futures.append((nxt[0], nxt[1], pool.submit(fn, nxt[0])))


def _assign_outputs(files: Sequence[Path], out: Path) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """One output name per input: a later input with an already used stem fails instead of overwriting."""
    owner: dict[str, Path] = {}
    todo, clashes = [], []
    for f in files:
        target = out / f"{f.stem}.png"
        if f.stem in owner:
            clashes.append((str(f), f"output {target.name} is already written for {owner[f.stem]}; rename one of them"))
            continue
        owner[f.stem] = f
        todo.append((f, target))
    return todo, clashes


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]], bool]:
    """Files, folders (their image files, sorted, not recursive) and globs -> (files, errors, any_folder).

    ``errors`` holds (input, reason) for arguments that matched nothing.
    """
    files: list[Path] = []
    errors: list[tuple[str, str]] = []
    many = False
    seen: set[Path] = set()

    def add(found: Iterable[Path]) -> None:
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                files.append(p)

    for raw in inputs:
        s = str(raw)
        p = Path(s)
        if p.is_dir():
            many = True
            found = list_images(p)
            if not found:
                errors.append((s, "folder holds no image files"))
            add(found)
        elif p.exists():
            add([p])
        elif glob.has_magic(s):
            many = True
            found = sorted(Path(q) for q in glob.glob(s) if Path(q).is_file())
            if not found:
                errors.append((s, "pattern matched no files"))
            add(found)
        else:
            errors.append((s, "no such file or folder"))
    return files, errors, many


def check_out_dir(out_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike], files: Iterable[Path]) -> Path:
    """Refuse an output folder that is an input folder (outputs must never overwrite inputs), or one that is
    not yet there and is named like an image file (``-o out.png``): a user who wrote that expects a file, and
    would otherwise find a folder called ``out.png`` holding ``<stem>.png``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: output path exists and is not a folder")
    if not out.exists() and out.suffix.lower() in IMAGE_EXTENSIONS:
        raise ValueError(
            f"{out}: looks like an image file name, but outputs go into a folder (<folder>/<input stem>.png); "
            "name a folder"
        )
    dirs = {Path(f).resolve().parent for f in files} | {Path(i).resolve() for i in inputs if Path(i).is_dir()}
    if out.resolve() in dirs:
        raise ValueError(
            f"{out}: the output folder is also an input folder; choose another one so inputs are never overwritten"
        )
    return out


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "EnsembleWarning",
    "ENSEMBLES",
    "MAX_SIDE",
    "MIN_SIDE",
    "PRECISIONS",
    "Restorer",
    "SrReport",
    "TeacherModelError",
    "check_out_dir",
    "check_student",
    "choose_precision",
    "expand_inputs",
]
