"""The random transforms and the resampling: each does what it says on a known image, is
differentiable inside the backend's compiled step, and fuses without changing the picture."""

import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import command_environment, small_cnn
from keras import ops

from keras_filters import backends, errors, settings
from keras_filters.model import extractor
from keras_filters.optvis import objectives, param, render, resample, transforms, update


def numpy(tensor) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(tensor))


def known_image(height=9, width=9, channels=2, batch=1, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, height, width, channels)).astype(np.float32)


def smooth_image(size=32, channels=3) -> np.ndarray:
    """Low-frequency waves, where bilinear interpolation is close to exact."""
    rows, columns = np.mgrid[0:size, 0:size] / size
    waves = [np.sin(2 * np.pi * (rows + 0.5 * c)) * np.cos(np.pi * columns) for c in range(3)]
    return np.stack(waves[:channels], axis=-1)[None].astype(np.float32)


def compiled_gradient(function, images, draws, static_shapes=False, weights=None):
    """d sum(weights · function(images, draws)) / d images, from the backend's compiled step.

    The backend compiles the gradient as the ascent step does (tf.function with a tape, or
    jax.jit of value_and_grad), with `function` in place of the parameterization and the
    transforms, and fixed random weights (or `weights`) so that every output pixel counts
    differently. `static_shapes` traces for the images' own shape, as the Fourier
    parameterization's step is.
    """
    identity = keras.Sequential(
        [keras.Input((None, None, images.shape[-1])), keras.layers.Identity()]
    )
    # The TensorFlow step leaves the spatial size open: the weights' shape comes from a run.
    output_shape = numpy(function(images, np.asarray(draws, np.float32))).shape[1:]
    if weights is None:
        weights = np.random.default_rng(1).random(output_shape).astype(np.float32)

    def image_losses(call_model, params, targets, draws):
        losses = ops.sum(call_model(function(params, draws)) * weights, axis=(1, 2, 3))
        return losses, losses

    def apply_update(params, state, losses, gradients, step_size):
        return gradients, state, losses, ops.isfinite(losses)

    step = backends.current().compile_step(
        identity,
        image_losses,
        apply_update,
        example_args=(images, ()),
        static_shapes=static_shapes,
    )
    gradients, _, _, _ = step(
        ops.convert_to_tensor(images),
        (),
        ops.zeros((len(images),), "int32"),
        ops.convert_to_tensor(np.float32(1.0)),
        ops.convert_to_tensor(np.asarray(draws, np.float32)),
    )
    return numpy(gradients)


# Each transform on a known image.


def test_jitter_moves_the_content_by_whole_pixels():
    image = known_image()
    jitter = transforms.Jitter(2)
    draws = np.array([[0.99, 0.0]], np.float32)  # +2 rows (down), -2 columns (left).
    np.testing.assert_array_equal(numpy(jitter.shifts(draws)), [[2.0, -2.0]])
    moved = numpy(jitter(image, draws))
    np.testing.assert_allclose(moved[0, 2:, :-2], image[0, :-2, 2:], atol=1e-6)


def test_shift_moves_by_a_fraction_of_the_size_even_between_pixels():
    image = known_image(16, 16)
    shift = transforms.Shift(0.125)  # Up to 2 px of 16.
    draws = np.array([[1.0, 0.0]], np.float32)  # +2 rows (down), -2 columns (left).
    np.testing.assert_allclose(numpy(shift.shifts(draws, 16)), [[2.0, -2.0]])
    moved = numpy(shift(image, draws))
    np.testing.assert_allclose(moved[0, 2:, :-2], image[0, :-2, 2:], atol=1e-5)
    # A draw of 0.625 moves a quarter of the largest shift: half a pixel at 16 px, between
    # pixels, so each value is the mean of two neighbours.
    half = numpy(shift(image, np.array([[0.625, 0.5]], np.float32)))
    np.testing.assert_allclose(half[0, 1:-1], (image[0, 1:-1] + image[0, :-2]) / 2, atol=1e-5)
    # The same fraction at twice the size moves twice the pixels.
    np.testing.assert_allclose(numpy(shift.shifts(draws, 32)), [[4.0, -4.0]])


