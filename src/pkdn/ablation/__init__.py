"""Table 2 in one command: teacher variants, a student distilled from each, no-distillation students, seeds.

``run_ablation`` walks the runs of :func:`pkdn.ablation.spec.plan` in order.
A finished run (its ``log.jsonl`` ends with an ``end`` event at its step
count) is reused after checking that it was trained with the same
experiment; an unfinished one is continued with ``pkdn.train.loop.train``'s
own resume; a new one is started. Each finished run is scored once on the
test faces (``scores.json``) and stripped to what the table and a student
need (``best.safetensors``, ``config.yaml``, ``log.jsonl``, ``scores.json``)
so the finished ablation stays small enough to keep in the repository.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from pkdn.ablation.scores import Scores, cached, eval_names, score
from pkdn.ablation.spec import AblationConfig, Run, dump_ablation, load_ablation, plan, teacher_of
from pkdn.ablation.table import markdown
from pkdn.config import TrainConfig, config_from_dict
from pkdn.fileio import atomic_write

__all__ = ["AblationConfig", "load_ablation", "plan", "run_ablation", "status"]

# Where things are and what runs them, not what is trained: a finished run may have moved.
_LOCATIONS = {"out_dir", "teacher", "init", "device", "threads", "data.root", "data.num_workers"}
# What a finished run no longer needs: resumable state and TensorBoard files (the log has the same scalars).
_DROP = ("last.pt", "last.safetensors", "tb")


def _events(run: Run) -> list[dict[str, Any]]:
    log = run.folder / "log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []


def finished(run: Run) -> bool:
    """Trained to its step count, with its weights or, where they were not kept (the repository), its scores."""
    ends = [e for e in _events(run) if e["event"] in ("end", "pause")]
    return (
        bool(ends)
        and ends[-1]["event"] == "end"
        and ends[-1]["step"] >= run.cfg.steps
        and any((run.folder / f).is_file() for f in ("best.safetensors", "scores.json"))
    )


def status(run: Run) -> str:
    """'done', 'partial' (resumable) or 'todo'."""
    if finished(run):
        return "done"
    return "partial" if (run.folder / "last.pt").is_file() else "todo"


def _flat(cfg: TrainConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in asdict(cfg).items():
        for kk, vv in v.items() if isinstance(v, dict) and k != "model" else [(None, v)]:
            out[f"{k}.{kk}" if kk else k] = vv
    return {k: v for k, v in out.items() if k not in _LOCATIONS}


def _check_same(run: Run) -> None:
    """Refuse to reuse or resume a run of another experiment (e.g. after editing the ablation config)."""
    saved = config_from_dict(yaml.safe_load((run.folder / "config.yaml").read_text()))
    old, new = _flat(saved), _flat(run.cfg)
    diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if diff:
        raise ValueError(
            f"{run.folder}: was trained with another config (differs in {diff}); "
            "give the ablation another out_dir, or delete the folder to retrain it"
        )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_teacher(run: Run) -> None:
    """A distilled student records its teacher's hash; a retrained teacher makes it stale."""
    if not run.cfg.teacher:
        return
    if not Path(run.cfg.teacher).is_file():
        if finished(run):  # a finished student of a teacher whose weights were not kept: its mark says which
            return
        raise ValueError(
            f"{run.folder}: its teacher {run.cfg.teacher} has no weights here (the repository keeps scores and "
            "logs, not weights); delete the teacher's folder to retrain it"
        )
    mark, digest = run.folder / "teacher.sha256", _sha256(Path(run.cfg.teacher))
    if not mark.is_file():
        atomic_write(mark, lambda tmp: Path(tmp).write_text(digest + "\n"))
    elif mark.read_text().strip() != digest:
        raise ValueError(
            f"{run.folder}: was distilled from another {run.cfg.teacher} than the one there now; "
            "delete the student's folder to retrain it"
        )


def _prune(run: Run) -> None:
    for p in (run.folder / name for name in _DROP):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _start(run: Run) -> None:
    """Before a run trains: its folder, and its teacher's hash (or the refusal of a changed teacher)."""
    run.folder.mkdir(parents=True, exist_ok=True)
    _check_teacher(run)


def _scored(acfg: AblationConfig, names: list[str], path: Path, weights: Path | None, parsing: str, dev: Any) -> Scores:
    """The cached scores at ``path``, or those of the model in ``weights`` (None: bicubic), computed and saved."""
    from pkdn.checkpoint import load_model

    s = cached(path, acfg.eval_split, names)
    if s is None and weights is not None and not weights.is_file():
        raise ValueError(
            f"{path}: scores of other faces than {acfg.eval_split} ({len(names)}) and no {weights.name} "
            f"to score again; delete {path.parent} to retrain it"
        )
    if s is None:
        model = None if weights is None else load_model(weights)
        s = score(model, acfg.data_root, acfg.eval_split, acfg.eval_limit, parsing, dev)
        s.save(path)
    return s


def _score_run(acfg: AblationConfig, names: list[str], run: Run, dev: Any) -> Scores:
    return _scored(acfg, names, run.folder / "scores.json", run.folder / "best.safetensors", run.cfg.data.parsing, dev)


