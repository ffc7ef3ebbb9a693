"""What each inference precision costs in quality and gains in speed, and which one `pkdn sr` picks here.

    python benchmarks/sr_precision.py [--model lite] [--limit N] [--data ../shared/data/celeba]

Scores every precision of :mod:`pkdn.restore` (float32, bf16 autocast) on the
test faces with ``pkdn eval``'s protocol, prints PSNR / SSIM, the PSNR change
against float32 (a default path may cost at most 0.02 dB), and images/s of the
network at batch 32 on this host.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from pkdn.device import cpu_bf16_kind, cpu_name
from pkdn.evaluate import evaluate
from pkdn.restore import Restorer

REPO = Path(__file__).resolve().parents[1]


def images_per_s(r: Restorer, seconds: float = 5.0, batch: int = 32) -> float:
    x = torch.rand(batch, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    r.sr_batch(x)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        r.sr_batch(x)
        n += batch
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lite", help="shipped model name or student file (default lite)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "celeba"))
    ap.add_argument("--limit", type=int, default=None, help="first N test faces (default: all)")
    ap.add_argument("--seconds", type=float, default=5.0, help="timing per precision")
    args = ap.parse_args()
    auto = Restorer(args.model)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()}; "
        f"native bf16: {cpu_bf16_kind() or 'none'}"
    )
    print(f"`pkdn sr` picks: {auto.path}")
    paths = {p: Restorer(args.model, precision=p) for p in ("fp32", "bf16")}
    res, _ = evaluate(paths, args.data, split="test", limit=args.limit)
    p32, _ = res.mean("fp32")
    print(f"\n{len(res.names)} faces of {args.data}/test, model {args.model}, batch 32\n")
    print("| precision | PSNR (dB) | SSIM | Δ PSNR vs float32 | images/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in paths.items():
        p, s = res.mean(name)
        print(f"| {name} | {p:.4f} | {s:.5f} | {p - p32:+.4f} | {images_per_s(r, args.seconds):.1f} |")


if __name__ == "__main__":
    main()
