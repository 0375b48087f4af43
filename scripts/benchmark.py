"""Times keras-filters against the keras.io-style loop and writes the table and the JSON.

python scripts/benchmark.py --config=configs/benchmark.py --outdir=out/benchmark
"""

import os
import sys

from keras_filters import startup

PROGRAM = "benchmark"

startup.import_backend_for_command(PROGRAM)

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from keras_filters import command_line  # noqa: E402

# The benchmark and the recipes live in the repository, beside the package.
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPOSITORY)


command_line.refuse_undeclared_overrides(PROGRAM)
_CONFIG = config_flags.DEFINE_config_file(
    "config",
    os.path.join(REPOSITORY, "configs", "benchmark.py"),
    "Config file; override keys with --config.KEY=VALUE.",
)
_OUTDIR = flags.DEFINE_string("outdir", "out/benchmark", "Folder for benchmark.json and .md.")
_VARIANTS = flags.DEFINE_list(
    "variants",
    ["float32", "mixed_bfloat16"],
    "Variants of keras-filters' pipeline to time: float32, mixed_bfloat16, float32_xla, "
    "mixed_bfloat16_xla.",
)
_REFERENCE = flags.DEFINE_bool("reference", True, "Also time the keras.io-style loop (a).")
_BATCH_SWEEP = flags.DEFINE_list(
    "batch_sweep", [], "Batch sizes at which to time the float32 step alone, e.g. 1,8,32,64."
)
_SWEEP_STEPS = flags.DEFINE_integer(
    "sweep_steps", 3, "Timed steps per batch size of the sweep.", lower_bound=1
)
_MATMUL_SIZE = flags.DEFINE_integer(
    "matmul_size", 2048, "Side of the matmul-rate matrices.", lower_bound=1
)
_MATMUL_REPEATS = flags.DEFINE_integer(
    "matmul_repeats", 10, "Matmuls timed per dtype (best).", lower_bound=1
)

JSON_FILE = "benchmark.json"
TABLE_FILE = "benchmark.md"


def fail(message: str) -> None:
    """Reports bad input in one line on stderr, in flag words, and exits with code 2."""
    command_line.fail(message, PROGRAM)


def main(argv) -> None:
    """Runs the benchmark, prints the table and writes it with the JSON."""
    if len(argv) > 1:
        fail(f"unexpected argument {argv[1]!r}; settings are given as --config.KEY=VALUE")
    from benchmarks import benchmark, report
    from keras_filters import errors, pipeline
    from keras_filters.job import artifacts
    from keras_filters.settings import Settings

    if not all(size.strip().isdigit() and int(size) >= 1 for size in _BATCH_SWEEP.value):
        fail(f"--batch_sweep={','.join(_BATCH_SWEEP.value)}: expected integers ≥ 1 like 1,8,32")
    batch_sweep = [int(size) for size in _BATCH_SWEEP.value]
    try:
        benchmark.check_variants(_VARIANTS.value)
        settings = Settings.create(_CONFIG.value.to_dict())
        artifacts.check_outdir(_OUTDIR.value)
        command_line.warn_of_unused_settings(settings.to_dict(), PROGRAM)
        model = pipeline.load_model(settings.model, settings)
        results = benchmark.run_benchmark(
            model,
            settings,
            variants=_VARIANTS.value,
            run_reference=_REFERENCE.value,
            batch_sweep=batch_sweep,
            sweep_steps=_SWEEP_STEPS.value,
            matmul_size=_MATMUL_SIZE.value,
            matmul_repeats=_MATMUL_REPEATS.value,
        )
    except errors.UsageError as error:
        fail(str(error))
    results["command"] = " ".join(["python", *sys.argv])
    table = report.format_table(results)
    print(table, end="")
    artifacts.write_text(os.path.join(_OUTDIR.value, TABLE_FILE), table)
    artifacts.write_json(os.path.join(_OUTDIR.value, JSON_FILE), results)


if __name__ == "__main__":
    command_line.run_script(
        main, PROGRAM, command_line.script_flags_parser(PROGRAM, settings_flag="file")
    )