def _train_child(
    run: Run, acfg: AblationConfig, names: list[str], stop_after: int | None, deadline: float | None, threads: int
) -> None:
    """One run in a worker process, scored there once finished (beside the runs still training).

    CPU threads are split between the parallel runs unless the config sets them. ``deadline`` is absolute
    (time.time()): a run queued behind others gets only what is left when it starts.
    """
    max_minutes = None if deadline is None else (deadline - time.time()) / 60
    if max_minutes is not None and max_minutes <= 0:
        return
    import torch

    from pkdn.device import resolve_device
    from pkdn.train.loop import train

    if not run.cfg.threads:
        torch.set_num_threads(threads)
    train(run.cfg, resume=True, progress=False, stop_after=stop_after, max_minutes=max_minutes)
    if finished(run):
        _score_run(acfg, names, run, resolve_device(run.cfg.device))


def _train_parallel(
    acfg: AblationConfig,
    names: list[str],
    runs: list[Run],
    jobs: int,
    stop_after: int | None,
    deadline: float | None,
    say: Callable[[str], None],
) -> None:
    """Train the unfinished runs ``jobs`` at a time, each as soon as what it needs is there.

    Why: a lite run on a GPU (or a many-core CPU) leaves most of the machine
    idle, so independent runs share it. Teachers and the no-distillation
    students start at once; a distilled student starts when its teacher has
    finished, not when the slowest teacher has. Runs start in plan order (the
    table's rows before the tries). Each run is its own process (spawned, so
    CUDA works), resumable and logged exactly as in the sequential path; the
    students of a teacher that paused wait for the next invocation.
    """
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    waiting = [r for r in runs if status(r) != "done"]
    if not waiting:
        return
    say(f"training {len(waiting)} runs, {jobs} at a time, each student once its teacher has finished")
    with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        running: dict[Future, Run] = {}
        while True:
            left = None if deadline is None else (deadline - time.time()) / 60
            for run in [r for r in waiting if (t := teacher_of(r, runs)) is None or finished(t)]:
                if left is not None and left <= 0:
                    break
                if (run.folder / "config.yaml").is_file():
                    _check_same(run)
                _start(run)
                say(f"queued {run.name}")
                running[pool.submit(_train_child, run, acfg, names, stop_after, deadline, threads)] = run
                waiting.remove(run)
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                f.result()
                run = running.pop(f)
                say(
                    f"{'finished' if finished(run) else 'paused' if status(run) == 'partial' else 'not started'} {run.name}"
                )


def run_ablation(
    acfg: AblationConfig,
    progress: bool = True,
    max_minutes: float | None = None,
    stop_after: int | None = None,
    device: str = "auto",
    say: Callable[[str], None] = print,
    jobs: int = 1,
) -> tuple[bool, str]:
    """Train what is missing, score what is new; return (all runs finished, the table in Markdown).

    ``max_minutes`` bounds this invocation (the run in progress pauses with a
    checkpoint); ``stop_after`` pauses the first unfinished run after that
    many steps. Either way a later call continues where this one stopped.
    ``jobs`` > 1 trains that many runs at once (teachers, then students).
    """
    if jobs < 1:  # before anything is written or scored
        raise ValueError(f"ablate: --jobs must be at least 1, not {jobs}")
    from pkdn.device import resolve_device
    from pkdn.train.loop import train

    out = Path(acfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "ablation.yaml", lambda tmp: Path(tmp).write_text(dump_ablation(acfg)))
    runs, dev = plan(acfg), resolve_device(device)
    names = eval_names(acfg.data_root, acfg.eval_split, acfg.eval_limit)

    bicubic = _scored(acfg, names, out / "bicubic.json", None, "full", dev)
    t0, stopped, scores = time.time(), False, {}
    if jobs > 1:
        _train_parallel(
            acfg, names, runs, jobs, stop_after, None if max_minutes is None else t0 + 60 * max_minutes, say
        )
        stopped = any(status(r) != "done" for r in runs)  # paused runs continue in the next invocation
    for i, run in enumerate(runs, 1):
        state = status(run)
        scores[run.name] = None
        if (run.folder / "config.yaml").is_file():
            _check_same(run)
        if state != "done":
            left = None if max_minutes is None else max_minutes - (time.time() - t0) / 60
            if stopped or (left is not None and left <= 0):
                stopped = True
                continue
            say(
                f"[{i}/{len(runs)}] {run.name}: {'resuming' if state == 'partial' else 'training'} "
                f"({run.cfg.steps} steps) in {run.folder}"
            )
            _start(run)
            train(run.cfg, resume=True, progress=progress, stop_after=stop_after, max_minutes=left)
            if not finished(run):
                say(f"[{i}/{len(runs)}] {run.name}: paused; run the same command again to continue")
                stopped = True
                continue
        else:
            _check_teacher(run)
            say(f"[{i}/{len(runs)}] {run.name}: finished earlier, reused")
        scores[run.name] = _score_run(acfg, names, run, dev)
        _prune(run)
    table = markdown(acfg, runs, scores, bicubic)
    atomic_write(out / "table.md", lambda tmp: Path(tmp).write_text(table + "\n"))
    return not stopped and all(s is not None for s in scores.values()), table
