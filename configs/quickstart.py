"""Quickstart: all 64 filters of conv3 of the embedded demo CNN, offline, with the quality recipe.

The demo CNN (scripts/train_demo_model.py) takes RGB images in [0, 1] of any size; this runs
`configs/quality.py` on its deepest layer at 64 px. `configs/quickstart_faithful.py` runs the
same filters with the published 2016-style settings, to compare (README).

    keras-filters --config=configs/quickstart.py --outdir=/tmp/quickstart

Output: /tmp/quickstart/mosaic.png (8x8 tiles of 64 px, 547x547 px) and /tmp/quickstart/run.json.
"""

from configs import quality


def get_config():
    """Returns the quickstart configuration."""
    config = quality.get_config()
    config.model = "demo"
    config.weights = "none"
    config.layer = "conv3"
    config.image_size = 64
    config.max_filters = 64
    return config
