"""The realistic degradation: seeded per (seed, epoch, index), each family does what it says, the degraded
Dataset trains, and `pkdn degrade` writes a fixed test set with the usual bad-input rules."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from pkdn.cli import main as cli
from pkdn.config import config_from_dict
from pkdn.data.dataset import FaceSRDataset
from pkdn.data.degrade import (
    ALIASED,
    BICUBIC,
    Degradation,
    _jpeg,
    _noise,
    _resize,
    degrade,
    family,
    hr_from_image,
    sample_rng,
)
from pkdn.imageio import load_rgb


@pytest.fixture(scope="module")
def hr_faces(celeba) -> list[np.ndarray]:
    return [np.asarray(hr_from_image(load_rgb(p))) for p in sorted((celeba / "test").glob("*.jpg"))[:24]]


def _clean(hr: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(hr).resize((hr.shape[1] // 8, hr.shape[0] // 8), BICUBIC))


def _laplacian_energy(img: np.ndarray) -> float:
    g = img.astype(np.float64).mean(-1)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float((lap**2).mean())


def test_degradation_is_a_function_of_seed_epoch_index(hr_faces):
    d = Degradation(enabled=True)
    hr = hr_faces[0]
    a = degrade(hr, sample_rng(5, 2, 7), d)[0]
    assert np.array_equal(a, degrade(hr, sample_rng(5, 2, 7), d)[0])
    others = [degrade(hr, sample_rng(5, e, 7), d)[0] for e in (3, 4, 5)]
    assert all(not np.array_equal(a, o) for o in others), "epochs must draw different LR"
    assert a.shape == (16, 16, 3) and a.dtype == np.uint8


def test_blur_lowers_high_frequencies(hr_faces):
    d = family("blur")
    ratios = [
        _laplacian_energy(degrade(hr, sample_rng(0, 0, i), d)[0]) / _laplacian_energy(_clean(hr))
        for i, hr in enumerate(hr_faces)
    ]
    assert np.median(ratios) < 0.8, ratios
    assert max(ratios) < 1.05, ratios


def test_noise_raises_variance_by_the_configured_amount():
    flat = np.full((256, 256, 3), 128.0, np.float32)
    for sigma in (5.0, 15.0):
        d = Degradation(enabled=True, noise_sigma=(sigma, sigma), p_poisson=0.0, p_grey_noise=0.0)
        out = _noise(flat, sample_rng(0, 0, 0), d, d.noise_sigma)
        assert abs(float((out - flat).std()) - sigma) < 0.03 * sigma
    # Poisson noise grows with intensity (shot noise), Gaussian does not
    d = Degradation(enabled=True, poisson_scale=(1.0, 1.0), p_poisson=1.0, p_grey_noise=0.0)
    dark = _noise(np.full((128, 128, 3), 20.0, np.float32), sample_rng(0, 0, 1), d, d.noise_sigma) - 20.0
    bright = _noise(np.full((128, 128, 3), 220.0, np.float32), sample_rng(0, 0, 1), d, d.noise_sigma) - 220.0
    assert bright.std() > 2.5 * dark.std()


def test_read_noise_adds_a_floor_to_shot_noise():
    """Poisson-Gaussian: with p_read the dark end keeps a noise floor that shot noise alone lacks."""
    dark = np.full((128, 128, 3), 5.0, np.float32)
    shot = Degradation(enabled=True, poisson_scale=(1.0, 1.0), p_poisson=1.0, p_grey_noise=0.0)
    both = Degradation(**{**shot.__dict__, "p_read": 1.0, "read_sigma": (6.0, 6.0)})
    s_shot = float((_noise(dark, sample_rng(0, 0, 2), shot, shot.noise_sigma) - dark).std())
    s_both = float((_noise(dark, sample_rng(0, 0, 2), both, both.noise_sigma) - dark).std())
    assert s_both > 1.0 and abs(s_both**2 - s_shot**2 - 36.0) < 0.15 * 36.0


def test_aliased_shrinks_keep_what_antialiased_ones_average_away():
    """Fine stripes (period 3 HR px) shrunk x8: PIL's resamplers average them to a flat grey, the ALIASED ones
    sample them into a false coarse pattern."""
    x = np.indices((128, 128))[1]
    stripes = np.repeat(np.where(x % 3 == 0, 255.0, 0.0)[..., None], 3, -1).astype(np.float32)
    inner = (slice(2, -2), slice(2, -2))  # the borders see the reflected edge
    assert float(_resize(stripes, (16, 16), "bicubic")[inner].std()) < 3.0
    for how in ALIASED:
        out = _resize(stripes, (16, 16), how)
        assert out.shape == (16, 16, 3)
        assert float(out[inner].std()) > 20.0, how


def test_p_alias_changes_the_lr(hr_faces):
    hr = hr_faces[0]
    base = Degradation(enabled=True, p_clean=0.0)
    alias = Degradation(**{**base.__dict__, "p_alias": 1.0})
    differ = [
        not np.array_equal(degrade(hr, sample_rng(3, 0, i), base)[0], degrade(hr, sample_rng(3, 0, i), alias)[0])
        for i in range(8)
    ]
    assert sum(differ) >= 6


def test_jpeg_produces_8x8_block_energy(hr_faces):
    img = np.asarray(Image.fromarray(hr_faces[1]).resize((64, 64), BICUBIC), dtype=np.float32)
    out = _jpeg(img, sample_rng(0, 0, 0), (10, 10))
    # differences across columns: the block boundaries (one phase of 8) stand out against the rest
    dx = np.abs(np.diff(out.mean(-1), axis=1)).mean(0) - np.abs(np.diff(img.mean(-1), axis=1)).mean(0)
    per_phase = [dx[p::8].mean() for p in range(8)]
    assert max(per_phase) > 2.0 * np.median(per_phase), per_phase
    assert not np.array_equal(out, img)


def test_whole_photo_branch_keeps_lr_and_hr_in_register(hr_faces):
    # no blur/noise/JPEG: the tilted, shrunk and re-aligned face must match the clean LR of the moved HR
    d = family("warp")
    for i, hr in enumerate(hr_faces[:8]):
        lr, hr2, _ = degrade(hr, sample_rng(1, 0, i), d)
        mse = ((lr.astype(float) - _clean(hr2).astype(float)) ** 2).mean()
        assert 10 * np.log10(255**2 / mse) > 24.0, i
        assert not np.array_equal(hr2, hr), "the alignment error moves HR"


def test_pose_moves_hr_and_parsing_together_at_the_drawn_scale():
    # a bright disc (HR) and its mask (parsing): after the pose similarity the two still coincide, the disc's
    # area follows the drawn scale squared, and LR is the clean shrink of the moved HR
    yy, xx = np.mgrid[:128, :128]
    mask = ((yy - 63.5) ** 2 + (xx - 63.5) ** 2 < 30**2).astype(np.uint8)
    hr = np.repeat((40 + 180 * mask)[..., None], 3, -1).astype(np.uint8)
    for sc in (0.7, 1.6):
        d = Degradation(enabled=True, p_pose=1.0, pose_scale=(sc, sc), pose_tilt=15.0, pose_shift=8.0, p_clean=1.0)
        lr, hr2, lab2 = degrade(hr, sample_rng(3, 0, 0), d, parsing=mask)
        assert np.array_equal(lr, _clean(hr2)), "pose happens before the (clean) shrink"
        agree = ((hr2[..., 0] > 130) == (lab2 == 1)).mean()
        assert agree > 0.995, agree
        assert abs(lab2.sum() / mask.sum() - sc**2) < 0.03 * sc**2
    a = degrade(hr, sample_rng(3, 0, 1), d)[1]
    assert not np.array_equal(a, degrade(hr, sample_rng(3, 1, 1), d)[1]), "epochs draw different poses"


def test_degraded_dataset_draws_fresh_lr_each_epoch(prepared_small):
    ds = FaceSRDataset(
        prepared_small,
        "train",
        with_parsing=True,
        augment=True,
        seed=4,
        degradation=Degradation(enabled=True, p_clean=0.0),
    )
    a = ds[3]
    assert torch.equal(a["lr"], ds[3]["lr"])
    ds.set_epoch(1)
    b = ds[3]
    assert not torch.equal(a["lr"], b["lr"])
    assert a["lr"].shape == (3, 8, 8) and a["parsing"].shape[1:] == a["hr"].shape[1:]


def test_degraded_training_beats_bicubic_on_degraded_faces(prepared_small, tmp_path):
    from pkdn.models.resize import resize

    cfg = {
        "stage": "student",
        "out_dir": str(tmp_path / "run"),
        "model": {"preset": "tiny"},
        # a heavy blur and noise the tiny student can learn to undo on 12 faces; the full default draw is
        # too varied for it (the shipped `real` model's numbers cover that case)
        "data": {
            "root": str(prepared_small),
            "augment": True,
            "degrade": {
                "enabled": True,
                "p_clean": 0.0,
                "p_blur": 1.0,
                "sigma": [5.0, 7.0],
                "p_motion": 0.0,
                "kernel_probs": [1, 0, 0, 0, 0, 0],
                "p_capture_keep": 1.0,
                "p_warp": 0.0,
                "p_noise": 1.0,
                "p_poisson": 0.0,
                "noise_sigma": [4.0, 6.0],
                "p_jpeg": 0.0,
                "p_second": 0.0,
            },
        },
        "distill": {"enabled": False},
        "optim": {"lr": 3e-3, "schedule": "cosine", "min_lr": 1e-4},
        "batch_size": 6,
        "steps": 150,
        "val_every": 150,
        "ckpt_every": 150,
        "log_every": 40,
        "seed": 2,
        "threads": 2,
    }
    path = tmp_path / "student.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert cli(["train", "student", "--config", str(path), "--no-progress"]) == 0
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    final = [e for e in log if e["event"] == "val"][-1]
    # bicubic on the very same degraded val draw
    from pkdn.metrics import psnr_ssim_y

    val = FaceSRDataset(
        prepared_small, "val", with_parsing=False, seed=2, degradation=config_from_dict(cfg).data.degrade
    )
    lr = torch.stack([val[i]["lr"] for i in range(len(val))])
    hr = torch.stack([val[i]["hr"] for i in range(len(val))])
    bicubic = psnr_ssim_y(resize(lr, tuple(hr.shape[-2:])), hr)[0].mean().item()
    assert final["psnr"] > bicubic + 0.3, (final["psnr"], bicubic)


def test_pkdn_degrade_writes_a_fixed_set_and_reports_bad_input(celeba, tmp_path):
    src = tmp_path / "faces"
    src.mkdir()
    for p in sorted((celeba / "test").glob("*.jpg"))[:3]:
        (src / p.name).write_bytes(p.read_bytes())
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "deg"
    proc = subprocess.run(
        [sys.executable, "-m", "pkdn.cli", "degrade", str(src), str(out), "--seed", "3"], capture_output=True, text=True
    )
    assert proc.returncode == 1, proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("pkdn degrade: error: ") and "broken.png" in errors[0]
    stems = sorted(p.stem for p in src.glob("*.jpg"))
    assert sorted(p.stem for p in (out / "lr").glob("*.png")) == stems
    for s in stems:
        assert Image.open(out / "lr" / f"{s}.png").size == (16, 16)
        assert Image.open(out / "hr" / f"{s}.png").size == (128, 128)
    assert yaml.safe_load((out / "degrade.yaml").read_text())["seed"] == 3
    assert not list(out.rglob("*.tmp")), "no temporary files left"
    # the same seed rebuilds the same set; each file's draw does not depend on the others
    again = tmp_path / "again"
    (src / "broken.png").unlink()
    (src / stems[0]).with_suffix(".jpg").unlink()
    assert cli(["degrade", str(src), str(again), "--seed", "3"]) == 0
    for s in stems[1:]:
        assert np.array_equal(
            np.asarray(Image.open(out / "lr" / f"{s}.png")), np.asarray(Image.open(again / "lr" / f"{s}.png"))
        )
    # never inside its own input; a missing folder is one line
    assert cli(["degrade", str(src), str(src / "out")]) == 2
    assert cli(["degrade", str(tmp_path / "nope"), str(tmp_path / "o")]) == 2


def test_eval_scores_a_degraded_folder(celeba, tmp_path):
    out = tmp_path / "deg"
    assert cli(["degrade", str(celeba / "test"), str(out), "--limit", "8", "--family", "noise"]) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "pkdn.cli", "eval", str(out), "--model", "lite"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "8 images of" in proc.stdout and "| lite |" in proc.stdout
