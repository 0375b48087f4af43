"""How good the images of a layer's filters are: the quality measures of issue 10.

Every measure is scored on the returned `inputs` (one image per filter, in the model's input
space, at the model's input size), after clipping them into the model's input range, so that
out-of-range pixels cannot buy a number. A filter's activation on an image is its spatial mean
(the channel objective).

- selectivity: the fraction of filters whose own image activates them more than every other
  image of the set does;
- robustness: per filter, the mean activation over `NUM_VIEWS` random views of its image
  (shift up to ±1/8 of the size, zoom 0.9–1.1, rotation ±10°, reflected borders, seeded per
  filter) over the activation on the image itself, capped at 1, and 0 where the own activation
  is ≤ 0 (an image that hides from its filter cannot score); the mean over filters;
- high-frequency fraction: the share of spectral power above a quarter cycle per pixel
  (radially), each channel's mean removed; the mean over images. White noise spreads its power
  evenly over [−1/2, 1/2)², of which the part beyond radius 1/4 is 1 − π/16 ≈ 0.804;
- gain: the median over filters of (own activation / the filter's best activation over the
  natural crops, `natural_crops`); needs scikit-image (`pip install .[quality]`), and is None
  without it, never faked;
- dead: the filters whose own activation is ≤ 0.

Everything is NumPy or `keras.ops`, in batches, so it runs on any Keras backend.
"""

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from keras import ops

from keras_filters.model import extractor

# Frequencies above this many cycles per pixel count as high.
HIGH_FREQUENCY_CUTOFF = 0.25
# Robustness: random views per filter and how far each may move the image.
NUM_VIEWS = 16
VIEW_SHIFT_FRACTION = 1.0 / 8.0
VIEW_ZOOM = (0.9, 1.1)
VIEW_DEGREES = 10.0
# The natural crops: scikit-image's bundled sample photographs (nothing is downloaded) that are
# 2-D greyscale or RGB and at least MINIMUM_PHOTO_SIDE px on the shorter side. Left out: the
# drawings and test patterns (binary_blobs, horse, shepp_logan_phantom, colorwheel, logo, which
# is RGBA too), the photos under 256 px (page, text, microaneurysms, checkerboard), `cat` (the
# same photo as `chelsea`), and the photos that scikit-image downloads on demand (eagle, lily,
# …), so that the set is the same on every machine.
NATURAL_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "rocket",
    "brick",
    "camera",
    "cell",
    "clock",
    "coins",
    "grass",
    "gravel",
    "moon",
)
MINIMUM_PHOTO_SIDE = 256
# Each photo is resized so that its shorter side is these multiples of the model's input size.
NATURAL_SCALES = (1, 2)
# Crops are cut at a stride of the input size divided by this.
NATURAL_STRIDE_DIVISOR = 4
GAIN_NOT_AVAILABLE = "n/a (pip install .[quality])"


@dataclasses.dataclass(frozen=True)
class FilterScores:
    """The per-filter numbers behind `QualityScores`, in the order of the filters.

    Attributes:
        filter_indices: int array (N,): the filters.
        own_activation: float array (N,): each filter's activation on its own image.
        selective: bool array (N,): its own image beats every other image of the set.
        robustness: float array (N,): its capped robustness ratio.
        high_frequency_fraction: float array (N,): of its image.
        gain: float array (N,), or None without natural crops: own activation over the best
            natural crop's (infinite where no crop activates the filter, 0 for a dead filter).
    """

    filter_indices: np.ndarray
    own_activation: np.ndarray
    selective: np.ndarray
    robustness: np.ndarray
    high_frequency_fraction: np.ndarray
    gain: np.ndarray | None


@dataclasses.dataclass(frozen=True)
class QualityScores:
    """The quality measures of one layer's filter images.

    Attributes:
        selectivity: Fraction of filters whose own image activates them most.
        robustness: Mean over filters of the capped view-over-own activation ratio.
        high_frequency_fraction: Mean over images of the power share above 0.25 cycles/px.
        gain: Median over filters of own activation over the best natural crop's; None when
            scikit-image is not installed.
        dead: Number of filters whose own activation is ≤ 0.
        outside_range: How far the furthest input value lay outside the model's range, as a
            fraction of the range (0 when all were inside), before clipping.
        num_filters: Number of filters scored.
        num_natural_crops: Number of natural crops behind `gain` (0 without them).
        per_filter: The per-filter numbers.
    """

    selectivity: float
    robustness: float
    high_frequency_fraction: float
    gain: float | None
    dead: int
    outside_range: float
    num_filters: int
    num_natural_crops: int
    per_filter: FilterScores

    def to_dict(self) -> dict:
        """Every number as plain Python values (lists for the per-filter arrays), for JSON."""
        summary = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name != "per_filter"
        }
        per_filter = {
            name: None if values is None else np.asarray(values).tolist()
            for name, values in dataclasses.asdict(self.per_filter).items()
        }
        return {**summary, "per_filter": per_filter}


