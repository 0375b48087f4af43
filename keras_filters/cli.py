"""The `keras-filters` command: reads the config, runs the job, reports bad input in one line.

Exit codes: 0 when the mosaic is written; 1 when every filter failed (NaN or infinite loss);
2 for bad input, reported in one line on stderr before anything is written; 128 + N when
signal N stopped the run (130 for Ctrl-C), after the mosaic of the finished filters is written.

Flags and settings are checked before TensorFlow starts, so a mistyped setting fails at once.
"""

import os
import sys

from absl import flags
from ml_collections import config_flags

from keras_filters import command_line, errors, recipes, startup
from keras_filters import settings as settings_lib
from keras_filters.job import artifacts

BASE_CONFIG = recipes.BASE_RECIPE
PROGRAM = "keras-filters"
EXIT_ALL_FAILED = 1
EXIT_USAGE = command_line.EXIT_USAGE


def _define_config_flag():
    """Defines --config, keeping back the error of a bad override for the parser to report.

    ml_collections parses the default config when the flag is defined, with the overrides it
    finds in sys.argv, so an override of an unknown key fails at import time.
    """
    try:
        flag = config_flags.DEFINE_config_file(
            "config",
            BASE_CONFIG,
            "A recipe: its name (quickstart, blog_block5, …) or a config file's path, with an "
            "optional ':argument'; override settings with --config.SETTING=VALUE.",
        )
        return flag, None
    except Exception as error:  # Reported in one line by parse_command_line.
        return None, error


_CONFIG, _CONFIG_DEFINITION_ERROR = _define_config_flag()
_OUTDIR = flags.DEFINE_string("outdir", "out", "Folder for the mosaic PNG and the run JSON.")
_LIST_LAYERS = flags.DEFINE_bool(
    "list_layers", False, "List the model's visualizable layers and exit."
)
_RESUME = flags.DEFINE_bool(
    "resume",
    False,
    "Finish the interrupted run in --outdir, with the settings recorded there (a run resumes "
    "also without this flag when its settings are the same).",
)
OUR_FLAGS = ("config", "outdir", "list_layers", "resume")


def fail(message: str, exit_code: int = EXIT_USAGE, program: str = PROGRAM) -> None:
    """Reports an error in one line on stderr, in flag words, and exits (code 2 unless told
    otherwise); `program` names the script that reports it."""
    command_line.fail(message, program, exit_code)


def parse_command_line(argv, program: str = PROGRAM, own_flags=OUR_FLAGS) -> list:
    """Parses the flags like absl does, but reports any problem in one line, exit code 2.

    Args:
        argv: The command line.
        program: The command that reports a problem. Defaults to "keras-filters".
        own_flags: The flags that command takes; keras-filters' others (--resume,
            --list_layers) are refused. Defaults to those of keras-filters.
    """
    try:
        command_line.check_arguments(argv)
        recipes.make_importable(command_line.config_path(argv))
        if _CONFIG_DEFINITION_ERROR is not None:
            raise errors.UsageError(command_line.one_line(_CONFIG_DEFINITION_ERROR))
        try:
            remaining = flags.FLAGS(argv)
            config = _CONFIG.value
            config.keys()  # A config file that failed to load raises only when first used.
        except flags.Error as error:
            raise errors.UsageError(command_line.describe_flag_error(error, own_flags)) from None
        except Exception as error:  # A config file that raises, or does not parse.
            raise errors.UsageError(command_line.config_file_error(argv, error)) from None
        command_line.refuse_other_commands_flags(program, own_flags)
        command_line.check_config_keys(config)
    except errors.UsageError as error:
        fail(str(error), program=program)
    return remaining


def recipe_command_line_parser(program: str):
    """The `flags_parser` of a script that reads a recipe as keras-filters does (--config,
    --outdir, and flags of its own, as scripts/evaluate_quality.py's --inputs)."""

    def parse(argv) -> list:
        own_flags = ("config", "outdir", *command_line.script_flags())
        return parse_command_line(argv, program=program, own_flags=own_flags)

    return parse


def _overridden(name: str) -> bool:
    """Whether the command line sets `--config.NAME`."""
    return name in config_flags.get_override_values(flags.FLAGS["config"])


def _config_given() -> bool:
    """Whether the command line names a config file or overrides a setting."""
    return any(
        flags.FLAGS[name].present
        for name in flags.FLAGS
        if name == "config" or name.startswith("config.")
    )


def print_layers(settings) -> None:
    """Prints the visualizable layers of the configured model as a table.

    The layers do not depend on the weights, so an Applications model is built without them
    (nothing is downloaded).
    """
    from keras_filters import pipeline
    from keras_filters.model import extractor

    model = pipeline.load_model(settings.model, settings.replace(weights="none"))
    print(f"{'layer':40s} {'type':24s} {'output shape':24s} {'filters or units'}")
    for info in extractor.list_layers(model):
        print(
            f"{info.name:40s} {info.type:24s} {str(info.output_shape):24s} "
            f"{info.num_filters} {info.unit_word}"
        )


