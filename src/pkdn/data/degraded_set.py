"""A fixed degraded test set anyone can rebuild: ``pkdn degrade IN_DIR OUT_DIR --seed S``.

For each face crop: HR = the crop's central square at 128 x 128 (as ``pkdn prepare``), LR = one draw of
the realistic degradation (:func:`pkdn.data.degrade.degrade`). The draw depends on (seed, file name) only,
so adding or removing files never changes the others. Writes ``OUT_DIR/hr/<stem>.png`` and
``OUT_DIR/lr/<stem>.png`` (what ``pkdn eval`` scores) and ``OUT_DIR/degrade.yaml`` (the exact ranges and
seed). The whole-photo branch moves HR by the alignment error it simulates, so the written HR is the
reference that stays in register with its LR.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from pkdn.data.degrade import Degradation, degrade, hr_from_image
from pkdn.fileio import atomic_write_bytes
from pkdn.imageio import ImageError, list_images, load_rgb, save_png


@dataclass
class DegradeSummary:
    written: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)


def file_rng(seed: int, stem: str) -> np.random.Generator:
    """The draw for one file: a function of (seed, file name) alone."""
    return np.random.default_rng([seed, zlib.crc32(stem.encode()), 0x5EED])


def make_degraded_set(
    images: str | os.PathLike,
    out_dir: str | os.PathLike,
    seed: int = 0,
    degradation: Degradation | None = None,
    limit: int | None = None,
    hr_size: int = 128,
    scale: int = 8,
    on_error: Callable[[str, str], None] | None = None,
) -> DegradeSummary:
    """Write degraded (LR, HR) pairs of the face crops in ``images`` into ``out_dir``; see the module doc."""
    src, out = Path(images), Path(out_dir)
    d = degradation or Degradation(enabled=True)
    d.validate()
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such folder")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise ValueError(f"{out}: the output folder must not be the input folder or inside it")
    files = list_images(src)
    if not files:
        raise FileNotFoundError(f"{src}: no image files")
    files = files[:limit] if limit else files
    stems: dict[str, Path] = {}
    summary = DegradeSummary()
    conf = {
        "seed": seed,
        "hr_size": hr_size,
        "scale": scale,
        "source": str(src),
        "degradation": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(d).items()},
    }
    atomic_write_bytes(out / "degrade.yaml", yaml.safe_dump(conf, sort_keys=False).encode())
    for p in files:
        try:
            if p.stem in stems:
                raise ImageError(p, f"same name as {stems[p.stem]}; skipped (outputs are named by stem)")
            stems[p.stem] = p
            hr = np.asarray(hr_from_image(load_rgb(p), hr_size))
            lr, hr, _ = degrade(hr, file_rng(seed, p.stem), d, scale=scale)
        except ImageError as e:
            summary.failed.append((str(p), str(e)))
            if on_error:
                on_error(str(p), str(e))
            continue
        save_png(Image.fromarray(hr, "RGB"), out / "hr" / f"{p.stem}.png")
        save_png(Image.fromarray(lr, "RGB"), out / "lr" / f"{p.stem}.png")
        summary.written.append(p.stem)
    return summary
