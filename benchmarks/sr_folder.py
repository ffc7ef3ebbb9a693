"""End-to-end `pkdn sr` speed on a folder of 1,000 16 x 16 faces (start-up and PNG I/O included).

    python benchmarks/sr_folder.py [--model CKPT] [--n 1000] [--batch-size N] [--precision auto|fp32|bf16]

Makes the LR faces from ../shared/data/celeba/test with the project's
degradation (cached in the system temp folder), then times one
`python -m pkdn.cli sr FOLDER -o OUT` process from launch to exit. Without a
shipped model or --model, an untrained lite student is saved and used (speed
does not depend on the weights).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_faces(n: int) -> Path:
    sys.path.insert(0, str(REPO / "src"))
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import celeba_root
    from pkdn.data.degrade import hr_from_image, load_rgb, lr_from_hr

    folder = Path(tempfile.gettempdir()) / f"pkdn_bench_lr16_{n}"
    if folder.is_dir() and len(list(folder.glob("*.png"))) == n:
        return folder
    folder.mkdir(exist_ok=True)
    files = sorted((celeba_root() / "test").glob("*.jpg"))
    files = (files * (n // len(files) + 1))[:n]
    for i, f in enumerate(files):
        lr_from_hr(hr_from_image(load_rgb(f))).save(folder / f"{i:05d}_{f.stem}.png")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="student model file (default: shipped, else an untrained lite student)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=None, help="default: pkdn sr's own")
    ap.add_argument("--precision", default=None, help="default: pkdn sr's own (auto)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    faces = make_faces(args.n)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryDirectory() as d:
        model = args.model
        if model is None:
            from pkdn import checkpoint

            if not checkpoint.SHIPPED.exists():
                from pkdn.models import build_model

                model = os.path.join(d, "lite_untrained.safetensors")
                checkpoint.save_model(model, build_model("student", "lite"))
        cmd = [sys.executable, "-m", "pkdn.cli", "sr", str(faces), "-o", os.path.join(d, "out"), "--no-progress"]
        for flag, value in (("--batch-size", args.batch_size), ("--precision", args.precision)):
            if value is not None:
                cmd += [flag, str(value)]
        if model:
            cmd += ["--model", model]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        written = len(list(Path(d, "out").glob("*.png")))
    print(r.stdout.strip())
    if r.returncode:
        print(r.stderr.strip())
    print(
        f"pkdn sr: {written} faces in {dt:.1f} s end to end = {written / dt:.1f} faces/s "
        f"(model: {args.model or ('shipped' if model is None else 'untrained lite student')}, "
        f"batch {args.batch_size or 'default'}, exit {r.returncode})"
    )


if __name__ == "__main__":
    main()
