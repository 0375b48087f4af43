"""The ascent raises each filter's objective, batching changes nothing, faults stay local."""

import keras
import numpy as np
import pytest
from conftest import channel_step, random_images

from keras_filters import api
from keras_filters.optvis import param

SETTINGS = dict(
    image_size=16,
    num_steps=8,
    step_size=0.5,
    init_low=0.4,
    init_high=0.6,
    gradient_normalization="l2",
    progress=False,
)


def test_loss_rises_over_steps_for_every_filter(cnn):
    # Noise around zero, so that every ReLU filter of the small model is alive at the start.
    settings = {**SETTINGS, "init_low": -1.0, "init_high": 1.0}
    result = api.visualize_filters(cnn, "conv_a", range(6), batch_size=6, **settings)
    history = result.loss_history
    assert history.shape == (8, 6)
    assert np.all(history[-1] > history[0]), history
    assert np.all(result.losses == history[-1])


def test_batched_filters_match_one_filter_runs(cnn):
    batched = api.visualize_filters(cnn, "conv_b", [0, 1, 2, 3], batch_size=4, **SETTINGS)
    for position, filter_index in enumerate([0, 1, 2, 3]):
        alone = api.visualize_filters(cnn, "conv_b", [filter_index], batch_size=1, **SETTINGS)
        np.testing.assert_allclose(batched.inputs[position], alone.inputs[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(batched.losses[position], alone.losses[0], rtol=1e-4)


def test_results_do_not_depend_on_chunk_size(cnn):
    whole = api.visualize_filters(cnn, "conv_a", range(6), batch_size=6, **SETTINGS)
    chunked = api.visualize_filters(cnn, "conv_a", range(6), batch_size=4, **SETTINGS)
    np.testing.assert_allclose(whole.inputs, chunked.inputs, rtol=1e-4, atol=1e-5)


def test_dead_filter_takes_finite_zero_steps():
    inputs = keras.Input((None, None, 3))
    # Filter 1 has a zero kernel and a negative bias: after ReLU it is 0 for every input.
    conv = keras.layers.Conv2D(2, 3, activation="relu", name="conv")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 2)).astype(np.float32)
    kernel[..., 1] = 0.0
    conv.set_weights([kernel, np.array([0.0, -1.0], np.float32)])
    step = channel_step(model, "conv", gradient_normalization="rms")
    images = random_images(2, 8)
    new_images, losses, finite = step(images, [0, 1], 1.0)
    new_images = np.asarray(new_images)
    assert np.all(np.asarray(finite))
    np.testing.assert_array_equal(new_images[1], images[1])
    assert float(losses[1]) == 0.0
    assert not np.allclose(new_images[0], images[0])


def test_non_finite_filter_is_frozen_and_reported():
    inputs = keras.Input((None, None, 2))
    # Channel 1 is log(-1) = NaN; channel 0 is a plain identity.
    outputs = keras.layers.Lambda(
        lambda x: keras.ops.stack([x[..., 0], keras.ops.log(x[..., 1] - 2.0)], axis=-1),
        name="out",
    )(inputs)
    model = keras.Model(inputs, outputs)
    step = channel_step(model, "out")
    images = random_images(2, 4, channels=2)
    new_images, losses, finite = step(images, [0, 1], 1.0)
    new_images = np.asarray(new_images)
    assert list(np.asarray(finite)) == [True, False]
    np.testing.assert_array_equal(new_images[1], images[1])
    assert np.isfinite(np.asarray(new_images)).all()


def test_initial_noise_is_per_filter_and_seeded():
    pixels = param.Pixel(low=118, high=138)
    first = pixels.initial([3, 7], height=5, width=4, channels=3, seed=9)
    again = pixels.initial([7], height=5, width=4, channels=3, seed=9)
    assert first.shape == (2, 5, 4, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first[1], again[0])
    assert first.min() >= 118 and first.max() < 138
    assert not np.array_equal(first[0], first[1])


def test_unknown_init_distribution_names_the_choices():
    with pytest.raises(ValueError, match="'gauss'.*uniform, normal"):
        param.Pixel(distribution="gauss")
