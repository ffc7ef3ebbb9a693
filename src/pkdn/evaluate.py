"""Evaluate models the way the literature does: PSNR / SSIM beside bicubic, per image and averaged.

A data set is one of:

* a prepared data set (``pkdn prepare``'s output): ``ROOT/<split>/hr/*.png``
  with ``lr/<stem>.png`` partners (paired by name); ``--split`` picks the split;
* a folder holding ``hr/`` (and optionally ``lr/``) directly;
* a folder whose ``<split>/`` sub-folder holds face crops (the shared CelebA folder);
* a folder of face crops.

Face crops are degraded here with the project's degradation
(:mod:`pkdn.data.degrade`: HR = the crop's central square resized to 128 x 128, LR =
HR / 8, both PIL bicubic); an ``hr/`` image without an ``lr/`` partner is
degraded the same way. Bicubic is PIL's x8 bicubic of the same LR. Metrics
follow :data:`pkdn.metrics.PROTOCOL`. With a :class:`pkdn.identity.FaceEmbedder`
(``pkdn eval --identity``) each output and its HR face are also embedded by a face
recogniser, for the identity columns (:meth:`EvalResult.identity`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from pkdn import identity, metrics
from pkdn.data.degrade import DEFAULT_CROP, hr_from_image, lr_from_hr, upsample
from pkdn.imageio import ImageError, list_images, load_rgb, tensor_to_pil, to_float_tensor
from pkdn.restore import Restorer

BICUBIC = "bicubic"
IDENTITY_NOTE = (
    "Identity: dlib face-recognition embedding distance to the HR face (lower is better; under 0.6 dlib "
    "calls it the same person) and rank-1 (the nearest HR embedding among these images is the face's own)."
)


@dataclass
class Sample:
    name: str
    hr_path: Path
    lr_path: Path | None = None  # prepared LR partner, when there is one


def find_samples(dataset: str | os.PathLike, split: str = "test") -> list[Sample]:
    """The images of ``dataset`` (see the module doc), sorted by name."""
    root = Path(dataset)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such data set folder")

    for base in (root / split, root):
        if (base / "hr").is_dir():
            lr_dir = base / "lr"
            out = []
            for p in list_images(base / "hr"):
                lp = lr_dir / f"{p.stem}.png"
                out.append(Sample(p.stem, p, lp if lp.is_file() else None))
            if not out:
                raise FileNotFoundError(f"{base / 'hr'}: no images")
            return out
    folder = root / split if (root / split).is_dir() else root
    files = list_images(folder)
    if not files:
        raise FileNotFoundError(f"{folder}: no image files")
    return [Sample(p.stem, p) for p in files]


def load_pair(
    sample: Sample, hr_size: int = 128, scale: int = 8, crop: str = DEFAULT_CROP
) -> tuple[Image.Image, Image.Image]:
    """(LR, HR) PIL images of one sample with the project's degradation (``crop``: see ``hr_from_image``)."""
    hr = hr_from_image(load_rgb(sample.hr_path), hr_size, crop=crop)
    if sample.lr_path is not None:
        lr = load_rgb(sample.lr_path, min_size=1)
        if lr.size != (hr.size[0] // scale, hr.size[1] // scale):
            raise ValueError(f"{sample.lr_path}: LR size {lr.size} is not the HR size {hr.size} / {scale}")
    else:
        lr = lr_from_hr(hr, scale)
    return lr, hr


@dataclass
class EvalResult:
    methods: list[str]  # "bicubic" first, then the models in the order given
    names: list[str] = field(default_factory=list)  # image names (stems)
    psnr: dict[str, list[float]] = field(default_factory=dict)
    ssim: dict[str, list[float]] = field(default_factory=dict)
    params: dict[str, int | None] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    dataset: str = ""
    #: face-recogniser embeddings per image ("hr" and each method), filled when evaluated with an embedder
    embeddings: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def mean(self, method: str) -> tuple[float, float]:
        return metrics.mean_finite(self.psnr[method]), metrics.mean_finite(self.ssim[method])

    def identity_scores(
        self, method: str, ids: Sequence[str] | None = None, leave_own_out: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per image: embedding distance of ``method``'s output to its HR face, and rank-1 hit (1 / 0 / nan);
        ``ids`` (the person of each image) and ``leave_own_out``: see :func:`pkdn.identity.rank1`."""
        if not self.embeddings:
            raise ValueError("no identity embeddings: evaluate with an identity embedder")
        hr, out = np.stack(self.embeddings["hr"]), np.stack(self.embeddings[method])
        return identity.distances(out, hr), identity.rank1(out, hr, ids, leave_own_out)

    def identity(self, method: str) -> tuple[float, float]:
        """(mean embedding distance to the HR face, rank-1 identification rate: own face nearest) of ``method``."""
        dist, hit = self.identity_scores(method)
        return float(dist.mean()), float(np.nanmean(hit)) if np.isfinite(hit).any() else float("nan")

    def write_csv(self, path: str | os.PathLike) -> None:
        """One row per image: ``image, <method>_psnr, <method>_ssim, ...``; a final ``mean`` row."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            ident = {m: self.identity_scores(m)[0] for m in self.methods} if self.embeddings else {}
            keys = ("psnr", "ssim", "id_dist") if ident else ("psnr", "ssim")
            w.writerow(["image"] + [f"{m}_{k}" for m in self.methods for k in keys])
            for i, n in enumerate(self.names):
                vals = [(self.psnr[m][i], self.ssim[m][i], *([ident[m][i]] if ident else [])) for m in self.methods]
                w.writerow([n] + [f"{v:.6f}" for row in vals for v in row])
            means = [(*self.mean(m), *([ident[m].mean()] if ident else [])) for m in self.methods]
            w.writerow(["mean"] + [f"{v:.6f}" for row in means for v in row])

    def markdown(self) -> str:
        """A Table-1-style Markdown table (methods as rows), with the protocol stated under it."""
        ident = bool(self.embeddings)
        lines = [
            "| Method | Params | PSNR (dB) | SSIM | Δ PSNR vs bicubic |" + (" ID distance | rank-1 |" if ident else ""),
            "| --- | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if ident else ""),
        ]
        bp, _ = self.mean(BICUBIC)
        for m in self.methods:
            p, s = self.mean(m)
            n = self.params.get(m)
            par = "—" if n is None else f"{n / 1e6:.3f} M"
            delta = "—" if m == BICUBIC else f"{p - bp:+.2f}"
            extra = ""
            if ident:
                dist, r1 = self.identity(m)
                extra = f" {dist:.3f} | {100 * r1:.1f} % |"
            lines.append(f"| {m} | {par} | {p:.2f} | {s:.4f} | {delta} |" + extra)
        lines.append("")
        lines.append(f"{len(self.names)} images of {self.dataset}, x8. {metrics.PROTOCOL}.")
        if ident:
            lines.append(IDENTITY_NOTE)
        return "\n".join(lines)


def evaluate(
    models: Mapping[str, nn.Module | Restorer],
    dataset: str | os.PathLike,
    split: str = "test",
    limit: int | None = None,
    batch_size: int = 16,
    keep: int = 0,
    progress: bool = False,
    on_error: Callable[[str, str], None] | None = None,
    crop: str = DEFAULT_CROP,
    embedder: identity.FaceEmbedder | None = None,
) -> tuple[EvalResult, dict[str, list[torch.Tensor]]]:
    """Score each model and bicubic on ``dataset``; return the result and ``keep`` faces' images.

    A network is run in float32 (the published protocol); pass a :class:`Restorer` to score
    another precision. The kept images (for :func:`comparison_grid`) map "lr", "hr", "bicubic"
    and each model name to lists of (3, H, W) tensors. Unreadable images are skipped, listed in
    ``result.failed`` and reported through ``on_error`` as they happen. With ``embedder``, each output
    and HR face is embedded into ``result.embeddings`` (outputs in the face box found on their HR).
    """
    for name in models:
        if name == BICUBIC:
            raise ValueError("'bicubic' is reserved for the baseline; name the model otherwise")
    restorers = {
        n: m if isinstance(m, Restorer) else Restorer(m, precision="fp32", batch_size=batch_size)
        for n, m in models.items()
    }
    samples = find_samples(dataset, split)
    if limit is not None:
        samples = samples[:limit]
    methods = [BICUBIC, *models]
    res = EvalResult(methods=methods, dataset=str(dataset) + ("" if crop == DEFAULT_CROP else f" (crop={crop})"))
    res.psnr = {m: [] for m in methods}
    res.ssim = {m: [] for m in methods}
    res.params = {BICUBIC: None, **{n: sum(p.numel() for p in r.model.parameters()) for n, r in restorers.items()}}
    kept: dict[str, list[torch.Tensor]] = {k: [] for k in ["lr", "hr", *methods]}
    if embedder is not None:
        res.embeddings = {m: [] for m in ["hr", *methods]}

    from tqdm import tqdm

    bar = tqdm(total=len(samples), unit="face", disable=not progress, dynamic_ncols=True)

    def run(batch: list[tuple[str, Image.Image, Image.Image]]) -> None:
        lr = torch.stack([to_float_tensor(b[1]) for b in batch])
        hr = torch.stack([to_float_tensor(b[2]) for b in batch])
        outs = {BICUBIC: torch.stack([to_float_tensor(upsample(b[1])) for b in batch])}
        for name, r in restorers.items():
            outs[name] = r.sr_batch(lr).cpu()
        for name, sr in outs.items():
            p, s = metrics.psnr_ssim_y(sr, hr)
            res.psnr[name].extend(p.tolist())
            res.ssim[name].extend(s.tolist())
        res.names.extend(b[0] for b in batch)
        if embedder is not None:
            hr8 = [np.asarray(b[2]) for b in batch]
            boxes = [embedder.box(h) for h in hr8]
            res.embeddings["hr"].extend(embedder.embed(hr8, boxes))
            for name, sr in outs.items():
                res.embeddings[name].extend(embedder.embed(_uint8_images(sr), boxes))
        room = keep - len(kept["hr"])
        if room > 0:
            kept["lr"].extend(lr[:room])
            kept["hr"].extend(hr[:room])
            for name, sr in outs.items():
                kept[name].extend(sr[:room])
        bar.update(len(batch))

    batch: list[tuple[str, Image.Image, Image.Image]] = []
    try:
        for s in samples:
            try:
                lr, hr = load_pair(s, crop=crop)
            except (ImageError, ValueError) as e:
                res.failed.append((str(s.hr_path), str(e)))
                if on_error:
                    on_error(str(s.hr_path), str(e))
                bar.update(1)
                continue
            if batch and (lr.size != batch[0][1].size):
                run(batch)
                batch = []
            batch.append((s.name, lr, hr))
            if len(batch) >= batch_size:
                run(batch)
                batch = []
        if batch:
            run(batch)
    finally:
        bar.close()
    if not res.names:
        raise ValueError(f"{dataset}: no image could be evaluated")
    return res, kept


def _uint8_images(x: torch.Tensor) -> list[np.ndarray]:
    """(B, 3, H, W) in [0, 1] -> RGB uint8 arrays, rounded as a PNG of the output would be."""
    a = x.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(i) for i in a]


def comparison_grid(kept: Mapping[str, Sequence[torch.Tensor]], methods: Sequence[str]) -> Image.Image:
    """One row per face: LR (nearest-enlarged) | bicubic | each model | HR, under a label row."""
    cols = ["lr", *methods, "hr"]
    rows = len(kept["hr"])
    if rows == 0:
        raise ValueError("no faces to draw")
    h, w = kept["hr"][0].shape[-2:]
    pad, label_h = 4, 16
    grid = Image.new("RGB", (len(cols) * (w + pad) + pad, label_h + rows * (h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for c, name in enumerate(cols):
        x0 = pad + c * (w + pad)
        text = {"lr": f"LR {kept['lr'][0].shape[-1]}px", "hr": "HR"}.get(name, name)
        draw.text((x0 + 2, 2), text[: max(4, w // 6)], fill=(0, 0, 0))
        for r in range(rows):
            img = tensor_to_pil(kept[name][r])
            if img.size != (w, h):
                img = img.resize((w, h), Image.NEAREST)
            grid.paste(img, (x0, label_h + pad + r * (h + pad)))
    return grid
