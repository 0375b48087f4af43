"""Image parameterizations: how the optimized parameters become the image the model sees.

A parameterization makes each image's starting parameters from `(seed, key, shape)`, so an
image starts the same whether it runs alone, in any chunk, or after a resume; it maps the
parameters to an image in the model's input space inside the gradient tape (`to_image`, with
`keras.ops`); it resizes parameters between the scales of a multi-scale schedule (`resize`);
and it gives the optimized images back as arrays (`to_inputs`). `Pixel`, the references'
parameterization, is the first: the parameters are the pixels. `Fourier` is the quality
recipe's (lucid, Distill 2017): a 1/f-scaled spectrum in a decorrelated colour space, squashed
into [0, 1] by a sigmoid and mapped into the model's input range.
"""

import numpy as np
from keras import ops
from PIL import Image

from keras_filters.optvis import resample
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

    def from_inputs(self, inputs) -> np.ndarray:
        """The parameters of images given in the model's input space: the images themselves."""
        return np.array(inputs, dtype=np.float32)

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


# How far inside (0, 1) `Fourier.from_inputs` keeps a picture: a pixel at 0 or 1 would need an
# infinite logit, where the sigmoid passes no gradient; 0.005 is a logit of ±5.3.
RESTART_MARGIN = 0.005

# The square root of natural photos' RGB colour covariance, as orthonormal axes (luminance,
# red–blue, green–magenta) times their standard deviations. The standard deviations are those
# of the ImageNet colour statistics that lucid publishes (0.4625, 0.1273, 0.0616); the axes are
# exactly orthogonal here, so the matrix is orthogonal up to a per-axis scale. It is scaled so
# the largest axis has gain 1.
_COLOUR_AXES = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, -2.0, 1.0]]).T / np.array(
    [np.sqrt(3.0), np.sqrt(2.0), np.sqrt(6.0)]
)
_COLOUR_STANDARD_DEVIATIONS = np.array([0.4625, 0.1273, 0.0616])
COLOUR_SQRT_COVARIANCE = (
    _COLOUR_AXES * _COLOUR_STANDARD_DEVIATIONS / _COLOUR_STANDARD_DEVIATIONS.max()
).astype(np.float32)


def frequency_scale(height: int, width: int, decay: float) -> np.ndarray:
    """1 / max(f, 1/max(h, w))**decay for each bin of `rfft2`, f in cycles per pixel.

    Returns:
        float32 array (height, width // 2 + 1).
    """
    frequency = np.sqrt(np.fft.fftfreq(height)[:, None] ** 2 + np.fft.rfftfreq(width)[None] ** 2)
    return (1.0 / np.maximum(frequency, 1.0 / max(height, width)) ** decay).astype(np.float32)


def inverse_dft_tables(height: int, width: int) -> tuple[np.ndarray, ...]:
    """Real tables for the orthonormal inverse `rfft2` of an even-width image.

    With X the spectrum (rows: every vertical frequency; columns: 0 … width/2), the image is
    (Cy·Re X − Sy·Im X)·Cx − (Sy·Re X + Cy·Im X)·Sx: four real matrix products, the same
    arithmetic on every Keras backend, and differentiable.

    Returns:
        (cos_y, sin_y, cos_x, sin_x), float32.
    """
    rows = np.arange(height)
    angle_y = 2.0 * np.pi * np.outer(rows, rows) / height
    num_columns = width // 2 + 1
    weights = np.full(num_columns, 2.0)
    weights[0] = 1.0
    weights[-1] = 1.0  # The Nyquist column of an even width stands for itself only.
    angle_x = 2.0 * np.pi * np.outer(np.arange(num_columns), np.arange(width)) / width
    normalization = 1.0 / np.sqrt(height * width)
    tables = (
        np.cos(angle_y),
        np.sin(angle_y),
        weights[:, None] * np.cos(angle_x) * normalization,
        weights[:, None] * np.sin(angle_x) * normalization,
    )
    return tuple(table.astype(np.float32) for table in tables)


