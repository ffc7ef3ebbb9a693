"""`pkdn sr --whole` on files: read photos, run :class:`WholePhotoSR`, write PNG + JSON atomically.

The same input rules as crop mode (:meth:`pkdn.restore.Restorer.files`): files,
folders and globs; one line per bad input and the others still processed;
the output folder may not be an input folder; a later input with an already
used stem fails instead of overwriting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from pkdn.faces.photo import PhotoError, WholePhotoSR, WholeResult, check_photo
from pkdn.fileio import atomic_write_bytes
from pkdn.imageio import ImageError, load_rgb, save_png
from pkdn.restore import SrReport, check_out_dir, expand_inputs

MIN_SIDE = 8  # a photo smaller than one tiny face is not a photo
PHOTOS_PER_BATCH = 4  # faces of up to this many photos share SR batches...
BATCH_OUTPUT_PIXELS = 64_000_000  # ...while their outputs (held until written) stay under this


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


def write_result(res: WholeResult, src: Path, out: Path, save_faces: bool) -> list[Path]:
    """``out/STEM.png`` (+ ``STEM.json``; with ``save_faces`` ``STEM_faces/NN_lr.png``, ``NN_sr.png``)."""
    png, js = out / f"{src.stem}.png", out / f"{src.stem}.json"
    faces = [f.to_json() for f in res.faces]
    if save_faces:
        d = out / f"{src.stem}_faces"
        for k, f in enumerate(res.faces):
            name = f"{k:02d}"
            if f.lr is not None:
                save_png(f.lr, d / f"{name}_lr.png", compress_level=1)
                save_png(f.sr, d / f"{name}_sr.png", compress_level=1)
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
    return [png, js]


def whole_files(
    pipe: WholePhotoSR,
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    upscale: int = 8,
    background: str = "bicubic",
    save_faces: bool = False,
    strict: bool = False,
    on_error: Callable[[str, str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    on_done: Callable[[Path, WholeResult], None] | None = None,
) -> SrReport:
    """Process every input photo into ``out_dir``; never raises for a bad input (see module doc).

    Raises ``ValueError`` only for an unusable ``out_dir`` (checked before any work).
    """
    files, errors, _ = expand_inputs(inputs)
    out = check_out_dir(out_dir, inputs, files)
    out.mkdir(parents=True, exist_ok=True)
    report = SrReport()

    def fail(name: str, reason: str) -> None:
        report.failed.append((name, reason))
        if on_error:
            on_error(name, reason)

    for name, reason in errors:
        fail(name, reason)
    owner: dict[str, Path] = {}
    todo: list[Path] = []
    for f in files:
        if f.stem in owner:
            fail(str(f), f"output {f.stem}.png is already written for {owner[f.stem]}; rename one of them")
            continue
        owner[f.stem] = f
        todo.append(f)

    def run(batch: list[tuple[Path, Image.Image]]) -> None:
        try:
            results = pipe.process(
                [im for _, im in batch], upscale=upscale, background=background, keep_crops=save_faces
            )
        except Exception as e:  # noqa: BLE001 - one failed batch must not stop the others
            for f, _ in batch:
                fail(str(f), f"whole-photo super-resolution failed ({_one_line(e)})")
            return
        for (f, _), res in zip(batch, results):
            try:
                report.written += write_result(res, f, out, save_faces)
            except OSError as e:
                fail(str(f), f"cannot write its outputs to {out} ({_one_line(e)})")
                continue
            if on_done:
                on_done(f, res)

    batch: list[tuple[Path, Image.Image]] = []
    for f in todo:
        notes: list[str] = []
        try:
            img = load_rgb(f, min_size=MIN_SIDE, notes=notes)
            check_photo(img.size, upscale)
        except (ImageError, PhotoError) as e:
            fail(str(f), str(e).removeprefix(f"{f}: "))
            continue
        except Exception as e:  # noqa: BLE001 - anything else unexpected about one file
            fail(str(f), f"unreadable ({_one_line(e)})")
            continue
        if notes and strict:
            fail(str(f), "; ".join(n.removeprefix(f"{f}: ") for n in notes) + " (refused: --strict)")
            continue
        for n in notes:
            report.notes.append(n)
            if on_note:
                on_note(n)
        px = img.width * img.height * upscale * upscale
        if batch and sum(i.width * i.height for _, i in batch) * upscale * upscale + px > BATCH_OUTPUT_PIXELS:
            run(batch)
            batch = []
        batch.append((f, img))
        if len(batch) >= PHOTOS_PER_BATCH:
            run(batch)
            batch = []
    if batch:
        run(batch)
    return report
