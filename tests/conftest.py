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


def run_command(*args, cwd=REPO_ROOT, timeout=300) -> subprocess.CompletedProcess:
    """Runs scripts/visualize.py as a user would, and returns the finished process."""
    environment = dict(os.environ, PYTHONPATH=REPO_ROOT)
    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "visualize.py"), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
