"""Benchmark: the issue's setting, keras-filters against the keras.io-style loop.

VGG16 with random weights (no download), block5_conv1, 128 px, 20 steps of 1.0 along the
RMS-normalized gradient, the first 64 filters; the blog's settings otherwise (configs/base.py).

    python scripts/benchmark.py --config=configs/benchmark.py --outdir=out/benchmark

Runtime on 2 CPU cores (AMD EPYC, AVX-512): about 3 minutes, of which the reference loop takes
about two. Output: out/benchmark/benchmark.json and out/benchmark/benchmark.md (the table, also
printed). All 512 filters: --config.max_filters=0 --noreference.
"""

from configs import base


def get_config():
    """Returns the benchmark configuration."""
    config = base.get_config()
    config.weights = "none"
    config.max_filters = 64
    config.progress = False
    return config
