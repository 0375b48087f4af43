"""The real command line on the quickstart config writes the mosaic and the JSON.

The quickstart's quality recipe takes 256 steps (the README's run); four are enough here.
"""

import json
import os

import numpy as np
import pytest
from conftest import run_command
from PIL import Image


@pytest.mark.end_to_end
def test_quickstart_writes_mosaic_and_json(tmp_path):
    outdir = tmp_path / "out"
    finished = run_command(
        "--config=configs/quickstart.py", "--config.num_steps=4", f"--outdir={outdir}"
    )
    assert finished.returncode == 0, finished.stderr
    assert "Traceback" not in finished.stderr
    # The recipe's own settings without effect (its pixel noise, say) are not the user's.
    assert "warning" not in finished.stderr
    files = sorted(os.listdir(outdir))
    assert files == ["mosaic.png", "run.json"]
    pixels = np.asarray(Image.open(outdir / "mosaic.png"))
    assert pixels.shape == (547, 547, 3)
    assert np.all(pixels[64:69, :] == 0)  # the first horizontal margin is black
    record = json.loads((outdir / "run.json").read_text())
    assert record["layer"] == "conv3" and len(record["filters"]) == 64
    assert record["mosaic"]["filters"] == list(range(64))
    assert record["settings"]["seed"] == 0
    assert all(isinstance(entry["loss"], float) for entry in record["filters"])


@pytest.mark.end_to_end
def test_override_another_layer_and_save_tiles(tmp_path):
    finished = run_command(
        "--config=configs/quickstart.py",
        "--config.layer=conv1",
        "--config.max_filters=16",
        "--config.grid_rows=4",
        "--config.grid_cols=4",
        "--config.save_tiles=true",
        "--config.num_steps=4",
        f"--outdir={tmp_path}",
    )
    assert finished.returncode == 0, finished.stderr
    assert Image.open(tmp_path / "mosaic.png").size == (4 * 64 + 15, 4 * 64 + 15)
    assert len(os.listdir(tmp_path / "tiles")) == 16
    tile = np.asarray(Image.open(tmp_path / "tiles" / "filter_0005.png"))
    mosaic = np.asarray(Image.open(tmp_path / "mosaic.png"))
    np.testing.assert_array_equal(mosaic[69 : 69 + 64, 69 : 69 + 64], tile)


def test_list_layers(tmp_path):
    finished = run_command("--config=configs/quickstart.py", "--list_layers")
    assert finished.returncode == 0, finished.stderr
    rows = {line.split()[0]: line for line in finished.stdout.splitlines()[1:]}
    assert list(rows) == ["conv1", "pool1", "conv2", "pool2", "conv3", "global_pool", "logits"]
    assert rows["conv3"].split() == [
        "conv3",
        "Conv2D",
        "(None,",
        "None,",
        "None,",
        "64)",
        "64",
        "filters",
    ]
    assert rows["logits"].split() == ["logits", "Dense", "(None,", "6)", "6", "units"]


def test_an_override_without_effect_is_a_warning_and_the_run_goes_on(tmp_path):
    finished = run_command(
        "--config=configs/quickstart.py",
        "--config.parameterization=pixel",
        "--config.fourier_decay=2",
        "--config.init_low=0.4",  # Read by the pixel parameterization: no warning.
        "--config.max_filters=2",
        "--config.num_steps=1",
        "--config.progress=false",
        f"--outdir={tmp_path}",
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr.splitlines() == [
        "keras-filters: warning: --config.fourier_decay=2.0 has no effect with "
        "--config.parameterization='pixel': it applies only with "
        "--config.parameterization='fourier'"
    ]
    assert sorted(os.listdir(tmp_path)) == ["mosaic.png", "run.json"]
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["settings"]["fourier_decay"] == 2.0 and len(record["filters"]) == 2
