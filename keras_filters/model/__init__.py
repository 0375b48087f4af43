"""The model: loading it, the sub-model that maps its input to the layers' outputs, variants."""
