"""Batching is fast and changes nothing: results do not depend on the chunk size, mixed
bfloat16 stays close to float32, the batch size follows the free memory."""

import keras
import numpy as np
import pytest
from conftest import SMALL_RUN, random_images

from keras_filters import api, pipeline
from keras_filters.job import batching
from keras_filters.model import extractor, variants
from keras_filters.settings import Settings

SETTINGS = SMALL_RUN


def resolved(**overrides) -> Settings:
    return Settings.create({**SETTINGS, "layer": "conv_b", **overrides})


@pytest.mark.parametrize("mixed_precision", [False, True])
def test_results_do_not_depend_on_chunk_size(cnn, mixed_precision):
    results = [
        api.visualize_filters(
            cnn, "conv_b", range(4), batch_size=size, mixed_precision=mixed_precision, **SETTINGS
        )
        for size in (4, 3, 1)
    ]
    for other in results[1:]:
        np.testing.assert_allclose(other.inputs, results[0].inputs, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(other.loss_history, results[0].loss_history, rtol=1e-4)


def test_mixed_precision_copy_computes_in_bfloat16_with_the_same_weights(nested_cnn):
    features = extractor.build_feature_extractor(nested_cnn, "inner/conv_b")
    copy = variants.mixed_precision_copy(features)

    def policies(model):
        return {
            layer.dtype_policy.name
            for layer in model._flatten_layers()
            if layer.weights and not isinstance(layer, keras.Model)
        }

    assert policies(copy) == {"mixed_bfloat16"}  # the nested model's layers included
    assert policies(nested_cnn) == {"float32"}
    assert all(weight.dtype == "float32" for weight in copy.weights)
    for copied, original in zip(copy.get_weights(), features.get_weights(), strict=True):
        np.testing.assert_array_equal(copied, original)
    images = random_images(2, 12)
    computed = copy(images)["inner/conv_b"]
    assert computed.dtype == "bfloat16"
    np.testing.assert_allclose(
        np.asarray(keras.ops.cast(computed, "float32")),
        features(images)["inner/conv_b"],
        rtol=0.05,
        atol=0.05,
    )


def test_bfloat16_mode_keeps_image_and_loss_in_float32_and_close_to_float32(cnn):
    float32 = api.visualize_filters(cnn, "conv_b", range(4), **SETTINGS)
    plan = pipeline.plan_layer(cnn, resolved(filter_indices=(0, 1), mixed_precision=True))
    renderer = plan.renderer
    images = keras.ops.convert_to_tensor(renderer.initial_params([0, 1]))
    new_images, _, losses, _ = renderer.step(
        images,
        (),
        keras.ops.convert_to_tensor(np.array([0, 1], np.int32)),
        keras.ops.convert_to_tensor(np.float32(0.5)),
        keras.ops.zeros((2, 0)),
    )
    dtypes = {keras.backend.standardize_dtype(x.dtype) for x in (images, new_images, losses)}
    assert dtypes == {"float32"}
    assert renderer.extractor.output["conv_b"].dtype == "bfloat16"
    mixed = api.visualize_filters(cnn, "conv_b", range(4), mixed_precision=True, **SETTINGS)
    assert mixed.inputs.dtype == mixed.losses.dtype == mixed.loss_history.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa: the losses agree to about 1%, not to float32 precision.
    np.testing.assert_allclose(mixed.losses, float32.losses, rtol=0.03)
    assert not np.array_equal(mixed.losses, float32.losses)


def test_auto_batch_size_follows_the_free_memory(cnn, monkeypatch):
    features = extractor.build_feature_extractor(cnn, "conv_b")
    per_image = batching.backends.current().activation_bytes(features, (1, 32, 32, 3))
    # conv_a and conv_b on 32 px hold at least 30x30x6 + 30x30x4 floats.
    assert per_image >= 4 * (30 * 30 * 6 + 30 * 30 * 4)
    monkeypatch.setattr(batching, "available_memory_bytes", lambda: int(per_image * 25))
    # 40% of 25 images' worth of memory holds 10 images; never more than the filters asked.
    assert batching.auto_batch_size(features, 32, num_filters=100) == 10
    assert batching.auto_batch_size(features, 32, num_filters=4) == 4
    monkeypatch.setattr(batching, "available_memory_bytes", lambda: 1 << 40)
    assert batching.auto_batch_size(features, 32, num_filters=1000) == batching.MAX_AUTO_BATCH