def clip_to_range(images, low, high) -> tuple[np.ndarray, float]:
    """Clips images into the model's input range and says how far they lay outside it.

    Args:
        images: (N, height, width, channels) in the model's input space.
        low: The lowest valid input: a number, or one per channel.
        high: The highest valid input: a number, or one per channel.

    Returns:
        (clipped float32 images, the largest distance outside the range as a fraction of the
        range's width in that channel; 0 when every value was inside).

    Raises:
        ValueError: When `high` is not above `low`.
    """
    low = np.asarray(low, np.float32)
    high = np.asarray(high, np.float32)
    if np.any(high <= low):
        raise ValueError(
            f"the input range needs high > low; got low={low.tolist()}, high={high.tolist()}"
        )
    images = np.asarray(images, np.float32)
    beyond = np.maximum(images - high, low - images) / (high - low)
    outside = float(max(beyond.max(), 0.0)) if beyond.size else 0.0
    return np.clip(images, low, high), outside


def high_frequency_fraction(images, cutoff: float = HIGH_FREQUENCY_CUTOFF) -> np.ndarray:
    """The share of each image's spectral power above `cutoff` cycles per pixel.

    Args:
        images: (N, height, width, channels).
        cutoff: Radial frequency, in cycles per pixel, from which power counts as high.
            Defaults to a quarter cycle per pixel.

    Returns:
        float array (N,) in [0, 1]; 0 for a flat image (no power once the means are removed).

    Raises:
        ValueError: For an array that is not a batch of images.
    """
    pixels = np.asarray(images, np.float64)
    if pixels.ndim != 4:
        raise ValueError(
            "Expected images of shape (N, height, width, channels). Got array with shape: "
            f"{np.shape(images)}"
        )
    pixels = pixels - pixels.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(pixels, axes=(1, 2))) ** 2).sum(axis=-1)
    rows = np.fft.fftfreq(pixels.shape[1])[:, None]
    cols = np.fft.fftfreq(pixels.shape[2])[None, :]
    high = np.hypot(rows, cols) > cutoff
    total = power.sum(axis=(1, 2))
    flat = total <= 1e-12 * pixels[0].size
    return np.where(flat, 0.0, (power * high).sum(axis=(1, 2)) / np.where(flat, 1.0, total))


def activations(
    model, layer: str, images, filter_indices: Sequence[int], batch_size: int = 64
) -> np.ndarray:
    """Each filter's activation (spatial mean) on each image.

    Args:
        model: The `keras.Model`.
        layer: The layer's name or path ("outer/inner" for a nested model).
        images: (num_images, height, width, channels) in the model's input space.
        filter_indices: The filters.
        batch_size: Images per forward pass. Defaults to 64.

    Returns:
        float array (num_images, len(filter_indices)).
    """
    features = extractor.build_feature_extractor(model, layer)
    return _activations(features, layer, images, filter_indices, batch_size)


def _activations(features, layer, images, filter_indices, batch_size) -> np.ndarray:
    filters = np.asarray(filter_indices, np.int64)
    rows = []
    for start in range(0, len(images), batch_size):
        batch = ops.convert_to_tensor(np.asarray(images[start : start + batch_size], np.float32))
        values = ops.cast(features(batch, training=False)[layer], "float32")
        if len(values.shape) > 2:
            values = ops.mean(values, axis=tuple(range(1, len(values.shape) - 1)))
        rows.append(np.asarray(ops.convert_to_numpy(values))[:, filters])
    if not rows:
        return np.zeros((0, len(filters)), np.float32)
    return np.concatenate(rows).astype(np.float64)


def view_draws(filter_indices: Sequence[int], num_views: int, seed: int) -> np.ndarray:
    """The U[0, 1) draws of each filter's random views: (N, num_views, 4).

    Row i comes from `numpy.random.default_rng([seed, filter_indices[i]])` alone, so a
    filter's views do not depend on the other filters scored with it.
    """
    draws = np.empty((len(filter_indices), num_views, 4), np.float32)
    for position, index in enumerate(filter_indices):
        draws[position] = np.random.default_rng([seed, int(index)]).random((num_views, 4))
    return draws


