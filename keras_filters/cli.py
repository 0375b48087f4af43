"""The `keras-filters` command: reads the config, runs the job, reports bad input in one line."""

import os
import sys

from keras_filters import quiet

quiet.import_tensorflow_quietly()

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

import configs  # noqa: E402

BASE_CONFIG = os.path.join(os.path.dirname(configs.__file__), "base.py")
PROGRAM = "keras-filters"

_CONFIG = config_flags.DEFINE_config_file(
    "config", BASE_CONFIG, "Config file (configs/NAME.py); override keys with --config.KEY=VALUE."
)
_OUTDIR = flags.DEFINE_string("outdir", "out", "Folder for the mosaic PNG and the run JSON.")
_LIST_LAYERS = flags.DEFINE_bool(
    "list_layers", False, "List the model's visualizable layers and exit."
)


def fail(message: str) -> None:
    """Reports bad input in one line on stderr and exits with code 2."""
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)
    sys.exit(2)


def print_layers(settings: dict) -> None:
    """Prints the visualizable layers of the configured model as a table."""
    from keras_filters import api, layers

    model = api.load_model_from_settings(settings["model"], settings)
    print(f"{'layer':40s} {'type':24s} {'output shape':24s} filters")
    for info in layers.list_layers(model):
        print(f"{info.name:40s} {info.type:24s} {str(info.output_shape):24s} {info.num_filters}")


def main(argv) -> None:
    """Runs the configured job, or lists the layers."""
    if len(argv) > 1:
        fail(f"unexpected argument {argv[1]!r}; settings are given as --config.KEY=VALUE")
    from keras_filters import errors, runner

    settings = _CONFIG.value.to_dict()
    try:
        if _LIST_LAYERS.value:
            print_layers(settings)
            return
        record = runner.run(_OUTDIR.value, settings)
    except errors.UsageError as error:
        fail(str(error))
    mosaic = record["mosaic"]
    if mosaic["file"]:
        print(
            f"wrote {os.path.join(_OUTDIR.value, mosaic['file'])} "
            f"({mosaic['width']}x{mosaic['height']} px, {mosaic['rows']}x{mosaic['cols']} "
            f"filters of {record['layer']}) in {record['seconds']:.1f}s"
        )


def run() -> None:
    """Entry point of the installed `keras-filters` command."""
    app.run(main)


if __name__ == "__main__":
    run()
