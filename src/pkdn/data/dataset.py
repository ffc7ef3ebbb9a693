"""The training ``Dataset`` over a prepared folder (see :mod:`pkdn.data.prepare`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from pkdn.data.degrade import Degradation, degrade, sample_rng
from pkdn.priors.labels import FLIP_SWAP, num_channels, to_tensor


def _read(path: Path, mode: str) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode != mode:
            raise ValueError(f"{path}: expected a {mode} PNG, found mode {im.mode}")
        return np.array(im)


def _chw(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div_(255.0)


class FaceSRDataset(Dataset):
    """(LR, HR, parsing) samples of one split of a prepared dataset.

    Files are paired by name (``hr/<stem>.png`` with ``lr/<stem>.png`` and
    ``parsing/<stem>.png``); a missing partner raises ``FileNotFoundError``
    naming it. ``parsing`` is a grouping scheme of :mod:`pkdn.priors.labels`
    ("full": 19 one-hot channels, "grouped": 11, "binary": 1). ``augment``
    applies the same random horizontal flip (left/right classes swapped) and
    90-degree rotation to all images. With ``seed`` set, each sample's
    augmentation is a function of (seed, epoch, index) alone (``set_epoch``
    moves to the next epoch), so it does not depend on DataLoader workers or
    on where an interrupted run resumed; without it, torch's global RNG is used.

    With ``degradation`` enabled, the prepared LR is not read: a fresh realistic LR is synthesised from the
    (augmented) HR face for every sample and epoch (:func:`pkdn.data.degrade.degrade`), also a function of
    (seed, epoch, index) alone when ``seed`` is set.

    The networks bicubic-upsample the LR input themselves, so no upsampled copy is made here.

    ``extra_roots``: more prepared folders whose ``split`` joins this one (e.g. faces of other sources in the
    training mix); names stay as they are, so a stem may repeat across roots.

    Items: ``{"lr": (3,h,w), "hr": (3,H,W), "parsing": (C,H,W), "name": str}``,
    floats in [0, 1]; "parsing" is left out when ``with_parsing=False``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        parsing: str = "full",
        augment: bool = False,
        with_parsing: bool = True,
        rotate: bool = True,
        flip: bool = True,
        seed: int | None = None,
        degradation: Degradation | None = None,
        extra_roots: Sequence[str | os.PathLike] = (),
    ):
        self.root = Path(root)
        self.split = split
        self.scheme = parsing
        self.channels = num_channels(parsing)  # validates the scheme name
        self.augment, self.with_parsing, self.rotate, self.flip = augment, with_parsing, rotate, flip
        self.seed, self.epoch = seed, 0
        self.degradation = degradation if degradation is not None and degradation.enabled else None
        cfg_path = self.root / "config.json"
        self.config = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
        self.scale = int(self.config.get("scale", 8))
        self.names: list[str] = []
        self._dirs: list[Path] = []  # the split folder of each name
        for root_i in (self.root, *map(Path, extra_roots)):
            names = self._scan(root_i / split, with_parsing)
            self.names += names
            self._dirs += [root_i / split] * len(names)

    def _scan(self, d: Path, with_parsing: bool) -> list[str]:
        """The sorted stems of one prepared split, after checking every partner file exists."""
        if not (d / "hr").is_dir():
            raise FileNotFoundError(f"{d / 'hr'}: no such folder; prepare the data with `pkdn prepare`")
        names = sorted(p.stem for p in (d / "hr").glob("*.png"))
        if not names:
            raise FileNotFoundError(f"{d / 'hr'}: no HR images")
        kinds = (() if self.degradation else ("lr",)) + (("parsing",) if with_parsing else ())
        for k in kinds:
            have = {p.stem for p in (d / k).glob("*.png")} if (d / k).is_dir() else set()
            missing = [n for n in names if n not in have]
            if missing:
                raise FileNotFoundError(
                    f"{d / k / (missing[0] + '.png')}: missing partner of "
                    f"{d / 'hr' / (missing[0] + '.png')} ({len(missing)} missing in {d / k})"
                )
        return names

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _generator(self, i: int) -> torch.Generator | None:
        if self.seed is None:
            return None
        return torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict:
        name, d = self.names[i], self._dirs[i]
        hr = _read(d / "hr" / f"{name}.png", "RGB")
        lab = _read(d / "parsing" / f"{name}.png", "L") if self.with_parsing else None
        lr = None if self.degradation is not None else _read(d / "lr" / f"{name}.png", "RGB")
        if lr is not None and (hr.shape[0] % lr.shape[0] or hr.shape[0] // lr.shape[0] != hr.shape[1] // lr.shape[1]):
            raise ValueError(
                f"{d / 'lr' / (name + '.png')}: size {lr.shape[1]}x{lr.shape[0]} does not divide "
                f"the HR size {hr.shape[1]}x{hr.shape[0]}"
            )
        if self.augment:
            g = self._generator(i)
            if self.flip and torch.rand((), generator=g) < 0.5:
                hr = hr[:, ::-1]
                lr = None if lr is None else lr[:, ::-1]
                lab = None if lab is None else FLIP_SWAP[lab[:, ::-1]]
            if self.rotate:
                k = int(torch.randint(0, 4, (), generator=g))
                if k:
                    hr = np.rot90(hr, k)
                    lr = None if lr is None else np.rot90(lr, k)
                    lab = None if lab is None else np.rot90(lab, k)
        if self.degradation is not None:
            rng = sample_rng(self.seed, self.epoch, i) if self.seed is not None else np.random.default_rng()
            lr, hr, lab = degrade(
                np.ascontiguousarray(hr),
                rng,
                self.degradation,
                scale=self.scale,
                parsing=None if lab is None else np.ascontiguousarray(lab),
            )
        item = {"lr": _chw(lr), "hr": _chw(hr), "name": name}
        if lab is not None:
            item["parsing"] = to_tensor(np.ascontiguousarray(lab), self.scheme)
        return item
