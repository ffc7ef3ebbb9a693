"""Pack a prepared dataset small enough to travel to a GPU machine with the checkout, and unpack it there.

Why: a remote machine may receive only the checkout and a few files beside it (64 MiB in all), not
``../shared``, and the machine has no MediaPipe to compute parsing maps. The
prepared train + val splits are 433 MB of PNG; packed they are about 48 MB:

- HR faces as WebP quality 90 (about 3.9 KB a face, 40 dB PSNR against the PNG:
  far below the x8 model's error, about 26 dB), because that is what fits;
- parsing maps losslessly, all of a split's label maps stacked and LZMA-compressed
  (about 0.4 KB a face);
- LR faces are not carried: ``unpack`` remakes them from the HR face with the
  prepare step's own ``lr_from_hr`` (``--hr-only`` writes the HR faces alone, for a
  run that degrades on the fly without distillation: it needs neither, and the
  unpacking is faster).

Scores are never taken on packed data: the test split stays home, and every
model trained there is evaluated here on the original PNGs.

    python scripts/carry_data.py pack prepared/celeba gpupack --splits train val
    python scripts/carry_data.py unpack gpupack prepared/celeba      # on the GPU machine
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from pkdn.data.prepare import lr_from_hr
from pkdn.fileio import atomic_write


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def pack(prepared: Path, out: Path, splits: list[str], quality: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(prepared / "config.json", out / "config.json")
    for split in splits:
        names = sorted(p.stem for p in (prepared / split / "hr").glob("*.png"))
        blobs, labels = [], []
        for n in names:
            buf = io.BytesIO()
            Image.open(prepared / split / "hr" / f"{n}.png").convert("RGB").save(buf, "WEBP", quality=quality)
            blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
            labels.append(np.asarray(Image.open(prepared / split / "parsing" / f"{n}.png")))
        stack = np.stack(labels)
        arrays = {
            "names": np.array(names),
            "webp": np.concatenate(blobs),
            "offsets": np.cumsum([0] + [len(b) for b in blobs]),
            "parsing_shape": np.array(stack.shape),
            "parsing_lzma": np.frombuffer(lzma.compress(stack.tobytes(), preset=9), np.uint8),
        }
        atomic_write(out / f"{split}.npz", lambda tmp, a=arrays: _savez(tmp, a))
        size = (out / f"{split}.npz").stat().st_size
        print(f"{split}: {len(names)} faces, {size / 1e6:.1f} MB ({size / len(names) / 1e3:.2f} KB a face)")


def _write(job: tuple[Path, str, bytes, np.ndarray | None, int]) -> None:
    folder, name, webp, lab, scale = job
    hr = Image.open(io.BytesIO(webp)).convert("RGB")
    hr.save(folder / "hr" / f"{name}.png")
    if lab is not None:
        lr_from_hr(hr, scale).save(folder / "lr" / f"{name}.png")
        Image.fromarray(lab, "L").save(folder / "parsing" / f"{name}.png")


def unpack(packed: Path, out: Path, workers: int, hr_only: bool = False) -> None:
    config = json.loads((packed / "config.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for npz in sorted(packed.glob("*.npz")):
        split = npz.stem
        with np.load(npz) as z:
            names, webp, off = list(z["names"]), z["webp"], z["offsets"]
            labels = np.frombuffer(lzma.decompress(z["parsing_lzma"].tobytes()), np.uint8)
            labels = labels.reshape(tuple(z["parsing_shape"]))
        folder = out / split
        for kind in ("hr",) if hr_only else ("hr", "lr", "parsing"):
            (folder / kind).mkdir(parents=True, exist_ok=True)
        jobs = [
            (folder, str(n), webp[off[i] : off[i + 1]].tobytes(), None if hr_only else labels[i], int(config["scale"]))
            for i, n in enumerate(names)
        ]
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write, jobs, chunksize=64))
        print(f"{split}: {len(names)} faces unpacked into {folder}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("prepared", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--splits", nargs="+", default=["train", "val"])
    p.add_argument("--quality", type=int, default=90)
    u = sub.add_parser("unpack")
    u.add_argument("packed", type=Path)
    u.add_argument("out", type=Path)
    u.add_argument("--workers", type=int, default=8)
    u.add_argument("--hr-only", action="store_true", help="write the HR faces alone (no LR, no parsing maps)")
    a = ap.parse_args()
    if a.cmd == "pack":
        pack(a.prepared, a.out, a.splits, a.quality)
    else:
        unpack(a.packed, a.out, a.workers, a.hr_only)


if __name__ == "__main__":
    main()
