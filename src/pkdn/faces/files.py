"""Whole photos on files: the photo job of :func:`pkdn.batch.run_files` (`pkdn sr --whole`, photos in auto mode).

The driver (:mod:`pkdn.batch`) gives photos the same input rules as crops (files, folders and globs; one
line per bad input and the others still processed; the output folder may not be an input folder; a later
input with an already used stem fails instead of overwriting), reads them ahead on threads, where
:class:`PhotoJob` also finds their faces, and writes the results on threads. The network sees the faces of
several photos at once (:data:`PHOTOS_PER_BATCH`), equal crop sizes in one forward pass.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from pkdn.batch import PHOTO_READ_AHEAD, SrReport, run_files
from pkdn.faces.photo import SCALE, Face, WholePhotoSR, WholeResult, check_options, check_photo
from pkdn.fileio import atomic_write_bytes
from pkdn.imageio import save_png
from pkdn.kind import Kind

MIN_SIDE = 8  # a photo smaller than one tiny face is not a photo
#: photos whose faces share the network's batches (equal crop sizes in one forward pass). More is not faster on a
#: CPU: 30 photos took 36.8 s of CPU in windows of 32 against 29.4 s in windows of 4 (2 cores, bf16, no reader
#: or writer threads; benchmarks/whole_folder.py), larger batches of large crops costing more per face.
PHOTOS_PER_BATCH = 4
#: ...while the photos waiting for the network stay under this many input pixels (their outputs are made one
#: at a time, after the network, and handed to the writer threads).
BATCH_INPUT_PIXELS = 48_000_000


def photo_io_threads(device: torch.device) -> int:
    """Reader / writer threads for photos: none on a CPU, where the network keeps every core busy and finding
    faces or pasting beside it cannot make it faster (30 photos, 2 cores: 31.3 s of CPU with 4 threads, 29.4 s
    without; benchmarks/whole_folder.py), 4 where the network runs elsewhere (a GPU)."""
    return 0 if device.type == "cpu" else 4


@dataclass
class _Photo:
    image: Image.Image
    jobs: list  # the faces found, with their LR crops (pkdn.faces.photo._Job)

    @property
    def faces(self) -> list[Face]:
        return [j.face for j in self.jobs]


class PhotoJob:
    """Whole-photo work for :func:`pkdn.batch.run_files`: faces found on reader threads, super-resolved across
    photos, pasted, written as ``STEM.png`` + ``STEM.json`` (+ ``STEM_faces/`` with ``save_faces``)."""

    kind: Kind = "photo"
    min_side = MIN_SIDE
    what = "whole-photo super-resolution"

    def __init__(
        self, pipe: WholePhotoSR, upscale: int = SCALE, background: str = "bicubic", save_faces: bool = False
    ) -> None:
        self.pipe, self.save_faces = pipe, save_faces
        self.upscale, self.background = check_options(upscale, background), background

    def prepare(self, src: Path, img: Image.Image) -> _Photo:
        check_photo(img.size, self.upscale)
        return _Photo(img, self.pipe.find_faces(img, self.upscale))

    def key(self, item: _Photo) -> None:
        return None  # any photos share a batch: their faces are grouped by crop size inside it

    def full(self, batch: Sequence[_Photo]) -> bool:
        pixels = sum(p.image.width * p.image.height for p in batch)
        return len(batch) >= PHOTOS_PER_BATCH or pixels >= BATCH_INPUT_PIXELS

    def run(self, batch: Sequence[_Photo]) -> Iterator[_Photo]:
        self.pipe.super_resolve_faces([j for p in batch for j in p.jobs])
        yield from batch

    def write(self, src: Path, dst: Path, photo: _Photo) -> list[Path]:
        """Paste (the output is made here, one per writer thread, while the network goes on) and write."""
        res = self.pipe.paste_faces(photo.image, photo.jobs, self.upscale, self.background, self.save_faces)
        return write_result(res, src, dst.parent, self.save_faces)


def write_result(res: WholeResult, src: Path, out: Path, save_faces: bool) -> list[Path]:
    """``out/STEM.png`` (+ ``STEM.json``; with ``save_faces`` ``STEM_faces/NN_lr.png``, ``NN_sr.png``)."""
    png, js = out / f"{src.stem}.png", out / f"{src.stem}.json"
    faces = [f.to_json() for f in res.faces]
    written = []
    if save_faces:
        d = out / f"{src.stem}_faces"
        for k, f in enumerate(res.faces):
            name = f"{k:02d}"
            if f.lr is not None:
                written.append(save_png(f.lr, d / f"{name}_lr.png", compress_level=1))
                written.append(save_png(f.sr, d / f"{name}_sr.png", compress_level=1))
                faces[k]["lr_file"] = f"{d.name}/{name}_lr.png"
                faces[k]["sr_file"] = f"{d.name}/{name}_sr.png"
    save_png(res.image, png, compress_level=1)
    doc = {
        "input": str(src),
        "size": list(res.size),
        "upscale": res.upscale,
        "model": res.model,
        "output": png.name,
        "coordinates": "input pixels, continuous (pixel i covers [i, i+1))",
        "faces": faces,
    }
    atomic_write_bytes(js, (json.dumps(doc, indent=1) + "\n").encode())
    return [png, js, *written]


def whole_files(
    pipe: WholePhotoSR,
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    upscale: int = SCALE,
    background: str = "bicubic",
    save_faces: bool = False,
    strict: bool = False,
    on_error: Callable[[str, str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    progress: bool | None = False,
    shard: tuple[int, int] = (0, 1),
    **driver: Any,
) -> SrReport:
    """Process every input as a whole photo into ``out_dir``; never raises for a bad input (see module doc).

    Raises ``ValueError`` only for an unusable ``out_dir`` or option (checked before any work).
    """
    job = PhotoJob(pipe, upscale, background, save_faces)
    return run_files(
        inputs,
        out_dir,
        lambda kind: job,
        kind="photo",
        strict=strict,
        progress=progress,
        on_error=on_error,
        on_note=on_note,
        shard=shard,
        ahead=PHOTO_READ_AHEAD,
        io_threads=driver.pop("io_threads", photo_io_threads(pipe.restorer.device)),
        **driver,
    )
