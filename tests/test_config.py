"""Config values are typed by their dataclass field, whatever YAML made of them."""

from __future__ import annotations

import pytest

from pkdn.config import config_from_dict, load_config, set_dotted
from pkdn.losses import DistillSchedule


@pytest.mark.parametrize(
    ("override", "key", "want"),
    [
        ("optim.lr=2e-4", ("optim", "lr"), 2e-4),  # YAML 1.1: the string "2e-4"
        ("optim.grad_clip=1", ("optim", "grad_clip"), 1.0),
        ("optim.grad_clip=null", ("optim", "grad_clip"), None),
        ("steps=5e2", (None, "steps"), 500),
        ("data.val_limit=64", ("data", "val_limit"), 64),
        ("data.rotate=off", ("data", "rotate"), False),
        ("distill.enabled=no", ("distill", "enabled"), False),
        ("out_dir=2024", (None, "out_dir"), "2024"),
        ("optim.betas=[0.9, 9e-1]", ("optim", "betas"), (0.9, 0.9)),
    ],
)
def test_overrides_are_coerced(override, key, want):
    data: dict = {}
    set_dotted(data, override)
    cfg = config_from_dict(data)
    section, name = key
    got = getattr(getattr(cfg, section) if section else cfg, name)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("optim.lr=abc", "optim.lr: expected a number, got 'abc'"),
        ("steps=2.5", "steps: expected an integer, got 2.5"),
        ("distill.enabled=maybe", "distill.enabled: expected true or false"),
        ("optim.betas=[0.9]", "optim.betas: expected a list of 2 numbers"),
        ("batch_size=true", "batch_size: expected an integer"),
        ("loss=l2", "loss must be one of ['l1', 'psnr_y'], not 'l2'"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(tmp_path, override, words):
    path = tmp_path / "c.yaml"
    path.write_text("stage: teacher\n")
    with pytest.raises(ValueError) as e:
        load_config(path, [override])
    assert words in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_distill_section_is_the_schedule():
    cfg = config_from_dict({"stage": "student", "teacher": "t.safetensors", "distill": {"decay_epochs": 2}})
    assert isinstance(cfg.distill, DistillSchedule) and cfg.distill.weights(1.0) == (0.1, 5.0)
    with pytest.raises(ValueError, match="distill"):
        config_from_dict({"distill": {"schedule": "sometimes"}})
