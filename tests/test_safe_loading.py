"""Model files with Python code in them are refused unless the user opts in, naming the layer."""

import keras
import pytest
from conftest import nan_channel_model

from keras_filters import errors, models


@pytest.fixture(scope="module")
def lambda_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "with_lambda.keras"
    nan_channel_model().save(path)
    return str(path)


def test_lambda_layer_is_refused_in_safe_mode_naming_layer_and_opt_in(lambda_file):
    with pytest.raises(errors.UsageError) as raised:
        models.load_model(lambda_file)
    message = str(raised.value)
    assert "'nan_channel'" in message and lambda_file in message
    assert "--config.unsafe_deserialization=true" in message
    assert "\n" not in message


def test_lambda_layer_loads_and_runs_with_the_opt_in(lambda_file):
    model = models.load_model(lambda_file, unsafe_deserialization=True)
    assert type(model.get_layer("nan_channel")).__name__ == "Lambda"
    outputs = keras.ops.convert_to_numpy(model(keras.ops.ones((1, 5, 5, 3))))
    assert outputs.shape == (1, 3, 3, 4)
    assert keras.ops.convert_to_numpy(keras.ops.isnan(outputs)).any(axis=(0, 1, 2)).tolist() == [
        False,
        False,
        True,
        False,
    ]


def test_lambda_layer_inside_a_nested_model_is_named(tmp_path):
    inputs = keras.Input((None, None, 3))
    outputs = nan_channel_model()(keras.layers.Conv2D(3, 1, name="pre")(inputs))
    path = str(tmp_path / "nested.keras")
    keras.Model(inputs, outputs, name="outer").save(path)
    with pytest.raises(errors.UsageError, match="layer 'nan_channel'"):
        models.load_model(path)
