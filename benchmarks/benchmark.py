"""Times keras-filters against the keras.io-style loop on the same filters, in one process.

(a) is `reference.make_reference_loop`: one filter at a time, a batch of one, the filter index a
Python int into a `tf.function` (one trace per filter, as keras.io). (b) is keras-filters' own
pipeline (`pipeline.plan_layer`: all filters of a chunk in one batch, one trace for the run), in one
or more variants (float32 or mixed bfloat16, with or without XLA). Both start from the same
seeded noise and do the same math, so their final losses are compared as a check. The report
also holds the FLOP count of the step (see `flops.py`), the measured matrix-product rate of
this machine in float32 and bfloat16, peak resident memory per phase and the load average.
"""

import dataclasses
import os
import time
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from benchmarks import flops, report
from benchmarks.measure import Measurement, machine_description, matmul_rate, measure
from keras_filters import errors, pipeline
from keras_filters import settings as settings_lib
from keras_filters.image import deprocess
from keras_filters.model import extractor
from keras_filters.optvis import render
from keras_filters.settings import Settings

# Each variant of (b): (mixed_precision, jit_compile).
VARIANTS = {
    "float32": (False, False),
    "mixed_bfloat16": (True, False),
    "float32_xla": (False, True),
    "mixed_bfloat16_xla": (True, True),
}
REFERENCE_NAME = report.REFERENCE_NAME
# The matrix-product rates measured: the float32 one is the bar for the step's rate.
DTYPES = ("float32", "bfloat16")

WARMUP_NOTE = (
    "Warm-up excluded from both: (a) one step of the first filter through a separate loop "
    "(the timed loop still traces once per filter, as keras.io does); (b) one step of one "
    "full chunk through the run's step (its one trace)"
)


@dataclasses.dataclass
class Timing:
    """What one timed run produced.

    Attributes:
        name: "reference (a)" or the variant of (b).
        measurement: Its time and memory.
        losses: float (N,): each filter's final loss.
        batch_size: Images per step.
        traces: How many times the timed run's step was traced (for (b), its warm-up
            included).
    """

    name: str
    measurement: Measurement
    losses: np.ndarray
    batch_size: int
    traces: int


# What the keras.io loop (a) does: settings with other values it cannot run, or would ignore.
REFERENCE_SETTINGS = {
    "num_upscalings": 0,
    "parameterization": "pixel",
    "canvas_factor": 1,
    "optimizer": "normalized_gradient",
    "schedule": "constant",
    "transforms": (),
    "total_variation_weight": 0.0,
    "l2_weight": 0.0,
    "blur_weight": 0.0,
    "relu_warmup_steps": 0,
    "linear_output": False,
}


def check_reference(settings: Settings) -> None:
    """Checks that the keras.io loop (a) can run `settings` as keras-filters' pipeline does.

    Raises:
        UsageError: For the first setting it cannot follow (a multi-scale schedule, a Fourier
            image, Adam, transforms, …), naming its value and the one (a) runs.
    """
    for name, value in REFERENCE_SETTINGS.items():
        if getattr(settings, name) != value:
            raise errors.UsageError(
                f"{name}={settings_lib.show(getattr(settings, name))}: the reference loop "
                f"(keras.io) runs only {name}={settings_lib.show(value)}; use that, or "
                "--noreference"
            )
    if settings.deprocess == "picture":
        raise errors.UsageError(
            "deprocess='picture': the reference loop (keras.io) deprocesses with 'standard' or "
            "'dlwp2'; use one of those, or --noreference"
        )


