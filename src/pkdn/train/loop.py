"""The one training loop: teacher (L1 with the parsing prior) or student (L_SR + distillation).

Seeded, resumable to the same result, DDP under torchrun, validated on the
val split with the project's PSNR/SSIM protocol, checkpoints written
atomically beside the exact config, the best model kept by validation PSNR.

Run folder:
    config.yaml          the exact config of the run
    last.pt              resumable state (model, optimiser, scheduler, step, best)
    last.safetensors     the latest weights as a model file (pkdn.checkpoint)
    best.safetensors     the weights with the best validation PSNR so far
    log.jsonl            one JSON line per log / validation event
    tb/                  TensorBoard logs (if tensorboard is installed)
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from pkdn.checkpoint import UPRIGHT_ONLY, load_model, save_model
from pkdn.config import TrainConfig, config_from_dict, dump_config
from pkdn.data.dataset import FaceSRDataset
from pkdn.fileio import atomic_write
from pkdn.metrics import psnr_ssim_y
from pkdn.models import build_model
from pkdn.models.grow import can_grow, grow
from pkdn.priors.labels import num_channels
from pkdn.train.distributed import DistEnv, setup, teardown
from pkdn.train.sampler import EpochBatchSampler
from pkdn.train.steps import Optimizer, student_step, teacher_step


def _weights_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for t in model.state_dict().values():
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class _Logger:
    """log.jsonl + TensorBoard on rank 0; silent elsewhere."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.enabled, self.path, self.tb = enabled, out / "log.jsonl", None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"))
            except ImportError:
                print("pkdn train: tensorboard is not installed (pip install 'pkdn[train]'); logging to log.jsonl only")

    def __call__(self, event: str, step: int, **values: Any) -> None:
        if not self.enabled:
            return
        line = json.dumps({"event": event, "step": step, "time": round(time.time(), 1), **values}) + "\n"
        with self.path.open("a") as f:
            f.write(line)
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{event}/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


@torch.no_grad()
def validate(
    model: torch.nn.Module, dataset: FaceSRDataset, device: torch.device, limit: int | None = None, batch_size: int = 16
) -> dict[str, float]:
    """Mean Y-channel PSNR/SSIM (:data:`pkdn.metrics.PROTOCOL`) over the first ``limit`` images of ``dataset``."""
    was_training = model.training
    model.eval()
    n = len(dataset) if limit is None else min(limit, len(dataset))
    psnrs, ssims = [], []
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        lr = torch.stack([it["lr"] for it in items]).to(device)
        hr = torch.stack([it["hr"] for it in items]).to(device)
        if model.config.kind == "teacher":
            sr, _ = model(lr, torch.stack([it["parsing"] for it in items]).to(device))
        else:
            sr, _ = model(lr)
        p, s = psnr_ssim_y(sr.float(), hr)
        psnrs.append(p)
        ssims.append(s)
    model.train(was_training)
    return {"psnr": torch.cat(psnrs).mean().item(), "ssim": torch.cat(ssims).mean().item(), "images": n}


def _check_run_folder(out: Path, cfg: TrainConfig, resume: bool) -> None:
    saved = out / "config.yaml"
    if (out / "last.pt").exists() and not resume:
        raise FileExistsError(f"{out}: holds a run already; pass --resume to continue it or choose a new out_dir")
    if resume and saved.exists():
        import yaml

        old, new = _experiment(config_from_dict(yaml.safe_load(saved.read_text()))), _experiment(cfg)
        diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if diff:
            raise ValueError(
                f"{saved}: the run was started with another config (differs in {diff}); resume with that one"
            )


# Where things are and what runs them, not what is trained: a run may move (other folders, machine, threads)
# and still resume.
_LOCATIONS = ("out_dir", "teacher", "init", "device", "threads", "data.root", "data.extra_roots", "data.num_workers")


def _experiment(cfg: TrainConfig) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in asdict(cfg).items():
        for kk, vv in v.items() if isinstance(v, dict) and k != "model" else [(None, v)]:
            flat[f"{k}.{kk}" if kk else k] = vv
    return {k: v for k, v in flat.items() if k not in _LOCATIONS}


def train(
    cfg: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    max_minutes: float | None = None,
) -> Path:
    """Run (or continue, with ``resume``) the training described by ``cfg``; returns the run folder.

    ``stop_after`` (steps) and ``max_minutes`` end this invocation early with
    a checkpoint, for time-boxed machines; ``resume`` later continues the run
    to the same result as an uninterrupted one. Under DDP the time budget is
    checked at log steps (all ranks must agree where to stop).
    """
    cfg.validate()
    env: DistEnv = setup(cfg.device)
    try:
        return _train(cfg, env, resume, progress, stop_after, max_minutes)
    finally:
        teardown(env)


