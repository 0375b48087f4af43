"""Run recipes for keras-filters: `base.py` declares every setting; the others override it."""
