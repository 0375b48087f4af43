"""The sub-model reproduces the layers' outputs in the full model, nested models included."""

import keras
import numpy as np
import pytest
from conftest import random_images, small_cnn

from keras_filters import errors
from keras_filters.model import extractor as extractor_lib


def test_feature_extractor_equals_layer_output_in_full_model(cnn):
    images = random_images(2, 12)
    extractor = extractor_lib.build_feature_extractor(cnn, "conv_b")
    probe = keras.Model(cnn.inputs[0], [cnn.get_layer("conv_b").output, cnn.output])
    expected, _ = probe(images)
    np.testing.assert_allclose(extractor(images)["conv_b"], expected, rtol=1e-6)


def test_feature_extractor_gives_several_layers_in_one_pass(nested_cnn):
    images = random_images(2, 12, seed=2)
    extractor = extractor_lib.build_feature_extractor(nested_cnn, ["inner/conv_b", "pre"])
    outputs = extractor(images)
    assert set(outputs) == {"inner/conv_b", "pre"}
    np.testing.assert_allclose(outputs["pre"], nested_cnn.get_layer("pre")(images), rtol=1e-6)
    alone = extractor_lib.build_feature_extractor(nested_cnn, "inner/conv_b")(images)
    np.testing.assert_allclose(outputs["inner/conv_b"], alone["inner/conv_b"], rtol=1e-6)


def test_feature_extractor_reaches_layer_inside_nested_model(nested_cnn):
    images = random_images(2, 12, seed=1)
    extractor = extractor_lib.build_feature_extractor(nested_cnn, "inner/conv_b")
    pre = nested_cnn.get_layer("pre")(images)
    inner = nested_cnn.get_layer("inner")
    expected = keras.Model(inner.inputs[0], inner.get_layer("conv_b").output)(pre)
    np.testing.assert_allclose(extractor(images)["inner/conv_b"], expected, rtol=1e-5, atol=1e-6)
    assert extractor.output["inner/conv_b"].shape[-1] == 4


def test_unique_plain_name_finds_nested_layer(nested_cnn):
    assert extractor_lib.find_layer(nested_cnn, "conv_a").name == "inner/conv_a"


def test_nested_model_inside_sequential():
    inner = small_cnn(name="inner")
    model = keras.Sequential([keras.Input((10, 10, 3)), inner, keras.layers.Dense(2)])
    extractor = extractor_lib.build_feature_extractor(model, "inner/conv_a")
    images = random_images(1, 10)
    expected = keras.Model(inner.inputs[0], inner.get_layer("conv_a").output)(images)
    np.testing.assert_allclose(extractor(images)["inner/conv_a"], expected, rtol=1e-6)


def test_list_layers_gives_name_type_shape_and_filters(nested_cnn):
    listed = {info.name: info for info in extractor_lib.list_layers(nested_cnn)}
    assert listed["inner/conv_a"].type == "Conv2D"
    assert listed["inner/conv_a"].num_filters == 6
    assert listed["inner/conv_a"].output_shape == (None, None, None, 6)
    assert listed["inner/logits"].num_filters == 3
    assert "pre" in listed


def test_unknown_layer_lists_closest_names_first(cnn):
    with pytest.raises(errors.UsageError) as raised:
        extractor_lib.find_layer(cnn, "conv_c")
    message = str(raised.value)
    choices = message.split("choose one of: ")[1].split(", ")
    assert "'conv_c'" in message
    assert set(choices[:2]) == {"conv_a", "conv_b"} and set(choices[2:]) == {"pool", "logits"}
