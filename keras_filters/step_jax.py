"""The gradient-ascent step for the JAX backend, with the same contract as `step.py`.

Used when Keras runs on JAX (KERAS_BACKEND=jax), for example on machines where TensorFlow is
not installed. The model runs through `stateless_call`, so the step is a pure function that
`jax.jit` compiles once per batch shape.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

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
    jit_compile: bool = True,
):
    """Builds `step(params, filter_indices, step_size) -> (new_params, losses, finite)`.

    Args and returns as `step.make_ascent_step`; `channels` and `jit_compile` are accepted for
    the same signature (JAX always compiles).
    """
    del channels, jit_compile
    steps.check_normalization(gradient_normalization)
    trainable = [variable.value for variable in feature_extractor.trainable_variables]
    non_trainable = [variable.value for variable in feature_extractor.non_trainable_variables]

    def total_objective(params, filter_indices, trainable, non_trainable):
        images = parameterization(params)
        for transform in transforms:
            images = transform(images)
        activations, _ = feature_extractor.stateless_call(
            trainable, non_trainable, images, training=False
        )
        losses = objectives.filter_mean_activation(activations, filter_indices, border)
        # Each image's loss depends on that image only: the gradient of the sum is each
        # image's own gradient.
        return jnp.sum(losses), losses

    value_and_gradient = jax.value_and_grad(total_objective, has_aux=True)

    @jax.jit
    def compiled_step(params, filter_indices, step_size, trainable, non_trainable):
        (_, losses), raw_gradients = value_and_gradient(
            params, filter_indices, trainable, non_trainable
        )
        finite = jnp.isfinite(losses) & jnp.all(jnp.isfinite(raw_gradients), axis=(1, 2, 3))
        normalized = gradients_lib.normalize_gradients(
            raw_gradients, gradient_normalization, gradient_epsilon
        )
        updated = params + step_size * normalized
        # A step too long for float32 overflows: that image fails like a NaN loss, and stays put.
        finite = finite & jnp.all(jnp.isfinite(updated), axis=(1, 2, 3))
        return jnp.where(finite[:, None, None, None], updated, params), losses, finite

    def step(params, filter_indices, step_size):
        return compiled_step(params, filter_indices, step_size, trainable, non_trainable)

    return step
