"""keras-filters: show what the filters of a convolutional network respond to.

Gradient ascent on the input image raises the mean activation of one filter; the optimized
images are deprocessed and stitched into a mosaic. The public API is imported lazily so that
`keras_filters.cli` can set TensorFlow's logging level before TensorFlow loads.
"""

import importlib
import os

# The gradient step is written for TensorFlow; pick that backend unless the user chose one.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_PUBLIC = {
    "visualize_filters": "keras_filters.api",
    "VisualizationResult": "keras_filters.api",
    "stitch": "keras_filters.mosaic",
    "load_model": "keras_filters.models",
    "list_layers": "keras_filters.layers",
    "UsageError": "keras_filters.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'keras_filters' has no attribute {name!r}")
