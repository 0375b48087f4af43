"""Settings are declared once and validated once; output folders and image sizes are checked
before a run computes or writes."""

import dataclasses
import os

import keras
import numpy as np
import pytest

import keras_filters
from keras_filters import errors
from keras_filters import settings as settings_lib
from keras_filters.image import mosaic
from keras_filters.job import artifacts
from keras_filters.job import run as job
from keras_filters.model import checks, extractor
from keras_filters.model import loading as models
from keras_filters.settings import Settings


def check(**overrides):
    return Settings.create(overrides)


def test_defaults_and_quickstart_give_typed_frozen_settings():
    from configs import base, quickstart

    defaults = check()
    assert defaults == Settings() and defaults.to_dict() == base.get_config().to_dict()
    assert defaults.image_size == 128 and defaults.gradient_normalization == "rms"
    resolved = check(**quickstart.get_config().to_dict())
    assert (resolved.model, resolved.layer, resolved.step_size) == ("demo", "conv3", 0.3)
    assert (resolved.parameterization, resolved.optimizer) == ("fourier", "adam")
    assert resolved.transforms == ("shift(0.25)", "scale(0.8, 1.2)", "rotate(20)")
    assert isinstance(resolved.step_size, float) and isinstance(resolved.filter_indices, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.image_size = 3


def test_every_setting_is_declared_with_a_meaning_and_a_group():
    for name, field in settings_lib.fields().items():
        assert field.metadata["meaning"].strip(), name
        assert field.metadata["group"] in settings_lib.GROUPS, name


def test_base_recipe_is_locked_against_new_keys():
    from configs import base

    config = base.get_config()
    config.image_size = 64
    with pytest.raises(AttributeError):
        config.image_sise = 64


def test_python_api_reports_in_python_words():
    with pytest.raises(ValueError) as raised:
        keras_filters.visualize_filters("demo", "conv3", range(4), image_size=-5)
    message = str(raised.value)
    assert "image_size=-5 is out of range: use an integer ≥ 1" in message
    assert "--config" not in message


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(num_steps="3"), "num_steps='3' has the wrong type; num_steps takes an integer"),
        (dict(step_size=True), "step_size=true has the wrong type"),
        (dict(filter_indices=(1.5,)), "filter_indices=(1.5,) has the wrong type"),
        (
            dict(strategy="mirrored", devices=(0, 1)),
            "devices=(0, 1) has the wrong type; devices takes a tuple of names, e.g. "
            '\'("/gpu:0", "/gpu:1")\'',
        ),
        (
            dict(transforms=(12,)),
            "transforms=(12,) has the wrong type; transforms takes a tuple of names, e.g. "
            '\'("pad(12)", "jitter(8)")\'',
        ),
        (dict(filter_indices=(2, 2)), "filter index 2 appears twice"),
        (dict(init_low=1.0, init_high=0.5), "init_low=1.0 is above init_high=0.5"),
        (dict(init_low=-3e38, init_high=3e38), "too wide"),
        (dict(init_low=-1e39), "init_low=-1e+39 is out of range"),
        (dict(init_high=float("inf")), "init_high=inf is out of range"),
        (dict(seed=-1), "seed=-1 is out of range"),
        (dict(seed=2**32), "seed=4294967296 is out of range"),
        (dict(max_filters=-1), "max_filters=-1 is out of range: use an integer ≥ 1, or 0"),
        (dict(upscale_factor=0.5), "upscale_factor=0.5 is out of range"),
        (dict(num_upscalings=40, upscale_factor=2.0), "num_upscalings=40"),
        (dict(deprocess="dlwp3"), "deprocess='dlwp3' is not one of the choices: dlwp2, standard"),
        (dict(layer=" "), "layer=' ' is empty"),
        (dict(dead_threshold=float("nan")), "dead_threshold=nan"),
        (dict(model="missing/model.keras"), "'missing/model.keras' does not exist"),
        (
            dict(model="demo", weights="vgg16.weights.h5"),
            "weights='vgg16.weights.h5' is for a Keras Applications model",
        ),
        (dict(atlas_layers=("a", "b", "a")), "layer 'a' appears twice in atlas_layers"),
        (dict(panel_layers=("conv1", "conv1")), "layer 'conv1' appears twice in panel_layers"),
        (
            dict(panel_layers=("conv1", " ")),
            "panel_layers=('conv1', ' ') holds an empty layer name",
        ),
        (
            dict(image_size=50000),
            "image_size=50000 is out of range: use an integer ≥ 1 (pixels), up to 16384",
        ),
        (dict(image_size=10**20), "image_size=100000000000000000000 is out of range"),
        (dict(input_range=(-1e39, 1e39)), "input_range=(-1e+39, 1e+39) is out of range"),
        (dict(input_range=(-3e38, 3e38)), "input_range=(-3e+38, 3e+38) is too wide for float32"),
        # The command line leaves "(nan, 1)" as text: Python literals have no nan.
        (dict(input_range=("(nan, 1)",)), "input_range=(nan, 1.0) is out of range: use two finite"),
        (dict(input_range=(float("inf"), 1.0)), "input_range=(inf, 1.0) is out of range"),
        (dict(fourier_decay=1e30), "fourier_decay=1e+30 is out of range: use a number from 0 to 4"),
        (dict(fourier_gain=1e38), "fourier_gain=1e+38 is out of range"),
        (dict(fourier_init_std=1e38), "fourier_init_std=1e+38 is out of range"),
        (dict(deprocess_scale=1e308), "deprocess_scale=1e+308 is out of range"),
        (dict(deprocess_scale=1e-300), "deprocess_scale=1e-300 is out of range"),
        (dict(deprocess_epsilon=1e308), "deprocess_epsilon=1e+308 is out of range"),
        (
            dict(devices=("/gpu:0", "/gpu:1")),
            "devices=('/gpu:0', '/gpu:1') names the devices of strategy='mirrored'; "
            "strategy='default' does not use it",
        ),
        (
            dict(strategy="mirrored", devices=("/gpu:0", "")),
            "devices=('/gpu:0', '') holds an empty device name; give a device's name, e.g. "
            "devices=('/gpu:0', '/gpu:1'), or leave devices out",
        ),
        (
            dict(strategy="mirrored", devices=("", "")),
            "devices=('', '') holds an empty device name",
        ),
        (
            dict(strategy="mirrored", devices=("/gpu:1", "/gpu:1")),
            "device '/gpu:1' appears twice in devices=('/gpu:1', '/gpu:1'); list each device once",
        ),
        (
            dict(strategy="tpu", devices=("/gpu:0",)),
            "strategy='tpu' does not use it: set strategy='mirrored'",
        ),
        (
            dict(strategy="mirrored", tpu_address="grpc://10.0.0.2:8470"),
            "tpu_address='grpc://10.0.0.2:8470' names the TPU of strategy='tpu'; "
            "strategy='mirrored' does not use it",
        ),
    ],
)
def test_bad_setting_names_its_value(overrides, message):
    with pytest.raises(errors.UsageError) as raised:
        check(**overrides)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


