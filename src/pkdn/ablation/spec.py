"""The ablation's config and the runs it expands to.

One YAML file describes the whole of Table 2: a base config for every
teacher run and every student run (plain :class:`pkdn.config.TrainConfig`
mappings, so every switch of ``pkdn train`` is available), the teacher
variants (model overrides such as ``use_ffb: false``), for each teacher
variant and for ``none`` (no distillation), the seeds of its students, and
``tries``: students distilled another way (a teacher variant plus student
overrides such as a longer distillation), trained at the same student budget
and paired against the same no-distillation students. Every
run is an ordinary ``pkdn train`` run folder under ``out_dir``, so the one
training loop trains it, resumes it and records its exact config.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pkdn.config import TrainConfig, config_from_dict, load_yaml

NO_DISTILL = "none"  # the students key of the students trained on L_SR alone

#: Table 2's teachers, in the paper's order: its first row replaces PFBs by RCAGs and drops FFBs.
DEFAULT_TEACHERS: dict[str, dict[str, Any]] = {
    "no_pfb_ffb": {"use_pfb": False, "use_ffb": False},
    "no_ffb": {"use_ffb": False},
    "full": {},
}
DEFAULT_STUDENTS: dict[str, list[int]] = {"no_pfb_ffb": [0], "no_ffb": [0], "full": [0, 1], NO_DISTILL: [0, 1]}


@dataclass
class AblationConfig:
    out_dir: str = "runs/ablation"  # run folders, scores and the table
    data_root: str = "prepared/celeba"  # a `pkdn prepare` folder: trains every run, and its eval_split scores them
    eval_split: str = "test"  # scored with HR parsing maps for the teachers (<split>/parsing/)
    eval_limit: int | None = None  # score the first N faces only (None: all)
    teacher: dict[str, Any] = field(default_factory=dict)  # base TrainConfig of every teacher run
    student: dict[str, Any] = field(default_factory=dict)  # base TrainConfig of every student run
    teachers: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(DEFAULT_TEACHERS))
    students: dict[str, list[int]] = field(default_factory=lambda: copy.deepcopy(DEFAULT_STUDENTS))
    # name -> {teacher: variant, seeds: [...], student: {TrainConfig overrides}}: other ways to distil
    tries: dict[str, dict[str, Any]] = field(default_factory=dict)


#: What a try may not change: its identity in the table, and the student budget every row shares.
_FIXED_IN_TRIES = ("stage", "out_dir", "teacher", "seed", "steps", "batch_size", "init")


@dataclass
class Run:
    """One training run of the ablation: its folder name, its full config and what it is in the table."""

    name: str
    cfg: TrainConfig
    variant: str  # teacher variant (teachers and distilled students) or NO_DISTILL
    trial: str | None = None  # the name of its entry in `tries`, if it is one
    changes: dict[str, Any] = field(default_factory=dict)  # a try's student overrides, for the table

    @property
    def folder(self) -> Path:
        return Path(self.cfg.out_dir)

    @property
    def is_teacher(self) -> bool:
        return self.cfg.stage == "teacher"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Nested dict update that leaves ``base`` untouched."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def ablation_from_dict(data: dict[str, Any]) -> AblationConfig:
    """Build and check an :class:`AblationConfig`; unknown keys are errors, as in ``pkdn.config``."""
    if not isinstance(data, dict):
        raise ValueError("ablation config: the top level must be a mapping")
    names = {f.name for f in dataclasses.fields(AblationConfig)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"ablation config: unknown key(s) {unknown}; known: {sorted(names)}")
    acfg = AblationConfig(**data)
    if not acfg.teachers:
        raise ValueError("ablation config: `teachers` is empty")
    if NO_DISTILL in acfg.teachers:
        raise ValueError(f"ablation config: teachers.{NO_DISTILL}: the name is kept for students without distillation")
    for key, seeds in acfg.students.items():
        if key != NO_DISTILL and key not in acfg.teachers:
            raise ValueError(
                f"ablation config: students.{key}: no such teacher variant "
                f"(teachers: {sorted(acfg.teachers)}, or {NO_DISTILL!r} for no distillation)"
            )
        _check_seeds(f"students.{key}", seeds)
    for name, spec in acfg.tries.items():
        where = f"ablation config: tries.{name}"
        if not isinstance(spec, dict) or sorted(spec) != ["seeds", "student", "teacher"]:
            raise ValueError(f"{where}: a mapping of exactly teacher, seeds and student, not {spec!r}")
        if spec["teacher"] not in acfg.teachers:
            raise ValueError(f"{where}.teacher: no such teacher variant {spec['teacher']!r} ({sorted(acfg.teachers)})")
        _check_seeds(f"tries.{name}.seeds", spec["seeds"])
        fixed = sorted(set(spec["student"] or {}) & set(_FIXED_IN_TRIES))
        if fixed:
            raise ValueError(f"{where}.student: may not set {fixed} (a try keeps the students' budget and identity)")
    plan(acfg)  # every run's TrainConfig must validate now, not hours into the ablation
    return acfg


def _check_seeds(where: str, seeds: Any) -> None:
    if not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"ablation config: {where}: a list of distinct seeds, not {seeds!r}")


def load_ablation(path: str | os.PathLike, overrides: list[str] | None = None) -> AblationConfig:
    """Read an ablation YAML; ``overrides`` are ``KEY=VALUE`` strings (``student.steps=100``)."""
    return load_yaml(path, ablation_from_dict, overrides, what="ablation config")


def dump_ablation(acfg: AblationConfig) -> str:
    return yaml.safe_dump(asdict(acfg), sort_keys=False)


def _train_config(base: dict[str, Any], over: dict[str, Any], name: str) -> TrainConfig:
    cfg = config_from_dict(_merge(base, over))
    # Table 2 compares architectures and distillation from scratch on clean bicubic LR.
    if cfg.init:
        raise ValueError(f"ablation run {name}: `init` must be unset (every run trains from scratch)")
    if cfg.data.degrade.enabled:
        raise ValueError(f"ablation run {name}: data.degrade must be off (Table 2 is on bicubic LR)")
    return cfg


def plan(acfg: AblationConfig) -> list[Run]:
    """Every run of the ablation, teachers first (students need their weights)."""
    out = Path(acfg.out_dir)
    data = {"data": {"root": acfg.data_root}}
    runs = []
    for variant, model_over in acfg.teachers.items():
        name = f"teacher_{variant}"
        over = _merge(data, {"stage": "teacher", "out_dir": str(out / name), "model": {"overrides": dict(model_over)}})
        runs.append(Run(name, _train_config(acfg.teacher, over, name), variant))
    groups = [(f"student_{v}", v, None, seeds, {}) for v, seeds in acfg.students.items()]
    groups += [(f"try_{t}", s["teacher"], t, s["seeds"], s["student"] or {}) for t, s in acfg.tries.items()]
    for prefix, variant, trial, seeds, changes in groups:
        for seed in seeds:
            name = f"{prefix}_s{seed}"
            distill = variant != NO_DISTILL
            over = _merge(
                _merge(data, changes),
                {
                    "stage": "student",
                    "out_dir": str(out / name),
                    "seed": seed,
                    "teacher": str(out / f"teacher_{variant}" / "best.safetensors") if distill else None,
                    "distill": {"enabled": distill},
                },
            )
            runs.append(Run(name, _train_config(acfg.student, over, name), variant, trial, dict(changes)))
    return runs


def teacher_of(run: Run, runs: list[Run]) -> Run | None:
    """The teacher run a distilled student needs (None for teachers and no-distillation students)."""
    if run.is_teacher or not run.cfg.teacher:
        return None
    return next(r for r in runs if r.is_teacher and r.variant == run.variant)
