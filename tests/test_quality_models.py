"""The models of the quality measurements (benchmarks/models) load and are what they say."""

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
        ("rgb32_antialiased.keras", "rgb", (32, 32, 3), {"conv2": 48, "conv4": 96}),
        ("grey64_leaves.keras", "grey", (64, 64, 1), {"block3_out": 64}),
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


@pytest.mark.parametrize("name", ["rgb32_antialiased.keras", "rgb32.keras"])
def test_the_rgb_model_takes_raw_pixels_through_a_leading_rescaling(name):
    model = keras.models.load_model(os.path.join(MODELS, name), compile=False)
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


@pytest.mark.end_to_end
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


def test_leaf_radii_follow_the_inverse_cube_density(training_script):
    smallest, largest = 2.0, 32.0
    quantiles = np.linspace(0.0, 1.0, 11)
    radii = training_script.leaf_radius(quantiles, smallest, largest)
    np.testing.assert_allclose(radii[[0, -1]], [smallest, largest])
    # F(r) = (smallest⁻² − r⁻²) / (smallest⁻² − largest⁻²), the integral of r⁻³, undoes it.
    distribution = (smallest**-2 - radii**-2) / (smallest**-2 - largest**-2)
    np.testing.assert_allclose(distribution, quantiles, atol=1e-12)
    # Half the discs are smaller than about 2√2 px: small ones far outnumber large ones.
    np.testing.assert_allclose(training_script.leaf_radius(0.5, smallest, largest), 2.82, atol=0.01)


def test_dead_leaves_cover_the_scene_with_flat_discs_unless_textured(training_script):
    def flat_fraction(scene):
        """Pixels whose right-hand neighbour has exactly their colour."""
        return float(np.mean(np.all(scene[:, 1:] == scene[:, :-1], axis=-1)))

    rng = np.random.default_rng(0)
    flat, held = training_script.dead_leaves(32, 3, rng, 2.0, 32.0)
    assert held.all()
    assert 0.0 <= flat.min() and flat.max() <= 1.0
    # Discs of one colour each: most neighbours agree, and a few dozen colours make the scene.
    assert flat_fraction(flat) > 0.7
    assert 5 < len(np.unique(flat.reshape(-1, 3), axis=0)) < 200
    textured, _ = training_script.dead_leaves(32, 3, rng, 2.0, 32.0, textured=True)
    assert flat_fraction(textured) < 0.3
    # A counted scene holds only what its few discs cover.
    _, few = training_script.dead_leaves(32, 1, rng, 1.0, 4.0, count=2)
    assert 0 < np.count_nonzero(few) <= 2 * np.pi * 4.0**2 + 8


def test_a_leaves_scene_shows_the_pattern_in_an_ellipse_over_the_middle(training_script):
    pattern = np.full((32, 32, 1), 0.5, np.float32)
    background = np.zeros((32, 32, 1), np.float32)
    rng = np.random.default_rng(1)
    scenes = np.stack(
        [training_script._in_scene(pattern, background, rng, False) for _ in range(20)]
    )
    shown = scenes[..., 0] == 0.5
    # The ellipse always holds the centre; only a front disc can hide it.
    assert np.count_nonzero(shown[:, 16, 16]) >= 16
    area = shown.mean(axis=(1, 2))  # Between the smallest ellipse (0.28) and the picture.
    assert area.min() > 0.15 and area.max() < 0.96
    assert np.all(scenes[~shown] != 0.5)


def test_the_scene_option_keeps_plain_pictures_and_puts_patterns_on_leaves(training_script):
    plain, labels = training_script.make_dataset(20, 4, 32, 3, noise=0.0)
    again, _ = training_script.make_dataset(20, 4, 32, 3, noise=0.0, scene="plain")
    np.testing.assert_array_equal(plain, again)
    leaves, leaf_labels = training_script.make_dataset(20, 4, 32, 3, noise=0.0, scene="leaves")
    np.testing.assert_array_equal(labels, leaf_labels)

    def colour_rank(picture):
        """How many directions its colours span: 1 for a blend of two colours."""
        colours = picture.reshape(-1, 3) - picture.reshape(-1, 3).mean(axis=0)
        singular = np.linalg.svd(colours, compute_uv=False)
        return int(np.sum(singular > 1e-3 * singular[0]))

    # A plain picture blends its two colours; a scene adds the discs' colours around it.
    assert [colour_rank(picture) for picture in plain] == [1] * 20
    assert [colour_rank(picture) for picture in leaves] == [3] * 20
    with pytest.raises(ValueError, match="unknown scene 'forest'; choose one of: plain"):
        training_script.make_dataset(2, 0, 32, 3, scene="forest")


@pytest.mark.parametrize("layout, conv4_grid", [("single", 8), ("paired", 16)])
def test_the_rgb_layout_places_the_second_pooling(training_script, layout, conv4_grid):
    model = training_script.build_rgb_model((4, 4, 4, 4), layout=layout)
    assert model.get_layer("conv2").output.shape[1:3] == (32, 32)
    assert model.get_layer("conv4").output.shape[1:3] == (conv4_grid, conv4_grid)
    assert model.get_layer("global_pool").input.shape[1:3] == (8, 8)
    assert model.output.shape[-1] == len(training_script.CLASS_NAMES)
