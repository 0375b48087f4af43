"""The quality measures of issue 10 against hand computations, and the evaluate script."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT, command_environment, small_cnn

from keras_filters import quality

SKIMAGE_MISSING = "scikit-image is not installed here (pip install .[quality] or .[test])"

# --- High-frequency fraction.


def test_high_frequency_fraction_of_white_noise_is_the_share_of_high_frequencies():
    # White noise has the same expected power at every frequency of the DFT grid; removing the
    # mean zeroes the DC term only. So the expected fraction is the share of the 64² − 1 non-DC
    # grid frequencies whose radius exceeds 0.25: 3299 / 4095 = 0.8056 (1 − π/16 = 0.8037 in
    # the continuum limit).
    rows = np.fft.fftfreq(64)[:, None]
    expected = (np.hypot(rows, rows.T) > 0.25).sum() / (64 * 64 - 1)
    assert expected == pytest.approx(3299 / 4095)
    noise = np.random.default_rng(8).normal(size=(16, 64, 64, 3))
    fractions = quality.high_frequency_fraction(noise)
    assert fractions.shape == (16,)
    assert fractions.mean() == pytest.approx(expected, abs=0.005)


def test_high_frequency_fraction_of_smooth_flat_and_checker_images():
    rows = np.arange(64)[:, None] + np.zeros((1, 64))
    smooth = np.sin(2 * np.pi * rows / 32.0)[None, :, :, None]  # 1/32 cycle per pixel
    checker = ((-1.0) ** (rows + rows.T))[None, :, :, None]  # 1/2 cycle per pixel on each axis
    flat = np.full((1, 64, 64, 3), 0.7)
    fractions = quality.high_frequency_fraction(np.concatenate([smooth, checker]))
    np.testing.assert_allclose(fractions, [0.0, 1.0], atol=1e-12)
    assert quality.high_frequency_fraction(flat)[0] == 0.0


# --- The measures on a model built for them.


def colour_model() -> keras.Model:
    """A 1×1 conv with ReLU on RGB in [0, 1] (any size), so each filter reads a colour:

    filter 0: relu(r − g − b); filter 1: relu(g − r − b); filter 2: relu(b − 0.5);
    filter 3: relu(0.5·r).
    """
    image = keras.Input((None, None, 3))
    output = keras.layers.Conv2D(4, 1, activation="relu", name="colours")(image)
    model = keras.Model(image, output)
    kernel = np.array(
        [[1.0, -1.0, 0.0, 0.5], [-1.0, 1.0, 0.0, 0.0], [-1.0, -1.0, 1.0, 0.0]], np.float32
    )
    model.get_layer("colours").set_weights(
        [kernel[None, None], np.array([0.0, 0.0, -0.5, 0.0], np.float32)]
    )
    return model


def constant_images(*colours, size: int = 8) -> np.ndarray:
    return np.stack([np.broadcast_to(np.float32(c), (size, size, 3)) for c in colours])


# Image k is filter k's: red, green, black, dark red.
IMAGES = constant_images((1, 0, 0), (0, 1, 0), (0, 0, 0), (0.5, 0, 0))
# Natural crops in the model's space: grey 0.5 and dark red (0.25, 0, 0).
NATURAL = constant_images((0.5, 0.5, 0.5), (0.25, 0, 0))


def test_measures_on_a_model_whose_filters_read_colours():
    scores = quality.score(
        colour_model(), "colours", [0, 1, 2, 3], IMAGES, (0.0, 1.0), natural_images=NATURAL
    )
    per_filter = scores.per_filter
    # Own activations: relu(1) = 1, relu(1) = 1, relu(0 − 0.5) = 0, 0.5·0.5 = 0.25.
    np.testing.assert_allclose(per_filter.own_activation, [1.0, 1.0, 0.0, 0.25])
    # Filter 3 gets 0.5 from red (image 0) > 0.25 from its own; filter 2 gets 0 everywhere.
    np.testing.assert_array_equal(per_filter.selective, [True, True, False, False])
    assert scores.selectivity == 0.5
    assert scores.dead == 1
    # Constant images look the same from every view: ratio 1, and 0 for the dead filter.
    np.testing.assert_allclose(per_filter.robustness, [1.0, 1.0, 0.0, 1.0], atol=1e-6)
    assert scores.robustness == pytest.approx(0.75, abs=1e-6)
    assert scores.high_frequency_fraction == 0.0
    # Best natural crop: filter 0: 0.25 (dark red) → 1 / 0.25 = 4; filter 1: nothing (0) → ∞;
    # filter 2 is dead → 0; filter 3: 0.25 (grey), 0.125 (dark red) → 0.25 / 0.25 = 1.
    np.testing.assert_allclose(per_filter.gain, [4.0, np.inf, 0.0, 1.0])
    assert scores.gain == pytest.approx(2.5)  # The median of 0, 1, 4, ∞.
    assert scores.num_natural_crops == 2
    assert scores.outside_range == 0.0
    assert scores.to_dict()["per_filter"]["selective"] == [True, True, False, False]


def test_inputs_are_clipped_into_the_range_before_scoring():
    bright = IMAGES.copy()
    bright[0] *= 3.0  # Red at 3: filter 0 would read 3 unclipped.
    bright[1, 0, 0] = (-0.5, 1.0, 0.0)  # One pixel 0.5 below the range.
    scores = quality.score(
        colour_model(), "colours", [0, 1, 2, 3], bright, (0.0, 1.0), natural_images=NATURAL
    )
    np.testing.assert_allclose(scores.per_filter.own_activation, [1.0, 1.0, 0.0, 0.25])
    assert scores.outside_range == pytest.approx(2.0)  # (3 − 1) / (1 − 0)
    # In a range of (0, 4) nothing is clipped: filter 0 reads 3, and gain moves with it.
    wide = quality.score(
        colour_model(), "colours", [0, 1, 2, 3], bright, (0.0, 4.0), natural_images=NATURAL
    )
    assert wide.per_filter.own_activation[0] == pytest.approx(3.0)
    assert wide.per_filter.gain[0] == pytest.approx(12.0)
    assert wide.outside_range == pytest.approx(0.5 / 4.0)


def test_robustness_alone_is_scores_robustness_in_any_batch():
    # Textured images, so that views differ from their image; one pixel outside the range.
    images = np.random.default_rng(5).random((4, 12, 12, 3)).astype(np.float32)
    images[0, 0, 0, 0] = 2.0
    model = colour_model()
    scores = quality.score(
        model, "colours", [0, 1, 2, 3], images, (0.0, 1.0), natural_images=NATURAL
    )
    for batch_size in (64, 5, 1):
        robustness = quality.robustness(
            model, "colours", [0, 1, 2, 3], images, (0.0, 1.0), batch_size=batch_size
        )
        np.testing.assert_allclose(robustness, scores.per_filter.robustness, atol=1e-6)
    # Filter 3 alone, with its own seed: the same number.
    alone = quality.robustness(model, "colours", [3], images[3:], (0.0, 1.0))
    assert alone[0] == pytest.approx(scores.per_filter.robustness[3], abs=1e-6)
    # Without a range nothing is clipped: filter 0 reads red at 2 in its own image.
    unclipped = quality.robustness(model, "colours", [0, 1, 2, 3], images, None)
    assert unclipped[0] != pytest.approx(scores.per_filter.robustness[0], abs=1e-6)
    np.testing.assert_allclose(unclipped[1:], scores.per_filter.robustness[1:], atol=1e-6)


def test_a_filter_whose_views_beat_its_own_image_is_capped_at_one():
    # An 8×8 filter that sums the red of the outer ring of an 8×8 image; its image is dim red
    # (0.1) with a bright 6×6 square inside the ring. Own activation: 28 ring pixels × 0.1. Any
    # shift, turn or zoom moves bright red onto the ring, so the views beat the image; the
    # ratio counts at most 1.
    image_input = keras.Input((8, 8, 3))
    model = keras.Model(image_input, keras.layers.Conv2D(1, 8, name="ring")(image_input))
    kernel = np.zeros((8, 8, 3, 1), np.float32)
    kernel[[0, -1], :, 0] = kernel[:, [0, -1], 0] = 1.0
    model.get_layer("ring").set_weights([kernel, np.zeros(1, np.float32)])
    image = np.zeros((1, 8, 8, 3), np.float32)
    image[0, ..., 0] = 0.1
    image[0, 1:7, 1:7, 0] = 1.0
    scores = quality.score(model, "ring", [0], image, (0.0, 1.0), natural_images=NATURAL)
    assert scores.per_filter.own_activation[0] == pytest.approx(2.8, rel=1e-5)
    views = quality.random_views(image, quality.view_draws([0], 16, seed=0))[0]
    ratio = (views[..., 0] * kernel[..., 0, 0]).sum(axis=(1, 2)).mean() / 2.8
    assert ratio > 1.1
    assert scores.per_filter.robustness[0] == 1.0
    assert scores.selectivity == 1.0  # Alone in the set: nothing beats it.


def test_random_views_shift_by_the_drawn_fraction_of_the_size():
    image = np.random.default_rng(1).random((1, 16, 16, 2)).astype(np.float32)
    # Draws 0.5 mean no rotation, zoom 1, no shift; a row draw of 0.75 shifts by
    # (2·0.75 − 1) · 16 / 8 = 1 pixel down.
    draws = np.array([[[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.75, 0.5]]], np.float32)
    views = quality.random_views(image, draws)
    np.testing.assert_allclose(views[0, 0], image[0], atol=1e-5)
    np.testing.assert_allclose(views[0, 1, 1:], image[0, :-1], atol=1e-5)


def test_view_draws_depend_on_the_seed_and_the_filter_only():
    alone = quality.view_draws([5], 16, seed=0)
    together = quality.view_draws([2, 5], 16, seed=0)
    np.testing.assert_array_equal(alone[0], together[1])
    assert not np.array_equal(alone, quality.view_draws([5], 16, seed=1))


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="one image .* per filter: 3 filters"):
        quality.score(colour_model(), "colours", [0, 1, 2], IMAGES, (0.0, 1.0))
    with pytest.raises(ValueError, match=r"filter indices \[4\] are out of range"):
        quality.score(
            colour_model(), "colours", [0, 1, 2, 4], IMAGES, (0.0, 1.0), natural_images=NATURAL
        )
    with pytest.raises(ValueError, match="high > low"):
        quality.clip_to_range(IMAGES, 1.0, 1.0)
    failed = IMAGES.copy()
    failed[1, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"images of filters \[1\] hold NaN or infinite"):
        quality.score(colour_model(), "colours", [0, 1, 2, 3], failed, (0.0, 1.0))


# --- Natural crops and gain, with and without scikit-image.


def hide_skimage(monkeypatch):
    """Makes `import skimage…` fail, as on a machine without scikit-image."""
    for name in ("skimage", "skimage.data", "skimage.color", "skimage.transform", "skimage.util"):
        monkeypatch.setitem(sys.modules, name, None)


def test_without_scikit_image_gain_is_not_available(monkeypatch):
    hide_skimage(monkeypatch)
    assert quality.natural_crops(8, 3, None) is None
    scores = quality.score(colour_model(), "colours", [0, 1, 2, 3], IMAGES, (0.0, 1.0))
    assert scores.gain is None and scores.per_filter.gain is None
    assert scores.num_natural_crops == 0
    assert "n/a (pip install .[quality])" in quality.table_row("colours", scores, None)


# The photos' shapes (height, width) in scikit-image; the crop count follows from them.
PHOTO_SHAPES = {
    "astronaut": (512, 512),
    "chelsea": (300, 451),
    "coffee": (400, 600),
    "hubble_deep_field": (872, 1000),
    "immunohistochemistry": (512, 512),
    "retina": (1411, 1411),
    "rocket": (427, 640),
    "brick": (512, 512),
    "camera": (512, 512),
    "cell": (660, 550),
    "clock": (300, 400),
    "coins": (303, 384),
    "grass": (512, 512),
    "gravel": (512, 512),
    "moon": (512, 512),
}


def expected_crop_count(size: int) -> int:
    count = 0
    for height, width in PHOTO_SHAPES.values():
        for scale in (1, 2):
            factor = scale * size / min(height, width)
            rows, cols = round(height * factor), round(width * factor)
            count += ((rows - size) // (size // 4) + 1) * ((cols - size) // (size // 4) + 1)
    return count


def test_natural_crops_cover_the_photos_at_two_scales():
    pytest.importorskip("skimage", reason=SKIMAGE_MISSING)
    assert set(quality.NATURAL_PHOTOS) == set(PHOTO_SHAPES)
    unit = quality.natural_crops(16, 1, None)
    assert unit.shape == (expected_crop_count(16), 16, 16, 1)
    assert unit.min() >= 0.0 and unit.max() <= 1.0 and unit.std() > 0.1
    # Into a [−1, 1] model: the same crops through the map.
    mapped = quality.natural_crops(16, 1, lambda pictures: 2.0 * pictures - 1.0)
    np.testing.assert_allclose(mapped, 2.0 * unit - 1.0, atol=1e-6)
    colour = quality.natural_crops(16, 3, None)
    assert colour.shape == unit.shape[:3] + (3,)
    # A grey photo (brick, 8th) is repeated into three equal channels.
    first_brick = sum(expected_crop_count_of(name, 16) for name in list(PHOTO_SHAPES)[:7])
    np.testing.assert_array_equal(colour[first_brick, ..., 0], colour[first_brick, ..., 2])


def expected_crop_count_of(name: str, size: int) -> int:
    height, width = PHOTO_SHAPES[name]
    count = 0
    for scale in (1, 2):
        factor = scale * size / min(height, width)
        rows, cols = round(height * factor), round(width * factor)
        count += ((rows - size) // (size // 4) + 1) * ((cols - size) // (size // 4) + 1)
    return count


def test_with_scikit_image_gain_is_a_number_over_the_crops():
    pytest.importorskip("skimage", reason=SKIMAGE_MISSING)
    images = constant_images((1, 0, 0), (0, 1, 0), (0, 0, 0), (0.5, 0, 0), size=32)
    scores = quality.score(colour_model(), "colours", [0, 1, 2, 3], images, (0.0, 1.0))
    assert scores.num_natural_crops == expected_crop_count(32)
    crops = quality.natural_crops(32, 3, None)
    best = quality.activations(colour_model(), "colours", crops, [0, 1, 2, 3]).max(axis=0)
    own = np.array([1.0, 1.0, 0.0, 0.25])
    with np.errstate(divide="ignore"):  # No crop activates filter 1: its gain is ∞.
        expected = np.where(own > 0, own / best, 0.0)
    np.testing.assert_allclose(scores.per_filter.gain, expected, rtol=1e-5)
    assert scores.gain == pytest.approx(np.median(expected), rel=1e-5)


# --- The evaluate script.


def run_evaluate(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "evaluate_quality.py"), *args],
        cwd=REPO_ROOT,
        env=command_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.end_to_end
def test_evaluate_script_scores_four_demo_filters_and_rescores_its_inputs(tmp_path):
    outdir = tmp_path / "quality"
    finished = run_evaluate(
        "--config=configs/quickstart.py",
        "--config.max_filters=4",
        "--config.num_steps=3",
        f"--outdir={outdir}",
    )
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[0].startswith("| layer | selectivity | robustness | hf fraction | gain |")
    assert lines[2].startswith("| demo conv3 | ")
    assert sorted(os.listdir(outdir)) == ["inputs.npz", "mosaic.png", "quality.json", "quality.md"]
    record = json.loads((outdir / "quality.json").read_text())
    assert record["layer"] == "conv3" and record["filter_indices"] == [0, 1, 2, 3]
    assert record["input_range"] == {
        "low": [0.0] * 3,
        "high": [1.0] * 3,
        "from": "the demo model's [0, 1]",
    }
    assert record["seconds_per_filter"] > 0
    scores = record["scores"]
    assert scores["num_filters"] == 4 and 0 <= scores["selectivity"] <= 1
    assert len(scores["per_filter"]["robustness"]) == 4
    assert (scores["gain"] is None) == (record["gain_note"] is not None)
    # Rescoring the saved inputs gives the same numbers, without a time.
    again = run_evaluate(
        "--config=configs/quickstart.py",
        f"--inputs={outdir / 'inputs.npz'}",
        f"--outdir={tmp_path / 'rescored'}",
    )
    assert again.returncode == 0, again.stderr
    rescored = json.loads((tmp_path / "rescored" / "quality.json").read_text())
    assert rescored["seconds_per_filter"] is None
    for name in ("selectivity", "robustness", "high_frequency_fraction", "gain", "dead"):
        assert rescored["scores"][name] == pytest.approx(scores[name])


def test_evaluate_script_warns_of_an_override_without_effect_before_it_runs(tmp_path):
    finished = run_evaluate(
        "--config=configs/quickstart.py",
        "--config.gradient_normalization=l2",  # The quickstart ascends with Adam.
        "--config.layer=no_such_layer",  # Ends it once the model is loaded.
        f"--outdir={tmp_path}",
    )
    assert finished.returncode == 2
    warning, error = finished.stderr.strip().splitlines()
    assert warning == (
        "evaluate_quality: warning: --config.gradient_normalization='l2' has no effect with "
        "--config.optimizer='adam': it applies only with "
        "--config.optimizer='normalized_gradient'"
    )
    assert error.startswith("evaluate_quality: error:") and "no_such_layer" in error


@pytest.mark.end_to_end
def test_evaluate_script_reports_a_bad_setting_in_one_line(tmp_path):
    finished = run_evaluate(
        "--config=configs/quickstart.py", "--config.layer=no_such_layer", f"--outdir={tmp_path}"
    )
    assert finished.returncode == 2
    message = finished.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert message.startswith("evaluate_quality: error:") and "no_such_layer" in message
    # A model file that does not say its input range: scores need one.
    no_range = run_evaluate(
        "--config=quickstart",
        "--config.model=benchmarks/models/grey64.keras",
        "--config.layer=block3_out",
        f"--outdir={tmp_path}",
    )
    assert no_range.returncode == 2, no_range.stderr
    assert len(no_range.stderr.strip().splitlines()) == 1, no_range.stderr
    assert "--config.input_range=(low, high)" in no_range.stderr
    other_layer = tmp_path / "conv1.npz"
    np.savez(other_layer, inputs=np.zeros((1, 64, 64, 3)), filter_indices=[0], layer="conv1")
    wrong = run_evaluate("--config=quickstart", f"--inputs={other_layer}", f"--outdir={tmp_path}")
    assert wrong.returncode == 2, wrong.stderr
    assert wrong.stderr.strip().endswith("set --config.layer='conv1'"), wrong.stderr
    missing = run_evaluate("--config=quickstart", f"--inputs={tmp_path / 'none.npz'}")
    assert missing.returncode == 2 and "none.npz" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def save_inputs(path, inputs, filter_indices, layer="conv"):
    np.savez(path, inputs=inputs, filter_indices=filter_indices, layer=np.array(layer))
    return str(path)


@pytest.mark.parametrize(
    "inputs, filter_indices, expected",
    [
        (np.zeros((2, 8, 8, 3)), np.array([0.0, 1.0]), "type float64; expected one integer"),
        (np.zeros((2, 8, 8, 3)), np.array([[0, 1]]), "shape (1, 2)"),
        (np.zeros((3, 8, 8, 3)), np.array([0, 1]), "expected one integer per image: 3"),
        (np.zeros((2, 8, 8, 3)), np.array([1, 1]), "filter index 1 more than once"),
        (np.zeros((8, 8, 3)), np.array([0]), "inputs of shape (8, 8, 3)"),
        (np.zeros((0, 8, 8, 3)), np.zeros(0, int), "at least one"),
        (np.zeros((1, 8, 6, 3)), np.array([0]), "expected square images"),
        (
            np.stack([np.zeros((8, 8, 3)), np.full((8, 8, 3), np.nan)]),
            np.array([3, 5]),
            "NaN or infinite values in the images of filters [5]; expected finite images",
        ),
    ],
)
def test_saved_inputs_that_are_not_one_image_per_filter_are_refused(
    tmp_path, inputs, filter_indices, expected
):
    from keras_filters import errors
    from keras_filters.tools import evaluate_quality

    path = save_inputs(tmp_path / "inputs.npz", inputs, filter_indices)
    with pytest.raises(errors.UsageError, match="inputs.npz") as raised:
        evaluate_quality.read_inputs(path, "conv")
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    "name, write, what",
    [
        ("notes.txt", lambda path: path.write_text("filter 3 looks like fur\n"), ""),
        (
            "inputs.npy",
            lambda path: np.save(path, np.zeros((2, 8, 8, 3))),
            " (it is one .npy array)",
        ),
        ("empty.npz", lambda path: path.write_bytes(b""), ""),
    ],
    ids=["text", "npy", "empty"],
)
def test_a_file_that_is_not_an_npz_of_images_is_refused_in_its_words(tmp_path, name, write, what):
    from keras_filters import errors
    from keras_filters.tools import evaluate_quality

    path = tmp_path / name
    write(path)
    with pytest.raises(errors.UsageError) as raised:
        evaluate_quality.read_inputs(str(path), "conv")
    assert str(raised.value) == (
        f"inputs={str(path)!r} is not an .npz file of images{what}; expected an inputs.npz of "
        "this script, with arrays 'inputs', 'filter_indices' and 'layer'"
    )


def test_saved_inputs_that_the_model_cannot_take_are_refused():
    from keras_filters import errors
    from keras_filters.tools import evaluate_quality

    model = small_cnn()
    grey = np.zeros((2, 16, 16, 1), np.float32)
    with pytest.raises(errors.UsageError, match="16x16 images with 1 channels; model"):
        evaluate_quality.check_inputs_fit(model, "conv_b", grey, "grey.npz")
    tiny = np.zeros((2, 2, 2, 3), np.float32)
    with pytest.raises(errors.UsageError, match="2x2 images, too small for layer 'conv_b'"):
        evaluate_quality.check_inputs_fit(model, "conv_b", tiny, "tiny.npz")
    evaluate_quality.check_inputs_fit(model, "conv_b", np.zeros((2, 16, 16, 3)), "fits.npz")


def test_evaluate_names_the_filters_whose_optimization_failed(tmp_path):
    from keras_filters import settings as settings_lib
    from keras_filters.tools import evaluate_quality

    # Noise up to 1e38 overflows the first convolution: every loss is infinite from step one.
    settings = settings_lib.Settings.create(
        model="demo",
        layer="conv1",
        image_size=16,
        max_filters=2,
        num_steps=2,
        progress=False,
        init_low=0.0,
        init_high=1e38,
    )
    evaluation = evaluate_quality.evaluate(settings, str(tmp_path))
    assert evaluation.failed_filters == (0, 1)
    record = json.loads((tmp_path / evaluate_quality.JSON_FILE).read_text())
    assert record["failed_filters"] == [0, 1]


@pytest.mark.parametrize(
    "changes", [dict(panel_layers=("conv1", "conv2")), dict(num_shards=2, shard_index=1)]
)
def test_evaluate_refuses_panels_and_shards_before_writing(tmp_path, changes):
    from keras_filters import errors
    from keras_filters import settings as settings_lib
    from keras_filters.tools import evaluate_quality

    settings = settings_lib.Settings.create(model="demo", layer="conv3", **changes)
    with pytest.raises(errors.UsageError, match="leave out panel_layers and num_shards"):
        evaluate_quality.evaluate(settings, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
