"""Differentiable random image transforms applied inside the gradient tape, in order.

A transform has `num_draws` and is called as `transform(images, draws)`: `draws` is a float32
tensor (batch, num_draws) of U[0, 1) numbers. The draws are made on the host, per image, from a
generator seeded with `(seed, key, step)` (`random_draws`), so an image sees the same
transforms whatever its batch, chunk or resume. The list is empty in the published recipes.

The transforms run after the parameterization, on the image in the model's input space:
`Pad` (by reflection), `Jitter` (whole-pixel shifts), `RandomScale` and `RandomRotate` (about
the centre). The last three are geometric: `Compose` fuses each run of adjacent geometric
transforms into one bilinear resampling per image (`resample.affine`), which blurs less and
costs one gather, and ends with a centre crop back to the size it was given, so a pad never
changes what the model receives. In the settings the list is written as text,
`("pad(12)", "jitter(8)", "scale(0.9, 1.1)", "rotate(10)", "jitter(4)")` (`from_specs`).
"""

import math
from collections.abc import Iterable, Sequence

import numpy as np
from keras import ops

from keras_filters import settings
from keras_filters.optvis import resample

# lucid's standard list (Distill 2017, "Feature Visualization"): pad, jitter, scale, rotate,
# jitter again.
STANDARD = settings.STANDARD_TRANSFORMS

PAD_MODES = ("reflect", "symmetric", "constant")


class Pad:
    """Pads each side of every image by `pixels`; `Compose` crops them off at the end.

    Args:
        pixels: Pixels added to each side, a whole number ≥ 0.
        mode: "reflect" (mirrored about the edge pixel, d c b | a b c d), "symmetric" (the
            edge pixel repeated, c b a | a b c d) or "constant" (zeros). Defaults to
            "reflect".

    Raises:
        ValueError: For negative pixels or an unknown mode.
    """

    num_draws = 0

    def __init__(self, pixels: int, mode: str = "reflect"):
        if int(pixels) != pixels or pixels < 0:
            raise ValueError(f"pad pixels={pixels!r} is not a whole number ≥ 0")
        if mode not in PAD_MODES:
            raise ValueError(f"unknown pad mode {mode!r}; choose one of: {', '.join(PAD_MODES)}")
        self.pixels = int(pixels)
        self.mode = mode

    @property
    def padding(self) -> int:
        """Pixels this transform adds to each side."""
        return self.pixels

    def __call__(self, images, draws=None):
        widths = ((0, 0), (self.pixels, self.pixels), (self.pixels, self.pixels), (0, 0))
        return ops.pad(images, widths, mode=self.mode) if self.pixels else images

    def __repr__(self) -> str:
        return f"Pad({self.pixels}, mode={self.mode!r})"


class Geometric:
    """A size-keeping warp that `Compose` can fuse with its neighbours into one resampling.

    A subclass gives `matrices(draws)`: (batch, 3, 3) maps from output to source offsets about
    the centre, as `resample.affine` takes them.

    Args:
        fill_mode: What enters from outside (`resample.FILL_MODES`). Defaults to "reflect".

    Raises:
        ValueError: For an unknown fill mode.
    """

    num_draws = 0

    def __init__(self, fill_mode: str = "reflect"):
        if fill_mode not in resample.FILL_MODES:
            raise ValueError(
                f"unknown fill_mode {fill_mode!r}; choose one of: {', '.join(resample.FILL_MODES)}"
            )
        self.fill_mode = fill_mode

    def matrices(self, draws, size=None):
        """The warps of the batch; `size` is the images' height (for sizes in fractions)."""
        raise NotImplementedError

    def __call__(self, images, draws):
        return resample.affine(images, self.matrices(draws, _height(images)), self.fill_mode)


class Jitter(Geometric):
    """Moves each image by whole pixels, each axis drawn uniformly from −pixels … pixels.

    The content moves by (rows, columns) = `shifts(draws)`: output[r, c] = input[r − rows,
    c − columns] inside the picture; what enters at the border comes from `fill_mode`.

    Args:
        pixels: The largest shift, a whole number ≥ 0.
        fill_mode: See `Geometric`. Defaults to "reflect".

    Raises:
        ValueError: For negative pixels or an unknown fill mode.
    """

    num_draws = 2

    def __init__(self, pixels: int, fill_mode: str = "reflect"):
        super().__init__(fill_mode)
        if int(pixels) != pixels or pixels < 0:
            raise ValueError(f"jitter pixels={pixels!r} is not a whole number ≥ 0")
        self.pixels = int(pixels)

    def shifts(self, draws):
        """(batch, 2) whole shifts (rows, columns) as floats; a draw of 0.5 gives 0."""
        return ops.floor(draws[:, :2] * (2 * self.pixels + 1)) - self.pixels

    def matrices(self, draws, size=None):
        shifts = self.shifts(draws)
        return resample.translation_matrices(shifts[:, 0], shifts[:, 1])

    def __repr__(self) -> str:
        return f"Jitter({self.pixels})"


class Shift(Geometric):
    """Moves each image by a fraction of its size, each axis drawn uniformly, sub-pixel.

    Unlike `Jitter`'s whole pixels, the largest shift scales with the image, so one recipe
    serves models of any input size (the quality recipe shifts by up to ±1/8, as the
    robustness measure does).

    Args:
        fraction: The largest shift as a fraction of the image's height, in [0, 1).
        fill_mode: See `Geometric`. Defaults to "reflect".

    Raises:
        ValueError: For a fraction outside [0, 1), or an unknown fill mode.
    """

    num_draws = 2

    def __init__(self, fraction: float, fill_mode: str = "reflect"):
        super().__init__(fill_mode)
        if not (math.isfinite(fraction) and 0 <= fraction < 1):
            raise ValueError(f"shift fraction={fraction!r} is not a number in [0, 1)")
        self.fraction = float(fraction)

    def shifts(self, draws, size):
        """(batch, 2) shifts (rows, columns) in pixels; a draw of 0.5 gives 0."""
        return (2.0 * draws[:, :2] - 1.0) * (self.fraction * ops.cast(size, "float32"))

    def matrices(self, draws, size=None):
        shifts = self.shifts(draws, size)
        return resample.translation_matrices(shifts[:, 0], shifts[:, 1])

    def __repr__(self) -> str:
        return f"Shift({self.fraction})"


def _height(images):
    """The images' height: static where the shape says it, else read in the graph."""
    height = images.shape[1]
    return height if height is not None else ops.shape(images)[1]


class RandomScale(Geometric):
    """Zooms each image about its centre by a factor drawn uniformly from [low, high].

    A factor s > 1 enlarges the content: output(p) = input(centre + (p − centre) / s).

    Args:
        low: The smallest factor, > 0.
        high: The largest factor, ≥ low.
        fill_mode: See `Geometric`. Defaults to "reflect".

    Raises:
        ValueError: Unless 0 < low ≤ high, both finite; for an unknown fill mode.
    """

    num_draws = 1

    def __init__(self, low: float, high: float, fill_mode: str = "reflect"):
        super().__init__(fill_mode)
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
            raise ValueError(f"scale ({low!r}, {high!r}) must satisfy 0 < low ≤ high, finite")
        self.low, self.high = float(low), float(high)

    def factors(self, draws):
        """(batch,) zoom factors."""
        return self.low + draws[:, 0] * (self.high - self.low)

    def matrices(self, draws, size=None):
        return resample.scale_matrices(self.factors(draws))

    def __repr__(self) -> str:
        return f"RandomScale({self.low}, {self.high})"


