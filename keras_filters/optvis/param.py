"""Image parameterizations: how the optimized parameters become the image the model sees.

A parameterization makes each image's starting parameters from `(seed, key, shape)`, so an
image starts the same whether it runs alone, in any chunk, or after a resume; it maps the
parameters to an image in the model's input space inside the gradient tape (`to_image`, with
`keras.ops`); it resizes parameters between the scales of a multi-scale schedule (`resize`);
and it gives the optimized images back as arrays (`to_inputs`). `Pixel`, the references'
parameterization, is the first: the parameters are the pixels.
"""

import numpy as np
from PIL import Image

from keras_filters.settings import INIT_DISTRIBUTIONS


class Pixel:
    """The parameters are the image: seeded noise at the start, the references' upscaling.

    Args:
        distribution: "uniform" draws from U[low, high); "normal" from a normal distribution
            with mean (low + high) / 2 and standard deviation (high - low) / 2. Defaults to
            "uniform".
        low: Lower end of the noise. Defaults to 0.
        high: Upper end of the noise. Defaults to 1.
        upscale_scale: Contrast of the deprocess used between scales (0.25 in the 2019 Keras
            example). Defaults to 0.1.
        upscale_epsilon: Added to the std in that deprocess. Defaults to 1e-5.

    Raises:
        ValueError: For an unknown distribution.
    """

    def __init__(
        self,
        distribution: str = "uniform",
        low: float = 0.0,
        high: float = 1.0,
        upscale_scale: float = 0.1,
        upscale_epsilon: float = 1e-5,
    ):
        if distribution not in INIT_DISTRIBUTIONS:
            raise ValueError(
                f"unknown init_distribution {distribution!r}; choose one of: "
                + ", ".join(INIT_DISTRIBUTIONS)
            )
        self.distribution = distribution
        self.low = low
        self.high = high
        self.upscale_scale = upscale_scale
        self.upscale_epsilon = upscale_epsilon

    def initial(self, keys, *, seed: int, height: int, width: int, channels: int) -> np.ndarray:
        """Draws the starting image of each key (a filter index, or an objective's position).

        Each image's noise comes from its own generator seeded with `(seed, key)`.

        Returns:
            Float32 array (len(keys), height, width, channels).
        """
        shape = (height, width, channels)
        images = np.empty((len(keys),) + shape, dtype=np.float32)
        for position, key in enumerate(keys):
            generator = np.random.default_rng([seed, int(key)])
            if self.distribution == "uniform":
                images[position] = generator.uniform(self.low, self.high, size=shape)
            else:
                # A wide normal's tails can pass the float32 range: they start as infinity,
                # and the run marks that image failed.
                with np.errstate(over="ignore"):
                    images[position] = generator.normal(
                        (self.low + self.high) / 2, (self.high - self.low) / 2, size=shape
                    )
        return images

    def to_image(self, params):
        """The image is the parameters."""
        return params

    def to_inputs(self, params) -> np.ndarray:
        """The optimized images in the model's input space, float32."""
        return np.asarray(params, dtype=np.float32)

    def resize(self, params, size: int) -> np.ndarray:
        """Resizes a batch between scales the way the 2019 Keras example does.

        Each image is deprocessed to uint8 (the "standard" deprocess with `upscale_scale`),
        resized with PIL's bicubic filter, and mapped back with `(x / 255 − 0.5) / scale ·
        former.std() + former.mean()`. The example's deprocess normalizes its argument in
        place, so `former` is the normalized image (mean 0.5, std `scale`), not the raw one; we
        keep that behaviour, since it is what made the published figure.

        Args:
            params: Float array (batch, height, width, channels).
            size: The new height and width.

        Returns:
            Float32 array (batch, size, size, channels).
        """
        params = np.asarray(params, dtype=np.float64)
        resized = np.empty((len(params), size, size, params.shape[-1]), dtype=np.float32)
        for position, image in enumerate(params):
            # With epsilon 0, a constant image (std 0) has no contrast to stretch: it stays grey.
            spread = image.std() + self.upscale_epsilon
            spread = spread if spread > 0 else 1.0
            former = (image - image.mean()) / spread * self.upscale_scale + 0.5
            pixels = (np.clip(former, 0.0, 1.0) * 255.0).astype(np.uint8)
            channels = [
                np.asarray(Image.fromarray(pixels[..., c]).resize((size, size), Image.BICUBIC))
                for c in range(pixels.shape[-1])
            ]
            back = np.stack(channels, axis=-1) / 255.0 - 0.5
            resized[position] = back / self.upscale_scale * former.std() + former.mean()
        return resized
