"""A whole-network atlas (issue 12): every filter of a model as a browsable static site.

build.py runs every layer (through job.run, so resumable and shardable) and gathers the site's
data; site.py writes the pages; examples.py finds dataset examples, cut to the receptive field
that receptive_field.py computes. Each filter's quality numbers (robustness, high-frequency
fraction) are `keras_filters.quality`'s, scored on the images the layer's run kept.
"""
