"""Differentiable resampling of image batches: per-image affine warps and antialiased decimation.

Both are written with `keras.ops`, so every backend runs the same code. The warps work on a
spatial size known only when the step runs (the TensorFlow step leaves it open); the decimation
needs it when it is traced (the Fourier parameterization, its one user, traces per shape).
Positions are (row, column) in pixels with pixel centres at whole numbers, as
`keras.ops.image` has them.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_filters import settings

# What enters from outside the picture, in `keras.ops.image.affine_transform`'s words:
# "reflect" is (d c b a | a b c d | d c b a), the edge pixel repeated once (NumPy's
# "symmetric"); "nearest" repeats the edge; "wrap" tiles; "constant" brings in zeros.
FILL_MODES = ("reflect", "nearest", "wrap", "constant")


def warps_by_gather() -> bool:
    """Whether `affine` resamples with `affine_by_gather` on the current Keras backend.

    On TensorFlow it does: `keras.ops.image.affine_transform` is an image op there whose
    registered gradient (the inverse warp of the upstream gradient) is exact only for
    whole-pixel shifts away from the borders, and which has no XLA kernel. The gathers give the
    same pixels with the exact gradient, and XLA compiles them (`jit_compile`, TPUs). Keras'
    JAX warp is differentiated exactly as it is.
    """
    return keras.backend.backend() == "tensorflow"


def affine(images, matrices, fill_mode: str = "reflect"):
    """Warps each image by its own affine map about the image centre, bilinearly.

    The output pixel at offset p = (row, column, 1) from the centre takes the input at offset
    `matrices[i] @ p` from the centre: the matrix maps output to source, so warps chain by
    multiplying their matrices (first warp on the left). One call resamples once, however many
    warps the matrix holds. The warp is `keras.ops.image.affine_transform`, or the same pixels
    from `affine_by_gather` where `warps_by_gather()` says so, so that its gradient is exact on
    every backend.

    Args:
        images: Float tensor (batch, height, width, channels).
        matrices: Float tensor (batch, 3, 3) in (row, column, 1) homogeneous coordinates; the
            last row is taken to be (0, 0, 1).
        fill_mode: What enters from outside, one of `FILL_MODES`. Defaults to "reflect".

    Returns:
        The warped images, same shape.

    Raises:
        ValueError: For an unknown `fill_mode`.
    """
    if fill_mode not in FILL_MODES:
        raise ValueError(f"unknown fill_mode {fill_mode!r}; choose one of: {', '.join(FILL_MODES)}")
    images = ops.convert_to_tensor(images)
    matrices = ops.cast(ops.convert_to_tensor(matrices), images.dtype)
    shape = ops.shape(images)
    centre_row = (ops.cast(shape[1], images.dtype) - 1.0) / 2.0
    centre_column = (ops.cast(shape[2], images.dtype) - 1.0) / 2.0
    row_row, row_column, row_shift = matrices[:, 0, 0], matrices[:, 0, 1], matrices[:, 0, 2]
    column_row, column_column, column_shift = (
        matrices[:, 1, 0],
        matrices[:, 1, 1],
        matrices[:, 1, 2],
    )
    # keras.ops.image.affine_transform maps the output (x, y) = (column, row) to the input
    # (a0 x + a1 y + a2, b0 x + b1 y + b2): the centred map rewritten in corner coordinates.
    a2 = centre_column + column_shift - column_column * centre_column - column_row * centre_row
    b2 = centre_row + row_shift - row_column * centre_column - row_row * centre_row
    zeros = ops.zeros_like(a2)
    transform = ops.stack(
        [column_column, column_row, a2, row_column, row_row, b2, zeros, zeros], axis=1
    )
    if warps_by_gather():
        return affine_by_gather(images, transform, fill_mode)
    return ops.image.affine_transform(
        images, transform, interpolation="bilinear", fill_mode=fill_mode, fill_value=0.0
    )


def affine_by_gather(images, transform, fill_mode: str = "reflect"):
    """`keras.ops.image.affine_transform(images, transform, "bilinear", fill_mode)` of an affine
    `transform`, written as gathers of the four neighbours of each source position.

    The same pixels as TensorFlow's image op (its `fill_mode` rules included), in operations
    every backend differentiates exactly and XLA compiles.

    Args:
        images: Float tensor (batch, height, width, channels).
        transform: Float tensor (batch, 8): the output pixel (x, y) = (column, row) reads the
            input at (a0 x + a1 y + a2, b0 x + b1 y + b2); the projective entries (the last
            two) must be 0.
        fill_mode: One of `FILL_MODES`. Defaults to "reflect".

    Returns:
        The warped images, same shape.
    """
    shape = ops.shape(images)
    height, width = shape[1], shape[2]
    rows = ops.cast(ops.arange(height), images.dtype)[None, :, None]
    columns = ops.cast(ops.arange(width), images.dtype)[None, None, :]
    entry = [transform[:, k][:, None, None] for k in range(6)]
    source_x = entry[0] * columns + entry[1] * rows + entry[2]
    source_y = entry[3] * columns + entry[4] * rows + entry[5]
    source_x = _fill_coordinate(source_x, width, fill_mode)
    source_y = _fill_coordinate(source_y, height, fill_mode)
    left, top = ops.floor(source_x), ops.floor(source_y)
    weight_x = (source_x - left)[..., None]
    weight_y = (source_y - top)[..., None]
    # Every pixel of the batch as a row of channels: one flat gather per neighbour (1.3–1.5×
    # faster on TensorFlow, forward and backward, than gathering along each image's own axis).
    flat = ops.reshape(images, (-1, shape[3]))
    first_pixel = ops.reshape(ops.arange(shape[0], dtype="int32") * (height * width), (-1, 1, 1))

    def read(row, column):
        # The neighbour's value, 0 where it falls outside (only "constant" lets it).
        row, column = ops.cast(row, "int32"), ops.cast(column, "int32")
        inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
        index = first_pixel + ops.clip(row, 0, height - 1) * width + ops.clip(column, 0, width - 1)
        values = ops.reshape(ops.take(flat, ops.reshape(index, (-1,)), axis=0), shape)
        return ops.where(inside[..., None], values, ops.zeros_like(values))

    upper = (1.0 - weight_x) * read(top, left) + weight_x * read(top, left + 1.0)
    lower = (1.0 - weight_x) * read(top + 1.0, left) + weight_x * read(top + 1.0, left + 1.0)
    return (1.0 - weight_y) * upper + weight_y * lower


def _fill_coordinate(coordinate, size, fill_mode: str):
    """Maps a source coordinate outside [0, size − 1] inside, as TensorFlow's image op does."""
    size = ops.cast(size, coordinate.dtype)
    last = size - 1.0
    if fill_mode == "constant":
        return coordinate  # Outside stays outside: `read` gives 0 there.
    if fill_mode == "reflect":
        # (d c b a | a b c d | d c b a): period 2 · size, mirrored about −0.5 and size − 0.5.
        period = 2.0 * size
        folded = coordinate - period * ops.floor(coordinate / period)
        coordinate = ops.where(folded > last, period - 1.0 - folded, folded)
    elif fill_mode == "wrap":
        # TensorFlow's rule, which steps by whole sizes counted in units of size − 1.
        span = ops.maximum(last, 1.0)
        below = coordinate + size * (ops.floor(-coordinate / span) + 1.0)
        above = coordinate - size * ops.floor(coordinate / span)
        coordinate = ops.where(
            coordinate < 0.0, below, ops.where(coordinate > last, above, coordinate)
        )
    return ops.clip(coordinate, 0.0, last)


