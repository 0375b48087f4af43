"""The objective is a hand-computable mean; each normalization gives the formula's step."""

import numpy as np
import pytest
import tensorflow as tf

from keras_filters import gradients, objectives


def test_objective_is_mean_of_each_images_own_filter():
    activations = np.arange(2 * 6 * 6 * 3, dtype=np.float32).reshape(2, 6, 6, 3)
    losses = objectives.filter_mean_activation(tf.constant(activations), tf.constant([2, 0]))
    np.testing.assert_allclose(
        losses, [activations[0, :, :, 2].mean(), activations[1, :, :, 0].mean()], rtol=1e-6
    )


def test_objective_border_leaves_out_the_edge_of_the_activation_map():
    activations = np.random.default_rng(0).normal(size=(2, 9, 9, 4)).astype(np.float32)
    losses = objectives.filter_mean_activation(tf.constant(activations), tf.constant([1, 3]), 2)
    expected = [activations[0, 2:-2, 2:-2, 1].mean(), activations[1, 2:-2, 2:-2, 3].mean()]
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    assert not np.allclose(losses[0], activations[0, :, :, 1].mean())


def test_objective_on_dense_output_is_the_unit():
    logits = np.array([[1.0, 5.0, -2.0], [0.5, 0.0, 3.0]], np.float32)
    np.testing.assert_allclose(
        objectives.filter_mean_activation(tf.constant(logits), tf.constant([1, 2])), [5.0, 3.0]
    )


KNOWN_GRADIENT = np.array([[[[3.0], [4.0]], [[0.0], [0.0]]]], np.float32)  # sum g² = 25


@pytest.mark.parametrize(
    "mode, expected_norm",
    [("rms", np.sqrt(25 / 4)), ("l2", 5.0)],
)
def test_normalization_divides_by_the_formulas_norm(mode, expected_norm):
    normalized = gradients.normalize_gradients(tf.constant(KNOWN_GRADIENT), mode, 1e-5)
    np.testing.assert_allclose(normalized, KNOWN_GRADIENT / (expected_norm + 1e-5), rtol=1e-6)


def test_pixel_l2_normalizes_each_pixel_over_channels():
    gradient = np.array([[[[3.0, 4.0], [0.0, 2.0]]]], np.float32)
    normalized = gradients.normalize_gradients(tf.constant(gradient), "pixel_l2", 0.0)
    np.testing.assert_allclose(normalized, [[[[0.6, 0.8], [0.0, 1.0]]]], rtol=1e-6)


def test_each_image_is_normalized_by_its_own_norm():
    batch = np.stack([KNOWN_GRADIENT[0], 10 * KNOWN_GRADIENT[0]])
    normalized = np.asarray(gradients.normalize_gradients(tf.constant(batch), "l2", 0.0))
    np.testing.assert_allclose(normalized[0], normalized[1], rtol=1e-6)


@pytest.mark.parametrize("mode", ["rms", "l2", "pixel_l2"])
def test_zero_gradient_gives_zero_step_not_nan(mode):
    normalized = gradients.normalize_gradients(tf.zeros((2, 3, 3, 3)), mode, 1e-5)
    np.testing.assert_array_equal(normalized, np.zeros((2, 3, 3, 3)))


def test_unknown_normalization_names_the_choices():
    with pytest.raises(ValueError, match="'l3'.*rms, l2, pixel_l2, none"):
        gradients.normalize_gradients(tf.zeros((1, 1, 1, 1)), "l3", 1e-5)