def random_views(images, draws) -> np.ndarray:
    """Each image under its random shift, zoom and rotation, in one bilinear resampling.

    Draw columns: rotation (±`VIEW_DEGREES`), zoom (`VIEW_ZOOM`), row and column shift (±1/8 of
    the size), about the image's centre; what enters from outside is the reflected image.

    Args:
        images: (N, size, size, channels).
        draws: (N, num_views, 4) U[0, 1) numbers.

    Returns:
        float32 (N, num_views, size, size, channels).
    """
    images = np.asarray(images, np.float32)
    draws = np.asarray(draws, np.float64)
    count, num_views = draws.shape[:2]
    height, width = images.shape[1:3]
    angle = (2.0 * draws[..., 0] - 1.0) * math.radians(VIEW_DEGREES)
    zoom = VIEW_ZOOM[0] + draws[..., 1] * (VIEW_ZOOM[1] - VIEW_ZOOM[0])
    shift_row = (2.0 * draws[..., 2] - 1.0) * VIEW_SHIFT_FRACTION * height
    shift_col = (2.0 * draws[..., 3] - 1.0) * VIEW_SHIFT_FRACTION * width
    # affine_transform maps an output pixel (x, y) = (column, row) to the input position
    # (a0 x + a1 y + a2, b0 x + b1 y + b2): here centre + rotation(p − centre) / zoom − shift.
    cosine, sine = np.cos(angle) / zoom, np.sin(angle) / zoom
    centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
    a2 = centre_x - cosine * centre_x + sine * centre_y - shift_col
    b2 = centre_y - sine * centre_x - cosine * centre_y - shift_row
    zeros = np.zeros_like(cosine)
    transforms = np.stack([cosine, -sine, a2, sine, cosine, b2, zeros, zeros], axis=-1)
    repeated = np.repeat(images, num_views, axis=0)
    views = ops.image.affine_transform(
        ops.convert_to_tensor(repeated),
        ops.convert_to_tensor(transforms.reshape(count * num_views, 8).astype(np.float32)),
        interpolation="bilinear",
        fill_mode="reflect",
    )
    return np.asarray(ops.convert_to_numpy(views)).reshape((count, num_views, *images.shape[1:]))


def robustness(
    model,
    layer: str,
    filter_indices: Sequence[int],
    inputs,
    input_range: tuple | None,
    *,
    num_views: int = NUM_VIEWS,
    seed: int = 0,
    batch_size: int = 64,
) -> np.ndarray:
    """Each filter's robustness: its mean activation over random views of its own image, over
    its activation on that image, capped at 1; 0 where that activation is ≤ 0.

    The same numbers as `score(...).per_filter.robustness`: a filter's views are seeded by
    (`seed`, its index), so they do not depend on the other filters scored with it.

    Args:
        model: The `keras.Model`.
        layer: The layer's name or path.
        filter_indices: The filters, one per image of `inputs`, in order.
        inputs: (N, size, size, channels): one image per filter, in the model's input space.
        input_range: (low, high), each a number or one per channel: the images and their views
            are clipped into it, as `score` does; None leaves them unclipped (for a model whose
            input range is not known).
        num_views: Random views per filter. Defaults to 16.
        seed: Seed of the random views. Defaults to 0.
        batch_size: Images per forward pass. Defaults to 64.

    Returns:
        float array (N,) in [0, 1].

    Raises:
        ValueError: When the inputs are not one image per filter.
    """
    filters = [int(index) for index in filter_indices]
    inputs = np.asarray(inputs, np.float32)
    if inputs.ndim != 4 or len(inputs) != len(filters):
        raise ValueError(
            f"Expected one image (height, width, channels) per filter: {len(filters)} filters; "
            f"got inputs of shape {inputs.shape}"
        )
    if input_range is not None:
        inputs, _ = clip_to_range(inputs, *input_range)
    features = extractor.build_feature_extractor(model, layer)
    own = np.empty(len(filters))
    for start in range(0, len(filters), batch_size):
        part = slice(start, start + batch_size)
        own[part] = np.diagonal(
            _activations(features, layer, inputs[part], filters[part], batch_size)
        )
    return _robustness(
        features, layer, filters, inputs, own, input_range, num_views, seed, batch_size
    )


