"""Table 2 as Markdown: teachers and students beside bicubic, effects paired face by face, seed spread.

A +0.1 dB effect means little without its noise, so the student table shows
two kinds: the per-face standard error of each paired difference (how sure
the mean over these test faces is) and, where a student was trained with
several seeds, the run-to-run spread (how much a different seed moves it).
A no-distillation student of a second seed scored against the first is the
noise floor of every "distillation helps" row.
"""

from __future__ import annotations

from statistics import mean

from pkdn.ablation.scores import Scores
from pkdn.ablation.spec import NO_DISTILL, AblationConfig, Run
from pkdn.metrics import PROTOCOL, paired_difference

PAPER_TABLE2 = (
    "paper (its CelebA split, `paper`-size PKDN): without PFB and FFB 27.31 / 0.7961, "
    "without FFB 27.48 / 0.8036, PKDN 27.56 / 0.8062"
)


def teacher_label(run: Run) -> str:
    o = run.cfg.model.overrides
    pfb, ffb = o.get("use_pfb", True), o.get("use_ffb", True)
    what = {
        (True, True): "PFB + FFB (full)",
        (True, False): "without FFB",
        (False, False): "without PFB and FFB",
        (False, True): "without PFB",
    }[(pfb, ffb)]
    size = ", ".join(f"{k}={v}" for k, v in o.items() if k not in ("use_pfb", "use_ffb"))
    return f"{what}{', ' + size if size else ''} `{run.variant}`"


def _flat(changes: dict, prefix: str = "") -> list[str]:
    """{'distill': {'lambda_ts': 1.0}} -> ['distill.lambda_ts=1.0']: a try's overrides as --set would say them."""
    out = []
    for k, v in changes.items():
        out += _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}={v}"]
    return out


_NO_DISTILL_GROUP = "no-distillation students"


def _group(run: Run) -> str:
    """The seeds of one group share a spread line, named by this; a try never mixes with the plain students."""
    if run.trial:
        return f"try `{run.trial}`"
    return _NO_DISTILL_GROUP if run.variant == NO_DISTILL else f"students from `{run.variant}`"


def student_label(run: Run, teachers: dict[str, Run]) -> str:
    if run.variant == NO_DISTILL:
        return "no distillation"
    label = f"from {teacher_label(teachers[run.variant])}"
    return f"try `{run.trial}`: {label}, {' '.join(_flat(run.changes)) or 'no other change'}" if run.trial else label


def paired(a: Scores, b: Scores) -> tuple[float, float, float]:
    """Mean per-face PSNR difference a - b, its standard error, and the share of faces where a is higher."""
    if a.names != b.names:
        raise ValueError("paired scores must be of the same faces in the same order")
    return paired_difference(a.psnr, b.psnr)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _reference(run: Run, nokd: dict[int, Scores]) -> tuple[int, Scores] | None:
    """The no-distillation student a student is paired with: the same seed if trained, else the first one."""
    if not nokd:
        return None
    seed = run.cfg.seed if run.cfg.seed in nokd else next(iter(nokd))
    if run.variant == NO_DISTILL and seed == run.cfg.seed:
        first = next(iter(nokd))
        if first == seed:
            return None  # the reference itself
        seed = first
    return seed, nokd[seed]


