"""Each figure config reproduces its source: its settings, its sizes, what sets it apart.

The real models (VGG16, ResNet50V2, Xception) take minutes to run at full size on a CPU; those
runs are the slow tests at the end. The fast tests run the figure configs unchanged on small
stand-in models with the same layer names, and check each source's distinguishing step,
objective, deprocess, selection and grid against hand-computed values.
"""

import json
import os

import keras
import numpy as np
import pytest
from conftest import run_command
from PIL import Image
from stand_in_models import constant_filters_model, figure_stand_in, linear_model

from keras_filters import api, errors, pipeline
from keras_filters import settings as settings_lib
from keras_filters.image import mosaic
from keras_filters.job import run as job
from keras_filters.model import extractor
from keras_filters.settings import Settings
from keras_filters.tools import reproduce

FIGURES = {figure.name: figure for figure in reproduce.FIGURES}
DLWP1_FIGURES = [f"dlwp1_block{block}_conv1" for block in range(1, 5)]

# (height, width) of each figure's mosaic: the published sizes, or what the sources' size rule
# rows·tile + (rows − 1)·5 gives for their settings.
PUBLISHED_SIZES = {
    "blog_block5": (1059, 1059),
    "blog_header": (394, 1059),
    "blog_overview": (5 * (24 + 261) + 4 * 5, 793),
    "blog_single": (256, 256),
    "blog_classes": (224, 453),
    "kerasio": (1075, 1075),
    **{name: (547, 547) for name in DLWP1_FIGURES},
    "dlwp1_single": (150, 150),
    "dlwp2": (1235, 1235),
    "dlwp2_single": (150, 150),
    "dlwp3": (1235, 1235),
}
# keras_v3_upscale shows floor(sqrt(N))² tiles of 412 px; the stand-in run tries 20 filters.
KERAS_V3_STAND_IN_FILTERS = 20
PUBLISHED_SIZES["keras_v3_upscale"] = (4 * 412 + 3 * 5, 4 * 412 + 3 * 5)

# The settings of each published source (the source is named in each config's docstring),
# written out here independently of the configs, figure by figure.
BLOG = dict(
    model="vgg16",
    include_top=False,
    image_size=128,
    init_low=118.0,
    init_high=138.0,
    num_steps=20,
    step_size=1.0,
    gradient_normalization="rms",
    gradient_epsilon=1e-5,
    border=0,
    deprocess="standard",
    deprocess_scale=0.1,
    deprocess_epsilon=1e-5,
    crop=0,
    margin=5,
    grid_order="row",
    num_upscalings=0,
)
DLWP2 = dict(
    model="xception",
    include_top=False,
    layer="block3_sepconv1",
    image_size=200,
    init_low=0.4,
    init_high=0.6,
    num_steps=30,
    step_size=10.0,
    gradient_normalization="l2",
    gradient_epsilon=1e-6,
    border=2,
    deprocess="dlwp2",
    crop=25,
    max_filters=64,
    selection="first",
    grid_rows=8,
    grid_cols=8,
    margin=5,
    grid_order="row",
)
DLWP1 = dict(
    BLOG,
    image_size=64,
    init_low=128.0,
    init_high=148.0,
    num_steps=40,
    max_filters=64,
    selection="first",
    grid_rows=8,
    grid_cols=8,
    grid_order="column",
)
REFERENCE_SETTINGS = {
    "blog_block5": dict(
        BLOG,
        layer="block5_conv1",
        max_filters=200,
        selection="top",
        dead_threshold=0.0,
        dead_at_any_step=False,
        grid_rows=8,
        grid_cols=8,
    ),
    "blog_header": dict(BLOG, layer="block5_conv2", selection="top", grid_rows=3, grid_cols=8),
    "blog_overview": dict(
        BLOG,
        panel_layers=tuple(f"block{block}_conv1" for block in range(1, 6)),
        selection="top",
        grid_rows=2,
        grid_cols=6,
    ),
    "blog_single": dict(
        BLOG, layer="block5_conv1", image_size=256, filter_indices=(0,), grid_rows=1, grid_cols=1
    ),
    "blog_classes": dict(
        BLOG,
        include_top=True,
        linear_output=True,
        layer="predictions",
        image_size=224,
        filter_indices=(65, 18),
        selection="first",
    ),
    "keras_v3_upscale": dict(
        BLOG,
        layer="block5_conv1",
        image_size=412,
        num_upscalings=9,
        upscale_factor=1.2,
        num_steps=15,
        gradient_epsilon=1e-7,
        deprocess_scale=0.25,
        deprocess_epsilon=1e-7,
        max_filters=0,
        selection="top",
        dead_threshold=1e-7,
        dead_at_any_step=True,
        grid_rows=0,
        grid_cols=0,
    ),
    "kerasio": dict(
        model="resnet50v2",
        include_top=False,
        layer="conv3_block4_out",
        image_size=180,
        init_low=-0.125,
        init_high=0.125,
        num_steps=30,
        step_size=10.0,
        gradient_normalization="l2",
        gradient_epsilon=1e-6,
        border=2,
        deprocess="standard",
        deprocess_scale=0.15,
        deprocess_epsilon=1e-5,
        crop=25,
        max_filters=64,
        selection="first",
        grid_rows=8,
        grid_cols=8,
        margin=5,
        grid_order="row",
    ),
    **{name: dict(DLWP1, layer=name.removeprefix("dlwp1_")) for name in DLWP1_FIGURES},
    "dlwp1_single": dict(
        DLWP1, layer="block3_conv1", image_size=150, filter_indices=(0,), grid_rows=1, grid_cols=1
    ),
    "dlwp2": DLWP2,
    "dlwp2_single": dict(DLWP2, filter_indices=(2,), grid_rows=1, grid_cols=1),
    "dlwp3": dict(DLWP2, gradient_normalization="pixel_l2", gradient_epsilon=1e-7),
}


