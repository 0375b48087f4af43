"""Speed must not change results: one trace per run, chunking and bfloat16 keep the answers."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT, random_images, small_cnn

from keras_filters import api, benchmark, chunking, flops, layers, noise, precision, reference
from keras_filters import settings as settings_lib

SETTINGS = dict(
    image_size=16,
    num_steps=6,
    step_size=0.5,
    init_low=-1.0,
    init_high=1.0,
    gradient_normalization="l2",
    progress=False,
)


def resolved(**overrides):
    return settings_lib.resolve_settings({**SETTINGS, "layer": "conv_b", **overrides})


def test_step_traces_once_for_a_run_of_several_chunks(cnn):
    # Four filters in chunks of 3 and 1, over two scales (12 and 14 px): one trace in all.
    run = api.plan(cnn, resolved(max_filters=0, batch_size=3, num_upscalings=2, image_size=17))
    assert run.visualizer.sizes == [11, 14, 17] and len(run.filter_indices) == 4
    chunks = list(run.visualizer.iterate_chunks(run.filter_indices, run.batch_size))
    assert [len(chunk.filter_indices) for chunk in chunks] == [3, 1]
    assert run.visualizer.step.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("mixed_precision", [False, True])
def test_results_do_not_depend_on_chunk_size(cnn, mixed_precision):
    results = [
        api.visualize_filters(
            cnn, "conv_b", range(4), batch_size=size, mixed_precision=mixed_precision, **SETTINGS
        )
        for size in (4, 3, 1)
    ]
    for other in results[1:]:
        np.testing.assert_allclose(other.inputs, results[0].inputs, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(other.loss_history, results[0].loss_history, rtol=1e-4)


def test_mixed_precision_copy_computes_in_bfloat16_with_the_same_weights(nested_cnn):
    extractor = layers.build_feature_extractor(nested_cnn, "inner/conv_b")
    copy = precision.mixed_precision_copy(extractor)

    def policies(model):
        return {
            layer.dtype_policy.name
            for layer in model._flatten_layers()
            if layer.weights and not isinstance(layer, keras.Model)
        }

    assert policies(copy) == {"mixed_bfloat16"}  # the nested model's layers included
    assert policies(nested_cnn) == {"float32"}
    assert all(weight.dtype == "float32" for weight in copy.weights)
    for copied, original in zip(copy.get_weights(), extractor.get_weights(), strict=True):
        np.testing.assert_array_equal(copied, original)
    images = random_images(2, 12)
    assert copy(images).dtype == "bfloat16"
    np.testing.assert_allclose(
        np.asarray(copy(images), np.float32), extractor(images), rtol=0.05, atol=0.05
    )


def test_bfloat16_mode_keeps_image_and_loss_in_float32_and_close_to_float32(cnn):
    float32 = api.visualize_filters(cnn, "conv_b", range(4), **SETTINGS)
    run = api.plan(cnn, resolved(filter_indices=(0, 1, 2, 3), mixed_precision=True))
    images = tf.constant(run.visualizer.initial_images([0, 1]))
    new_images, losses, finite = run.visualizer.step(images, tf.constant([0, 1]), tf.constant(0.5))
    assert images.dtype == new_images.dtype == losses.dtype == tf.float32
    assert run.visualizer.feature_extractor.output.dtype == "bfloat16"
    mixed = api.visualize_filters(cnn, "conv_b", range(4), mixed_precision=True, **SETTINGS)
    assert mixed.inputs.dtype == mixed.losses.dtype == mixed.loss_history.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa: the losses agree to about 1%, not to float32 precision.
    np.testing.assert_allclose(mixed.losses, float32.losses, rtol=0.03)
    assert not np.array_equal(mixed.losses, float32.losses)


@pytest.mark.parametrize("normalization", ["l2", "rms"])
def test_reference_loop_retraces_per_filter_and_matches_the_pipeline(cnn, normalization):
    extractor = layers.build_feature_extractor(cnn, "conv_b")
    visualize_filter = reference.make_reference_loop(
        extractor, border=0, gradient_normalization=normalization, gradient_epsilon=1e-5
    )
    starts = noise.initial_images(
        [2, 0, 3], height=16, width=16, channels=3, seed=0, low=-1.0, high=1.0
    )
    pipeline = api.visualize_filters(
        cnn, "conv_b", [2, 0, 3], **{**SETTINGS, "gradient_normalization": normalization}
    )
    for position, filter_index in enumerate([2, 0, 3]):
        loss, image = visualize_filter(filter_index, starts[position], 6, 0.5)
        # keras.io's l2_normalize has no epsilon on the norm: the images agree to about 1e-4.
        np.testing.assert_allclose(image, pipeline.inputs[position], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(loss, pipeline.losses[position], rtol=1e-3)
    # A Python int filter index is part of the trace key: one trace per filter, as keras.io.
    assert visualize_filter.gradient_ascent_step.experimental_get_tracing_count() == 3


def test_forward_flops_count_two_per_multiply_add():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    outputs = keras.layers.Conv2D(5, 1, use_bias=False)(x)
    model = keras.Model(inputs, outputs)
    # 8x8 outputs of 4 filters over 3x3x3 inputs, then 8x8 outputs of 5 filters over 4 inputs.
    expected = 2 * (8 * 8 * 4 * 27 + 8 * 8 * 5 * 4)
    assert flops.forward_flops(model, 8) == expected
    assert flops.step_flops(model, 8) == 2 * expected
    assert flops.run_flops(model, [8, 8], num_steps=3, num_images=2) == 2 * 2 * expected * 3 * 2


def test_auto_batch_size_follows_the_free_memory(cnn, monkeypatch):
    extractor = layers.build_feature_extractor(cnn, "conv_b")
    per_image = chunking.activation_bytes_per_image(extractor, 32)
    monkeypatch.setattr(chunking, "available_memory_bytes", lambda: int(per_image * 25))
    # 40% of 25 images' worth of memory holds 10 images; never more than the filters asked.
    assert chunking.auto_batch_size(extractor, 32, num_filters=100) == 10
    assert chunking.auto_batch_size(extractor, 32, num_filters=4) == 4
    monkeypatch.setattr(chunking, "available_memory_bytes", lambda: 1 << 40)
    assert chunking.auto_batch_size(extractor, 32, num_filters=1000) == chunking.MAX_AUTO_BATCH


def test_compare_losses_is_relative_and_skips_zero_references():
    compared = benchmark.compare_losses(
        np.array([1.1, 2.0, 5.0, np.nan]), np.array([1.0, 2.0, 0.0, 3.0])
    )
    assert compared["compared"] == 2
    assert compared["mean_relative_difference"] == pytest.approx(0.05)
    # Means over the filters finite in both: (1.1 + 2 + 5) / 3 against (1 + 2 + 0) / 3.
    assert compared["relative_difference_of_means"] == pytest.approx(1.7)


def test_benchmark_report_on_a_small_model():
    model = small_cnn()
    settings = resolved(filter_indices=(0, 1, 2), batch_size=2)
    report = benchmark.run_benchmark(
        model,
        settings,
        variants=("float32", "mixed_bfloat16"),
        batch_sweep=(1, 2),
        sweep_steps=1,
        matmul_size=64,
        matmul_repeats=1,
    )
    reference_row, float32_row, mixed_row = report["runs"]
    assert reference_row["traces"] == 3 and reference_row["batch_size"] == 1
    assert float32_row["traces"] == 1 and float32_row["batch_size"] == 2
    # Same math from the same noise; only keras.io's l2_normalize and batching round otherwise.
    assert float32_row["losses_vs_first_run"]["mean_relative_difference"] < 1e-3
    assert mixed_row["losses_vs_first_run"]["mean_relative_difference"] < 0.03
    assert report["flops"]["step_per_image"] == 2 * report["flops"]["forward_per_image"]
    assert report["flops"]["run_total"] == report["flops"]["step_per_image"] * 6 * 3
    for row in report["runs"][1:]:
        assert row["ratio_reference_to_this"] == pytest.approx(
            reference_row["seconds"] / row["seconds"]
        )
        assert row["gflops_per_second"] == pytest.approx(
            report["flops"]["run_total"] / row["seconds"] / 1e9
        )
        assert 0 < row["start_rss_bytes"] <= row["peak_rss_bytes"]
        assert row["peak_rss_scope"] == "this run"  # Linux resets the peak mark per run.
        assert 0 < row["cpu_seconds"]
    assert [row["batch_size"] for row in report["batch_sweep"]] == [1, 2]
    rates = report["matmul"]
    for dtype in ("float32", "bfloat16"):
        assert rates["gflops_per_second"][dtype] == max(
            rates["before_runs"][dtype], rates["after_runs"][dtype]
        )
    table = benchmark.format_table(report)
    assert table.count("\n| ") == 3 + 1 + 2  # header + 3 runs, sweep header + 2 rows
    assert "Warm-up excluded from both" in table


def test_benchmark_refuses_unknown_variant(cnn):
    with pytest.raises(benchmark.errors.UsageError, match="'fp8'.*float32, mixed_bfloat16"):
        benchmark.run_benchmark(cnn, resolved(), variants=("fp8",))


def run_benchmark_script(*args) -> subprocess.CompletedProcess:
    """Runs scripts/benchmark.py as a user would, and returns the finished process."""
    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "benchmark.py"), *args],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_benchmark_script_writes_table_and_json(tmp_path):
    finished = run_benchmark_script(
        "--config=configs/quickstart.py",
        "--config.max_filters=2",
        "--config.num_steps=2",
        "--config.image_size=32",
        "--variants=float32",
        "--matmul_size=64",
        "--matmul_repeats=1",
        f"--outdir={tmp_path}",
    )
    assert finished.returncode == 0, finished.stderr
    report = json.loads((tmp_path / "benchmark.json").read_text())
    assert [row["name"] for row in report["runs"]] == ["reference (a)", "float32"]
    assert report["filters"] == 2 and report["command"].startswith("python ")
    assert (tmp_path / "benchmark.md").read_text() == finished.stdout
    bad = run_benchmark_script("--variants=fp8", f"--outdir={tmp_path / 'bad'}")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "benchmark: error: unknown benchmark variant 'fp8'; choose from: float32, "
        "mixed_bfloat16, float32_xla, mixed_bfloat16_xla"
    ]
    assert not (tmp_path / "bad").exists()
