"""What every command of keras-filters does with its command line, without defining a flag.

Bad input is reported in one line on stderr, naming the value and the valid choices, with exit
code 2 (`fail`). absl would report a bad flag in two lines with exit code 1, and ml_collections
a bad --config override with a traceback; `script_flags_parser` and `define_settings_flag`
give the scripts with flags of their own (benchmark, merge, reproduce, …) the one-line form
that `keras-filters` has. This module defines no flag, so any script can import it beside its
own flags (keras_filters.cli defines --config and --outdir when it is imported).
"""

import os
import re
import sys

from absl import app, flags
from ml_collections import config_flags

from keras_filters import errors, recipes
from keras_filters import settings as settings_lib
from keras_filters.job import artifacts, interruption

EXIT_USAGE = 2
AGAIN_TO_FINISH = "run the same command again to finish"
# What a run that ran out of memory can change: the memory a step takes grows with both.
LOWER_MEMORY = "use a smaller image_size or batch_size"
# The backend modules, each with `is_out_of_memory(error)`.
BACKEND_MODULES = ("keras_filters.backends.tensorflow", "keras_filters.backends.jax")


def flag_words(message: str) -> str:
    """Rewrites the library's setting words into flag words: `image_size=-5` becomes
    `--config.image_size=-5`, so the message names what to type on the command line."""
    names = "|".join(sorted(settings_lib.field_names(), key=len, reverse=True))
    return re.sub(rf"(?<![\w.\-])({names})=", r"--config.\1=", message)


def fail(message: str, program: str, exit_code: int = EXIT_USAGE) -> None:
    """Reports an error in one line on stderr, in flag words, and exits (code 2 unless told
    otherwise); `program` names the command that reports it."""
    print(f"{program}: error: {_one_line_in_flag_words(message)}", file=sys.stderr)
    sys.exit(exit_code)


def _one_line_in_flag_words(message) -> str:
    return flag_words(" ".join(str(message).split()))


def warn(message: str, program: str) -> None:
    """Reports a warning in one line on stderr, in flag words; the command goes on."""
    print(f"{program}: warning: {_one_line_in_flag_words(message)}", file=sys.stderr)


def warn_of_unused_settings(values, program: str) -> None:
    """Warns, one line each, of the --config.NAME overrides on the command line that have no
    effect with the other settings (`settings.unused_settings`); a recipe's own values are
    not reported.

    Args:
        values: Every setting's value by name, as the run reads them.
        program: The command, as its messages name it.
    """
    given = config_flags.get_override_values(flags.FLAGS["config"])
    for line in settings_lib.unused_settings(values, given):
        warn(line, program)


def check_output_command(argv, output: str, program: str, suffix: str = "") -> None:
    """Fails in one line, exit code 2, for an argument the script does not take or an output
    file that cannot be written: checked before a long job (a training) starts, so that the
    job cannot fail at its end.

    Args:
        argv: What absl left of the command line (the program's name first).
        output: The file the script will write.
        program: The script, as its messages name it.
        suffix: The ending the file must have; empty for any. Defaults to "".
    """
    if len(argv) > 1:
        fail(f"unexpected argument {argv[1]!r}", program)
    try:
        artifacts.check_output_file(output, suffix)
    except errors.UsageError as error:
        fail(str(error), program)


