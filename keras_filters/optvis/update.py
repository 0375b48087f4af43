"""The update: a step along each image's normalized gradient or Adam's, the step-size
schedule, and the finite-value guard.

Written once with `keras.ops`, so every backend runs the same arithmetic. An update has
`init_state(params)` (a tuple of arrays that the step carries from one call to the next, each
with the batch first, or a scalar; none for the normalized-gradient step) and
`apply(params, gradients, state, step_size)`. Both ascend: they move the image up its
objective. `step_size` is this step's size, computed on the host by `step_size_at`, so a
schedule never retraces the compiled step.
"""

import math

import numpy as np
from keras import ops

from keras_filters.settings import GRADIENT_NORMALIZATIONS, OPTIMIZERS, SCHEDULES

NORMALIZATIONS = GRADIENT_NORMALIZATIONS


def normalize_gradients(gradients, mode: str, epsilon: float):
    """Divides each image's gradient by its own norm plus `epsilon`.

    A dead filter (zero gradient) gets a zero step, never NaN, thanks to `epsilon`.

    Args:
        gradients: Float tensor (batch, height, width, channels).
        mode: "rms" as the Keras blog and example, `g / (sqrt(mean(g²)) + eps)`; "l2" as
            keras.io, `g / (sqrt(sum(g²)) + eps)` over the whole image; "pixel_l2" as Deep
            Learning with Python 3rd edition, the L2 norm over channels at each pixel; "none".
        epsilon: Added to the norm.

    Returns:
        The normalized gradients, same shape.

    Raises:
        ValueError: For an unknown mode.
    """
    image_axes = tuple(range(1, len(gradients.shape)))
    if mode == "rms":
        norm = ops.sqrt(ops.mean(ops.square(gradients), axis=image_axes, keepdims=True))
    elif mode == "l2":
        norm = ops.sqrt(ops.sum(ops.square(gradients), axis=image_axes, keepdims=True))
    elif mode == "pixel_l2":
        norm = ops.sqrt(ops.sum(ops.square(gradients), axis=-1, keepdims=True))
    elif mode == "none":
        return gradients
    else:
        raise ValueError(
            f"unknown gradient_normalization {mode!r}; choose one of: {', '.join(NORMALIZATIONS)}"
        )
    return gradients / (norm + epsilon)


class NormalizedGradient:
    """Gradient ascent along each image's own normalized gradient (the references' step).

    Args:
        mode: See `normalize_gradients`.
        epsilon: Added to each gradient norm.

    Raises:
        ValueError: For an unknown mode.
    """

    def __init__(self, mode: str = "rms", epsilon: float = 1e-5):
        if mode not in NORMALIZATIONS:
            raise ValueError(
                f"unknown gradient_normalization {mode!r}; choose one of: "
                + ", ".join(NORMALIZATIONS)
            )
        self.mode = mode
        self.epsilon = epsilon

    def init_state(self, params) -> tuple:
        """No state: each step depends on the current gradient only."""
        return ()

    def apply(self, params, gradients, state: tuple, step_size):
        """Returns (params + step_size · normalized gradient, state)."""
        return params + step_size * normalize_gradients(gradients, self.mode, self.epsilon), state


