"""Times keras-filters against the keras.io-style loop on the same filters, in one process.

(a) is `reference.make_reference_loop`: one filter at a time, a batch of one, the filter index a
Python int into a `tf.function` (one trace per filter, as keras.io). (b) is keras-filters' own
pipeline (`api.Visualizer`: all filters of a chunk in one batch, one trace for the run), in one
or more variants (float32 or mixed bfloat16, with or without XLA). Both start from the same
seeded noise and do the same math, so their final losses are compared as a check. The report
also holds the FLOP count of the step (see `flops.py`), the measured matrix-product rate of
this machine in float32 and bfloat16, peak resident memory per phase and the load average.
"""

import contextlib
import dataclasses
import os
import platform
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_filters import api, deprocess, errors, flops, layers, reference, scales

# Each variant of (b): (mixed_precision, jit_compile).
VARIANTS = {
    "float32": (False, False),
    "mixed_bfloat16": (True, False),
    "float32_xla": (False, True),
    "mixed_bfloat16_xla": (True, True),
}
REFERENCE_NAME = "reference (a)"
# The matrix-product rates measured: the float32 one is the bar for the step's rate.
DTYPES = ("float32", "bfloat16")
# Below this, a reference loss counts as zero and is left out of the relative differences.
LOSS_COMPARISON_FLOOR = 1e-6

WARMUP_NOTE = (
    "Warm-up excluded from both: (a) one step of the first filter through a separate loop "
    "(the timed loop still traces once per filter, as keras.io does); (b) one step of one "
    "full chunk through the run's step (its one trace)"
)


@dataclasses.dataclass
class Measurement:
    """Time and memory of one timed part.

    Attributes:
        seconds: Wall time.
        cpu_seconds: CPU time of this process (all its threads); on a machine shared with
            other jobs, cpu_seconds / (seconds · cores) shows the share of the cores it got.
        start_rss_bytes: Resident memory when the part began (what earlier parts left).
        peak_rss_bytes: Peak resident memory during the part; since the process started where
            the kernel's peak mark cannot be reset (see `peak_is_per_part`).
        peak_is_per_part: The peak mark was reset when the part began.
    """

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    start_rss_bytes: int = 0
    peak_rss_bytes: int = 0
    peak_is_per_part: bool = False


@contextlib.contextmanager
def measure():
    """Yields a `Measurement` that is filled in when the block ends."""
    measurement = Measurement(
        start_rss_bytes=memory_bytes("VmRSS"), peak_is_per_part=reset_peak_memory()
    )
    wall, cpu = time.perf_counter(), time.process_time()
    yield measurement
    measurement.seconds = time.perf_counter() - wall
    measurement.cpu_seconds = time.process_time() - cpu
    measurement.peak_rss_bytes = memory_bytes("VmHWM")


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


def reset_peak_memory() -> bool:
    """Resets the kernel's peak-RSS mark (VmHWM) of this process; False where Linux refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def memory_bytes(field: str) -> int:
    """Resident memory of this process from /proc/self/status: "VmRSS" now, "VmHWM" the peak
    since the last reset. Elsewhere, the peak of the whole process (ru_maxrss)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux.


def matmul_rate(dtype: str, size: int, repeats: int) -> float:
    """The best rate, in GFLOP/s, of a `size`×`size` matrix product of `dtype` over `repeats`."""
    generator = tf.random.Generator.from_seed(0)
    left = tf.cast(generator.normal((size, size)), dtype)
    right = tf.cast(generator.normal((size, size)), dtype)
    product = tf.function(tf.linalg.matmul)
    product(left, right).numpy()  # Trace and warm up.
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        product(left, right).numpy()
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best / 1e9


def machine_description() -> dict:
    """The CPU, core count, memory and library versions, for the report."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def time_reference(
    model, settings: dict, filter_indices: Sequence[int], initial_images: np.ndarray
) -> Timing:
    """Times (a): the keras.io-style loop over `filter_indices`, deprocessing included.

    Raises:
        UsageError: For a multi-scale schedule, which the keras.io loop does not have.
    """
    if settings["num_upscalings"]:
        raise errors.UsageError(
            f"num_upscalings={settings['num_upscalings']}: the reference loop runs one scale; "
            "use --config.num_upscalings=0 or --noreference"
        )
    feature_extractor = layers.build_feature_extractor(model, settings["layer"])
    loop_settings = dict(
        border=settings["border"],
        gradient_normalization=settings["gradient_normalization"],
        gradient_epsilon=settings["gradient_epsilon"],
    )
    learning_rate = float(settings["step_size"])
    warmup = reference.make_reference_loop(feature_extractor, **loop_settings)
    warmup(int(filter_indices[0]), initial_images[0], 1, learning_rate)

    visualize_filter = reference.make_reference_loop(feature_extractor, **loop_settings)
    losses = []
    with measure() as measurement:
        for filter_index, initial_image in zip(filter_indices, initial_images, strict=True):
            loss, image = visualize_filter(
                int(filter_index), initial_image, settings["num_steps"], learning_rate
            )
            deprocess.deprocess_image(
                image,
                style=settings["deprocess"],
                scale=settings["deprocess_scale"],
                epsilon=settings["deprocess_epsilon"],
                crop=settings["crop"],
            )
            losses.append(loss)
    return Timing(
        name=REFERENCE_NAME,
        measurement=measurement,
        losses=np.asarray(losses, dtype=np.float64),
        batch_size=1,
        traces=visualize_filter.gradient_ascent_step.experimental_get_tracing_count(),
    )


def warm_up_pipeline(visualizer: api.Visualizer, filter_indices, batch_size: int) -> None:
    """One step on one full chunk: traces the run's step and creates its kernels."""
    chunk = list(filter_indices[:batch_size])
    visualizer.step(
        tf.constant(visualizer.initial_images(chunk)),
        tf.constant(chunk, tf.int32),
        tf.constant(np.float32(visualizer.step_size)),
    )


