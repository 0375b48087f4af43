"""Loads TensorFlow without its C++ start-up lines, so that command lines report in one line."""

import os


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and Keras with file descriptor 2 pointed at /dev/null.

    TensorFlow's C++ start-up lines (oneDNN, CUDA probing) would bury our one-line messages,
    and TF_CPP_MIN_LOG_LEVEL set from Python does not reliably silence them once absl-py is
    loaded.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import keras  # noqa: F401
        import tensorflow as tf

        tf.config.list_physical_devices()  # The CUDA probe logs on first use, not on import.
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
