"""The base recipe: every setting at its default, as `keras_filters.settings` declares it.

The defaults reproduce the 2016 Keras blog post's block5_conv1 figure (VGG16, 128 px, 20 steps
of 1.0 along the RMS-normalized gradient, the best 64 of filters 0–199). The settings, their
types, defaults and meanings are declared once, in `keras_filters/settings.py`; `keras-filters
--help` lists them. Other recipes start from `get_config()` and override what differs; the
config is locked, so a recipe that sets an undeclared key fails at once. Any key can be
overridden on the command line:

    keras-filters --config=configs/base.py --config.layer=block3_conv1 --outdir=/tmp/out
"""

from keras_filters import settings


def get_config():
    """Returns the base configuration: every setting with its default."""
    return settings.default_config()
