"""The benchmark's report: a row per timed run, the loss check, and the Markdown table."""

import os

import numpy as np

# Below this, a reference loss counts as zero and is left out of the relative differences.
LOSS_COMPARISON_FLOOR = 1e-6
REFERENCE_NAME = "reference (a)"


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


def run_row(timing, timings: list, run_total: int, rates: dict, num_filters: int) -> dict:
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
        f"Machine: {machine['cpu']}, {machine['cores']} cores, "
        + (
            f"JAX {machine['jax']} on {machine['device_kind']}"
            if machine.get("backend") == "jax"
            else f"TensorFlow {machine['tensorflow']}"
        )
        + f", Keras {machine['keras']}; load average "
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
