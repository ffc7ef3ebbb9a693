"""A PNG grid to judge a prepared dataset at a glance.

One column per sample; rows: HR, LR (nearest-enlarged, so its pixels show),
the colour-coded parsing map, and the map blended over the HR face; a legend
of the classes present runs along the bottom.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from pkdn.priors.labels import CLASSES, PALETTE, colorize


def _tiles(root: Path, split: str, name: str, zoom: int) -> list[np.ndarray]:
    d = root / split
    hr = Image.open(d / "hr" / f"{name}.png").convert("RGB")
    lr = Image.open(d / "lr" / f"{name}.png").convert("RGB")
    lab = np.asarray(Image.open(d / "parsing" / f"{name}.png"))
    size = (hr.width * zoom, hr.height * zoom)
    hr_a = np.asarray(hr.resize(size, Image.Resampling.NEAREST))
    lr_a = np.asarray(lr.resize(size, Image.Resampling.NEAREST))
    col = np.asarray(Image.fromarray(colorize(lab)).resize(size, Image.Resampling.NEAREST))
    over = (0.55 * hr_a + 0.45 * col).astype(np.uint8)
    return [hr_a, lr_a, col, over]


def make_grid(
    root: str | os.PathLike,
    split: str = "test",
    n: int = 6,
    seed: int | None = 0,
    zoom: int = 1,
    names: list[str] | None = None,
) -> Image.Image:
    """Grid image for ``n`` samples (random with ``seed``, or the first ``n`` when ``seed`` is None)."""
    root = Path(root)
    if names is None:
        all_names = sorted(p.stem for p in (root / split / "hr").glob("*.png"))
        if not all_names:
            raise FileNotFoundError(f"{root / split / 'hr'}: no prepared images")
        if seed is None:
            names = all_names[:n]
        else:
            g = torch.Generator().manual_seed(seed)
            idx = torch.randperm(len(all_names), generator=g)[:n].tolist()
            names = [all_names[i] for i in sorted(idx)]
    cols = [_tiles(root, split, nm, zoom) for nm in names]
    pad = 2
    th, tw = cols[0][0].shape[:2]
    present = sorted(
        {int(v) for nm in names for v in np.unique(np.asarray(Image.open(root / split / "parsing" / f"{nm}.png")))}
    )
    legend_h = 14 * ((len(present) + 3) // 4) + 6
    W = len(cols) * (tw + pad) + pad
    H = 4 * (th + pad) + pad + legend_h
    grid = Image.new("RGB", (W, H), (255, 255, 255))
    for c, tiles in enumerate(cols):
        for r, t in enumerate(tiles):
            grid.paste(Image.fromarray(t), (pad + c * (tw + pad), pad + r * (th + pad)))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    y0 = 4 * (th + pad) + pad + 3
    colw = max(W // 4, 1)
    for i, k in enumerate(present):
        x, y = pad + (i % 4) * colw, y0 + (i // 4) * 14
        draw.rectangle((x, y + 1, x + 10, y + 11), fill=tuple(int(v) for v in PALETTE[k]), outline=(0, 0, 0))
        draw.text((x + 14, y), f"{k} {CLASSES[k]}", fill=(0, 0, 0), font=font)
    return grid
