"""Figure: the first 64 filters of ResNet50V2 conv3_block4_out, 8x8 (keras.io, 2020).

Source: keras.io, "Visualizing what convnets learn" (François Chollet, 2020). ResNet50V2
without its top, no `preprocess_input`: noise `(U[0, 1) − 0.5)·0.25` at 180 px, 30 steps of
10.0 along `tf.math.l2_normalize(g)` (global L2 norm), loss the mean of
`activation[:, 2:-2, 2:-2, filter]` (2 px of the activation map's border left out). Deprocess:
−mean, /(std + 1e-5), ×0.15, crop 25 px each side, +0.5, clip, ×255, so tiles are 130 px.
Filters 0–63 in index order, 8x8, row-major, margin 5.

`tf.math.l2_normalize` divides by sqrt(max(sum(g²), 1e-12)) = max(norm, 1e-6); our L2 divides
by norm + gradient_epsilon, so gradient_epsilon = 1e-6 gives the same step whenever the norm is
well above 1e-6, and a zero step for a dead filter.

    keras-filters --config=configs/kerasio.py --outdir=out/figures/kerasio

Runtime: about 1 min on 2 CPU cores (estimated with random weights from runs with fewer steps,
TensorFlow's start not counted; see README.md). Output: out/figures/kerasio/mosaic.png, 1075x1075
px.
"""

from configs import base


def get_config():
    """Returns the kerasio configuration."""
    config = base.get_config()
    config.model = "resnet50v2"
    config.include_top = False
    config.layer = "conv3_block4_out"
    config.image_size = 180
    config.init_low = -0.125
    config.init_high = 0.125
    config.num_steps = 30
    config.step_size = 10.0
    config.gradient_normalization = "l2"
    config.gradient_epsilon = 1e-6
    config.border = 2
    config.deprocess = "standard"
    config.deprocess_scale = 0.15
    config.deprocess_epsilon = 1e-5
    config.crop = 25
    config.max_filters = 64
    config.selection = "first"
    config.grid_rows = 8
    config.grid_cols = 8
    config.margin = 5
    config.grid_order = "row"
    return config
