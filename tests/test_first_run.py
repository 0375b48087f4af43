"""A first run on one's own model just works, says what it did, and hides nothing."""

import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT, run_command
from PIL import Image
from stand_in_models import constant_filters_model

import keras_filters
from keras_filters import settings as settings_lib
from keras_filters.image import mosaic
from keras_filters.job import progress
from keras_filters.job import run as job


def train_briefly(model: keras.Model, low: float, high: float, seed: int) -> keras.Model:
    """Two epochs on stripes against blobs, so that the weights are a trained model's."""
    rng = np.random.default_rng(seed)
    height, width, channels = model.inputs[0].shape[1:]
    rows = np.arange(height)[:, None, None]
    images, labels = [], []
    for number in range(128):
        phase = rng.uniform(0, 6.28)
        stripes = np.sin(rows / rng.uniform(1.5, 4.0) + phase) > 0
        blob = rng.uniform(0, 1, (height, width, 1)) > 0.7
        label = number % 2
        picture = np.broadcast_to(stripes if label else blob, (height, width, channels))
        images.append(low + (high - low) * picture.astype(np.float32))
        labels.append(label)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.stack(images), np.array(labels), epochs=2, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def own_models(tmp_path_factory):
    """A 32×32 RGB classifier (raw 0–255, .h5) and a 64×64 greyscale one ([−1, 1], .keras)."""
    folder = tmp_path_factory.mktemp("own_models")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 5, activation="relu", name="conv2d_1")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv2d_3")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    rgb = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x), name="sequential")
    train_briefly(rgb, 0.0, 255.0, seed=1).save(folder / "rgb32.h5")
    inputs = keras.Input((64, 64, 1))
    x = keras.layers.SeparableConv2D(8, 3, padding="same", activation="relu", name="sep1")(inputs)
    y = keras.layers.SeparableConv2D(8, 3, padding="same", activation="relu", name="sep2")(x)
    x = keras.layers.Add(name="residual")([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    grey = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x), name="grey")
    train_briefly(grey, -1.0, 1.0, seed=2).save(folder / "grey64.keras")
    return {"rgb": str(folder / "rgb32.h5"), "grey": str(folder / "grey64.keras")}


# The quality recipe's 256 steps are the README's run; four show the same first-run behaviour.
FEW_STEPS = "--config.num_steps=4"


@pytest.mark.parametrize(
    "which, layer, size, channels, given_range",
    [
        ("rgb", "conv2d_3", 32, 3, ()),
        ("grey", "residual", 64, 1, ("--config.input_range=(-1, 1)",)),
    ],
)
@pytest.mark.end_to_end
def test_own_model_runs_at_its_own_input_size(
    own_models, which, layer, size, channels, given_range, tmp_path
):
    result = keras_filters.visualize_filters(own_models[which], layer, range(8), progress=False)
    assert result.inputs.shape == (8, size, size, channels)
    # The RGB model's leading Rescaling layer says its input range; the grey one's is given.
    finished = run_command(
        "--config=quickstart",
        f"--config.model={own_models[which]}",
        f"--config.layer={layer}",
        *given_range,
        FEW_STEPS,
        f"--outdir={tmp_path}",
    )
    assert finished.returncode == 0, finished.stderr
    # The quickstart recipe asks for 64 px: a 32 px model says that it ran at its own size.
    noted = f"image_size={size}: the input size that model" in finished.stdout
    assert noted == (size != 64)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["settings"]["image_size"] == size and record["image_sizes"] == [size]
    rows, cols = record["mosaic"]["rows"], record["mosaic"]["cols"]
    pixels = np.asarray(Image.open(tmp_path / "mosaic.png"))
    assert pixels.shape[:2] == (rows * size + (rows - 1) * 5, cols * size + (cols - 1) * 5)


def test_a_size_set_explicitly_that_does_not_fit_is_still_an_error(own_models):
    with pytest.raises(ValueError, match=r"image_size=48 .*fixed at 32x32"):
        keras_filters.visualize_filters(own_models["rgb"], "conv2d_3", [0], image_size=48)


def test_pass_through_layer_is_refused_naming_the_layer_it_carries(own_models, tmp_path):
    finished = run_command(
        "--config=quickstart",
        f"--config.model={own_models['rgb']}",
        "--config.layer=flatten",
        f"--outdir={tmp_path / 'out'}",
    )
    assert finished.returncode == 2
    [line] = finished.stderr.strip().splitlines()
    assert "'flatten' (Flatten) only passes on or rearranges the output of 'conv2d_3'" in line
    assert not (tmp_path / "out").exists()
    assert "flatten" not in [info.name for info in keras_filters.list_layers(own_models["rgb"])]


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_our_flags_and_every_setting_with_its_default(flag):
    finished = run_command(flag)
    assert finished.returncode == 0, finished.stderr
    text = finished.stdout
    assert text.index("--outdir") < text.index("--config.model")
    for name, field in settings_lib.fields().items():
        assert f"--config.{name}={settings_lib.show(field.default)}" in text, name
    assert "--config.num_steps=20\n      Ascent steps per scale." in text
    # A setting that acts only with another's value says so.
    assert (
        "--config.fourier_gain=0.25\n      Overall factor of the spectrum: how far one step moves "
        "the picture. (only with parameterization='fourier')\n"
    ) in text
    for group in settings_lib.GROUPS:
        assert f"  {group}:" in text