def test_rotate_by_90_degrees_equals_rot90():
    image = known_image()
    rotate = transforms.RandomRotate(90.0)
    counter_clockwise = numpy(rotate(image, np.array([[1.0]], np.float32)))
    np.testing.assert_allclose(counter_clockwise[0], np.rot90(image[0], 1), atol=1e-4)
    clockwise = numpy(rotate(image, np.array([[0.0]], np.float32)))
    np.testing.assert_allclose(clockwise[0], np.rot90(image[0], -1), atol=1e-4)


def test_scale_by_two_halves_the_slope_of_a_ramp_about_the_centre():
    ramp = np.tile(np.arange(16, dtype=np.float32)[None, :, None], (16, 1, 1))[None]
    scale = transforms.RandomScale(0.5, 2.0)
    zoomed = numpy(scale(ramp, np.array([[1.0]], np.float32)))  # Factor 2.
    interior = zoomed[0, 4:12, 4:12, 0]
    np.testing.assert_allclose(np.diff(interior, axis=1), 0.5, atol=1e-5)
    np.testing.assert_allclose(interior.mean(), 7.5, atol=1e-5)


@pytest.mark.parametrize("mode", transforms.PAD_MODES)
def test_pad_matches_numpy(mode):
    image = known_image()
    padded = numpy(transforms.Pad(3, mode)(image, None))
    np.testing.assert_allclose(padded[0], np.pad(image[0], ((3, 3), (3, 3), (0, 0)), mode))


@pytest.mark.parametrize(
    "transform, draw",
    [
        (transforms.Jitter(3), 0.5),
        (transforms.Shift(0.2), 0.5),
        (transforms.RandomScale(0.5, 1.5), 0.5),
        (transforms.RandomRotate(30.0), 0.5),
        (transforms.Compose(transforms.from_specs(transforms.STANDARD)), 0.5),
    ],
    ids=repr,
)
def test_the_middle_draws_give_the_identity(transform, draw):
    image = known_image(16, 16)
    draws = np.full((1, transform.num_draws), draw, np.float32)
    np.testing.assert_allclose(numpy(transform(image, draws)), image, atol=1e-5)


@pytest.mark.parametrize(
    "transform",
    [
        transforms.Pad(2),
        transforms.Jitter(2),
        transforms.Shift(0.1),
        transforms.RandomScale(0.8, 1.2),
        transforms.RandomRotate(20.0),
        transforms.Compose(transforms.from_specs(transforms.STANDARD)),
    ],
    ids=repr,
)
def test_each_transform_is_differentiable_in_the_compiled_step(transform):
    image = known_image(16, 16, 3, batch=2)
    draws = np.random.default_rng(3).random((2, transform.num_draws)).astype(np.float32)
    gradient = compiled_gradient(transform, image, draws)
    assert gradient.shape == image.shape
    assert np.all(np.isfinite(gradient))
    assert np.all(np.abs(gradient).sum(axis=(1, 2, 3)) > 0)


def test_downsample_is_differentiable_in_the_compiled_step():
    image = known_image(24, 20, 2)
    weights = np.random.default_rng(2).random((12, 10, 2)).astype(np.float32)
    gradient = compiled_gradient(
        lambda x, d: resample.downsample(x, 2, 0.35), image, [[]], True, weights
    )
    # The downsampling is rows · image · columnsᵀ per channel, so the gradient of
    # sum(weights · it) is rowsᵀ · weights · columns.
    rows = resample.downsample_matrix(24, 2, 0.35)
    columns = resample.downsample_matrix(20, 2, 0.35)
    expected = np.einsum("ki,klc,lj->ijc", rows, weights, columns)
    np.testing.assert_allclose(gradient[0], expected, atol=1e-5)


# Compose: fusion and the centre crop.


class CountingAffine:
    """Stands in for `resample.affine`, counting its calls."""

    def __init__(self):
        self.calls = 0
        self.affine = resample.affine

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.affine(*args, **kwargs)


