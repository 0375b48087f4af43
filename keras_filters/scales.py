"""The multi-scale schedule of the 2019 Keras example: optimize small, upscale, go on."""

import numpy as np
from PIL import Image


def scale_sizes(image_size: int, num_upscalings: int, upscale_factor: float) -> list[int]:
    """The image sizes visited, smallest first, ending at `image_size`.

    As the 2019 Keras example: size k is int(image_size / factor**k), for k from
    `num_upscalings` down to 0 (412 px, 9 upscalings by 1.2: 79, 95, 114, …, 343, 412).
    """
    return [int(image_size / upscale_factor**k) for k in range(num_upscalings, -1, -1)]


def optimized_sizes(sizes: list[int]) -> list[int]:
    """The sizes at which steps are taken: all but the last, or the one size if there is one.

    The last size of a multi-scale schedule is only upscaled to, never optimized at.
    """
    return sizes[:-1] if len(sizes) > 1 else sizes


def upscale_images(images: np.ndarray, size: int, scale: float, epsilon: float) -> np.ndarray:
    """Resizes a batch between scales the way the 2019 Keras example does.

    Each image is deprocessed to uint8 (the "standard" deprocess with `scale`), resized with
    PIL's bicubic filter, and mapped back with `(x / 255 − 0.5) / scale · former.std() +
    former.mean()`. The example's deprocess normalizes its argument in place, so `former` is
    the normalized image (mean 0.5, std `scale`), not the raw one; we keep that behaviour,
    since it is what made the published figure.

    Args:
        images: Float array (batch, height, width, channels).
        size: The new height and width.
        scale: Contrast factor of the deprocess (0.25 in the example).
        epsilon: Added to the std in the deprocess.

    Returns:
        Float32 array (batch, size, size, channels).
    """
    resized = np.empty((len(images), size, size, images.shape[-1]), dtype=np.float32)
    for position, image in enumerate(np.asarray(images, dtype=np.float64)):
        # With epsilon 0, a constant image (std 0) has no contrast to stretch: it stays grey.
        spread = image.std() + epsilon
        spread = spread if spread > 0 else 1.0
        former = (image - image.mean()) / spread * scale + 0.5
        pixels = (np.clip(former, 0.0, 1.0) * 255.0).astype(np.uint8)
        channels = [
            np.asarray(Image.fromarray(pixels[..., c]).resize((size, size), Image.BICUBIC))
            for c in range(pixels.shape[-1])
        ]
        back = (np.stack(channels, axis=-1) / 255.0 - 0.5) / scale * former.std() + former.mean()
        resized[position] = back
    return resized
