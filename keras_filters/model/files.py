"""What a saved model's path must be; checked without TensorFlow, so a bad path fails at once."""

import os
import zipfile

from keras_filters import errors

DEMO_MODEL_NAME = "demo"
SAVED_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def is_model_path(model: str) -> bool:
    """Whether the `model` setting names a file, not the demo or a Keras Applications name."""
    if model == DEMO_MODEL_NAME:
        return False
    return (
        model.lower().endswith(SAVED_MODEL_SUFFIXES)
        or os.path.sep in model
        or os.path.exists(model)
    )


def check_model_file(path: str) -> None:
    """Checks that `path` is a file with a Keras suffix whose container is whole.

    Keras would report a truncated .keras file as "File not found", which misleads.

    Raises:
        UsageError: For a folder, a missing file, another suffix, or a truncated or corrupt file.
    """
    if os.path.isdir(path):
        raise errors.UsageError(
            f"model path {path!r} is a folder; expected a .keras, .h5 or .hdf5 file"
        )
    if not os.path.isfile(path):
        raise errors.UsageError(f"model file {path!r} does not exist")
    if not path.lower().endswith(SAVED_MODEL_SUFFIXES):
        raise errors.UsageError(
            f"model file {path!r} is not a Keras model file; expected one of: "
            + ", ".join(SAVED_MODEL_SUFFIXES)
        )
    if path.lower().endswith(".keras"):
        if not zipfile.is_zipfile(path):
            raise errors.UsageError(
                f"model file {path!r} is not a valid .keras file (not a zip archive): it is "
                "truncated or corrupt"
            )
        return
    import h5py  # Keras' own dependency for .h5 files; loads without TensorFlow.

    if not h5py.is_hdf5(path):
        raise errors.UsageError(
            f"model file {path!r} is not a valid HDF5 file: it is truncated or corrupt"
        )
