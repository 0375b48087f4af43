"""The notebook API returns what other tools read: images, inputs, losses, filter indices."""

import warnings

import keras
import numpy as np
import pytest
from conftest import SMALL_RUN, small_cnn

import keras_filters
from keras_filters.model import extractor as extractor_lib
from keras_filters.optvis import render


def test_visualize_filters_returns_scorable_inputs(cnn):
    result = keras_filters.visualize_filters(
        cnn,
        "conv_b",
        [3, 1],
        image_size=20,
        num_steps=3,
        step_size=0.1,
        init_low=-1.0,
        init_high=1.0,
        gradient_normalization="l2",
        progress=False,
    )
    assert result.images.shape == (2, 20, 20, 3) and result.images.dtype == np.uint8
    assert result.inputs.shape == (2, 20, 20, 3) and result.inputs.dtype == np.float32
    assert list(result.filter_indices) == [3, 1]
    # An outside script scores `inputs` against the model; after the last step the objective
    # is at least the last recorded one, since every step went uphill.
    extractor = extractor_lib.build_feature_extractor(cnn, "conv_b")
    activations = np.asarray(extractor(result.inputs)["conv_b"])
    rescored = activations[..., [3, 1]].mean(axis=(1, 2))
    np.testing.assert_array_less(result.losses - 1e-6, np.diag(rescored))


def test_unknown_setting_is_a_type_error(cnn):
    with pytest.raises(TypeError, match="num_stepz"):
        keras_filters.visualize_filters(cnn, "conv_a", [0], num_stepz=3)


def test_greyscale_model_end_to_end():
    model = small_cnn(channels=1, name="grey")
    result = keras_filters.visualize_filters(
        model,
        "conv_b",
        None,
        max_filters=4,
        image_size=16,
        num_steps=2,
        init_low=0.0,
        init_high=1.0,
        progress=False,
    )
    assert result.images.shape == (4, 16, 16, 1)
    canvas = keras_filters.stitch(result.images, 2, 2, margin=2)
    assert canvas.shape == (34, 34, 1)


def test_multi_scale_schedule_visits_the_published_sizes():
    assert render.scale_sizes(412, 9, 1.2) == [79, 95, 114, 137, 165, 198, 238, 286, 343, 412]
    assert render.scale_sizes(128, 0, 1.2) == [128]


def test_multi_scale_run_ends_at_the_final_size(cnn):
    result = keras_filters.visualize_filters(
        cnn,
        "conv_a",
        [0, 1],
        image_size=24,
        num_upscalings=2,
        upscale_factor=1.2,
        num_steps=2,
        init_low=-1.0,
        init_high=1.0,
        deprocess_scale=0.25,
        progress=False,
    )
    assert result.inputs.shape == (2, 24, 24, 3)
    assert result.loss_history.shape == (4, 2)  # 2 steps at 16 px and 2 at 20 px


def test_fixed_size_model_refuses_another_image_size():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(inputs))
    with pytest.raises(keras_filters.UsageError, match="image_size=64.*fixed at 32x32"):
        keras_filters.visualize_filters(model, "conv", [0], image_size=64, progress=False)


def test_combined_objectives_through_the_public_api():
    a = keras_filters.objectives.channel("conv3", 3)
    b = keras_filters.objectives.channel("conv2", 7)
    result = keras_filters.optimize("demo", [0.5 * a + b, b], image_size=32, num_steps=5)
    assert isinstance(result, keras_filters.VisualizationResult)
    assert result.images.shape == (2, 32, 32, 3) and result.inputs.shape == (2, 32, 32, 3)
    assert result.losses.shape == (2,) and result.loss_history.shape == (5, 2)
    model = keras_filters.load_model("demo")
    evaluated = keras_filters.objectives.evaluate(model, 0.5 * a + b, result.inputs)
    plain = keras.Model(
        model.inputs[0], [model.get_layer("conv3").output, model.get_layer("conv2").output]
    )
    conv3, conv2 = (np.asarray(output) for output in plain(result.inputs))
    expected = 0.5 * conv3[..., 3].mean(axis=(1, 2)) + conv2[..., 7].mean(axis=(1, 2))
    np.testing.assert_allclose(evaluated, expected, rtol=1e-5, atol=1e-6)
    # The first image was optimized for 0.5·a + b; its final loss is that objective.
    assert evaluated[0] >= result.losses[0] - 1e-4


def test_visualize_filters_is_optimize_with_one_channel_objective_per_filter():
    settings = dict(
        image_size=24,
        num_steps=3,
        step_size=10.0,
        gradient_normalization="l2",
        init_low=0.4,
        init_high=0.6,
        progress=False,
    )
    filters = [4, 1, 9]
    visualized = keras_filters.visualize_filters("demo", "conv3", filters, **settings)
    optimized = keras_filters.optimize(
        "demo",
        [keras_filters.objectives.channel("conv3", index) for index in filters],
        keys=filters,
        **settings,
    )
    np.testing.assert_array_equal(visualized.inputs, optimized.inputs)
    np.testing.assert_array_equal(visualized.losses, optimized.losses)
    np.testing.assert_array_equal(visualized.images, optimized.images)