def figure_settings(name: str, **overrides) -> dict:
    """A figure's resolved settings as a dict, progress off, with `overrides`."""
    return reproduce.figure_settings(FIGURES[name], {"progress": False, **overrides})[1].to_dict()


def figure_plan(model, settings: dict, filter_indices) -> pipeline.Plan:
    """The run's plan for `filter_indices` of `settings["layer"]` of `model`."""
    settings = dict(settings, filter_indices=tuple(filter_indices))
    return pipeline.plan_layer(model, Settings.create(settings))


def take_step(plan: pipeline.Plan, images: np.ndarray):
    """One step of the run's compiled step on `images`: (new images, losses, finite)."""
    renderer = plan.renderer
    params = keras.ops.convert_to_tensor(np.asarray(images, np.float32))
    new_params, _, losses, finite = renderer.step(
        params,
        renderer.update.init_state(params),
        keras.ops.convert_to_tensor(np.asarray(plan.keys, np.int32)),
        keras.ops.convert_to_tensor(np.float32(renderer.step_size)),
        keras.ops.zeros((len(plan.keys), renderer.transforms.num_draws)),
    )
    return np.asarray(new_params), np.asarray(losses), np.asarray(finite)


def test_there_is_a_config_per_published_figure():
    assert set(FIGURES) == set(REFERENCE_SETTINGS) == set(PUBLISHED_SIZES)


@pytest.mark.parametrize("name", sorted(REFERENCE_SETTINGS))
def test_config_has_the_references_settings(name):
    settings = figure_settings(name)
    expected = REFERENCE_SETTINGS[name]
    assert {key: settings[key] for key in expected} == expected


@pytest.mark.parametrize("figure", reproduce.FIGURES, ids=lambda figure: figure.name)
def test_config_docstring_is_a_runnable_recipe(figure):
    path = os.path.join(reproduce.CONFIGS_FOLDER, figure.config.partition(":")[0])
    with open(path, encoding="utf-8") as file:
        text = file.read()
    assert f"keras-filters --config=configs/{figure.config} " in text
    assert "Source:" in text and "Runtime:" in text and "Output:" in text
    assert "RUNTIME_" not in text  # every runtime was measured and written in


@pytest.fixture(scope="module")
def stand_in_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("models") / "stand_in.keras")
    figure_stand_in().save(path)
    return path


@pytest.mark.parametrize("name", sorted(PUBLISHED_SIZES))
def test_figure_runs_at_its_published_size_on_a_stand_in_model(name, stand_in_path, tmp_path):
    overrides = dict(model=stand_in_path, num_steps=1, batch_size=16)
    if name == "keras_v3_upscale":
        overrides["max_filters"] = KERAS_V3_STAND_IN_FILTERS
    record = job.run(str(tmp_path), figure_settings(name, **overrides))
    pixels = np.asarray(Image.open(tmp_path / "mosaic.png"))
    assert pixels.shape[:2] == PUBLISHED_SIZES[name]
    assert (record["mosaic"]["height"], record["mosaic"]["width"]) == PUBLISHED_SIZES[name]


