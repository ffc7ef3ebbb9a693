"""`pkdn prepare` on real CelebA crops: layout, values, parsing geometry, resume, bad input."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pkdn.cli import main
from pkdn.data.degrade import hr_from_image, load_rgb, lr_from_hr
from pkdn.data.prepare import discover, hash_split, prepare, read_manifest
from pkdn.priors import get_parser
from pkdn.priors.labels import CLASS_ID


@pytest.fixture(scope="module")
def parser():
    return get_parser("landmarks")


def _flat(tmp, celeba, n, start=0):
    src = tmp / "src"
    src.mkdir()
    for f in sorted((celeba / "test").glob("*.jpg"))[start : start + n]:
        shutil.copy(f, src / f.name)
    return src


def test_prepare_folder_splits(tmp_path, celeba, parser):
    out = tmp_path / "out"
    s = prepare(celeba, out, limit=2, parser=parser, progress=False)
    assert set(s.total) == {"train", "val", "test"} and s.done == {"train": 2, "val": 2, "test": 2}
    assert not s.failed and s.found_rate("test") == 1.0
    recs = read_manifest(out)
    assert len(recs) == 6 and {r["split"] for r in recs} == {"train", "val", "test"}
    for r in recs:
        for k, size in (("hr", (128, 128)), ("lr", (16, 16)), ("parsing", (128, 128))):
            im = Image.open(out / r["split"] / k / f"{r['name']}.png")
            assert im.size == size and im.mode == ("L" if k == "parsing" else "RGB")
        src = celeba / r["file"]
        assert r["name"] == src.stem and r["parser"] == "landmarks" and len(r["sha256"]) == 64
        hr = hr_from_image(load_rgb(src))
        assert np.array_equal(np.asarray(Image.open(out / r["split"] / "hr" / f"{r['name']}.png")), np.asarray(hr))
        assert np.array_equal(
            np.asarray(Image.open(out / r["split"] / "lr" / f"{r['name']}.png")), np.asarray(lr_from_hr(hr))
        )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["scale"] == 8 and cfg["hr_size"] == 128 and cfg["parser"] == "landmarks"
    assert json.loads((out / "summary.json").read_text())["done"]["test"] == 2
    with pytest.raises(ValueError, match="other settings"):
        prepare(celeba, out, limit=1, hr_size=64, parser=parser, progress=False)


def _centroid_y(lab, ids):
    ys, xs = np.nonzero(np.isin(lab, ids))
    return ys.mean(), xs.mean(), len(ys)


def test_parsing_geometry_on_real_faces(celeba, parser):
    files = sorted((celeba / "test").glob("*.jpg"))[:12]
    found = 0
    for f in files:
        lab = parser.parse(hr_from_image(load_rgb(f)))
        if lab is None:
            continue
        found += 1
        assert lab.shape == (128, 128) and lab.dtype == np.uint8 and lab.max() < 19
        by, bx, nb = _centroid_y(lab, [CLASS_ID["l_brow"], CLASS_ID["r_brow"]])
        ey, ex, ne = _centroid_y(lab, [CLASS_ID["l_eye"], CLASS_ID["r_eye"]])
        ny, nx, nn = _centroid_y(lab, [CLASS_ID["nose"]])
        my, mx, nm = _centroid_y(lab, [CLASS_ID["u_lip"], CLASS_ID["l_lip"], CLASS_ID["mouth"]])
        assert min(nb, ne, nn, nm) > 0, f.name
        assert by < ey < ny < my, (f.name, by, ey, ny, my)
        # each brow above its eye; l_* on the image's left
        for brow, eye in (("l_brow", "l_eye"), ("r_brow", "r_eye")):
            assert _centroid_y(lab, [CLASS_ID[brow]])[0] < _centroid_y(lab, [CLASS_ID[eye]])[0]
        assert _centroid_y(lab, [CLASS_ID["l_eye"]])[1] < _centroid_y(lab, [CLASS_ID["r_eye"]])[1]
        # skin surrounds the parts, hair lies above the eyes
        assert (lab == CLASS_ID["skin"]).sum() > 1500
        hy = _centroid_y(lab, [CLASS_ID["hair"]])
        assert hy[2] == 0 or hy[0] < my
    assert found >= len(files) - 1


class _Interrupting:
    """A parser that stops the run (like Ctrl-C) after ``n`` images."""

    name = "landmarks"

    def __init__(self, inner, n):
        self.inner, self.n = inner, n

    def parse(self, img):
        if self.n == 0:
            raise KeyboardInterrupt
        self.n -= 1
        return self.inner.parse(img)


def test_resume_after_interrupt_gives_same_files(tmp_path, celeba, parser):
    src = _flat(tmp_path, celeba, 5)
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    prepare(src, clean, parser=parser, split="test", progress=False)
    with pytest.raises(KeyboardInterrupt):
        prepare(src, resumed, parser=_Interrupting(parser, 2), split="test", progress=False)
    assert len(read_manifest(resumed)) == 2
    s = prepare(src, resumed, parser=parser, split="test", progress=False)
    assert s.skipped["test"] == 2 and s.prepared["test"] == 3
    files = sorted(p.relative_to(clean) for p in clean.rglob("*.png"))
    assert len(files) == 15 and files == sorted(p.relative_to(resumed) for p in resumed.rglob("*.png"))
    assert not list(resumed.rglob("*.tmp"))
    for rel in files:
        assert (clean / rel).read_bytes() == (resumed / rel).read_bytes(), rel
    assert read_manifest(clean) == read_manifest(resumed)
    # a third run does nothing
    s = prepare(src, resumed, parser=parser, split="test", progress=False)
    assert s.prepared["test"] == 0 and s.skipped["test"] == 5


def test_bad_inputs_are_reported_and_skipped(tmp_path, celeba, parser):
    src = _flat(tmp_path, celeba, 2)
    face = next(src.glob("*.jpg"))
    (src / "notes.txt").write_text("hello")
    (src / "fake.jpg").write_text("not a jpeg")
    (src / "empty.png").write_bytes(b"")
    (src / "cut.jpg").write_bytes(face.read_bytes()[:600])
    Image.new("RGB", (20, 20), (90, 90, 90)).save(src / "tiny.png")
    rgb = Image.open(face).convert("RGB")
    rgb.convert("L").save(src / "gray.png")
    rgb.convert("RGBA").save(src / "rgba.png")
    Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).save(src / "deep16.png")
    Image.new("RGB", (200, 200), (128, 128, 128)).save(src / "blank.png")  # no face
    s = prepare(src, tmp_path / "out", parser=parser, split="test", progress=False)
    failed = "\n".join(s.failed)
    for name in ("notes.txt", "fake.jpg", "empty.png", "cut.jpg", "tiny.png"):
        assert sum(name in line for line in s.failed) == 1, (name, failed)
    assert all("\n" not in line for line in s.failed)
    assert {line.split(": ")[0].rsplit("/", 1)[-1] for line in s.converted} == {"gray.png", "rgba.png", "deep16.png"}
    # 2 faces + 3 converted + the blank are prepared; the blank gets an all-background map
    assert s.done["test"] == 6 and s.faces_found["test"] == 5
    assert [p.rsplit("/", 1)[-1] for p in s.no_face] == ["blank.png"]
    assert not np.asarray(Image.open(tmp_path / "out" / "test" / "parsing" / "blank.png")).any()
    text = "\n".join(s.lines())
    assert "blank.png" in text and "cut.jpg" in text and "5 skipped" in text


def test_seeded_split_is_deterministic(tmp_path, celeba):
    src = _flat(tmp_path, celeba, 40)
    a, _ = discover(src, None, seed=3)
    b, _ = discover(src, None, seed=3)
    c, _ = discover(src, "0.5,0.25,0.25", seed=3)
    assert a == b and sum(len(v) for v in a.values()) == 40
    assert len(c["train"]) > len(a["val"]) and hash_split("195306", 3) == hash_split("195306", 3)
    assert discover(src, "val")[0]["val"] == sorted(src.glob("*.jpg"))
    with pytest.raises(ValueError, match="fractions"):
        discover(src, "0.5,0.5")


def test_cli_prepare_and_show(tmp_path, celeba, capsys):
    src = _flat(tmp_path, celeba, 3)
    out = tmp_path / "out"
    assert main(["prepare", str(src), str(out), "--split", "test", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "test: 3/3 images" in text and "images/s" in text
    png = tmp_path / "grid.png"
    assert main(["show", str(out), str(png), "-n", "3"]) == 0
    g = Image.open(png)
    assert g.mode == "RGB" and g.width > 3 * 128 and g.height > 4 * 128


def test_cut_manifest_line_is_redone(tmp_path, celeba, parser):
    src = _flat(tmp_path, celeba, 2)
    out = tmp_path / "out"
    prepare(src, out, parser=parser, split="test", progress=False)
    m = out / "manifest.jsonl"
    lines = m.read_text().splitlines(keepends=True)
    m.write_text(lines[0] + lines[1][:30])  # killed while appending the second record
    s = prepare(src, out, parser=parser, split="test", progress=False)
    assert s.skipped["test"] == 1 and s.prepared["test"] == 1 and len(read_manifest(out)) == 2


class _Flaky:
    name = "landmarks"

    def __init__(self, inner, bad):
        self.inner, self.bad = inner, bad

    def parse(self, img):
        self.bad -= 1
        if self.bad == 0:
            raise RuntimeError("model exploded\non two lines")
        return self.inner.parse(img)


def test_parser_crash_on_one_image_is_reported(tmp_path, celeba, parser):
    src = _flat(tmp_path, celeba, 3)
    s = prepare(src, tmp_path / "out", parser=_Flaky(parser, 2), split="test", progress=False)
    assert s.done["test"] == 2 and len(s.failed) == 1
    assert "parser landmarks failed (model exploded on two lines)" in s.failed[0] and "\n" not in s.failed[0]
    s = prepare(src, tmp_path / "out", parser=parser, split="test", progress=False)  # the re-run fills the gap
    assert s.done["test"] == 3 and s.prepared["test"] == 1


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pkdn prepare: error: ") and "nowhere" in err and err.count("\n") == 1
    assert main(["prepare", str(tmp_path), str(tmp_path / "out"), "--split", "0.5"]) == 2
    assert "fractions" in capsys.readouterr().err
    assert main(["show", str(tmp_path), str(tmp_path / "g.png")]) == 2
    assert "pkdn show: error:" in capsys.readouterr().err


def test_missing_checkpoint_fails_before_writing(tmp_path, celeba):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="checkpoint"):
        prepare(celeba, out, parser="bisenet", limit=1, progress=False)
    assert not out.exists()
