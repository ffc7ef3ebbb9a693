"""Shared fixtures: the project's real CelebA crops.

The data lives outside the repository (``../shared/data/celeba`` next to the
checkout); ``PKDN_CELEBA`` points elsewhere. Missing data is an error, never a
skip: CI must exercise these tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def celeba_root() -> Path:
    root = Path(os.environ.get("PKDN_CELEBA", REPO.parent / "shared" / "data" / "celeba"))
    if not (root / "train").is_dir():
        raise RuntimeError(f"{root}: CelebA crops not found; set PKDN_CELEBA to the folder holding train/val/test")
    return root


@pytest.fixture(scope="session")
def celeba() -> Path:
    return celeba_root()


@pytest.fixture(autouse=True)
def _threads():
    """Keep torch to the machine's cores so parallel helpers do not oversubscribe."""
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture(scope="session")
def prepared_small(celeba, tmp_path_factory) -> Path:
    """A small prepared dataset of real faces (12 per split, 64 x 64 HR / 8 x 8 LR to keep training tests quick)."""
    from pkdn.data.prepare import prepare

    out = tmp_path_factory.mktemp("prepared") / "celeba64"
    prepare(celeba, out, hr_size=64, limit=12, progress=False)
    return out
