"""Objectives are hand-computable means that combine arithmetically; each gradient normalization
gives its formula's step."""

import keras
import numpy as np
import pytest
from conftest import random_images

from keras_filters.model import extractor
from keras_filters.optvis import objectives, update


def numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def layer_values(values: np.ndarray, layer: str = "conv") -> dict:
    return {layer: keras.ops.convert_to_tensor(values)}


def test_own_channel_objective_is_mean_of_each_images_own_filter():
    activations = np.arange(2 * 6 * 6 * 3, dtype=np.float32).reshape(2, 6, 6, 3)
    losses = objectives.channel("conv")(layer_values(activations), np.array([2, 0], np.int32))
    np.testing.assert_allclose(
        numpy(losses), [activations[0, :, :, 2].mean(), activations[1, :, :, 0].mean()], rtol=1e-6
    )


def test_border_leaves_out_the_edge_of_the_activation_map():
    activations = np.random.default_rng(0).normal(size=(2, 9, 9, 4)).astype(np.float32)
    losses = numpy(
        objectives.channel("conv", border=2)(layer_values(activations), np.array([1, 3]))
    )
    expected = [activations[0, 2:-2, 2:-2, 1].mean(), activations[1, 2:-2, 2:-2, 3].mean()]
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    assert not np.allclose(losses[0], activations[0, :, :, 1].mean())


def test_channel_of_a_dense_output_is_the_unit():
    logits = np.array([[1.0, 5.0, -2.0], [0.5, 0.0, 3.0]], np.float32)
    np.testing.assert_allclose(
        numpy(objectives.channel("conv")(layer_values(logits), np.array([1, 2]))), [5.0, 3.0]
    )
    np.testing.assert_allclose(numpy(objectives.channel("conv", 2)(layer_values(logits))), [-2, 3])


def test_arithmetic_is_the_weighted_sum():
    activations = {
        "a": keras.ops.convert_to_tensor(np.random.default_rng(1).normal(size=(3, 4, 4, 5))),
        "b": keras.ops.convert_to_tensor(np.random.default_rng(2).normal(size=(3, 2, 2, 8))),
    }
    a, b = objectives.channel("a", 3), objectives.channel("b", 7)
    mean_a = numpy(activations["a"])[..., 3].mean(axis=(1, 2))
    mean_b = numpy(activations["b"])[..., 7].mean(axis=(1, 2))
    combined = 0.5 * a + b - 2 * b
    assert combined.layers == ("a", "b")
    np.testing.assert_allclose(numpy(combined(activations)), 0.5 * mean_a - mean_b, rtol=1e-5)
    np.testing.assert_allclose(numpy((-a)(activations)), -mean_a, rtol=1e-6)
    np.testing.assert_allclose(numpy(sum([a, b])(activations)), mean_a + mean_b, rtol=1e-5)
    with pytest.raises(TypeError, match="number"):
        a * b


def test_channels_of_one_layer_run_as_one_batched_objective():
    objective, targets = objectives.batch_plan([objectives.channel("c", i) for i in (5, 2, 9)])
    assert objective.batch_key is None and objective.layers == ("c",)
    np.testing.assert_array_equal(targets, [5, 2, 9])
    values = np.random.default_rng(3).normal(size=(3, 4, 4, 10)).astype(np.float32)
    np.testing.assert_allclose(
        numpy(objective(layer_values(values, "c"), targets)),
        [values[i, ..., channel].mean() for i, channel in enumerate((5, 2, 9))],
        rtol=1e-5,
    )


def test_mixed_objectives_give_each_image_its_own():
    a, b = objectives.channel("a", 1), objectives.channel("b", 0)
    objective, targets = objectives.batch_plan([0.5 * a + b, b])
    np.testing.assert_array_equal(targets, [0, 1])
    activations = {
        "a": keras.ops.convert_to_tensor(np.random.default_rng(4).normal(size=(2, 3, 3, 2))),
        "b": keras.ops.convert_to_tensor(np.random.default_rng(5).normal(size=(2, 3, 3, 1))),
    }
    losses = numpy(objective(activations, targets))
    both = numpy((0.5 * a + b)(activations))
    only_b = numpy(b(activations))
    np.testing.assert_allclose(losses, [both[0], only_b[1]], rtol=1e-5)


def test_evaluate_runs_a_plain_forward_pass(cnn):
    images = random_images(2, 10, seed=6)
    objective = 2.0 * objectives.channel("conv_b", 1) - objectives.channel("conv_a", 4)
    outputs = extractor.build_feature_extractor(cnn, ["conv_a", "conv_b"])(images)
    expected = 2.0 * numpy(outputs["conv_b"])[..., 1].mean(axis=(1, 2)) - numpy(outputs["conv_a"])[
        ..., 4
    ].mean(axis=(1, 2))
    np.testing.assert_allclose(objectives.evaluate(cnn, objective, images), expected, rtol=1e-5)


KNOWN_GRADIENT = np.array([[[[3.0], [4.0]], [[0.0], [0.0]]]], np.float32)  # sum g² = 25


@pytest.mark.parametrize("mode, expected_norm", [("rms", np.sqrt(25 / 4)), ("l2", 5.0)])
def test_normalization_divides_by_the_formulas_norm(mode, expected_norm):
    normalized = update.normalize_gradients(keras.ops.convert_to_tensor(KNOWN_GRADIENT), mode, 1e-5)
    np.testing.assert_allclose(
        numpy(normalized), KNOWN_GRADIENT / (expected_norm + 1e-5), rtol=1e-6
    )


def test_pixel_l2_normalizes_each_pixel_over_channels():
    gradient = keras.ops.convert_to_tensor(np.array([[[[3.0, 4.0], [0.0, 2.0]]]], np.float32))
    normalized = update.normalize_gradients(gradient, "pixel_l2", 0.0)
    np.testing.assert_allclose(numpy(normalized), [[[[0.6, 0.8], [0.0, 1.0]]]], rtol=1e-6)


def test_each_image_is_normalized_by_its_own_norm():
    batch = keras.ops.convert_to_tensor(np.stack([KNOWN_GRADIENT[0], 10 * KNOWN_GRADIENT[0]]))
    normalized = numpy(update.normalize_gradients(batch, "l2", 0.0))
    np.testing.assert_allclose(normalized[0], normalized[1], rtol=1e-6)


@pytest.mark.parametrize("mode", ["rms", "l2", "pixel_l2"])
def test_zero_gradient_gives_zero_step_not_nan(mode):
    normalized = update.normalize_gradients(keras.ops.zeros((2, 3, 3, 3)), mode, 1e-5)
    np.testing.assert_array_equal(numpy(normalized), np.zeros((2, 3, 3, 3)))


def test_unknown_normalization_names_the_choices():
    with pytest.raises(ValueError, match="'l3'.*rms, l2, pixel_l2, none"):
        update.NormalizedGradient("l3")


def test_guard_keeps_the_images_whose_step_is_not_finite():
    params = keras.ops.convert_to_tensor(np.ones((3, 2, 2, 1), np.float32))
    updated = np.full((3, 2, 2, 1), 2.0, np.float32)
    updated[2, 0, 0, 0] = np.inf
    losses = keras.ops.convert_to_tensor(np.array([1.0, np.nan, 1.0], np.float32))
    gradients = keras.ops.zeros((3, 2, 2, 1))
    kept, _, finite = update.guard(
        params, (), keras.ops.convert_to_tensor(updated), (), losses, gradients
    )
    assert list(numpy(finite)) == [True, False, False]
    np.testing.assert_array_equal(numpy(kept)[:, 0, 0, 0], [2.0, 1.0, 1.0])
