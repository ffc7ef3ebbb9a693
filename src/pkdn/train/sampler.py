"""Deterministic batches: epoch e's order depends on (seed, e) only.

Every rank draws the same permutation and takes its slice of each global
batch, so a run on N processes sees the same global batches as a run on one,
and an interrupted run resumes at the exact batch where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[list[int]]):
    def __init__(self, n: int, global_batch: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if global_batch % world:
            raise ValueError(f"batch size {global_batch} is not divisible by the {world} processes")
        if n < global_batch:
            raise ValueError(f"the training set has {n} images, fewer than one batch of {global_batch}")
        self.n, self.global_batch, self.seed, self.rank, self.world = n, global_batch, seed, rank, world
        self.local = global_batch // world
        self.epoch, self.skip = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.global_batch  # the last, partial batch is dropped

    def set_position(self, epoch: int, skip: int) -> None:
        """Start at batch ``skip`` of ``epoch``."""
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.batches_per_epoch - self.skip

    def __iter__(self) -> Iterator[list[int]]:
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        for b in range(self.skip, self.batches_per_epoch):
            start = b * self.global_batch + self.rank * self.local
            yield perm[start : start + self.local].tolist()
