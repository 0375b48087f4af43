"""The benchmark's backend-specific pieces for Keras on JAX: FLOP count, matrix-product rate,
the keras.io-style loop. Used where KERAS_BACKEND=jax (on the GPU machine, which has no
TensorFlow); `flops.py`, `measure.py` and `reference.py` hold the TensorFlow ones.
"""

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import measure
from keras_filters.backends import jax as jax_backend
from keras_filters.optvis import update as update_lib


def forward_flops(feature_extractor, image_size: int) -> int:
    """FLOPs of one forward pass of one image, counted from the model's JAX program: 2 per
    multiply-add of every convolution and matrix product, 1 per element of every other float
    operation. (XLA's own cost analysis leaves out the convolutions that a GPU hands to cuDNN.)
    """
    channels = int(feature_extractor.input_shape[-1])
    trainable = [variable.value for variable in feature_extractor.trainable_variables]
    non_trainable = [variable.value for variable in feature_extractor.non_trainable_variables]

    def forward(images):
        return feature_extractor.stateless_call(trainable, non_trainable, images, training=False)[0]

    shape = jax.ShapeDtypeStruct((1, image_size, image_size, channels), jnp.float32)
    program = jax.make_jaxpr(forward)(shape)
    total = 0
    for equation in jax_backend.equations(program.jaxpr):
        total += _equation_flops(equation)
    return total


def _equation_flops(equation) -> int:
    outputs = sum(int(np.prod(variable.aval.shape)) for variable in equation.outvars)
    name = equation.primitive.name
    if name == "conv_general_dilated":
        kernel = equation.invars[1].aval.shape
        numbers = equation.params["dimension_numbers"]
        spatial = int(np.prod([kernel[axis] for axis in numbers.rhs_spec[2:]]))
        inputs_per_output = kernel[numbers.rhs_spec[1]]  # input channels per group
        return 2 * outputs * spatial * inputs_per_output
    if name == "dot_general":
        (contracting, _), _ = equation.params["dimension_numbers"]
        left = equation.invars[0].aval.shape
        return 2 * outputs * int(np.prod([left[axis] for axis in contracting]))
    floating = all(np.issubdtype(variable.aval.dtype, np.floating) for variable in equation.outvars)
    return (
        outputs
        if floating and name not in ("broadcast_in_dim", "reshape", "convert_element_type")
        else 0
    )


def matmul_rate(dtype: str, size: int, repeats: int) -> float:
    """The best rate, in GFLOP/s, of a `size`×`size` matrix product of `dtype` over `repeats`."""
    key = jax.random.PRNGKey(0)
    left = jax.random.normal(key, (size, size)).astype(dtype)
    right = jax.random.normal(jax.random.PRNGKey(1), (size, size)).astype(dtype)
    product = jax.jit(jnp.matmul)
    best = measure.best_seconds(lambda: product(left, right).block_until_ready(), repeats)
    return 2.0 * size**3 / best / 1e9


def devices() -> dict:
    """The JAX devices and version, for the report."""
    return {
        "devices": [str(device) for device in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "jax": jax.__version__,
    }


def make_reference_loop(
    feature_extractor, *, layer: str, border: int, gradient_normalization: str, gradient_epsilon
):
    """The keras.io loop on JAX: one filter at a time, a batch of one, the filter index a static
    argument of `jax.jit` (one compilation per filter, as keras.io traces once per filter).

    Returns:
        `visualize_filter(filter_index, initial_image, num_steps, learning_rate) -> (loss,
        image)`, with `.compilations()` counting the compilations.
    """
    trainable = [variable.value for variable in feature_extractor.trainable_variables]
    non_trainable = [variable.value for variable in feature_extractor.non_trainable_variables]

    def compute_loss(image, filter_index):
        outputs, _ = feature_extractor.stateless_call(trainable, non_trainable, image)
        activation = outputs[layer]
        if border:
            activation = activation[:, border:-border, border:-border, :]
        return jnp.mean(activation[..., filter_index].astype(jnp.float32))

    def gradient_ascent_step(image, filter_index, learning_rate):
        loss, grads = jax.value_and_grad(compute_loss)(image, filter_index)
        if gradient_normalization == "l2":  # tf.math.l2_normalize
            grads = grads / jnp.sqrt(jnp.maximum(jnp.sum(grads**2), 1e-12))
        else:
            grads = update_lib.normalize_gradients(grads, gradient_normalization, gradient_epsilon)
        return loss, image + learning_rate * grads

    compiled = jax.jit(gradient_ascent_step, static_argnums=1)

    def visualize_filter(filter_index: int, initial_image, num_steps: int, learning_rate: float):
        image = jnp.asarray(np.asarray(initial_image, dtype=np.float32)[None])
        loss = None
        for _ in range(num_steps):
            loss, image = compiled(image, int(filter_index), np.float32(learning_rate))
        return float(loss), np.asarray(image[0])

    visualize_filter.compilations = compiled._cache_size
    return visualize_filter
