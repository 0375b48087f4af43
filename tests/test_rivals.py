"""Rival restarts (`optvis.rivals`): a filter whose picture another filter's picture beats starts
again from that picture."""

import json

import keras
import numpy as np
import pytest

import keras_filters
from keras_filters import errors, pipeline
from keras_filters.model import extractor
from keras_filters.model.input_range import InputRange
from keras_filters.optvis import objectives, param, rivals
from keras_filters.settings import Settings
from tests.stand_in_models import linear_model


def test_strongest_rivals_names_the_best_other_picture_only_where_it_wins():
    # Rows are pictures, columns the pictures' own targets.
    values = np.array([[5.0, 1.0, 0.0], [6.0, 2.0, 1.0], [0.0, 2.0, 3.0]])
    # Target 0: picture 1 (6) beats its own (5); target 1: picture 2 ties (2 = 2), no win.
    np.testing.assert_array_equal(rivals.strongest_rivals(values), [1, -1, -1])


def test_scores_that_are_not_finite_neither_lose_nor_beat():
    # Picture 0's own score is NaN: it does not restart, though picture 1 scores 1 on it.
    values = np.array([[np.nan, 9.0], [1.0, 2.0]])
    np.testing.assert_array_equal(rivals.strongest_rivals(values), [-1, 0])
    values[0, 1] = np.nan  # Nor does a NaN score beat picture 1's own 2.
    np.testing.assert_array_equal(rivals.strongest_rivals(values), [-1, -1])