QUALITY = dict(parameterization="fourier", canvas_factor=2)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            dict(image_size=4),
            "image_size=4 with canvas_factor=2 is too small: the image must be at least 5 px",
        ),
        (dict(image_size=2, canvas_factor=8), "image_size=2 with canvas_factor=8 is too small"),
        (
            dict(image_size=9, num_upscalings=1, upscale_factor=2.0),
            "the first scale (4 px, num_upscalings=1 with upscale_factor=2.0) must be at least "
            "5 px",
        ),
    ],
)
def test_canvas_too_small_for_its_antialiasing_filter_is_refused(overrides, message):
    with pytest.raises(errors.UsageError) as raised:
        check(**{**QUALITY, **overrides})
    assert message in str(raised.value)


def test_smallest_canvas_image_is_what_the_downsample_can_reflect():
    from keras_filters.optvis import resample

    for factor in range(2, 9):
        smallest = settings_lib.smallest_canvas_image(factor)
        border = -resample.first_tap(factor)
        # The canvas of the smallest image is larger than the border; one pixel less is not.
        assert smallest * factor > border >= (smallest - 1) * factor
        image = np.zeros((1, smallest * factor, smallest * factor, 3), "float32")
        assert tuple(resample.downsample(image, factor).shape) == (1, smallest, smallest, 3)
        quality = dict(QUALITY, canvas_factor=factor)
        check(**quality, image_size=smallest)
        check(**quality, image_size=2 * smallest, num_upscalings=1, upscale_factor=2.0)
    # A picture without a canvas, or a pixel picture, has no filter to fit.
    check(parameterization="fourier", canvas_factor=1, image_size=1)
    check(parameterization="pixel", canvas_factor=2, image_size=1)


