"""Counts the arithmetic of one ascent step, to turn timings into GFLOP/s.

The rule: the forward pass is counted by TensorFlow's profiler on the traced forward graph of
one image (a convolution or matrix product counts 2 FLOPs per multiply-add; bias adds and other
element-wise ops one per element). The gradient with respect to the input costs as much again:
for every convolution and matrix product, the input gradient is a product of the same size as
the forward one. The weight gradients are not computed, since the step asks for the input
gradient only and TensorFlow prunes what nothing uses. So one step of one image costs
2 × forward. For VGG16 up to block5_conv1 at 128 px that is 2 × 9.42 = 18.8 GFLOP.
"""

from collections.abc import Sequence

import keras

# An ascent step is the forward pass plus the input gradient, which costs as much again.
STEP_FLOPS_PER_FORWARD_FLOP = 2


def forward_flops(feature_extractor, image_size: int) -> int:
    """FLOPs of one forward pass of one square image through `feature_extractor`.

    Args:
        feature_extractor: The sub-model up to the target layer.
        image_size: Height and width of the image.

    Returns:
        The profiler's float-operation count of the traced forward graph; under Keras on JAX,
        XLA's count of the compiled forward pass.
    """
    if keras.backend.backend() == "jax":
        from benchmarks import jax_tools

        return jax_tools.forward_flops(feature_extractor, image_size)
    import tensorflow as tf

    channels = int(feature_extractor.input_shape[-1])
    spec = tf.TensorSpec((1, image_size, image_size, channels), tf.float32)
    graph = (
        tf.function(lambda images: feature_extractor(images, training=False))
        .get_concrete_function(spec)
        .graph
    )
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # The v1 profiler logs a deprecation notice we cannot act on.
    try:
        profile = tf.compat.v1.profiler.profile(graph, options=options)
    finally:
        logger.setLevel(level)
    return int(profile.total_float_ops)


def step_flops(feature_extractor, image_size: int) -> int:
    """FLOPs of one ascent step of one image: forward plus the input gradient (2 × forward)."""
    return STEP_FLOPS_PER_FORWARD_FLOP * forward_flops(feature_extractor, image_size)


def run_flops(
    feature_extractor, optimized_sizes: Sequence[int], num_steps: int, num_images: int
) -> int:
    """FLOPs of a whole run: `num_steps` steps at each optimized size, for every image."""
    per_image = sum(step_flops(feature_extractor, size) for size in optimized_sizes)
    return per_image * num_steps * num_images
