"""The acceptance models of the quality recipe (benchmarks/models) load and are what they say."""

import importlib.util
import os

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT

MODELS = os.path.join(REPO_ROOT, "benchmarks", "models")


@pytest.fixture(scope="module")
def training_script():
    """scripts/train_quality_models.py as a module (loaded once: it defines absl flags)."""
    path = os.path.join(REPO_ROOT, "scripts", "train_quality_models.py")
    spec = importlib.util.spec_from_file_location("train_quality_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name, kind, shape, layers",
    [
        ("rgb32.keras", "rgb", (32, 32, 3), {"conv2": 48, "conv4": 96}),
        ("grey64.keras", "grey", (64, 64, 1), {"block3_out": 64}),
    ],
)
def test_acceptance_model_loads_and_classifies_fresh_pictures(
    training_script, name, kind, shape, layers
):
    model = keras.models.load_model(os.path.join(MODELS, name), compile=False)
    assert tuple(model.inputs[0].shape[1:]) == shape
    for layer, filters in layers.items():
        assert model.get_layer(layer).output.shape[-1] == filters
    spec = training_script.KINDS[kind]
    # Fresh pictures from a seed the training never used, in the model's input range.
    images, labels = training_script.make_dataset(200, 12345, shape[0], shape[2])
    logits = model.predict(spec["low"] + images * (spec["high"] - spec["low"]), verbose=0)
    assert np.mean(np.argmax(logits, -1) == labels) > 0.9


def test_the_rgb_model_takes_raw_pixels_through_a_leading_rescaling():
    model = keras.models.load_model(os.path.join(MODELS, "rgb32.keras"), compile=False)
    rescaling = model.layers[1]
    assert isinstance(rescaling, keras.layers.Rescaling)
    np.testing.assert_allclose(rescaling(np.array([0.0, 127.5, 255.0])), [-1.0, 0.0, 1.0])


def test_max_blur_pooling_changes_less_than_max_pooling_when_the_input_moves_a_pixel(
    training_script,
):
    image = keras.Input(shape=(32, 32, 1))
    plain = keras.Model(image, training_script._pooling(image, "plain", antialias=False))
    blurred = keras.Model(image, training_script._pooling(image, "blurred", antialias=True))
    kernel = blurred.get_layer("blurred").get_weights()[0]
    assert not blurred.get_layer("blurred").trainable
    np.testing.assert_allclose(kernel[:, :, 0, 0].sum(), 1.0)
    np.testing.assert_allclose(kernel[1, :, 0, 0], [0.125, 0.25, 0.125])
    pictures = np.random.default_rng(0).random((8, 32, 32, 1)).astype(np.float32)
    moved = np.roll(pictures, 1, axis=2)

    def change(model):
        before, after = model(pictures), model(moved)
        inner = (slice(None), slice(2, -2), slice(2, -2))  # Away from the wrapped column.
        return float(np.mean(np.abs(np.asarray(after - before)[inner])))

    assert plain(pictures).shape == blurred(pictures).shape == (8, 16, 16, 1)
    assert change(blurred) < 0.6 * change(plain)


def test_the_augmenter_moves_pictures_within_its_range_and_repeats_for_a_seed(training_script):
    size = 32
    rows, columns = np.mgrid[0:size, 0:size]
    blob = np.exp(-((rows - 15.5) ** 2 + (columns - 15.5) ** 2) / 8.0)[..., np.newaxis]
    pictures = np.repeat(blob[np.newaxis], 16, axis=0).astype(np.float32)
    first = np.asarray(training_script.augmenter(0.125, seed=3)(pictures))
    again = np.asarray(training_script.augmenter(0.125, seed=3)(pictures))
    np.testing.assert_array_equal(first, again)

    def centre(images):
        weights = images[..., 0] / images[..., 0].sum(axis=(1, 2), keepdims=True)
        return np.stack([(weights * rows).sum((1, 2)), (weights * columns).sum((1, 2))], -1)

    moved = np.hypot(*(centre(first) - 15.5).T)
    # A shift of up to 4 px on each axis; zoom and rotation about the centre do not move it.
    assert moved.max() <= np.hypot(4.0, 4.0) + 0.5
    assert np.count_nonzero(moved > 0.5) >= 8
    flat = np.full((2, size, size, 1), 0.25, np.float32)
    np.testing.assert_allclose(training_script.augmenter(0.125, seed=0)(flat), flat, atol=1e-6)


def test_the_noise_setting_is_the_pixel_noise_of_the_pictures(training_script):
    clean, labels = training_script.make_dataset(40, 7, 32, 1, noise=0.0)
    noisy, same_labels = training_script.make_dataset(40, 7, 32, 1, noise=0.1)
    np.testing.assert_array_equal(labels, same_labels)
    inside = (clean > 0.3) & (clean < 0.7)  # Where clipping to [0, 1] cannot bite.
    assert abs(float(np.std((noisy - clean)[inside])) - 0.1) < 0.01


def test_training_repeats_for_a_seed_and_augmentation_changes_what_it_learns(training_script):
    def stem_kernel(model):
        return model.get_layer("stem_conv").get_weights()[0]

    as_drawn, accuracy = training_script.train("grey", small=True, antialias=True)
    again, accuracy_again = training_script.train("grey", small=True, antialias=True)
    augmented, _ = training_script.train("grey", small=True, antialias=True, augment=0.125)
    assert isinstance(augmented.get_layer("pool0"), keras.layers.DepthwiseConv2D)
    assert isinstance(augmented.get_layer("pool0_max"), keras.layers.MaxPooling2D)
    # The seed fixes the starting weights as well as the data, so a run repeats exactly ...
    np.testing.assert_array_equal(stem_kernel(as_drawn), stem_kernel(again))
    assert accuracy == accuracy_again
    # ... and only the redrawn pictures make the augmented run's weights differ.
    assert np.abs(stem_kernel(augmented) - stem_kernel(as_drawn)).max() > 1e-3
