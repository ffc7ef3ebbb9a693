"""Pack run folders into at most 8 tar files of under 15 MiB for the device tool's $OUT.

Most important first: the folders in the order given, each run's model, config and
log before any resumable state (``last.pt``, which only a paused run has), so that
what does not fit is what can be retrained. A finished run's ``last.pt``, every
``last.safetensors`` (the model at the last step; ``best`` is what is used) and
TensorBoard files stay behind::

    python scripts/gpu_collect.py OUT FOLDER...
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

LIMIT, MAX_FILES = 15 * 2**20, 7  # one of the 8 files is the session log


def _finished(run: Path) -> bool:
    log = run / "log.jsonl"
    return log.is_file() and any(json.loads(line)["event"] == "end" for line in log.read_text().splitlines() if line)


def main(out: Path, folders: list[Path]) -> None:
    files, paused = [], []
    for folder in folders:
        runs = [folder] if (folder / "config.yaml").is_file() else sorted(p for p in folder.iterdir() if p.is_dir())
        runs.sort(key=lambda r: not r.name.startswith("teacher"))  # students are worthless without their teacher
        for run in runs:
            files += [p for p in sorted(run.glob("*")) if p.is_file() and p.name not in ("last.pt", "last.safetensors")]
            if (run / "last.pt").is_file() and not _finished(run):
                paused.append(run / "last.pt")
        files += [p for p in sorted(folder.iterdir()) if p.is_file()] if folder not in runs else []
    files += paused
    packs: list[list[Path]] = [[]]
    sizes = [0]
    for p in files:
        n = p.stat().st_size
        if sizes[-1] + n > LIMIT:
            if len(packs) == MAX_FILES:
                print(f"left behind (no room): {p}")
                continue
            packs.append([])
            sizes.append(0)
        packs[-1].append(p)
        sizes[-1] += n
    for i, group in enumerate(packs):
        with tarfile.open(out / f"runs{i}.tar", "w") as tar:
            for p in group:
                tar.add(p)
        print(f"runs{i}.tar: {len(group)} files, {sizes[i] / 2**20:.1f} MiB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:] if Path(a).exists()])
