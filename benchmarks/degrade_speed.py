"""What synthesising realistic LR on the fly costs a training run, measured in one run.

    python benchmarks/degrade_speed.py [--data prepared/celeba] [--n 200] [--preset lite] [--stage student]

Times (1) loading a training sample from the prepared folder (clean LR read from disk) and (2) the same
sample with `data.degrade` enabled (LR synthesised from HR), then (3) one training step of the network
(bf16 autocast, channels-last, batch 8, as configs/real_*.yaml), and prints the slowdown of a step that
also synthesises its 8 LR faces in the main process (num_workers 0, as on the 2-core CPU).
"""

from __future__ import annotations

import argparse
import time

import torch

from pkdn.data.dataset import FaceSRDataset
from pkdn.data.degrade import Degradation
from pkdn.losses import teacher_loss
from pkdn.models import build_model


def per_sample(ds: FaceSRDataset, n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        ds[i]
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="prepared/celeba")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--preset", default="lite")
    ap.add_argument("--stage", default="student", choices=["student", "teacher"])
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    teacher = args.stage == "teacher"
    clean = FaceSRDataset(args.data, "train", augment=True, with_parsing=teacher, seed=0)
    real = FaceSRDataset(
        args.data, "train", augment=True, with_parsing=teacher, seed=0, degradation=Degradation(enabled=True)
    )
    per_sample(real, 10)  # warm-up (imports, OpenCV)
    t_clean, t_real = per_sample(clean, args.n), per_sample(real, args.n)

    net = build_model(args.stage, args.preset).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    items = [clean[i] for i in range(args.batch)]
    lr, hr = torch.stack([x["lr"] for x in items]), torch.stack([x["hr"] for x in items])
    extra = (torch.stack([x["parsing"] for x in items]),) if teacher else ()
    times = []
    for i in range(8):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            sr, _ = net(lr, *extra)
            loss = teacher_loss(sr.float(), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t)
    step = sorted(times)[len(times) // 2]
    added = args.batch * (t_real - t_clean)
    print(f"sample, clean LR read from disk:   {1e3 * t_clean:6.2f} ms")
    print(f"sample, LR synthesised (degrade):  {1e3 * t_real:6.2f} ms")
    print(f"training step ({args.preset} {args.stage}, batch {args.batch}, bf16): {1e3 * step:7.1f} ms")
    print(
        f"on-the-fly degradation adds {1e3 * added:.1f} ms per step: {100 * added / (step + args.batch * t_clean):.1f} % "
        f"slower than training on the prepared clean LR (threads: {torch.get_num_threads()})"
    )


if __name__ == "__main__":
    main()