def time_reference(
    model, settings: Settings, filter_indices: Sequence[int], initial_images: np.ndarray
) -> Timing:
    """Times (a): the keras.io-style loop over `filter_indices`, deprocessing included.

    Raises:
        UsageError: For settings the keras.io loop cannot follow (see `check_reference`).
    """
    check_reference(settings)
    layer = extractor.find_layer(model, settings.layer).name
    feature_extractor = extractor.build_feature_extractor(model, layer)
    loop_settings = dict(
        layer=layer,
        border=settings.border,
        gradient_normalization=settings.gradient_normalization,
        gradient_epsilon=settings.gradient_epsilon,
    )
    learning_rate = float(settings.step_size)
    if keras.backend.backend() == "jax":
        make_loop = jax_tools().make_reference_loop
    else:
        from benchmarks import reference  # TensorFlow's, imported only where it runs.

        make_loop = reference.make_reference_loop
    warmup = make_loop(feature_extractor, **loop_settings)
    warmup(int(filter_indices[0]), initial_images[0], 1, learning_rate)

    visualize_filter = make_loop(feature_extractor, **loop_settings)
    losses = []
    with measure() as measurement:
        for filter_index, initial_image in zip(filter_indices, initial_images, strict=True):
            loss, image = visualize_filter(
                int(filter_index), initial_image, settings.num_steps, learning_rate
            )
            deprocess.deprocess_image(
                image,
                style=settings.deprocess,
                scale=settings.deprocess_scale,
                epsilon=settings.deprocess_epsilon,
                crop=settings.crop,
            )
            losses.append(loss)
    return Timing(
        name=REFERENCE_NAME,
        measurement=measurement,
        losses=np.asarray(losses, dtype=np.float64),
        batch_size=1,
        traces=reference_traces(visualize_filter),
    )


def jax_tools():
    """The JAX pieces of the benchmark (imported only where Keras runs on JAX)."""
    from benchmarks import jax_tools as tools

    return tools


def traces(step) -> int | None:
    """How many times the run's step was traced: TensorFlow counts them; JAX does not say."""
    counter = getattr(step, "experimental_get_tracing_count", None)
    return counter() if counter else None


def reference_traces(visualize_filter) -> int:
    """Traces (TensorFlow) or compilations (JAX) of the keras.io-style loop's step."""
    if hasattr(visualize_filter, "compilations"):
        return visualize_filter.compilations()
    return visualize_filter.gradient_ascent_step.experimental_get_tracing_count()


def warm_up_pipeline(plan: pipeline.Plan) -> None:
    """One step on one full chunk: traces the run's step and creates its kernels."""
    renderer = plan.renderer
    chunk = plan.keys[: plan.batch_size]
    params = ops.convert_to_tensor(renderer.initial_params(chunk))
    _, _, losses, _ = renderer.step(
        params,
        renderer.update.init_state(params),
        ops.convert_to_tensor(np.asarray([plan.targets[key] for key in chunk], np.int32)),
        ops.convert_to_tensor(np.float32(renderer.step_size)),
        ops.zeros((len(chunk), renderer.transforms.num_draws)),
    )
    ops.convert_to_numpy(losses)  # JAX runs asynchronously: wait for the step.


def time_pipeline(name: str, model, settings: Settings) -> Timing:
    """Times (b): keras-filters' pipeline on the settings' filters, deprocessing included."""
    plan = pipeline.plan_layer(model, settings)
    warm_up_pipeline(plan)
    with measure() as measurement:
        result = pipeline.collect(
            plan.iterate_chunks(), plan.layer_name, settings, plan.input_range
        )
    return Timing(
        name=name,
        measurement=measurement,
        losses=np.asarray(result.losses, dtype=np.float64),
        batch_size=plan.batch_size,
        traces=traces(plan.renderer.step),
    )


def sweep_batch_sizes(
    model, settings: Settings, batch_sizes: Sequence[int], num_steps: int, step_flops: int
) -> list[dict]:
    """Throughput of the step of (b) at each batch size, `num_steps` timed steps after one.

    Returns:
        One dict per batch size: batch_size, seconds_per_image_step, image_steps_per_second,
        gflops_per_second.
    """
    plan = pipeline.plan_layer(model, settings.replace(max_filters=0, filter_indices=()))
    renderer = plan.renderer
    rows = []
    for batch_size in batch_sizes:
        keys = [key % plan.num_filters for key in range(batch_size)]
        params = ops.convert_to_tensor(renderer.initial_params(keys))
        state = renderer.update.init_state(params)
        targets = ops.convert_to_tensor(np.asarray(keys, np.int32))
        step_size = ops.convert_to_tensor(np.float32(renderer.step_size))
        draws = ops.zeros((batch_size, renderer.transforms.num_draws))
        params, state, losses, _ = renderer.step(params, state, targets, step_size, draws)
        ops.convert_to_numpy(losses)
        started = time.perf_counter()
        for _ in range(num_steps):
            params, state, losses, _ = renderer.step(params, state, targets, step_size, draws)
            ops.convert_to_numpy(losses)  # The pipeline reads the losses every step too.
        per_image_step = (time.perf_counter() - started) / (num_steps * batch_size)
        rows.append(
            {
                "batch_size": batch_size,
                "seconds_per_image_step": per_image_step,
                "image_steps_per_second": 1.0 / per_image_step,
                "gflops_per_second": step_flops / per_image_step / 1e9,
            }
        )
    return rows


