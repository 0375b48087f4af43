"""The reference loop, in the style of the keras.io example: one filter at a time, batch of one.

This is the baseline that `benchmark.py` measures keras-filters against, so it keeps the habits
of "Visualizing what convnets learn" (keras.io, 2020) that cost time: the filter index reaches
the `tf.function` as a Python int, so the step is traced again for every filter, and every step
optimizes a single image. The math is the same as keras-filters' own step, so that both
produce the same images from the same starting noise: the loss is the filter's mean activation
(without `border` pixels), and the gradient is normalized with `tf.math.l2_normalize` for "l2",
as keras.io does, or as `gradients.normalize_gradients` does for the other modes.
"""

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from keras_filters.optvis import update as update_lib


def make_reference_loop(
    feature_extractor,
    *,
    layer: str,
    border: int,
    gradient_normalization: str,
    gradient_epsilon: float,
) -> Callable:
    """Builds `visualize_filter(filter_index, initial_image, num_steps, learning_rate)`.

    Each call of the returned function is one filter, as keras.io's `visualize_filter`; its
    `tf.function` is created here, so one loop's traces (one per filter index) are its own.

    Args:
        feature_extractor: Model from the input to the target layer (dict outputs).
        layer: The target layer's key in the extractor's outputs.
        border: Activation-map border left out of the loss.
        gradient_normalization: "l2" (keras.io's `tf.math.l2_normalize`), "rms", "pixel_l2" or
            "none".
        gradient_epsilon: Added to the norm for the modes other than "l2".

    Returns:
        `visualize_filter(filter_index: int, initial_image: (H, W, C) array, num_steps: int,
        learning_rate: float) -> (loss, image)`: the loss at the last step (before its update,
        as keras.io returns it) and the optimized (H, W, C) float32 image.
    """

    def compute_loss(input_image, filter_index):
        activation = feature_extractor(input_image)[layer]
        if border:
            activation = activation[:, border:-border, border:-border, :]
        filter_activation = activation[..., filter_index]
        return tf.reduce_mean(tf.cast(filter_activation, tf.float32))

    @tf.function
    def gradient_ascent_step(image, filter_index, learning_rate):
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = compute_loss(image, filter_index)
        grads = tape.gradient(loss, image)
        if gradient_normalization == "l2":
            grads = tf.math.l2_normalize(grads)
        else:
            grads = update_lib.normalize_gradients(grads, gradient_normalization, gradient_epsilon)
        image += learning_rate * grads
        return loss, image

    def visualize_filter(filter_index: int, initial_image, num_steps: int, learning_rate: float):
        image = tf.convert_to_tensor(np.asarray(initial_image, dtype=np.float32)[None])
        loss = None
        for _ in range(num_steps):
            loss, image = gradient_ascent_step(image, filter_index, learning_rate)
        return float(loss), image[0].numpy()

    visualize_filter.gradient_ascent_step = gradient_ascent_step
    return visualize_filter