def resample_spectrum(spectrum: np.ndarray, height: int, width: int) -> np.ndarray:
    """The images (…, height, width) whose spectrum is `spectrum` (`np.fft.fft2` of images over
    their last two axes) zero-padded or truncated around its centre: band-limited
    interpolation that keeps the images' amplitude. Used between octaves (`Fourier.resize`) and
    onto the canvas (`Fourier.from_inputs`)."""
    old_height, old_width = spectrum.shape[-2:]
    centred = np.fft.fftshift(spectrum, axes=(-2, -1))
    resized = np.zeros(spectrum.shape[:-2] + (height, width), np.complex128)
    keep_y, keep_x = min(old_height, height), min(old_width, width)
    source_y, source_x = (old_height - keep_y) // 2, (old_width - keep_x) // 2
    target_y, target_x = (height - keep_y) // 2, (width - keep_x) // 2
    resized[..., target_y : target_y + keep_y, target_x : target_x + keep_x] = centred[
        ..., source_y : source_y + keep_y, source_x : source_x + keep_x
    ]
    images = np.real(np.fft.ifft2(np.fft.ifftshift(resized, axes=(-2, -1))))
    return images * (height * width / (old_height * old_width))


class Fourier:
    """A picture parameterized by its 1/f-scaled spectrum in a decorrelated colour space.

    The parameters (batch, channels, canvas, canvas // 2 + 1, 2) are the real and imaginary
    parts of the spectrum of each decorrelated channel, divided by `frequency_scale · gain`, so
    that a step moves every frequency band in proportion to natural images' 1/f spectrum. The
    picture is sigmoid(colour matrix · irfft2(params · scale · gain)), in [0, 1]; on a canvas
    `canvas_factor` times the image size it is downsampled with antialiasing and clipped (the
    filter's lobes can overshoot); last, `input_range` maps it into the model's input space.
    Greyscale models get one channel and no colour matrix.

    Args:
        input_range: The model's `model.input_range.InputRange`.
        decay: Exponent of the 1/f scaling. Defaults to 1.0.
        gain: Overall factor of the spectrum. Defaults to 0.25.
        init_std: Standard deviation of the starting spectrum. Defaults to 0.01.
        decorrelate: Use `COLOUR_SQRT_COVARIANCE` for RGB. Defaults to True.
        canvas_factor: The canvas is this many times the image size. Defaults to 1.
        downsample_cutoff: The antialiasing cutoff, cycles per image pixel. Defaults to 0.5.
    """

    # The inverse DFT's tables depend on the image's size: the step is traced per shape.
    static_shapes = True

    def __init__(
        self,
        input_range,
        *,
        decay: float = 1.0,
        gain: float = 0.25,
        init_std: float = 0.01,
        decorrelate: bool = True,
        canvas_factor: int = 1,
        downsample_cutoff: float = 0.5,
    ):
        self.input_range = input_range
        self.decay = decay
        self.gain = gain
        self.init_std = init_std
        self.decorrelate = decorrelate
        self.canvas_factor = int(canvas_factor)
        self.downsample_cutoff = downsample_cutoff
        self._tables = {}
        # Canvas (height, width) → image (height, width): an odd size gets a canvas one pixel
        # wider (the spectrum needs an even width), cropped back in `to_unit_image`.
        self._image_sizes = {}

    def colour_matrix(self, channels: int) -> np.ndarray:
        """The matrix from decorrelated channels to the picture's channels.

        RGB gets `COLOUR_SQRT_COVARIANCE`; a grey picture is its luminance axis alone, scaled
        as that axis moves each RGB channel (1/√3), so that one learning rate moves grey and
        colour pictures alike. Without `decorrelate`, and for other channel counts, the
        identity.
        """
        if self.decorrelate and channels == 3:
            return COLOUR_SQRT_COVARIANCE
        if self.decorrelate and channels == 1:
            return COLOUR_SQRT_COVARIANCE[:1, :1].copy()
        return np.eye(channels, dtype=np.float32)

    def _constants(self, height: int, width: int):
        """(columns table, rows table, frequency scale · gain) of a canvas, made once.

        The inverse DFT (`inverse_dft_tables`) as two matrices that each take one matrix
        product over the whole batch: the columns table (2 · (width / 2 + 1), 2 · width) maps
        each row's interleaved (real, imaginary) spectrum to its complex inverse along the
        columns, [real | imaginary]; the rows table (height, 2 · height) takes the real part of
        the inverse along the rows from the (real, imaginary) pairs, real first.
        """
        if (height, width) not in self._tables:
            cos_y, sin_y, cos_x, sin_x = inverse_dft_tables(height, width)
            columns = np.zeros((width // 2 + 1, 2, 2, width), np.float32)
            columns[:, 0, 0], columns[:, 1, 0] = cos_x, -sin_x
            columns[:, 0, 1], columns[:, 1, 1] = sin_x, cos_x
            rows = np.concatenate([cos_y, -sin_y], axis=1)
            scale = frequency_scale(height, width, self.decay) * np.float32(self.gain)
            self._tables[height, width] = (columns.reshape(-1, 2 * width), rows, scale)
        return self._tables[height, width]

    def initial(self, keys, *, seed: int, height: int, width: int, channels: int) -> np.ndarray:
        """Each key's seeded starting spectrum, from a generator seeded with `(seed, key)`.

        `height` and `width` are the image's; the canvas is `canvas_factor` times larger.

        Returns:
            float32 array (len(keys), channels, canvas height, canvas width // 2 + 1, 2).
        """
        canvas_height, canvas_width = self._canvas(height), self._canvas(width)
        self._image_sizes[canvas_height, canvas_width] = (height, width)
        shape = (channels, canvas_height, canvas_width // 2 + 1, 2)
        params = np.empty((len(keys),) + shape, np.float32)
        for position, key in enumerate(keys):
            generator = np.random.default_rng([seed, int(key)])
            params[position] = generator.normal(0.0, self.init_std, size=shape)
        return params

    def _canvas(self, size: int) -> int:
        canvas = size * self.canvas_factor
        return canvas + canvas % 2  # Even widths only: the spectrum's last column is Nyquist.

    def _spatial(self, params):
        """params → the decorrelated picture before the sigmoid (batch, h, w, channels)."""
        channels, height, num_columns = (int(extent) for extent in params.shape[1:4])
        width = 2 * (num_columns - 1)
        columns, rows, scale = self._constants(height, width)
        spectrum = params * scale[..., None]
        # Along the columns: every (image, channel, row) at once, (real | imaginary) out.
        halfway = ops.matmul(ops.reshape(spectrum, (-1, 2 * num_columns)), columns)
        halfway = ops.reshape(halfway, (-1, channels, height, 2, width))
        # Along the rows: every (image, column, channel) at once, over (real, imaginary) × row.
        halfway = ops.reshape(ops.transpose(halfway, (0, 4, 1, 3, 2)), (-1, 2 * height))
        image = ops.reshape(ops.matmul(halfway, rows.T), (-1, width, channels, height))
        return ops.transpose(image, (0, 3, 1, 2))

    def to_unit_image(self, params):
        """params → pictures in [0, 1] on the canvas, RGB order; `keras.ops`."""
        spatial = self._spatial(params)
        canvas = (int(spatial.shape[1]), int(spatial.shape[2]))
        height, width = self._image_sizes.get(canvas, canvas)
        if canvas != (height * self.canvas_factor, width * self.canvas_factor):
            spatial = spatial[:, : height * self.canvas_factor, : width * self.canvas_factor]
        matrix = self.colour_matrix(int(spatial.shape[-1]))
        return ops.sigmoid(ops.matmul(spatial, matrix.T))

    def to_image(self, params):
        """params → images in the model's input space at the image size; `keras.ops`."""
        images = self.input_range.to_model(self.to_unit_image(params))
        if self.canvas_factor > 1:
            images = resample.downsample(images, self.canvas_factor, self.downsample_cutoff)
            images = self.input_range.clip_ops(images)
        return images

    def to_inputs(self, params) -> np.ndarray:
        """The optimized images in the model's input space, float32."""
        images = self.to_image(ops.convert_to_tensor(np.asarray(params, np.float32)))
        return np.asarray(ops.convert_to_numpy(images), np.float32)

    def from_unit_image(self, unit_images) -> np.ndarray:
        """The parameters whose canvas picture is `unit_images` (values clipped into (0, 1))."""
        unit_images = np.clip(np.asarray(unit_images, np.float64), 1e-6, 1 - 1e-6)
        logits = np.log(unit_images) - np.log1p(-unit_images)
        matrix = self.colour_matrix(unit_images.shape[-1]).astype(np.float64)
        decorrelated = logits @ np.linalg.inv(matrix).T
        height, width = decorrelated.shape[1:3]
        spectrum = np.fft.rfft2(np.moveaxis(decorrelated, -1, 1), norm="ortho")
        spectrum = spectrum / self._constants(height, width)[-1]
        return np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)

    def from_inputs(self, inputs) -> np.ndarray:
        """The parameters of pictures given in the model's input space, at the image size.

        The inverse of `to_inputs` up to the antialiasing: each picture is brought back to
        [0, 1], upsampled to the canvas by band-limited interpolation (`resample_spectrum`,
        aligned to the downsample's grid), kept `RESTART_MARGIN` inside (0, 1) so that the sigmoid still
        passes gradient, and inverted. A restart (`rivals`) starts from another picture so.

        Returns:
            float32 array (batch, channels, canvas height, canvas width // 2 + 1, 2).
        """
        unit = np.asarray(self.input_range.to_unit(inputs), np.float64)
        height, width = unit.shape[1:3]
        factor = self.canvas_factor
        if factor > 1:
            # Canvas pixel c lies at image pixel (c − (factor − 1) / 2) / factor: the downsample
            # averages canvas pixels factor·i … factor·i + factor − 1 into image pixel i.
            shift = -(factor - 1) / (2 * factor)
            phase_y = np.exp(2j * np.pi * np.fft.fftfreq(height) * shift)[:, None]
            phase_x = np.exp(2j * np.pi * np.fft.fftfreq(width) * shift)[None, :]
            planes = np.fft.fft2(np.moveaxis(unit, -1, 1)) * phase_y * phase_x
            unit = np.moveaxis(resample_spectrum(planes, factor * height, factor * width), 1, -1)
        canvas_height, canvas_width = self._canvas(height), self._canvas(width)
        self._image_sizes[canvas_height, canvas_width] = (height, width)
        # An odd canvas gets one more column and row (the spectrum needs even sizes), which
        # `to_unit_image` crops off again.
        unit = np.pad(
            unit,
            ((0, 0), (0, canvas_height - unit.shape[1]), (0, canvas_width - unit.shape[2]), (0, 0)),
            mode="edge",
        )
        unit = np.clip(unit, RESTART_MARGIN, 1 - RESTART_MARGIN)
        return self.from_unit_image(unit)

    def resize(self, params, size: int) -> np.ndarray:
        """The parameters of the same pictures at image size `size` (multi-scale octaves).

        The picture before the sigmoid is resampled by zero-padding or truncating its centred
        spectrum: band-limited interpolation that keeps its amplitude.
        """
        params = np.asarray(params, np.float64)
        height = params.shape[2]
        width = 2 * (params.shape[3] - 1)
        new_size = self._canvas(size)
        self._image_sizes[new_size, new_size] = (size, size)
        spectrum = (params[..., 0] + 1j * params[..., 1]) * self._constants(height, width)[-1]
        spatial = np.fft.irfft2(spectrum, s=(height, width), norm="ortho")
        spatial = resample_spectrum(np.fft.fft2(spatial), new_size, new_size)
        new = np.fft.rfft2(spatial, norm="ortho") / self._constants(new_size, new_size)[-1]
        return np.stack([new.real, new.imag], axis=-1).astype(np.float32)
