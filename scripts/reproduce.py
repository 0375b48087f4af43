"""Renders every published figure into one folder, with an index.html that shows them all.

Each figure runs its config (configs/blog_block5.py, configs/kerasio.py, …; the list is
`keras_filters.tools.reproduce.FIGURES`) into its own subfolder. Settings given as
--config.KEY=VALUE apply to every figure, for example random weights and one step per scale,
which runs the whole set offline:

    python scripts/reproduce.py --config.weights=none --config.num_steps=1 --outdir=out/figures
    python scripts/reproduce.py --figures=kerasio,dlwp2 --outdir=out/figures

Output: out/figures/<figure>/mosaic.png and run.json for each figure, and
out/figures/index.html.
"""

import os

from keras_filters import startup

PROGRAM = "reproduce"

startup.import_backend_for_command(PROGRAM)

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from keras_filters import command_line, settings  # noqa: E402

command_line.refuse_undeclared_overrides(PROGRAM)
_CONFIG = config_flags.DEFINE_config_dict(
    "config",
    settings.default_config(),
    "Settings applied to every figure, as --config.KEY=VALUE (see keras-filters --help).",
)
_OUTDIR = flags.DEFINE_string("outdir", "out/figures", "Folder for the figures and index.html.")
_FIGURES = flags.DEFINE_list("figures", [], "Figures to render (comma-separated); empty: all.")


def main(argv) -> None:
    """Renders the chosen figures and writes the index."""
    if len(argv) > 1:
        command_line.fail(f"unexpected argument {argv[1]!r}", PROGRAM)
    import keras

    from keras_filters import errors
    from keras_filters.tools import reproduce

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Every figure traces a step function of its own, which TensorFlow warns about as
        # "excessive retracing"; here it is expected.
        tf.get_logger().setLevel("ERROR")
    overrides = config_flags.get_override_values(flags.FLAGS["config"])
    try:
        figures = reproduce.select_figures(_FIGURES.value)
        for line in reproduce.unused_overrides(figures, overrides):
            command_line.warn(line, PROGRAM)
        reproduce.reproduce(_OUTDIR.value, figures, overrides)
    except errors.UsageError as error:
        command_line.fail(str(error), PROGRAM)  # In flag words: --config.border=2.
    print(f"wrote {os.path.join(_OUTDIR.value, reproduce.INDEX_FILE)} ({len(figures)} figures)")


if __name__ == "__main__":
    command_line.run_script(
        main, PROGRAM, command_line.script_flags_parser(PROGRAM, settings_flag="dict")
    )