def one_line(text) -> str:
    """The first and the last line of a long message (a traceback's last line names the fault)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if len(lines) > 1:
        return f"{lines[0]} {lines[-1]}"
    return lines[0] if lines else ""


def check_arguments(argv, config_file: bool = True) -> None:
    """Checks the command line for overrides of undeclared keys and missing config files.

    ml_collections would report these with a traceback, so they are caught first.

    Args:
        argv: The command line.
        config_file: Whether --config names a recipe's file (else it holds the settings
            themselves, as scripts/reproduce.py's does). Defaults to True.

    Raises:
        UsageError: Naming the argument.
    """
    declared = settings_lib.field_names()
    for argument in argv[1:]:
        if argument == "--":
            break
        override = re.match(r"^--?(?:no)?config\.([^=]+)", argument)
        if override:
            key, dot, _ = override.group(1).partition(".")
            if key not in declared:
                raise errors.UsageError(
                    f"unknown setting {key!r} in {argument}; the settings are: "
                    f"{errors.format_choices(key, declared, limit=12)}"
                )
            if dot:  # The settings are flat; ml_collections would raise with a traceback.
                raise errors.UsageError(
                    f"{argument} sets a part of setting {key!r}, which has none; set the whole "
                    f"setting with --config.{key}=VALUE"
                )
    path = config_path(argv)
    if config_file and not os.path.isfile(path):
        problem = "is a folder" if os.path.isdir(path) else "does not exist"
        raise errors.UsageError(
            f"config file {path!r} {problem}; expected a recipe's .py file or a recipe's name"
        )


def config_path(argv) -> str:
    """The config file the command line names (the last --config), or the base config."""
    path = recipes.BASE_RECIPE
    for position, argument in enumerate(argv[1:], start=1):
        if argument == "--":
            break
        given = re.match(r"^--?config=(.*)$", argument)
        if given:
            path = given.group(1)
        elif argument in ("--config", "-config") and position + 1 < len(argv):
            path = argv[position + 1]
    # A path may carry an argument for get_config after a colon: configs/x.py:small.
    return path.split(":", 1)[0]


def resolve_recipe_names(argv: list) -> list:
    """`--config=quickstart` becomes the path of configs/quickstart.py (any working folder).

    Raises:
        UsageError: For a bare name that is no recipe.
    """
    resolved = list(argv)
    for position, argument in enumerate(resolved[1:], start=1):
        if argument == "--":
            break
        given = re.match(r"^(--?config=)(.*)$", argument)
        if given:
            resolved[position] = given.group(1) + recipes.resolve(given.group(2))
        elif argument in ("--config", "-config") and position + 1 < len(resolved):
            resolved[position + 1] = recipes.resolve(resolved[position + 1])
    return resolved


def describe_flag_error(error: flags.Error, own_flags) -> str:
    """absl's message for a bad flag value, in one line, with the type the setting takes.

    Args:
        error: What absl raised.
        own_flags: The command's flags, listed for an unknown flag.
    """
    if isinstance(error, flags.UnrecognizedFlagError):
        name = error.flagname
        return f"unknown flag --{name}; the flags are: {errors.format_choices(name, own_flags)}"
    message = one_line(error)
    message = message[len("flag ") :] if message.startswith("flag ") else message
    key = re.match(r"^--?config\.([A-Za-z0-9_]+)", message)
    if key and key.group(1) in settings_lib.field_names():
        message += f"; {key.group(1)} takes {settings_lib.type_name(key.group(1))}"
    return message


def check_config_keys(config) -> None:
    """Refuses a config file that sets a key that keras_filters.settings does not declare."""
    undeclared = sorted(set(config.keys()) - set(settings_lib.field_names()))
    if undeclared:
        path = flags.FLAGS["config"].config_filename
        raise errors.UsageError(undeclared_key_message(path, undeclared[0]))


def undeclared_key_message(path: str, key: str) -> str:
    declared = settings_lib.field_names()
    return (
        f"config file {path!r} sets {key!r}, which is not a setting; the settings are: "
        f"{errors.format_choices(key, declared, 12)}"
    )


def config_file_error(argv, error: Exception) -> str:
    """The message for a config file that raised while it loaded (or does not parse)."""
    added = re.search(r'Key "([^"]+)" does not exist and cannot be added', str(error))
    if added:  # The base config is locked: a recipe cannot add a key.
        return undeclared_key_message(config_path(argv), added.group(1))
    return (
        f"could not read the config file {config_path(argv)!r}: "
        f"{type(error).__name__}: {one_line(error)}"
    )


def script_flags() -> list[str]:
    """The flags that the running script's own file defines (absl files them by its path)."""
    return [flag.name for flag in flags.FLAGS.flags_by_module_dict().get(sys.argv[0], [])]


def refuse_other_commands_flags(program: str, own_flags) -> None:
    """Refuses a flag of another command of the package that `program` does not take.

    Importing keras_filters.cli defines the flags of keras-filters (--resume, --list_layers,
    --config.…); a script that does not read them would ignore them.

    Raises:
        UsageError: Naming the flag and the flags of `program`.
    """
    by_module = flags.FLAGS.flags_by_module_dict()
    package_flags = {
        flag.name
        for module, defined in by_module.items()
        if module.startswith("keras_filters.")
        for flag in defined
    }
    for name in list(flags.FLAGS):
        root = name.split(".")[0]
        if root in package_flags and root not in own_flags and flags.FLAGS[name].present:
            raise errors.UsageError(
                f"--{name} is not a flag of {program}; its flags are: "
                f"{errors.format_choices(root, own_flags)}"
            )


def script_flags_parser(program: str, *, settings_flag: str = ""):
    """The `flags_parser` for `app.run` of a script with flags of its own.

    absl reports an unknown flag, a value of the wrong type or out of bounds, or a missing
    required flag in two lines with exit code 1; this parser reports it as keras-filters does:
    in one line that names the flag and the valid choices, with exit code 2.

    Args:
        program: The script, as its messages name it.
        settings_flag: "file" where the script's --config names a recipe (a bare name or a
            file, which may fail to load), "dict" where --config holds the settings themselves
            (overrides only); empty for a script without settings. Defaults to "".

    Returns:
        A function of the command line that returns what absl leaves of it.
    """

    def parse(argv) -> list:
        try:
            if settings_flag == "dict" and config_path(argv) != recipes.BASE_RECIPE:
                raise errors.UsageError(
                    f"{program} takes no recipe (--config={config_path(argv)}); set settings "
                    "with --config.SETTING=VALUE"
                )
            if settings_flag == "file":
                argv = resolve_recipe_names(argv)
            if settings_flag:
                check_arguments(argv, config_file=settings_flag == "file")
            own_flags = script_flags()
            try:
                remaining = flags.FLAGS(argv)
                if settings_flag:
                    config = flags.FLAGS["config"].value
                    config.keys()  # A config file that failed to load raises only when used.
            except flags.Error as error:
                raise errors.UsageError(describe_flag_error(error, own_flags)) from None
            except Exception as error:  # A config file that raises, or does not parse.
                raise errors.UsageError(config_file_error(argv, error)) from None
            refuse_other_commands_flags(program, own_flags)
            if settings_flag == "file":
                check_config_keys(config)
        except errors.UsageError as error:
            fail(str(error), program)
        return remaining

    return parse


def device_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is a Keras backend's report that a device ran out of memory:
    TensorFlow's `ResourceExhaustedError`, or XLA's RESOURCE_EXHAUSTED under JAX.

    Only the backend modules already loaded are asked (a backend's error comes after it
    loaded): importing one here would start TensorFlow under the JAX backend, or slow down a
    command that never loads Keras.
    """
    return any(
        sys.modules[name].is_out_of_memory(error) for name in BACKEND_MODULES if name in sys.modules
    )


def out_of_memory_detail(error: BaseException) -> str:
    """The line of a device's out-of-memory report that names the allocation ("OOM when
    allocating tensor with shape[…]", "RESOURCE_EXHAUSTED: Out of memory allocating … bytes"),
    without TensorFlow's {{node …}} marks; a graph's report puts it among the lines of the
    stack where the graph was built."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    allocation = [line for line in lines if re.search(r"\bOOM\b|[Oo]ut of memory", line)]
    return re.sub(r"\{\{[^}]*\}\}", "", (allocation or lines or [""])[0]).strip()


def run_script(main, program: str, flags_parser, argv=None, interrupted: str = AGAIN_TO_FINISH):
    """Runs a command's absl `main`; Ctrl-C, SIGTERM or running out of memory ends it in one
    line on stderr, never a traceback.

    A run that stopped on a signal between its chunks (`RunInterrupted`) has saved what it
    finished, and a Ctrl-C or SIGTERM anywhere else (loading the model, writing the files)
    leaves the chunks saved so far and no file half-written (files are written whole or not at
    all), so the line says what the user can do next: exit code 130 for Ctrl-C, 143 for
    SIGTERM. A `MemoryError` (NumPy's "Unable to allocate 112. GiB for an array …"), or a
    device out of memory (a backend's error, see `device_out_of_memory`), is reported with exit
    code 2, as bad input; the chunks that the run finished before stay saved.

    Args:
        main: The command's `main(argv)`.
        program: The command, as its messages name it.
        flags_parser: The `flags_parser` for `app.run`.
        argv: The command line; None for sys.argv. Defaults to None.
        interrupted: What to do after a Ctrl-C or SIGTERM. Defaults to running the same
            command again.
    """
    try:
        with interruption.SigtermStops():
            app.run(main, argv=argv, flags_parser=flags_parser)
    except interruption.RunInterrupted as stopped:
        print(f"{program}: {stopped}; {AGAIN_TO_FINISH}", file=sys.stderr)
        sys.exit(stopped.exit_code)
    except KeyboardInterrupt as stopped:  # Ctrl-C, or SIGTERM (`Terminated`).
        words, exit_code = interruption.describe(stopped)
        print(f"{program}: {words}; {interrupted}", file=sys.stderr)
        sys.exit(exit_code)
    except Exception as error:  # Out of memory: the host's (MemoryError) or a device's.
        if isinstance(error, MemoryError):
            problem, detail = "out of memory", one_line(error)
        elif device_out_of_memory(error):
            problem, detail = "the device ran out of memory", out_of_memory_detail(error)
        else:
            raise
        fail(f"{problem}{f' ({detail})' if detail else ''}; {LOWER_MEMORY}", program)


def refuse_undeclared_overrides(program: str) -> None:
    """Fails in one line, exit code 2, where sys.argv overrides a key that is not a setting.

    Call it before a script defines its --config: ml_collections applies the command line's
    overrides when the flag is defined, and raises with a traceback for an undeclared key.
    """
    try:
        check_arguments(sys.argv, config_file=False)
    except errors.UsageError as error:
        fail(str(error), program)
