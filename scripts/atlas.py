"""Builds a whole-network atlas: every filter of every layer of a model, as a static site.

    python scripts/atlas.py --config=configs/quickstart.py --outdir=out/atlas
    python scripts/atlas.py --config=quickstart --config.examples_dir=~/photos --outdir=out/atlas
    python scripts/atlas.py --config=quickstart --config.atlas_layers="('conv1', 'conv3')" ...

Open OUTDIR/index.html in a browser (no server needed). Every setting of the recipe applies to
every layer; `layer`, `max_filters`, `filter_indices` and the grid are set per layer (every
filter, in index order). Ctrl-C stops after saving what is done (exit code 130); the same
command again goes on from there. With --config.num_shards=N --config.shard_index=K, N jobs
sharing OUTDIR split every layer's filters; the last one to finish writes the site.

Exit codes as for keras-filters: 0 when the site is written (or a shard is done), 2 for bad
input, 128 + N when signal N stopped the run.
"""

import os
import sys

from absl import flags
from ml_collections import config_flags

from keras_filters import cli, command_line, errors, startup
from keras_filters import settings as settings_lib
from keras_filters.job import artifacts

PROGRAM = "atlas"


def fail(message: str) -> None:
    """Reports an error in one line on stderr, in flag words, and exits with code 2."""
    cli.fail(message, program=PROGRAM)


def main(argv) -> None:
    """Builds the atlas of the configured model into --outdir."""
    if len(argv) > 1:
        fail(f"unexpected argument {argv[1]!r}; settings are given as --config.KEY=VALUE")
    outdir = flags.FLAGS.outdir
    try:
        settings = settings_lib.Settings.create(flags.FLAGS.config.to_dict())
        artifacts.check_outdir(outdir)
        startup.import_backend_quietly()
    except errors.UsageError as error:
        fail(str(error))
    from keras_filters.atlas import build
    from keras_filters.job import interruption

    # Every layer's run sets its filters and grid itself: the others act by those values.
    command_line.warn_of_unused_settings(
        {**settings.to_dict(), **build.LAYER_RUN_SETTINGS}, PROGRAM
    )
    image_size_given = "image_size" in config_flags.get_override_values(flags.FLAGS["config"])
    try:
        result = build.build_atlas(outdir, settings, image_size_given=image_size_given)
    except errors.UsageError as error:
        fail(str(error))
    except interruption.RunInterrupted as stopped:
        print(
            f"{PROGRAM}: {stopped}; run the same command again to finish the atlas",
            file=sys.stderr,
        )
        sys.exit(stopped.exit_code)
    for note in result.notes:
        print(note)
    if result.waiting_for:
        print(
            f"shard {settings.shard_index} done; waiting for shards "
            f"{', '.join(map(str, result.waiting_for))}: the last one to finish writes the site"
        )
        return
    print(
        f"{len(result.layers)} layers, {result.num_filters} filters: {result.num_dead} dead, "
        f"{result.num_failed} failed"
    )
    print(f"wrote {outdir}/index.html ({len(result.pages)} pages)")


def run() -> None:
    """Parses the command line like keras-filters does, then builds the atlas."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if any(argument in cli.HELP_FLAGS for argument in sys.argv[1:]):
        settings_help = cli.help_text()
        sys.stdout.write(__doc__ + "\n" + settings_help[settings_help.index("Recipes") :])
        sys.exit(0)
    try:
        argv = cli.resolve_recipe_names(sys.argv)
    except errors.UsageError as error:
        fail(str(error))
    # Ctrl-C outside a layer's chunks (loading, examples, pages) ends in one line.
    command_line.run_script(main, PROGRAM, cli.recipe_command_line_parser(PROGRAM), argv)


if __name__ == "__main__":
    run()
