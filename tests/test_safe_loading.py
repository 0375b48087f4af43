"""Model files with Python code in them are refused unless the user opts in, naming the layer."""

import keras
import numpy as np
import pytest
from conftest import lambda_model

from keras_filters import errors
from keras_filters.model import loading as models


@pytest.fixture(scope="module")
def lambda_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "with_lambda.keras"
    lambda_model().save(path)
    return str(path)


def test_lambda_layer_is_refused_in_safe_mode_naming_layer_and_opt_in(lambda_file):
    with pytest.raises(errors.UsageError) as raised:
        models.load_model(lambda_file)
    message = str(raised.value)
    assert "'doubling'" in message and lambda_file in message
    assert "unsafe_deserialization=true" in message and "--config" not in message
    assert "\n" not in message


def test_lambda_layer_loads_and_runs_with_the_opt_in(lambda_file):
    model = models.load_model(lambda_file, unsafe_deserialization=True)
    assert type(model.get_layer("doubling")).__name__ == "Lambda"
    images = keras.ops.ones((1, 5, 5, 3))
    outputs = keras.ops.convert_to_numpy(model(images))
    convolved = keras.ops.convert_to_numpy(model.get_layer("conv")(images))
    assert outputs.shape == (1, 3, 3, 4)
    np.testing.assert_allclose(outputs, 2.0 * convolved, rtol=1e-6)


def test_lambda_layer_inside_a_nested_model_is_named(tmp_path):
    inputs = keras.Input((None, None, 3))
    outputs = lambda_model()(keras.layers.Conv2D(3, 1, name="pre")(inputs))
    path = str(tmp_path / "nested.keras")
    keras.Model(inputs, outputs, name="outer").save(path)
    with pytest.raises(errors.UsageError, match="layer 'doubling'"):
        models.load_model(path)
