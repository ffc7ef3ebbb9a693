"""`pkdn sr` and the Python API end to end on real faces, and every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _eval_helpers import student_path, write_bad_inputs, write_lr_faces
from pkdn import metrics
from pkdn.cli import main
from pkdn.imageio import ImageError, load_rgb, save_png, to_float_tensor
from pkdn.inference import load, super_resolve

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_file(celeba, tmp_path_factory) -> Path:
    return student_path(celeba, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def lr_faces(celeba, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lr")
    return folder, write_lr_faces(celeba, folder, n=8)


def _stderr_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_sr_folder_end_to_end_beats_bicubic(model_file, lr_faces, tmp_path, capsys):
    folder, hrs = lr_faces
    out = tmp_path / "out"
    assert main(["sr", str(folder), "-o", str(out), "--model", str(model_file), "--no-progress"]) == 0
    assert "wrote 8 image(s)" in capsys.readouterr().out
    assert sorted(p.stem for p in out.iterdir()) == sorted(hrs)
    assert not [p for p in out.iterdir() if p.suffix != ".png"]  # no temporary files left
    sr, hr, bic = [], [], []
    for stem, h in hrs.items():
        img = Image.open(out / f"{stem}.png")
        assert img.size == (128, 128) and img.mode == "RGB"
        sr.append(to_float_tensor(img))
        hr.append(to_float_tensor(h))
        bic.append(to_float_tensor(Image.open(folder / f"{stem}.png").resize((128, 128), Image.BICUBIC)))
    sr, hr, bic = torch.stack(sr), torch.stack(hr), torch.stack(bic)
    assert metrics.psnr_y(sr, hr).mean() > metrics.psnr_y(bic, hr).mean()
    assert metrics.ssim_y(sr, hr).mean() > metrics.ssim_y(bic, hr).mean()


def test_sr_subprocess_files_and_globs(model_file, lr_faces, tmp_path):
    folder, hrs = lr_faces
    stems = sorted(hrs)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [
        sys.executable,
        "-m",
        "pkdn.cli",
        "sr",
        str(folder / f"{stems[0]}.png"),
        str(folder / f"{stems[1][:-1]}*.png"),
        "-o",
        str(out),
        "--model",
        str(model_file),
        "--batch-size",
        "2",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    made = sorted(p.stem for p in out.glob("*.png"))
    assert stems[0] in made and stems[1] in made
    assert all(Image.open(p).size == (128, 128) for p in out.glob("*.png"))


def test_python_api_pil_and_tensor(model_file, lr_faces):
    folder, hrs = lr_faces
    model = load(model_file)
    lr = Image.open(folder / f"{sorted(hrs)[0]}.png").convert("RGB")
    out = super_resolve(model, lr)
    assert isinstance(out, Image.Image) and out.size == (128, 128)
    t = to_float_tensor(lr)
    one = super_resolve(model, t)
    assert one.shape == (3, 128, 128) and 0 <= one.min() and one.max() <= 1
    batch = super_resolve(model, torch.stack([t, t.flip(-1)]), batch_size=1)
    assert batch.shape == (2, 3, 128, 128)
    assert torch.allclose(batch[0], one, atol=1e-5)
    assert np.abs(np.asarray(out, dtype=np.int16) - np.rint(one.permute(1, 2, 0).numpy() * 255)).max() <= 1


def test_other_sizes_are_padded_and_cropped(model_file, tmp_path, capsys):
    model = load(model_file)
    for h, w in [(15, 13), (1, 5), (24, 16)]:
        assert super_resolve(model, torch.rand(3, h, w)).shape == (3, 8 * h, 8 * w)
    rgb = (np.random.default_rng(1).random((11, 21, 3)) * 255).astype(np.uint8)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rgb).save(src / "odd.png")
    assert main(["sr", str(src / "odd.png"), "-o", str(tmp_path / "o"), "--model", str(model_file)]) == 0
    assert Image.open(tmp_path / "o" / "odd.png").size == (168, 88)


def test_teacher_is_refused(lr_faces, tmp_path, capsys):
    from pkdn.checkpoint import save_model
    from pkdn.models import build_model

    teacher = tmp_path / "teacher.safetensors"
    save_model(teacher, build_model("teacher", "tiny"))
    folder, _ = lr_faces
    out = tmp_path / "out"
    assert main(["sr", str(folder), "-o", str(out), "--model", str(teacher)]) == 2
    err = capsys.readouterr().err
    assert "teacher" in err and "parsing map" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert main(["eval", "--model", str(teacher), str(folder)]) == 2
    assert "teacher" in capsys.readouterr().err


def test_every_bad_input_is_named_and_the_rest_processed(model_file, lr_faces, tmp_path, capsys):
    folder, hrs = lr_faces
    src = tmp_path / "in"
    bad = write_bad_inputs(src, folder / f"{sorted(hrs)[0]}.png")
    (src / "good.png").write_bytes((folder / f"{sorted(hrs)[0]}.png").read_bytes())
    out = tmp_path / "out"
    # --crop: the 12 x 800 image is refused as a face crop too large for x8, not taken as a photo
    rc = main(["sr", str(src), "-o", str(out), "--model", str(model_file), "--no-progress", "--crop"])
    lines = _stderr_lines(capsys)
    assert rc == 1  # some failed
    errors = [line for line in lines if line.startswith("pkdn sr: error: ")]
    warnings = [line for line in lines if line.startswith("pkdn sr: warning: ")]
    assert len(errors) + len(warnings) == len(lines)
    failing = ["corrupt", "truncated", "non-image", "empty", "huge", "too-large-for-sr"]
    converted = ["grayscale", "rgba", "16-bit"]  # converted to 8-bit RGB with a one-line warning
    for kind in failing:
        named = [line for line in errors if str(bad[kind]) in line]
        assert len(named) == 1, (kind, lines)
        assert not (out / f"{bad[kind].stem}.png").exists()
    for kind in converted:
        assert len([line for line in warnings if str(bad[kind]) in line]) == 1, (kind, lines)
        assert Image.open(out / f"{bad[kind].stem}.png").size == (128, 128)
    assert Image.open(out / "good.png").size == (128, 128)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.png" for s in ["good", "gray", "rgba", "deep16"])

    # --strict: the convertible ones are refused too, each with one error line
    out2 = tmp_path / "out2"
    assert (
        main(["sr", str(src), "-o", str(out2), "--model", str(model_file), "--strict", "--no-progress", "--crop"]) == 1
    )
    errors = [line for line in _stderr_lines(capsys) if line.startswith("pkdn sr: error: ")]
    for kind in failing + converted:
        assert len([line for line in errors if str(bad[kind]) in line]) == 1, kind
    assert sorted(p.name for p in out2.iterdir()) == ["good.png"]


def test_output_dir_equal_to_input_dir_is_refused(model_file, lr_faces, tmp_path, capsys):
    folder, hrs = lr_faces
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    for out in (folder, folder / ".", Path(os.path.relpath(folder))):
        assert main(["sr", str(folder / f"{sorted(hrs)[0]}.png"), "-o", str(out), "--model", str(model_file)]) == 2
        assert "input folder" in capsys.readouterr().err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before


def test_output_named_like_an_image_is_refused(model_file, lr_faces, tmp_path, capsys):
    # `-o out.png` (a file name, not a folder) is refused before any work, in both modes
    folder, hrs = lr_faces
    face = str(folder / f"{sorted(hrs)[0]}.png")
    for extra in ([], ["--whole"]):
        assert main(["sr", face, "-o", str(tmp_path / "out.PNG"), "--model", str(model_file), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("pkdn sr: error: ") and "out.PNG: looks like an image file name" in err
        assert len(err.splitlines()) == 1
    assert not (tmp_path / "out.PNG").exists()
    # a folder that happens to be called so, made by the user, is still a folder
    (tmp_path / "faces.png").mkdir()
    assert main(["sr", face, "-o", str(tmp_path / "faces.png"), "--model", str(model_file)]) == 0
    assert (tmp_path / "faces.png" / f"{sorted(hrs)[0]}.png").is_file()


def test_missing_inputs_and_duplicate_stems(model_file, lr_faces, tmp_path, capsys):
    folder, hrs = lr_faces
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    stem = sorted(hrs)[0]
    (a / "face.png").write_bytes((folder / f"{stem}.png").read_bytes())
    Image.open(folder / f"{stem}.png").save(b / "face.jpg")
    rc = main(
        [
            "sr",
            str(a / "face.png"),
            str(b / "face.jpg"),
            str(tmp_path / "nope.png"),
            "-o",
            str(tmp_path / "o"),
            "--model",
            str(model_file),
        ]
    )
    lines = _stderr_lines(capsys)
    assert rc == 1
    assert any("nope.png" in line and "no such file" in line for line in lines)
    assert any("face.jpg" in line and "already written" in line for line in lines)
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["face.png"]


def test_auto_mode_takes_each_input_as_crop_or_photo(celeba, tmp_path, capsys):
    """Without --whole or --crop, `pkdn sr` and Restorer.files ask pkdn.kind.input_kind per input: a 16 px crop
    is enlarged whole, the 160 x 120 group photo gets the whole-photo job; one note line says so."""
    pytest.importorskip("cv2", reason="whole-photo mode (the whole extra) is part of the test extra")
    from pkdn.faces.synthetic import background_images, make_photo
    from pkdn.restore import Restorer

    faces = sorted((celeba / "test").glob("*.jpg"))[:50]
    _, lr, true = make_photo(faces, background_images()[0], np.random.default_rng(3), side_list=[15.0, 24.0, 34.0])
    src = tmp_path / "in"
    src.mkdir()
    lr.crop((40, 30, 56, 46)).save(src / "crop.png")
    lr.save(src / "photo.png")
    out = tmp_path / "out"
    assert main(["sr", str(src), "-o", str(out), "--model", "lite", "--upscale", "2", "--no-progress"]) == 0
    std = capsys.readouterr()
    notes = [line for line in std.err.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("pkdn sr: note: ") and "photo.png (160x120)" in notes[0], notes
    assert "wrote 1 image(s) and 1 photo(s)" in std.out
    assert Image.open(out / "crop.png").size == (128, 128) and not (out / "crop.json").exists()
    assert Image.open(out / "photo.png").size == (320, 240)
    doc = json.loads((out / "photo.json").read_text())
    assert doc["model"] == "lite" and len(doc["faces"]) >= len(true) - 1
    # the Python API decides the same way, on one network
    report = Restorer("lite").files([src], tmp_path / "api")
    assert report.ok and report.done == {"crop": 1, "photo": 1}, report.failed
    assert Image.open(tmp_path / "api" / "photo.png").size == (1280, 960)
    assert json.loads((tmp_path / "api" / "photo.json").read_text())["faces"] == doc["faces"]  # input pixels
    # forced: --crop enlarges the photo whole, --whole looks for faces in the crop too
    assert main(["sr", str(src / "photo.png"), "-o", str(tmp_path / "c"), "--model", "lite", "--crop"]) == 0
    assert Image.open(tmp_path / "c" / "photo.png").size == (1280, 960) and not (tmp_path / "c" / "photo.json").exists()


def test_torchrun_shares_photos_too(celeba, tmp_path):
    """`pkdn sr --whole` under torchrun: each process takes every other photo; one summary for all."""
    from _torchrun import torchrun_pkdn
    from pkdn.faces.synthetic import background_images, make_photo

    faces = sorted((celeba / "test").glob("*.jpg"))[:50]
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(5)
    for i in range(3):
        make_photo(faces, background_images()[i], rng, size=(96, 72), count=2)[1].save(src / f"p{i}.png")
    out = tmp_path / "out"
    r = torchrun_pkdn(["sr", "--whole", str(src), "-o", str(out), "--model", "lite", "--upscale", "1", "--no-progress"])
    assert r.returncode == 0, r.stderr[-3000:]
    summaries = [line for line in r.stdout.splitlines() if line.startswith("wrote ")]
    assert len(summaries) == 1 and summaries[0].startswith(f"wrote 3 photo(s) to {out} by 2 processes ["), r.stdout
    for i in range(3):
        assert Image.open(out / f"p{i}.png").size == (96, 72)
        assert json.loads((out / f"p{i}.json").read_text())["size"] == [96, 72]


def test_one_decoder_for_files_and_uploaded_bytes(model_file, lr_faces, tmp_path):
    """load_rgb takes a path or the bytes of a file: the same pixels, notes and one-line problems either way."""
    folder, hrs = lr_faces
    bad = write_bad_inputs(tmp_path / "in", folder / f"{sorted(hrs)[0]}.png")
    for kind, path in bad.items():
        from_file, from_bytes = [], []
        try:
            a = load_rgb(path, min_size=2, notes=from_file)
        except ImageError as e:
            a = e
        try:
            b = load_rgb(path.read_bytes(), name=str(path), min_size=2, notes=from_bytes)
        except ImageError as e:
            b = e
        if isinstance(a, ImageError):
            assert isinstance(b, ImageError) and (a.problem, a.kind) == (b.problem, b.kind), kind
        else:
            assert np.array_equal(np.asarray(a), np.asarray(b)) and from_file == from_bytes, kind
    with pytest.raises(ImageError, match="at most 100 px a side") as e:
        load_rgb(bad["too-large-for-sr"].read_bytes(), max_side=100)
    assert e.value.kind == "too_large" and str(e.value).startswith("upload: ")


def test_png_writes_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    img = Image.new("RGB", (8, 8), (10, 20, 30))

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError):
        save_png(img, target)
    assert list(tmp_path.iterdir()) == []  # neither a partial file nor a temporary one
    monkeypatch.undo()
    save_png(img, target)
    assert Image.open(target).getpixel((0, 0)) == (10, 20, 30)
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when CUDA is missing")
def test_cuda_without_a_gpu_is_a_clear_error(model_file, lr_faces, tmp_path, capsys):
    folder, _ = lr_faces
    assert main(["sr", str(folder), "-o", str(tmp_path / "o"), "--model", str(model_file), "--device", "cuda"]) == 2
    assert "CUDA" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