def test_fusion_resamples_once_and_matches_the_transforms_one_by_one(monkeypatch):
    image = smooth_image(32)
    steps = [transforms.Jitter(3), transforms.RandomScale(0.8, 1.2), transforms.RandomRotate(20.0)]
    composed = transforms.Compose(steps)
    draws = np.array([[0.9, 0.2, 0.85, 0.95]], np.float32)  # (+3, -2) px, zoom 1.14, 18°.
    one_by_one = image
    start = 0
    for step in steps:
        one_by_one = step(one_by_one, draws[:, start : start + step.num_draws])
        start += step.num_draws
    counting = CountingAffine()
    monkeypatch.setattr(resample, "affine", counting)
    fused = numpy(composed(image, draws))
    assert counting.calls == 1
    # Inside the part that no border reached, the two differ only by interpolation error.
    difference = np.abs(fused - numpy(one_by_one))[0, 8:-8, 8:-8]
    assert difference.max() < 0.02
    assert difference.max() > 0  # Not a tautology: one by one resamples three times.


def test_fused_whole_pixel_jitters_add_up_exactly():
    image = known_image(12, 12)
    composed = transforms.Compose([transforms.Jitter(2), transforms.Jitter(3)])
    draws = np.array([[0.99, 0.5, 0.0, 0.99]], np.float32)  # (+2, 0) then (-3, +3).
    moved = numpy(composed(image, draws))
    np.testing.assert_allclose(moved[0, :-1, 3:], image[0, 1:, :-3], atol=1e-6)


def test_standard_list_resamples_once(monkeypatch):
    counting = CountingAffine()
    monkeypatch.setattr(resample, "affine", counting)
    composed = transforms.Compose(transforms.from_specs(transforms.STANDARD))
    composed(known_image(16, 16), np.full((1, composed.num_draws), 0.3, np.float32))
    assert counting.calls == 1


def test_compose_crops_the_padding_back_off():
    image = known_image(10, 10)
    composed = transforms.Compose([transforms.Pad(4), transforms.Jitter(4)])
    draws = np.array([[0.85, 0.3]], np.float32)  # (+3, -2): the reflection enters.
    moved = numpy(composed(image, draws))
    assert moved.shape == image.shape
    padded = np.pad(image[0], ((4, 4), (4, 4), (0, 0)), "reflect")
    expected = np.roll(padded, (3, -2), axis=(0, 1))[4:-4, 4:-4]
    np.testing.assert_allclose(moved[0], expected, atol=1e-6)
    standard = transforms.Compose(transforms.from_specs(transforms.STANDARD))
    assert standard.padding == 12
    image = known_image(16, 16)
    assert numpy(standard(image, np.full((1, 6), 0.2, np.float32))).shape == image.shape


def test_compose_takes_a_compose_and_gives_each_transform_its_own_draws():
    first, second = transforms.Jitter(1), transforms.RandomRotate(90.0)
    composed = transforms.Compose([transforms.Compose([first]), second])
    assert composed.transforms == (first, second) and composed.num_draws == 3
    image = known_image()
    draws = np.array([[0.99, 0.5, 0.0]], np.float32)
    by_hand = numpy(second(first(image, draws[:, :2]), draws[:, 2:]))
    np.testing.assert_allclose(numpy(composed(image, draws)), by_hand, atol=1e-4)


# Draws: per (seed, key, step), whatever the batch.


def test_draws_depend_on_seed_key_and_step_only():
    together = transforms.random_draws(0, [3, 5], 7, 6)
    alone = transforms.random_draws(0, [5], 7, 6)
    np.testing.assert_array_equal(together[1], alone[0])
    assert not np.array_equal(transforms.random_draws(0, [5], 8, 6), alone)
    assert not np.array_equal(transforms.random_draws(1, [5], 7, 6), alone)
    assert together.dtype == np.float32 and np.all((together >= 0) & (together < 1))


def test_an_image_is_transformed_the_same_in_any_batch():
    composed = transforms.Compose(transforms.from_specs(transforms.STANDARD))
    images = known_image(20, 20, 3, batch=3)
    keys = [4, 9, 2]
    together = numpy(composed(images, transforms.random_draws(0, keys, 5, composed.num_draws)))
    for position, key in enumerate(keys):
        draws = transforms.random_draws(0, [key], 5, composed.num_draws)
        alone = numpy(composed(images[position : position + 1], draws))
        np.testing.assert_allclose(together[position], alone[0], atol=1e-6)