# --- Keras blog and Keras example (2016): the best 64 of filters 0–199, dead ones dropped ---


def test_blog_block5_shows_the_best_64_of_filters_0_to_199_without_dead_ones(tmp_path):
    biases = np.random.default_rng(5).uniform(-1.0, 1.0, 210).astype(np.float32)
    biases[205] = 10.0  # the best filter of all, but outside the 200 that the blog tries
    path = str(tmp_path / "constant.keras")
    constant_filters_model(biases).save(path)
    settings = figure_settings("blog_block5", model=path, layer="conv", num_steps=2, image_size=32)
    record = job.run(str(tmp_path / "out"), settings)
    tried = biases[:200]
    assert (tried > 0).sum() >= 64
    best_live = [int(i) for i in np.argsort(-tried, kind="stable") if tried[i] > 0][:64]
    assert record["mosaic"]["filters"] == best_live
    assert [entry["index"] for entry in record["filters"]] == list(range(200))
    assert [entry["dead"] for entry in record["filters"]] == list(tried <= 0)
    assert Image.open(tmp_path / "out" / "mosaic.png").size == (8 * 32 + 35, 8 * 32 + 35)


def api_settings(settings: dict) -> dict:
    """The settings as keyword arguments of `api.visualize_filters`, whose filters are given as
    its `filter_indices`: those that differ from the defaults, as a user would give them (the
    API warns of one given where it has no effect)."""
    defaults = settings_lib.default_settings()
    return {
        key: value
        for key, value in settings.items()
        if key not in ("model", "layer", "filter_indices", "max_filters") and value != defaults[key]
    }


def one_step_change(name: str, model, image: np.ndarray, filter_index: int) -> np.ndarray:
    """How one ascent step with figure `name`'s settings changes `image` for `filter_index`."""
    # The crop acts on tiles after the run; these images are smaller than it.
    settings = figure_settings(name, layer="conv", image_size=image.shape[0], crop=0)
    new_images, _, finite = take_step(figure_plan(model, settings, [filter_index]), image[None])
    assert bool(finite[0])
    return new_images[0] - image


KERNEL = np.array([[0.5, -1.0], [2.0, 0.25], [-1.5, 1.0]], np.float32)  # 3 channels, 2 filters


def known_gradient(size: int, border: int, filter_index: int) -> np.ndarray:
    """The gradient of linear_model(KERNEL)'s filter mean over the map without `border`."""
    counted = size - 2 * border
    gradient = np.zeros((size, size, 3), np.float64)
    gradient[border : size - border, border : size - border] = KERNEL[:, filter_index] / counted**2
    return gradient


@pytest.mark.parametrize("name", ["blog_block5", "dlwp1_block1_conv1", "keras_v3_upscale"])
def test_rms_figures_step_along_g_over_its_rms(name):
    image = np.random.default_rng(0).uniform(118, 138, (6, 6, 3)).astype(np.float32)
    change = one_step_change(name, linear_model(KERNEL), image, filter_index=1)
    gradient = known_gradient(6, border=0, filter_index=1)
    epsilon = figure_settings(name)["gradient_epsilon"]
    expected = 1.0 * gradient / (np.sqrt(np.mean(gradient**2)) + epsilon)
    np.testing.assert_allclose(change, expected, rtol=1e-4, atol=1e-4)
    assert np.sqrt(np.mean(change**2)) == pytest.approx(1.0, rel=1e-3)  # RMS: unit per pixel


# --- Keras example, 2019 rewrite: 10 sizes, dead at any step, the survivors' square ---


def test_keras_v3_upscale_grows_from_79_to_412_px_and_squares_the_survivors(tmp_path):
    live = np.linspace(1.0, 2.0, 17, dtype=np.float32)
    biases = np.concatenate([np.array([0.0, -0.5, 5e-8], np.float32), live])  # 3 at most 1e-7
    path = str(tmp_path / "constant.keras")
    constant_filters_model(biases).save(path)
    settings = figure_settings("keras_v3_upscale", model=path, layer="conv", num_steps=1)
    record = job.run(str(tmp_path / "out"), settings)
    assert record["image_sizes"] == [79, 95, 114, 137, 165, 198, 238, 286, 343, 412]
    assert [entry["dead"] for entry in record["filters"]] == [True] * 3 + [False] * 17
    # 17 survivors: the best 16 by loss in a 4x4 grid of 412 px tiles.
    assert (record["mosaic"]["rows"], record["mosaic"]["cols"]) == (4, 4)
    assert record["mosaic"]["filters"] == list(range(19, 3, -1))
    assert Image.open(tmp_path / "out" / "mosaic.png").size == (4 * 412 + 15, 4 * 412 + 15)
    result = api.visualize_filters(path, "conv", [5], **api_settings(settings))
    assert result.loss_history.shape == (9, 1)  # one step at each of the 9 smaller sizes
    assert result.inputs.shape == (1, 412, 412, 3)


