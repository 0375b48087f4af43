"""Figure: Xception block3_sepconv1 filter 2 alone (Deep Learning with Python, 2nd edition).

Source: François Chollet, Deep Learning with Python, 2nd edition (2021), chapter 9:
`deprocess_image(generate_filter_pattern(filter_index=2))`, with the settings of dlwp2.py
(200 px, U[0.4, 0.6), 30 L2 steps of 10.0, 2 px activation border left out, "dlwp2"
deprocess and 25 px crop, so 150 px).

    keras-filters --config=configs/dlwp2_single.py --outdir=out/figures/dlwp2_single

Runtime: about 5 s on 2 CPU cores (estimated with random weights from runs with fewer steps,
TensorFlow's start not counted; see README.md). Output: out/figures/dlwp2_single/mosaic.png,
150x150 px.
"""

from configs import dlwp2


def get_config():
    """Returns the dlwp2_single configuration."""
    config = dlwp2.get_config()
    config.filter_indices = (2,)
    config.grid_rows = 1
    config.grid_cols = 1
    return config