# The settings' text.


def test_from_specs_builds_the_standard_list():
    built = transforms.from_specs(transforms.STANDARD)
    assert [type(transform) for transform in built] == [
        transforms.Pad,
        transforms.Jitter,
        transforms.RandomScale,
        transforms.RandomRotate,
        transforms.Jitter,
    ]
    pad, jitter, scale, rotate, last = built
    assert (pad.pixels, jitter.pixels, last.pixels) == (12, 8, 4)
    assert (scale.low, scale.high, rotate.degrees) == (0.9, 1.1, 10.0)
    assert transforms.from_specs([" scale( 1 , 2 ) "])[0].high == 2.0
    assert transforms.from_specs(()) == ()


@pytest.mark.parametrize(
    "spec, problem",
    [
        ("jiter(8)", "names no transform"),
        ("pad 12", "is not of the form name(numbers)"),
        ("pad(1.5)", "needs whole pixels ≥ 0 for pad"),
        ("jitter(-2)", "needs whole pixels ≥ 0 for jitter"),
        ("scale(0.9)", "gives 1 numbers where scale takes 2"),
        ("scale(1.1, 0.9)", "needs 0 < low ≤ high"),
        ("rotate()", "gives 0 numbers where rotate takes 1"),
        ("rotate(ten)", "not a number"),
        ("rotate(inf)", "not finite"),
        ("rotate(-5)", "needs degrees ≥ 0"),
        ("shift(1.5)", "needs a fraction of the size in [0, 1)"),
    ],
)
def test_a_bad_spec_is_named_with_the_valid_forms(spec, problem):
    with pytest.raises(errors.UsageError) as raised:
        transforms.from_specs(["pad(12)", spec])
    message = str(raised.value)
    assert f"transform {spec!r} in transforms=" in message
    assert problem in message
    assert (
        "pad(pixels), jitter(pixels), shift(fraction), scale(low, high), rotate(degrees)" in message
    )
    assert "\n" not in message


def test_settings_check_the_transforms_and_default_to_none():
    assert settings.Settings.create().transforms == ()
    standard = settings.Settings.create(transforms=list(transforms.STANDARD))
    assert standard.transforms == transforms.STANDARD
    with pytest.raises(errors.UsageError, match=r"transform 'spin\(3\)' in transforms="):
        settings.Settings.create(transforms=("pad(12)", "spin(3)"))
    with pytest.raises(errors.UsageError, match="transforms=5 has the wrong type"):
        settings.Settings.create(transforms=5)
    with pytest.raises(errors.UsageError, match=r"'pad\(12\)' .* \(12 px\); pad by at most 11"):
        settings.Settings.create(transforms=transforms.STANDARD, image_size=12)
    # The first scale of a multi-scale schedule is the smallest image: 26 / 2 = 13 px is enough.
    settings.Settings.create(
        transforms=transforms.STANDARD, image_size=26, num_upscalings=1, upscale_factor=2.0
    )
    with pytest.raises(errors.UsageError, match=r"smallest image holds \(12 px\)"):
        settings.Settings.create(
            transforms=transforms.STANDARD, image_size=25, num_upscalings=1, upscale_factor=2.0
        )


# Downsampling.


def waves(frequency: float, size: int = 64, phase: float = 0.3) -> np.ndarray:
    """cos(2π · frequency · column + phase), `frequency` in cycles per pixel; (1, size, size, 1)."""
    columns = np.arange(size, dtype=np.float64)
    row = np.cos(2 * np.pi * frequency * columns + phase)
    return np.tile(row[None, :], (size, 1))[None, ..., None].astype(np.float32)


def test_downsample_passes_a_low_frequency():
    # 0.1 cycles per output pixel: input column 2k + 0.5 is output column k's centre.
    shrunk = numpy(resample.downsample(waves(0.05), 2))
    expected = np.cos(2 * np.pi * 0.05 * (2 * np.arange(32) + 0.5) + 0.3)
    interior = shrunk[0, 10:-10, 10:-10, 0]
    np.testing.assert_allclose(interior, np.broadcast_to(expected[10:-10], (12, 12)), atol=0.01)


