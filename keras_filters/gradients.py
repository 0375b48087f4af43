"""Normalizes each image's gradient by its own norm, so every filter takes steps of one size."""

NORMALIZATIONS = ("rms", "l2", "pixel_l2", "none")


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
    # Imported here, not at the top, so that the command can check a setting against
    # NORMALIZATIONS before it starts TensorFlow.
    from keras import ops

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