class RandomRotate(Geometric):
    """Turns each image about its centre by an angle drawn uniformly from −degrees … degrees.

    A positive angle turns the content counter-clockwise as shown (rows pointing down).

    Args:
        degrees: The largest angle, in degrees, ≥ 0.
        fill_mode: See `Geometric`. Defaults to "reflect".

    Raises:
        ValueError: For a negative or infinite angle, or an unknown fill mode.
    """

    num_draws = 1

    def __init__(self, degrees: float, fill_mode: str = "reflect"):
        super().__init__(fill_mode)
        if not (math.isfinite(degrees) and degrees >= 0):
            raise ValueError(f"rotate degrees={degrees!r} is not a finite number ≥ 0")
        self.degrees = float(degrees)

    def angles(self, draws):
        """(batch,) angles in radians; a draw of 0.5 gives 0."""
        return (2.0 * draws[:, 0] - 1.0) * math.radians(self.degrees)

    def matrices(self, draws, size=None):
        return resample.rotation_matrices(self.angles(draws))

    def __repr__(self) -> str:
        return f"RandomRotate({self.degrees})"


class Compose:
    """Applies transforms in order, each with its own columns of the draws.

    Each run of adjacent `Geometric` transforms with the same fill mode becomes one
    `resample.affine` call, its matrices multiplied: the same picture as applying them one by
    one, up to interpolation error, with one resampling's blur instead of several. At the end
    the centre is cropped back to the size given, taking off what the `Pad`s added.

    Args:
        transforms: Transforms (or `Compose`s, whose transforms are taken in their place).
            Defaults to none.
    """

    def __init__(self, transforms: Iterable = ()):
        flat = []
        for transform in transforms:
            flat.extend(transform.transforms if isinstance(transform, Compose) else [transform])
        self.transforms = tuple(flat)
        self.num_draws = sum(transform.num_draws for transform in self.transforms)
        self.padding = sum(getattr(transform, "padding", 0) for transform in self.transforms)

    def __call__(self, images, draws):
        start = 0
        matrices, fill_mode = None, None
        for transform in self.transforms:
            columns = draws[:, start : start + transform.num_draws]
            start += transform.num_draws
            if isinstance(transform, Geometric):
                if matrices is not None and transform.fill_mode == fill_mode:
                    # Output-to-source maps chain on the right: the later warp is applied first.
                    matrices = ops.matmul(matrices, transform.matrices(columns, _height(images)))
                    continue
                if matrices is not None:
                    images = resample.affine(images, matrices, fill_mode)
                matrices = transform.matrices(columns, _height(images))
                fill_mode = transform.fill_mode
            else:
                if matrices is not None:
                    images = resample.affine(images, matrices, fill_mode)
                    matrices = None
                images = transform(images, columns)
        if matrices is not None:
            images = resample.affine(images, matrices, fill_mode)
        if self.padding:
            border = self.padding
            images = images[:, border:-border, border:-border, :]
        return images

    def __iter__(self):
        return iter(self.transforms)

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return f"Compose({list(self.transforms)!r})"


_BUILDERS = {
    "pad": Pad,
    "jitter": Jitter,
    "shift": Shift,
    "scale": RandomScale,
    "rotate": RandomRotate,
}


def from_specs(specs: Sequence[str]) -> tuple:
    """The transforms that the settings' text names, in order.

    Args:
        specs: Text such as `("pad(12)", "jitter(8)", "scale(0.9, 1.1)", "rotate(10)")`; see
            `settings.parse_transform_specs` for the forms.

    Returns:
        A tuple of transforms, for `Compose`.

    Raises:
        UsageError: For the first spec that is not one of the forms, naming it.
    """
    return tuple(
        _BUILDERS[name](*arguments) for name, arguments in settings.parse_transform_specs(specs)
    )


def random_draws(seed: int, keys, step: int, num_draws: int) -> np.ndarray:
    """The U[0, 1) draws of every image for one step: (len(keys), num_draws) float32.

    Image i's row comes from a generator seeded with `(seed, keys[i], step)` alone.
    """
    draws = np.empty((len(keys), num_draws), dtype=np.float32)
    if num_draws:
        for position, key in enumerate(keys):
            generator = np.random.default_rng([seed, int(key), int(step)])
            draws[position] = generator.random(num_draws, dtype=np.float32)
    return draws
