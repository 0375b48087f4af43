"""Chooses which filters to show and stitches their tiles into a rows×cols mosaic."""

import dataclasses
import math

import numpy as np

from keras_filters import errors, settings
from keras_filters.settings import GRID_ORDERS as ORDERS
from keras_filters.settings import SELECTIONS

# The largest mosaic, in pixels (0.8 GB as RGB); 512 tiles of 412 px take a third of it.
MAX_MOSAIC_PIXELS = 2**28
# A dead filter's tile in a mosaic: mid-grey with a thin darker diagonal cross, so that the
# untouched starting noise of a filter that never responded is never shown as a result.
DEAD_TILE_GREY = 128
DEAD_TILE_CROSS = 64


def mosaic_size(rows: int, cols: int, tile_height: int, tile_width: int, margin: int):
    """(height, width) of a mosaic: rows·tile + (rows − 1)·margin, and the same for columns."""
    return rows * tile_height + (rows - 1) * margin, cols * tile_width + (cols - 1) * margin


def tile_position(position: int, rows: int, cols: int, order: str = "row") -> tuple[int, int]:
    """(row, column) of the `position`-th tile.

    "row" fills rows left to right, top to bottom; "column" fills columns top to bottom, so
    tile i + rows·j lands at row i, column j (Deep Learning with Python, 1st edition).
    """
    if order == "row":
        return divmod(position, cols)
    if order == "column":
        column, row = divmod(position, rows)
        return row, column
    raise ValueError(f"unknown grid_order {order!r}; choose one of: {', '.join(ORDERS)}")


def stitch(images, rows: int, cols: int, margin: int = 5, order: str = "row") -> np.ndarray:
    """Stitches equally sized tiles into one mosaic with black margins.

    Args:
        images: uint8 array (N, height, width, channels), or a sequence of uint8 arrays
            (height, width, channels), at most rows·cols; missing tiles stay black.
        rows: Rows of the grid, an integer ≥ 1.
        cols: Columns of the grid, an integer ≥ 1.
        margin: Black pixels between tiles, an integer ≥ 0. Defaults to 5.
        order: "row" (row-major) or "column" (column-major). Defaults to "row".

    Returns:
        uint8 array (rows·h + (rows − 1)·margin, cols·w + (cols − 1)·margin, channels).

    Raises:
        UsageError: For an empty grid, a margin that is not an integer ≥ 0, too many or
            unequal tiles, or tiles that are not uint8 (height, width, channels): other
            values would wrap around when written into the uint8 canvas.
    """
    if not settings.is_integer(rows) or not settings.is_integer(cols) or rows < 1 or cols < 1:
        raise errors.UsageError(
            f"a grid needs at least one row and one column; got rows={rows!r}, cols={cols!r}: "
            "use integers ≥ 1"
        )
    if not settings.is_integer(margin) or margin < 0:
        raise errors.UsageError(f"margin={margin!r} is not an integer ≥ 0; use pixels ≥ 0")
    if not isinstance(images, (list, tuple)):
        images = np.asarray(images)
        if images.ndim != 4:
            raise errors.UsageError(
                "stitch takes tiles (N, height, width, channels); got an array of shape "
                f"{images.shape}"
            )
    images = [np.asarray(image) for image in images]
    if not images:
        raise errors.UsageError("no images to stitch")
    if len(images) > rows * cols:
        raise errors.UsageError(f"{len(images)} images do not fit a {rows}x{cols} grid")
    tile_shape = images[0].shape
    if any(image.shape != tile_shape for image in images):
        raise errors.UsageError(
            f"tiles differ in shape: {sorted({image.shape for image in images})}"
        )
    for image in images:
        _check_tile(image)
    tile_height, tile_width = tile_shape[:2]
    height, width = mosaic_size(rows, cols, tile_height, tile_width, margin)
    canvas = np.zeros((height, width) + tuple(tile_shape[2:]), dtype=np.uint8)
    for position, image in enumerate(images):
        row, column = tile_position(position, rows, cols, order)
        top, left = row * (tile_height + margin), column * (tile_width + margin)
        canvas[top : top + tile_height, left : left + tile_width] = image
    return canvas


def _check_tile(tile: np.ndarray) -> None:
    """Refuses a tile that is not uint8 (height, width, channels): it would wrap in the canvas.

    Raises:
        UsageError: Naming the shape or dtype given and what stitch takes.
    """
    if tile.ndim != 3:
        raise errors.UsageError(
            f"stitch takes tiles (N, height, width, channels); got tiles of shape {tile.shape}: "
            "add a channel axis to grey tiles, e.g. images[..., None]"
        )
    if tile.dtype != np.uint8:
        raise errors.UsageError(
            f"stitch takes uint8 tiles (0 to 255); got {tile.dtype}: convert them, e.g. "
            "np.clip(images, 0, 255).astype(np.uint8), or deprocess them first"
        )


def dead_tile(height: int, width: int, channels: int) -> np.ndarray:
    """The tile that stands for a dead filter: grey, with both diagonals drawn 1 px wide."""
    tile = np.full((height, width, channels), DEAD_TILE_GREY, dtype=np.uint8)
    rows = np.arange(height)
    columns = np.round(rows * (width - 1) / max(height - 1, 1)).astype(int)
    tile[rows, columns] = DEAD_TILE_CROSS
    tile[rows, width - 1 - columns] = DEAD_TILE_CROSS
    return tile


