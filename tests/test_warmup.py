"""The ReLU-gradient warm-up (issue 10, point 5): dead filters get a direction."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_filters
from keras_filters.model import variants


def gradient_of(function, inputs, upstream):
    """d sum(function(inputs) · upstream) / d inputs on the Keras backend in use."""
    inputs = np.asarray(inputs, np.float32)
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda x: (function(x) * upstream).sum())(inputs))
    import tensorflow as tf

    value = tf.constant(inputs)
    with tf.GradientTape() as tape:
        tape.watch(value)
        total = tf.reduce_sum(function(value) * upstream)
    return tape.gradient(total, value).numpy()


def test_redirected_relu_is_relu_forward_and_redirects_only_where_nothing_gets_through():
    upstream = np.array([[1.0, -1.0, 1.0, -1.0]], np.float32)
    some_on = np.array([[-1.0, -1.0, 2.0, 2.0]], np.float32)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(variants.redirected_relu(some_on)), [[0.0, 0.0, 2.0, 2.0]]
    )
    # Some gradient gets through: the plain ReLU gradient, nothing redirected.
    np.testing.assert_array_equal(
        gradient_of(variants.redirected_relu, some_on, upstream), [[0.0, 0.0, 1.0, -1.0]]
    )
    # Nothing gets through: passed where the upstream would raise the input.
    all_off = np.array([[-1.0, -1.0, -2.0, -2.0]], np.float32)
    np.testing.assert_array_equal(
        gradient_of(variants.redirected_relu, all_off, upstream), [[1.0, 0.0, 1.0, 0.0]]
    )


def dead_from_noise_model():
    """c2[0] is off for every picture near grey, so a plain ReLU gives it no gradient.

    c1[0] = relu(r + g + b − 2.4) is off while the picture's mean is below 0.8;
    c2[0] = relu(c1[0] − 0.1).
    """
    image = keras.Input((8, 8, 3))
    first = keras.layers.Conv2D(2, 1, activation="relu", name="c1")(image)
    second = keras.layers.Conv2D(1, 1, name="c2_linear")(first)
    output = keras.layers.ReLU(name="c2")(second)
    model = keras.Model(image, output)
    model.get_layer("c1").set_weights(
        [np.array([[[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]]], np.float32), np.array([-2.4, 0.0])]
    )
    model.get_layer("c2_linear").set_weights(
        [np.array([[[[1.0], [0.0]]]], np.float32), np.array([-0.1], np.float32)]
    )
    return model


def test_warmup_copy_keeps_forward_values_and_counts_its_relus():
    model = dead_from_noise_model()
    copy, redirected = variants.relu_warmup_copy(model)
    assert redirected == 2  # c1's activation and the ReLU layer c2.
    images = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(copy(images)), ops.convert_to_numpy(model(images))
    )


RUN = dict(
    parameterization="fourier",
    input_range=(0, 1),
    deprocess="picture",
    image_size=8,
    num_steps=40,
    step_size=0.5,
    gradient_normalization="rms",
    progress=False,
)


def test_without_warmup_a_filter_dead_from_noise_stays_dead():
    result = keras_filters.visualize_filters(dead_from_noise_model(), "c2", [0], **RUN)
    assert result.loss_history[0, 0] == 0.0
    assert result.losses[0] == 0.0 and result.dead[0]
    assert not result.needed_warmup[0]


def test_warmup_makes_a_filter_dead_from_noise_come_alive():
    result = keras_filters.visualize_filters(
        dead_from_noise_model(), "c2", [0], relu_warmup_steps=30, **RUN
    )
    assert result.loss_history[0, 0] == 0.0  # Noise did not excite it …
    assert result.needed_warmup[0]  # … so the run says it needed the warm-up,
    assert result.losses[0] > 0.05 and not result.dead[0]  # and it came alive.
    # The picture it found is bright: r + g + b had to pass 2.4 + 0.1.
    assert result.inputs[0].sum(axis=-1).mean() > 2.5


@pytest.mark.parametrize("steps", [0, 5])
def test_warmup_changes_nothing_for_a_live_filter(steps):
    image = keras.Input((8, 8, 3))
    model = keras.Model(image, keras.layers.Conv2D(1, 1, activation="relu", name="c")(image))
    model.get_layer("c").set_weights([np.ones((1, 1, 3, 1), np.float32), np.zeros(1)])
    base = dict(RUN, num_steps=5)
    plain = keras_filters.visualize_filters(model, "c", [0], **base)
    warmed = keras_filters.visualize_filters(model, "c", [0], relu_warmup_steps=steps, **base)
    np.testing.assert_allclose(warmed.inputs, plain.inputs, rtol=1e-6, atol=1e-7)


def test_run_json_says_which_filters_needed_the_warmup(tmp_path):
    from keras_filters.job import run as job

    image = keras.Input((8, 8, 3))
    first = keras.layers.Conv2D(2, 1, activation="relu", name="c1")(image)
    model = keras.Model(image, first)
    # Filter 0 fires on grey (bias +0.1); filter 1 only on bright pictures (bias −2.4).
    model.get_layer("c1").set_weights([np.ones((1, 1, 3, 2), np.float32), np.array([0.1, -2.4])])
    path = str(tmp_path / "two_filters.keras")
    model.save(path)
    settings = dict(RUN, model=path, layer="c1", relu_warmup_steps=30, max_filters=2)
    record = job.run(str(tmp_path / "out"), settings)
    needed = {entry["index"]: entry["needed_warmup"] for entry in record["filters"]}
    assert needed == {0: False, 1: True}
    assert all(not entry["dead"] for entry in record["filters"])
