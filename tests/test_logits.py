"""linear_output: a copy of the classifier that outputs logits; the original stays as it was."""

import keras
import numpy as np
import pytest

from keras_filters import errors
from keras_filters.model import variants as logits


def dense_classifier(activation="softmax"):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, activation=activation, name="predictions")(hidden)
    return keras.Model(inputs, outputs, name="classifier")


X = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)


def test_dense_softmax_becomes_its_logits_with_shared_weights():
    model = dense_classifier()
    copy = logits.linear_output_model(model)
    hidden = np.asarray(keras.Model(model.inputs[0], model.get_layer("hidden").output)(X))
    kernel, bias = model.get_layer("predictions").get_weights()
    np.testing.assert_allclose(copy(X), hidden @ kernel + bias, rtol=1e-5, atol=1e-6)
    assert copy.get_layer("hidden") is model.get_layer("hidden")
    assert copy.get_layer("predictions") is not model.get_layer("predictions")
    assert copy.get_layer("predictions").name == "predictions"
    np.testing.assert_allclose(np.asarray(model(X)).sum(axis=1), 1.0, rtol=1e-5)  # untouched


def test_trailing_softmax_layer_is_dropped():
    inputs = keras.Input((4,))
    scores = keras.layers.Dense(3, name="scores")(inputs)
    model = keras.Model(inputs, keras.layers.Softmax(name="softmax")(scores))
    copy = logits.linear_output_model(model)
    np.testing.assert_allclose(copy(X), keras.Model(inputs, scores)(X), rtol=1e-6)
    assert copy.layers[-1].name == "scores"


def test_sequential_classifier():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="sigmoid", name="out")]
    )
    copy = logits.linear_output_model(model)
    kernel, bias = model.get_layer("out").get_weights()
    np.testing.assert_allclose(copy(X), X @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_already_linear_output_is_returned_as_is():
    model = dense_classifier(activation=None)
    assert logits.linear_output_model(model) is model


def test_last_layer_without_activation_is_a_usage_error():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(inputs))
    with pytest.raises(errors.UsageError, match="'pool'.*no activation to replace"):
        logits.linear_output_model(model)