def translation_matrices(rows, columns):
    """(batch, 3, 3) matrices that move the content by (rows, columns) pixels (down, right)."""
    ones, zeros = ops.ones_like(rows), ops.zeros_like(rows)
    entries = [ones, zeros, -rows, zeros, ones, -columns, zeros, zeros, ones]
    return ops.reshape(ops.stack(entries, axis=1), (-1, 3, 3))


def scale_matrices(factors):
    """(batch, 3, 3) matrices that enlarge the content about the centre by `factors`."""
    inverse = 1.0 / factors
    ones, zeros = ops.ones_like(factors), ops.zeros_like(factors)
    entries = [inverse, zeros, zeros, zeros, inverse, zeros, zeros, zeros, ones]
    return ops.reshape(ops.stack(entries, axis=1), (-1, 3, 3))


def rotation_matrices(angles):
    """(batch, 3, 3) matrices that turn the content counter-clockwise (as shown) by `angles`.

    Angles are in radians. With rows pointing down, turning the content counter-clockwise by a
    takes the output offset (r, c) from the source offset (r cos a + c sin a, c cos a - r sin a).
    """
    cosine, sine = ops.cos(angles), ops.sin(angles)
    ones, zeros = ops.ones_like(angles), ops.zeros_like(angles)
    entries = [cosine, sine, zeros, -sine, cosine, zeros, zeros, zeros, ones]
    return ops.reshape(ops.stack(entries, axis=1), (-1, 3, 3))


