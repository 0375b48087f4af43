"""Figure: every live filter of VGG16 block5_conv1 at 412 px, grown over 10 scales (Keras 2019).

Source: the Keras example `conv_filter_visualization.py` as rewritten in 2019 (PR #12203).
VGG16 without its top, noise U[118, 138) at 79 px; 15 steps of 1.0 along
`g / (sqrt(mean(g²)) + K.epsilon())` at each of 9 scales (79, 95, 114, 137, 165, 198, 238,
286, 343 px), each followed by an upscaling by 1.2: deprocess (×0.25) to uint8, PIL bicubic
resize, then back with `(x/255 − 0.5)·4·former.std() + former.mean()`; the last upscaling
reaches 412 px. All 512 filters are tried; a filter whose loss is ≤ 1e-7 (`K.epsilon()`) at
any step is dropped; the rest are sorted by final loss, and the best floor(sqrt(N))² fill a
square grid (N the filters left), margin 5. Deprocess: −mean, /(std + 1e-7), ×0.25, +0.5,
clip, ×255.

    keras-filters --config=configs/keras_v3_upscale.py --outdir=out/figures/keras_v3_upscale

Runtime: about 5.5 hours on 2 CPU cores for all 512 filters, 135 steps each (estimated with
random weights from runs of 32 filters with fewer steps, TensorFlow's start not counted; see
README.md). Output: out/figures/keras_v3_upscale/mosaic.png, tiles of 412 px: n·412 + (n − 1)·5
px square for an n x n grid (n = 22 when all 512 filters live: 9169x9169 px; with random
weights 415 lived: 20x20, 8335x8335 px).
"""

from configs import base

# Keras' K.epsilon(), which the 2019 example uses as gradient epsilon, deprocess epsilon and
# dead-filter threshold.
KERAS_EPSILON = 1e-7


def get_config():
    """Returns the keras_v3_upscale configuration."""
    config = base.get_config()
    config.model = "vgg16"
    config.include_top = False
    config.layer = "block5_conv1"
    config.image_size = 412
    config.num_upscalings = 9
    config.upscale_factor = 1.2
    config.init_low = 118.0
    config.init_high = 138.0
    config.num_steps = 15
    config.step_size = 1.0
    config.gradient_normalization = "rms"
    config.gradient_epsilon = KERAS_EPSILON
    config.deprocess = "standard"
    config.deprocess_scale = 0.25
    config.deprocess_epsilon = KERAS_EPSILON
    config.max_filters = 0
    config.selection = "top"
    config.dead_threshold = KERAS_EPSILON
    config.dead_at_any_step = True
    config.grid_rows = 0
    config.grid_cols = 0
    config.automatic_grid = "square"
    config.margin = 5
    config.grid_order = "row"
    return config
