"""Training: both stages learn, resume is exact, DDP (2 gloo processes) matches one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from _torchrun import torchrun_pkdn
from pkdn.checkpoint import SHIPPED_MODELS, load_model, read_metadata, upright_only
from pkdn.cli import main as cli
from pkdn.config import config_from_dict, load_config
from pkdn.data.dataset import FaceSRDataset
from pkdn.train.loop import train_dataset

REPO = Path(__file__).resolve().parents[1]


def _config(tmp: Path, data: Path, stage: str = "teacher", **top) -> Path:
    cfg = {
        "stage": stage,
        "out_dir": str(tmp / f"run_{stage}"),
        "model": {"preset": "tiny"},
        "data": {"root": str(data), "augment": True},
        "optim": {"lr": 2e-3, "schedule": "cosine", "min_lr": 1e-4},
        "batch_size": 4,
        "steps": 12,
        "val_every": 6,
        "ckpt_every": 4,
        "log_every": 4,
        "seed": 3,
        "threads": 2,
    }
    cfg.update(top)
    path = tmp / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _events(run: Path, kind: str) -> list[dict]:
    return [e for e in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if e["event"] == kind]


@pytest.fixture(scope="module")
def trained_teacher(tmp_path_factory, prepared_small) -> Path:
    tmp = tmp_path_factory.mktemp("teacher")
    assert cli(["train", "teacher", "--config", str(_config(tmp, prepared_small)), "--no-progress"]) == 0
    return tmp / "run_teacher"


def test_teacher_run_improves_validation_psnr(trained_teacher):
    val = _events(trained_teacher, "val")
    assert [v["step"] for v in val] == [0, 6, 12]
    assert val[-1]["psnr"] > val[0]["psnr"] + 1.0, val
    for name in ("config.yaml", "last.pt", "last.safetensors", "best.safetensors"):
        assert (trained_teacher / name).is_file(), name
    assert list((trained_teacher / "tb").iterdir()), "TensorBoard events written"


def test_checkpoint_reloads_with_its_config(trained_teacher):
    cfg = load_config(trained_teacher / "config.yaml")
    assert cfg.stage == "teacher" and cfg.model.preset == "tiny" and cfg.steps == 12
    model = load_model(trained_teacher / "best.safetensors")
    meta = read_metadata(trained_teacher / "best.safetensors")
    assert model.config.kind == "teacher" and model.config.channels == 8
    assert meta["extra"]["val_psnr"] == max(v["psnr"] for v in _events(trained_teacher, "val"))
    state = torch.load(trained_teacher / "last.pt", weights_only=False)
    assert state["step"] == 12 and config_from_dict(state["config"]) == cfg
    for k, v in load_file(trained_teacher / "last.safetensors").items():
        assert torch.equal(v, state["model"][k])


@pytest.mark.parametrize(("distill", "loss"), [(True, "l1"), (False, "l1"), (False, "psnr_y")])
def test_student_run_improves_validation_psnr(tmp_path, prepared_small, trained_teacher, distill, loss):
    cfg = _config(
        tmp_path,
        prepared_small,
        "student",
        teacher=str(trained_teacher / "best.safetensors"),
        distill={"enabled": distill, "schedule": "constant", "lambda_ts": 0.1, "lambda_fs": 0.1},
        steps=24,
        val_every=12,
        loss=loss,
    )
    assert cli(["train", "student", "--config", str(cfg), "--no-progress"]) == 0
    run = tmp_path / "run_student"
    val, train = _events(run, "val"), _events(run, "train")
    # At 8 x 8 -> 64 x 64 a few steps take the student from its random start to about bicubic quality.
    assert val[-1]["psnr"] > val[0]["psnr"] + 0.3, val
    assert ("l_fs" in train[0] and "l_ts" in train[0]) == distill
    assert load_model(run / "best.safetensors").config.kind == "student"


def test_init_from_a_shallower_student_grows_it(tmp_path, prepared_small):
    """`init` may name a student with fewer blocks per group: the run starts from it, grown (pkdn.models.grow)."""
    from pkdn.checkpoint import save_model
    from pkdn.models import build_model

    torch.manual_seed(0)
    start = build_model("student", "tiny")
    for p in start.parameters():
        p.data.normal_(0, 0.05)
    save_model(tmp_path / "start.safetensors", start)
    common = dict(init=str(tmp_path / "start.safetensors"), distill={"enabled": False}, steps=2, val_every=2)
    scores = {}
    for blocks in (1, 3):
        run = tmp_path / f"b{blocks}"
        run.mkdir()
        cfg = _config(
            run, prepared_small, "student", model={"preset": "tiny", "overrides": {"blocks": blocks}}, **common
        )
        assert cli(["train", "student", "--config", str(cfg), "--no-progress"]) == 0
        scores[blocks] = _events(run / "run_student", "val")[0]["psnr"]
        assert load_model(run / "run_student" / "last.safetensors").config.blocks == blocks
    assert scores[3] == pytest.approx(scores[1], abs=1e-4)  # step 0: the grown network is the one it grew from
    wide = tmp_path / "wide"
    wide.mkdir()
    cfg = _config(wide, prepared_small, "student", model={"preset": "tiny", "overrides": {"channels": 16}}, **common)
    assert cli(["train", "student", "--config", str(cfg), "--no-progress"]) == 2  # not a growth: refused


def test_resume_reproduces_the_uninterrupted_run(tmp_path, prepared_small):
    whole = tmp_path / "whole"
    whole.mkdir()
    assert cli(["train", "teacher", "--config", str(_config(whole, prepared_small, steps=8)), "--no-progress"]) == 0
    cut = tmp_path / "cut"
    cut.mkdir()
    cfg = str(_config(cut, prepared_small, steps=8))
    # Stop mid-epoch (3 batches per epoch) and between checkpoints' regular steps, then resume.
    assert cli(["train", "teacher", "--config", cfg, "--no-progress", "--stop-after", "5"]) == 0
    assert _events(cut / "run_teacher", "pause")[0]["step"] == 5
    assert cli(["train", "teacher", "--config", cfg, "--no-progress"]) == 2  # refuses to start over a run
    assert cli(["train", "teacher", "--config", cfg, "--no-progress", "--resume", "--set", "optim.lr=0.1"]) == 2
    assert cli(["train", "teacher", "--config", cfg, "--no-progress", "--resume", "--set", "threads=1"]) == 0
    a = load_file(whole / "run_teacher" / "last.safetensors")
    b = load_file(cut / "run_teacher" / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    assert _events(whole / "run_teacher", "val")[-1]["psnr"] == pytest.approx(
        _events(cut / "run_teacher", "val")[-1]["psnr"], abs=1e-4
    )


def test_ddp_two_gloo_processes_match_one_process(tmp_path, prepared_small):
    common = dict(steps=3, ckpt_every=3, val_every=3, threads=1)
    one = tmp_path / "one"
    one.mkdir()
    assert cli(["train", "teacher", "--config", str(_config(one, prepared_small, **common)), "--no-progress"]) == 0
    two = tmp_path / "two"
    two.mkdir()
    proc = torchrun_pkdn(["train", "teacher", "--config", str(_config(two, prepared_small, **common)), "--no-progress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    end = _events(two / "run_teacher", "end")[0]
    assert end["ranks_in_sync"] and len(end["rank_digests"]) == 2  # both ranks hold the same weights
    assert _events(two / "run_teacher", "start")[0]["world"] == 2
    a, b = load_file(one / "run_teacher" / "last.safetensors"), load_file(two / "run_teacher" / "last.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4, msg=k)


def test_config_errors_are_one_line(tmp_path, prepared_small, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: teacher\noptim: {lr: 1e-3, momentum: 0.9}\n")
    assert cli(["train", "teacher", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown key(s) ['momentum'] in optim" in err and str(bad) in err and "\n" not in err
    cfg = _config(tmp_path, prepared_small, "student")
    assert cli(["train", "student", "--config", str(cfg)]) == 2
    assert "needs `teacher: MODEL_FILE`" in capsys.readouterr().err


@pytest.mark.parametrize("rotate", [True, False])
def test_data_rotate_switch_reaches_the_training_set(prepared_small, rotate):
    """`data.rotate: false` keeps flips and drops the 90-degree turns: every sample is upright."""
    cfg = config_from_dict({"data": {"root": str(prepared_small), "augment": True, "rotate": rotate}, "seed": 1})
    plain, aug = FaceSRDataset(prepared_small, "train"), train_dataset(cfg, with_parsing=False)
    kinds = set()
    for epoch in range(4):
        aug.set_epoch(epoch)
        for i in range(len(aug)):
            hr, ref = aug[i]["hr"], plain[i]["hr"]
            kind = [k for k, view in (("plain", ref), ("flip", ref.flip(-1))) if torch.equal(hr, view)]
            kinds.add(kind[0] if kind else "turned")
    assert kinds == ({"plain", "flip", "turned"} if rotate else {"plain", "flip"})


def test_bf16_channels_last_path_trains(tmp_path, prepared_small):
    """The mixed-precision / channels-last options run end to end (bf16 autocast works on CPUs too)."""
    cfg = _config(tmp_path, prepared_small, steps=6, val_every=6, amp="bf16", channels_last=True)
    assert cli(["train", "teacher", "--config", str(cfg), "--no-progress"]) == 0
    val = _events(tmp_path / "run_teacher", "val")
    assert val[-1]["psnr"] > val[0]["psnr"]
    assert load_model(tmp_path / "run_teacher" / "best.safetensors").config.kind == "teacher"
    # it learned quarter turns (data.rotate, the default), so its files do not say upright-only...
    assert not upright_only(tmp_path / "run_teacher" / "last.safetensors")
    # ...while a run on upright faces says so in both (Restorer warns about 8 views of such a model)
    cfg = _config(tmp_path, prepared_small, steps=2, val_every=2, out_dir=str(tmp_path / "upright"))
    assert cli(["train", "teacher", "--config", str(cfg), "--set", "data.rotate=false", "--no-progress"]) == 0
    assert upright_only(tmp_path / "upright" / "last.safetensors") and upright_only(
        tmp_path / "upright" / "best.safetensors"
    )


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (REPO / "configs").glob("*.yaml") if not p.name.startswith("ablation")),
    ids=lambda p: p.name,
)
def test_shipped_configs_load(path):
    # training configs are named <preset or shipped model>_<stage>[_<where>].yaml (ablation: tested in test_ablate);
    # `real` is the lite teacher on degraded LR that the robust teacher starts from (checkpoints/real_teacher/)
    cfg = load_config(path)
    name, stage = path.stem.split("_")[:2]
    lite_sized = (*SHIPPED_MODELS, "real")
    assert cfg.stage == stage and (cfg.model.preset == name or (name in lite_sized and cfg.model.preset == "lite"))
    assert cfg.data.degrade.enabled == (name in ("real", "robust"))  # LR synthesised on the fly (docs/degradation.md)