def test_objective_matrix_is_each_filters_mean_activation_on_each_picture():
    kernel = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    model = linear_model(kernel)
    features = extractor.build_feature_extractor(model, "conv")
    objective, _ = objectives.batch_plan([objectives.channel("conv", i) for i in range(4)])
    # More pictures than one judging pass takes, so the batches join in order.
    pictures = np.random.default_rng(1).random((rivals.JUDGE_BATCH + 3, 5, 5, 3), np.float32)
    values = rivals.objective_matrix(features, objective, pictures, [3, 0, 2])
    by_hand = (pictures @ kernel).mean(axis=(1, 2))[:, [3, 0, 2]]
    np.testing.assert_allclose(values, by_hand, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels, canvas_factor", [(3, 1), (1, 1)])
def test_fourier_from_inputs_inverts_to_inputs_without_a_canvas(channels, canvas_factor):
    model_range = InputRange.from_bounds(-1.0, 1.0, channels)
    fourier = param.Fourier(model_range, canvas_factor=canvas_factor, init_std=0.5)
    params = fourier.initial([0, 1], seed=0, height=9, width=9, channels=channels)
    pictures = fourier.to_inputs(params)
    np.testing.assert_allclose(
        fourier.to_inputs(fourier.from_inputs(pictures)), pictures, atol=2e-5
    )


def test_fourier_from_inputs_keeps_a_smooth_picture_through_the_canvas():
    model_range = InputRange.from_bounds(0.0, 255.0, 3)
    fourier = param.Fourier(model_range, canvas_factor=2, downsample_cutoff=0.35)
    rows, cols = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    wave = 0.5 + 0.3 * np.sin(2 * np.pi * (rows + 2 * cols) / 16)  # 0.14 cycles per pixel.
    picture = np.stack([wave, 1 - wave, np.full_like(wave, 0.5)], axis=-1)[None] * 255.0
    back = fourier.to_inputs(fourier.from_inputs(picture.astype(np.float32)))
    error = np.abs(back - picture) / 255.0  # The wave is ±0.3.
    # Within 1.5% inside; up to 3.5% at the border, which the antialiasing reflects.
    assert error[:, 2:-2, 2:-2].max() < 0.015 and error.max() < 0.035
    # The pixel parameterization's parameters are the pictures themselves.
    np.testing.assert_array_equal(param.Pixel().from_inputs(picture), picture.astype(np.float32))


def one_by_one_plan(kernel, **settings):
    """A plan for the filters of a 1x1 linear convolution on 4x4 RGB pictures."""
    values = dict(
        layer="conv",
        image_size=4,
        num_steps=5,
        step_size=0.5,
        progress=False,
        max_filters=kernel.shape[1],
        **settings,
    )
    return pipeline.plan_layer(linear_model(kernel), Settings.create(values))


def test_a_restarted_filter_starts_from_its_rival_and_then_beats_that_picture():
    # Filter 1 reads red and a little green; picture 0 (pure red, for filter 0) excites it ten
    # times more than its own dim picture, so filter 1 restarts from picture 0.
    kernel = np.array([[1.0, 1.0], [0.0, 0.2], [0.0, 0.0]], np.float32)
    plan = one_by_one_plan(kernel)
    pictures = np.zeros((2, 4, 4, 3), np.float32)
    pictures[0, ..., 0], pictures[1, ..., 0] = 1.0, 0.1
    outcome = rivals.restart_rivals(
        plan.renderer,
        [0, 1],
        [0, 1],
        pictures,
        np.array([1.0, 0.1], np.float32),
        rounds=1,
        rival_steps=3,
        batch_size=2,
    )
    np.testing.assert_array_equal(outcome.restarted_from, [-1, 0])
    np.testing.assert_array_equal(outcome.inputs[0], pictures[0])  # The winner is kept.
    new = outcome.inputs[1]
    # Three normalized steps along (1, 0.2, 0) from pure red: filter 1 now prefers its own.
    value = (new @ kernel[:, 1]).mean()
    assert value > 1.0 + 1.0
    # Equal steps (a uniform gradient, normalized): the loss, taken before the last step,
    # is two thirds of the way from picture 0's 1.0.
    np.testing.assert_allclose(outcome.losses[1], 1.0 + (value - 1.0) * 2 / 3, rtol=1e-4)
    assert outcome.rounds == 1
    # Those steps raised red too, so the new picture now beats picture 0 on filter 0: the
    # one round allowed leaves filter 0 beaten by filter 1's picture, and says so.
    np.testing.assert_array_equal(outcome.beaten_by, [1, -1])



def test_a_round_starts_every_restart_from_the_pictures_it_found_whatever_the_chunks():
    # Filter 1 loses to picture 0, and filter 2 to picture 1: a loser's rival is itself a
    # loser. With one filter per chunk, filter 1's restart finishes before filter 2's starts;
    # filter 2 must still start from picture 1 as the round found it.
    kernel = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]], np.float32)
    plan = one_by_one_plan(kernel)
    pictures = np.zeros((3, 4, 4, 3), np.float32)
    pictures[0, ..., 0], pictures[1, ..., 1], pictures[2, ..., 1] = 3.0, 2.0, 1.0
    outcomes = [
        rivals.restart_rivals(
            plan.renderer,
            [0, 1, 2],
            [0, 1, 2],
            pictures,
            np.array([3.0, 2.0, 1.0], np.float32),
            rounds=1,
            rival_steps=2,
            batch_size=batch_size,
        )
        for batch_size in (1, 3)
    ]
    np.testing.assert_array_equal(outcomes[0].restarted_from, [-1, 0, 1])
    np.testing.assert_allclose(outcomes[0].inputs, outcomes[1].inputs, rtol=1e-6, atol=1e-6)

def proportional_filters_model():
    """Filter 1 is filter 0 at half strength: whichever picture excites one more excites both
    more, so exactly one of the two loses to the other's picture."""
    kernel = np.array([[1.0, 0.5, -1.0], [0.5, 0.25, 1.0], [-0.5, -0.25, 0.0]], np.float32)
    image = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(3, 1, use_bias=False, activation="relu", name="conv")
    model = keras.Model(image, conv(image))
    conv.set_weights([kernel.reshape(1, 1, 3, 3)])
    return model


RUN = dict(
    parameterization="fourier",
    input_range=(0, 1),
    deprocess="picture",
    image_size=8,
    num_steps=8,
    step_size=0.2,
    optimizer="adam",
    transforms=("jitter(1)",),
    progress=False,
)


