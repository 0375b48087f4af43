"""Models load by Keras Applications name, from files and as the demo; bad names fail clearly."""

import keras
import pytest
from conftest import small_cnn

from keras_filters import errors
from keras_filters.model import extractor as layers
from keras_filters.model import loading as models


@pytest.mark.parametrize("name", ["mobilenetv3small", "MobileNetV3Small", "mobilenet_v3_small"])
def test_application_by_name_in_any_case_with_random_weights(name):
    model = models.load_model(name, weights="none")
    assert model.name == "MobileNetV3Small"
    assert model.input_shape == (None, None, None, 3)


def test_every_keras_applications_constructor_is_known():
    constructors = models.application_constructors()
    for name in ["vgg16", "vgg19", "resnet50", "resnet50v2", "inceptionv3", "xception"]:
        assert name in constructors
    assert "convnexttiny" in constructors and "efficientnetb0" in constructors


def test_unknown_application_names_closest_choices():
    with pytest.raises(errors.UsageError, match=r"unknown model 'vgg61'.*vgg16"):
        models.load_model("vgg61", weights="none")


def test_imagenet_download_failure_names_the_file_and_the_two_ways_out(monkeypatch):
    url = "https://storage.googleapis.com/x/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"

    def offline_get_file(*args, **kwargs):
        raise Exception(f"URL fetch failure on {url}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline_get_file)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline_get_file)
    with pytest.raises(errors.UsageError) as raised:
        models.load_model("vgg16", weights="imagenet")
    message = str(raised.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "weights=none" in message and "weights=/path/to/" in message
    assert "--config" not in message  # Library messages are in Python words.
    assert "\n" not in message


def test_local_weights_file_is_loaded(tmp_path):
    source = keras.applications.MobileNetV3Small(
        weights=None, include_top=False, input_shape=(None, None, 3)
    )
    path = str(tmp_path / "mobilenet.weights.h5")
    source.save_weights(path)
    loaded = models.load_model("mobilenetv3small", weights=path)
    for expected, actual in zip(source.get_weights(), loaded.get_weights(), strict=True):
        assert (expected == actual).all()


def test_saved_keras_and_h5_files_load(tmp_path):
    model = small_cnn()
    for suffix in (".keras", ".h5"):
        path = str(tmp_path / f"model{suffix}")
        model.save(path)
        loaded = models.load_model(path)
        assert [w.shape for w in loaded.get_weights()] == [w.shape for w in model.get_weights()]


def test_demo_model_ships_with_the_package():
    model = models.load_model("demo")
    names = [info.name for info in layers.list_layers(model)]
    assert {"conv1", "conv2", "conv3"} <= set(names)
    assert model.input_shape[-1] == 3


def test_missing_model_file_is_a_usage_error(tmp_path):
    with pytest.raises(errors.UsageError, match="does not exist"):
        models.load_model(str(tmp_path / "nothing.keras"))


def test_a_folder_given_as_the_weights_file_is_named_a_folder(tmp_path):
    with pytest.raises(errors.UsageError, match=r"weights file '.*' is a folder; expected"):
        models.load_model("vgg16", weights=str(tmp_path))


def test_loading_passes_on_warnings_but_not_those_about_how_the_file_was_written():
    import warnings

    legacy = (
        "Do not pass an `input_shape`/`input_dim` argument to a layer. When using Sequential "
        "models, prefer using an `Input(shape)` object as the first layer in the model instead."
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with models._warnings_kept_on_success():
            warnings.warn(
                legacy, UserWarning, stacklevel=1
            )  # Once per such layer of a legacy file.
            warnings.warn("a warning about the model itself", UserWarning, stacklevel=1)
    assert [str(warning.message) for warning in caught] == ["a warning about the model itself"]