def test_every_recipe_passes_the_settings_checks():
    import importlib
    import pkgutil

    import configs

    for module in pkgutil.iter_modules(configs.__path__):
        recipe = importlib.import_module(f"configs.{module.name}")
        if hasattr(recipe, "get_config"):
            resolved = check(**recipe.get_config().to_dict())
            # A recipe's own values are never reported, only what its user gives.
            assert settings_lib.unused_settings(resolved.to_dict(), ()) == [], module.name


FOURIER = "it applies only with parameterization='fourier'"
PIXEL = "it applies only with parameterization='pixel'"
NORMALIZED = "it applies only with optimizer='normalized_gradient'"
APPLICATIONS = "it applies only for a Keras Applications model"
SAVED = "it applies only for the demo model or a saved model file"
NOT_PIXEL = "has no effect with parameterization='pixel'"
NOT_FOURIER = "has no effect with parameterization='fourier'"
NOT_ADAM = "has no effect with optimizer='adam'"

# (setting, value given, other settings without which it has no effect, other settings with
# which it acts, the line reported for the first).
UNUSED_RULES = [
    *(
        (name, value, dict(parameterization="pixel"), dict(parameterization="fourier"), line)
        for name, value, line in [
            ("fourier_decay", 2.0, f"fourier_decay=2.0 {NOT_PIXEL}: {FOURIER}"),
            ("fourier_gain", 0.5, f"fourier_gain=0.5 {NOT_PIXEL}: {FOURIER}"),
            ("fourier_init_std", 0.1, f"fourier_init_std=0.1 {NOT_PIXEL}: {FOURIER}"),
            ("decorrelate_colour", False, f"decorrelate_colour=false {NOT_PIXEL}: {FOURIER}"),
            ("canvas_factor", 2, f"canvas_factor=2 {NOT_PIXEL}: {FOURIER}"),
            ("downsample_cutoff", 0.25, f"downsample_cutoff=0.25 {NOT_PIXEL}: {FOURIER}"),
        ]
    ),
    *(
        (name, value, dict(parameterization="fourier"), dict(parameterization="pixel"), line)
        for name, value, line in [
            ("init_distribution", "normal", f"init_distribution='normal' {NOT_FOURIER}: {PIXEL}"),
            ("init_low", 0.0, f"init_low=0.0 {NOT_FOURIER}: {PIXEL}"),
            ("init_high", 200.0, f"init_high=200.0 {NOT_FOURIER}: {PIXEL}"),
        ]
    ),
    *(
        (name, value, dict(optimizer="adam"), dict(optimizer="normalized_gradient"), line)
        for name, value, line in [
            (
                "gradient_normalization",
                "l2",
                f"gradient_normalization='l2' {NOT_ADAM}: {NORMALIZED}",
            ),
            ("gradient_epsilon", 0.001, f"gradient_epsilon=0.001 {NOT_ADAM}: {NORMALIZED}"),
        ]
    ),
    (
        "final_step_fraction",
        0.5,
        dict(schedule="constant"),
        dict(schedule="cosine"),
        "final_step_fraction=0.5 has no effect with schedule='constant': it applies only with "
        "schedule='linear' or 'cosine'",
    ),
    (
        "include_top",
        True,
        dict(model="demo"),
        dict(model="vgg16"),
        f"include_top=true has no effect with model='demo': {APPLICATIONS}",
    ),
    (
        "weights",
        "none",
        dict(model="demo"),
        dict(model="ResNet50V2"),
        f"weights='none' has no effect with model='demo': {APPLICATIONS}",
    ),
    (
        "unsafe_deserialization",
        True,
        dict(model="vgg16"),
        dict(model="demo"),
        f"unsafe_deserialization=true has no effect with model='vgg16': {SAVED}",
    ),
    (
        "upscale_factor",
        1.5,
        dict(num_upscalings=0),
        dict(num_upscalings=2),
        "upscale_factor=1.5 has no effect with num_upscalings=0: it applies only with "
        "num_upscalings ≥ 1",
    ),
    (
        "max_filters",
        8,
        dict(filter_indices=(0, 5)),
        dict(filter_indices=()),
        "max_filters=8 has no effect with filter_indices=(0, 5): it applies only when "
        "filter_indices is empty",
    ),
    (
        "automatic_grid",
        "square",
        dict(grid_rows=2, grid_cols=3),
        dict(grid_rows=0, grid_cols=0),
        "automatic_grid='square' has no effect with grid_rows=2: it applies only with "
        "grid_rows=0 and grid_cols=0",
    ),
    (
        "examples_top_k",
        2,
        dict(examples_dir=""),
        dict(examples_dir="docs"),
        "examples_top_k=2 has no effect with examples_dir='': it applies only when "
        "examples_dir names a folder",
    ),
    (
        "rival_steps",
        32,
        dict(rival_rounds=0),
        dict(rival_rounds=2),
        "rival_steps=32 has no effect with rival_rounds=0: it applies only when rival_rounds "
        "is above 0",
    ),
]


