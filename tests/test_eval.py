"""`pkdn eval` end to end on real faces: table, CSV, grid, several models, data set layouts."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from _eval_helpers import student_path, write_lr_faces
from pkdn import metrics
from pkdn.cli import main
from pkdn.data.degrade import hr_from_image, load_rgb, lr_from_hr, upsample
from pkdn.evaluate import evaluate, find_samples
from pkdn.imageio import to_float_tensor
from pkdn.inference import load

N = 8


@pytest.fixture(scope="module")
def model_file(celeba, tmp_path_factory) -> Path:
    return student_path(celeba, tmp_path_factory.mktemp("model"))


def test_eval_cli_table_csv_grid(model_file, celeba, tmp_path, capsys):
    csv_path, grid, md = tmp_path / "scores.csv", tmp_path / "grid.png", tmp_path / "table.md"
    rc = main(
        [
            "eval",
            "--model",
            f"student={model_file}",
            "--model",
            f"again={model_file}",
            str(celeba),
            "--limit",
            str(N),
            "--csv",
            str(csv_path),
            "--grid",
            str(grid),
            "--grid-faces",
            "3",
            "--markdown",
            str(md),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    table = md.read_text()
    assert table.strip() in out
    assert "| Method | Params | PSNR (dB) | SSIM |" in table and "Y channel (BT.601), 8-px border" in table
    rows = {
        line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ") and "---" not in line
    }
    assert {"bicubic", "student", "again"} <= set(rows)

    with open(csv_path) as f:
        data = list(csv.DictReader(f))
    assert len(data) == N + 1 and data[-1]["image"] == "mean"
    per = data[:-1]
    assert [r["image"] for r in per] == [p.stem for p in sorted((celeba / "test").glob("*.jpg"))[:N]]
    mean = lambda k: sum(float(r[k]) for r in per) / N  # noqa: E731
    assert mean("student_psnr") > mean("bicubic_psnr")
    assert mean("student_ssim") > mean("bicubic_ssim")
    assert mean("student_psnr") == pytest.approx(mean("again_psnr"))
    assert float(data[-1]["student_psnr"]) == pytest.approx(mean("student_psnr"), abs=1e-5)
    assert f"{mean('student_psnr'):.2f}" in rows["student"]

    # bicubic column: the protocol applied to the project's degradation, computed independently here
    files = sorted((celeba / "test").glob("*.jpg"))[:N]
    hrs = [hr_from_image(load_rgb(f)) for f in files]
    hr = torch.stack([to_float_tensor(h) for h in hrs])
    bic = torch.stack([to_float_tensor(upsample(lr_from_hr(h))) for h in hrs])
    assert [float(r["bicubic_psnr"]) for r in per] == pytest.approx(metrics.psnr_y(bic, hr).tolist(), abs=1e-5)
    assert [float(r["bicubic_ssim"]) for r in per] == pytest.approx(metrics.ssim_y(bic, hr).tolist(), abs=1e-5)

    g = Image.open(grid)
    assert g.mode == "RGB" and g.size[0] > 5 * 128 and g.size[1] > 3 * 128  # 5 columns, 3 rows
    assert g.size[1] < 4 * 128


def test_dataset_layouts_agree(model_file, celeba, tmp_path):
    """Face crops, a prepared-style hr/ + lr/ folder and the celeba root's test/ split give the same scores."""
    crops = tmp_path / "crops"
    crops.mkdir()
    files = sorted((celeba / "test").glob("*.jpg"))[:4]
    for f in files:
        shutil.copy(f, crops / f.name)
    prepared = tmp_path / "prepared" / "test"
    hrs = write_lr_faces(celeba, prepared / "lr", n=4)
    (prepared / "hr").mkdir()
    for stem, h in hrs.items():
        h.save(prepared / "hr" / f"{stem}.png")
    assert all(s.lr_path is not None for s in find_samples(tmp_path / "prepared"))
    model = {"m": load(model_file)}
    a, _ = evaluate(model, crops)
    b, _ = evaluate(model, tmp_path / "prepared", split="test")
    c, _ = evaluate(model, celeba, split="test", limit=4)
    assert a.names == b.names == c.names == [f.stem for f in files]
    for r in (b, c):
        for m in ("bicubic", "m"):
            assert r.psnr[m] == pytest.approx(a.psnr[m], abs=1e-9)
            assert r.ssim[m] == pytest.approx(a.ssim[m], abs=1e-9)


def test_eval_reports_bad_images_and_missing_dataset(model_file, celeba, tmp_path, capsys):
    d = tmp_path / "faces"
    d.mkdir()
    for f in sorted((celeba / "test").glob("*.jpg"))[:2]:
        shutil.copy(f, d / f.name)
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    assert main(["eval", "--model", str(model_file), str(d)]) == 1
    cap = capsys.readouterr()
    assert "broken.jpg" in cap.err and len(cap.err.strip().splitlines()) == 1
    assert "| bicubic |" in cap.out
    assert main(["eval", "--model", str(model_file), str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