def _robustness(
    features, layer, filters, inputs, own, input_range, num_views, seed, batch_size
) -> np.ndarray:
    """`robustness` on inputs already clipped, given each filter's own activation."""
    view_mean = np.empty(len(filters))
    draws = view_draws(filters, num_views, seed)
    filters_per_pass = max(1, batch_size // max(num_views, 1))
    for start in range(0, len(filters), filters_per_pass):
        part = slice(start, start + filters_per_pass)
        views = random_views(inputs[part], draws[part]).reshape((-1, *inputs.shape[1:]))
        if input_range is not None:
            views, _ = clip_to_range(views, *input_range)
        values = _activations(features, layer, views, filters[part], batch_size)
        values = values.reshape(-1, num_views, values.shape[-1])
        view_mean[part] = np.diagonal(values.mean(axis=1))
    alive = own > 0.0
    return np.where(alive, np.minimum(1.0, view_mean / np.where(alive, own, 1.0)), 0.0)


def _import_skimage():
    """scikit-image's data, transform, color and util modules, or None when it is missing."""
    try:
        import skimage.color
        import skimage.data
        import skimage.transform
        import skimage.util
    except ImportError:
        return None
    return skimage


def natural_crops(size: int, channels: int, to_model: Callable | None) -> np.ndarray | None:
    """Crops of scikit-image's sample photographs, in the model's input space.

    Each photo of `NATURAL_PHOTOS` (in [0, 1]; RGB to grey by luminance for a 1-channel model,
    grey repeated into RGB for a 3-channel one) is resized with antialiasing so that its shorter
    side is 1× and 2× `size`, and cut into size × size crops at a stride of size / 4, row by
    row; then `to_model` maps them into the model's input space.

    Args:
        size: The model's input size (square).
        channels: The model's input channels: 1 or 3.
        to_model: Maps [0, 1] RGB (or grey) pictures to the model's input space, as the
            model's `InputRange.to_model` does (NumPy or `keras.ops`); None keeps [0, 1].

    Returns:
        float32 (num_crops, size, size, channels), or None when scikit-image is not installed.

    Raises:
        ValueError: For a channel count other than 1 or 3, or a size below 1.
    """
    if channels not in (1, 3):
        raise ValueError(f"natural crops are grey or RGB: channels must be 1 or 3; got {channels}")
    if size < 1:
        raise ValueError(f"size must be ≥ 1; got {size}")
    skimage = _import_skimage()
    if skimage is None:
        return None
    stride = max(size // NATURAL_STRIDE_DIVISOR, 1)
    crops = []
    for name in NATURAL_PHOTOS:
        photo = skimage.util.img_as_float32(getattr(skimage.data, name)())
        if photo.ndim == 3 and channels == 1:
            photo = skimage.color.rgb2gray(photo)[..., None]
        elif photo.ndim == 2:
            photo = np.repeat(photo[..., None], channels, axis=-1)
        height, width = photo.shape[:2]
        for scale in NATURAL_SCALES:
            factor = scale * size / min(height, width)
            shape = (max(round(height * factor), size), max(round(width * factor), size))
            resized = skimage.transform.resize(photo, shape, anti_aliasing=True)
            for top in range(0, shape[0] - size + 1, stride):
                for left in range(0, shape[1] - size + 1, stride):
                    crops.append(resized[top : top + size, left : left + size])
    unit = np.clip(np.stack(crops), 0.0, 1.0).astype(np.float32)
    if to_model is None:
        return unit
    return np.asarray(ops.convert_to_numpy(to_model(unit)), np.float32)


def score(
    model,
    layer: str,
    filter_indices: Sequence[int],
    inputs,
    input_range: tuple,
    *,
    to_model: Callable | None = None,
    natural_images: np.ndarray | None = None,
    num_views: int = NUM_VIEWS,
    seed: int = 0,
    batch_size: int = 64,
) -> QualityScores:
    """Scores the images of a layer's filters (see the module docstring for the measures).

    Args:
        model: The `keras.Model`.
        layer: The layer's name or path.
        filter_indices: The filters, one per image of `inputs`, in order.
        inputs: (N, size, size, channels): one image per filter, in the model's input space.
        input_range: (low, high), each a number or one per channel: the model's valid inputs.
        to_model: Maps [0, 1] pictures into the model's input space for the natural crops.
            Defaults to the linear map onto [low, high].
        natural_images: Natural crops already in the model's input space (the same for every
            layer of a model, so a caller scoring several layers makes them once). Defaults to
            `natural_crops(size, channels, to_model)`.
        num_views: Random views per filter for robustness. Defaults to 16.
        seed: Seed of the random views. Defaults to 0.
        batch_size: Images per forward pass. Defaults to 64.

    Returns:
        `QualityScores`.

    Raises:
        ValueError: When the inputs are not one finite image per filter, or a filter or the
            range cannot be used.
    """
    filters = [int(index) for index in filter_indices]
    inputs = np.asarray(inputs, np.float32)
    if inputs.ndim != 4 or len(inputs) != len(filters) or not filters:
        raise ValueError(
            f"Expected one image (height, width, channels) per filter: {len(filters)} filters; "
            f"got inputs of shape {inputs.shape}"
        )
    not_finite = [
        index for index, image in zip(filters, inputs, strict=True) if not np.isfinite(image).all()
    ]
    if not_finite:
        raise ValueError(
            f"the images of filters {not_finite} hold NaN or infinite values (a failed "
            "optimization): there is nothing to score in them"
        )
    low, high = input_range
    inputs, outside = clip_to_range(inputs, low, high)
    features = extractor.build_feature_extractor(model, layer)
    num_channels = int(features.output[layer].shape[-1])
    bad = [index for index in filters if not 0 <= index < num_channels]
    if bad:
        raise ValueError(
            f"filter indices {bad} are out of range: layer {layer!r} has {num_channels} filters "
            f"(0 … {num_channels - 1})"
        )

    # matrix[j, i]: filter i on image j.
    matrix = _activations(features, layer, inputs, filters, batch_size)
    own = np.diag(matrix).copy()
    others = matrix.copy()
    np.fill_diagonal(others, -np.inf)
    selective = own > others.max(axis=0) if len(filters) > 1 else np.ones(1, bool)
    alive = own > 0.0

    robustness = _robustness(
        features, layer, filters, inputs, own, (low, high), num_views, seed, batch_size
    )

    hf = high_frequency_fraction(inputs)
    if natural_images is None:
        if to_model is None:
            low_array, high_array = np.float32(low), np.float32(high)

            def to_model(unit):
                return low_array + unit * (high_array - low_array)

        natural_images = natural_crops(inputs.shape[1], inputs.shape[-1], to_model)
    gain = per_filter_gain = None
    num_natural = 0
    if natural_images is not None:
        num_natural = len(natural_images)
        natural_images, _ = clip_to_range(natural_images, low, high)
        best = _activations(features, layer, natural_images, filters, batch_size).max(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(best > 0, own / np.where(best > 0, best, 1.0), np.inf)
        per_filter_gain = np.where(alive, ratio, 0.0)
        gain = float(np.median(per_filter_gain))
    return QualityScores(
        selectivity=float(selective.mean()),
        robustness=float(robustness.mean()),
        high_frequency_fraction=float(hf.mean()),
        gain=gain,
        dead=int((~alive).sum()),
        outside_range=outside,
        num_filters=len(filters),
        num_natural_crops=num_natural,
        per_filter=FilterScores(
            filter_indices=np.asarray(filters),
            own_activation=own,
            selective=selective,
            robustness=robustness,
            high_frequency_fraction=hf,
            gain=per_filter_gain,
        ),
    )


TABLE_HEADER = (
    "| layer | selectivity | robustness | hf fraction | gain | dead | s/filter "
    "| max outside range |\n|---|---|---|---|---|---|---|---|"
)


def table_row(name: str, scores: QualityScores, seconds_per_filter: float | None) -> str:
    """One Markdown row under `TABLE_HEADER`: the measures, the time, the range excess.

    Args:
        name: What was scored ("demo conv3").
        scores: Its `QualityScores`.
        seconds_per_filter: The optimization's wall time per filter; None when the inputs
            were not made here (shown as "–").
    """
    gain = GAIN_NOT_AVAILABLE if scores.gain is None else f"{scores.gain:.2f}"
    timing = "–" if seconds_per_filter is None else f"{seconds_per_filter:.2f}"
    return (
        f"| {name} | {scores.selectivity:.3f} | {scores.robustness:.3f} | "
        f"{scores.high_frequency_fraction:.3f} | {gain} | {scores.dead} of {scores.num_filters} "
        f"| {timing} | {100 * scores.outside_range:.1f}% |"
    )
