"""The Fourier image and the model's input range (issue 10, points 2 and 3)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_filters import errors
from keras_filters.model import input_range
from keras_filters.optvis import param
from keras_filters.settings import Settings


def numpy(tensor):
    return np.asarray(ops.convert_to_numpy(tensor))


def unit_range(channels=3):
    return input_range.InputRange.from_mode("unit", channels)


def test_inverse_dft_tables_match_numpy_irfft2():
    rng = np.random.default_rng(0)
    spectrum = rng.normal(size=(2, 1, 8, 5)) + 1j * rng.normal(size=(2, 1, 8, 5))
    cos_y, sin_y, cos_x, sin_x = param.inverse_dft_tables(8, 8)
    real, imaginary = spectrum.real, spectrum.imag
    image = (cos_y @ real - sin_y @ imaginary) @ cos_x - (sin_y @ real + cos_y @ imaginary) @ sin_x
    np.testing.assert_allclose(image, np.fft.irfft2(spectrum, s=(8, 8), norm="ortho"), atol=1e-5)


@pytest.mark.parametrize("channels", [3, 1])
def test_fourier_round_trips_an_image(channels):
    image = np.random.default_rng(1).uniform(0.05, 0.95, (2, 16, 16, channels)).astype(np.float32)
    raw = input_range.InputRange.from_mode("raw", channels)
    fourier = param.Fourier(raw, decay=1.0)
    params = fourier.from_unit_image(image)
    assert params.shape == (2, channels, 16, 9, 2)
    np.testing.assert_allclose(numpy(fourier.to_unit_image(params)), image, atol=1e-5)
    np.testing.assert_allclose(fourier.to_inputs(params), image * 255.0, atol=2e-3)


def test_fourier_odd_sizes_give_the_size_asked_for():
    fourier = param.Fourier(unit_range())
    params = fourier.initial([0, 1], seed=0, height=15, width=15, channels=3)
    assert fourier.to_inputs(params).shape == (2, 15, 15, 3)


def test_fourier_starts_grey_and_seeded_per_key():
    fourier = param.Fourier(unit_range(), init_std=0.01)
    together = fourier.initial([3, 7], seed=5, height=8, width=8, channels=3)
    alone = fourier.initial([7], seed=5, height=8, width=8, channels=3)
    np.testing.assert_array_equal(together[1], alone[0])
    pictures = fourier.to_inputs(together)
    assert abs(float(pictures.mean()) - 0.5) < 0.01 and float(pictures.std()) < 0.05


def test_fourier_scales_frequencies_by_their_inverse():
    scale = param.frequency_scale(8, 8, 1.0)
    assert scale[0, 1] == pytest.approx(8.0)  # 1/8 cycle per pixel.
    assert scale[4, 4] == pytest.approx(1 / np.hypot(0.5, 0.5), rel=1e-5)
    assert scale[0, 0] == pytest.approx(8.0)  # The mean is capped like the lowest frequency.
    np.testing.assert_array_equal(param.frequency_scale(8, 8, 0.0), 1.0)


def test_fourier_resize_keeps_the_picture():
    image = np.random.default_rng(2).uniform(0.1, 0.9, (1, 16, 16, 3)).astype(np.float32)
    fourier = param.Fourier(unit_range())
    larger = numpy(fourier.to_unit_image(fourier.resize(fourier.from_unit_image(image), 32)))
    np.testing.assert_allclose(larger[:, ::2, ::2], image, atol=1e-4)


def test_colour_matrix_is_orthogonal_up_to_scale():
    matrix = param.COLOUR_SQRT_COVARIANCE.astype(np.float64)
    gram = matrix.T @ matrix
    np.testing.assert_allclose(gram, np.diag(np.diag(gram)), atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=0).max(), 1.0, atol=1e-6)
    np.testing.assert_allclose(matrix[:, 0], matrix[0, 0])  # Luminance: R, G, B alike.
    assert np.linalg.matrix_rank(matrix) == 3


def test_grey_pictures_are_the_luminance_axis_alone():
    fourier = param.Fourier(unit_range(1))
    np.testing.assert_allclose(fourier.colour_matrix(1), [[1 / np.sqrt(3)]], rtol=1e-6)
    np.testing.assert_array_equal(
        param.Fourier(unit_range(1), decorrelate=False).colour_matrix(1), [[1.0]]
    )
    assert not np.array_equal(fourier.colour_matrix(3), np.eye(3))
    plain = param.Fourier(unit_range(), decorrelate=False)
    np.testing.assert_array_equal(plain.colour_matrix(3), np.eye(3))


def test_input_ranges_match_keras_preprocess_input():
    unit = np.random.default_rng(3).random((2, 4, 4, 3)).astype(np.float32)
    for name, module in (
        ("vgg16", keras.applications.vgg16),
        ("resnet50v2", keras.applications.resnet_v2),
        ("xception", keras.applications.xception),
        ("densenet121", keras.applications.densenet),
        ("efficientnetb0", keras.applications.efficientnet),
        ("convnext_tiny", keras.applications.convnext),
    ):
        mode = input_range.application_mode(name)
        model_range = input_range.InputRange.from_mode(mode, 3)
        expected = numpy(module.preprocess_input(unit * 255.0))
        np.testing.assert_allclose(
            numpy(model_range.to_model(unit)), expected, rtol=1e-5, atol=1e-3, err_msg=name
        )
        np.testing.assert_allclose(model_range.to_unit(expected), unit, atol=1e-5)


def test_range_clips_and_measures_how_far_outside():
    model_range = input_range.InputRange.from_bounds(-1.0, 1.0, 1)
    images = np.array([[[[-1.5], [0.0], [1.2]]]], np.float32)
    np.testing.assert_array_equal(model_range.clip(images), [[[[-1.0], [0.0], [1.0]]]])
    assert model_range.outside(images) == pytest.approx(0.25)
    assert model_range.outside(model_range.clip(images)) == 0.0


def small_model(first_layer=None, channels=3):
    image = keras.Input((8, 8, channels))
    x = first_layer(image) if first_layer is not None else image
    return keras.Model(image, keras.layers.Conv2D(2, 3, name="conv")(x))


def test_resolve_reads_setting_family_demo_and_leading_rescaling():
    rescaled = small_model(keras.layers.Rescaling(1 / 127.5, offset=-1.0))
    found = input_range.resolve(rescaled, Settings.create())
    np.testing.assert_allclose([found.low, found.high], [[0, 0, 0], [255, 255, 255]], atol=1e-4)
    unit = input_range.resolve(small_model(keras.layers.Rescaling(1 / 255.0)), Settings.create())
    np.testing.assert_allclose(unit.high, [255, 255, 255], rtol=1e-6)
    given = input_range.resolve(rescaled, Settings.create(input_range=(-2, 3)))
    assert given.bounds() == (-2.0, 3.0)
    named = small_model()
    named.keras_filters_source = "ResNet50V2"
    assert input_range.resolve(named, Settings.create()).bounds() == (-1.0, 1.0)
    named.keras_filters_source = "demo"
    assert input_range.resolve(named, Settings.create()).bounds() == (0.0, 1.0)


def test_resolve_without_a_clue_asks_for_input_range():
    with pytest.raises(errors.UsageError, match=r"set input_range=\(low, high\)"):
        input_range.resolve(small_model(), Settings.create())


def test_caffe_family_on_a_grey_model_is_refused():
    grey = small_model(channels=1)
    grey.keras_filters_source = "vgg16"
    with pytest.raises(errors.UsageError, match="needs 3"):
        input_range.resolve(grey, Settings.create())


def test_input_range_setting_is_validated():
    assert Settings.create(input_range=(0, 255)).input_range == (0.0, 255.0)
    for bad in [(1, 0), (1,), (0, float("inf"))]:
        with pytest.raises(errors.UsageError, match="input_range="):
            Settings.create(input_range=bad)


def test_record_round_trip():
    caffe = input_range.InputRange.from_mode("caffe", 3, "vgg16")
    back = input_range.InputRange.from_record(caffe.to_record())
    unit = np.random.default_rng(4).random((1, 2, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(numpy(back.to_model(unit)), numpy(caffe.to_model(unit)))
    assert input_range.InputRange.from_record(None) is None


def test_fourier_octaves_run_through_the_renderer():
    import keras_filters

    result = keras_filters.visualize_filters(
        "demo",
        "conv2",
        [0, 1],
        parameterization="fourier",
        optimizer="adam",
        step_size=0.1,
        num_steps=3,
        image_size=40,
        num_upscalings=2,
        upscale_factor=1.25,
        progress=False,
    )
    # Optimized at 25 and 32 px, then upscaled to 40 px: band-limited, still in [0, 1].
    assert result.inputs.shape == (2, 40, 40, 3)
    assert result.loss_history.shape == (6, 2)
    assert 0.0 <= result.inputs.min() and result.inputs.max() <= 1.0
    assert np.all(np.isfinite(result.losses)) and not result.failed.any()
