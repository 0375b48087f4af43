"""The mosaic's exact size, each tile at its exact offset, black margins, filter selection."""

import numpy as np
import pytest

import keras_filters
from keras_filters.image import mosaic


def numbered_tiles(count, height=4, width=3, channels=3):
    """Tile k is filled with the value k + 1, so that its position can be read back."""
    return [np.full((height, width, channels), k + 1, np.uint8) for k in range(count)]


def test_mosaic_size_tile_offsets_and_black_margins():
    canvas = keras_filters.stitch(numbered_tiles(6), rows=2, cols=3, margin=5)
    assert canvas.shape == (2 * 4 + 5, 3 * 3 + 2 * 5, 3) and canvas.dtype == np.uint8
    for k in range(6):
        row, column = divmod(k, 3)
        top, left = row * (4 + 5), column * (3 + 5)
        assert np.all(canvas[top : top + 4, left : left + 3] == k + 1)
    painted = np.zeros(canvas.shape[:2], bool)
    for row in range(2):
        for column in range(3):
            painted[row * 9 : row * 9 + 4, column * 8 : column * 8 + 3] = True
    assert np.all(canvas[~painted] == 0)


def test_published_mosaic_sizes():
    assert mosaic.mosaic_size(8, 8, 128, 128, 5) == (1059, 1059)
    assert mosaic.mosaic_size(8, 8, 130, 130, 5) == (1075, 1075)
    assert mosaic.mosaic_size(3, 8, 128, 128, 5) == (394, 1059)


def test_column_major_places_filter_i_plus_rows_j_at_row_i_column_j():
    canvas = mosaic.stitch(numbered_tiles(64, 2, 2), 8, 8, margin=1, order="column")
    for i in range(8):
        for j in range(8):
            assert canvas[i * 3, j * 3, 0] == i + 8 * j + 1


def test_missing_tiles_stay_black_and_greyscale_keeps_one_channel():
    canvas = mosaic.stitch(numbered_tiles(3, 2, 2, channels=1), 2, 2, margin=0)
    assert canvas.shape == (4, 4, 1)
    assert np.all(canvas[2:, 2:] == 0) and canvas[2, 0, 0] == 3


def test_stitch_refuses_bad_grids():
    with pytest.raises(ValueError, match="at least one row"):
        mosaic.stitch(numbered_tiles(1), 0, 3)
    with pytest.raises(ValueError, match="5 images do not fit a 2x2 grid"):
        mosaic.stitch(numbered_tiles(5), 2, 2)


def test_stitch_refuses_float_tiles_instead_of_wrapping_them():
    # 300.7 once became 44 in the uint8 canvas without a word.
    with pytest.raises(keras_filters.UsageError, match="uint8 tiles.*got float64") as raised:
        keras_filters.stitch(np.full((2, 4, 4, 3), 300.7), rows=1, cols=2)
    assert "\n" not in str(raised.value)
    with pytest.raises(keras_filters.UsageError, match="got int64"):
        mosaic.stitch([np.full((4, 4, 3), 7, np.int64)], 1, 1)
    mixed = numbered_tiles(1) + [np.zeros((4, 3, 3), np.float32)]
    with pytest.raises(keras_filters.UsageError, match="got float32"):
        mosaic.stitch(mixed, 1, 2)


@pytest.mark.parametrize(
    "rows, cols, shown",
    [(1.5, 2, "rows=1.5, cols=2"), (True, 2, "rows=True"), (2, -1, "cols=-1"), (2, "2", "'2'")],
)
def test_stitch_refuses_rows_and_cols_that_are_not_positive_integers(rows, cols, shown):
    with pytest.raises(keras_filters.UsageError, match=f"at least one row.*{shown}.*integers ≥ 1"):
        mosaic.stitch(numbered_tiles(2), rows, cols)


@pytest.mark.parametrize(
    "images, shape",
    [
        (np.zeros((4, 4, 3), np.uint8), r"an array of shape \(4, 4, 3\)"),
        (np.zeros((2, 4, 4), np.uint8), r"an array of shape \(2, 4, 4\)"),
        ([np.zeros((4, 4), np.uint8)], r"tiles of shape \(4, 4\)"),
    ],
)
def test_stitch_refuses_tiles_that_are_not_n_height_width_channels(images, shape):
    with pytest.raises(keras_filters.UsageError, match=f"takes tiles \\(N, height.*got {shape}"):
        mosaic.stitch(images, 1, 1)


def test_stitch_takes_numpy_integers_for_the_grid():
    canvas = mosaic.stitch(np.stack(numbered_tiles(2)), np.int64(1), np.int32(2), np.int8(1))
    assert canvas.shape == (4, 7, 3)


def test_top_selection_orders_by_loss_and_drops_dead_filters():
    losses = np.array([0.5, 3.0, 0.0, 2.0, -1.0, 1.0])
    usable = losses > 0
    selection = mosaic.select_filters(losses, usable, 2, 2, "top")
    assert selection.positions == [1, 3, 5, 0] and selection.warning is None


def test_first_selection_keeps_index_order():
    losses = np.array([0.5, 3.0, 0.0, 2.0])
    selection = mosaic.select_filters(losses, losses > 0, 2, 2, "first")
    assert selection.positions == [0, 1, 2, 3]


def test_first_selection_of_more_filters_than_the_grid_holds_says_how_many_it_shows():
    losses = np.array([0.5, 3.0, 0.0, 2.0, 1.0, 4.0])
    selection = mosaic.select_filters(losses, losses > 0, 1, 4, "first")
    assert selection.positions == [0, 1, 2, 3] and (selection.rows, selection.cols) == (1, 4)
    assert selection.warning == (
        "showing the first 4 of the 6 filters tried: a 1x4 grid holds 4; set grid_rows=0 and "
        "grid_cols=0 for a grid that holds them all, or try fewer filters"
    )
    # "top" shows the best of the filters tried by design, and a grid they fill leaves none out.
    assert mosaic.select_filters(losses, losses > 0, 1, 4, "top").warning is None
    assert mosaic.select_filters(losses[:4], losses[:4] > 0, 2, 2, "first").warning is None


def test_too_few_filters_fall_back_to_the_largest_square_with_one_warning():
    losses = np.array([5.0, 0.0, 4.0, 3.0, 2.0, 0.0, 1.0])
    selection = mosaic.select_filters(losses, losses > 0, 8, 8, "top")
    assert (selection.rows, selection.cols) == (2, 2)
    assert selection.positions == [0, 2, 3, 4]
    assert selection.warning.count("\n") == 0 and "only 5 filters" in selection.warning


def test_all_dead_gives_an_empty_selection_and_a_warning():
    selection = mosaic.select_filters(np.zeros(4), np.zeros(4, bool), 2, 2, "top")
    assert selection.positions == [] and "no filters" in selection.warning


@pytest.mark.parametrize("rows, cols", [(2, 2), (0, 0)])
def test_no_filters_tried_give_a_0x0_grid_without_a_warning(rows, cols):
    # A shard with no share of the layer: nothing was left out, so nothing to warn about.
    selection = mosaic.select_filters(np.zeros(0), np.zeros(0, bool), rows, cols, "top")
    assert selection == mosaic.Selection([], 0, 0, None)


@pytest.mark.parametrize(
    "count, grid", [(1, (1, 1)), (2, (1, 2)), (6, (2, 3)), (25, (5, 5)), (32, (6, 6)), (64, (8, 8))]
)
def test_fitting_grid_is_the_smallest_near_square_that_holds_them_all(count, grid):
    assert mosaic.fitting_grid(count) == grid
    rows, cols = grid
    assert rows * cols >= count and (rows - 1) * cols < count and cols - rows in (0, 1)


def test_automatic_grid_shows_every_selected_filter_with_empty_cells_at_the_end():
    losses = np.arange(7, dtype=float)
    selection = mosaic.select_filters(losses, losses >= 0, 0, 0, "first")
    assert (selection.rows, selection.cols) == (3, 3) and selection.positions == list(range(7))
    tiles = np.full((7, 4, 4, 3), 200, np.uint8)
    pixels = mosaic.stitch(tiles, selection.rows, selection.cols, margin=1)
    assert pixels.shape == (14, 14, 3)
    assert (pixels[10:, 5:9] == 0).all() and (pixels[10:, 10:] == 0).all()  # cells 8 and 9
    assert (pixels[10:, :4] == 200).all()  # cell 7 holds the last filter
