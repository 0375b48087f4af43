"""Imports Keras and its backend before a command's flags are parsed, without start-up chatter."""

import os


def import_backend_quietly() -> None:
    """Imports Keras and its backend with file descriptor 2 pointed at /dev/null.

    TensorFlow's C++ start-up lines (oneDNN, CUDA probing) would bury our one-line messages,
    and TF_CPP_MIN_LOG_LEVEL set from Python does not reliably silence them once absl-py is
    loaded. The backend is TensorFlow unless KERAS_BACKEND names another (see `backends`).
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        from keras_filters import backends

        backends.current().probe_devices()  # The CUDA probe logs on first use, not import.
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