@pytest.mark.parametrize(
    "name, value, without, within, line", UNUSED_RULES, ids=[rule[0] for rule in UNUSED_RULES]
)
def test_a_setting_given_where_it_has_no_effect_is_reported_in_one_line(
    name, value, without, within, line
):
    unused = check(**without, **{name: value}).to_dict()
    assert settings_lib.unused_settings(unused, {name, *without}) == [line]
    # Where it acts, nothing is reported.
    acting = check(**within, **{name: value}).to_dict()
    assert settings_lib.unused_settings(acting, {name, *within}) == []
    # Set by a recipe, not given by the user: not reported either.
    assert settings_lib.unused_settings(unused, set(without)) == []


def test_every_condition_on_a_setting_is_tested():
    conditional = {
        name for name, field in settings_lib.fields().items() if field.metadata["applies_when"]
    }
    assert conditional == {rule[0] for rule in UNUSED_RULES}


def test_unused_settings_are_reported_in_declaration_order():
    given = ("fourier_decay", "init_low", "gradient_epsilon", "seed", "final_step_fraction")
    values = check(fourier_decay=3.0, init_low=0.0, seed=4).to_dict()
    assert settings_lib.unused_settings(values, given) == [
        "final_step_fraction=0.1 has no effect with schedule='constant': it applies only with "
        "schedule='linear' or 'cosine'",
        f"fourier_decay=3.0 {NOT_PIXEL}: {FOURIER}",
    ]


def test_a_keras_model_object_takes_no_loading_setting(cnn):
    values = {**check().to_dict(), "model": cnn}
    given = ("weights", "include_top", "unsafe_deserialization")
    reported = settings_lib.unused_settings(values, given)
    shown = "model=<Functional name=small_cnn, built=True>"
    assert reported == [
        f"weights='imagenet' has no effect with {shown}: {APPLICATIONS}",
        f"include_top=false has no effect with {shown}: {APPLICATIONS}",
        f"unsafe_deserialization=false has no effect with {shown}: {SAVED}",
    ]


def test_meaning_says_the_condition_as_help_shows_it():
    assert settings_lib.meaning("fourier_decay") == (
        "Each frequency's amplitude is scaled by 1/f**fourier_decay (1: natural images' "
        "spectrum). (only with parameterization='fourier')"
    )
    assert settings_lib.meaning("num_steps") == "Ascent steps per scale."


def test_numpy_numbers_pass_like_python_numbers_and_become_them():
    resolved = check(image_size=np.int64(32), step_size=np.float32(0.5), num_steps=np.int32(3))
    assert (resolved.image_size, resolved.step_size, resolved.num_steps) == (32, 0.5, 3)
    assert type(resolved.image_size) is int and type(resolved.step_size) is float
    assert check(filter_indices=[np.int64(3), 1]).filter_indices == (3, 1)


