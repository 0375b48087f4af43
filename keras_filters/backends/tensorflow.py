"""The TensorFlow backend: `tf.function` + `GradientTape`.

The input signature leaves the batch and spatial axes open (only each argument's last axis is
fixed), so one trace serves the whole run, whatever its chunks and scales. A parameterization
whose arithmetic needs its shape (the Fourier image's DFT tables) asks for static shapes: the
step is then traced once per shape (a chunk size or a scale).
"""

import numpy as np
import tensorflow as tf


def _open_spec(value) -> tf.TensorSpec:
    """A spec with every axis open but the last, which stays fixed (channels, draws)."""
    value = np.asarray(value)
    shape = (
        [None] * (value.ndim - 1) + [value.shape[-1]] if value.ndim >= 2 else [None] * value.ndim
    )
    return tf.TensorSpec(shape, tf.as_dtype(value.dtype))


def compile_step(
    model,
    image_losses,
    apply_update,
    *,
    example_args,
    jit_compile: bool = False,
    static_shapes: bool = False,
):
    """Compiles `step(params, state, targets, step_size, draws)`; see `keras_filters.backends`.

    Args:
        model: The feature extractor.
        image_losses: `image_losses(call_model, params, targets, draws) -> (ascended,
            reported)`, each (batch,).
        apply_update: `apply_update(params, state, losses, gradients, step_size)`.
        example_args: (params, state) of one chunk, for the input signature.
        jit_compile: Compile with XLA. Defaults to False.
        static_shapes: Trace once per shape instead of once with open axes. Defaults to
            False.

    The step is traced without AutoGraph: it has no Python control flow on tensors, and
    converting its code cost about 0.2 s per filter of a 32-filter quality run on 2 cores.
    """
    example_params, example_state = example_args

    def call_model(images):
        return model(images, training=False)

    def step(params, state, targets, step_size, draws):
        with tf.GradientTape() as tape:
            tape.watch(params)
            ascended, reported = image_losses(call_model, params, targets, draws)
        # Each image's loss depends on that image only, so the gradient of the sum gives every
        # image the gradient of its own loss in one backward pass.
        gradients = tape.gradient(ascended, params)
        return apply_update(params, state, reported, gradients, step_size)

    if static_shapes:
        return tf.function(step, jit_compile=jit_compile, autograph=False)
    signature = [
        _open_spec(example_params),
        tf.nest.map_structure(_open_spec, tuple(example_state)),
        tf.TensorSpec((None,), tf.int32, name="targets"),
        tf.TensorSpec((), tf.float32, name="step_size"),
        tf.TensorSpec((None, None), tf.float32, name="draws"),
    ]
    return tf.function(step, input_signature=signature, jit_compile=jit_compile, autograph=False)


def activation_bytes(model, shape: tuple) -> int:
    """Bytes of every float tensor of one forward pass at `shape`, from the traced graph."""
    spec = tf.TensorSpec(shape, tf.float32)
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    total = 0
    for operation in graph.get_operations():
        for output in operation.outputs:
            if output.dtype.is_floating and output.shape.is_fully_defined():
                total += int(np.prod(output.shape.as_list())) * output.dtype.size
    return total


def free_device_memory() -> int | None:
    """None: the TensorFlow CPU build has no device memory of its own to report."""
    return None


def probe_devices() -> list:
    """Lists the devices (TensorFlow probes CUDA, and logs about it, on first use)."""
    return tf.config.list_physical_devices()


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is TensorFlow's report that a device ran out of memory ("OOM when
    allocating tensor with shape[…]"), eager, in a `tf.function` or compiled with XLA."""
    return isinstance(error, tf.errors.ResourceExhaustedError)
