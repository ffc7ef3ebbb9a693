"""Estimate an ablation's CPU time from the measured step times of the shipped lite runs (an estimate, not a run).

    python scripts/ablation_estimate.py configs/ablation_lite.yaml

Seconds per step are read from the reference runs' log.jsonl (wall time between
logged events, validation included, pauses between invocations left out):
teachers from checkpoints/lite_teacher (the full teacher; the variants without
FFB / PFB are scaled by their GFLOPs, an assumption), distilled students from
checkpoints/lite_student (separately for the steps with the teacher's losses on
and the steps with L_SR alone), no-distillation students from
checkpoints/lite_student_nokd. Valid only for what those runs measured: the
lite preset, batch 8 (scaled by the faces a step), bf16 + channels-last on this project's 2-core CPU.
Runs already finished under the ablation's out_dir are not counted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pkdn.ablation import load_ablation, plan, status
from pkdn.ablation.spec import NO_DISTILL
from pkdn.config import load_config
from pkdn.models import build_model
from pkdn.models.summary import gflops

REF = Path("checkpoints")


def step_seconds(run: Path, boundary: int | None = None) -> tuple[float, float]:
    """Mean seconds per step up to ``boundary`` and after it (both the same without one)."""
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    time = {True: 0.0, False: 0.0}
    steps = {True: 0, False: 0}
    prev = None
    for e in events:
        if e["event"] == "start":
            prev = e
            continue
        if prev is None:
            continue
        early = boundary is None or e["step"] <= boundary
        time[early] += e["time"] - prev["time"]
        steps[early] += e["step"] - prev["step"]
        prev = e
    if boundary is None:
        return (time[True] / steps[True],) * 2
    return time[True] / steps[True], time[False] / steps[False]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    acfg = load_ablation(ap.parse_args().config)
    per_epoch = len(list((Path(acfg.data_root) / "train" / "hr").glob("*.png"))) // 8
    t_teacher, _ = step_seconds(REF / "lite_teacher")
    ref_decay = load_config(REF / "lite_student" / "config.yaml").distill.decay_epochs
    t_kd, t_sr = step_seconds(REF / "lite_student", int(ref_decay * per_epoch))
    t_nokd, _ = step_seconds(REF / "lite_student_nokd")
    full = gflops(build_model("teacher", "lite"))
    print(
        f"measured s/step: teacher {t_teacher:.3f}; distilled student {t_kd:.3f} with the teacher's losses, "
        f"{t_sr:.3f} after; no-distillation student {t_nokd:.3f} ({per_epoch} steps an epoch)"
    )
    total = 0.0
    for run in plan(acfg):
        c = run.cfg
        per_step = c.batch_size / 8  # the reference runs' steps were 8 faces; CPU time grows with the faces
        if status(run) == "done":
            print(f"{run.name:24s} finished")
            continue
        if run.is_teacher:
            scale = gflops(build_model("teacher", c.model.preset, **c.model.overrides)) / full
            secs = c.steps * t_teacher * scale * per_step
        elif run.variant == NO_DISTILL:
            secs = c.steps * t_nokd * per_step
        else:
            kd = min(c.steps, int(c.distill.decay_epochs * per_epoch / per_step))
            secs = (kd * t_kd + (c.steps - kd) * t_sr) * per_step
        total += secs
        print(f"{run.name:24s} {c.steps:6d} steps  ~{secs / 3600:.2f} h")
    print(f"estimated total: ~{total / 3600:.1f} h of CPU training (plus ~1 min per run scoring the test faces)")


if __name__ == "__main__":
    main()
