import numpy as np
import pytest
import torch

from pkdn.priors import labels
from pkdn.priors.labels import CLASSES, FLIP_SWAP, flip_labels, num_channels, to_tensor


def test_classes_in_bisenet_order():
    assert CLASSES[:6] == ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye")
    assert CLASSES[10] == "nose" and CLASSES[14] == "neck" and CLASSES[17] == "hair" and CLASSES[18] == "hat"
    assert len(CLASSES) == 19 and labels.PALETTE.shape == (19, 3)


def test_channels_and_one_hot():
    assert num_channels("full") == 19 and num_channels("grouped") == 11 and num_channels("binary") == 1
    lm = np.random.default_rng(0).integers(0, 19, (7, 9)).astype(np.uint8)
    t = to_tensor(lm, "full")
    assert t.shape == (19, 7, 9) and t.dtype == torch.float32
    assert torch.equal(t.argmax(0), torch.from_numpy(lm).long()) and torch.all(t.sum(0) == 1)
    g = to_tensor(lm, "grouped")
    assert g.shape == (11, 7, 9) and torch.all(g.sum(0) == 1)
    # left and right eyes share the grouped "eyes" channel
    assert torch.equal(to_tensor(np.array([[4]], np.uint8), "grouped"), to_tensor(np.array([[5]], np.uint8), "grouped"))
    b = to_tensor(lm, "binary")
    assert b.shape == (1, 7, 9)
    with pytest.raises(ValueError, match="unknown parsing scheme"):
        num_channels("nope")
    with pytest.raises(ValueError, match="valid ids"):
        to_tensor(np.array([[19]], np.uint8))


def test_flip_swap_table():
    for a, b in [("l_brow", "r_brow"), ("l_eye", "r_eye"), ("l_ear", "r_ear")]:
        ia, ib = CLASSES.index(a), CLASSES.index(b)
        assert FLIP_SWAP[ia] == ib and FLIP_SWAP[ib] == ia
    assert FLIP_SWAP[CLASSES.index("nose")] == CLASSES.index("nose")
    lm = np.array([[4, 0, 5], [2, 10, 3]], np.uint8)
    assert flip_labels(lm).tolist() == [[4, 0, 5], [2, 10, 3]][::1] and np.array_equal(flip_labels(flip_labels(lm)), lm)
    lm2 = np.array([[4, 0, 0]], np.uint8)
    assert flip_labels(lm2).tolist() == [[0, 0, 5]]
