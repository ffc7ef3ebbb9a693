"""Process-group set-up for torchrun (DDP): NCCL on GPUs, gloo on CPUs.

A plain ``python``/``pkdn`` run is a world of one; under ``torchrun`` the
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR...) says otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from pkdn.device import resolve_device


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup(device: str = "auto") -> DistEnv:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistEnv(device=resolve_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank=rank, world=world, local_rank=local_rank, device=dev)


def teardown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def gather(obj: object, env: DistEnv) -> list:
    """``obj`` from every rank, in rank order (a list of one outside torchrun)."""
    if not env.distributed:
        return [obj]
    out: list = [None] * env.world
    dist.all_gather_object(out, obj)
    return out
