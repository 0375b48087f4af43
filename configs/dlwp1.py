"""Figures: the first 64 filters of VGG16 block1_conv1 … block4_conv1, 8x8 column-major (DLwP 1).

Source: François Chollet, Deep Learning with Python, 1st edition (2017), section 5.4.2,
"Visualizing convnet filters". VGG16 without its top, no `preprocess_input`: noise
U[128, 148) at 64 px, 40 steps of 1.0 along `g / (sqrt(mean(g²)) + 1e-5)`. Deprocess:
−mean, /(std + 1e-5), ×0.1, +0.5, clip, ×255. Filters 0–63 whatever their loss, 8x8,
margin 5, column-major: the book fills `results[i, j]` with filter i + 8·j, so filter
i + 8·j sits at row i, column j.

The book shows four layers; the layer is the config's argument (block1_conv1 by default):

    keras-filters --config=configs/dlwp1.py:block1_conv1 --outdir=out/figures/dlwp1_block1_conv1
    keras-filters --config=configs/dlwp1.py:block2_conv1 --outdir=out/figures/dlwp1_block2_conv1
    keras-filters --config=configs/dlwp1.py:block3_conv1 --outdir=out/figures/dlwp1_block3_conv1
    keras-filters --config=configs/dlwp1.py:block4_conv1 --outdir=out/figures/dlwp1_block4_conv1

Runtime: on 2 CPU cores, about 6 s (block1_conv1), 15 s (block2_conv1), 30 s (block3_conv1)
and 35 s (block4_conv1) (estimated with random weights from runs with fewer steps, TensorFlow's
start not counted; see README.md). Output: out/figures/dlwp1_<layer>/mosaic.png, 547x547 px each.
"""

from configs import base

# The layers that the book shows.
LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1")


def get_config(layer: str = LAYERS[0]):
    """Returns the dlwp1 configuration for `layer`."""
    config = base.get_config()
    config.model = "vgg16"
    config.include_top = False
    config.layer = layer
    config.image_size = 64
    config.init_low = 128.0
    config.init_high = 148.0
    config.num_steps = 40
    config.step_size = 1.0
    config.gradient_normalization = "rms"
    config.gradient_epsilon = 1e-5
    config.deprocess = "standard"
    config.deprocess_scale = 0.1
    config.deprocess_epsilon = 1e-5
    config.max_filters = 64
    config.selection = "first"
    config.grid_rows = 8
    config.grid_cols = 8
    config.margin = 5
    config.grid_order = "column"
    return config
