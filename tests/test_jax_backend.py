"""The JAX step takes the same steps as the TensorFlow one, and the command runs on JAX.

Keras picks its backend once per process, so the JAX side runs in a subprocess with
KERAS_BACKEND=jax. JAX is an optional backend, not a dependency: without it these tests are
reported as skipped, with the reason.
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT, channel_step, random_images, run_command, small_cnn

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("jax") is None,
        reason="JAX is not installed (an optional backend): pip install jax to run these tests",
    ),
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="compares a JAX subprocess with this process's TensorFlow backend",
    ),
]

JAX_STEPS = """
import sys
import numpy as np
import keras
sys.path.insert(0, sys.argv[5])
from conftest import channel_step

model = keras.saving.load_model(sys.argv[1])
data = np.load(sys.argv[2])
step = channel_step(model, "conv_b", border=1, gradient_normalization=sys.argv[4])
params = data["images"]
history = []
for _ in range(3):
    params, losses, finite = step(params, data["filters"], 0.5)
    history.append(np.asarray(losses))
np.savez(sys.argv[3], params=np.asarray(params), losses=np.stack(history))
"""


JAX_VARIABLES = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}


@pytest.mark.parametrize("normalization", ["rms", "l2"])
def test_jax_step_matches_tensorflow_step(tmp_path, normalization):
    model = small_cnn()
    model.save(tmp_path / "model.keras")
    images, filters = random_images(3, 12, seed=4), np.array([0, 3, 1], np.int32)
    np.savez(tmp_path / "inputs.npz", images=images, filters=filters)
    step = channel_step(model, "conv_b", border=1, gradient_normalization=normalization)
    params, history = images, []
    for _ in range(3):
        params, losses, _ = step(params, filters, 0.5)
        history.append(np.asarray(losses))
    finished = subprocess.run(
        [
            sys.executable,
            "-c",
            JAX_STEPS,
            str(tmp_path / "model.keras"),
            str(tmp_path / "inputs.npz"),
            str(tmp_path / "jax.npz"),
            normalization,
            os.path.dirname(os.path.abspath(__file__)),
        ],
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, **JAX_VARIABLES),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    jax_result = np.load(tmp_path / "jax.npz")
    np.testing.assert_allclose(jax_result["losses"], np.stack(history), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(jax_result["params"], np.asarray(params), rtol=1e-4, atol=1e-5)


@pytest.mark.end_to_end
def test_quickstart_on_jax_gives_the_tensorflow_losses(tmp_path):
    runs = {}
    for backend in ("tensorflow", "jax"):
        environment = JAX_VARIABLES if backend == "jax" else None
        outdir = tmp_path / backend
        finished = run_command(
            "--config=configs/quickstart_faithful.py",
            "--config.max_filters=8",
            "--config.grid_rows=2",
            "--config.grid_cols=4",
            f"--outdir={outdir}",
            environment=environment,
        )
        assert finished.returncode == 0, finished.stderr
        runs[backend] = json.loads((outdir / "run.json").read_text())
    assert "jax" in runs["jax"]["versions"] and "tensorflow" in runs["tensorflow"]["versions"]
    tf_losses = [entry["loss"] for entry in runs["tensorflow"]["filters"]]
    jax_losses = [entry["loss"] for entry in runs["jax"]["filters"]]
    np.testing.assert_allclose(jax_losses, tf_losses, rtol=2e-3)