def lanczos_taps(
    factor: int, cutoff: float = 0.5, lobes: int = settings.ANTIALIAS_LOBES
) -> np.ndarray:
    """The weights of the `factor`-to-1 windowed-sinc antialiasing filter (sum 1).

    At an offset d from the output pixel's centre, measured in output pixels, the weight is
    sinc(2 · cutoff · d) · sinc(d / lobes) for |d| < lobes: a low-pass at `cutoff` cycles per
    output pixel under a Lanczos window. The taps are the input pixels within `lobes` output
    pixels of the centre: 2 · lobes · factor of them for an even factor (20 for factor 2), one
    fewer for an odd one, whose centre falls on a pixel.

    Args:
        factor: Input pixels per output pixel.
        cutoff: Cycles per output pixel; 0.5 is the output's Nyquist frequency. Defaults to
            0.5.
        lobes: The window's half-width in output pixels. Defaults to 5.

    Returns:
        float32 array, the weights of input pixels `first_tap(factor, lobes)` to
        factor − 1 − `first_tap(factor, lobes)` of each block of `factor`.
    """
    centre = (factor - 1) / 2.0
    first = first_tap(factor, lobes)
    offsets = (np.arange(first, factor - first) - centre) / factor
    weights = np.sinc(2.0 * cutoff * offsets) * np.sinc(offsets / lobes)
    return (weights / weights.sum()).astype(np.float32)


def first_tap(factor: int, lobes: int = settings.ANTIALIAS_LOBES) -> int:
    """The first input pixel the filter reads, counted from its output pixel's block (≤ 0).

    The arithmetic lives in `settings.antialias_first_tap`, so that the settings refuse an
    image too small for it before Keras starts.
    """
    return settings.antialias_first_tap(factor, lobes)


def downsample_matrix(
    size: int, factor: int, cutoff: float = 0.5, lobes: int = settings.ANTIALIAS_LOBES
) -> np.ndarray:
    """The linear map of `downsample` along one axis: (size / factor, size), float32.

    Row k holds the `lanczos_taps` of output pixel k, read from input pixels factor · k +
    `first_tap` onwards; a tap that falls outside the axis reads its reflection (NumPy's
    "reflect": −1 reads 1, size reads size − 2), so each row still sums to 1.
    """
    taps = lanczos_taps(factor, cutoff, lobes)
    positions = factor * np.arange(size // factor)[:, None] + first_tap(factor, lobes)
    positions = positions + np.arange(len(taps))[None, :]
    positions = np.abs(positions)
    positions = np.where(positions > size - 1, 2 * (size - 1) - positions, positions)
    matrix = np.zeros((size // factor, size), np.float64)
    np.add.at(matrix, (np.arange(size // factor)[:, None], positions), taps[None, :])
    return matrix.astype(np.float32)


def downsample(images, factor: int, cutoff: float = 0.5, *, lobes: int = settings.ANTIALIAS_LOBES):
    """Shrinks each image by a whole `factor`, filtering out what the smaller size cannot hold.

    A separable windowed-sinc low-pass (`lanczos_taps`) taken at every `factor`-th position
    along rows and then columns, the borders reflected (NumPy's "reflect") so that no dark frame
    leaks in. Output pixel k is centred on input position factor · k + (factor − 1) / 2, so each
    covers the same block as a box mean of factor × factor pixels would. Each axis is one matrix
    product with `downsample_matrix`: on a CPU several times faster, forward and backward, than
    a strided depthwise convolution, and the same on every backend and kernel library (some
    refuse unequal depthwise strides).

    Args:
        images: Float tensor (batch, height, width, channels), height and width known when it
            is traced; multiples of `factor`, and more than `-first_tap(factor, lobes)` pixels
            (9 for factor 2) so that the border can be reflected
            (`settings.smallest_canvas_image`).
        factor: Input pixels per output pixel, a whole number ≥ 1 (1 returns `images`).
        cutoff: The low-pass cutoff in cycles per output pixel, in (0, 0.5]; 0.5 is the output's
            Nyquist frequency, lower keeps less of the band just below it. Defaults to 0.5.
        lobes: The window's half-width in output pixels. Defaults to 5.

    Returns:
        Tensor (batch, height / factor, width / factor, channels).

    Raises:
        ValueError: For a factor below 1 or not whole, or a cutoff outside (0, 0.5].
    """
    if int(factor) != factor or factor < 1:
        raise ValueError(f"downsample factor={factor!r} is not a whole number ≥ 1")
    if not (math.isfinite(cutoff) and 0 < cutoff <= 0.5):
        raise ValueError(
            f"downsample cutoff={cutoff!r} is out of range: use 0 < cutoff ≤ 0.5 (cycles per "
            "output pixel)"
        )
    factor = int(factor)
    if factor == 1:
        return images
    images = ops.convert_to_tensor(images)
    height, width, channels = (int(extent) for extent in images.shape[1:])
    rows = downsample_matrix(height, factor, cutoff, lobes)
    columns = downsample_matrix(width, factor, cutoff, lobes)
    # Rows: (out height, height) times each image as (height, width · channels).
    shrunk = ops.matmul(rows, ops.reshape(images, (-1, height, width * channels)))
    # Columns: each row as (channels, width) times the columns' matrix, transposed.
    shrunk = ops.reshape(shrunk, (-1, height // factor, width, channels))
    shrunk = ops.transpose(shrunk, (0, 1, 3, 2))
    shrunk = ops.matmul(shrunk, columns.T)
    return ops.transpose(shrunk, (0, 1, 3, 2))
