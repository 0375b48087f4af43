"""Figure: the first 64 filters of Xception block3_sepconv1, 8x8 (Deep Learning with Python, 3rd).

Source: François Chollet, Deep Learning with Python, 3rd edition, chapter 10: the settings of
the 2nd edition (see dlwp2.py) with the step written for TensorFlow, PyTorch and JAX around
`keras.ops.normalize(g)`, which normalizes along the last axis: each pixel's gradient by its
own L2 norm over the channels ("pixel_l2"). `ops.normalize` divides by max(norm, 1e-7);
gradient_epsilon = 1e-7 matches it wherever the norm is well above 1e-7.

    keras-filters --config=configs/dlwp3.py --outdir=out/figures/dlwp3

Runtime: about 1 min on 2 CPU cores (estimated with random weights from runs with fewer steps,
TensorFlow's start not counted; see README.md). Output: out/figures/dlwp3/mosaic.png, 1235x1235
px.
"""

from configs import dlwp2


def get_config():
    """Returns the dlwp3 configuration."""
    config = dlwp2.get_config()
    config.gradient_normalization = "pixel_l2"
    config.gradient_epsilon = 1e-7
    return config
