"""The Restorer: one model load, a reported compute path, batched images, files split across torchrun processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from _eval_helpers import student_path, write_lr_faces
from _torchrun import torchrun_pkdn
from pkdn import metrics
from pkdn.checkpoint import UPRIGHT_ONLY, read_metadata, update_extra, upright_only
from pkdn.cli import main
from pkdn.imageio import to_float_tensor
from pkdn.restore import EnsembleWarning, Restorer, choose_precision

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_file(celeba, tmp_path_factory) -> Path:
    return student_path(celeba, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def faces(celeba, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lr")
    return folder, write_lr_faces(celeba, folder, n=6)


def test_path_is_chosen_and_reported(model_file):
    r = Restorer(model_file, precision="fp32")
    assert r.precision == "fp32" and r.path.startswith("cpu, float32")
    auto = Restorer(model_file)
    assert (auto.precision, auto.path.split(" (")[0]) in {("fp32", "cpu, float32"), ("bf16", "cpu, bf16 autocast")}
    assert choose_precision(torch.device("cpu"))[0] == auto.precision
    with pytest.raises(ValueError, match="precision must be one of"):
        Restorer(model_file, precision="int4")


def test_bf16_stays_within_the_quality_budget(model_file, faces):
    """bf16 autocast (the CPU default where it is native) changes PSNR by far less than 0.02 dB."""
    folder, hrs = faces
    lr = torch.stack([to_float_tensor(Image.open(folder / f"{s}.png")) for s in sorted(hrs)])
    hr = torch.stack([to_float_tensor(hrs[s]) for s in sorted(hrs)])
    fp32 = Restorer(model_file, precision="fp32").tensor(lr)
    bf16 = Restorer(model_file, precision="bf16").tensor(lr)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    q = lambda t: (t * 255).round() / 255  # noqa: E731 - outputs are scored as 8-bit images
    assert abs(metrics.psnr_y(q(bf16), hr).mean() - metrics.psnr_y(q(fp32), hr).mean()) < 0.02


def test_images_of_mixed_sizes_are_batched_by_size(model_file):
    r = Restorer(model_file, precision="fp32", batch_size=2)
    imgs = [Image.new("RGB", size, (i * 40, 90, 200 - i * 30)) for i, size in enumerate([(16, 16), (12, 10)] * 3)]
    out = r.images(imgs)
    assert [o.size for o in out] == [(128, 128), (96, 80)] * 3
    assert out[0].getpixel((64, 64)) != out[2].getpixel((64, 64))  # each face its own output, in order


def test_torchrun_splits_the_inputs_across_processes(model_file, faces, tmp_path):
    folder, hrs = faces
    (folder.parent / "bad").mkdir(exist_ok=True)
    bad = folder.parent / "bad" / "broken.png"
    bad.write_text("not a png")
    out = tmp_path / "out"
    r = torchrun_pkdn(["sr", str(folder), str(bad), "-o", str(out), "--model", str(model_file), "--no-progress"])
    assert r.returncode != 0 and sorted(p.stem for p in out.glob("*.png")) == sorted(hrs), r.stderr[-3000:]
    summaries = [line for line in r.stdout.splitlines() if line.startswith("wrote ")]
    assert len(summaries) == 1 and "wrote 6 image(s)" in summaries[0] and "by 2 processes" in summaries[0]
    assert "1 input(s) failed" in summaries[0]
    assert sum("broken.png" in line and "pkdn sr: error:" in line for line in r.stderr.splitlines()) == 1


def test_self_ensemble_is_equivariant_and_adds_psnr(celeba, tmp_path):
    """--ensemble 8 averages the D4 views: its output turns with its input (non-square too), and it scores higher."""
    hrs = write_lr_faces(celeba, tmp_path, n=32)
    lr = torch.stack([to_float_tensor(Image.open(tmp_path / f"{s}.png")) for s in sorted(hrs)])
    hr = torch.stack([to_float_tensor(hrs[s]) for s in sorted(hrs)])
    plain, ens = Restorer("lite", precision="fp32"), Restorer("lite", precision="fp32", ensemble=8)
    assert ens.path.endswith("self-ensemble of 8 views")
    x = lr[:2, :, :12, :]  # 12 x 16: a rotation changes the shape, and 12 is padded to the network's multiple
    turned = torch.rot90(ens.tensor(torch.rot90(x, 1, (-2, -1)).flip(-1)).flip(-1), -1, (-2, -1))
    torch.testing.assert_close(turned, ens.tensor(x), atol=1e-5, rtol=0)
    assert not torch.allclose(plain.tensor(x), ens.tensor(x), atol=1e-3)
    q = lambda t: (t * 255).round() / 255  # noqa: E731 - outputs are scored as 8-bit images
    p1, p2, p8 = (
        metrics.psnr_y(q(Restorer("lite", precision="fp32", ensemble=n).tensor(lr)), hr).mean() for n in (1, 2, 8)
    )
    assert p8 > p2 > p1, (p1, p2, p8)  # +0.07 (2) and +0.11 dB (8) on 300 test faces
    with pytest.raises(ValueError, match="ensemble must be one of 1, 2, 8"):
        Restorer("lite", ensemble=4)


def test_eight_views_of_an_upright_only_model_are_flagged(model_file, faces, tmp_path, capsys):
    """A model file marked upright-only (trained without quarter turns) gets one note, as a Python warning,
    as one CLI line and nowhere else: 2 views, or a model that learned the turns, say nothing."""
    marked = tmp_path / "upright.safetensors"
    marked.write_bytes(model_file.read_bytes())
    update_extra(marked, **{UPRIGHT_ONLY: True})
    assert upright_only(marked) and not upright_only(model_file)
    assert read_metadata(marked)["model_config"] == read_metadata(model_file)["model_config"]
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(Restorer(marked).tensor(x), Restorer(model_file).tensor(x))  # weights untouched
    with pytest.warns(EnsembleWarning, match="upright faces only"):
        r8 = Restorer(marked, ensemble=8)
    assert len(r8.notes) == 1 and "use 2 views" in r8.notes[0]
    assert Restorer(marked, ensemble=2).notes == [] and Restorer(model_file, ensemble=8).notes == []
    folder, hrs = faces
    face = str(folder / f"{sorted(hrs)[0]}.png")
    assert main(["sr", face, "-o", str(tmp_path / "o"), "--model", str(marked), "--ensemble", "8"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("pkdn sr: warning: ") and "upright faces only" in err[0], err
    assert main(["sr", face, "-o", str(tmp_path / "o2"), "--model", str(marked), "--ensemble", "2"]) == 0
    assert capsys.readouterr().err.strip() == ""
