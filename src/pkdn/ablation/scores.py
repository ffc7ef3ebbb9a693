"""Per-face test scores of teachers (with HR parsing maps), students and bicubic, cached as JSON.

``pkdn.evaluate`` scores students only; a teacher needs the parsing map of
each HR face as a second input, which a prepared data set holds in
``<split>/parsing/``. Everything here reads the same :class:`FaceSRDataset`
and scores with :func:`pkdn.metrics.psnr_ssim_y`, so teachers, students and
bicubic are measured on the same faces under the same protocol. Scores are
kept per face (the table pairs them face by face) in a small JSON file beside
the run, so a finished ablation is re-tabulated without re-evaluating.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from pkdn.data.dataset import FaceSRDataset
from pkdn.data.degrade import upsample
from pkdn.fileio import atomic_write
from pkdn.imageio import tensor_to_pil
from pkdn.imageio import to_float_tensor as pil_to_tensor
from pkdn.metrics import PROTOCOL, psnr_ssim_y


@dataclass
class Scores:
    split: str
    names: list[str]
    psnr: list[float]
    ssim: list[float]
    params: int | None = None  # None: bicubic
    protocol: str = PROTOCOL

    def mean(self) -> tuple[float, float]:
        return sum(self.psnr) / len(self.psnr), sum(self.ssim) / len(self.ssim)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(asdict(self))))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Scores:
        return cls(**json.loads(Path(path).read_text()))


def eval_names(root: str | os.PathLike, split: str, limit: int | None) -> list[str]:
    """The faces a score must cover: a cached score of other faces is stale."""
    names = FaceSRDataset(root, split, with_parsing=False).names
    return names if limit is None else names[:limit]


def cached(path: Path, split: str, names: list[str]) -> Scores | None:
    """The scores at ``path`` if they are of exactly these faces under this protocol, else None."""
    if not path.is_file():
        return None
    s = Scores.load(path)
    return s if (s.split, s.names, s.protocol) == (split, names, PROTOCOL) else None


@torch.no_grad()
def score(
    model: nn.Module | None,
    root: str | os.PathLike,
    split: str = "test",
    limit: int | None = None,
    parsing: str = "full",
    device: str | torch.device = "cpu",
    batch_size: int = 16,
) -> Scores:
    """Per-face Y PSNR/SSIM of a teacher (given the HR parsing map), a student, or bicubic (``model=None``)."""
    teacher = model is not None and model.config.kind == "teacher"
    data = FaceSRDataset(root, split, parsing=parsing, with_parsing=teacher)
    n = len(data) if limit is None else min(limit, len(data))
    if model is not None:
        model = model.eval().to(device)
    names, psnr, ssim = [], [], []
    # fp32 as on a CPU: cuDNN's default TF32 convolutions would move a GPU's scores by ~0.01 dB.
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        for start in range(0, n, batch_size):
            items = [data[i] for i in range(start, min(n, start + batch_size))]
            lr = torch.stack([it["lr"] for it in items])
            hr = torch.stack([it["hr"] for it in items])
            if model is None:  # PIL's bicubic of the same 8-bit LR, as pkdn eval's baseline
                sr = torch.stack([pil_to_tensor(upsample(tensor_to_pil(x), data.scale)) for x in lr])
            elif teacher:
                sr, _ = model(lr.to(device), torch.stack([it["parsing"] for it in items]).to(device))
            else:
                sr, _ = model(lr.to(device))
            p, s = psnr_ssim_y(sr.float().cpu(), hr)
            names += [it["name"] for it in items]
            psnr += p.tolist()
            ssim += s.tolist()
    params = None if model is None else sum(p.numel() for p in model.parameters())
    return Scores(split, names, psnr, ssim, params)
