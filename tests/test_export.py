"""`pkdn export`: the ONNX graph runs in onnxruntime and matches PyTorch to 1e-4 on real faces."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from _eval_helpers import student_path, write_lr_faces
from pkdn.cli import main
from pkdn.export import onnx_run, onnx_session
from pkdn.imageio import to_float_tensor
from pkdn.inference import load, super_resolve

pytest.importorskip("onnxruntime", reason="the export extra (onnx, onnxruntime) is part of the test extra")


def test_export_parity_on_real_faces(celeba, tmp_path, capsys):
    model_file = student_path(celeba, tmp_path)
    onnx_file = tmp_path / "student.onnx"
    assert main(["export", str(onnx_file), "--model", str(model_file)]) == 0
    out = capsys.readouterr().out
    assert "max abs difference" in out and "(ok)" in out
    hrs = write_lr_faces(celeba, tmp_path / "lr", n=5)
    lr = torch.stack([to_float_tensor(Image.open(tmp_path / "lr" / f"{s}.png")) for s in sorted(hrs)])
    sess = onnx_session(onnx_file)
    model = load(model_file)
    for batch in (lr[:1], lr):  # dynamic batch
        got = onnx_run(sess, batch)
        want = super_resolve(model, batch)
        assert got.shape == want.shape == (batch.shape[0], 3, 128, 128)
        assert (got - want).abs().max().item() <= 1e-4
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_export_refuses_teacher(tmp_path, capsys):
    from pkdn.checkpoint import save_model
    from pkdn.models import build_model

    teacher = tmp_path / "t.safetensors"
    save_model(teacher, build_model("teacher", "tiny"))
    assert main(["export", str(tmp_path / "t.onnx"), "--model", str(teacher)]) == 2
    assert "teacher" in capsys.readouterr().err
    assert not (tmp_path / "t.onnx").exists()
