"""pkdn.identity on real photos: dlib's embeddings tell people apart, rank-1 is counted right, and
`pkdn eval --identity` reports the identity columns.

Faces: benchmarks/data/faces (the London set: two photos, neutral and smiling, of each person).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dlib", reason='dlib is not installed (pip install "pkdn[eval]")')

from pkdn import identity  # noqa: E402
from pkdn.cli import main  # noqa: E402
from pkdn.data.degrade import hr_from_image, lr_from_hr, upsample  # noqa: E402

FACES = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "faces"
PEOPLE = ["london001", "london005", "london006", "london024", "london025", "london042", "london043", "london062"]

try:
    identity.model_dir()
except identity.IdentityUnavailable as e:  # pragma: no cover - depends on the install
    pytest.skip(str(e), allow_module_level=True)


def hr(path: Path) -> np.ndarray:
    return np.asarray(hr_from_image(Image.open(path)))


@pytest.fixture(scope="module")
def embedder() -> identity.FaceEmbedder:
    return identity.FaceEmbedder()


@pytest.fixture(scope="module")
def pairs(embedder) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of the neutral and the smiling photo of each of PEOPLE (same order)."""
    neutral = embedder.embed([hr(FACES / f"{p}__neutral.jpg") for p in PEOPLE])
    smiling = embedder.embed([hr(FACES / f"{p}__smiling.jpg") for p in PEOPLE])
    return neutral, smiling


def test_dlib_finds_the_framed_faces(embedder):
    """On pkdn's 128 px framing dlib's detector finds the face, where the fallback box says it is."""
    for p in PEOPLE[:3]:
        x0, y0, x1, y1 = embedder.box(hr(FACES / f"{p}__neutral.jpg"))
        fx0, fy0, fx1, fy1 = (v * 128 for v in identity.FRAMED_BOX)
        assert abs((x0 + x1) / 2 - (fx0 + fx1) / 2) < 12 and abs((y0 + y1) / 2 - (fy0 + fy1) / 2) < 12
        assert 40 < x1 - x0 < 100


def test_same_person_closer_than_different_people(pairs):
    neutral, smiling = pairs
    d = np.linalg.norm(neutral[:, None] - smiling[None], axis=2)  # d[i, j]: neutral i vs smiling j
    same, other = np.diag(d), d[~np.eye(len(PEOPLE), dtype=bool)]
    assert same.max() < identity.SAME_PERSON, same  # two photos of one person: dlib's "same person"
    assert other.min() > same.max(), (same, other.min())
    assert other.mean() > identity.SAME_PERSON
    assert np.all(np.diag(d) == d.min(axis=1))  # each neutral photo's nearest smiling photo is its own person


def test_identical_face_has_zero_distance_and_a_blurred_one_drifts(embedder):
    face = hr(FACES / f"{PEOPLE[0]}__neutral.jpg")
    blurred = np.asarray(upsample(lr_from_hr(Image.fromarray(face))))
    box = embedder.box(face)
    e = embedder.embed([face, face, blurred], [box] * 3)
    dist = identity.distances(e[1:], e[:1].repeat(2, axis=0))
    assert dist[0] < 1e-5
    assert dist[1] > 0.05  # x8 bicubic loses identity detail


def test_faceless_image_falls_back_to_the_framed_box(embedder):
    flat = np.full((128, 128, 3), 128, np.uint8)
    assert embedder.box(flat) == tuple(round(v * 128) for v in identity.FRAMED_BOX)
    assert embedder.embed([flat]).shape == (1, 128)
    with pytest.raises(ValueError, match="RGB uint8"):
        embedder.box(flat.astype(np.float32))


def test_rank1_against_a_hand_count(pairs):
    neutral, smiling = pairs
    gallery = np.concatenate([neutral, smiling])
    ids = PEOPLE + PEOPLE
    # own face (ids None): the gallery itself as probe hits everywhere; shifting the probes by one misses
    assert identity.rank1(gallery, gallery).tolist() == [1.0] * len(gallery)
    assert identity.rank1(np.roll(gallery, 1, axis=0), gallery).sum() == 0
    # same person, own HR in the gallery: each probe swapped for the person's other photo is a miss as
    # "own face" and a hit as "same person"; probes from other people miss either way
    swapped = np.roll(gallery, len(PEOPLE), axis=0)
    assert identity.rank1(swapped, gallery).sum() == 0
    assert identity.rank1(swapped, gallery, ids).tolist() == [1.0] * len(gallery)
    assert identity.rank1(np.roll(gallery, 1, axis=0), gallery, ids).sum() == 0
    # own HR left out: a hit is the other photo of the person
    got = identity.rank1(gallery, gallery, ids, leave_own_out=True)
    want = []
    for i, e in enumerate(gallery):
        d = [np.linalg.norm(e - g) if j != i else np.inf for j, g in enumerate(gallery)]
        want.append(float(ids[int(np.argmin(d))] == ids[i]))
    assert got.tolist() == want
    assert got.mean() == 1.0  # the pairs test above: the other photo is the nearest
    # a person with one photo is no probe, only a distractor
    got = identity.rank1(gallery[:-1], gallery[:-1], ids[:-1], leave_own_out=True)
    assert np.isnan(got[len(PEOPLE) - 1]) and np.isfinite(np.delete(got, len(PEOPLE) - 1)).all()
    with pytest.raises(ValueError, match="ids"):
        identity.rank1(gallery, gallery, ids[:-1])


def test_eval_identity_cli(tmp_path, capsys):
    """`pkdn eval --identity` on a folder of the faces: identity columns in the table and the CSV."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for p in PEOPLE[:4]:
        (folder / f"{p}.jpg").write_bytes((FACES / f"{p}__neutral.jpg").read_bytes())
    model = Path(__file__).parent / "data" / "tiny_student.safetensors"
    csv_path = tmp_path / "s.csv"
    rc = main(["eval", str(folder), "--model", f"tiny={model}", "--identity", "--csv", str(csv_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "| ID distance | rank-1 |" in out and "Identity: dlib" in out
    rows = list(csv.DictReader(open(csv_path)))
    assert [r["image"] for r in rows] == [*PEOPLE[:4], "mean"]
    dists = [float(r["bicubic_id_dist"]) for r in rows[:-1]]
    assert all(0 < d < 1.5 for d in dists)
    assert abs(float(rows[-1]["tiny_id_dist"]) - np.mean([float(r["tiny_id_dist"]) for r in rows[:-1]])) < 1e-5
