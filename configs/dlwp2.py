"""Figure: the first 64 filters of Xception block3_sepconv1, 8x8 (Deep Learning with Python, 2nd).

Source: François Chollet, Deep Learning with Python, 2nd edition (2021), chapter 9,
"Visualizing convnet filters". Xception without its top, no `preprocess_input`: noise
U[0.4, 0.6) at 200 px, 30 steps of 10.0 along `tf.math.l2_normalize(g)` (global L2 norm),
loss the mean of `activation[:, 2:-2, 2:-2, filter]` (the book's `compute_loss` leaves out
2 px of the activation map's border). Deprocess ("dlwp2"): −mean, /std, ×64, +128, clip to
[0, 255], uint8, then crop 25 px each side, so tiles are 150 px. Filters 0–63 in index order,
8x8, row-major, margin 5. gradient_epsilon = 1e-6 stands for l2_normalize's floor on the norm,
as in kerasio.py.

    keras-filters --config=configs/dlwp2.py --outdir=out/figures/dlwp2

Runtime: about 1 min on 2 CPU cores (estimated with random weights from runs with fewer steps,
TensorFlow's start not counted; see README.md). Output: out/figures/dlwp2/mosaic.png, 1235x1235
px.
"""

from configs import base


def get_config():
    """Returns the dlwp2 configuration."""
    config = base.get_config()
    config.model = "xception"
    config.include_top = False
    config.layer = "block3_sepconv1"
    config.image_size = 200
    config.init_low = 0.4
    config.init_high = 0.6
    config.num_steps = 30
    config.step_size = 10.0
    config.gradient_normalization = "l2"
    config.gradient_epsilon = 1e-6
    config.border = 2
    config.deprocess = "dlwp2"
    config.crop = 25
    config.max_filters = 64
    config.selection = "first"
    config.grid_rows = 8
    config.grid_cols = 8
    config.margin = 5
    config.grid_order = "row"
    return config
