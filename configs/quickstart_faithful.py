"""The faithful recipe on the demo: all 64 filters of conv3 of the embedded demo CNN, 2016-style.

The quickstart's filters with the published settings instead of the quality recipe, to set the
two side by side (README). The demo CNN (scripts/train_demo_model.py) takes RGB images in
[0, 1]; the settings follow Deep Learning with Python, 2nd edition: noise U[0.4, 0.6), 30 steps
of 10 along the L2-normalized gradient, first 64 filters in index order.

    keras-filters --config=configs/quickstart_faithful.py --outdir=/tmp/quickstart_faithful

Runtime: about 10 s on 2 CPU cores. Output: /tmp/quickstart_faithful/mosaic.png (8x8 tiles of 64 px,
547x547 px) and /tmp/quickstart_faithful/run.json.
"""

from configs import base


def get_config():
    """Returns the faithful demo configuration."""
    config = base.get_config()
    config.model = "demo"
    config.weights = "none"
    config.layer = "conv3"
    config.image_size = 64
    config.max_filters = 64
    config.num_steps = 30
    config.step_size = 10.0
    config.gradient_normalization = "l2"
    config.init_low = 0.4
    config.init_high = 0.6
    config.deprocess_scale = 0.15
    config.selection = "first"
    return config