def _start_run_folder(cfg: TrainConfig, env: DistEnv, resume: bool) -> Path:
    out = Path(cfg.out_dir)
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        _check_run_folder(out, cfg, resume)
        atomic_write(out / "config.yaml", lambda tmp: Path(tmp).write_text(dump_config(cfg)))
    env.barrier()
    return out


def _build_networks(cfg: TrainConfig, env: DistEnv) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """The network to train (seeded) and, for distillation, the frozen teacher it learns from."""
    overrides = dict(cfg.model.overrides)
    if cfg.stage == "teacher":
        overrides.setdefault("parsing_channels", num_channels(cfg.data.parsing))
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.stage, cfg.model.preset, **overrides).to(env.device)
    if cfg.init:
        init = load_model(cfg.init)
        if init.config == model.config:
            model.load_state_dict(init.state_dict())
        elif can_grow(init, model.config):  # a deeper run of the same network: new blocks start as identities
            grow(init, model)
        else:
            raise ValueError(
                f"{cfg.init}: init weights are of another network than this run's ({init.config} vs {model.config})"
            )
    if not (cfg.stage == "student" and cfg.distill.enabled):
        return model, None
    teacher = load_model(cfg.teacher, map_location=env.device)
    teacher.requires_grad_(False).eval()  # frozen, BN-free but eval mode regardless
    if teacher.config.kind != "teacher":
        raise ValueError(f"{cfg.teacher}: is a {teacher.config.kind} model, not a teacher")
    if teacher.config.parsing_channels != num_channels(cfg.data.parsing):
        raise ValueError(
            f"{cfg.teacher}: takes {teacher.config.parsing_channels} parsing channels, "
            f"data.parsing={cfg.data.parsing!r} gives {num_channels(cfg.data.parsing)}"
        )
    if cfg.channels_last:
        teacher = teacher.to(memory_format=torch.channels_last)
    return model, teacher


def train_dataset(cfg: TrainConfig, with_parsing: bool) -> FaceSRDataset:
    """The training split as the run's config asks for it (augmentation, degradation, seed)."""
    return FaceSRDataset(
        cfg.data.root,
        "train",
        parsing=cfg.data.parsing,
        augment=cfg.data.augment,
        rotate=cfg.data.rotate,
        with_parsing=with_parsing,
        seed=cfg.seed,
        degradation=cfg.data.degrade,
        extra_roots=cfg.data.extra_roots,
    )