@pytest.mark.end_to_end
def test_recipe_by_bare_name_from_any_folder(tmp_path):
    finished = run_command(
        "--config=quickstart",
        "--config.max_filters=2",
        FEW_STEPS,
        f"--outdir={tmp_path}",
        cwd=tmp_path,
    )
    assert finished.returncode == 0, finished.stderr
    unknown = run_command("--config=quickstrat", f"--outdir={tmp_path / 'x'}", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "no recipe named 'quickstrat'; the recipes are: quickstart" in unknown.stderr


def test_list_layers_of_the_default_vgg16_needs_no_weights():
    # The proxy refuses every connection: a download would fail.
    offline = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    finished = run_command("--list_layers", environment=offline)
    assert finished.returncode == 0, finished.stderr
    [row] = [line for line in finished.stdout.splitlines() if line.startswith("block5_conv1 ")]
    assert row.split()[-2:] == ["512", "filters"]


def test_list_layers_takes_any_model_spec():
    listed = {info.name: info for info in keras_filters.list_layers("demo")}
    assert listed["conv3"].num_filters == 64 and listed["conv3"].unit_word == "filters"
    assert listed["logits"].unit_word == "units"


@pytest.mark.end_to_end
def test_quickstart_says_how_many_filters_are_alive_and_dead(tmp_path):
    finished = run_command("--config=quickstart", FEW_STEPS, f"--outdir={tmp_path}")
    assert finished.returncode == 0, finished.stderr
    record = json.loads((tmp_path / "run.json").read_text())
    dead = sum(entry["dead"] for entry in record["filters"])
    expected = f"64 filters of conv3: {64 - dead} alive, {dead} dead, 0 failed"
    assert expected in finished.stdout.splitlines()
    assert record["summary"] == expected


def test_dead_filter_in_a_first_mosaic_is_marked(tmp_path):
    path = str(tmp_path / "constant.keras")
    constant_filters_model(np.array([1.0, -1.0, 2.0], np.float32)).save(path)
    settings = dict(
        model=path,
        layer="conv",
        image_size=16,
        num_steps=2,
        selection="first",
        progress=False,
        init_low=0.0,
        init_high=1.0,
        margin=2,
    )
    record = job.run(str(tmp_path / "out"), settings)
    assert [entry["dead"] for entry in record["filters"]] == [False, True, False]
    assert (record["mosaic"]["rows"], record["mosaic"]["cols"]) == (2, 2)
    pixels = np.asarray(Image.open(tmp_path / "out" / "mosaic.png"))
    dead = pixels[:16, 18:34]  # the second tile: filter 1
    np.testing.assert_array_equal(dead, mosaic.dead_tile(16, 16, 3))
    assert (dead[0, 0] == mosaic.DEAD_TILE_CROSS).all() and (dead[0, 15] == 64).all()
    assert (dead[0, 7] == mosaic.DEAD_TILE_GREY).all() and (dead[7, 7] == 64).all()
    assert not (pixels[:16, :16] == mosaic.DEAD_TILE_GREY).all()  # a live tile is its picture
    assert (pixels[18:, 18:] == 0).all()  # the empty fourth cell


def test_import_and_one_step_write_nothing_to_stderr_but_the_progress():
    script = (
        "import keras_filters\n"
        "keras_filters.visualize_filters('demo', 'conv3', [0, 1], image_size=24, num_steps=1)\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    finished = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert lines and all(line.startswith("filters ") for line in lines), lines


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_into_a_file_writes_a_plain_line_at_least_every_15_seconds():
    stream, clock = io.StringIO(), FakeClock()
    bar = progress.ProgressBar(4, 100, stream=stream, clock=clock)
    assert not bar.interactive
    for step in range(1, 101):
        clock.now = step * 1.0
        bar.step(step, [1.0, 2.0])
    lines = stream.getvalue().splitlines()
    # The first step, then every 15 s: 1, 16, 31, …, 91.
    assert [line.split(" | ")[1] for line in lines] == [f"step {s}/100" for s in range(1, 101, 15)]
    bar.chunk_done([1.0, 3.0])
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("filters 2/4 | step 100/100 | mean loss 2 |") and "\r" not in last
