"""Titled panels: the title band, the mosaic below it unchanged, the stacked figure."""

import numpy as np
import pytest
from conftest import run_command, small_cnn
from PIL import Image
from stand_in_models import constant_filters_model

from keras_filters import errors
from keras_filters.image import panels
from keras_filters.job import run as runner


def test_titled_panel_puts_a_white_title_on_black_above_the_unchanged_mosaic():
    pixels = np.random.default_rng(0).integers(0, 256, (30, 80, 3), dtype=np.uint8)
    panel = panels.titled_panel(pixels, "block1_conv1")
    band = panel[: panels.TITLE_HEIGHT]
    assert panel.shape == (panels.TITLE_HEIGHT + 30, 80, 3)
    np.testing.assert_array_equal(panel[panels.TITLE_HEIGHT :], pixels)
    assert np.all(band[..., 0] == band[..., 1]) and np.all(band[..., 1] == band[..., 2])
    written = band[..., 0] > 128
    assert 20 < written.sum() < written.size // 4  # some text, on a mostly black band
    assert not written[:, : panels.TITLE_INDENT - 1].any()  # it starts after the indent


def test_different_titles_draw_different_bands():
    first = panels.title_band("conv1_1", 100, 1)
    second = panels.title_band("conv5_1", 100, 1)
    assert first.shape == (panels.TITLE_HEIGHT, 100, 1)
    assert not np.array_equal(first, second)


def test_stack_panels_left_aligns_pads_black_and_leaves_margins():
    wide = np.full((4, 10, 3), 7, np.uint8)
    narrow = np.full((3, 6, 3), 9, np.uint8)
    stacked = panels.stack_panels([wide, narrow], margin=2)
    assert stacked.shape == (4 + 2 + 3, 10, 3)
    assert np.all(stacked[:4] == 7)
    assert np.all(stacked[4:6] == 0)
    assert np.all(stacked[6:, :6] == 9) and np.all(stacked[6:, 6:] == 0)


def test_panel_titles_default_to_layer_names_and_must_match_in_number():
    assert panels.panel_titles(["a", "b"], ()) == ["a", "b"]
    assert panels.panel_titles(["a", "b"], ("A", "B")) == ["A", "B"]
    with pytest.raises(errors.UsageError, match="panel_titles has 1 titles for 2 panel_layers"):
        panels.panel_titles(["a", "b"], ("A",))


def test_runner_stacks_each_layers_own_mosaic_under_its_title(tmp_path):
    path = str(tmp_path / "cnn.keras")
    small_cnn().save(path)
    common = dict(
        model=path,
        image_size=12,
        num_steps=2,
        init_low=-1.0,
        init_high=1.0,
        selection="first",
        grid_rows=2,
        grid_cols=2,
        margin=3,
        progress=False,
    )
    record = runner.run(
        str(tmp_path / "panels"),
        dict(common, panel_layers=("conv_a", "conv_b"), panel_titles=("first", "second")),
    )
    figure = np.asarray(Image.open(tmp_path / "panels" / "mosaic.png"))
    mosaic_side = 2 * 12 + 3
    title = panels.TITLE_HEIGHT
    assert figure.shape == (2 * (title + mosaic_side) + 3, mosaic_side, 3)
    assert record["layer"] == "conv_a, conv_b"
    assert [panel["title"] for panel in record["panels"]] == ["first", "second"]
    for number, layer in enumerate(["conv_a", "conv_b"]):
        runner.run(str(tmp_path / layer), dict(common, layer=layer))
        alone = np.asarray(Image.open(tmp_path / layer / "mosaic.png"))
        top = number * (title + mosaic_side + 3) + title
        np.testing.assert_array_equal(figure[top : top + mosaic_side], alone)
        band = figure[top - title : top]
        np.testing.assert_array_equal(band, panels.title_band(["first", "second"][number], 27, 3))


def test_a_layer_without_live_filters_keeps_a_black_titled_panel(tmp_path):
    path = str(tmp_path / "dead.keras")
    constant_filters_model(np.array([-1.0, 0.0, -2.0, -0.5], np.float32)).save(path)
    settings = dict(model=path, panel_layers=("conv",), image_size=8, num_steps=1)
    settings.update(selection="top", grid_rows=2, grid_cols=2, margin=3, progress=False)
    record = runner.run(str(tmp_path / "out"), settings)
    figure = np.asarray(Image.open(tmp_path / "out" / "mosaic.png"))
    assert figure.shape == (panels.TITLE_HEIGHT + 19, 19, 3)
    assert np.all(figure[panels.TITLE_HEIGHT :] == 0)
    assert figure[: panels.TITLE_HEIGHT].max() > 128  # the title is there
    assert record["panels"][0]["mosaic"]["filters"] == []


def test_command_line_reports_the_panels(tmp_path):
    finished = run_command(
        "--config=configs/quickstart_faithful.py",
        "--config.panel_layers=('conv1', 'conv2')",
        "--config.max_filters=8",
        "--config.grid_rows=2",
        "--config.grid_cols=4",
        f"--outdir={tmp_path}",
    )
    assert finished.returncode == 0, finished.stderr
    width, height = 4 * 64 + 15, 2 * (panels.TITLE_HEIGHT + 2 * 64 + 5) + 5
    assert f"({width}x{height} px, 2 panels of conv1, conv2)" in finished.stdout
    assert Image.open(tmp_path / "mosaic.png").size == (width, height)