def test_unknown_setting_is_a_usage_error_and_a_type_error():
    with pytest.raises(errors.UsageError, match=r"unknown setting 'num_stepz'.*num_steps"):
        check(num_stepz=3)
    with pytest.raises(TypeError):
        check(num_stepz=3)


def test_explicit_empty_filter_list_is_refused(cnn):
    with pytest.raises(errors.UsageError, match="empty list"):
        keras_filters.visualize_filters(cnn, "conv_a", [], progress=False)


def test_outdir_checks_create_nothing(tmp_path):
    new = tmp_path / "a" / "b"
    artifacts.check_outdir(str(new))
    assert os.listdir(tmp_path) == []
    artifacts.check_outdir(str(tmp_path))
    assert os.listdir(tmp_path) == []
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(errors.UsageError, match="is a file, not a folder"):
        artifacts.check_outdir(str(file))
    with pytest.raises(errors.UsageError, match="cannot be created"):
        artifacts.check_outdir(str(file / "out"))


def test_vgg16_refuses_sizes_where_its_pooling_reaches_zero():
    model = models.load_model("vgg16", weights="none")
    features = extractor.build_feature_extractor(model, "block5_conv1")

    def check_size(sizes, border=0):
        checks.check_input_size(
            features, sizes=sizes, border=border, layer_names=["block5_conv1"], model_name="vgg16"
        )

    # 16 px are halved four times before block5_conv1: 1x1 is left. 15 px would leave 0.
    assert check_size([16]) is None
    with pytest.raises(errors.UsageError, match=r"image_size=15 is too small.*below 16 px"):
        check_size([15])
    with pytest.raises(errors.UsageError, match=r"starts its 3 scales at 12 px.*below 16 px"):
        check_size([12, 24, 48])
    # block5_conv1 at 128 px is 8x8: a border of 3 leaves 2x2, 4 leaves nothing.
    assert check_size([128], border=3) is None
    with pytest.raises(errors.UsageError, match="border=4 leaves no pixels of the 8x8"):
        check_size([128], border=4)


def test_random_weights_repeat_with_the_seed():
    first = models.load_model("mobilenetv3small", weights="none", seed=7).get_weights()
    again = models.load_model("mobilenetv3small", weights="none", seed=7).get_weights()
    other = models.load_model("mobilenetv3small", weights="none", seed=8).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_same_settings_and_seed_give_the_same_bytes(tmp_path):
    settings = dict(
        model="demo",
        weights="none",
        layer="conv2",
        image_size=24,
        max_filters=8,
        num_steps=10,
        step_size=10.0,
        gradient_normalization="l2",
        init_low=0.4,
        init_high=0.6,
        grid_rows=2,
        grid_cols=4,
        progress=False,
    )
    first = job.run(str(tmp_path / "first"), settings)
    second = job.run(str(tmp_path / "second"), settings)
    other_seed = job.run(str(tmp_path / "other"), dict(settings, seed=1))
    assert first["settings"]["seed"] == 0
    mosaic = (tmp_path / "first" / "mosaic.png").read_bytes()
    assert mosaic == (tmp_path / "second" / "mosaic.png").read_bytes()
    assert mosaic != (tmp_path / "other" / "mosaic.png").read_bytes()
    assert first["filters"] == second["filters"] != other_seed["filters"]


def test_keras_output_spec_is_what_the_layer_computes(cnn):
    features = extractor.build_feature_extractor(cnn, "conv_b")
    spec = features.compute_output_spec(keras.KerasTensor((1, 10, 10, 3)))["conv_b"]
    computed = features(np.zeros((1, 10, 10, 3), "float32"))["conv_b"]
    assert tuple(spec.shape) == tuple(computed.shape)


def test_mosaic_too_large_for_memory_is_refused_before_the_run():
    assert mosaic.check_mosaic_size(8, 8, 128, 5, num_filters=64) is None  # the blog's 1059²
    with pytest.raises(errors.UsageError, match=r"mosaic would be 918528x918528 px"):
        mosaic.check_mosaic_size(8, 8, 128, 2**17, num_filters=64)
    # A grid larger than the filters shrinks to a square of them: 3 filters make 1x1.
    assert mosaic.check_mosaic_size(8, 8, 128, 2**30, num_filters=3) is None
