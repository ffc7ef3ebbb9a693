"""Build a routed model: the shipped `lite` and `real` students and a gate fitted on the train faces.

    python scripts/fit_gate.py prepared/celeba runs/routed.safetensors --limit 4000
    python scripts/fit_gate.py prepared/celeba runs/photo.safetensors --clean runs/pose_student/last.safetensors \
        --gate auto     # another clean student behind the gate already fitted for `auto`: no fit, val report only

Each train face is used twice, with its clean LR and with one draw of pkdn's degradation
(`pkdn.data.degrade`, its default ranges, seed 1); 10 % of the faces are held out to report the fit.
The val faces (clean, and degraded with seed 2) are reported too. The students stay as shipped:
only the gate (a few thousand parameters) is fitted (pkdn.train.gate). Prints the mean RGB PSNR of
each student, of the routed blend and of the per-face oracle blend, on clean and degraded faces.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pkdn.checkpoint import UPRIGHT_ONLY, load_model, save_model, upright_only
from pkdn.models.routed import Routed
from pkdn.train.gate import fit_gate, gate_data, gate_report, split_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="a `pkdn prepare` folder (train and val splits)")
    ap.add_argument("out", help="the routed model file to write")
    ap.add_argument("--clean", default="lite", help="the student for clean faces (shipped name or file)")
    ap.add_argument("--degraded", default="real", help="the student for degraded faces")
    ap.add_argument("--limit", type=int, default=4000, help="train faces used (each clean and degraded)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small", help="a clean student for small inputs (shipped name or file), with --small-max-side")
    ap.add_argument("--small-max-side", type=int, default=0, help="inputs of at most this side take --small")
    ap.add_argument("--gate", help="reuse the gate of this routed model (shipped name or file) instead of fitting one")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    clean, degraded = load_model(a.clean), load_model(a.degraded)
    t0 = time.time()
    val = gate_data(clean, degraded, a.data, "val", None, seed=2)
    if a.gate:  # the gate judges how degraded an LR face is, which does not depend on the students behind it
        gate = load_model(a.gate).gate
        print(f"blend terms of {len(val.lr)} val LR faces in {time.time() - t0:.0f} s; gate taken from {a.gate}")
        report = {"val": gate_report(gate, val)}
    else:
        data = gate_data(clean, degraded, a.data, "train", a.limit, seed=1)
        print(f"blend terms of {len(data.lr)} train and {len(val.lr)} val LR faces in {time.time() - t0:.0f} s")
        fit, held = split_data(data, 0.1, a.seed)
        gate = fit_gate(fit, width=a.width, steps=a.steps, seed=a.seed)
        report = {name: gate_report(gate, d) for name, d in (("fit", fit), ("held-out", held), ("val", val))}
    print(json.dumps(report, indent=1))
    fitted = {"gate_from": a.gate} if a.gate else {"train_faces": a.limit, "steps": a.steps, "seed": a.seed}
    extra = {"gate": {"clean": a.clean, "degraded": a.degraded, **fitted, "val_report": report["val"]}}
    # the blend is only as turn-proof as its least turn-proof student (checkpoint.UPRIGHT_ONLY)
    extra[UPRIGHT_ONLY] = any(upright_only(p) for p in (a.clean, a.degraded, a.small) if p)
    small = None
    if a.small:
        small = load_model(a.small)
        extra["gate"].update(small=a.small, small_max_side=a.small_max_side)
    save_model(a.out, Routed(clean, degraded, gate, small, a.small_max_side).eval(), extra=extra)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