def main(argv) -> None:
    """Runs the configured job, or lists the layers."""
    if len(argv) > 1:
        fail(f"unexpected argument {argv[1]!r}; settings are given as --config.KEY=VALUE")
    outdir = _OUTDIR.value
    resume_with_recorded_settings = _RESUME.value and not _config_given()
    if not resume_with_recorded_settings:
        try:
            settings = settings_lib.Settings.create(_CONFIG.value.to_dict())
            if not _LIST_LAYERS.value:
                artifacts.check_outdir(outdir)
        except errors.UsageError as error:
            fail(str(error))
        if not _LIST_LAYERS.value:
            command_line.warn_of_unused_settings(settings.to_dict(), PROGRAM)
    placement = None
    try:
        if not resume_with_recorded_settings and settings.strategy != "default":
            # Before Keras loads: a cluster's strategy, or a split CPU, must come first.
            from keras_filters import distribution

            with startup.quiet_stderr():
                placement = distribution.make_placement(
                    settings.strategy, settings.devices, settings.tpu_address
                )
        startup.import_backend_quietly()
    except errors.UsageError as error:  # A strategy or a Keras backend that cannot run.
        fail(str(error))
    from keras_filters.job import interruption, resume
    from keras_filters.job import run as job

    try:
        if resume_with_recorded_settings:
            recorded = resume.recorded_settings(outdir)
            if recorded is None:
                raise errors.UsageError(f"outdir {outdir!r} holds no unfinished run to resume")
            settings = settings_lib.Settings.create(recorded)
        if _LIST_LAYERS.value:
            print_layers(settings)
            return
        record = job.run(
            outdir,
            settings,
            resume_only=_RESUME.value,
            image_size_given=resume_with_recorded_settings or _overridden("image_size"),
            placement=placement,
        )
    except errors.UsageError as error:
        fail(str(error))
    except interruption.RunInterrupted as stopped:
        wrote = f"; wrote the mosaic of those to {outdir}" if stopped.filters_done else ""
        print(
            f"{PROGRAM}: {stopped}{wrote}; run the same command again, or add --resume, to finish",
            file=sys.stderr,
        )
        sys.exit(stopped.exit_code)
    _report(outdir, record)


def _report(outdir: str, record: dict) -> None:
    """Prints where the mosaic went, or fails when no filter could be optimized."""
    if record.get("written_by"):  # A worker of a cluster: the chief wrote the files.
        print(f"{record['summary']}; {record['written_by']} wrote the files into {outdir}")
        return
    layer_records = record.get("panels", [record])
    entries = [entry for layer_record in layer_records for entry in layer_record["filters"]]
    failed = [entry["index"] for entry in entries if entry["failed"]]
    if failed and len(failed) == len(entries):
        fail(
            f"every filter failed: the loss or gradient of filters {failed[:10]}"
            f"{' …' if len(failed) > 10 else ''} became NaN or infinite; see "
            f"{os.path.join(outdir, 'run.json')}",
            exit_code=EXIT_ALL_FAILED,
        )
    for note in record.get("notes", []):
        print(note)
    for layer_record in layer_records:
        print(layer_record["summary"])
    mosaic = record["mosaic"]
    if mosaic["file"]:
        shown = (
            f"{len(record['panels'])} panels"
            if "panels" in record
            else f"{mosaic['rows']}x{mosaic['cols']} filters"
        )
        print(
            f"wrote {os.path.join(outdir, mosaic['file'])} "
            f"({mosaic['width']}x{mosaic['height']} px, {shown} of {record['layer']}) "
            f"in {record['seconds']:.1f}s"
        )


HELP_FLAGS = ("--help", "-help", "-h", "--helpshort", "-helpshort", "-?")


resolve_recipe_names = command_line.resolve_recipe_names


def help_text() -> str:
    """The command's own flags, then every setting with its default and meaning, by group."""
    lines = [
        f"usage: {PROGRAM} [--config=RECIPE] [--config.SETTING=VALUE ...] [--outdir=DIR]",
        "",
        "Shows what the filters of a convolutional network respond to: gradient ascent on the",
        "input image, one image per filter, stitched into a mosaic (OUTDIR/mosaic.png, run.json).",
        "",
        "Flags:",
    ]
    for name in OUR_FLAGS:
        flag = flags.FLAGS[name]
        default = recipes.BASE_RECIPE if name == "config" else flag.default
        lines.append(f"  --{name}  (default: {default})")
        lines.append(f"      {flag.help}")
    lines += [
        "",
        "Recipes (--config=NAME or a path; NAME.py in configs/): " + ", ".join(recipes.available()),
        "",
        "Settings (--config.SETTING=VALUE), with their defaults in configs/base.py:",
    ]
    fields = settings_lib.fields()
    for group in settings_lib.GROUPS:
        lines += ["", f"  {group}:"]
        for name, field in fields.items():
            if field.metadata["group"] == group:
                lines.append(f"  --config.{name}={settings_lib.show(field.default)}")
                lines.append(f"      {settings_lib.meaning(name)}")
    return "\n".join(lines) + "\n"


def run() -> None:
    """Entry point of the installed `keras-filters` command."""
    # The command owns its process: TensorFlow's C++ log lines (also where JAX runs the model
    # and TensorFlow only reads a legacy .h5 file) would bury its one-line messages.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if any(argument in HELP_FLAGS for argument in sys.argv[1:]):
        sys.stdout.write(help_text())
        sys.exit(0)
    try:
        argv = resolve_recipe_names(sys.argv)
    except errors.UsageError as error:
        fail(str(error))
    # Ctrl-C before the run started, or a second one during it, ends in one line.
    command_line.run_script(main, PROGRAM, parse_command_line, argv)


if __name__ == "__main__":
    run()
