"""The update: a step along each image's normalized gradient, and the finite-value guard.

Written once with `keras.ops`, so every backend runs the same arithmetic. An update has
`init_state(params)` (a tuple of tensors that the step carries from one call to the next; none
for the normalized-gradient step) and `apply(params, gradients, state, step_size)`.
"""

from keras import ops

from keras_filters.settings import GRADIENT_NORMALIZATIONS

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


def _finite_per_image(values):
    axes = tuple(range(1, len(values.shape)))
    return ops.all(ops.isfinite(values), axis=axes) if axes else ops.isfinite(values)


def guard(params, state: tuple, updated, new_state: tuple, losses, gradients):
    """Keeps the old parameters and state of every image whose step is not finite.

    An image fails when its loss or gradient is NaN or infinite, or when the step overflows
    float32: such an image stays where it was, and the run marks it failed.

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
