"""Imports Keras and its backend before a command's flags are parsed, without start-up chatter."""

import contextlib
import os
import platform
import sys

from keras_filters.job import interruption


@contextlib.contextmanager
def quiet_stderr():
    """Points file descriptor 2 at /dev/null, and TF_CPP_MIN_LOG_LEVEL at 3, for a while.

    TensorFlow reads the level once; afterwards it is put back as it was, so the user's
    environment stays as it is for other libraries.
    """
    saved_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
        if saved_level is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = saved_level


# Processors on which TensorFlow's oneDNN kernels run (its x86 builds).
ONEDNN_MACHINES = ("x86_64", "AMD64")


def choose_cpu_kernels() -> None:
    """Asks TensorFlow for its oneDNN kernels on every x86 processor, unless the user chose.

    TensorFlow turns them on by default on Intel processors only; on AMD ones it falls back to
    Eigen's kernels, which add floats in another order (the published figures' recorded
    mosaics then differ by up to 21 grey levels).
    The same kernels everywhere make a figure the same on any x86 machine. A
    TF_ENABLE_ONEDNN_OPTS already set is left as it is; TensorFlow reads it once, when it
    loads, so this must run before.
    """
    if platform.machine() in ONEDNN_MACHINES:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def import_backend_quietly() -> None:
    """Imports Keras and its backend with file descriptor 2 pointed at /dev/null.

    TensorFlow's C++ start-up lines (oneDNN, CUDA probing, "failed call to cuInit") would bury
    our one-line messages and fill a notebook's output, and TF_CPP_MIN_LOG_LEVEL set from Python
    does not reliably silence them once absl-py is loaded. TF_CPP_MIN_LOG_LEVEL is set only
    while the backend loads (TensorFlow reads it once) and then put back as it was, so the
    user's environment stays as it is for other libraries. Does nothing once Keras is loaded.
    The backend is TensorFlow unless KERAS_BACKEND names another (see `backends`).
    """
    if "keras" in sys.modules:
        return
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    choose_cpu_kernels()
    with quiet_stderr():
        from keras_filters import backends

        backends.current().probe_devices()  # The CUDA probe logs on first use, not import.


def import_backend_for_command(program: str) -> None:
    """`import_backend_quietly` for a command: a Ctrl-C or SIGTERM while the backend loads
    (seconds, before the command has done anything) ends it in one line on stderr with exit
    code 130 or 143, not an import traceback or no word at all. `program` names the command in
    that line."""
    try:
        with interruption.SigtermStops() as stop:
            import_backend_quietly()
        if stop.requested:  # A `Terminated` that the import lost: nothing was done yet.
            raise interruption.Terminated
    except KeyboardInterrupt as stopped:  # Ctrl-C, or SIGTERM (`Terminated`).
        words, exit_code = interruption.describe(stopped)
        print(f"{program}: {words} while Keras was loading; nothing was done", file=sys.stderr)
        sys.exit(exit_code)