def test_zero_rows_and_columns_ask_for_the_largest_square_of_the_survivors():
    losses = np.array([3.0, 0.0, 5.0, 1.0, 4.0, 2.0])
    selection = mosaic.select_filters(losses, losses > 0, 0, 0, "top", automatic="square")
    assert (selection.rows, selection.cols, selection.warning) == (2, 2, None)
    assert selection.positions == [2, 4, 0, 5]
    with pytest.raises(errors.UsageError, match="grid_rows=0, grid_cols=3"):
        mosaic.select_filters(losses, losses > 0, 0, 3, "top")


def test_keras_v3_upscale_drops_a_filter_whose_loss_touched_1e_7_at_any_step():
    history = np.array([[1.0, 1.0], [5e-8, 2.0], [3.0, 3.0]], np.float32)
    for name, expected in [("keras_v3_upscale", [True, False]), ("blog_block5", [False, False])]:
        settings = figure_settings(name)
        dead = pipeline.dead_images(
            history, settings["dead_threshold"], settings["dead_at_any_step"]
        )
        assert list(dead) == expected, name


# --- keras.io (2020): 2 px activation border left out, L2 steps of 10, crop to 130 px ---


def test_kerasio_loss_is_the_mean_of_the_activation_without_its_2_pixel_border(cnn):
    settings = figure_settings("kerasio", layer="conv_b", image_size=20, crop=0)
    plan = figure_plan(cnn, settings, [0, 3])
    images = plan.renderer.initial_params([0, 3])
    assert images.min() >= -0.125 and images.max() < 0.125
    _, losses, _ = take_step(plan, images)
    activations = np.asarray(extractor.build_feature_extractor(cnn, "conv_b")(images)["conv_b"])
    expected = [activations[0, 2:-2, 2:-2, 0].mean(), activations[1, 2:-2, 2:-2, 3].mean()]
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    assert not np.isclose(losses[1], activations[1, ..., 3].mean(), rtol=1e-3)


@pytest.mark.parametrize("name", ["kerasio", "dlwp2"])
def test_l2_figures_step_10_along_tf_math_l2_normalize(name):
    image = np.random.default_rng(1).uniform(-0.1, 0.1, (12, 12, 3)).astype(np.float32)
    change = one_step_change(name, linear_model(KERNEL), image, filter_index=0)
    gradient = known_gradient(12, border=2, filter_index=0)
    # tf.math.l2_normalize: g / sqrt(max(sum(g²), 1e-12)).
    expected = 10.0 * gradient / np.sqrt(max(np.sum(gradient**2), 1e-12))
    np.testing.assert_allclose(change, expected, rtol=1e-4, atol=1e-6)
    assert np.sqrt(np.sum(change**2)) == pytest.approx(10.0, rel=1e-4)  # L2: 10 per image
    assert np.all(change[:2] == 0) and np.all(change[:, -2:] == 0)  # the border does not count


def test_kerasio_tile_is_the_standard_deprocess_at_0_15_cropped_to_130_px():
    settings = figure_settings("kerasio", num_steps=1)
    result = api.visualize_filters(linear_model(KERNEL), "conv", [1], **api_settings(settings))
    image = result.inputs[0].astype(np.float64)
    expected = np.clip((image - image.mean()) / (image.std() + 1e-5) * 0.15 + 0.5, 0, 1) * 255
    np.testing.assert_array_equal(result.images[0], expected.astype(np.uint8)[25:-25, 25:-25])
    assert result.images.shape == (1, 130, 130, 3)


# --- Deep Learning with Python, 1st edition: column-major grid ---


