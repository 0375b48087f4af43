"""The acceptance models of the quality recipe (benchmarks/models) load and are what they say."""

import importlib.util
import os

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT

MODELS = os.path.join(REPO_ROOT, "benchmarks", "models")


@pytest.fixture(scope="module")
def training_script():
    """scripts/train_quality_models.py as a module (loaded once: it defines absl flags)."""
    path = os.path.join(REPO_ROOT, "scripts", "train_quality_models.py")
    spec = importlib.util.spec_from_file_location("train_quality_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name, kind, shape, layers",
    [
        ("rgb32.keras", "rgb", (32, 32, 3), {"conv2": 48, "conv4": 96}),
        ("grey64.keras", "grey", (64, 64, 1), {"block3_out": 64}),
    ],
)
def test_acceptance_model_loads_and_classifies_fresh_pictures(
    training_script, name, kind, shape, layers
):
    model = keras.models.load_model(os.path.join(MODELS, name), compile=False)
    assert tuple(model.inputs[0].shape[1:]) == shape
    for layer, filters in layers.items():
        assert model.get_layer(layer).output.shape[-1] == filters
    spec = training_script.KINDS[kind]
    # Fresh pictures from a seed the training never used, in the model's input range.
    images, labels = training_script.make_dataset(200, 12345, shape[0], shape[2])
    logits = model.predict(spec["low"] + images * (spec["high"] - spec["low"]), verbose=0)
    assert np.mean(np.argmax(logits, -1) == labels) > 0.9


def test_the_rgb_model_takes_raw_pixels_through_a_leading_rescaling():
    model = keras.models.load_model(os.path.join(MODELS, "rgb32.keras"), compile=False)
    rescaling = model.layers[1]
    assert isinstance(rescaling, keras.layers.Rescaling)
    np.testing.assert_allclose(rescaling(np.array([0.0, 127.5, 255.0])), [-1.0, 0.0, 1.0])