def _train(
    cfg: TrainConfig, env: DistEnv, resume: bool, progress: bool, stop_after: int | None, max_minutes: float | None
) -> Path:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = _start_run_folder(cfg, env, resume)
    model, teacher = _build_networks(cfg, env)
    needs_parsing = cfg.stage == "teacher" or teacher is not None
    train_set = train_dataset(cfg, with_parsing=needs_parsing)
    # validation sees one fixed draw of the degradation (epoch 0 of the run's seed), the same at every check
    val_set = FaceSRDataset(
        cfg.data.root,
        "val",
        parsing=cfg.data.parsing,
        with_parsing=cfg.stage == "teacher",
        seed=cfg.seed,
        degradation=cfg.data.degrade,
    )
    sampler = EpochBatchSampler(len(train_set), cfg.batch_size, cfg.seed, env.rank, env.world)
    per_epoch = sampler.batches_per_epoch

    optim = Optimizer(model, cfg, env.device.type)
    step, best = 0, -math.inf
    if resume and (out / "last.pt").exists():
        state = torch.load(out / "last.pt", map_location=env.device, weights_only=False)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state)
        step, best = state["step"], state["best_psnr"]
        torch.set_rng_state(state["rng"])
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = DDP(model, device_ids=[env.device.index] if env.device.type == "cuda" else None) if env.distributed else model

    def run_step(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One optimiser step of this stage's loss (eq. 1, or eqs. 2-5 under the lambda schedule)."""
        with optim.autocast():
            if cfg.stage == "teacher":
                loss, parts = teacher_step(net, batch, cfg.loss)
            else:
                lam_ts, lam_fs = cfg.distill.weights(step / per_epoch) if teacher is not None else (0.0, 0.0)
                loss, parts = student_step(net, batch, teacher, lam_ts, lam_fs, cfg.loss)
        optim.step(loss)
        return parts

    def save_state() -> None:
        state = {
            "model": model.state_dict(),
            **optim.state_dict(),
            "step": step,
            "best_psnr": best,
            "rng": torch.get_rng_state(),
            "config": asdict(cfg),
        }
        atomic_write(out / "last.pt", lambda tmp: torch.save(state, tmp))
        save_model(out / "last.safetensors", model, extra={"step": step, UPRIGHT_ONLY: cfg.data.upright_only})

    log = _Logger(out, env.is_main)
    log("start", step, world=env.world, device=str(env.device), resumed=bool(resume and step))
    bar = None
    if env.is_main and progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.stage}", unit="step", mininterval=5)
    if step == 0 and env.is_main:  # the starting point, so every curve shows what training gained
        log("val", 0, **validate(model, val_set, env.device, cfg.data.val_limit))
    env.barrier()

    model.train()
    t_start = t_log = time.time()
    cpu_log = time.process_time()
    start_step, n_run = step, 0
    running: dict[str, torch.Tensor] = {}  # loss parts summed on the device: read once per log line
    stop_at = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    while step < stop_at:
        epoch, skip = divmod(step, per_epoch)
        sampler.set_position(epoch, skip)
        train_set.set_epoch(epoch)
        loader = DataLoader(
            train_set,
            batch_sampler=sampler,
            num_workers=cfg.data.num_workers,
            pin_memory=env.device.type == "cuda",
            persistent_workers=False,
        )
        for batch in loader:
            batch = {k: v.to(env.device, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            parts = run_step(batch)
            step += 1
            n_run += 1
            for k, v in parts.items():
                running[k] = running[k] + v if k in running else v.clone()
            if bar is not None:
                bar.update(1)
            log_now = step % cfg.log_every == 0 or step == cfg.steps
            if log_now:
                means = dict(zip(running, (torch.stack(list(running.values())) / n_run).tolist()))
                dt, cpu = time.time() - t_log, time.process_time() - cpu_log
                # host_cpu_s: CPU seconds this process used in the interval; beside the wall time it
                # shows a loop that waits (or, on a shared machine, one that is starved)
                log(
                    "train",
                    step,
                    epoch=round(step / per_epoch, 3),
                    lr=optim.lr,
                    images_per_s=round(n_run * cfg.batch_size / dt, 2),
                    host_cpu_s=round(cpu, 3),
                    **means,
                )
                if bar is not None:
                    bar.set_postfix(loss=f"{means['total']:.4f}", refresh=False)
                t_log, cpu_log, running, n_run = time.time(), time.process_time(), {}, 0
            if step % cfg.val_every == 0 or step == cfg.steps:
                if env.is_main:
                    scores = validate(model, val_set, env.device, cfg.data.val_limit)
                    log("val", step, **scores)
                    if bar is not None:
                        bar.write(f"step {step}: val PSNR {scores['psnr']:.3f} dB, SSIM {scores['ssim']:.4f}")
                    if scores["psnr"] > best:
                        best = scores["psnr"]
                        save_model(
                            out / "best.safetensors",
                            model,
                            extra={
                                "step": step,
                                "val_psnr": scores["psnr"],
                                "val_ssim": scores["ssim"],
                                UPRIGHT_ONLY: cfg.data.upright_only,
                            },
                        )
                env.barrier()
            if max_minutes is not None and step < stop_at and (log_now or not env.distributed):
                if _all_agree(time.time() - t_start > 60 * max_minutes, env):
                    stop_at = step
            if step % cfg.ckpt_every == 0 or step == stop_at:
                if env.is_main:
                    save_state()
                env.barrier()
            if step >= stop_at:
                break

    digest = _weights_digest(model)
    if env.distributed:
        digests = [None] * env.world
        dist.all_gather_object(digests, digest)
    else:
        digests = [digest]
    log(
        "end" if step >= cfg.steps else "pause",
        step,
        steps_this_run=step - start_step,
        best_psnr=best,
        weights_digest=digest,
        ranks_in_sync=len(set(digests)) == 1,
        rank_digests=digests,
    )
    if bar is not None:
        bar.close()
    log.close()
    return out


def _all_agree(flag: bool, env: DistEnv) -> bool:
    """True when ``flag`` holds on any rank (every rank must stop at the same step)."""
    if not env.distributed:
        return flag
    t = torch.tensor(float(flag), device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