def test_dlwp1_puts_filter_i_plus_8j_at_row_i_column_j(stand_in_path, tmp_path):
    settings = figure_settings(
        "dlwp1_block1_conv1", model=stand_in_path, num_steps=1, save_tiles=True
    )
    record = job.run(str(tmp_path), settings)
    assert record["mosaic"]["filters"] == list(range(64))
    pixels = np.asarray(Image.open(tmp_path / "mosaic.png"))
    for row in range(8):
        for column in range(8):
            tile = np.asarray(Image.open(tmp_path / "tiles" / f"filter_{row + 8 * column:04d}.png"))
            top, left = row * 69, column * 69
            np.testing.assert_array_equal(pixels[top : top + 64, left : left + 64], tile)
    assert not np.array_equal(pixels[69 : 69 + 64, :64], pixels[:64, 69 : 69 + 64])


def test_command_line_takes_the_dlwp1_layer_as_the_config_argument(stand_in_path, tmp_path):
    finished = run_command(
        "--config=configs/dlwp1.py:block3_conv1",
        f"--config.model={stand_in_path}",
        "--config.num_steps=1",
        f"--outdir={tmp_path}",
    )
    assert finished.returncode == 0, finished.stderr
    assert "(547x547 px, 8x8 filters of block3_conv1)" in finished.stdout
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["settings"]["grid_order"] == "column" and record["settings"]["num_steps"] == 1


# --- Deep Learning with Python, 2nd and 3rd edition: /std ×64 +128, crop 25; per-pixel L2 ---


def test_dlwp2_tile_divides_by_the_std_times_64_plus_128_then_crops_25_px():
    settings = figure_settings("dlwp2_single", num_steps=1)
    model = linear_model(np.tile(KERNEL, (1, 2)))
    result = api.visualize_filters(
        model, "conv", settings["filter_indices"], **api_settings(settings)
    )
    assert list(result.filter_indices) == [2]
    image = result.inputs[0].astype(np.float64)
    expected = np.clip((image - image.mean()) / image.std() * 64 + 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(result.images[0], expected[25:-25, 25:-25])


def test_dlwp3_steps_each_pixel_along_keras_ops_normalize():
    image = np.random.default_rng(2).uniform(0.4, 0.6, (12, 12, 3)).astype(np.float32)
    change = one_step_change("dlwp3", linear_model(KERNEL), image, filter_index=1)
    gradient = known_gradient(12, border=2, filter_index=1)
    expected = 10.0 * np.asarray(keras.ops.normalize(gradient.astype(np.float32)))
    np.testing.assert_allclose(change, expected, rtol=1e-4, atol=1e-6)
    pixel_norms = np.sqrt(np.sum(change[2:-2, 2:-2] ** 2, axis=-1))
    np.testing.assert_allclose(pixel_norms, 10.0, rtol=1e-4)  # each counted pixel moves by 10


# --- Keras blog: class units, their logits ---


def test_blog_classes_ascends_the_logits_of_units_65_and_18(stand_in_path):
    settings = Settings.create(figure_settings("blog_classes", model=stand_in_path))
    plan = pipeline.plan_layer(pipeline.load_model(stand_in_path, settings), settings)
    assert plan.keys == [65, 18]
    images = plan.renderer.initial_params(plan.keys)
    assert images.shape == (2, 224, 224, 3)
    _, losses, _ = take_step(plan, images)
    original = keras.saving.load_model(stand_in_path)
    hidden = keras.Model(original.inputs[0], original.get_layer("hidden").output)(images)
    kernel, bias = original.get_layer("predictions").get_weights()
    logits = np.asarray(hidden) @ kernel + bias
    np.testing.assert_allclose(losses, [logits[0, 65], logits[1, 18]], rtol=1e-4, atol=1e-5)
    probabilities = np.asarray(original(images))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(losses, [probabilities[0, 65], probabilities[1, 18]], atol=1e-3)


# --- Full size, real architectures, random weights: the acceptance runs (slow) ---


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBLISHED_SIZES))
def test_figure_runs_at_full_size_on_the_real_model(name, tmp_path):
    overrides = dict(weights="none", num_steps=1)
    expected = PUBLISHED_SIZES[name]
    if name == "keras_v3_upscale":
        overrides["max_filters"] = 16  # all 512 take about 20 minutes; the tiles are the point
    record = job.run(str(tmp_path), figure_settings(name, **overrides))
    pixels = np.asarray(Image.open(tmp_path / "mosaic.png"))
    if name == "keras_v3_upscale":
        side = record["mosaic"]["rows"]
        assert record["mosaic"]["cols"] == side and side >= 1
        expected = (side * 412 + (side - 1) * 5,) * 2
    assert pixels.shape[:2] == expected
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["settings"]["weights"] == "none" and saved["settings"]["num_steps"] == 1
