"""keras-filters: show what the filters of a convolutional network respond to.

Gradient ascent on the input image raises an objective (by default the mean activation of one
filter); the optimized images are deprocessed and stitched into a mosaic. The public API is
imported lazily so that the command can check its settings before TensorFlow loads.
"""

import importlib
import os

# TensorFlow unless the user chose another Keras backend (JAX works too).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.2.0"

_PUBLIC = {
    "visualize_filters": "keras_filters.api",
    "optimize": "keras_filters.api",
    "VisualizationResult": "keras_filters.api",
    "Settings": "keras_filters.settings",
    "stitch": "keras_filters.image.mosaic",
    "load_model": "keras_filters.model.loading",
    "list_layers": "keras_filters.model.extractor",
    "UsageError": "keras_filters.errors",
    "UnusedSettingWarning": "keras_filters.errors",
}
_SUBMODULES = {"objectives": "keras_filters.optvis.objectives"}

__all__ = sorted([*_PUBLIC, *_SUBMODULES])


def __getattr__(name):
    if name in _PUBLIC or name in _SUBMODULES:
        # TensorFlow's C++ start-up lines would fill a notebook's output: load it quietly.
        from keras_filters import startup

        startup.import_backend_quietly()
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'keras_filters' has no attribute {name!r}")