def time_pipeline(name: str, model, settings: dict) -> Timing:
    """Times (b): keras-filters' pipeline on the settings' filters, deprocessing included."""
    plan = api.plan(model, settings)
    warm_up_pipeline(plan.visualizer, plan.filter_indices, plan.batch_size)
    with measure() as measurement:
        chunks = plan.visualizer.iterate_chunks(plan.filter_indices, plan.batch_size)
        result = api.collect(chunks, plan.visualizer.layer_info.name, settings)
    return Timing(
        name=name,
        measurement=measurement,
        losses=np.asarray(result.losses, dtype=np.float64),
        batch_size=plan.batch_size,
        traces=plan.visualizer.step.experimental_get_tracing_count(),
    )


def sweep_batch_sizes(
    model, settings: dict, batch_sizes: Sequence[int], num_steps: int, step_flops: int
) -> list[dict]:
    """Throughput of the step of (b) at each batch size, `num_steps` timed steps after one.

    Returns:
        One dict per batch size: batch_size, seconds_per_image_step, image_steps_per_second,
        gflops_per_second.
    """
    visualizer = api.build_visualizer(model, settings)
    rows = []
    for batch_size in batch_sizes:
        filter_indices = [index % visualizer.num_filters for index in range(batch_size)]
        images = tf.constant(visualizer.initial_images(filter_indices))
        indices = tf.constant(filter_indices, tf.int32)
        step_size = tf.constant(np.float32(visualizer.step_size))
        images, losses, _ = visualizer.step(images, indices, step_size)
        losses.numpy()
        started = time.perf_counter()
        for _ in range(num_steps):
            images, losses, _ = visualizer.step(images, indices, step_size)
            losses.numpy()  # The pipeline reads the losses every step too.
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


def compare_losses(losses: np.ndarray, reference_losses: np.ndarray) -> dict:
    """How far `losses` are from `reference_losses`, filter by filter.

    Returns:
        mean_relative_difference: mean of |loss − ref| / |ref| over filters whose reference is
            finite and above `LOSS_COMPARISON_FLOOR` in size; relative_difference_of_means:
            |mean − mean_ref| / |mean_ref| over the filters finite in both; compared: how many
            filters entered the first figure.
    """
    finite = np.isfinite(losses) & np.isfinite(reference_losses)
    usable = finite & (np.abs(reference_losses) > LOSS_COMPARISON_FLOOR)
    relative = np.abs(losses[usable] - reference_losses[usable]) / np.abs(reference_losses[usable])
    mean_reference = reference_losses[finite].mean() if finite.any() else float("nan")
    return {
        "mean_relative_difference": float(relative.mean()) if usable.any() else None,
        "relative_difference_of_means": (
            float(abs(losses[finite].mean() - mean_reference) / abs(mean_reference))
            if finite.any() and mean_reference != 0
            else None
        ),
        "compared": int(usable.sum()),
    }


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
    settings: dict,
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
        settings: Resolved settings (every key of configs/base.py); `mixed_precision` and
            `jit_compile` are set by each variant.
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
    load_start = os.getloadavg()
    float32_settings = dict(settings, mixed_precision=False, jit_compile=False)
    plan = api.plan(model, float32_settings)
    visualizer = plan.visualizer
    filter_indices = plan.filter_indices
    optimized = scales.optimized_sizes(visualizer.sizes)
    per_image_step = flops.step_flops(visualizer.feature_extractor, optimized[-1])
    run_total = flops.run_flops(
        visualizer.feature_extractor, optimized, visualizer.num_steps, len(filter_indices)
    )
    rates_before = {dtype: matmul_rate(dtype, matmul_size, matmul_repeats) for dtype in DTYPES}
    timings = []
    if run_reference:
        timings.append(
            time_reference(
                model, settings, filter_indices, visualizer.initial_images(filter_indices)
            )
        )
    for name in variants:
        mixed_precision, jit_compile = VARIANTS[name]
        variant_settings = dict(settings, mixed_precision=mixed_precision, jit_compile=jit_compile)
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
            key: settings[key]
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
            "forward_per_image": flops.forward_flops(visualizer.feature_extractor, optimized[-1]),
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
            _run_row(timing, timings, run_total, rates, len(filter_indices)) for timing in timings
        ],
        "batch_sweep": sweep,
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
    }