def markdown(acfg: AblationConfig, runs: list[Run], scores: dict[str, Scores | None], bicubic: Scores) -> str:
    """The two tables and the seed summary; runs without scores are listed as not run yet."""
    bp, bs = bicubic.mean()
    n = len(bicubic.names)
    lines = [
        f"Teachers, given the parsing map of the HR face ({n} faces of `{acfg.data_root}/{acfg.eval_split}`):",
        "",
        _row(["teacher", "steps", "params", "PSNR (dB)", "SSIM", "Δ PSNR vs bicubic"]),
        _row(["---", "---:", "---:", "---:", "---:", "---:"]),
        _row(["bicubic", "—", "—", f"{bp:.2f}", f"{bs:.4f}", "—"]),
    ]
    for r in (r for r in runs if r.is_teacher):
        s = scores.get(r.name)
        lines.append(
            _row([teacher_label(r), str(r.cfg.steps), "not run yet", "", "", ""])
            if s is None
            else _row(
                [
                    teacher_label(r),
                    str(r.cfg.steps),
                    f"{s.params / 1e6:.3f} M",
                    f"{s.mean()[0]:.2f}",
                    f"{s.mean()[1]:.4f}",
                    f"{s.mean()[0] - bp:+.2f}",
                ]
            )
        )
    nokd = {
        r.cfg.seed: scores[r.name]
        for r in runs
        if not r.is_teacher and r.variant == NO_DISTILL and scores.get(r.name) is not None
    }
    lines += [
        "",
        (
            "Students, from the LR face alone (same faces); Δ vs no distillation is paired face by face "
            "against the no-distillation student of the seed named:"
        ),
        "",
        _row(
            [
                "student",
                "seed",
                "steps",
                "PSNR (dB)",
                "SSIM",
                "Δ PSNR vs bicubic",
                "Δ PSNR vs no distillation",
                "s.e.",
                "faces higher",
                "vs seed",
            ]
        ),
        _row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
        _row(["bicubic", "—", "—", f"{bp:.2f}", f"{bs:.4f}", "—", "", "", "", ""]),
    ]
    effects: dict[str, dict[int, float]] = {}
    teachers = {r.variant: r for r in runs if r.is_teacher}
    for r in (r for r in runs if not r.is_teacher):
        label = student_label(r, teachers)
        s = scores.get(r.name)
        if s is None:
            lines.append(_row([label, str(r.cfg.seed), str(r.cfg.steps), "not run yet"] + [""] * 6))
            continue
        p, ss = s.mean()
        ref = _reference(r, nokd)
        if ref is None:
            pair = ["reference" if r.variant == NO_DISTILL else "", "", "", ""]
        else:
            d, se, up = paired(s, ref[1])
            effects.setdefault(_group(r), {})[r.cfg.seed] = d
            pair = [f"{d:+.3f}", f"{se:.3f}", f"{100 * up:.0f} %", str(ref[0])]
        lines.append(_row([label, str(r.cfg.seed), str(r.cfg.steps), f"{p:.2f}", f"{ss:.4f}", f"{p - bp:+.2f}", *pair]))
    lines += [
        "",
        *_spread(runs, scores, effects),
        "",
        f"{PROTOCOL}.",
        f"For comparison, Table 2 of the {PAPER_TABLE2}.",
    ]
    return "\n".join(lines)


def _spread(runs: list[Run], scores: dict[str, Scores | None], effects: dict[str, dict[int, float]]) -> list[str]:
    """One line per student group with several finished seeds: their mean PSNRs and, for effects, their range."""
    out = []
    groups: dict[str, list[tuple[int, float]]] = {}
    for r in runs:
        if not r.is_teacher and scores.get(r.name) is not None:
            groups.setdefault(_group(r), []).append((r.cfg.seed, scores[r.name].mean()[0]))
    for who, vals in groups.items():
        if len(vals) < 2:
            continue
        ps = [p for _, p in vals]
        line = (
            f"- Seed spread, {who}: mean PSNR "
            + ", ".join(f"{p:.3f} (seed {s})" for s, p in vals)
            + f"; range {max(ps) - min(ps):.3f} dB."
        )
        eff = effects.get(who, {})
        if who != _NO_DISTILL_GROUP and len(eff) >= 2:
            line += (
                f" Paired effect vs no distillation: mean over seeds {mean(eff.values()):+.3f} dB "
                f"(per seed " + ", ".join(f"{d:+.3f}" for d in eff.values()) + ")."
            )
        out.append(line)
    return out or ["- Seed spread: fewer than two finished seeds in every group."]
