"""Quality numbers of one optimized image, for the atlas's filter pages (NumPy only).

The high-frequency fraction says how much of an image is pixel-scale noise rather than a
picture: the share of its spectral power above a quarter cycle per pixel (radially, in cycles
per pixel along each axis), after each channel's mean is removed. White noise spreads its power
evenly over the square of frequencies [-1/2, 1/2)², of which the part beyond radius 1/4 is
1 − π/16 ≈ 0.80; a smooth picture scores near 0, a checkerboard of single pixels near 1.
"""

import numpy as np

# Frequencies above this many cycles per pixel count as high.
HIGH_FREQUENCY_CUTOFF = 0.25


def high_frequency_fraction(image: np.ndarray, cutoff: float = HIGH_FREQUENCY_CUTOFF) -> float:
    """The share of an image's spectral power above `cutoff` cycles per pixel.

    Args:
        image: (height, width) or (height, width, channels), any numeric type (uint8 tiles,
            float inputs).
        cutoff: The radial frequency, in cycles per pixel, from which power counts as high.
            Defaults to a quarter cycle per pixel.

    Returns:
        A number in [0, 1]; None for a flat image (no power once the mean is removed).

    Raises:
        ValueError: For an array that is not an image.
    """
    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or min(pixels.shape[:2]) < 2:
        raise ValueError(
            f"Expected an image of shape (height, width) or (height, width, channels), at least "
            f"2x2 pixels. Got array with shape: {np.shape(image)}"
        )
    pixels = pixels - pixels.mean(axis=(0, 1), keepdims=True)
    power = (np.abs(np.fft.fft2(pixels, axes=(0, 1))) ** 2).sum(axis=-1)
    total = power.sum()
    if not np.isfinite(total) or total <= 1e-12 * pixels.size:
        return None
    rows = np.fft.fftfreq(pixels.shape[0])[:, None]
    cols = np.fft.fftfreq(pixels.shape[1])[None, :]
    high = np.hypot(rows, cols) > cutoff
    return float(power[high].sum() / total)