class Adam:
    """Adam ascent: each parameter moves by its own running gradient mean over running RMS.

    The arithmetic is `keras.optimizers.Adam`'s (and lucid's TensorFlow Adam's), applied to the
    gradient of the objective rather than of a loss: with m and v the bias-uncorrected moment
    estimates after t steps,

        params + step_size · sqrt(1 − beta_2^t) / (1 − beta_1^t) · m / (sqrt(v) + epsilon).

    The step count t is kept per image, so an image that a failed step left in place (see
    `guard`) keeps its own count, moments and bias correction.

    Args:
        beta_1: Decay of the running gradient mean. Defaults to 0.9.
        beta_2: Decay of the running mean of squared gradients. Defaults to 0.999.
        epsilon: Added to the root of the second moment. Defaults to 1e-8.

    Raises:
        ValueError: For a decay outside [0, 1) or a negative epsilon.
    """

    def __init__(self, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8):
        for name, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0 <= beta < 1:
                raise ValueError(f"Adam {name}={beta!r} is out of range: use 0 ≤ {name} < 1")
        if not (math.isfinite(epsilon) and epsilon >= 0):
            raise ValueError(f"Adam epsilon={epsilon!r} is out of range: use a finite number ≥ 0")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def init_state(self, params) -> tuple:
        """(first moment, second moment, step count): zeros, the count one per image.

        Host float32 arrays shaped like `params` (and (batch,) for the count); the render loop
        places them where the step runs.
        """
        shape = tuple(params.shape)
        zeros = np.zeros(shape, np.float32)
        return zeros, zeros.copy(), np.zeros(shape[:1], np.float32)

    def apply(self, params, gradients, state: tuple, step_size):
        """Returns (params moved up Adam's step, (first moment, second moment, count))."""
        first, second, count = state
        count = count + 1.0
        first = first + (1.0 - self.beta_1) * (gradients - first)
        second = second + (1.0 - self.beta_2) * (ops.square(gradients) - second)
        correction = ops.sqrt(1.0 - ops.power(self.beta_2, count)) / (
            1.0 - ops.power(self.beta_1, count)
        )
        correction = ops.reshape(correction, (-1,) + (1,) * (len(params.shape) - 1))
        step = correction * first / (ops.sqrt(second) + self.epsilon)
        return params + step_size * step, (first, second, count)


def make_update(optimizer: str, gradient_normalization: str, gradient_epsilon: float):
    """The update that the settings name.

    Args:
        optimizer: "normalized_gradient" or "adam" (`settings.OPTIMIZERS`).
        gradient_normalization: The normalization of the normalized-gradient step.
        gradient_epsilon: Added to its gradient norms.

    Returns:
        A `NormalizedGradient` or an `Adam` (with Keras' default decays).

    Raises:
        ValueError: For an unknown optimizer.
    """
    if optimizer == "normalized_gradient":
        return NormalizedGradient(gradient_normalization, gradient_epsilon)
    if optimizer == "adam":
        return Adam()
    raise ValueError(f"unknown optimizer {optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")


def step_size_at(
    step: int,
    num_steps: int,
    base: float,
    schedule: str = "constant",
    final_fraction: float = 1.0,
) -> float:
    """The step size of `step` (counted from 0) out of `num_steps`.

    Args:
        step: This step, from 0 to num_steps − 1.
        num_steps: How many steps the schedule spans.
        base: The size at step 0 (and at every step when constant).
        schedule: "constant"; "linear" or "cosine" (half a cosine period) from `base` at step 0
            down to base · final_fraction at step num_steps − 1. Defaults to "constant".
        final_fraction: The last step's size as a fraction of `base`. Defaults to 1.0.

    Returns:
        The step size, a Python float.

    Raises:
        ValueError: For an unknown schedule.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")
    if schedule == "constant":
        return float(base)
    progress = min(max(step / max(num_steps - 1, 1), 0.0), 1.0)
    if schedule == "linear":
        remaining = 1.0 - progress
    else:
        remaining = 0.5 * (1.0 + math.cos(math.pi * progress))
    return float(base * (final_fraction + (1.0 - final_fraction) * remaining))


def _finite_per_image(values):
    axes = tuple(range(1, len(values.shape)))
    return ops.all(ops.isfinite(values), axis=axes) if axes else ops.isfinite(values)


def guard(params, state: tuple, updated, new_state: tuple, losses, gradients):
    """Keeps the old parameters and state of every image whose step is not finite.

    An image fails when its loss or gradient is NaN or infinite, or when the step overflows
    float32: such an image stays where it was, and the run marks it failed.

    Every array of the state whose first axis is the batch keeps a failed image's rows (Adam's
    moments and step count), so the image resumes as if the step had not been tried.

    Returns:
        (params, state, finite): `finite` is a bool tensor (batch,).
    """
    finite = ops.logical_and(ops.isfinite(losses), _finite_per_image(gradients))
    finite = ops.logical_and(finite, _finite_per_image(updated))

    def keep(new, old):
        if len(new.shape) == 0:  # A counter shared by the batch.
            return new
        mask = ops.reshape(finite, (-1,) + (1,) * (len(new.shape) - 1))
        return ops.where(mask, new, old)

    kept_state = tuple(keep(new, old) for new, old in zip(new_state, state, strict=True))
    return keep(updated, params), kept_state, finite
