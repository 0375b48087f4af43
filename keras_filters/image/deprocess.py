"""Turns optimized float images into viewable uint8 pictures, as the references do."""

import numpy as np

from keras_filters.settings import DEPROCESS_STYLES as STYLES

# The styles that stretch an image's own contrast; "picture" maps the model's input range
# instead (`picture_tile`, given the range).
CONTRAST_STYLES = tuple(style for style in STYLES if style != "picture")


def deprocess_image(
    image: np.ndarray,
    *,
    style: str = "standard",
    scale: float = 0.1,
    epsilon: float = 1e-5,
    crop: int = 0,
) -> np.ndarray:
    """Normalizes one image's contrast and converts it to uint8.

    Args:
        image: Float array (height, width, channels) in the model's input space.
        style: "standard" (Keras blog, Keras example, keras.io, DLwP 1st edition): subtract the
            mean, divide by std + epsilon, multiply by `scale`, add 0.5, clip to [0, 1], times
            255. "dlwp2" (DLwP 2nd and 3rd edition): subtract the mean, divide by std, times 64,
            plus 128, clip to [0, 255]. Defaults to "standard".
        scale: Contrast factor of the "standard" style (0.1 blog, 0.15 keras.io, 0.25 the 2019
            Keras example). Defaults to 0.1.
        epsilon: Added to the std by the "standard" style. Defaults to 1e-5.
        crop: Pixels cut from each side after normalizing (keras.io and DLwP 2nd edition cut
            25). Mean and std are taken over the whole image first. Defaults to 0.

    Returns:
        uint8 array (height - 2·crop, width - 2·crop, channels).

    Raises:
        ValueError: For an unknown style, or a crop that leaves no pixels.
    """
    image = np.asarray(image, dtype=np.float64)
    height, width = image.shape[:2]
    if crop < 0 or 2 * crop >= min(height, width):
        raise ValueError(
            f"crop={crop} leaves no pixels of a {height}x{width} image; use 0 to "
            f"{(min(height, width) - 1) // 2}"
        )
    centered = image - image.mean()
    std = centered.std()
    if style == "standard":
        # With epsilon 0, a constant image (std 0) has no contrast to stretch: it stays grey.
        spread = std + epsilon if std + epsilon > 0 else 1.0
        pixels = np.clip(centered / spread * scale + 0.5, 0.0, 1.0) * 255.0
    elif style == "dlwp2":
        # DLwP divides by the std alone; a constant image would give NaN, so it stays grey.
        pixels = np.clip(centered / std * 64.0 + 128.0 if std > 0 else centered + 128.0, 0, 255)
    else:
        raise ValueError(
            f"unknown deprocess {style!r} for deprocess_image; choose one of: "
            f'{", ".join(CONTRAST_STYLES)} ("picture" needs the input range: picture_tile)'
        )
    if crop:
        pixels = pixels[crop:-crop, crop:-crop]
    return pixels.astype(np.uint8)


def deprocess_images(images, **settings) -> np.ndarray:
    """Applies `deprocess_image` to each image of a batch; settings as there."""
    return np.stack([deprocess_image(image, **settings) for image in images])


def picture_tile(unit_image: np.ndarray, *, crop: int = 0) -> np.ndarray:
    """A picture in [0, 1] as uint8, as it is (no contrast stretch): the quality recipe's tile.

    Args:
        unit_image: Float array (height, width, channels), the model's input range mapped
            onto [0, 1] (`InputRange.to_unit`).
        crop: Pixels cut from each side. Defaults to 0.

    Returns:
        uint8 array (height - 2·crop, width - 2·crop, channels).
    """
    pixels = np.rint(np.clip(np.asarray(unit_image, np.float64), 0.0, 1.0) * 255.0)
    if crop:
        pixels = pixels[crop:-crop, crop:-crop]
    return pixels.astype(np.uint8)
