"""Chooses how many filters to optimize in one batch from the memory a batch would need."""

import keras
import numpy as np

# Resident memory one more image in the batch costs, per byte of the traced graph's float
# outputs. The traced sum counts every op output (Conv2D, BiasAdd and Relu separately, casts),
# while oneDNN fuses many of them and frees the rest early: one step's peak resident memory grew
# by 0.15-0.70 of the traced sum per image (VGG16 block5_conv1 at 128 and 256 px, float32 and
# mixed bfloat16; ResNet50V2 conv3_block4_out at 180 px; Xception block3_sepconv1 at 200 px;
# the demo CNN), so 1.0 leaves a margin of at least 1.4x.
MEMORY_PER_ACTIVATION_BYTE = 1.0
# Throughput of VGG16 block5_conv1 at 128 px on 2 CPU cores stops growing at about 8 images
# (40 ms per image-step at 8, 39 at 32); small models keep gaining up to 64 (the demo CNN: 1.8
# ms per image-step at 1, 0.6 at 8, 0.3 at 64). Larger batches only cost memory.
MAX_AUTO_BATCH = 64
FALLBACK_AVAILABLE_BYTES = 4 << 30


def available_memory_bytes() -> int:
    """Memory the run can still take: the accelerator's free memory when JAX runs on one,
    else the system's, from /proc/meminfo (Linux), else a 4 GiB guess."""
    if keras.backend.backend() == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return FALLBACK_AVAILABLE_BYTES


def activation_bytes_per_image(feature_extractor, image_size: int) -> int:
    """Bytes of every intermediate tensor of one forward pass of one image.

    Traces the model once at the given size and adds up the sizes of the graph's float outputs
    (the TensorFlow graph's, or the JAX program's under the JAX backend).
    """
    channels = int(feature_extractor.input_shape[-1])
    if keras.backend.backend() == "jax":
        return _jax_activation_bytes(feature_extractor, (1, image_size, image_size, channels))
    import tensorflow as tf

    spec = tf.TensorSpec((1, image_size, image_size, channels), tf.float32)
    graph = (
        tf.function(lambda x: feature_extractor(x, training=False))
        .get_concrete_function(spec)
        .graph
    )
    total = 0
    for operation in graph.get_operations():
        for output in operation.outputs:
            if output.dtype.is_floating and output.shape.is_fully_defined():
                total += int(np.prod(output.shape.as_list())) * output.dtype.size
    return total


def _jax_activation_bytes(feature_extractor, shape: tuple) -> int:
    """The float outputs of every equation of the model's JAX program, in bytes."""
    import jax

    trainable = [variable.value for variable in feature_extractor.trainable_variables]
    non_trainable = [variable.value for variable in feature_extractor.non_trainable_variables]

    def forward(images):
        return feature_extractor.stateless_call(trainable, non_trainable, images, training=False)

    program = jax.make_jaxpr(forward)(jax.ShapeDtypeStruct(shape, "float32"))
    total = 0
    for equation in _equations(program.jaxpr):
        for variable in equation.outvars:
            aval = variable.aval
            if np.issubdtype(aval.dtype, np.floating):
                total += int(np.prod(aval.shape)) * aval.dtype.itemsize
    return total


def _equations(jaxpr):
    """Every equation of a JAX program, with nested programs (jit calls) opened up."""
    for equation in jaxpr.eqns:
        nested = [
            getattr(value, "jaxpr", value)
            for value in equation.params.values()
            if hasattr(value, "eqns") or hasattr(getattr(value, "jaxpr", None), "eqns")
        ]
        if nested:
            for inner in nested:
                yield from _equations(inner)
        else:
            yield equation


def auto_batch_size(
    feature_extractor, image_size: int, num_filters: int, budget_fraction=0.4
) -> int:
    """The largest batch whose estimated memory fits `budget_fraction` of the free memory.

    Args:
        feature_extractor: The sub-model up to the target layer.
        image_size: The largest image size the run uses.
        num_filters: How many filters the run optimizes (no batch is larger).
        budget_fraction: Share of the free memory one batch may take. Defaults to 0.4.

    Returns:
        A batch size between 1 and min(num_filters, 64).
    """
    per_image = (
        activation_bytes_per_image(feature_extractor, image_size) * MEMORY_PER_ACTIVATION_BYTE
    )
    budget = available_memory_bytes() * budget_fraction
    fits = int(budget // max(per_image, 1.0))
    return max(1, min(fits, MAX_AUTO_BATCH, num_filters))
