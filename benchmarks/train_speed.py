"""Training throughput: pkdn's real training loop beside the bare optimiser step of the same model, in one run.

    python benchmarks/train_speed.py [--device cpu|cuda] [--preset lite] [--batch 8] [--steps 24]
        [--amp none|bf16|fp16] [--channels-last] [--workers 0] [--stages teacher,student] [--data PREPARED]

Bare step: :mod:`pkdn.train.steps` (the stage's loss, backward, Adam) on one
batch already on the device, nothing else. Loop: :func:`pkdn.train.train`
itself on a prepared data set (data loading, host-to-device copies, losses,
logging, the progress bar's bookkeeping, a checkpoint every ``--ckpt-every``
steps); its images/s are read from the run's log lines after the first
(warm-up) interval, validation excluded. The student stage is the distilled
step (an untrained teacher of the same preset runs beside it, as in the first
epochs of a real run). Without ``--data`` a synthetic data set of random
images is written to a temporary folder (speed does not depend on the pixels).
The bare step is timed before and after the loop and averaged, so a machine
whose load changes during the run shows it as a gap between the two.

Two clocks: wall time (what a dedicated machine sees) and this process's CPU
time (time.process_time, all its threads). On a CPU shared with other jobs the
wall-clock figures measure the scheduler as much as pkdn; the CPU-time ratio
says how much work the loop adds to the step. With loader workers (separate
processes) or a GPU, read the wall-clock ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `pkdn train` runs (set before torch loads OpenMP)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from pkdn.checkpoint import save_model
from pkdn.config import TrainConfig, config_from_dict
from pkdn.device import resolve_device
from pkdn.models import build_model
from pkdn.priors.labels import num_channels
from pkdn.train import train
from pkdn.train.steps import Optimizer, student_step, teacher_step


def synthetic_data(root: Path, n_train: int, hr: int = 128, scale: int = 8) -> Path:
    """A prepared-data folder of random faces (hr/, lr/, parsing/ per split)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", 4)):
        for kind in ("hr", "lr", "parsing"):
            (root / split / kind).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = Image.fromarray(rng.integers(0, 256, (hr, hr, 3), dtype=np.uint8))
            img.save(root / split / "hr" / f"{i:05d}.png", compress_level=1)
            img.resize((hr // scale, hr // scale), Image.Resampling.BICUBIC).save(root / split / "lr" / f"{i:05d}.png")
            Image.fromarray(rng.integers(0, 19, (hr, hr), dtype=np.uint8), "L").save(
                root / split / "parsing" / f"{i:05d}.png", compress_level=1
            )
    return root


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_step_rate(cfg: TrainConfig, device: torch.device, teacher_file: str | None, steps: int) -> tuple[float, float]:
    """Images/s (wall clock, CPU time) of the stage's step alone on a batch resident on the device."""
    torch.manual_seed(0)
    parsing_ch = num_channels(cfg.data.parsing)
    kw = {"parsing_channels": parsing_ch} if cfg.stage == "teacher" else {}
    net = build_model(cfg.stage, cfg.model.preset, **kw).to(device)
    teacher = None
    if teacher_file:
        from pkdn.checkpoint import load_model

        teacher = load_model(teacher_file, map_location=device).requires_grad_(False).eval()
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
        teacher = teacher.to(memory_format=torch.channels_last) if teacher is not None else None
    optim = Optimizer(net, cfg, device.type)
    b = cfg.batch_size
    batch = {
        "lr": torch.rand(b, 3, 16, 16, device=device),
        "hr": torch.rand(b, 3, 128, 128, device=device),
        "parsing": torch.rand(b, parsing_ch, 128, 128, device=device),
    }
    lam = cfg.distill.weights(0.0)

    def one() -> None:
        with optim.autocast():
            if cfg.stage == "teacher":
                loss, _ = teacher_step(net, batch)
            else:
                loss, _ = student_step(net, batch, teacher, *lam)
        optim.step(loss)

    for _ in range(2):  # warm-up
        one()
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        one()
    _sync(device)
    return steps * b / (time.perf_counter() - t0), steps * b / (time.process_time() - c0)


def loop_rate(cfg: TrainConfig) -> tuple[float, float]:
    """Images/s (wall clock, CPU time) of :func:`pkdn.train.train` over its log intervals after the first."""
    out = train(cfg, progress=True)
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    timed = [e for e in events if e["event"] == "train"][1:]
    if not timed:
        raise SystemExit("too few steps for a timed log interval; raise --steps")
    images = len(timed) * cfg.log_every * cfg.batch_size
    wall = sum(cfg.log_every * cfg.batch_size / e["images_per_s"] for e in timed)
    return images / wall, images / sum(e["host_cpu_s"] for e in timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--preset", default="lite")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=24, help="timed steps (the loop runs one more log interval)")
    ap.add_argument("--log-every", type=int, default=None, help="loop log interval (default steps / 3)")
    ap.add_argument("--ckpt-every", type=int, default=None, help="loop checkpoint interval (default steps / 2)")
    ap.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers of the loop")
    ap.add_argument("--stages", default="teacher,student", help="comma-separated: teacher, student")
    ap.add_argument("--data", default=None, help="a prepared data folder (default: synthetic, in a temp folder)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    log_every = args.log_every or max(1, args.steps // 3)
    ckpt_every = args.ckpt_every or max(1, args.steps // 2)
    print(
        f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, preset {args.preset}, "
        f"batch {args.batch}, amp {args.amp}, channels-last {args.channels_last}, {args.workers} loader workers; "
        f"loop: log every {log_every}, checkpoint every {ckpt_every} steps"
    )
    print("| stage | clock | bare step (before, after) | loop | loop / bare |")
    print("| --- | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        data = Path(args.data) if args.data else synthetic_data(tmp / "data", n_train=max(64, args.batch * 8))
        teacher_file = str(tmp / "teacher.safetensors")
        torch.manual_seed(1)
        save_model(teacher_file, build_model("teacher", args.preset))
        for stage in args.stages.split(","):
            cfg = config_from_dict(
                {
                    "stage": stage,
                    "out_dir": str(tmp / f"run_{stage}"),
                    "model": {"preset": args.preset},
                    "teacher": teacher_file if stage == "student" else None,
                    "data": {"root": str(data), "num_workers": args.workers, "val_limit": 4},
                    "batch_size": args.batch,
                    "steps": args.steps + log_every,
                    "log_every": log_every,
                    "val_every": 10**9,
                    "ckpt_every": ckpt_every,
                    "device": str(device.type),
                    "amp": args.amp,
                    "channels_last": args.channels_last,
                    "distill": {"schedule": "constant"},
                }
            )
            before = bare_step_rate(cfg, device, cfg.teacher, args.steps)
            loop = loop_rate(cfg)
            after = bare_step_rate(cfg, device, cfg.teacher, args.steps)
            name = f"{args.preset} {stage}" + (" (distilled)" if stage == "student" else "")
            for i, clock in enumerate(("wall", "CPU time")):
                bare = (before[i] + after[i]) / 2
                print(
                    f"| {name} | {clock} | {bare:.1f} images/s ({before[i]:.1f}, {after[i]:.1f}) | "
                    f"{loop[i]:.1f} images/s | {100 * loop[i] / bare:.0f} % |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
