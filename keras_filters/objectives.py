"""What the ascent maximizes: the mean activation of each image's own filter."""

from keras import ops


def filter_mean_activation(activations, filter_indices, border: int = 0):
    """Mean activation of filter `filter_indices[i]` in image i, for every image of the batch.

    Args:
        activations: The layer output, (batch, ..., channels): (batch, height, width, channels)
            for a convolution, (batch, units) for a dense layer.
        filter_indices: Integer tensor (batch,): the filter of each image.
        border: Pixels of the activation map left out on each side (keras.io leaves out 2, so
            that border artifacts do not count). Defaults to 0. Only for spatial outputs.

    Returns:
        Float32 tensor (batch,): the objective of each image.
    """
    rank = len(activations.shape)
    if border and rank == 4:
        activations = activations[:, border:-border, border:-border, :]
    indices = ops.reshape(ops.cast(filter_indices, "int32"), (-1,) + (1,) * (rank - 1))
    chosen = ops.take_along_axis(activations, indices, axis=-1)
    # Mixed precision computes the layer in bfloat16; the objective stays float32.
    chosen = ops.cast(chosen, "float32")
    return ops.mean(chosen, axis=tuple(range(1, rank)))