TINY = dict(image_size=12, num_steps=1, progress=False)


@pytest.mark.parametrize(
    "filter_indices, shown",
    [("12", "'12'"), ([1.7], "(1.7,)"), ([True], "(true,)"), (5, "5"), (["a"], "('a',)")],
)
def test_visualize_filters_refuses_filter_indices_that_are_not_integers(cnn, filter_indices, shown):
    # The text "12" once ran filters 1 and 2, and 1.7 ran filter 1, without a word.
    with pytest.raises(keras_filters.UsageError) as raised:
        keras_filters.visualize_filters(cnn, "conv_a", filter_indices, **TINY)
    message = str(raised.value)
    assert message.startswith(f"filter_indices={shown} has the wrong type") and "\n" not in message


def test_visualize_filters_takes_numpy_integers(cnn):
    result = keras_filters.visualize_filters(cnn, "conv_a", np.array([4, 1]), **TINY)
    assert list(result.filter_indices) == [4, 1]


@pytest.mark.parametrize(
    "keys, message",
    [
        ([1.5], "key 1.5 in keys is not an integer"),
        (["x"], "key 'x' in keys is not an integer"),
        ([True], "key true in keys is not an integer"),
        (5, "keys=5 is not a list of integers"),
        ([-1], "key -1 in keys is out of range; use integers from 0 to 9223372036854775807"),
        ([2**70], f"key {2**70} in keys is out of range"),
        ([2**63], f"key {2**63} in keys is out of range"),
    ],
)
def test_optimize_refuses_keys_that_cannot_seed_an_image(cnn, keys, message):
    objective = keras_filters.objectives.channel("conv_a", 0)
    with pytest.raises(keras_filters.UsageError) as raised:
        keras_filters.optimize(cnn, [objective], keys=keys, **TINY)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_optimize_takes_numpy_integer_keys_up_to_the_largest(cnn):
    objective = keras_filters.objectives.channel("conv_a", 0)
    keys = [np.int64(7), render.MAX_KEY]
    result = keras_filters.optimize(cnn, [objective, objective], keys=keys, **TINY)
    assert list(result.filter_indices) == [7, 2**63 - 1]


@pytest.mark.parametrize(
    "objectives, message",
    [
        (["conv_a"], r"objectives\[0\]='conv_a' \(str\) is not an objective"),
        ("conv_a", r"objectives='conv_a' is not a list of objectives"),
        (None, r"objectives=None is not a list of objectives"),
    ],
)
def test_optimize_refuses_what_is_not_a_list_of_objectives(cnn, objectives, message):
    with pytest.raises(keras_filters.UsageError, match=message):
        keras_filters.optimize(cnn, objectives, **TINY)


def test_optimize_refuses_a_single_objective_and_says_to_wrap_it(cnn):
    objective = keras_filters.objectives.channel("conv_a", 0)
    with pytest.raises(keras_filters.UsageError, match=r"got one, channel\(conv_a, 0\).*\[obj"):
        keras_filters.optimize(cnn, objective, **TINY)


def unused_setting_warnings(caught) -> list[str]:
    return [
        str(warning.message)
        for warning in caught
        if issubclass(warning.category, keras_filters.UnusedSettingWarning)
    ]


def test_a_keyword_setting_without_effect_is_a_warning_at_the_call(cnn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = keras_filters.visualize_filters(
            cnn, "conv_b", [0, 1], **SMALL_RUN, fourier_decay=2.0, include_top=True
        )
    assert unused_setting_warnings(caught) == [
        "include_top=true has no effect with model=<Functional name=small_cnn, built=True>: it "
        "applies only for a Keras Applications model",
        "fourier_decay=2.0 has no effect with parameterization='pixel': it applies only with "
        "parameterization='fourier'",
    ]
    assert {warning.filename for warning in caught if "fourier" in str(warning.message)} == {
        __file__
    }
    assert result.images.shape == (2, 16, 16, 3)  # The run went on.


def test_keyword_settings_that_act_and_defaults_that_do_not_give_no_warning(cnn):
    # SMALL_RUN gives the pixel noise and the normalization, which the pixel parameterization
    # and the normalized-gradient step read; the Fourier settings keep their defaults.
    objective = keras_filters.objectives.channel("conv_a", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", keras_filters.UnusedSettingWarning)
        keras_filters.optimize(cnn, [objective], **SMALL_RUN)
    with pytest.warns(keras_filters.UnusedSettingWarning) as caught:
        keras_filters.optimize(cnn, [objective], **SMALL_RUN, optimizer="adam")
    assert unused_setting_warnings(caught) == [
        "gradient_normalization='l2' has no effect with optimizer='adam': it applies only with "
        "optimizer='normalized_gradient'"
    ]
