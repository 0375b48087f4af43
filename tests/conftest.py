"""Tiny in-memory models for the unit tests, and a helper to run the real command line."""

import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_cnn(channels: int = 3, name: str = "small_cnn", seed: int = 1) -> keras.Model:
    """Two conv layers and a dense head, any input size, deterministic weights."""
    initializer = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input((None, None, channels), name="image")
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv_a", kernel_initializer=initializer)(
        inputs
    )
    x = keras.layers.Conv2D(
        4, 3, activation="relu", padding="same", name="conv_b", kernel_initializer=initializer
    )(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(3, name="logits", kernel_initializer=initializer)(x)
    return keras.Model(inputs, outputs, name=name)


def nan_channel_model() -> keras.Model:
    """A 4-filter conv layer behind a Lambda layer ("nan_channel") that adds NaN to filter 2.

    The other filters pass unchanged, and since the Lambda only adds a constant, no NaN reaches
    their gradients. Saved, the file needs `unsafe_deserialization` to load (Python code).
    """
    inputs = keras.Input((None, None, 3), name="image")
    conv = keras.layers.Conv2D(
        4, 3, name="conv", kernel_initializer=keras.initializers.GlorotUniform(seed=1)
    )(inputs)
    # Once loaded from a file, the lambda sees only builtins (no keras, no numpy), and Keras
    # cannot restore default arguments: hence the literal.
    outputs = keras.layers.Lambda(lambda x: x + [0.0, 0.0, float("nan"), 0.0], name="nan_channel")(
        conv
    )
    return keras.Model(inputs, outputs, name="nan_model")


@pytest.fixture
def cnn() -> keras.Model:
    return small_cnn()


@pytest.fixture
def nested_cnn() -> keras.Model:
    """small_cnn wrapped, after a 1x1 conv, inside an outer model."""
    inner = small_cnn(name="inner")
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(
        3, 1, name="pre", kernel_initializer=keras.initializers.GlorotUniform(seed=3)
    )(inputs)
    outputs = inner(x)
    return keras.Model(inputs, outputs, name="outer")


def random_images(batch: int, size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return (
        np.random.default_rng(seed).uniform(0, 1, (batch, size, size, channels)).astype("float32")
    )


def command_line(*args) -> list:
    """The command line that runs scripts/visualize.py with `args`."""
    return [sys.executable, os.path.join(REPO_ROOT, "scripts", "visualize.py"), *args]


def command_environment(**extra) -> dict:
    """The environment for the command: this one, the repository on the path, and `extra`."""
    return dict(os.environ, PYTHONPATH=REPO_ROOT, **extra)


def run_command(*args, cwd=REPO_ROOT, timeout=300, environment=None) -> subprocess.CompletedProcess:
    """Runs scripts/visualize.py as a user would, and returns the finished process.

    `environment` adds variables to the command's environment.
    """
    return subprocess.run(
        command_line(*args),
        cwd=cwd,
        env=command_environment(**(environment or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
