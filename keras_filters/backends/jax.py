"""The JAX backend: `jax.value_and_grad` + `jax.jit`, the model run through `stateless_call`.

The model's variables are arguments of the compiled function, not constants baked into it, so
compilation stays fast for large models; `jax.jit` compiles once per batch and image shape.
"""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np


def compile_step(
    model, image_losses, apply_update, *, example_args=None, jit_compile=True, static_shapes=True
):
    """Compiles `step(params, state, targets, step_size, draws)`; see `keras_filters.backends`.

    Args and returns as the TensorFlow backend's; `example_args`, `jit_compile` and
    `static_shapes` are accepted for the same contract (JAX always compiles once per shape).
    """
    del example_args, jit_compile, static_shapes
    trainable = [variable.value for variable in model.trainable_variables]
    non_trainable = [variable.value for variable in model.non_trainable_variables]

    def total_loss(params, targets, draws, trainable, non_trainable):
        def call_model(images):
            outputs, _ = model.stateless_call(trainable, non_trainable, images, training=False)
            return outputs

        ascended, reported = image_losses(call_model, params, targets, draws)
        return jnp.sum(ascended), reported

    loss_and_gradient = jax.value_and_grad(total_loss, has_aux=True)

    @jax.jit
    def compiled(params, state, targets, step_size, draws, trainable, non_trainable):
        (_, reported), gradients = loss_and_gradient(
            params, targets, draws, trainable, non_trainable
        )
        return apply_update(params, state, reported, gradients, step_size)

    def step(params, state, targets, step_size, draws):
        return compiled(params, state, targets, step_size, draws, trainable, non_trainable)

    return step


def activation_bytes(model, shape: tuple) -> int:
    """Bytes of the float outputs of every equation of the model's JAX program at `shape`."""
    trainable = [variable.value for variable in model.trainable_variables]
    non_trainable = [variable.value for variable in model.non_trainable_variables]

    def forward(images):
        return model.stateless_call(trainable, non_trainable, images, training=False)

    program = jax.make_jaxpr(forward)(jax.ShapeDtypeStruct(shape, "float32"))
    total = 0
    for equation in equations(program.jaxpr):
        for variable in equation.outvars:
            aval = variable.aval
            if np.issubdtype(aval.dtype, np.floating):
                total += int(np.prod(aval.shape)) * aval.dtype.itemsize
    return total


def equations(jaxpr):
    """Every equation of a JAX program, with nested programs (jit calls) opened up."""
    for equation in jaxpr.eqns:
        nested = [
            getattr(value, "jaxpr", value)
            for value in equation.params.values()
            if hasattr(value, "eqns") or hasattr(getattr(value, "jaxpr", None), "eqns")
        ]
        if nested:
            for inner in nested:
                yield from equations(inner)
        else:
            yield equation


def free_device_memory() -> int | None:
    """Free memory of the first device, where JAX reports it (accelerators), else None."""
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))


def probe_devices() -> list:
    """Lists the devices (JAX looks for accelerators on first use).

    Keras still reads legacy .h5 files through TensorFlow where it is installed; it is loaded
    here too, so that its start-up lines come while the caller silences them.
    """
    devices = jax.devices()
    if importlib.util.find_spec("tensorflow"):
        import tensorflow  # noqa: F401
    return devices


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is XLA's report that a device ran out of memory ("RESOURCE_EXHAUSTED: Out
    of memory allocating … bytes"). JAX raises it as a RuntimeError whose message starts with
    XLA's status code; its class is `jax.errors.JaxRuntimeError` in recent releases and
    `jaxlib.xla_extension.XlaRuntimeError` in older ones, so the message decides."""
    return isinstance(error, RuntimeError) and str(error).lstrip().startswith("RESOURCE_EXHAUSTED")
