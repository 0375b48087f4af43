"""Deprocessing gives uint8 tiles with the references' contrast, range and crop."""

import numpy as np
import pytest

from keras_filters.image import deprocess


def test_standard_deprocess_matches_the_formula():
    image = np.random.default_rng(0).normal(128, 20, (10, 10, 3))
    tile = deprocess.deprocess_image(image, scale=0.1, epsilon=1e-5)
    expected = np.clip((image - image.mean()) / (image.std() + 1e-5) * 0.1 + 0.5, 0, 1) * 255
    assert tile.dtype == np.uint8 and tile.shape == (10, 10, 3)
    np.testing.assert_array_equal(tile, expected.astype(np.uint8))
    # ×0.1 keeps about ±5 std inside [0, 255]: mean near 127, nothing clipped at this spread.
    assert abs(tile.mean() - 127) < 2 and tile.min() > 0 and tile.max() < 255


def test_dlwp2_deprocess_matches_the_formula():
    image = np.random.default_rng(1).normal(0.5, 0.1, (8, 8, 3))
    tile = deprocess.deprocess_image(image, style="dlwp2")
    expected = np.clip((image - image.mean()) / image.std() * 64 + 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(tile, expected)
    assert tile.min() == 0 and tile.max() == 255  # ±2 std reach the clip


def test_crop_cuts_each_side_after_normalizing_the_whole_image():
    image = np.random.default_rng(2).normal(size=(60, 50, 1))
    whole = deprocess.deprocess_image(image, scale=0.15)
    cropped = deprocess.deprocess_image(image, scale=0.15, crop=25 // 5)
    assert cropped.shape == (50, 40, 1)
    np.testing.assert_array_equal(cropped, whole[5:-5, 5:-5])


def test_picture_tile_maps_the_unit_range_as_it_is():
    unit = np.array([[[0.0, 0.5, 1.0], [-0.2, 1.3, 0.25]]])
    np.testing.assert_array_equal(deprocess.picture_tile(unit), [[[0, 128, 255], [0, 255, 64]]])
    assert deprocess.picture_tile(np.full((6, 6, 1), 0.5), crop=2).shape == (2, 2, 1)


def test_constant_image_gives_grey_not_nan():
    for style in deprocess.CONTRAST_STYLES:
        tile = deprocess.deprocess_image(np.full((4, 4, 3), 7.0), style=style)
        assert np.all((tile == 127) | (tile == 128))


def test_crop_that_leaves_nothing_is_refused():
    with pytest.raises(ValueError, match="crop=5 leaves no pixels of a 10x10 image"):
        deprocess.deprocess_image(np.zeros((10, 10, 3)), crop=5)
