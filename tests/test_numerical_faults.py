"""A filter whose loss turns NaN is marked failed with its step and left black; the rest go on."""

import json

import keras
import numpy as np
import pytest
from conftest import channel_step, nan_channel_model, random_images, run_command
from PIL import Image

from keras_filters.image import deprocess
from keras_filters.image.mosaic import dead_tile
from keras_filters.job import run as job
from keras_filters.optvis import param

SETTINGS = dict(
    weights="none",
    image_size=24,
    num_steps=5,
    step_size=0.5,
    gradient_normalization="l2",
    init_low=0.4,
    init_high=0.6,
    filter_indices=(0, 1, 2, 3),
    selection="first",
    grid_rows=2,
    grid_cols=2,
    margin=1,
    batch_size=4,
    save_tiles=True,
    progress=False,
)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """The NaN model, and the same convolution without the NaN (its layer is called "conv")."""
    folder = tmp_path_factory.mktemp("models")
    model = nan_channel_model()
    model.save(folder / "nan.keras")
    keras.Model(model.inputs, model.get_layer("conv").output).save(folder / "clean.keras")
    return str(folder / "nan.keras"), str(folder / "clean.keras")


def test_nan_filter_fails_alone_and_others_match_a_clean_run(model_files, tmp_path):
    nan_file, clean_file = model_files
    job.run(str(tmp_path / "nan"), dict(SETTINGS, model=nan_file, layer="nan_channel"))
    job.run(str(tmp_path / "clean"), dict(SETTINGS, model=clean_file, layer="conv"))
    record = json.loads((tmp_path / "nan" / "run.json").read_text())
    by_index = {entry["index"]: entry for entry in record["filters"]}
    assert by_index[2]["failed"] and by_index[2]["failed_step"] == 0
    assert by_index[2]["loss"] is None  # NaN is written as null
    for index in (0, 1, 3):
        assert not by_index[index]["failed"] and by_index[index]["failed_step"] is None
        assert np.isfinite(by_index[index]["loss"])
    assert record["complete"] is True
    clean = json.loads((tmp_path / "clean" / "run.json").read_text())
    for index in (0, 1, 3):
        assert by_index[index]["loss"] == clean["filters"][index]["loss"]

    def tile(run, index):
        return np.asarray(Image.open(tmp_path / run / "tiles" / f"filter_{index:04d}.png"))

    assert not tile("nan", 2).any()  # the failed filter's tile is black
    for index in (0, 1, 3):
        assert tile("nan", index).std() > 0
        np.testing.assert_array_equal(tile("nan", index), tile("clean", index))
    mosaic = np.asarray(Image.open(tmp_path / "nan" / "mosaic.png"))
    assert not mosaic[25:, :24].any()  # filter 2: second row, first column
    # Filter 3's tile: its picture, or the dead-filter mark where its loss ended ≤ 0.
    shown = dead_tile(24, 24, 3) if by_index[3]["dead"] else tile("nan", 3)
    np.testing.assert_array_equal(mosaic[25:, 25:], shown)


def test_run_where_every_filter_failed_exits_non_zero(model_files, tmp_path):
    finished = run_command(
        "--config=configs/quickstart_faithful.py",
        f"--config.model={model_files[0]}",
        "--config.layer=nan_channel",
        "--config.filter_indices=(2,)",
        "--config.num_steps=3",
        "--config.grid_rows=1",
        "--config.grid_cols=1",
        "--config.progress=false",
        f"--outdir={tmp_path}",
    )
    assert finished.returncode == 1, finished.stderr
    assert "Traceback" not in finished.stderr
    (line,) = finished.stderr.splitlines()
    assert "every filter failed" in line and "[2]" in line
    record = json.loads((tmp_path / "run.json").read_text())
    assert [(entry["failed"], entry["failed_step"]) for entry in record["filters"]] == [(True, 0)]


def test_step_that_overflows_float32_fails_and_keeps_the_image():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(inputs))
    step = channel_step(model, "conv", gradient_normalization="rms")
    images = random_images(2, 8)
    new_images, losses, finite = step(images, [0, 1], 3e38)
    assert np.isfinite(np.asarray(losses)).all()
    assert not np.asarray(finite).any()
    np.testing.assert_array_equal(np.asarray(new_images), np.asarray(images))


def test_constant_image_with_zero_epsilon_stays_grey_without_nan():
    image = np.full((6, 6, 3), 0.5, np.float32)
    with np.errstate(all="raise"):
        tile = deprocess.deprocess_image(image, style="standard", scale=0.1, epsilon=0.0)
        upscaled = param.Pixel(upscale_scale=0.1, upscale_epsilon=0.0).resize(image[None], 8)
    assert (tile == 127).all()
    np.testing.assert_allclose(upscaled, 0.5)
