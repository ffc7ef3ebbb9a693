"""Training throughput (images/s) of the lite networks on this machine: float32 vs bf16 autocast + channels-last.

    python benchmarks/train_speed.py [--preset lite] [--batch 8] [--steps 6]

One optimiser step = forward, L1 loss, backward, Adam; the first step is a
warm-up and not counted. The student is timed without its teacher (the
distillation forward of the teacher adds its inference cost while
lambda_TS/lambda_FS are non-zero).
"""
from __future__ import annotations

import argparse
import contextlib
import time

import torch

from pkdn.models import build_model


def images_per_s(kind: str, preset: str, batch: int, steps: int, bf16: bool, channels_last: bool) -> float:
    torch.manual_seed(0)
    net = build_model(kind, preset)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    lr, hr = torch.rand(batch, 3, 16, 16), torch.rand(batch, 3, 128, 128)
    args = (lr,) if kind == "student" else (lr, torch.rand(batch, net.config.parsing_channels, 128, 128))
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            sr, _ = net(*args)
        loss = (sr.float() - hr).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return batch / (sum(times[1:]) / steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="lite")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, 16 -> 128")
    print("| network | float32 | bf16 + channels-last |")
    print("| --- | ---: | ---: |")
    for kind in ("teacher", "student"):
        fp32 = images_per_s(kind, args.preset, args.batch, args.steps, False, False)
        bf16 = images_per_s(kind, args.preset, args.batch, args.steps, True, True)
        print(f"| {args.preset} {kind} | {fp32:.1f} images/s | {bf16:.1f} images/s |")


if __name__ == "__main__":
    main()
