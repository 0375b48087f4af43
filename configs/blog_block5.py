"""Figure: the best 64 filters of VGG16 block5_conv1, 8x8 (Keras blog 2016, Keras example).

Source: François Chollet, "How convolutional neural networks see the world" (Keras blog,
2016) and the Keras example `conv_filter_visualization.py` (2016–2018). VGG16 without its top,
no `preprocess_input`: noise U[118, 138) in raw 0–255 space at 128 px, 20 steps of 1.0 along
`g / (sqrt(mean(g²)) + 1e-5)`; filters 0–199 are tried, those whose final loss is ≤ 0 are
dropped, and the best 64 by final loss fill an 8x8 grid, row-major, best first, margin 5.
Deprocess: −mean, /(std + 1e-5), ×0.1, +0.5, clip, ×255.

    keras-filters --config=configs/blog_block5.py --outdir=out/figures/blog_block5

Runtime: about 4 min on 2 CPU cores (estimated with random weights from runs with fewer steps,
TensorFlow's start not counted; see README.md). Output: out/figures/blog_block5/mosaic.png,
1059x1059 px.
"""

from configs import base


def get_config():
    """Returns the blog_block5 configuration."""
    config = base.get_config()
    config.model = "vgg16"
    config.include_top = False
    config.layer = "block5_conv1"
    config.image_size = 128
    config.init_low = 118.0
    config.init_high = 138.0
    config.num_steps = 20
    config.step_size = 1.0
    config.gradient_normalization = "rms"
    config.gradient_epsilon = 1e-5
    config.deprocess = "standard"
    config.deprocess_scale = 0.1
    config.deprocess_epsilon = 1e-5
    config.max_filters = 200
    config.selection = "top"
    config.dead_threshold = 0.0
    config.dead_at_any_step = False
    config.grid_rows = 8
    config.grid_cols = 8
    config.margin = 5
    config.grid_order = "row"
    return config