def _run_row(timing: Timing, timings: list, run_total: int, rates: dict, num_filters: int) -> dict:
    """One row of the report: speed, rate, memory and the loss check of one timed run."""
    first = timings[0]
    measurement = timing.measurement
    seconds = measurement.seconds
    gflops = run_total / seconds / 1e9
    own_rate = rates["bfloat16" if "bfloat16" in timing.name else "float32"]
    row = {
        "name": timing.name,
        "batch_size": timing.batch_size,
        "traces": timing.traces,
        "seconds": seconds,
        "seconds_per_filter": seconds / num_filters,
        "images_per_second": num_filters / seconds,
        "gflops_per_second": gflops,
        "fraction_of_float32_matmul": gflops / rates["float32"],
        "fraction_of_own_precision_matmul": gflops / own_rate,
        "cpu_seconds": measurement.cpu_seconds,
        "cpu_share": measurement.cpu_seconds / (seconds * (os.cpu_count() or 1)),
        "start_rss_bytes": measurement.start_rss_bytes,
        "peak_rss_bytes": measurement.peak_rss_bytes,
        "peak_rss_scope": "this run" if measurement.peak_is_per_part else "process",
        "mean_final_loss": float(np.nanmean(timing.losses)),
        "ratio_reference_to_this": None,
        "losses_vs_first_run": None,
    }
    if timing is first:
        return row
    if first.name == REFERENCE_NAME:
        row["ratio_reference_to_this"] = first.measurement.seconds / seconds
    row["losses_vs_first_run"] = compare_losses(timing.losses, first.losses)
    return row


def _percent(value) -> str:
    return "" if value is None else f"{value:.2%}"


def format_table(report: dict) -> str:
    """The report as a Markdown table, with the settings, rates and warm-up rule below it."""
    lines = [
        "| run | batch | traces | seconds | s/filter | images/s | ratio (a)/(b) | GFLOP/s "
        "| of f32 matmul | CPU share | peak RSS GiB | mean final loss "
        "| loss diff vs first (per filter / of means) |",
        "|" + "---|" * 13,
    ]
    for row in report["runs"]:
        ratio = row["ratio_reference_to_this"]
        compared = row["losses_vs_first_run"] or {}
        lines.append(
            f"| {row['name']} | {row['batch_size']} | {row['traces']} | {row['seconds']:.1f} "
            f"| {row['seconds_per_filter']:.3f} | {row['images_per_second']:.2f} "
            f"| {'' if ratio is None else f'{ratio:.2f}'} | {row['gflops_per_second']:.0f} "
            f"| {row['fraction_of_float32_matmul']:.0%} | {row['cpu_share']:.0%} "
            f"| {row['peak_rss_bytes'] / 2**30:.2f} | {row['mean_final_loss']:.5g} "
            f"| {_percent(compared.get('mean_relative_difference'))} / "
            f"{_percent(compared.get('relative_difference_of_means'))} |"
        )
    settings = report["settings"]
    machine = report["machine"]
    rates = report["matmul"]["gflops_per_second"]
    lines += [
        "",
        f"{settings['model']} ({settings['weights']} weights) {settings['layer']}, "
        f"{settings['image_size']} px, {settings['num_steps']} steps, {report['filters']} filters, "
        f"{settings['gradient_normalization']} gradient normalization.",
        f"Step: {report['flops']['step_per_image'] / 1e9:.2f} GFLOP per image "
        f"(2 × forward {report['flops']['forward_per_image'] / 1e9:.2f}).",
        f"Matrix product {report['matmul']['size']}² on this machine: float32 "
        f"{rates['float32']:.0f} GFLOP/s, bfloat16 {rates['bfloat16']:.0f} GFLOP/s "
        f"(best of {report['matmul']['repeats']} before and {report['matmul']['repeats']} after "
        "the runs).",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, TensorFlow "
        f"{machine['tensorflow']}, Keras {machine['keras']}; load average "
        f"{report['load_average']['start'][0]:.2f} at start, "
        f"{report['load_average']['end'][0]:.2f} at end.",
        f"{report['warmup']}.",
    ]
    if report["batch_sweep"]:
        lines += [
            "",
            "| batch | ms per image-step | image-steps/s | GFLOP/s |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {row['batch_size']} | {row['seconds_per_image_step'] * 1e3:.1f} "
            f"| {row['image_steps_per_second']:.1f} | {row['gflops_per_second']:.0f} |"
            for row in report["batch_sweep"]
        ]
    return "\n".join(lines) + "\n"
