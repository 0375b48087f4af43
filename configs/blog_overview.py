"""Figure: 12 filters of each of VGG16 conv1_1 … conv5_1, one titled 2x6 panel per layer.

Source: François Chollet, "How convolutional neural networks see the world" (Keras blog,
2016). The blog's overview shows a few filters of the first convolution of each block, layer
by layer. Its settings are those of the block5_conv1 figure (see blog_block5.py: 128 px,
U[118, 138), 20 RMS steps of 1.0, ×0.1 deprocess, filters 0–199 tried, dead ones dropped, best
first); each layer gives a panel of 2 rows x 6 columns (12 filters) under its title, and the
five panels are stacked top to bottom into one image. The titles give the blog's layer name
and Keras Applications' name.

    keras-filters --config=configs/blog_overview.py --outdir=out/figures/blog_overview

Runtime: about 11 min on 2 CPU cores (estimated with random weights from runs with fewer steps,
TensorFlow's start not counted; see README.md). Output: out/figures/blog_overview/mosaic.png, 793
px wide x 1445 px high (five panels of 24 + 261 px, 5 px apart).
"""

from configs import blog_block5


def get_config():
    """Returns the blog_overview configuration."""
    config = blog_block5.get_config()
    config.layer = "block1_conv1"  # Unused: panel_layers takes its place.
    config.panel_layers = tuple(f"block{block}_conv1" for block in range(1, 6))
    config.panel_titles = tuple(f"conv{block}_1 (block{block}_conv1)" for block in range(1, 6))
    config.grid_rows = 2
    config.grid_cols = 6
    return config
