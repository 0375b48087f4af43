"""Tiny in-memory models for the unit tests, and a helper to run the real command line."""

import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_filters import startup  # noqa: E402  (imports no Keras)

startup.choose_cpu_kernels()  # Before Keras loads TensorFlow: the kernels of every command.

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# A short run on `small_cnn`: 16 px, 6 steps of 0.5 along the L2-normalized gradient, from noise
# around zero so that every ReLU filter is alive at the start.
SMALL_RUN = dict(
    image_size=16,
    num_steps=6,
    step_size=0.5,
    init_low=-1.0,
    init_high=1.0,
    gradient_normalization="l2",
    progress=False,
)


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
    """A 4-filter conv layer ("conv") behind a layer ("nan_channel") that adds NaN to filter 2.

    "nan_channel" is a Dense layer with an identity kernel and the bias (0, 0, NaN, 0): the
    other filters pass unchanged, and since the NaN is only added, it reaches no gradient.
    """
    inputs = keras.Input((None, None, 3), name="image")
    conv = keras.layers.Conv2D(
        4, 3, name="conv", kernel_initializer=keras.initializers.GlorotUniform(seed=1)
    )(inputs)
    nan_channel = keras.layers.Dense(4, name="nan_channel")
    outputs = nan_channel(conv)
    nan_channel.set_weights([np.eye(4, dtype=np.float32), np.array([0, 0, np.nan, 0], np.float32)])
    return keras.Model(inputs, outputs, name="nan_model")


def lambda_model() -> keras.Model:
    """A conv layer behind a Lambda layer ("doubling", x · 2): a file that holds Python code.

    Saved, the file needs `unsafe_deserialization` to load. Once loaded from a file, the lambda
    sees only builtins (no keras, no numpy), so it uses plain arithmetic.
    """
    inputs = keras.Input((None, None, 3), name="image")
    conv = keras.layers.Conv2D(
        4, 3, name="conv", kernel_initializer=keras.initializers.GlorotUniform(seed=1)
    )(inputs)
    outputs = keras.layers.Lambda(lambda x: x * 2.0, output_shape=(None, None, 4), name="doubling")(
        conv
    )
    return keras.Model(inputs, outputs, name="lambda_model")


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


def channel_step(
    model, layer: str, border: int = 0, gradient_normalization="rms", gradient_epsilon=1e-5
):
    """The run's ascent step for "each image's own channel of `layer`", pixels as parameters.

    Returns:
        `step(images, filter_indices, step_size) -> (images, losses, finite)`, NumPy in and
        backend tensors out; the compiled step is its `compiled` attribute.
    """
    from keras_filters.model import extractor
    from keras_filters.optvis import objectives, param, transforms, update
    from keras_filters.optvis import step as step_lib

    features = extractor.build_feature_extractor(model, layer)
    channels = int(features.input_shape[-1])
    compiled = step_lib.make_step(
        features,
        objectives.channel(layer, None, border),
        param.Pixel(),
        transforms.Compose(),
        update.NormalizedGradient(gradient_normalization, gradient_epsilon),
        example_params=np.zeros((1, 4, 4, channels), np.float32),
    )

    def step(images, filter_indices, step_size):
        images = keras.ops.convert_to_tensor(np.asarray(images, np.float32))
        params, _, losses, finite = compiled(
            images,
            (),
            keras.ops.convert_to_tensor(np.asarray(filter_indices, np.int32)),
            keras.ops.convert_to_tensor(np.float32(step_size)),
            keras.ops.zeros((len(filter_indices), 0)),
        )
        return params, losses, finite

    step.compiled = compiled
    return step


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


def raising(error):
    """A command's main that raises `error`."""

    def main(argv):
        raise error

    return main


def run_main(main, monkeypatch, program: str = "keras-filters"):
    """Runs `main` as the main of command `program`, through `command_line.run_script`, in this
    process; returns the exit code it ended with."""
    from keras_filters import command_line as commands

    # absl registers its flags once a process: here app.run only calls main.
    monkeypatch.setattr(commands.app, "run", lambda main, argv, flags_parser: main(argv))
    with pytest.raises(SystemExit) as ended:
        commands.run_script(main, program, None, argv=[program])
    return ended.value.code


# Filled by test_atlas_browser.py when Chromium or chromedriver is missing outside CI.
BROWSER_NOT_RUN = []


def pytest_terminal_summary(terminalreporter):
    """Says loudly, after the results, that the browser test could not run here."""
    for message in BROWSER_NOT_RUN:
        terminalreporter.section("browser test NOT RUN", sep="!", red=True, bold=True)
        terminalreporter.write_line(message, red=True, bold=True)
