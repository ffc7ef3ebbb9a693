"""Ship a trained student: copy its best weights into the package and write the model card.

    python scripts/ship_model.py --run runs/lite_student [--baseline runs/lite_student_nokd] \
        [--data ../shared/data/celeba] [--dest src/pkdn/weights]
    python scripts/ship_model.py --name robust --run runs/robust_student --compare lite \
        --degraded runs/real_world_sets/full

Evaluates the student (and the --no-distill baseline, when given) beside
bicubic on the test split with the project's protocol, reads training time
and validation scores from the runs' log.jsonl (and the teacher's, found from
the student's config), writes ``DEST/pkdn_student_<name>.safetensors`` and
``DEST/MODEL_CARD_<name>.md`` atomically, and prints the card. ``--compare`` adds a shipped model's rows and
``--degraded`` a second table on a `pkdn degrade` folder.

A shipped run's record in ``checkpoints/`` keeps no copy of its weights: when the run folder lacks the
weights file, the package's ``pkdn_student_<name>.safetensors`` is that file and is used instead.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pkdn.checkpoint import UPRIGHT_ONLY, WEIGHTS, load_model, read_metadata, update_extra
from pkdn.config import load_config
from pkdn.evaluate import evaluate
from pkdn.fileio import atomic_write_bytes
from pkdn.metrics import paired_difference

BASELINE = "student without distillation"


def run_summary(run: Path) -> dict:
    """Steps, wall time (summed over invocations, resumes included) and best validation of a run folder."""
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    seconds, start = 0.0, None
    for e in events:
        if e["event"] == "start":
            start = e["time"]
        elif e["event"] in ("end", "pause") and start is not None:
            seconds, start = seconds + e["time"] - start, None
    vals = [e for e in events if e["event"] == "val"]
    best = max(vals, key=lambda e: e["psnr"]) if vals else None
    ends = [e for e in events if e["event"] in ("end", "pause")]
    return {
        "steps": ends[-1]["step"] if ends else 0,
        "hours": seconds / 3600,
        "best_val": best,
        "finished": bool(ends) and ends[-1]["event"] == "end",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="lite", help="the shipped model's name (lite, robust)")
    ap.add_argument("--run", type=Path, required=True, help="the student's run folder")
    ap.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="SHIPPED",
        help="a shipped model to score beside it (e.g. lite)",
    )
    ap.add_argument("--degraded", type=Path, help="a `pkdn degrade` folder to score on too")
    ap.add_argument("--baseline", type=Path, help="run folder of the --no-distill student (same budget)")
    ap.add_argument("--data", default="../shared/data/celeba", help="folder holding test/ face crops")
    ap.add_argument("--dest", type=Path, default=WEIGHTS)
    ap.add_argument(
        "--weights",
        default="best.safetensors",
        help="the run's file to ship: best.safetensors (best validation, default) or last.safetensors",
    )
    ap.add_argument("--note", default="", help="a sentence for the card's Training section (why these weights)")
    ap.add_argument(
        "--append",
        type=Path,
        action="append",
        default=[],
        help="a Markdown file added to the card as it is (e.g. a benchmark's saved table with its command)",
    )
    args = ap.parse_args()

    STUDENT = f"PKDN student ({args.name})"
    weights = f"pkdn_student_{args.name}.safetensors"
    cfg = load_config(args.run / "config.yaml")
    source = args.run / args.weights
    if not source.exists() and (WEIGHTS / weights).exists():
        source = WEIGHTS / weights
        print(f"{args.run}: no {args.weights}; using the shipped {source}")
    models = {STUDENT: load_model(source)}
    if args.baseline:
        models[BASELINE] = load_model(args.baseline / "best.safetensors")
    for name in args.compare:
        models[f"shipped {name}"] = load_model(name)
    result, _ = evaluate(models, args.data, split="test")
    extra_tables = []
    if args.degraded:
        deg, _ = evaluate(models, args.degraded)
        extra_tables = [f"## Degraded test faces ({args.degraded}, made by `pkdn degrade`)", "", deg.markdown(), ""]

    stu = run_summary(args.run)
    lines = [
        f"# pkdn shipped model `{args.name}`: PKDN student, `{cfg.model.preset}` preset"
        + "".join(f", {k} {v}" for k, v in sorted(cfg.model.overrides.items())),
        "",
        f"Weights: `{weights}` (safetensors, model config in its metadata); "
        f"`pkdn sr --model {args.name}` and `pkdn.checkpoint.load_model({args.name!r})` load it.",
        "",
        f"## Test split ({args.data}, x8, 16 x 16 -> 128 x 128)",
        "",
        result.markdown(),
        "",
        *extra_tables,
        f"Printed by `python scripts/ship_model.py --name {args.name} --run {args.run}"
        + (f" --baseline {args.baseline}" if args.baseline else "")
        + "".join(f" --compare {c}" for c in args.compare)
        + "".join(f" --append {a}" for a in args.append)
        + (f" --degraded {args.degraded}" if args.degraded else "")
        + (f" --weights {args.weights}" if args.weights != "best.safetensors" else "")
        + (' --note "..."' if args.note else "")
        + "`.",
        "",
    ]
    if args.baseline:
        m, se, higher = paired_difference(result.psnr[STUDENT], result.psnr[BASELINE])
        lines += [
            f"Distilled minus no-distillation, face by face: {m:+.3f} dB mean PSNR (standard error "
            f"{se:.3f} dB), higher on {100 * higher:.1f} % of the {len(result.psnr[STUDENT])} faces.",
            "",
        ]
    lines += [
        "## Training",
        "",
        f"- Student: {stu['steps']} steps of {cfg.batch_size} faces, {stu['hours']:.2f} h on the machine that ran it; "
        f"best validation ({stu['best_val']['images']} val faces) {stu['best_val']['psnr']:.2f} dB / {stu['best_val']['ssim']:.4f} "
        f"at step {stu['best_val']['step']}"
        + ("." if stu["finished"] else f"; paused at step {stu['steps']} of {cfg.steps}, not finished.")
        + f" Shipped: the run's `{args.weights}`.",
    ]
    if args.note:
        lines.append(f"- {args.note}")
    if cfg.teacher:
        trun = Path(cfg.teacher).parent
        if (trun / "log.jsonl").exists():
            t = run_summary(trun)
            lines.append(
                f"- Teacher (`{cfg.teacher}`): {t['steps']} steps, {t['hours']:.2f} h; best validation "
                f"with the HR parsing map {t['best_val']['psnr']:.2f} dB / {t['best_val']['ssim']:.4f}."
            )
    if args.baseline:
        b = run_summary(args.baseline)
        lines.append(
            f"- No-distillation baseline: {b['steps']} steps, {b['hours']:.2f} h; best validation "
            f"{b['best_val']['psnr']:.2f} dB / {b['best_val']['ssim']:.4f}."
        )
    if cfg.init:
        lines.append(f"- Started from `{cfg.init}` (fine-tuned, not trained from scratch).")
    lines += [
        "- Data: the 11,000 train faces of ../shared/data/celeba prepared by `pkdn prepare` (central square, "
        "PIL bicubic, MediaPipe landmark parsing maps for the teacher)"
        + "".join(f", and the train split of `{r}`" for r in cfg.data.extra_roots)
        + (" (docs/data.md)" if cfg.data.extra_roots else "")
        + (
            "; LR synthesised on the fly by the realistic degradation of `data.degrade` below (docs/degradation.md)."
            if cfg.data.degrade.enabled
            else "."
        ),
        "",
        "## Config (the student run's config.yaml)",
        "",
        "```yaml",
        (args.run / "config.yaml").read_text().rstrip(),
        "```",
        "",
    ]
    for extra in args.append:
        lines += [extra.read_text().rstrip(), ""]
    card = "\n".join(lines)
    meta = read_metadata(source)
    assert meta["model_config"]["kind"] == "student"
    atomic_write_bytes(args.dest / weights, source.read_bytes())
    if cfg.data.upright_only:  # the run's config decides; its weights file may lack the key
        update_extra(args.dest / weights, **{UPRIGHT_ONLY: True})
    atomic_write_bytes(args.dest / f"MODEL_CARD_{args.name}.md", card.encode())
    print(card)


if __name__ == "__main__":
    main()
