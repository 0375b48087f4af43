"""Differentiable resampling of image batches: per-image affine warps and antialiased decimation.

Both are written with `keras.ops`, so every backend runs the same code, and both work on a
spatial size known only when the step runs (the TensorFlow step leaves it open). Positions are
(row, column) in pixels with pixel centres at whole numbers, as `keras.ops.image` has them.
"""

import math

import numpy as np
from keras import ops

# What enters from outside the picture, in `keras.ops.image.affine_transform`'s words:
# "reflect" is (d c b a | a b c d | d c b a), the edge pixel repeated once (NumPy's
# "symmetric"); "nearest" repeats the edge; "wrap" tiles; "constant" brings in zeros.
FILL_MODES = ("reflect", "nearest", "wrap", "constant")


def affine(images, matrices, fill_mode: str = "reflect"):
    """Warps each image by its own affine map about the image centre, bilinearly.

    The output pixel at offset p = (row, column, 1) from the centre takes the input at offset
    `matrices[i] @ p` from the centre: the matrix maps output to source, so warps chain by
    multiplying their matrices (first warp on the left). One call resamples once, however many
    warps the matrix holds.

    On TensorFlow the gradient is the image op's registered one (the inverse warp of the
    upstream gradient); on JAX it is the exact gradient of the interpolation.

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
    return ops.image.affine_transform(
        images, transform, interpolation="bilinear", fill_mode=fill_mode, fill_value=0.0
    )


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


def lanczos_taps(factor: int, cutoff: float = 0.5, lobes: int = 5) -> np.ndarray:
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


def first_tap(factor: int, lobes: int = 5) -> int:
    """The first input pixel the filter reads, counted from its output pixel's block (≤ 0)."""
    return math.floor((factor - 1) / 2.0 - lobes * factor) + 1


def downsample(images, factor: int, cutoff: float = 0.5, *, lobes: int = 5):
    """Shrinks each image by a whole `factor`, filtering out what the smaller size cannot hold.

    A separable windowed-sinc low-pass (`lanczos_taps`) applied with stride `factor` along rows
    and then columns, the borders reflected (NumPy's "reflect") so that no dark frame leaks in.
    Output pixel k is centred on input position factor · k + (factor − 1) / 2, so each covers
    the same block as a box mean of factor × factor pixels would.

    Args:
        images: Float tensor (batch, height, width, channels); height and width multiples of
            `factor`, and more than `-first_tap(factor, lobes)` pixels (9 for factor 2) so
            that the border can be reflected.
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
    taps = lanczos_taps(factor, cutoff, lobes)
    border = -first_tap(factor, lobes)
    channels = images.shape[-1]
    padded = ops.pad(images, ((0, 0), (border, border), (border, border), (0, 0)), mode="reflect")
    # Depthwise kernels (height, width, channels, 1): each channel filtered on its own.
    vertical = np.tile(taps[:, None, None, None], (1, 1, channels, 1))
    horizontal = np.tile(taps[None, :, None, None], (1, 1, channels, 1))
    rows_done = ops.depthwise_conv(padded, vertical, strides=(factor, 1), padding="valid")
    return ops.depthwise_conv(rows_done, horizontal, strides=(1, factor), padding="valid")
