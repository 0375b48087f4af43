"""Figure: VGG16 class units 65 (sea snake) and 18 (magpie), side by side.

Source: François Chollet, "How convolutional neural networks see the world" (Keras blog,
2016), which visualizes output classes of VGG16 with its classifier: the sea snake's loss
reached 0.999 and the magpie "does not look like a magpie". The blog's loss was the softmax
output (a probability, hence 0.999); this config follows the project's choice of the
pre-softmax logit (`linear_output`: the `class_logit` objective, VGG16's `predictions` layer
before its softmax), which Distill's "Feature Visualization" (2017) found to give better
pictures. Use `--config.linear_output=false` for the blog's softmax objective. The blog gives
no other settings; those of its block5_conv1 figure are kept (U[118, 138), 20 RMS steps of
1.0, ×0.1 deprocess) at the 224 px that the classifier needs.

    keras-filters --config=configs/blog_classes.py --outdir=out/figures/blog_classes

Runtime: about 20 s on 2 CPU cores (estimated with random weights from runs with fewer steps,
TensorFlow's start not counted; see README.md). Output: out/figures/blog_classes/mosaic.png,
453x224 px (unit 65 left, unit 18 right).
"""

from configs import blog_block5


def get_config():
    """Returns the blog_classes configuration."""
    config = blog_block5.get_config()
    config.include_top = True
    config.linear_output = True
    config.layer = "predictions"
    config.image_size = 224
    config.filter_indices = (65, 18)
    config.selection = "first"
    config.grid_rows = 1
    config.grid_cols = 2
    return config
