import pytest

from pkdn.kind import MAX_CROP_SIDE, input_kind


def test_small_images_are_crops_and_large_ones_photos():
    assert input_kind(16, 16) == "crop"
    assert input_kind(MAX_CROP_SIDE, 20) == "crop"
    assert input_kind(MAX_CROP_SIDE + 1, 20) == "photo"
    assert input_kind(200, 142) == "photo"


def test_empty_size_is_refused():
    with pytest.raises(ValueError, match="positive size"):
        input_kind(0, 16)
