"""Picks the gradient-ascent step written for the Keras backend in use.

The pipeline is written with `keras.ops` and NumPy; only the step that takes gradients is
backend-specific. `step.py` holds the TensorFlow one (`tf.function` + `GradientTape`) and
`step_jax.py` the JAX one (`jax.value_and_grad` + `jax.jit`), with the same contract:
`step(params, filter_indices, step_size) -> (new_params, losses, finite)`.
"""

import keras

from keras_filters import errors
from keras_filters import gradients as gradients_lib

BACKENDS = ("tensorflow", "jax")


def identity(params):
    """The default image parameterization: the parameters are the image."""
    return params


def check_normalization(mode: str) -> None:
    """Raises ValueError for a gradient normalization that `gradients` does not know."""
    if mode not in gradients_lib.NORMALIZATIONS:
        raise ValueError(
            f"unknown gradient_normalization {mode!r}; choose one of: "
            + ", ".join(gradients_lib.NORMALIZATIONS)
        )


def make_ascent_step(feature_extractor, **options):
    """Builds the ascent step for the current Keras backend.

    Args:
        feature_extractor: Model from the input to the target layer.
        **options: As `step.make_ascent_step`.

    Returns:
        `step(params, filter_indices, step_size) -> (new_params, losses, finite)`.

    Raises:
        UsageError: When Keras runs on a backend that has no step yet.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from keras_filters import step as backend_step
    elif backend == "jax":
        from keras_filters import step_jax as backend_step
    else:
        raise errors.UsageError(
            f"Keras backend {backend!r} has no ascent step yet; set KERAS_BACKEND to one of: "
            + ", ".join(BACKENDS)
        )
    return backend_step.make_ascent_step(feature_extractor, **options)
