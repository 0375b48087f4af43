"""Every setting of keras-filters, declared once with its default and what it means.

The defaults reproduce the 2016 Keras blog post's block5_conv1 figure. Other configs start
from `get_config()` and override what differs. Any key can be overridden on the command line:

    keras-filters --config=configs/base.py --config.layer=block3_conv1 --outdir=/tmp/out
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """Returns the base configuration."""
    config = ml_collections.ConfigDict()

    # --- The model ---
    # "demo" (the CNN shipped with the package), a Keras Applications name in any case
    # ("vgg16", "ResNet50V2", "convnext_tiny"), or a .keras / .h5 / .hdf5 file.
    config.model = "vgg16"
    # Keras Applications weights: "imagenet" (downloaded once by Keras), "none", or a file.
    config.weights = "imagenet"
    # Keras Applications: keep the classifier on top (fixes the input size, e.g. 224 px).
    config.include_top = False
    # Let a saved model file run code of its own (Lambda layers). Only for files you trust.
    config.unsafe_deserialization = False
    # The layer to visualize; "outer/inner" for a layer of a nested model.
    config.layer = "block5_conv1"

    # --- Which filters ---
    # How many filters are tried, counting from index 0; 0 tries every filter of the layer.
    config.max_filters = 200
    # Explicit filter indices, e.g. --config.filter_indices="(0, 5, 9)"; overrides max_filters.
    config.filter_indices = ()

    # --- The objective and the ascent ---
    # Pixels of the activation map's border left out of the mean (keras.io leaves out 2).
    config.border = 0
    # Side of the square input image in pixels (the final size when there are scales).
    config.image_size = 128
    # Ascent steps per scale.
    config.num_steps = 20
    # How far each normalized step moves the image.
    config.step_size = 1.0
    # "rms" (Keras blog), "l2" (keras.io, DLwP 2nd ed.), "pixel_l2" (DLwP 3rd ed.) or "none".
    config.gradient_normalization = "rms"
    # Added to each image's gradient norm, so that a dead filter takes a zero step, never NaN.
    config.gradient_epsilon = 1e-5
    # Multi-scale schedule (2019 Keras example): number of upscalings and their factor. The
    # sizes visited are int(image_size / factor**k) for k = num_upscalings … 0.
    config.num_upscalings = 0
    config.upscale_factor = 1.2

    # --- The initial noise ---
    # "uniform": U[init_low, init_high); "normal": mean at the midpoint, std half the range.
    # U[118, 138) is the blog's grey in raw 0-255 space.
    config.init_distribution = "uniform"
    config.init_low = 118.0
    config.init_high = 138.0
    # Seeds the noise; each filter's noise comes from (seed, filter index).
    config.seed = 0

    # --- Deprocess ---
    # "standard" (−mean, /(std+eps), ×scale, +0.5, clip, ×255) or "dlwp2" (/std, ×64, +128).
    config.deprocess = "standard"
    # Contrast factor of the "standard" deprocess (0.1 blog, 0.15 keras.io, 0.25 Keras 2019).
    config.deprocess_scale = 0.1
    # Added to the std in the "standard" deprocess.
    config.deprocess_epsilon = 1e-5
    # Pixels cropped from each side of every tile after deprocessing (keras.io crops 25).
    config.crop = 0

    # --- The mosaic ---
    # "first": filters in index order; "top": best final loss first, dead filters left out.
    config.selection = "top"
    # A filter is dead when its final loss is ≤ this threshold.
    config.dead_threshold = 0.0
    # Also call a filter dead when its loss is ≤ the threshold at any step (Keras 2019 example).
    config.dead_at_any_step = False
    # Rows and columns of the grid; 0 and 0: the largest square that the shown filters fill
    # (Keras 2019 example: floor(sqrt(N))² of the N filters that survive).
    config.grid_rows = 8
    config.grid_cols = 8
    # Black pixels between tiles.
    config.margin = 5
    # "row" (row-major) or "column" (column-major, DLwP 1st ed.: filter i + rows·j at row i, col j).
    config.grid_order = "row"

    # --- Execution ---
    # Filters optimized together in one batch; 0 picks a size from the free memory.
    config.batch_size = 0
    # Compile the step with XLA (1.5x slower on a oneDNN CPU; see README, Performance).
    config.jit_compile = False
    # Compute the model in bfloat16 ("mixed_bfloat16"); image and objective stay float32.
    # About 1.85x faster on CPUs with AVX512_BF16; final losses move by about 1%.
    config.mixed_precision = False
    # Also write each filter's tile as its own PNG under tiles/.
    config.save_tiles = False
    # Show the progress line on stderr.
    config.progress = True

    # --- Published figures (configs/blog_*.py, keras_v3_upscale.py, kerasio.py, dlwp*.py) ---
    # Visualize the last layer before its activation: a copy of the model whose final softmax
    # (or other activation) is linear, so that a class unit's objective is its logit, not its
    # probability (blog_classes).
    config.linear_output = False
    # Several layers in one image: each layer's mosaic becomes a panel with its title above
    # it, and the panels are stacked top to bottom, `margin` apart (the blog's overview
    # figure). Empty: only `layer`. When set, it takes the place of `layer`.
    config.panel_layers = ()
    # One title per panel layer; empty: the layer names.
    config.panel_titles = ()

    return config
