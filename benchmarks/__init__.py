"""The benchmark: keras-filters against the keras.io-style loop (a tool, not installed)."""
