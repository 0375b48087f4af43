"""The gradient-ascent step for TensorFlow: the backend-specific piece of the pipeline.

`steps.make_ascent_step` picks it when Keras runs on TensorFlow; `step_jax.py` is the same
step for JAX. Another Keras 3 backend is added by writing a step with the same signature.
"""

from collections.abc import Callable, Sequence

import tensorflow as tf

from keras_filters import gradients as gradients_lib
from keras_filters import objectives, steps


def make_ascent_step(
    feature_extractor,
    *,
    channels: int,
    border: int = 0,
    gradient_normalization: str = "rms",
    gradient_epsilon: float = 1e-5,
    parameterization: Callable = steps.identity,
    transforms: Sequence[Callable] = (),
    jit_compile: bool = False,
):
    """Builds the `tf.function` that takes one ascent step for a batch of images.

    Each image has its own filter; its objective is that filter's mean activation, and its
    gradient is normalized by its own norm. Filter indices and the step size are tensors and the
    batch and spatial axes are left open in the input signature, so the function traces once
    for the whole run, whatever the filters, chunk sizes or scales.

    Args:
        feature_extractor: Model from the input to the target layer.
        channels: Channels of the parameters (the model's input channels for the identity
            parameterization).
        border: Activation-map border left out of the objective. Defaults to 0.
        gradient_normalization: See `gradients.normalize_gradients`. Defaults to "rms".
        gradient_epsilon: Added to each gradient norm. Defaults to 1e-5.
        parameterization: Maps the parameters to images (inside the tape). Defaults to identity.
        transforms: Differentiable image transforms applied in order inside the tape, before the
            model. Defaults to none.
        jit_compile: Compile the step with XLA. Defaults to False.

    Returns:
        `step(params, filter_indices, step_size) -> (new_params, losses, finite)`: `losses` are
        the objectives before the update; `finite` is False for an image whose loss, gradient or
        updated parameters are NaN or infinite, and such an image keeps its parameters.
    """
    steps.check_normalization(gradient_normalization)

    def step(params, filter_indices, step_size):
        with tf.GradientTape() as tape:
            tape.watch(params)
            images = parameterization(params)
            for transform in transforms:
                images = transform(images)
            activations = feature_extractor(images, training=False)
            losses = objectives.filter_mean_activation(activations, filter_indices, border)
        # Each image's loss depends on that image only, so the gradient of the sum gives every
        # image the gradient of its own loss in one backward pass.
        raw_gradients = tape.gradient(losses, params)
        finite = tf.math.logical_and(
            tf.math.is_finite(losses),
            tf.reduce_all(tf.math.is_finite(raw_gradients), axis=(1, 2, 3)),
        )
        normalized = gradients_lib.normalize_gradients(
            raw_gradients, gradient_normalization, gradient_epsilon
        )
        updated = params + step_size * normalized
        # A step too long for float32 overflows: that image fails like a NaN loss, and stays put.
        finite = tf.math.logical_and(
            finite, tf.reduce_all(tf.math.is_finite(updated), axis=(1, 2, 3))
        )
        keep = tf.reshape(finite, (-1, 1, 1, 1))
        return tf.where(keep, updated, params), losses, finite

    signature = [
        tf.TensorSpec((None, None, None, channels), tf.float32, name="params"),
        tf.TensorSpec((None,), tf.int32, name="filter_indices"),
        tf.TensorSpec((), tf.float32, name="step_size"),
    ]
    return tf.function(step, input_signature=signature, jit_compile=jit_compile)
