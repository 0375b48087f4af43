"""Figure: VGG16 conv5_1 (block5_conv1) filter 0 alone at 256 px.

Source: François Chollet, "How convolutional neural networks see the world" (Keras blog,
2016). The settings of the blog's block5_conv1 figure (see blog_block5.py: U[118, 138),
20 RMS steps of 1.0, ×0.1 deprocess) for filter 0 only, at 256 px; it is shown whatever its
loss.

    keras-filters --config=configs/blog_single.py --outdir=out/figures/blog_single

Runtime: about 10 s on 2 CPU cores (estimated with random weights from runs with fewer steps,
TensorFlow's start not counted; see README.md). Output: out/figures/blog_single/mosaic.png,
256x256 px.
"""

from configs import blog_block5


def get_config():
    """Returns the blog_single configuration."""
    config = blog_block5.get_config()
    config.image_size = 256
    config.filter_indices = (0,)
    config.selection = "first"
    config.grid_rows = 1
    config.grid_cols = 1
    return config
