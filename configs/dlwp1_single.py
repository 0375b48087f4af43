"""Figure: VGG16 block3_conv1 filter 0 alone at 150 px (Deep Learning with Python, 1st ed.).

Source: François Chollet, Deep Learning with Python, 1st edition (2017), section 5.4.2: the
pattern that `generate_pattern("block3_conv1", 0)` draws at its default size of 150 px, with the
settings of dlwp1.py (U[128, 148), 40 RMS steps of 1.0, ×0.1 deprocess).

    keras-filters --config=configs/dlwp1_single.py --outdir=out/figures/dlwp1_single

Runtime: about 2 s on 2 CPU cores (estimated with random weights from runs with fewer steps,
TensorFlow's start not counted; see README.md). Output: out/figures/dlwp1_single/mosaic.png,
150x150 px.
"""

from configs import dlwp1


def get_config():
    """Returns the dlwp1_single configuration."""
    config = dlwp1.get_config("block3_conv1")
    config.image_size = 150
    config.filter_indices = (0,)
    config.grid_rows = 1
    config.grid_cols = 1
    return config
