"""The networks: shapes, inputs, feature alignment, ablations, determinism, PIL-matching upsampling."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from PIL import Image

from pkdn.models import ModelConfig, Student, Teacher, build_model, preset_config
from pkdn.models.blocks import RCAG
from pkdn.models.ffb import FFB
from pkdn.models.pfb import PFB
from pkdn.models.resize import resize
from pkdn.models.summary import count_params


def _parsing(b: int, hr: int, channels: int = 19) -> torch.Tensor:
    labels = torch.randint(0, channels, (b, hr, hr))
    return torch.nn.functional.one_hot(labels, channels).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize("lr_size", [16, 12])
def test_output_shapes(lr_size):
    hr = lr_size * 8
    lr = torch.rand(2, 3, lr_size, lr_size)
    sr_t, feats_t = build_model("teacher", "tiny")(lr, _parsing(2, hr))
    sr_s, feats_s = build_model("student", "tiny")(lr)
    assert sr_t.shape == sr_s.shape == (2, 3, hr, hr)
    sizes = [f.shape[-1] for f in feats_s]
    assert sizes == [hr // 2, hr // 4, hr // 8, hr // 16, hr // 16, hr // 8, hr // 4, hr // 2, hr]


def test_rectangular_input():
    sr, _ = build_model("student", "tiny")(torch.rand(1, 3, 16, 10))
    assert sr.shape == (1, 3, 128, 80)


def test_bad_sizes_are_refused_clearly():
    with pytest.raises(ValueError, match=r"LR size 15x16: .* must be divisible by 16"):
        build_model("student", "tiny")(torch.rand(1, 3, 15, 16))
    with pytest.raises(ValueError, match="parsing map"):
        build_model("teacher", "tiny")(torch.rand(1, 3, 16, 16), _parsing(1, 128, channels=7))


def test_student_takes_the_lr_image_only():
    student = build_model("student", "tiny")
    assert list(inspect.signature(student.forward).parameters) == ["lr"]
    with pytest.raises(TypeError):
        student(torch.rand(1, 3, 16, 16), _parsing(1, 128))
    assert list(inspect.signature(build_model("teacher", "tiny").forward).parameters) == ["lr", "parsing"]


@pytest.mark.parametrize("overrides", [{}, {"use_ffb": False}, {"use_pfb": False, "use_ffb": False}])
def test_teacher_and_student_features_align(overrides):
    lr = torch.rand(1, 3, 16, 16)
    _, ft = build_model("teacher", "tiny", **overrides)(lr, _parsing(1, 128))
    _, fs = build_model("student", "tiny")(lr)
    assert len(ft) == len(fs) == 9
    assert [f.shape for f in ft] == [f.shape for f in fs]


def _count(model: torch.nn.Module, cls: type) -> int:
    return sum(isinstance(m, cls) for m in model.modules())


def test_ablation_switches_remove_modules():
    full = build_model("teacher", "tiny", blocks=2)
    no_ffb = build_model("teacher", "tiny", blocks=2, use_ffb=False)
    neither = build_model("teacher", "tiny", blocks=2, use_pfb=False, use_ffb=False)
    # 9 stages x 2 PFBs; one FFB per decoder level.
    assert (_count(full, PFB), _count(full, FFB), _count(full, RCAG)) == (18, 4, 0)
    assert (_count(no_ffb, PFB), _count(no_ffb, FFB)) == (18, 0)
    assert (_count(neither, PFB), _count(neither, FFB), _count(neither, RCAG)) == (0, 0, 9)
    # Without PFBs the parsing map joins the image at the input: the head sees 3 + 19 channels.
    assert neither.head.in_channels == 22 and full.head.in_channels == 3
    assert count_params(full) > count_params(no_ffb) > count_params(neither)


def test_global_residual_option():
    lr = torch.rand(1, 3, 16, 16)
    net = build_model("student", "tiny")
    torch.nn.init.zeros_(net.tail.weight)
    torch.nn.init.zeros_(net.tail.bias)
    sr, _ = net(lr)
    assert torch.allclose(sr, resize(lr, (128, 128)))  # zero correction = the bicubic image
    net_plain = build_model("student", "tiny", global_residual=False)
    net_plain.load_state_dict(net.state_dict())
    assert torch.count_nonzero(net_plain(lr)[0]) == 0


def test_fixed_seed_gives_identical_outputs():
    lr = torch.rand(2, 3, 16, 16)
    p = _parsing(2, 128)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        t, s = build_model("teacher", "tiny"), build_model("student", "tiny")
        outs.append((t(lr, p)[0], s(lr)[0]))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    torch.manual_seed(124)
    assert not torch.equal(build_model("student", "tiny")(lr)[0], outs[0][1])


def test_presets_sizes():
    paper = count_params(build_model("student", "paper"))
    lite = count_params(build_model("student", "lite"))
    assert 4.5e6 < paper < 6.0e6  # KDFSRNet's student is about 5.2 M
    assert 0.5e6 < lite < 1.0e6
    assert preset_config("teacher", "paper").channels == 64
    with pytest.raises(ValueError, match="unknown preset"):
        preset_config("student", "huge")
    with pytest.raises(ValueError, match="kind"):
        ModelConfig(kind="critic")
    assert isinstance(build_model("teacher"), Teacher) and isinstance(build_model("student"), Student)


def test_config_round_trip():
    cfg = preset_config("teacher", "lite", use_ffb=False)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "depth": 3})


def test_internal_upsampling_matches_pil(celeba):
    """The networks' bicubic (LR -> HR grid) equals PIL's to within one 8-bit level on real faces."""
    for path in sorted((celeba / "train").glob("*.jpg"))[:4]:
        hr = Image.open(path).convert("RGB").resize((128, 128), Image.BICUBIC)
        lr = hr.resize((16, 16), Image.BICUBIC)
        for src, dst in [(hr, lr), (lr, lr.resize((128, 128), Image.BICUBIC))]:
            x = torch.from_numpy(np.array(src)).permute(2, 0, 1).double() / 255
            ours = (resize(x, (dst.size[1], dst.size[0])) * 255).round().clamp(0, 255)
            ref = torch.from_numpy(np.array(dst)).permute(2, 0, 1).double()
            assert (ours - ref).abs().max() <= 1


def test_grown_student_computes_what_the_shallow_one_did():
    """pkdn.models.grow: new RCABs start as identities, so a deeper student starts where the trained one was."""
    from pkdn.models.grow import can_grow, grow, grown

    torch.manual_seed(0)
    src = build_model("student", "tiny", blocks=2).eval()
    for p in src.parameters():  # away from any special initialisation
        p.data.normal_(0, 0.05)
    deep = grown(src, 4).eval()
    assert count_params(deep) > count_params(src)
    assert sum(len(g.body) for g in deep.modules() if isinstance(g, RCAG)) == 9 * 5
    lr = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(deep(lr)[0], src(lr)[0], rtol=0, atol=1e-6)
    # Training moves the new blocks off the identity: their zeroed convs get gradients.
    deep.train()
    deep(lr)[0].mean().backward()
    new_conv = deep.encoder[0].body[3].body[2]
    assert new_conv.weight.grad.abs().sum() > 0
    # Only 'blocks' may change, and only upwards; teachers are not grown.
    assert not can_grow(src, preset_config("student", "tiny", blocks=1))
    assert not can_grow(src, preset_config("student", "tiny", blocks=4, channels=16))
    assert not can_grow(build_model("teacher", "tiny"), preset_config("teacher", "tiny", blocks=2))
    with pytest.raises(ValueError, match="only 'blocks' may differ"):
        grow(src, build_model("student", "tiny", blocks=4, channels=16))