@pytest.mark.parametrize("cutoff, frequency", [(0.5, 0.375), (0.35, 0.25), (0.25, 0.2)])
def test_downsample_removes_what_is_above_the_cutoff(cutoff, frequency):
    # `frequency` in cycles per input pixel; at factor 2 that is twice as many per output pixel,
    # above the cutoff. Without the filter 0.375 would alias to 0.25 cycles per output pixel.
    shrunk = numpy(resample.downsample(waves(frequency), 2, cutoff))
    assert np.abs(shrunk[0, 10:-10, 10:-10]).max() < 0.03
    assert np.abs(numpy(waves(frequency))[0, ::2, ::2]).max() > 0.5  # Plain decimation keeps it.


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_downsample_equals_the_box_mean_on_a_constant_and_on_a_ramp(factor):
    size = 16 * factor
    constant = np.full((1, size, size, 2), 0.7, np.float32)
    box_mean = constant.reshape(1, 16, factor, 16, factor, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(numpy(resample.downsample(constant, factor)), box_mean, atol=1e-6)
    # A ramp keeps its value at each output pixel's centre: the block's mean.
    ramp = np.tile(np.arange(size, dtype=np.float32)[None, :, None], (size, 1, 1))[None]
    box_mean = ramp.reshape(1, 16, factor, 16, factor, 1).mean(axis=(2, 4))
    shrunk = numpy(resample.downsample(ramp, factor))
    np.testing.assert_allclose(shrunk[0, :, 5:-5], box_mean[0, :, 5:-5], atol=1e-3)


def filtered_and_decimated(images: np.ndarray, factor: int, cutoff: float) -> np.ndarray:
    """`downsample` by its definition, in NumPy: reflect the borders, correlate each axis with
    the taps, keep every `factor`-th position."""
    taps = resample.lanczos_taps(factor, cutoff).astype(np.float64)
    border = -resample.first_tap(factor)
    pad = ((0, 0), (border, border), (border, border), (0, 0))
    values = np.pad(images.astype(np.float64), pad, "reflect")
    for axis in (1, 2):
        moved = np.moveaxis(values, axis, -1)
        length = moved.shape[-1] - len(taps) + 1
        windows = np.stack([moved[..., tap : tap + length] for tap in range(len(taps))], axis=-1)
        values = np.moveaxis((windows @ taps)[..., ::factor], -1, axis)
    return values


@pytest.mark.parametrize("factor, channels", [(2, 3), (3, 1), (4, 2)])
def test_downsample_is_the_reflected_windowed_sinc_taken_every_factor_pixels(factor, channels):
    images = np.random.default_rng(4).random((2, 12 * factor, 10 * factor, channels), np.float32)
    shrunk = numpy(resample.downsample(images, factor, 0.35))
    assert shrunk.shape == (2, 12, 10, channels)
    np.testing.assert_allclose(shrunk, filtered_and_decimated(images, factor, 0.35), atol=1e-5)


def test_downsample_matrix_rows_sum_to_one_and_reflect_at_the_borders():
    matrix = resample.downsample_matrix(40, 2, 0.35)
    assert matrix.shape == (20, 40)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
    taps = resample.lanczos_taps(2, 0.35)
    # Output pixel 10 reads input pixels 20 − 9 … 20 + 10, all inside.
    np.testing.assert_array_equal(matrix[10, 11:31], taps)
    assert not matrix[10, :11].any() and not matrix[10, 31:].any()
    # Output pixel 0 reads −9 … 10: pixel −1 is pixel 1 reflected, so pixel 1 gets two taps.
    assert matrix[0, 0] == pytest.approx(taps[9])
    assert matrix[0, 1] == pytest.approx(taps[8] + taps[10])


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="oneDNN kernels are TensorFlow's"
)
def test_downsample_runs_compiled_on_tensorflows_eigen_kernels(tmp_path):
    # TensorFlow's Eigen kernels (its default on AMD processors) refused the strided depthwise
    # convolution this downsampling once used, when the compiled step ran; with oneDNN off the
    # compiled downsampling must run and give the same values.
    images = np.random.default_rng(5).random((2, 32, 32, 3), np.float32)
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "expected.npy", numpy(resample.downsample(images, 2, 0.35)))
    program = (
        "import numpy as np, tensorflow as tf\n"
        "from keras_filters.optvis import resample\n"
        f"folder = {str(tmp_path)!r}\n"
        "images = np.load(folder + '/images.npy')\n"
        "shrink = tf.function(lambda x: resample.downsample(x, 2, 0.35))\n"
        "difference = np.abs(shrink(images).numpy() - np.load(folder + '/expected.npy')).max()\n"
        "print(difference < 1e-5)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        env=command_environment(TF_ENABLE_ONEDNN_OPTS="0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1:] == ["True"]


