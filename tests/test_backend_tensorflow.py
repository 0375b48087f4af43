"""The TensorFlow backend traces its step once per run; the benchmark (which counts FLOPs with
TensorFlow's profiler and times the keras.io-style loop) reports what it measured."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT, SMALL_RUN, small_cnn

from benchmarks import benchmark, flops, reference, report
from keras_filters import api, errors, pipeline
from keras_filters.model import extractor
from keras_filters.optvis import param
from keras_filters.settings import Settings

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tests of the TensorFlow backend and of the TensorFlow benchmark",
)

SETTINGS = SMALL_RUN


def resolved(**overrides) -> Settings:
    return Settings.create({**SETTINGS, "layer": "conv_b", **overrides})


def test_step_traces_once_for_a_run_of_several_chunks(cnn):
    # Four filters in chunks of 3 and 1, over two scales (12 and 14 px): one trace in all.
    plan = pipeline.plan_layer(
        cnn, resolved(max_filters=0, batch_size=3, num_upscalings=2, image_size=17)
    )
    assert plan.renderer.sizes == [11, 14, 17] and len(plan.keys) == 4
    chunks = list(plan.iterate_chunks())
    assert [len(chunk.keys) for chunk in chunks] == [3, 1]
    assert plan.renderer.step.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("normalization", ["l2", "rms"])
def test_reference_loop_retraces_per_filter_and_matches_the_pipeline(cnn, normalization):
    features = extractor.build_feature_extractor(cnn, "conv_b")
    visualize_filter = reference.make_reference_loop(
        features,
        layer="conv_b",
        border=0,
        gradient_normalization=normalization,
        gradient_epsilon=1e-5,
    )
    starts = param.Pixel(low=-1.0, high=1.0).initial(
        [2, 0, 3], height=16, width=16, channels=3, seed=0
    )
    batched = api.visualize_filters(
        cnn, "conv_b", [2, 0, 3], **{**SETTINGS, "gradient_normalization": normalization}
    )
    for position, filter_index in enumerate([2, 0, 3]):
        loss, image = visualize_filter(filter_index, starts[position], 6, 0.5)
        # keras.io's l2_normalize has no epsilon on the norm: the images agree to about 1e-4.
        np.testing.assert_allclose(image, batched.inputs[position], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(loss, batched.losses[position], rtol=1e-3)
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


def test_compare_losses_is_relative_and_skips_zero_references():
    compared = report.compare_losses(
        np.array([1.1, 2.0, 5.0, np.nan]), np.array([1.0, 2.0, 0.0, 3.0])
    )
    assert compared["compared"] == 2
    assert compared["mean_relative_difference"] == pytest.approx(0.05)
    # Means over the filters finite in both: (1.1 + 2 + 5) / 3 against (1 + 2 + 0) / 3.
    assert compared["relative_difference_of_means"] == pytest.approx(1.7)


def test_benchmark_report_on_a_small_model():
    model = small_cnn()
    settings = resolved(filter_indices=(0, 1, 2), batch_size=2)
    results = benchmark.run_benchmark(
        model,
        settings,
        variants=("float32", "mixed_bfloat16"),
        batch_sweep=(1, 2),
        sweep_steps=1,
        matmul_size=64,
        matmul_repeats=1,
    )
    reference_row, float32_row, mixed_row = results["runs"]
    assert reference_row["traces"] == 3 and reference_row["batch_size"] == 1
    assert float32_row["traces"] == 1 and float32_row["batch_size"] == 2
    # Same math from the same noise; only keras.io's l2_normalize and batching round otherwise.
    assert float32_row["losses_vs_first_run"]["mean_relative_difference"] < 1e-3
    assert mixed_row["losses_vs_first_run"]["mean_relative_difference"] < 0.03
    assert results["flops"]["step_per_image"] == 2 * results["flops"]["forward_per_image"]
    assert results["flops"]["run_total"] == results["flops"]["step_per_image"] * 6 * 3
    for row in results["runs"][1:]:
        assert row["ratio_reference_to_this"] == pytest.approx(
            reference_row["seconds"] / row["seconds"]
        )
        assert row["gflops_per_second"] == pytest.approx(
            results["flops"]["run_total"] / row["seconds"] / 1e9
        )
        assert 0 < row["start_rss_bytes"] <= row["peak_rss_bytes"]
        assert row["peak_rss_scope"] == "this run"  # Linux resets the peak mark per run.
        assert 0 < row["cpu_seconds"]
    assert [row["batch_size"] for row in results["batch_sweep"]] == [1, 2]
    rates = results["matmul"]
    for dtype in ("float32", "bfloat16"):
        assert rates["gflops_per_second"][dtype] == max(
            rates["before_runs"][dtype], rates["after_runs"][dtype]
        )
    table = report.format_table(results)
    assert table.count("\n| ") == 3 + 1 + 2  # header + 3 runs, sweep header + 2 rows
    assert "Warm-up excluded from both" in table


def test_benchmark_refuses_unknown_variant(cnn):
    with pytest.raises(errors.UsageError, match="'fp8'.*float32, mixed_bfloat16"):
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


@pytest.mark.end_to_end
def test_benchmark_script_writes_table_and_json(tmp_path):
    finished = run_benchmark_script(
        "--config=configs/quickstart_faithful.py",
        "--config.max_filters=2",
        "--config.num_steps=2",
        "--config.image_size=32",
        "--variants=float32",
        "--matmul_size=64",
        "--matmul_repeats=1",
        f"--outdir={tmp_path}",
    )
    assert finished.returncode == 0, finished.stderr
    written = json.loads((tmp_path / "benchmark.json").read_text())
    assert [row["name"] for row in written["runs"]] == ["reference (a)", "float32"]
    assert written["filters"] == 2 and written["command"].startswith("python ")
    assert (tmp_path / "benchmark.md").read_text() == finished.stdout
    bad = run_benchmark_script("--variants=fp8", f"--outdir={tmp_path / 'bad'}")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "benchmark: error: unknown benchmark variant 'fp8'; choose from: float32, "
        "mixed_bfloat16, float32_xla, mixed_bfloat16_xla"
    ]
    assert not (tmp_path / "bad").exists()
