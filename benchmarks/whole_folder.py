"""`pkdn sr --whole` on a folder of photos: the files driver (:mod:`pkdn.batch`) against the loop it replaced
(each photo read, processed and written in turn); time and the equality of their outputs.

    python benchmarks/whole_folder.py [--photos 30] [--model NAME] [--repeat 1] [--cli REPO ...]

Photos: ``--photos`` synthetic group photos (160 x 120, 4-7 real CelebA *test* faces each at random
sizes and tilts, pasted on scikit-image's non-face samples; :func:`pkdn.faces.synthetic.make_photo`,
seed 0), written once to the system temp folder. In one process, with one loaded pipeline, it times
alternately (``--repeat`` rounds) over the whole folder:

* ``old-style``: what `pkdn sr --whole` did before the driver: each photo decoded in turn, windows of 4
  photos through ``WholePhotoSR.process``, each result written before the next photo is read;
* ``driver``: :func:`pkdn.faces.files.whole_files` (:mod:`pkdn.batch`), what `pkdn sr --whole` runs now
  (on a CPU without reader / writer threads: :func:`pkdn.faces.files.photo_io_threads`);
* ``driver+4``: the same with 4 reader and 4 writer threads (what it does where the network is on a GPU);

and prints wall and CPU seconds of each, their ratio, and the largest pixel difference between their
PNGs (and whether their JSON files are equal). ``--cli REPO ...``: also time one
``python -m pkdn.cli sr --whole FOLDER -o OUT --no-progress`` process per checkout (start-up included;
``--cli . /tmp/main-base`` compares this tree with a ``git worktree add /tmp/main-base main``), alternately,
and compare their outputs the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: see docs/evaluation.md

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

OLD_WINDOW = 4  # photos per WholePhotoSR.process call in the loop the driver replaced


def make_photos(n: int) -> Path:
    """``n`` deterministic synthetic group photos (cached in the temp folder)."""
    from conftest import celeba_root
    from pkdn.faces.synthetic import background_images, make_photo

    folder = Path(tempfile.gettempdir()) / f"pkdn_bench_photos_{n}"
    if folder.is_dir() and len(list(folder.glob("*.png"))) == n:
        return folder
    folder.mkdir(exist_ok=True)
    faces = sorted((celeba_root() / "test").glob("*.jpg"))[:500]
    bgs, rng = background_images(), np.random.default_rng(0)
    for i in range(n):
        _, lr, _ = make_photo(faces, bgs[i % len(bgs)], rng)
        lr.save(folder / f"photo_{i:02d}.png")
    return folder


def old_style(pipe, folder: Path, out: Path) -> None:
    """The loop `pkdn sr --whole` ran before the driver: decode, process 4 photos, write, in turn."""
    from pkdn.faces.files import write_result
    from pkdn.imageio import list_images, load_rgb

    out.mkdir(parents=True, exist_ok=True)
    batch: list = []
    for f in [*list_images(folder), None]:
        if f is not None:
            batch.append((f, load_rgb(f, min_size=8)))
        if batch and (f is None or len(batch) >= OLD_WINDOW):
            for (src, _), res in zip(batch, pipe.process([im for _, im in batch])):
                write_result(res, src, out, False)
            batch = []


def compare(a: Path, b: Path) -> str:
    """Largest absolute pixel difference between the PNGs of two output folders, and JSON equality."""
    diff, same_json, n = 0, True, 0
    for p in sorted(a.glob("*.png")):
        x = np.asarray(Image.open(p), np.int16)
        y = np.asarray(Image.open(b / p.name), np.int16)
        diff = max(diff, int(np.abs(x - y).max()))
        ja, jb = json.loads(p.with_suffix(".json").read_text()), json.loads((b / f"{p.stem}.json").read_text())
        ja.pop("input"), jb.pop("input")
        same_json &= ja == jb
        n += 1
    return f"{n} photos compared: max abs pixel difference {diff}, JSON {'equal' if same_json else 'DIFFERENT'}"


def timed(fn, *args, **kwargs) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn(*args, **kwargs)`` (CPU: this process's, all threads)."""
    t, c = time.perf_counter(), time.process_time()
    fn(*args, **kwargs)
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=30)
    ap.add_argument("--model", default=None, help="default: whole-photo mode's default model")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of old-style / driver, alternately")
    ap.add_argument("--cli", nargs="*", default=None, metavar="REPO", help="also time `pkdn sr --whole` of these")
    ap.add_argument("--skip-inprocess", action="store_true", help="only the --cli timings")
    args = ap.parse_args()
    folder = make_photos(args.photos)
    print(f"{args.photos} photos in {folder}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as d:
        if not args.skip_inprocess:
            from pkdn.faces import WholePhotoSR
            from pkdn.faces.files import whole_files

            pipe = WholePhotoSR(model=args.model)
            print(f"model {pipe.model_name}, {pipe.restorer.path}")
            times: dict[str, list[tuple[float, float]]] = {"old-style": [], "driver": [], "driver+4": []}
            for r in range(args.repeat):
                o_old, o_new = Path(d, f"old{r}"), Path(d, f"new{r}")
                times["old-style"].append(timed(old_style, pipe, folder, o_old))
                times["driver"].append(timed(whole_files, pipe, [folder], o_new))
                times["driver+4"].append(timed(whole_files, pipe, [folder], Path(d, f"thr{r}"), io_threads=4))
                for k, v in times.items():
                    print(f"  round {r + 1}: {k:9s} {v[-1][0]:7.1f} s wall, {v[-1][1]:7.1f} s CPU")
            best = {k: min(v) for k, v in times.items()}
            print(
                f"old-style {best['old-style'][0]:.1f} s, driver {best['driver'][0]:.1f} s (best of {args.repeat}): "
                f"{best['old-style'][0] / best['driver'][0]:.2f}x wall; CPU {best['old-style'][1]:.1f} s vs "
                f"{best['driver'][1]:.1f} s; driver+4 {best['driver+4'][0]:.1f} s wall, {best['driver+4'][1]:.1f} s CPU"
            )
            print(f"old-style vs driver: {compare(Path(d, 'old0'), Path(d, 'new0'))}")
            print(f"old-style vs driver+4: {compare(Path(d, 'old0'), Path(d, 'thr0'))}")
        for i, repo in enumerate(args.cli or []):
            env = {**os.environ, "PYTHONPATH": str(Path(repo).resolve() / "src")}
            out = Path(d, f"cli{i}")
            cmd = [sys.executable, "-m", "pkdn.cli", "sr", "--whole", str(folder), "-o", str(out), "--no-progress"]
            cmd += ["--model", args.model] if args.model else []
            wall, _ = timed(subprocess.run, cmd, env=env, check=True, capture_output=True)
            print(f"pkdn sr --whole of {repo}: {wall:.1f} s end to end ({len(list(out.glob('*.png')))} photos)")
            if i:
                print(f"  vs {args.cli[0]}: {compare(Path(d, 'cli0'), out)}")


if __name__ == "__main__":
    main()
