"""Self-ensemble (``--ensemble 1|2|8``): what it adds to PSNR and what it costs, for both shipped models.

On the first --limit test faces, clean (the prepared LR) and degraded (`pkdn degrade --seed 0`, as built by
benchmarks/real_world.py), float32 as in the published protocol; faces/s is the bf16/fp32 path that
`pkdn sr` picks on this CPU, timed on the same faces::

    python benchmarks/ensemble.py [--limit 300] [--data prepared/celeba/test] [--degraded runs/real_world_sets/full]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pkdn.imageio import to_float_tensor
from pkdn.metrics import psnr_ssim_y
from pkdn.restore import ENSEMBLES, EnsembleWarning, Restorer


def load(folder: Path, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    names = sorted(p.stem for p in (folder / "hr").glob("*.png"))[:limit]
    if not names:
        sys.exit(f"{folder / 'hr'}: no PNG faces (run pkdn prepare / benchmarks/real_world.py first)")
    read = lambda kind: torch.stack(  # noqa: E731
        [to_float_tensor(Image.open(folder / kind / f"{n}.png").convert("RGB")) for n in names]
    )
    return read("lr"), read("hr")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--data", type=Path, default=REPO / "prepared" / "celeba" / "test")
    ap.add_argument("--degraded", type=Path, default=REPO / "runs" / "real_world_sets" / "full")
    ap.add_argument("--models", nargs="+", default=["lite", "robust"])
    a = ap.parse_args()
    warnings.simplefilter("ignore", EnsembleWarning)  # measuring 8 views of an upright-only model is the point
    sets = {"clean": load(a.data, a.limit), "degraded": load(a.degraded, a.limit)}
    n_faces = sets["clean"][0].shape[0]
    print(f"{n_faces} test faces; PSNR (dB) / SSIM, Y channel, 8-px border; faces/s on this CPU\n")
    print("| model | ensemble | clean | degraded | faces/s |")
    print("| --- | ---: | --- | --- | ---: |")
    for m in a.models:
        for n in ENSEMBLES:
            cells = []
            for lr, hr in sets.values():
                sr = Restorer(m, precision="fp32", ensemble=n).tensor(lr)
                p, s = psnr_ssim_y((sr * 255).round() / 255, hr)
                cells.append(f"{p.mean():.2f} / {s.mean():.4f}")
            fast = Restorer(m, ensemble=n)
            t0 = time.perf_counter()
            fast.tensor(sets["clean"][0])
            rate = n_faces / (time.perf_counter() - t0)
            print(f"| {m} | {n} | {cells[0]} | {cells[1]} | {rate:.0f} |", flush=True)
    print(f"\nfaces/s path: {Restorer(a.models[0]).path}")


if __name__ == "__main__":
    main()
