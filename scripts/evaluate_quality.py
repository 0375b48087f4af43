"""Scores a recipe's pictures of a layer's filters with the quality measures of issue 10.

Runs the recipe on its model, layer and filters, scores the returned inputs (selectivity,
robustness, high-frequency fraction, gain over natural crops, dead filters; see
keras_filters/quality.py), prints the Markdown table and writes OUTDIR/quality.json,
quality.md, inputs.npz and mosaic.png:

    python scripts/evaluate_quality.py --config=configs/quickstart.py --outdir=out/quality
    python scripts/evaluate_quality.py --config=quickstart --config.max_filters=8 --outdir=out/q
    python scripts/evaluate_quality.py --config=quickstart --inputs=out/quality/inputs.npz \\
        --outdir=out/rescored

With --inputs, the saved inputs of an earlier evaluation are scored without optimizing. Gain
needs scikit-image (pip install .[quality]); without it the table says n/a. Exit codes: 0 when
the scores are written, 2 for bad input (reported in one line).
"""

import os
import sys

from absl import flags
from ml_collections import config_flags

from keras_filters import cli, command_line, errors, startup
from keras_filters import settings as settings_lib

PROGRAM = "evaluate_quality"

_INPUTS = flags.DEFINE_string(
    "inputs", None, "An inputs.npz of an earlier evaluation: score it instead of optimizing."
)


def fail(message: str) -> None:
    """Reports an error in one line on stderr, in flag words, and exits with code 2."""
    cli.fail(message, program=PROGRAM)


def main(argv) -> None:
    """Evaluates the configured layer's filters into --outdir and prints the table."""
    if len(argv) > 1:
        fail(f"unexpected argument {argv[1]!r}; settings are given as --config.KEY=VALUE")
    try:
        settings = settings_lib.Settings.create(flags.FLAGS.config.to_dict())
        if _INPUTS.value is not None and not os.path.isfile(_INPUTS.value):
            problem = "is a folder" if os.path.isdir(_INPUTS.value) else "does not exist"
            raise errors.UsageError(f"inputs file {_INPUTS.value!r} {problem}")
        command_line.warn_of_unused_settings(settings.to_dict(), PROGRAM)
        startup.import_backend_quietly()
        from keras_filters.tools import evaluate_quality

        evaluation = evaluate_quality.evaluate(
            settings,
            flags.FLAGS.outdir,
            inputs_file=_INPUTS.value,
            image_size_given="image_size"
            in config_flags.get_override_values(flags.FLAGS["config"]),
        )
    except errors.UsageError as error:
        fail(str(error))
    if evaluation.failed_filters:
        print(
            f"{PROGRAM}: warning: the optimization of filters {list(evaluation.failed_filters)} "
            "failed (a loss or gradient stopped being finite); their images are scored as they "
            "stood then",
            file=sys.stderr,
        )
    print(evaluation.table)
    print(f"wrote {os.path.join(flags.FLAGS.outdir, evaluate_quality.JSON_FILE)}")


def run() -> None:
    """Parses the command line like keras-filters does, then evaluates."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        argv = cli.resolve_recipe_names(sys.argv)
    except errors.UsageError as error:
        fail(str(error))
    command_line.run_script(
        main,
        PROGRAM,
        cli.recipe_command_line_parser(PROGRAM),
        argv,
        interrupted="its files are written at the end: run the same command again",
    )


if __name__ == "__main__":
    run()