@dataclasses.dataclass(frozen=True)
class Selection:
    """The filters a mosaic shows, in tile order, and the grid that holds them.

    Attributes:
        positions: Indices into the run's filter list, in tile order.
        rows: Rows of the grid.
        cols: Columns of the grid.
        warning: One line when the grid had to shrink, or left out filters in index order
            ("first"), else None.
    """

    positions: list
    rows: int
    cols: int
    warning: str | None = None


def fitting_grid(count: int) -> tuple[int, int]:
    """The smallest near-square grid that holds `count` tiles: ceil(√N) columns, as many rows
    as they need (32 tiles: 6×6 with 4 empty cells; 6 tiles: 2×3)."""
    if count <= 0:
        return 0, 0
    cols = math.isqrt(count - 1) + 1
    return -(-count // cols), cols


def select_filters(
    losses, usable, rows: int, cols: int, selection: str = "first", automatic: str = "fit"
) -> Selection:
    """Picks the filters for a rows×cols mosaic.

    Args:
        losses: Final objective of each filter tried.
        usable: Whether each filter may be shown ("top" leaves out the others: dead or failed).
        rows: Rows wanted; 0 together with `cols` 0 asks for an automatic grid.
        cols: Columns wanted.
        selection: "first" shows filters in index order, whatever their loss; "top" shows the
            usable filters by final loss, best first. Defaults to "first".
        automatic: The automatic grid: "fit", the smallest near-square grid that holds every
            candidate; "square", the largest square grid that the candidates fill (the Keras
            2019 example's floor(sqrt(N))²). Defaults to "fit".

    Returns:
        A `Selection`. When fewer filters remain than the grid holds, the grid shrinks to the
        largest square that they fill, and `warning` says so; no filters tried give a 0x0 grid
        without a warning. When "first" tried more filters than a given grid holds, `warning`
        says how many are shown of how many ("top" shows the best of them by design).

    Raises:
        UsageError: For an unknown selection or an empty grid.
    """
    if (rows == 0) != (cols == 0) or rows < 0 or cols < 0:
        raise errors.UsageError(
            f"grid_rows={rows}, grid_cols={cols}: a grid needs at least one row and one column, "
            "or 0 and 0 for an automatic grid"
        )
    losses = np.asarray(losses, dtype=np.float64)
    if selection == "first":
        candidates = list(range(len(losses)))
    elif selection == "top":
        candidates = [int(i) for i in np.argsort(-losses, kind="stable") if usable[i]]
    else:
        raise errors.UsageError(
            f"unknown selection {selection!r}; choose one of: {', '.join(SELECTIONS)}"
        )
    if not len(losses):  # No filter tried (a shard with no share of the layer): none left out.
        return Selection([], 0, 0)
    if rows == 0 and cols == 0:
        if automatic == "fit":
            rows, cols = fitting_grid(len(candidates))
            warning = None if candidates else "no filters to show (all dead or failed)"
            return Selection(candidates, rows, cols, warning)
        side = math.isqrt(len(candidates))
        warning = None if side else "no filters to show (all dead or failed)"
        return Selection(candidates[: side * side], side, side, warning)
    wanted = rows * cols
    if len(candidates) >= wanted:
        warning = None
        if selection == "first" and len(candidates) > wanted:
            warning = (
                f"showing the first {wanted} of the {len(candidates)} filters tried: a "
                f"{rows}x{cols} grid holds {wanted}; set grid_rows=0 and grid_cols=0 for a grid "
                "that holds them all, or try fewer filters"
            )
        return Selection(candidates[:wanted], rows, cols, warning)
    side = math.isqrt(len(candidates))
    warning = (
        f"only {len(candidates)} filters to show for a {rows}x{cols} grid; "
        f"showing the first {side * side} in a {side}x{side} grid"
    )
    if side == 0:
        warning = f"no filters to show for a {rows}x{cols} grid (all dead or failed)"
    return Selection(candidates[: side * side], side, side, warning)


def check_mosaic_size(
    rows: int, cols: int, tile: int, margin: int, num_filters: int, automatic: str = "fit"
) -> None:
    """Checks that the largest mosaic a run can make fits in memory, before the run starts.

    Args:
        rows: Rows asked for (0 with `cols` 0: automatic).
        cols: Columns asked for.
        tile: Side of a tile in pixels.
        margin: Pixels between tiles.
        num_filters: How many filters the run optimizes (a larger grid shrinks to them).
        automatic: The automatic grid, "fit" or "square". Defaults to "fit".

    Raises:
        UsageError: If the mosaic would have more than MAX_MOSAIC_PIXELS pixels.
    """
    if rows == 0 and automatic == "fit":
        rows, cols = fitting_grid(num_filters)
    elif rows * cols > num_filters or rows == 0:
        rows = cols = math.isqrt(num_filters)
    height, width = mosaic_size(rows, cols, tile, tile, margin)
    if height * width > MAX_MOSAIC_PIXELS:
        raise errors.UsageError(
            f"the mosaic would be {height}x{width} px ({rows}x{cols} tiles of {tile} px, "
            f"margin={margin}), more than {MAX_MOSAIC_PIXELS} pixels; use a smaller margin, "
            "grid or image_size"
        )