def test_downsample_takes_20_taps_at_factor_2_and_refuses_bad_arguments():
    assert len(resample.lanczos_taps(2, 0.35)) == 20
    assert resample.lanczos_taps(3).sum() == pytest.approx(1.0)
    image = known_image(8, 8)
    assert resample.downsample(image, 1) is image
    with pytest.raises(ValueError, match="cutoff=0.6"):
        resample.downsample(image, 2, 0.6)
    with pytest.raises(ValueError, match="factor=1.5"):
        resample.downsample(image, 1.5)


def test_affine_refuses_an_unknown_fill_mode():
    with pytest.raises(ValueError, match="'mirror'; choose one of: reflect, nearest"):
        resample.affine(known_image(), np.eye(3, dtype=np.float32)[None], "mirror")


def warp_draws(count: int, seed: int = 5) -> np.ndarray:
    """(count, 8) affine transforms that reach far outside the picture: turns up to ±1 rad,
    zooms 0.4–1.6 and shifts up to ±12 px."""
    rng = np.random.default_rng(seed)
    angle, zoom = rng.uniform(-1, 1, count), rng.uniform(0.4, 1.6, count)
    shift = rng.uniform(-12, 12, (count, 2))
    cosine, sine, zeros = np.cos(angle) / zoom, np.sin(angle) / zoom, np.zeros(count)
    entries = [cosine, -sine, shift[:, 0], sine, cosine, shift[:, 1], zeros, zeros]
    return np.stack(entries, axis=1).astype(np.float32)


# keras' JAX backend wraps differently from TensorFlow's image op; the gathers follow the op.
GATHER_MODES = [
    mode
    for mode in resample.FILL_MODES
    if not (mode == "wrap" and keras.backend.backend() == "jax")
]


@pytest.mark.parametrize("fill_mode", GATHER_MODES)
def test_the_gathered_warp_gives_the_image_ops_pixels(fill_mode):
    images = known_image(7, 9, 2, batch=6)
    transform = warp_draws(6)
    expected = ops.image.affine_transform(
        images, transform, interpolation="bilinear", fill_mode=fill_mode, fill_value=0.0
    )
    gathered = resample.affine_by_gather(
        ops.convert_to_tensor(images), ops.convert_to_tensor(transform), fill_mode
    )
    np.testing.assert_allclose(numpy(gathered), numpy(expected), atol=2e-6)


def test_the_gathered_warps_gradient_is_exact():
    """The warp is linear, y = W x: the compiled gradient of sum(weights · y) must be Wᵀ weights,
    with W read column by column off the warps of one-pixel images."""
    height, width = 5, 6
    transform = warp_draws(1, seed=8)

    def warp(images, draws):
        count = ops.shape(images)[0]
        return resample.affine_by_gather(
            images, ops.tile(ops.convert_to_tensor(transform), (count, 1)), "reflect"
        )

    basis = np.eye(height * width, dtype=np.float32).reshape(-1, height, width, 1)
    warp_matrix = numpy(warp(ops.convert_to_tensor(basis), None)).reshape(len(basis), -1).T
    image = known_image(height, width, 1, seed=2)
    gradient = compiled_gradient(warp, image, np.zeros((1, 0), np.float32))
    # compiled_gradient's weights, as it draws them from the output's shape.
    weights = np.random.default_rng(1).random((height, width, 1)).astype(np.float32)
    np.testing.assert_allclose(
        gradient.reshape(-1), warp_matrix.T @ weights.reshape(-1), rtol=1e-5, atol=1e-6
    )
    # A turn and zoom, not the identity, whose check would say nothing.
    assert not np.allclose(warp_matrix, np.eye(height * width))


