"""scripts/reproduce.py renders figures into one folder with an index.html that escapes names."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import pytest
from conftest import REPO_ROOT
from PIL import Image

from keras_filters import errors
from keras_filters.job import resume
from keras_filters.job import run as runner
from keras_filters.tools import reproduce

SCRIPT_TAG = "<script>alert(1)</script>"
IMAGE_MODEL = "<img src=x onerror=alert(1)>"


def run_reproduce(*args, timeout=300) -> subprocess.CompletedProcess:
    """Runs scripts/reproduce.py as a user would."""
    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "reproduce.py"), *args],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.end_to_end
def test_reproduce_writes_each_figure_and_the_index_with_overrides_applied(tmp_path):
    finished = run_reproduce(
        "--figures=dlwp1_single,dlwp2_single",
        "--config.weights=none",
        "--config.num_steps=1",
        "--config.progress=false",
        f"--outdir={tmp_path}",
    )
    assert finished.returncode == 0, finished.stderr
    assert "Traceback" not in finished.stderr
    assert "warning" not in finished.stderr  # Every override acts on every figure.
    assert sorted(os.listdir(tmp_path)) == ["dlwp1_single", "dlwp2_single", "index.html"]
    for name, layer in [("dlwp1_single", "block3_conv1"), ("dlwp2_single", "block3_sepconv1")]:
        assert Image.open(tmp_path / name / "mosaic.png").size == (150, 150)
        record = json.loads((tmp_path / name / "run.json").read_text())
        assert record["layer"] == layer
        assert record["settings"]["weights"] == "none" and record["settings"]["num_steps"] == 1
    page = (tmp_path / "index.html").read_text()
    assert page.count("<section") == 2
    assert '<img src="dlwp1_single/mosaic.png"' in page
    assert "Deep Learning with Python (F. Chollet), 2nd edition" in page
    assert "--config=configs/dlwp2_single.py --config.weights=none --config.num_steps=1" in page
    seconds = json.loads((tmp_path / "dlwp2_single" / "run.json").read_text())["seconds"]
    assert f"<th>Time taken</th><td>{seconds} s</td>" in page


def test_unknown_figure_fails_in_one_line_before_writing_anything(tmp_path):
    outdir = tmp_path / "figures"
    finished = run_reproduce("--figures=kerasio,keras_io", f"--outdir={outdir}")
    assert finished.returncode == 2
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown figure 'keras_io'" in lines[0] and "kerasio" in lines[0]
    assert not outdir.exists()


def test_overrides_without_effect_are_reported_once_for_the_figures_they_miss():
    figures = reproduce.select_figures(["keras_v3_upscale", "dlwp1_single", "dlwp2_single"])
    overrides = {"fourier_decay": 2.0, "upscale_factor": 1.3, "num_steps": 1}
    assert reproduce.unused_overrides(figures, overrides) == [
        "figures 'keras_v3_upscale', 'dlwp1_single', 'dlwp2_single': fourier_decay=2.0 has no "
        "effect with parameterization='pixel': it applies only with parameterization='fourier'",
        "figures 'dlwp1_single', 'dlwp2_single': upscale_factor=1.3 has no effect with "
        "num_upscalings=0: it applies only with num_upscalings ≥ 1",
    ]
    assert reproduce.unused_overrides(figures, {"num_steps": 1, "weights": "none"}) == []


def test_the_script_warns_of_an_override_without_effect_before_the_first_figure(tmp_path):
    taken = tmp_path / "a_file"
    taken.write_text("")
    finished = run_reproduce(
        "--figures=dlwp1_single", "--config.upscale_factor=1.3", f"--outdir={taken}"
    )
    assert finished.returncode == 2
    warning, error = finished.stderr.strip().splitlines()
    assert warning == (
        "reproduce: warning: figure 'dlwp1_single': --config.upscale_factor=1.3 has no effect "
        "with --config.num_upscalings=0: it applies only with num_upscalings ≥ 1"
    )
    assert error.startswith("reproduce: error: ")


def test_select_figures_keeps_the_order_asked_and_defaults_to_all():
    names = [figure.name for figure in reproduce.select_figures(["dlwp2", "kerasio"])]
    assert names == ["dlwp2", "kerasio"]
    assert reproduce.select_figures([]) == list(reproduce.FIGURES)
    with pytest.raises(errors.UsageError, match="unknown figure 'dlwp4'"):
        reproduce.select_figures(["dlwp4"])


def hostile_model() -> keras.Model:
    """A model whose layer path holds a script tag and whose name is an image with a handler.

    Keras refuses "/" in a name, so no layer can be named SCRIPT_TAG itself; but a layer's path
    joins the names of the models that hold it with "/": the layer "conv" inside the model
    "script>" inside the model "<script>alert(1)<" has the path SCRIPT_TAG + "/conv". (The
    layer that runs keeps a plain name: TensorFlow refuses "<" in the name of an op it runs.)
    """
    innermost_inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(2, 1, name="conv")
    innermost = keras.Model(innermost_inputs, conv(innermost_inputs), name="script>")
    inner_inputs = keras.Input((None, None, 3))
    inner = keras.Model(inner_inputs, innermost(inner_inputs), name="<script>alert(1)<")
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, inner(inputs), name=IMAGE_MODEL)


def test_index_escapes_model_layer_and_setting_values(tmp_path):
    model_path = tmp_path / "hostile.keras"
    hostile_model().save(str(model_path))
    config_path = tmp_path / "hostile_config.py"
    config_path.write_text(
        '"""Figure: a model with hostile names."""\n'
        "from configs import base\n\n\n"
        "def get_config():\n"
        "    config = base.get_config()\n"
        f"    config.model = {str(model_path)!r}\n"
        f"    config.layer = {SCRIPT_TAG + '/conv'!r}\n"
        "    config.image_size = 8\n"
        "    config.num_steps = 1\n"
        "    config.init_low = -1.0\n"
        "    config.selection = 'first'\n"
        "    config.grid_rows = 1\n"
        "    config.grid_cols = 2\n"
        "    return config\n"
    )
    figure = reproduce.Figure("hostile", str(config_path), "<b>a source</b>")
    # A text setting this run does not read (it is the atlas's).
    overrides = {"progress": False, "examples_dir": "<i>none</i>"}
    rendered = reproduce.reproduce(str(tmp_path / "out"), [figure], overrides)
    assert rendered[0].record["layer"] == SCRIPT_TAG + "/conv"
    assert rendered[0].record["model"] == IMAGE_MODEL
    page = (tmp_path / "out" / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;a source&lt;/b&gt;" in page and "&lt;i&gt;none&lt;/i&gt;" in page
    for raw in ["<script", "<img src=x", "<b>", "<i>"]:
        assert raw not in page, raw


@pytest.mark.end_to_end
def test_gallery_accumulates_figures_of_earlier_calls_and_takes_table_names(tmp_path):
    common = ["--config.weights=none", "--config.num_steps=1", "--config.progress=false"]
    first = run_reproduce("--figures=dlwp1_single", *common, f"--outdir={tmp_path}")
    assert first.returncode == 0, first.stderr
    second = run_reproduce(
        "--figures=dlwp2_single", *common, "--config.seed=3", f"--outdir={tmp_path}"
    )
    assert second.returncode == 0, second.stderr
    page = (tmp_path / "index.html").read_text()
    assert page.count("<section") == 2
    assert '<img src="dlwp1_single/mosaic.png"' in page
    assert '<img src="dlwp2_single/mosaic.png"' in page
    assert "<code>seed=3</code>" in page  # each figure says what it ran with over its recipe
    names = [figure.name for figure in reproduce.select_figures(["dlwp1", "kerasio"])]
    assert names == [f"dlwp1_block{block}_conv1" for block in range(1, 5)] + ["kerasio"]


@pytest.mark.end_to_end
def test_interrupted_reproduce_ends_in_one_line_and_the_same_command_keeps_finished_figures(
    tmp_path,
):
    # The second figure runs its 64 filters in 16 chunks; Ctrl-C once its first chunk is saved.
    second = "dlwp1_block1_conv1"
    arguments = [
        sys.executable,
        os.path.join(REPO_ROOT, "scripts", "reproduce.py"),
        f"--figures=dlwp1_single,{second}",
        "--config.weights=none",
        "--config.num_steps=5",
        "--config.batch_size=4",
        "--config.progress=false",
        f"--outdir={tmp_path}",
    ]
    environment = dict(os.environ, PYTHONPATH=REPO_ROOT)
    process = subprocess.Popen(
        arguments, cwd=REPO_ROOT, env=environment, stderr=subprocess.PIPE, text=True
    )
    first_chunk = tmp_path / second / resume.PROGRESS_FOLDER / "chunk_00000.npz"
    deadline = time.monotonic() + 240
    while not first_chunk.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("reproduce: interrupted by SIGINT after "), stderr
    assert last_line.endswith(" of 64 filters; run the same command again to finish")
    first_record = (tmp_path / "dlwp1_single" / "run.json").read_text()
    assert json.loads((tmp_path / second / "run.json").read_text())["complete"] is False
    assert not (tmp_path / "index.html").exists()

    again = subprocess.run(
        arguments, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert "figure 1/2: dlwp1_single is already done" in again.stderr
    assert f"figure 2/2: {second}\n" in again.stderr and "resuming" in again.stderr
    assert (tmp_path / "dlwp1_single" / "run.json").read_text() == first_record  # Not rerun.
    assert json.loads((tmp_path / second / "run.json").read_text())["complete"] is True
    assert (tmp_path / "index.html").read_text().count("<section") == 2


def test_a_finished_figure_is_kept_only_for_the_same_settings(tmp_path):
    figure = reproduce.select_figures(["dlwp1_single"])[0]
    _, settings = reproduce.figure_settings(figure, {"weights": "none", "num_steps": 1})
    folder = str(tmp_path / figure.name)
    assert runner.finished_record(folder, settings) is None  # Nothing there yet.
    record = runner.run(folder, settings, log=open(os.devnull, "w"))
    written = json.loads((tmp_path / figure.name / "run.json").read_text())
    assert written["seconds"] == record["seconds"]
    assert runner.finished_record(folder, settings) == written
    assert runner.finished_record(folder, settings.replace(num_steps=2)) is None
    os.remove(os.path.join(folder, record["mosaic"]["file"]))
    assert runner.finished_record(folder, settings) is None  # Its mosaic is gone.


def test_an_unfinished_figure_of_other_settings_is_refused_before_any_figure_runs(tmp_path):
    first, second = reproduce.select_figures(["dlwp1_single", "dlwp2_single"])
    overrides = {"weights": "none", "num_steps": 1, "progress": False}
    _, earlier = reproduce.figure_settings(second, dict(overrides, num_steps=5))
    stopped_folder = tmp_path / second.name
    resume.ProgressStore(str(stopped_folder)).start({}, earlier.to_dict(), [0], 1)
    with pytest.raises(errors.UsageError) as raised:
        reproduce.reproduce(str(tmp_path), [first, second], overrides)
    message = str(raised.value)
    assert message.startswith("figure 'dlwp2_single': ") and "num_steps: 5 there, 1 now" in message
    assert sorted(os.listdir(tmp_path)) == [second.name]  # The first figure did not run.


def test_the_index_leaves_out_a_figure_whose_run_was_interrupted(tmp_path):
    figure = reproduce.select_figures(["dlwp1_single"])[0]
    reproduce.reproduce(str(tmp_path), [figure], {"weights": "none", "num_steps": 1})
    assert [item.figure for item in reproduce.rendered_figures(str(tmp_path))] == [figure]
    path = tmp_path / figure.name / "run.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps(dict(record, complete=False, interrupted="SIGINT")))
    assert reproduce.rendered_figures(str(tmp_path)) == []
