"""Checks settings, the output folder and the image size before a run computes or writes anything.

Bad input must end in one line that names the bad value, before any file is written. The checks
that need no model (`check_settings`, `check_outdir`) import no TensorFlow, so the command
answers them at once; `check_image_size` runs once the model is loaded, before the first step.
"""

import math
import numbers
import os
import tempfile

import numpy as np

from keras_filters import deprocess, errors, gradients, model_files, mosaic, noise
from keras_filters import settings as settings_lib

# The settings that take one of a few words, and the words.
CHOICES = {
    "gradient_normalization": gradients.NORMALIZATIONS,
    "init_distribution": noise.DISTRIBUTIONS,
    "deprocess": deprocess.STYLES,
    "selection": mosaic.SELECTIONS,
    "grid_order": mosaic.ORDERS,
}

# The largest seed: keras.utils.set_random_seed hands it to NumPy's 32-bit legacy seeding.
MAX_SEED = 2**32 - 1
# Images are float32: noise beyond this would start as infinity.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The largest mosaic, in pixels (0.8 GB as RGB); 512 tiles of 412 px take a third of it.
MAX_MOSAIC_PIXELS = 2**28


def _finite(value) -> bool:
    return math.isfinite(value)


# Settings with a range: (test of the value, what the value must be).
RANGES = {
    "max_filters": (lambda v: v >= 0, "an integer ≥ 1, or 0 to try every filter"),
    "border": (lambda v: v >= 0, "an integer ≥ 0"),
    "image_size": (lambda v: v >= 1, "an integer ≥ 1 (pixels)"),
    "num_steps": (lambda v: v >= 1, "an integer ≥ 1"),
    "step_size": (lambda v: 0 < v <= FLOAT32_MAX, "a finite number > 0 (up to 3.4e38, float32)"),
    "gradient_epsilon": (lambda v: 0 <= v <= FLOAT32_MAX, "a number ≥ 0 (up to 3.4e38, float32)"),
    "num_upscalings": (lambda v: v >= 0, "an integer ≥ 0"),
    "upscale_factor": (lambda v: _finite(v) and v >= 1, "a finite number ≥ 1"),
    "init_low": (lambda v: abs(v) <= FLOAT32_MAX, "a number within ±3.4e38 (float32)"),
    "init_high": (lambda v: abs(v) <= FLOAT32_MAX, "a number within ±3.4e38 (float32)"),
    "seed": (lambda v: 0 <= v <= MAX_SEED, f"an integer from 0 to {MAX_SEED}"),
    "deprocess_scale": (lambda v: _finite(v) and v > 0, "a finite number > 0"),
    "deprocess_epsilon": (lambda v: _finite(v) and v >= 0, "a finite number ≥ 0"),
    "crop": (lambda v: v >= 0, "an integer ≥ 0"),
    "dead_threshold": (lambda v: not math.isnan(v), "a number, not NaN"),
    "grid_rows": (lambda v: v >= 0, "an integer ≥ 1, or 0 with grid_cols=0 for automatic"),
    "grid_cols": (lambda v: v >= 0, "an integer ≥ 1, or 0 with grid_rows=0 for automatic"),
    "margin": (lambda v: v >= 0, "an integer ≥ 0 (pixels)"),
    "batch_size": (lambda v: v >= 0, "an integer ≥ 1, or 0 for automatic"),
}

# Text settings that cannot be empty.
NON_EMPTY = ("model", "weights", "layer")

# Tuple settings that hold names; every other tuple setting holds integers.
TEXT_TUPLES = ("panel_layers", "panel_titles")


def show(value) -> str:
    """A setting's value as the user would type it: 0, 2.5, nan, 'rms', (0, 5)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, (tuple, list)):
        inner = ", ".join(show(item) for item in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def type_name(default, key: str = "") -> str:
    """What setting `key` holds, named after the type of its default."""
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "text"
    if isinstance(default, (tuple, list)) and key in TEXT_TUPLES:
        return 'a tuple of names, e.g. \'("block1_conv1", "block2_conv1")\''
    if isinstance(default, (tuple, list)):
        return "a tuple of integers, e.g. '(0, 5, 9)'"
    return type(default).__name__


def _has_type(value, default, key: str = "") -> bool:
    """Whether `value` has the type that the default of setting `key` has (ints pass as
    floats)."""
    if isinstance(default, bool):
        return isinstance(value, (bool, np.bool_))
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(default, int):
        return isinstance(value, numbers.Integral)
    if isinstance(default, float):
        return isinstance(value, numbers.Real)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (tuple, list)) and key in TEXT_TUPLES:
        return isinstance(value, (tuple, list)) and all(isinstance(item, str) for item in value)
    if isinstance(default, (tuple, list)):
        return isinstance(value, (tuple, list)) and all(
            isinstance(item, numbers.Integral) and not isinstance(item, (bool, np.bool_))
            for item in value
        )
    return True


def is_empty_filter_list(value) -> bool:
    """Whether `filter_indices` was given but names no filter: '' on the command line parses
    as ('',)."""
    return (
        isinstance(value, (tuple, list))
        and bool(value)
        and all(isinstance(item, str) and not item.strip() for item in value)
    )


def check_settings(settings: dict) -> None:
    """Checks every setting's type, range and choice, and the settings that bound each other.

    Args:
        settings: Resolved settings (every key of configs/base.py).

    Raises:
        UsageError: For the first bad setting, naming its value and what it must be.
    """
    defaults = settings_lib.default_settings()
    if is_empty_filter_list(settings.get("filter_indices")):
        raise errors.UsageError(
            f"filter_indices={show(settings['filter_indices'])} is an empty filter list; give "
            "at least one index, e.g. --config.filter_indices='(0, 5, 9)', or leave it out to "
            "try the first max_filters"
        )
    for key, default in defaults.items():
        if key in settings and not _has_type(settings[key], default, key):
            raise errors.UsageError(
                f"{key}={show(settings[key])} has the wrong type; {key} takes "
                f"{type_name(default, key)}"
            )
    for key, choices in CHOICES.items():
        if settings[key] not in choices:
            raise errors.UsageError(
                f"{key}={show(settings[key])} is not one of the choices: "
                f"{errors.format_choices(str(settings[key]), choices)}"
            )
    for key in NON_EMPTY:
        if not settings[key].strip():
            raise errors.UsageError(f"{key}={show(settings[key])} is empty; give a value")
    for key, (test, requirement) in RANGES.items():
        if not test(settings[key]):
            raise errors.UsageError(
                f"{key}={show(settings[key])} is out of range: use {requirement}"
            )
    if model_files.is_model_path(settings["model"]):
        model_files.check_model_file(settings["model"])
    _check_grid(settings["grid_rows"], settings["grid_cols"])
    _check_filter_indices(settings["filter_indices"])
    _check_noise_range(settings["init_low"], settings["init_high"])
    _check_crop(settings["crop"], settings["image_size"])
    _check_scales(settings["image_size"], settings["num_upscalings"], settings["upscale_factor"])


def _check_grid(rows: int, cols: int) -> None:
    """A grid has rows and columns, or is automatic (both 0: the largest square that fits)."""
    if (rows == 0) != (cols == 0):
        raise errors.UsageError(
            f"grid_rows={rows} grid_cols={cols} is a grid without "
            f"{'rows' if rows == 0 else 'columns'}; give both "
            "grid_rows and grid_cols ≥ 1, or both 0 for the largest square grid that fits"
        )


def _check_filter_indices(filter_indices) -> None:
    seen = set()
    for index in filter_indices:
        if index < 0:
            raise errors.UsageError(
                f"filter index {show(index)} in filter_indices={show(filter_indices)} is "
                "negative; filters are counted from 0"
            )
        if index in seen:
            raise errors.UsageError(
                f"filter index {show(index)} appears twice in filter_indices="
                f"{show(filter_indices)}; list each filter once"
            )
        seen.add(index)


def _check_noise_range(low: float, high: float) -> None:
    if low > high:
        raise errors.UsageError(
            f"init_low={show(low)} is above init_high={show(high)}; the noise is drawn from "
            "[init_low, init_high)"
        )
    if float(high) - float(low) > FLOAT32_MAX:
        raise errors.UsageError(
            f"the noise range init_low={show(low)} to init_high={show(high)} is too wide to "
            "draw from"
        )


def _check_crop(crop: int, image_size: int) -> None:
    if 2 * crop >= image_size:
        raise errors.UsageError(
            f"crop={crop} leaves no pixels of a {image_size} px tile (image_size={image_size}); "
            f"use a crop from 0 to {(image_size - 1) // 2}"
        )


def _check_scales(image_size: int, num_upscalings: int, upscale_factor: float) -> None:
    try:
        first = int(image_size / float(upscale_factor) ** num_upscalings)
    except OverflowError:
        first = 0
    if first < 1:
        raise errors.UsageError(
            f"num_upscalings={num_upscalings} with upscale_factor={show(upscale_factor)} makes "
            f"the first scale of image_size={image_size} smaller than 1 px; use fewer upscalings "
            "or a larger image_size"
        )


def check_outdir(outdir: str) -> None:
    """Checks that `outdir` is a folder that can be written, or can be created, without
    creating it (a bad run must leave nothing behind).

    Raises:
        UsageError: If `outdir` is a file, lies under a file, or cannot be written.
    """
    if not isinstance(outdir, str) or not outdir.strip():
        raise errors.UsageError(f"outdir={outdir!r} is not a folder path")
    path = os.path.abspath(outdir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise errors.UsageError(f"outdir {outdir!r} is a file, not a folder")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise errors.UsageError(f"outdir {outdir!r} cannot be created: {existing!r} is a file")
    try:
        # Permission bits do not tell for root or on read-only file systems: try for real.
        os.rmdir(tempfile.mkdtemp(prefix=".keras-filters-probe-", dir=existing))
    except OSError as error:
        where = "" if existing == path else f" (in {existing!r})"
        raise errors.UsageError(
            f"outdir {outdir!r} is not writable{where}: {error.strerror or error}"
        ) from None


def _spatial_output(feature_extractor, size: int, channels: int):
    """The layer's output shape for one size×size image, or None where Keras refuses the size."""
    import keras

    try:
        return tuple(
            feature_extractor.compute_output_spec(
                keras.KerasTensor((1, size, size, channels))
            ).shape
        )
    except Exception:  # Keras raises ValueError for a pooling that reaches zero size; any
        return None  # failure here means the same: the layer cannot run at this size.


