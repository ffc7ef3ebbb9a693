"""The paper's Helen column (Table 1, x8) in one command: FSRNet's 50 Helen test faces, beside the paper's numbers.

    python benchmarks/helen.py                          # builds the Helen x8 sets if missing; bicubic, lite, robust
    python benchmarks/helen.py --model helen=runs/helen_student/best.safetensors \\
        --model helen_nokd=runs/helen_student_nokd/best.safetensors --paired helen,helen_nokd

Test set: the 50 128 x 128 HR crops of FSRNet's ``data/helen_val_50_HR`` (DIC's and KDFSRNet's Helen test
faces); LR = PIL bicubic x8 of each HR, bicubic = PIL bicubic x8 of that LR, scored by ``pkdn.evaluate`` (Y
channel of BT.601, 8-px border, SR rounded to 8 bits; docs/evaluation.md). Rows: bicubic, the shipped models
as they are (``--shipped``: ``lite``, trained on CelebA alone, and ``robust``, trained on CelebA and on Helen and
AFW training faces at CelebA's framing, never at this test set's) and every ``--model NAME=FILE``.
``--paired A,B`` prints the per-face difference A - B (mean and its standard error over the faces), e.g. a
distilled student against its no-distillation twin.

Before scoring, the Helen x8 training set is built when ``DATA/helen_x8`` is missing, from the fetched
snapshots under ``SOURCES`` (docs/data.md, "Helen x8"): ``scripts/build_faces.py`` cuts the training
faces at the test faces' framing, then ``pkdn prepare`` adds LR faces and parsing maps. The commands are
printed as they run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from pkdn import evaluate, inference
from pkdn.metrics import paired_difference

REPO = Path(__file__).resolve().parents[1]
#: Table 1 of the paper, Helen x8 (PSNR dB, SSIM); it has no bicubic row.
PAPER = {
    "URDGN": (25.23, 0.7205),
    "FSRNet": (26.28, 0.7726),
    "DIC": (26.69, 0.7953),
    "SISN": (26.66, 0.7920),
    "SPARNet": (26.78, 0.7971),
    "KDFSRNet": (26.79, 0.7953),
    "PKDN": (26.84, 0.7982),
}
TEST = Path("fsrnet/data/helen_val_50_HR")


def build_commands(sources: Path, data: Path) -> list[list[str]]:
    """The commands that make ``data/helen_x8`` (train + val) from the fetched snapshots under ``sources``."""
    crops = data / "helen_x8_crops"
    return [
        [sys.executable, str(REPO / "scripts" / "build_faces.py"), str(crops),
         "--source", f"helen={sources / '300w-spinkoo/helen/trainset'}",
         "--exclude-photos", str(sources / "300w-spinkoo/helen/testset"),
         "--framing-of", str(sources / TEST),
         "--val-fraction", "0.05", "--same-person", "0.6",
         "--drop-faces", str(REPO / "benchmarks" / "data" / "helen_same_person.txt")],
        [sys.executable, "-m", "pkdn.cli", "prepare", str(crops / "crops"), str(data / "helen_x8"), "--split", "folders",
         "--no-progress"],
    ]  # fmt: skip


def build(sources: Path, data: Path) -> None:
    """Build the Helen x8 training set unless ``data/helen_x8`` already holds one."""
    if (data / "helen_x8" / "train" / "hr").is_dir():
        return
    for need in (sources / "300w-spinkoo/helen/trainset", sources / "300w-spinkoo/helen/testset", sources / TEST):
        if not need.is_dir():
            raise SystemExit(f"{need}: missing; fetch the snapshots first (docs/data.md, 'Helen x8')")
    for cmd in build_commands(sources, data):
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    shutil.copy(data / "helen_x8_crops" / "SOURCES.json", data / "helen_x8" / "SOURCES.json")


def table(res: evaluate.EvalResult) -> str:
    """The paper's Helen rows, then this repository's, in one Markdown table."""
    lines = ["| Method | source | PSNR (dB) | SSIM |", "| --- | --- | ---: | ---: |"]
    lines += [f"| {m} | paper, Table 1 | {p:.2f} | {s:.4f} |" for m, (p, s) in PAPER.items()]
    for m in res.methods:
        p, s = res.mean(m)
        lines.append(f"| {m} | measured | {p:.2f} | {s:.4f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=Path, default=REPO / "prepared" / "sources", help="the fetched snapshots")
    ap.add_argument("--data", type=Path, default=REPO / "prepared", help="where helen_x8(_crops) are built")
    ap.add_argument("--no-build", action="store_true", help="only score (the test set needs no building)")
    ap.add_argument("--shipped", nargs="*", default=["lite", "robust"], help="shipped models, as they are")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=FILE", help="a student file; repeatable")
    ap.add_argument("--paired", action="append", default=[], metavar="A,B", help="per-face difference A - B")
    ap.add_argument("--csv", type=Path, help="per-face scores")
    a = ap.parse_args(argv)

    models = {name: name for name in a.shipped}
    for spec in a.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            ap.error(f"--model {spec!r}: expected NAME=FILE")
        models[name] = path
    pairs = [p.split(",") for p in a.paired]
    for p in pairs:
        if len(p) != 2 or any(n not in (evaluate.BICUBIC, *models) for n in p):
            ap.error(f"--paired {','.join(p)}: expected A,B naming two rows of {[evaluate.BICUBIC, *models]}")
    if not a.no_build:
        build(a.sources, a.data)

    test = a.sources / TEST
    res, _ = evaluate.evaluate({n: inference.load(m) for n, m in models.items()}, test)
    if len(res.names) != 50 or res.failed:
        raise SystemExit(f"{test}: expected the 50 Helen test faces, scored {len(res.names)}; failed {res.failed}")
    print(table(res))
    print(f"\n{len(res.names)} faces of {test}, x8 (LR = PIL bicubic x1/8 of the HR). Paper rows: its Table 1, Helen.")
    for x, y in pairs:
        dp, sp, higher = paired_difference(res.psnr[x], res.psnr[y])
        ds, ss, _ = paired_difference(res.ssim[x], res.ssim[y])
        better = 100 * higher
        print(
            f"- {x} - {y}: {dp:+.3f} dB (s.e. {sp:.3f}), SSIM {ds:+.4f} (s.e. {ss:.4f}); {x} better on {better:.0f}% of faces"
        )
    if a.csv:
        res.write_csv(a.csv)


if __name__ == "__main__":
    main()
