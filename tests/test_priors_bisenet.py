"""BiSeNet must load the public face-parsing checkpoint ``79999_iter.pth`` with strict=True.

The checkpoint cannot be downloaded here, so its known layout (key names and
shapes of face-parsing.PyTorch's BiSeNet(n_classes=19)) is written out below,
independently of the module, and a synthetic checkpoint with that layout is
loaded through the public entry point.
"""

import numpy as np
import pytest
import torch

from pkdn.data.degrade import hr_from_image, load_rgb
from pkdn.priors import get_parser
from pkdn.priors.bisenet import BiSeNet, BiSeNetParser


def _bn(prefix, c):
    return {
        f"{prefix}.weight": (c,),
        f"{prefix}.bias": (c,),
        f"{prefix}.running_mean": (c,),
        f"{prefix}.running_var": (c,),
        f"{prefix}.num_batches_tracked": (),
    }


def _cbr(prefix, cin, cout, k):
    return {f"{prefix}.conv.weight": (cout, cin, k, k), **_bn(f"{prefix}.bn", cout)}


def checkpoint_layout(n_classes=19):
    L = {"cp.resnet.conv1.weight": (64, 3, 7, 7), **_bn("cp.resnet.bn1", 64)}
    for li, cin, cout in [(1, 64, 64), (2, 64, 128), (3, 128, 256), (4, 256, 512)]:
        for b in (0, 1):
            p = f"cp.resnet.layer{li}.{b}"
            bin_ = cin if b == 0 else cout
            L[f"{p}.conv1.weight"] = (cout, bin_, 3, 3)
            L.update(_bn(f"{p}.bn1", cout))
            L[f"{p}.conv2.weight"] = (cout, cout, 3, 3)
            L.update(_bn(f"{p}.bn2", cout))
            if b == 0 and li > 1:
                L[f"{p}.downsample.0.weight"] = (cout, cin, 1, 1)
                L.update(_bn(f"{p}.downsample.1", cout))
    for name, cin in [("arm16", 256), ("arm32", 512)]:
        L.update(_cbr(f"cp.{name}.conv", cin, 128, 3))
        L[f"cp.{name}.conv_atten.weight"] = (128, 128, 1, 1)
        L.update(_bn(f"cp.{name}.bn_atten", 128))
    L.update(_cbr("cp.conv_head32", 128, 128, 3))
    L.update(_cbr("cp.conv_head16", 128, 128, 3))
    L.update(_cbr("cp.conv_avg", 512, 128, 1))
    L.update(_cbr("ffm.convblk", 256, 256, 1))
    L["ffm.conv1.weight"] = (64, 256, 1, 1)
    L["ffm.conv2.weight"] = (256, 64, 1, 1)
    for name, cin, mid in [("conv_out", 256, 256), ("conv_out16", 128, 64), ("conv_out32", 128, 64)]:
        L.update(_cbr(f"{name}.conv", cin, mid, 3))
        L[f"{name}.conv_out.weight"] = (n_classes, mid, 1, 1)
    return L


def test_state_dict_matches_checkpoint_layout():
    sd = BiSeNet(19).state_dict()
    layout = checkpoint_layout()
    assert set(sd) == set(layout), set(sd) ^ set(layout)
    for k, shape in layout.items():
        assert tuple(sd[k].shape) == shape, k
    # ~13.3 M parameters (the public checkpoint is a 53 MB float32 file)
    n = sum(v.numel() for k, v in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert 13_000_000 < n < 13_500_000


@pytest.mark.parametrize("prefix", ["", "module."])
def test_synthetic_checkpoint_loads_strict_and_parses(tmp_path, celeba, prefix):
    g = torch.Generator().manual_seed(0)
    state = {}
    for k, shape in checkpoint_layout().items():
        if k.endswith("num_batches_tracked"):
            state[prefix + k] = torch.tensor(79999)
        elif k.endswith("running_var"):
            state[prefix + k] = torch.rand(shape, generator=g) + 0.5
        else:
            state[prefix + k] = torch.randn(shape, generator=g) * 0.05
    ckpt = tmp_path / "79999_iter.pth"
    torch.save(state, ckpt)
    parser = get_parser("bisenet", checkpoint=ckpt, input_size=128)
    assert isinstance(parser, BiSeNetParser) and parser.name == "bisenet"
    # the loaded weights are the checkpoint's
    key = "cp.resnet.layer3.0.downsample.0.weight"
    assert torch.equal(parser.net.state_dict()[key], state[prefix + key])
    # end to end on a real face (random weights: any map, or None if no face class wins)
    img = hr_from_image(load_rgb(next(iter(sorted((celeba / "test").glob("*.jpg"))))))
    out = parser.parse(img)
    assert out is None or (out.shape == (128, 128) and out.dtype == np.uint8 and out.max() < 19)
    logits = parser.net(torch.randn(1, 3, 96, 96))
    assert [tuple(o.shape) for o in logits] == [(1, 19, 96, 96)] * 3


def test_bisenet_needs_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="79999_iter.pth"):
        get_parser("bisenet")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        get_parser("bisenet", checkpoint=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="unknown parser"):
        get_parser("nope")
