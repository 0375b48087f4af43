"""Figure: the blog's header, 24 filters of VGG16 conv5_2 (block5_conv2), 3 rows x 8 columns.

Source: François Chollet, "How convolutional neural networks see the world" (Keras blog,
2016). The header strip uses the settings of the blog's block5_conv1 figure (see
blog_block5.py: 128 px, U[118, 138), 20 RMS steps of 1.0, ×0.1 deprocess, filters 0–199 tried,
dead ones dropped, best first) on `conv5_2`, which Keras Applications calls `block5_conv2`, in
3 rows of 8.

    keras-filters --config=configs/blog_header.py --outdir=out/figures/blog_header

Runtime: about 5 min on 2 CPU cores (estimated with random weights from runs with fewer steps,
TensorFlow's start not counted; see README.md). Output: out/figures/blog_header/mosaic.png, 1059
px wide x 394 px high.
"""

from configs import blog_block5


def get_config():
    """Returns the blog_header configuration."""
    config = blog_block5.get_config()
    config.layer = "block5_conv2"
    config.grid_rows = 3
    config.grid_cols = 8
    return config
