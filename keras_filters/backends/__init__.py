"""What differs per Keras backend: "value and gradient of this loss, compiled", nothing else.

Each backend module provides

    compile_step(model, image_losses, apply_update, *, example_args, jit_compile) -> step

where `image_losses(call_model, params, targets, draws)` gives two losses per image, the one
to ascend and the one to report (they differ by the regularizers' penalty); it calls
`call_model(images)` for the model's outputs. `apply_update(params, state, losses, gradients,
step_size)` turns the gradient of the first into the step's result, with the second as
`losses`. Both are written with `keras.ops` in `keras_filters.optvis`. The compiled step is
`step(params, state, targets, step_size, draws) -> apply_update(...)`, traced once per run.

Each also says how big a pass is and how much memory is free (`activation_bytes`,
`free_device_memory`), lists its devices (`probe_devices`), and tells its report of a device
out of memory from other errors (`is_out_of_memory`).
"""

import importlib

import keras

from keras_filters import errors

BACKENDS = ("tensorflow", "jax")


def current():
    """The backend module for the Keras backend in use.

    Raises:
        UsageError: When Keras runs on a backend that has no module here.
    """
    backend = keras.backend.backend()
    if backend not in BACKENDS:
        raise errors.UsageError(
            f"Keras backend {backend!r} has no ascent step yet; set KERAS_BACKEND to one of: "
            + ", ".join(BACKENDS)
        )
    if backend not in _LOADED:
        _LOADED[backend] = importlib.import_module(f"keras_filters.backends.{backend}")
    return _LOADED[backend]


# The backend modules loaded so far. A step being traced asks for its backend again
# (`resample.downsample`); answering from here keeps TensorFlow's AutoGraph from trying to
# convert `importlib`'s internals, which it reports as a warning on stderr.
_LOADED = {}