def _works(shape) -> bool:
    return shape is not None and all(dim is None or dim > 0 for dim in shape[1:])


def _smallest_working_size(feature_extractor, channels: int, failing: int, limit=4096):
    """The smallest image size above `failing` at which the layer has an output, or None."""
    low, high = failing, failing + 1
    while not _works(_spatial_output(feature_extractor, high, channels)):
        low, high = high, high * 2
        if high > limit:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        if _works(_spatial_output(feature_extractor, middle, channels)):
            high = middle
        else:
            low = middle
    return high


def check_image_size(feature_extractor, *, sizes, border: int, layer_name: str) -> None:
    """Checks that the layer has an output at every image size, and pixels left inside `border`.

    Args:
        feature_extractor: The sub-model from the input to the layer.
        sizes: The image sizes the run visits (see `scales.scale_sizes`).
        border: Pixels of the activation map left out of the objective on each side.
        layer_name: The layer's path, for the message.

    Raises:
        UsageError: If the model's pooling reaches zero size at the smallest size, or the
            border leaves no pixels of the activation map.
    """
    channels = int(feature_extractor.input_shape[-1])
    smallest = min(sizes)
    shape = _spatial_output(feature_extractor, smallest, channels)
    if not _works(shape):
        # Some models cannot be traced symbolically at all; refuse only what a larger size fixes.
        minimum = _smallest_working_size(feature_extractor, channels, smallest)
        if minimum is not None:
            where = (
                f"image_size={sizes[-1]} starts its {len(sizes)} scales at {smallest} px"
                if len(sizes) > 1
                else f"image_size={smallest} is too small"
            )
            raise errors.UsageError(
                f"{where} for layer {layer_name!r}: the model's pooling reaches zero size below "
                f"{minimum} px; use a larger --config.image_size"
                + (" or fewer --config.num_upscalings" if len(sizes) > 1 else "")
            )
        return
    if border and len(shape) == 4:
        height, width = shape[1:3]
        if height is not None and width is not None and 2 * border >= min(height, width):
            raise errors.UsageError(
                f"border={border} leaves no pixels of the {height}x{width} activation map of "
                f"layer {layer_name!r} at {smallest} px; use a border below "
                f"{(min(height, width) + 1) // 2} or a larger image_size"
            )


def check_mosaic_size(settings: dict, num_filters: int) -> None:
    """Checks that the largest mosaic the run can make fits in memory, before the run starts.

    Args:
        settings: Settings that passed `check_settings`.
        num_filters: How many filters the run optimizes (a grid larger than that shrinks).

    Raises:
        UsageError: If the mosaic would have more than MAX_MOSAIC_PIXELS pixels.
    """
    rows, cols, margin = settings["grid_rows"], settings["grid_cols"], settings["margin"]
    if rows * cols > num_filters or rows == 0:
        rows = cols = math.isqrt(num_filters)
    tile = settings["image_size"] - 2 * settings["crop"]
    height, width = mosaic.mosaic_size(rows, cols, tile, tile, margin)
    if height * width > MAX_MOSAIC_PIXELS:
        raise errors.UsageError(
            f"the mosaic would be {height}x{width} px ({rows}x{cols} tiles of {tile} px, "
            f"margin={margin}), more than {MAX_MOSAIC_PIXELS} pixels; use a smaller margin, "
            "grid or image_size"
        )
