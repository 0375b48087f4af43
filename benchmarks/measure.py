"""Measures time, memory and this machine's matrix-product rate for the benchmark."""

import contextlib
import dataclasses
import os
import platform
import time

import keras


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


def best_seconds(run, repeats: int) -> float:
    """The shortest of `repeats` timed calls of `run()`, after one untimed call (warm-up)."""
    run()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def matmul_rate(dtype: str, size: int, repeats: int) -> float:
    """The best rate, in GFLOP/s, of a `size`×`size` matrix product of `dtype` over `repeats`."""
    if keras.backend.backend() == "jax":
        from benchmarks import jax_tools

        return jax_tools.matmul_rate(dtype, size, repeats)
    import tensorflow as tf

    generator = tf.random.Generator.from_seed(0)
    left = tf.cast(generator.normal((size, size)), dtype)
    right = tf.cast(generator.normal((size, size)), dtype)
    product = tf.function(tf.linalg.matmul)
    best = best_seconds(lambda: product(left, right).numpy(), repeats)
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
    machine = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }
    if keras.backend.backend() == "jax":
        from benchmarks import jax_tools

        return {**machine, **jax_tools.devices()}
    import tensorflow as tf

    return {
        **machine,
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "tensorflow": tf.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }
