"""The scripts beside keras-filters answer bad input as it does: one line on stderr that names the
value and the valid choices, exit code 2, nothing written, never a traceback.

Each case runs the real script in a subprocess; most end while the flags are parsed, the rest
before any model is built or trained (1 to 5 s each), a few at a time.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import REPO_ROOT, command_environment

QUICKSTART = "--config=quickstart"
FAST = "--config.num_steps=1"
# Where a script would do its work before it saw the bad input, the work is small.
SMALL_BENCHMARK = ["--config.max_filters=1", FAST, "--matmul_size=8", "--matmul_repeats=1"]
SMALL_TRAINING = ["--num_train=20", "--epochs=1"]
TIMEOUT = 120


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Input files shared by the cases: a file where a folder belongs, and saved inputs that the
    demo model cannot take."""
    folder = tmp_path_factory.mktemp("inputs")
    paths = {"a_file": folder / "a_file"}
    paths["a_file"].write_text("I am a file")
    figures = folder / "figures"
    figures.mkdir()
    paths["figures"] = figures
    (figures / "dlwp2_single").write_text("a file where a figure's folder belongs")
    paths["tiny_inputs"] = folder / "tiny_inputs.npz"
    np.savez(
        paths["tiny_inputs"],
        inputs=np.zeros((2, 2, 2, 3), np.float32),
        filter_indices=np.array([0, 1]),
        layer=np.array("conv3"),
    )
    paths["text_inputs"] = folder / "notes.txt"
    paths["text_inputs"].write_text("filter 3 looks like fur\n")
    return {name: str(path) for name, path in paths.items()}


# (case, script, arguments ({name} is a path from `files`, {outdir} the case's outdir), texts
# that the line must contain). The line must start with "<script's name>: error: ".
CASES = [
    (
        "evaluate_quality_flag_of_keras_filters",
        "evaluate_quality",
        [QUICKSTART, "--list_layers", "--outdir={outdir}"],
        ["--list_layers is not a flag of evaluate_quality", "inputs"],
    ),
    (
        "evaluate_quality_unknown_flag",
        "evaluate_quality",
        [QUICKSTART, "--inputz=x", "--outdir={outdir}"],
        ["unknown flag --inputz", "inputs"],
    ),
    (
        "evaluate_quality_inputs_too_small",
        "evaluate_quality",
        [QUICKSTART, "--inputs={tiny_inputs}", "--outdir={outdir}"],
        ["tiny_inputs.npz", "2x2", "'conv3'"],
    ),
    (
        "evaluate_quality_inputs_not_npz",
        "evaluate_quality",
        [QUICKSTART, "--inputs={text_inputs}", "--outdir={outdir}"],
        ["inputs='", "notes.txt' is not an .npz file of images; expected an inputs.npz"],
    ),
    (
        "atlas_resume",
        "atlas",
        [QUICKSTART, "--resume", "--outdir={outdir}"],
        ["--resume is not a flag of atlas", "config, outdir"],
    ),
    (
        "atlas_layer_twice",
        "atlas",
        [QUICKSTART, '--config.atlas_layers=("conv1", "conv1")', "--outdir={outdir}"],
        ["'conv1' appears twice", "--config.atlas_layers=('conv1', 'conv1')"],
    ),
    (
        "reproduce_unknown_flag",
        "reproduce",
        ["--figurs=kerasio", "--outdir={outdir}"],
        ["unknown flag --figurs", "figures"],
    ),
    (
        "reproduce_undeclared_setting",
        "reproduce",
        ["--config.num_stepz=1", "--outdir={outdir}"],
        ["'num_stepz'", "num_steps"],
    ),
    (
        "reproduce_value_of_wrong_type",
        "reproduce",
        ["--config.num_steps=abc", "--outdir={outdir}"],
        ["--config.num_steps=abc", "num_steps takes an integer"],
    ),
    (
        "reproduce_recipe",
        "reproduce",
        [QUICKSTART, "--outdir={outdir}"],
        ["reproduce takes no recipe (--config=quickstart)", "--config.SETTING=VALUE"],
    ),
    (
        "reproduce_figure_folder_is_a_file",
        "reproduce",
        [
            "--figures=dlwp1_single,dlwp2_single",
            "--config.weights=none",
            FAST,
            "--outdir={figures}",
        ],
        ["dlwp2_single'", "is a file"],
    ),
    (
        "benchmark_unknown_flag",
        "benchmark",
        ["--refrence=false", "--outdir={outdir}"],
        ["unknown flag --refrence", "reference"],
    ),
    (
        "benchmark_undeclared_setting",
        "benchmark",
        ["--config.num_stepz=1", "--outdir={outdir}"],
        ["'num_stepz'", "num_steps"],
    ),
    (
        "benchmark_missing_config_file",
        "benchmark",
        ["--config=/nowhere/recipe.py", "--outdir={outdir}"],
        ["'/nowhere/recipe.py' does not exist"],
    ),
    (
        "benchmark_config_folder",
        "benchmark",
        ["--config={figures}", "--outdir={outdir}"],
        ["is a folder; expected a recipe's .py file"],
    ),
    (
        "benchmark_zero_sweep_steps",
        "benchmark",
        ["--sweep_steps=0", "--outdir={outdir}"],
        ["--sweep_steps=0", "positive integer"],
    ),
    (
        "benchmark_negative_batch_size",
        "benchmark",
        ["--batch_sweep=8,-1", *SMALL_BENCHMARK, "--outdir={outdir}"],
        ["--batch_sweep=8,-1", "integers ≥ 1"],
    ),
    (
        "benchmark_recipe_the_reference_cannot_run",
        "benchmark",
        [QUICKSTART, "--outdir={outdir}"],
        ["--config.parameterization='fourier'", "--noreference"],
    ),
    (
        "benchmark_outdir_is_a_file",
        "benchmark",
        ["--noreference", *SMALL_BENCHMARK, "--outdir={a_file}"],
        ["a_file'", "is a file"],
    ),
    ("merge_unknown_flag", "merge", ["--outdri={outdir}", "shard_0"], ["unknown flag --outdri"]),
    (
        "hed_vgg16_weights_flag_of_keras_filters",
        "hed_vgg16_weights",
        ["--outdir={outdir}"],
        ["unknown flag --outdir", "output"],
    ),
    (
        "hed_vgg16_weights_output_under_a_file",
        "hed_vgg16_weights",
        ["--output={a_file}/vgg16.weights.h5"],
        ["a_file/vgg16.weights.h5", "is a file"],
    ),
    (
        "train_quality_models_missing_flag",
        "train_quality_models",
        ["--output={outdir}/rgb.keras"],
        ["--kind", "must have a value"],
    ),
    (
        "train_quality_models_zero_epochs",
        "train_quality_models",
        ["--kind=rgb", "--epochs=0", "--output={outdir}/rgb.keras"],
        ["--epochs=0", "positive integer"],
    ),
    (
        "train_quality_models_layout_for_grey",
        "train_quality_models",
        ["--kind=grey", "--layout=paired", "--output={outdir}/grey.keras"],
        ["--layout=paired", "--kind=rgb", "--layout=single"],
    ),
    (
        "train_quality_models_output_under_a_file",
        "train_quality_models",
        ["--kind=rgb", *SMALL_TRAINING, "--output={a_file}/rgb.keras"],
        ["a_file/rgb.keras", "is a file"],
    ),
    (
        "train_demo_model_wrong_suffix",
        "train_demo_model",
        ["--num_test=10", *SMALL_TRAINING, "--output={outdir}/demo.h5x"],
        ["demo.h5x", "'.keras'"],
    ),
]

CONCURRENT_COMMANDS = 3


def run_script(script: str, *args) -> subprocess.CompletedProcess:
    """Runs scripts/<script>.py as a user would; one that runs too long counts as exit code None."""
    command = [sys.executable, os.path.join(REPO_ROOT, "scripts", f"{script}.py"), *args]
    try:
        return subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=command_environment(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, None, "", f"still running after {TIMEOUT} s")


@pytest.fixture(scope="module")
def outcomes(request, files, tmp_path_factory):
    """{case: (finished process, outdir)} for the cases selected in this session."""
    selected = {
        item.callspec.params["case"]
        for item in request.session.items
        if item.originalname == "test_script_bad_input_is_one_line_exit_2_and_writes_nothing"
    }

    def run_case(case, script, arguments):
        outdir = tmp_path_factory.mktemp(case) / "out"
        arguments = [argument.format(outdir=outdir, **files) for argument in arguments]
        return run_script(script, *arguments), outdir

    with ThreadPoolExecutor(CONCURRENT_COMMANDS) as pool:
        futures = {
            case: pool.submit(run_case, case, script, arguments)
            for case, script, arguments, _ in CASES
            if case in selected
        }
        return {case: future.result() for case, future in futures.items()}


def assert_one_line_error(finished, script, expected):
    assert finished.returncode == 2, (finished.returncode, finished.stderr)
    assert "Traceback" not in finished.stderr
    lines = finished.stderr.splitlines()
    assert len(lines) == 1, finished.stderr
    assert lines[0].startswith(f"{script}: error: "), lines[0]
    for text in expected:
        assert text in lines[0], (text, lines[0])


@pytest.mark.parametrize(
    "case, script, arguments, expected", CASES, ids=[case[0] for case in CASES]
)
def test_script_bad_input_is_one_line_exit_2_and_writes_nothing(
    case, script, arguments, expected, files, outcomes
):
    finished, outdir = outcomes[case]
    assert_one_line_error(finished, script, expected)
    assert not outdir.exists()
    assert sorted(os.listdir(files["figures"])) == ["dlwp2_single"]
    assert open(files["a_file"]).read() == "I am a file"
