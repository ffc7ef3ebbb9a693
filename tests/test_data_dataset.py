"""FaceSRDataset: tensors, pairing by name, grouping, joint augmentation."""

import numpy as np
import pytest
import torch
from PIL import Image

from pkdn.data.dataset import FaceSRDataset
from pkdn.data.prepare import prepare
from pkdn.priors import get_parser
from pkdn.priors.labels import CLASS_ID


@pytest.fixture(scope="module")
def root(tmp_path_factory, celeba):
    out = tmp_path_factory.mktemp("prepared")
    prepare(celeba, out, limit=3, parser=get_parser("landmarks"), progress=False)
    return out


def test_items(root):
    ds = FaceSRDataset(root, "test")
    assert len(ds) == 3
    it = ds[0]
    assert it["lr"].shape == (3, 16, 16) and "lr_up" not in it and it["hr"].shape == (3, 128, 128)
    assert it["parsing"].shape == (19, 128, 128) and torch.all(it["parsing"].sum(0) == 1)
    for k in ("lr", "hr"):
        assert it[k].dtype == torch.float32 and 0 <= it[k].min() and it[k].max() <= 1
    lr = Image.open(root / "test" / "lr" / f"{it['name']}.png")
    ref = np.asarray(lr, dtype=np.float32) / 255
    assert torch.equal(it["lr"], torch.from_numpy(ref).permute(2, 0, 1))
    lab = np.array(Image.open(root / "test" / "parsing" / f"{it['name']}.png"))
    assert torch.equal(it["parsing"].argmax(0), torch.from_numpy(lab).long())
    assert FaceSRDataset(root, "val", parsing="grouped")[1]["parsing"].shape == (11, 128, 128)
    assert "parsing" not in FaceSRDataset(root, "train", with_parsing=False)[0]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["hr"].shape == (2, 3, 128, 128) and len(batch["name"]) == 2


def test_missing_partner_is_named(root, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    name = sorted((copy / "val" / "hr").glob("*.png"))[1].stem
    (copy / "val" / "lr" / f"{name}.png").unlink()
    with pytest.raises(FileNotFoundError, match=f"lr/{name}.png"):
        FaceSRDataset(copy, "val")
    with pytest.raises(FileNotFoundError, match="pkdn prepare"):
        FaceSRDataset(copy, "nosplit")


def test_extra_roots_join_the_split(root, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(root, other)
    for p in (other / "train" / "hr").glob("*.png"):  # another source: different faces under its own names
        for k in ("hr", "lr", "parsing"):
            (other / "train" / k / p.name).rename(other / "train" / k / f"x{p.name}")
    (other / "train" / "hr" / "xextra.png").write_bytes(
        (root / "train" / "hr" / next(iter(sorted(q.name for q in (root / "train" / "hr").glob("*.png"))))).read_bytes()
    )
    one = FaceSRDataset(root, "train")
    with pytest.raises(FileNotFoundError, match="xextra.png"):
        FaceSRDataset(root, "train", extra_roots=[other])  # the extra HR has no LR/parsing partner
    (other / "train" / "hr" / "xextra.png").unlink()
    both = FaceSRDataset(root, "train", extra_roots=[other])
    assert len(both) == 2 * len(one)
    assert both.names[: len(one)] == one.names and all(n.startswith("x") for n in both.names[len(one) :])
    last = both[len(both) - 1]
    ref = np.asarray(Image.open(other / "train" / "hr" / f"{last['name']}.png"), dtype=np.float32) / 255
    assert torch.equal(last["hr"], torch.from_numpy(ref).permute(2, 0, 1))


def _find(ds, i, pred, tries=64):
    for s in range(tries):
        torch.manual_seed(s)
        it = ds[i]
        if pred(it):
            return it
    raise AssertionError("augmentation never produced the wanted transform")


def test_flip_swaps_left_right_classes(root):
    plain = FaceSRDataset(root, "test")[0]
    ds = FaceSRDataset(root, "test", augment=True, rotate=False)
    flipped = _find(ds, 0, lambda it: torch.equal(it["hr"], plain["hr"].flip(-1)))
    assert torch.equal(flipped["lr"], plain["lr"].flip(-1))
    p, q = plain["parsing"], flipped["parsing"]
    for a, b in [("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear")]:
        assert torch.equal(q[CLASS_ID[a]], p[CLASS_ID[b]].flip(-1))
        assert torch.equal(q[CLASS_ID[b]], p[CLASS_ID[a]].flip(-1))
    assert torch.equal(q[CLASS_ID["nose"]], p[CLASS_ID["nose"]].flip(-1))
    assert p[CLASS_ID["l_eye"]].sum() > 0
    # after the flip l_eye is still on the image's left
    xs = lambda m: torch.nonzero(m)[:, 1].float().mean()  # noqa: E731
    assert xs(q[CLASS_ID["l_eye"]]) < xs(q[CLASS_ID["r_eye"]])


def test_rotation_is_joint_and_seeded(root):
    plain = FaceSRDataset(root, "test")[1]
    ds = FaceSRDataset(root, "test", augment=True, flip=False)
    rot = _find(ds, 1, lambda it: torch.equal(it["hr"], torch.rot90(plain["hr"], 1, (1, 2))))
    assert torch.equal(rot["lr"], torch.rot90(plain["lr"], 1, (1, 2)))
    assert torch.equal(rot["parsing"], torch.rot90(plain["parsing"], 1, (1, 2)))
    torch.manual_seed(5)
    a = ds[1]
    torch.manual_seed(5)
    b = ds[1]
    assert torch.equal(a["hr"], b["hr"])