def check_variants(variants: Sequence[str]) -> None:
    """Raises UsageError unless `variants` is a non-empty list of keys of `VARIANTS`."""
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown or not variants:
        raise errors.UsageError(
            f"unknown benchmark variant {unknown[0] if unknown else '(none)'!r}; choose from: "
            + ", ".join(VARIANTS)
        )


def run_benchmark(
    model,
    settings: Settings,
    *,
    variants: Sequence[str] = ("float32", "mixed_bfloat16"),
    run_reference: bool = True,
    batch_sweep: Sequence[int] = (),
    sweep_steps: int = 3,
    matmul_size: int = 2048,
    matmul_repeats: int = 10,
) -> dict:
    """Runs (a) and each variant of (b) on the same filters and reports the figures.

    Args:
        model: A loaded `keras.Model`.
        settings: The settings; `mixed_precision` and `jit_compile` are set by each variant.
        variants: Variants of (b), keys of `VARIANTS`. Defaults to float32 and mixed bfloat16.
        run_reference: Also time (a). Defaults to True.
        batch_sweep: Batch sizes at which to time the float32 step alone. Defaults to none.
        sweep_steps: Timed steps per batch size of the sweep. Defaults to 3.
        matmul_size: Side of the square matrices of the matmul-rate measurement. Defaults to
            2048.
        matmul_repeats: Products timed per dtype before the runs and again after them; the
            best counts. Defaults to 10.

    Returns:
        The report: machine, settings, FLOP count, matmul rates, one row per run, the sweep.

    Raises:
        UsageError: For an unknown variant, or settings the runs cannot use.
    """
    check_variants(variants)
    if run_reference:
        check_reference(settings)
    load_start = os.getloadavg()
    float32_settings = settings.replace(mixed_precision=False, jit_compile=False)
    plan = pipeline.plan_layer(model, float32_settings)
    renderer = plan.renderer
    filter_indices = plan.keys
    optimized = render.optimized_sizes(renderer.sizes)
    per_image_step = flops.step_flops(renderer.extractor, optimized[-1])
    run_total = flops.run_flops(
        renderer.extractor, optimized, renderer.num_steps, len(filter_indices)
    )
    rates_before = {dtype: matmul_rate(dtype, matmul_size, matmul_repeats) for dtype in DTYPES}
    timings = []
    if run_reference:
        timings.append(
            time_reference(model, settings, filter_indices, renderer.initial_params(filter_indices))
        )
    for name in variants:
        mixed_precision, jit_compile = VARIANTS[name]
        variant_settings = settings.replace(
            mixed_precision=mixed_precision, jit_compile=jit_compile
        )
        timings.append(time_pipeline(name, model, variant_settings))
    sweep = (
        sweep_batch_sizes(model, float32_settings, batch_sweep, sweep_steps, per_image_step)
        if batch_sweep
        else []
    )
    # Other jobs on a shared machine slow some products down: the best of both ends counts.
    rates_after = {dtype: matmul_rate(dtype, matmul_size, matmul_repeats) for dtype in DTYPES}
    rates = {dtype: max(rates_before[dtype], rates_after[dtype]) for dtype in DTYPES}
    return {
        "machine": machine_description(),
        "settings": {
            key: getattr(settings, key)
            for key in (
                "model",
                "weights",
                "layer",
                "image_size",
                "num_upscalings",
                "num_steps",
                "step_size",
                "gradient_normalization",
                "border",
                "seed",
                "batch_size",
            )
        },
        "filters": len(filter_indices),
        "warmup": WARMUP_NOTE,
        "flops": {
            "rule": flops.__doc__.split("\n\n")[1].replace("\n", " "),
            "forward_per_image": flops.forward_flops(renderer.extractor, optimized[-1]),
            "step_per_image": per_image_step,
            "run_total": run_total,
        },
        "matmul": {
            "size": matmul_size,
            "repeats": matmul_repeats,
            "gflops_per_second": rates,
            "before_runs": rates_before,
            "after_runs": rates_after,
        },
        "runs": [
            report.run_row(timing, timings, run_total, rates, len(filter_indices))
            for timing in timings
        ],
        "batch_sweep": sweep,
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
    }