def test_the_renderers_transforms_have_the_exact_gradient():
    """A turn, a zoom and a sub-pixel shift through the renderer's own `Compose`: the compiled
    gradient of sum(weights · views) must be Wᵀ weights, W read off the views of one-pixel
    images. TensorFlow's image op would give its approximate gradient (the inverse warp), so on
    TensorFlow the warps are gathers."""
    renderer = small_renderer("adam", ("shift(0.2)", "scale(0.8, 1.2)", "rotate(30)"))
    assert resample.warps_by_gather() == (keras.backend.backend() == "tensorflow")
    size = 7
    draws = np.array([[0.9, 0.15, 0.8, 0.95]], np.float32)
    basis = np.eye(size * size, dtype=np.float32).reshape(-1, size, size, 1)
    views = renderer.transforms(ops.convert_to_tensor(basis), np.repeat(draws, len(basis), 0))
    warp_matrix = numpy(views).reshape(len(basis), -1).T
    image = known_image(size, size, 1, seed=3)
    gradient = compiled_gradient(renderer.transforms, image, draws)
    weights = np.random.default_rng(1).random((size, size, 1)).astype(np.float32)
    np.testing.assert_allclose(
        gradient.reshape(-1), warp_matrix.T @ weights.reshape(-1), rtol=1e-5, atol=1e-6
    )
    # Neither the identity nor a whole-pixel shift, where the image op's gradient is exact too.
    assert not np.allclose(warp_matrix, np.round(warp_matrix))


def test_a_step_compiled_with_xla_matches_the_same_step_without():
    """jit_compile on TensorFlow: the image op has no XLA kernel; the renderer warps by gathers
    with or without XLA, so the run ends where the same run without XLA does."""
    specs = ("pad(3)", "jitter(3)", "rotate(10)")

    def renderer(jit_compile):
        return small_renderer("normalized_gradient", specs, jit_compile=jit_compile)

    compiled = renderer(True)
    assert resample.warps_by_gather() == (keras.backend.backend() == "tensorflow")
    with_xla = compiled.run_chunk([0, 1, 2], [0, 1, 2])
    without = renderer(False).run_chunk([0, 1, 2], [0, 1, 2])
    np.testing.assert_allclose(with_xla.inputs, without.inputs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(with_xla.loss_history, without.loss_history, rtol=1e-4)


# Through the render loop.


def small_renderer(optimizer: str, specs, jit_compile: bool = False):
    """A 4-step run on conftest's small CNN at 20 px with the given update and transforms."""
    return render.Renderer(
        extractor.build_feature_extractor(small_cnn(), "conv_b"),
        objectives.channel("conv_b"),
        param.Pixel(low=-1.0, high=1.0),
        update.make_update(optimizer, "l2", 1e-5),
        transforms=transforms.from_specs(specs),
        seed=0,
        sizes=[20],
        num_steps=4,
        step_size=0.3,
        channels=3,
        jit_compile=jit_compile,
    )


@pytest.mark.parametrize("optimizer", ["normalized_gradient", "adam"])
def test_results_do_not_depend_on_the_batch_size_with_the_standard_transforms(optimizer):
    renderer = small_renderer(optimizer, transforms.STANDARD)
    together = renderer.run_chunk([0, 1, 2, 3], [0, 1, 2, 3])
    first, second = renderer.run_chunk([0, 1], [0, 1]), renderer.run_chunk([2, 3], [2, 3])
    apart = np.concatenate([first.inputs, second.inputs])
    np.testing.assert_allclose(together.inputs, apart, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        together.losses, np.concatenate([first.losses, second.losses]), rtol=1e-5, atol=1e-6
    )
    assert together.inputs.shape == (4, 20, 20, 3)
    # The transforms are on: the run differs from one without them.
    plain = small_renderer(optimizer, ()).run_chunk([0, 1, 2, 3], [0, 1, 2, 3])
    assert not np.allclose(plain.inputs, together.inputs, atol=1e-3)