def test_one_of_two_proportional_filters_restarts_whatever_the_batch_size():
    model = proportional_filters_model()
    results = [
        keras_filters.visualize_filters(
            model, "conv", [0, 1, 2], rival_rounds=1, batch_size=batch_size, **RUN
        )
        for batch_size in (1, 3)
    ]
    first, second = results
    assert sorted(first.restarted_from[:2].tolist()) == [-1, 0] or sorted(
        first.restarted_from[:2].tolist()
    ) == [-1, 1]
    np.testing.assert_array_equal(first.restarted_from, second.restarted_from)
    # JAX's CPU kernels already differ by 1e-4 between batch sizes in the ascent, and
    # TensorFlow's oneDNN kernels on an AMD processor by 4e-5; Adam's first steps from a restart
    # (fresh moments) magnify that in the restarted picture (to 3e-4 there). A restart from
    # another picture differs by tenths.
    tolerance = 2e-3 if keras.backend.backend() == "tensorflow" else 2e-2
    np.testing.assert_allclose(first.inputs, second.inputs, rtol=tolerance, atol=tolerance)
    # Without the restarts, the same run keeps the ascent's pictures.
    plain = keras_filters.visualize_filters(model, "conv", [0, 1, 2], batch_size=3, **RUN)
    np.testing.assert_array_equal(plain.restarted_from, [-1, -1, -1])
    loser = int(np.flatnonzero(first.restarted_from >= 0)[0])
    assert not np.allclose(first.inputs[loser], plain.inputs[loser])


def test_run_json_says_which_filters_restarted_and_from_which(tmp_path):
    from keras_filters.job import run as job

    path = str(tmp_path / "proportional.keras")
    proportional_filters_model().save(path)
    settings = dict(RUN, model=path, layer="conv", rival_rounds=1, max_filters=3)
    record = job.run(str(tmp_path / "out"), settings)
    restarted = {entry["index"]: entry["restarted_from"] for entry in record["filters"]}
    assert sorted(restarted.items())[2] == (2, None)
    assert {restarted[0], restarted[1]} in ({None, 1}, {None, 0})
    assert all("beaten_by" in entry for entry in record["filters"])
    # Without rival_rounds the record keeps its former fields.
    plain = job.run(str(tmp_path / "plain"), dict(settings, rival_rounds=0))
    assert "restarted_from" not in plain["filters"][0]


def test_rival_rounds_with_a_batch_coupling_objective_is_refused():
    model = proportional_filters_model()
    wanted = [objectives.channel("conv", 0) + objectives.diversity("conv")] * 2
    with pytest.raises(errors.UsageError, match=r"rival_rounds=1 restarts single images"):
        keras_filters.optimize(model, wanted, rival_rounds=1, **RUN)


def test_rival_rounds_with_shards_is_refused():
    with pytest.raises(errors.UsageError, match=r"rival_rounds=2 judges every picture"):
        Settings.create(dict(rival_rounds=2, num_shards=2))


def test_a_signal_during_the_restarts_keeps_the_ascent_and_resuming_finishes_them(
    tmp_path, monkeypatch
):
    import os
    import signal

    from keras_filters.job import interruption, resume
    from keras_filters.job import run as job
    from keras_filters.optvis import render

    path = str(tmp_path / "proportional.keras")
    proportional_filters_model().save(path)
    settings = dict(RUN, model=path, layer="conv", rival_rounds=1, max_filters=3)
    whole = job.run(str(tmp_path / "whole"), settings)

    restart_chunk = render.Renderer.restart_chunk

    def interrupted_restart(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Caught by the run: it stops at the next step.
        return restart_chunk(self, *args, **kwargs)

    monkeypatch.setattr(render.Renderer, "restart_chunk", interrupted_restart)
    outdir = tmp_path / "stopped"
    with pytest.raises(interruption.RunInterrupted):
        job.run(str(outdir), settings)
    partial = json.loads((outdir / "run.json").read_text())
    assert partial["complete"] is False and partial["interrupted"] == "SIGINT"
    # The ascent's pictures are shown and kept; no filter counts as restarted.
    assert all(entry["restarted_from"] is None for entry in partial["filters"])
    assert (outdir / resume.PROGRESS_FOLDER).is_dir()

    monkeypatch.setattr(render.Renderer, "restart_chunk", restart_chunk)
    resumed = job.run(str(outdir), settings)
    assert resumed["complete"] is True and not (outdir / resume.PROGRESS_FOLDER).exists()
    assert resumed["filters"] == whole["filters"]
    assert (outdir / "mosaic.png").read_bytes() == (tmp_path / "whole" / "mosaic.png").read_bytes()


def test_each_round_says_how_many_filters_restart(capsys):
    keras_filters.visualize_filters(
        proportional_filters_model(), "conv", [0, 1, 2], rival_rounds=1, **dict(RUN, progress=True)
    )
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == (
        "rival restarts, round 1: restarting 1 filter from another filter's picture, which "
        "excites them more than their own"
    )
