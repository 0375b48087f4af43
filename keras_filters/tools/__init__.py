"""Tools on top of the library: the reproducer of the published figures."""
