"""The objectives of the quality recipe and the regularizers match hand computations in NumPy on a
small model; same-kind lists run as one batched objective; diversity's batch stays whole."""

import keras
import numpy as np
import pytest

import keras_filters
from keras_filters import errors, pipeline
from keras_filters.model import extractor
from keras_filters.optvis import objectives
from keras_filters.optvis import step as step_lib
from keras_filters.settings import Settings

HEIGHT, WIDTH, CHANNELS = 5, 6, 2  # Not square: x (column) and y (row) cannot be swapped.


def classifier(final_activation: str | None = "softmax", trailing_softmax: bool = False):
    """A 1x1 ReLU conv ("conv", 3 filters), a spatial mean and a 4-class head ("predictions").

    Every value is a few NumPy lines away (see `by_hand`); the weights are seeded.
    """
    initializer = keras.initializers.RandomNormal(stddev=0.8, seed=3)
    inputs = keras.Input((None, None, CHANNELS), name="image")
    conv = keras.layers.Conv2D(
        3,
        1,
        activation="relu",
        name="conv",
        kernel_initializer=initializer,
        bias_initializer=keras.initializers.Constant(0.1),
    )(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(conv)
    if trailing_softmax:
        scores = keras.layers.Dense(4, name="scores", kernel_initializer=initializer)(pooled)
        outputs = keras.layers.Softmax(name="softmax")(scores)
    else:
        outputs = keras.layers.Dense(
            4, activation=final_activation, name="predictions", kernel_initializer=initializer
        )(pooled)
    return keras.Model(inputs, outputs, name="classifier")


def by_hand(model, images: np.ndarray) -> dict:
    """The model's conv output and logits, computed in NumPy from its weights."""
    kernel, bias = model.get_layer("conv").get_weights()
    conv = np.maximum(images @ kernel[0, 0] + bias, 0.0)
    head = model.layers[-1] if model.layers[-1].weights else model.layers[-2]
    dense_kernel, dense_bias = head.get_weights()
    return {"conv": conv, "logits": conv.mean(axis=(1, 2)) @ dense_kernel + dense_bias}


IMAGES = np.random.default_rng(0).normal(size=(3, HEIGHT, WIDTH, CHANNELS)).astype(np.float32)


def numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def tensors(**values) -> dict:
    return {name: keras.ops.convert_to_tensor(value) for name, value in values.items()}


@pytest.fixture(scope="module")
def model():
    return classifier()


# --- The objectives against NumPy


def test_neuron_is_one_channel_at_the_centre(model):
    conv = by_hand(model, IMAGES)["conv"]
    np.testing.assert_allclose(
        objectives.evaluate(model, objectives.neuron("conv", 2), IMAGES),
        conv[:, HEIGHT // 2, WIDTH // 2, 2],
        rtol=1e-5,
    )


def test_neuron_x_is_the_column_and_y_the_row(model):
    conv = by_hand(model, IMAGES)["conv"]
    np.testing.assert_allclose(
        objectives.evaluate(model, objectives.neuron("conv", 1, x=4, y=1), IMAGES),
        conv[:, 1, 4, 1],
        rtol=1e-5,
    )
    assert not np.allclose(conv[:, 1, 4, 1], conv[:, 4, 1, 1])


def test_neuron_outside_the_map_names_the_valid_positions():
    values = tensors(conv=np.zeros((1, HEIGHT, WIDTH, 3), np.float32))
    with pytest.raises(ValueError, match=r"x=6 is outside the activation map; use 0 … 5"):
        objectives.neuron("conv", 0, x=6)(values)


def test_neuron_of_a_dense_output_says_to_use_channel():
    with pytest.raises(ValueError, match="spatial output.*use channel"):
        objectives.neuron("dense", 0)(tensors(dense=np.zeros((2, 4), np.float32)))


def test_own_neuron_reads_each_images_channel_from_targets():
    values = np.random.default_rng(1).normal(size=(2, 3, 3, 4)).astype(np.float32)
    losses = objectives.neuron("conv", x=0, y=2)(tensors(conv=values), np.array([3, 1], np.int32))
    np.testing.assert_allclose(numpy(losses), [values[0, 2, 0, 3], values[1, 2, 0, 1]])


def test_deepdream_is_the_mean_of_the_squared_activations(model):
    conv = by_hand(model, IMAGES)["conv"]
    np.testing.assert_allclose(
        objectives.evaluate(model, objectives.deepdream("conv"), IMAGES),
        (conv**2).mean(axis=(1, 2, 3)),
        rtol=1e-5,
    )


def test_class_logit_is_the_head_before_its_softmax(model):
    np.testing.assert_allclose(
        objectives.evaluate(model, objectives.class_logit(2), IMAGES),
        by_hand(model, IMAGES)["logits"][:, 2],
        rtol=1e-5,
        atol=1e-6,
    )


def linear_copy(model):
    """An independent copy of `classifier()` with a linear head and the same weights."""
    copy = classifier(final_activation=None)
    copy.set_weights(model.get_weights())
    return copy


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_class_logit_equals_a_linear_output_copy_of_the_model(activation):
    model = classifier(activation)
    expected = numpy(linear_copy(model)(IMAGES))
    for index in range(4):
        np.testing.assert_allclose(
            objectives.evaluate(model, objectives.class_logit(index), IMAGES),
            expected[:, index],
            rtol=1e-5,
            atol=1e-6,
        )
    assert not np.allclose(numpy(model(IMAGES)), expected)  # The model itself is untouched.


def test_class_logit_of_a_trailing_softmax_layer_is_its_input():
    model = classifier(trailing_softmax=True)
    scores = keras.Model(model.inputs[0], model.get_layer("scores").output)
    np.testing.assert_allclose(
        objectives.evaluate(model, objectives.class_logit(0), IMAGES),
        numpy(scores(IMAGES))[:, 0],
        rtol=1e-6,
    )


def test_class_logit_of_a_model_without_a_final_activation_is_a_usage_error():
    inputs = keras.Input((None, None, CHANNELS))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(inputs))
    with pytest.raises(errors.UsageError, match="'pool'.*no activation to replace"):
        objectives.evaluate(model, objectives.class_logit(0), IMAGES)


def test_the_extractor_gives_logits_beside_the_layer_they_copy(model):
    features = extractor.build_feature_extractor(
        model, ["predictions", objectives.LOGITS, objectives.INPUT]
    )
    outputs = features(IMAGES)
    assert set(outputs) == {"predictions", objectives.LOGITS}
    np.testing.assert_allclose(numpy(outputs["predictions"]), numpy(model(IMAGES)), rtol=1e-6)
    np.testing.assert_allclose(
        numpy(outputs[objectives.LOGITS]), by_hand(model, IMAGES)["logits"], rtol=1e-5, atol=1e-6
    )


def test_an_objective_on_the_input_alone_has_no_layer_to_extract(model):
    with pytest.raises(errors.UsageError, match="reads no layer"):
        extractor.build_feature_extractor(model, [objectives.INPUT])


def gram_by_hand(activations: np.ndarray) -> np.ndarray:
    flat = activations.reshape(len(activations), -1, activations.shape[-1])
    return np.einsum("bpi,bpj->bij", flat, flat)


def diversity_by_hand(activations: np.ndarray) -> np.ndarray:
    """Image i: minus the mean cosine similarity of its Gram matrix to each other image's."""
    grams = [gram.ravel() / np.linalg.norm(gram) for gram in gram_by_hand(activations)]
    count = len(grams)
    return np.array(
        [
            -sum(float(grams[i] @ grams[j]) for j in range(count) if j != i) / max(count - 1, 1)
            for i in range(count)
        ]
    )


def test_diversity_is_minus_the_mean_cosine_similarity_of_the_gram_matrices(model):
    images = np.random.default_rng(2).normal(size=(4, HEIGHT, WIDTH, CHANNELS)).astype(np.float32)
    expected = diversity_by_hand(by_hand(model, images)["conv"])
    values = objectives.evaluate(model, objectives.diversity("conv"), images)
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    # lucid's batch value: Σ_i Σ_{j≠i} cos / N, here summed over the batch as −N/(N−1) of it.
    grams = [g.ravel() / np.linalg.norm(g) for g in gram_by_hand(by_hand(model, images)["conv"])]
    lucid = sum(grams[i] @ grams[j] for i in range(4) for j in range(4) if j != i) / 4
    np.testing.assert_allclose(values.sum(), -4 / 3 * lucid, rtol=1e-5)


def test_diversity_is_lowest_for_identical_images_and_zero_alone():
    same = np.tile(np.random.default_rng(3).normal(size=(1, 3, 3, 2)), (3, 1, 1, 1))
    np.testing.assert_allclose(
        numpy(objectives.diversity("conv")(tensors(conv=same.astype(np.float32)))), -1.0, rtol=1e-5
    )
    alone = tensors(conv=same[:1].astype(np.float32))
    np.testing.assert_allclose(numpy(objectives.diversity("conv")(alone)), 0.0, atol=1e-7)
    assert objectives.diversity("conv").couples_batch
    assert (2.0 * objectives.diversity("conv") + objectives.channel("conv", 0)).couples_batch
    assert not objectives.channel("conv", 0).couples_batch


def test_arithmetic_equals_the_weighted_sum(model):
    neuron, dream, logit = (
        objectives.neuron("conv", 0),
        objectives.deepdream("conv"),
        objectives.class_logit(3),
    )
    combined = 2.0 * neuron - 0.5 * dream + logit - objectives.l2()
    parts = [objectives.evaluate(model, o, IMAGES) for o in (neuron, dream, logit, objectives.l2())]
    np.testing.assert_allclose(
        objectives.evaluate(model, combined, IMAGES),
        2.0 * parts[0] - 0.5 * parts[1] + parts[2] - parts[3],
        rtol=1e-5,
    )
    assert combined.layers == ("conv", objectives.LOGITS, objectives.INPUT)


# --- Regularizers against NumPy


def box_blur_by_hand(image: np.ndarray) -> np.ndarray:
    """The mean of each pixel's 3x3 neighbourhood within the image, per channel."""
    height, width = image.shape[:2]
    blurred = np.empty_like(image)
    for row in range(height):
        for column in range(width):
            window = image[max(row - 1, 0) : row + 2, max(column - 1, 0) : column + 2]
            blurred[row, column] = window.mean(axis=(0, 1))
    return blurred


def test_regularizers_are_the_penalties_they_describe():
    images = IMAGES * 3.0 + 1.0
    activations = tensors(**{objectives.INPUT: images})
    rows = np.abs(np.diff(images, axis=1)).mean(axis=(1, 2, 3))
    columns = np.abs(np.diff(images, axis=2)).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(
        numpy(objectives.total_variation()(activations)), rows + columns, rtol=1e-5
    )
    np.testing.assert_allclose(
        numpy(objectives.l2(center=0.5)(activations)),
        ((images - 0.5) ** 2).mean(axis=(1, 2, 3)),
        rtol=1e-5,
    )
    blurred = np.stack([box_blur_by_hand(image) for image in images])
    np.testing.assert_allclose(
        numpy(objectives.box_blur(keras.ops.convert_to_tensor(images))),
        blurred,
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        numpy(objectives.blur()(activations)),
        0.5 * ((images - blurred) ** 2).mean(axis=(1, 2, 3)),
        rtol=1e-5,
    )


def gradient_of_sum(objective, images: np.ndarray) -> np.ndarray:
    """d Σ_i objective_i / d images, with the current backend."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(
            jax.grad(lambda x: objective({objectives.INPUT: x}).sum())(images.astype(np.float32))
        )
    import tensorflow as tf

    variable = tf.constant(images.astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(variable)
        total = tf.reduce_sum(objective({objectives.INPUT: variable}))
    return tape.gradient(total, variable).numpy()


def test_blurs_gradient_moves_the_image_towards_its_blur():
    images = IMAGES[:2]
    count = HEIGHT * WIDTH * CHANNELS
    expected = (images - np.stack([box_blur_by_hand(image) for image in images])) / count
    np.testing.assert_allclose(
        gradient_of_sum(objectives.blur(), images), expected, rtol=1e-4, atol=1e-7
    )


def test_regularized_subtracts_each_weighted_penalty():
    images = IMAGES * 2.0
    activations = tensors(conv=by_hand(classifier(), images)["conv"], **{objectives.INPUT: images})
    channel = objectives.channel("conv", 1)
    combined = objectives.regularized(channel, total_variation=0.3, l2=0.0, blur=2.0)
    expected = (
        numpy(channel(activations))
        - 0.3 * numpy(objectives.total_variation()(activations))
        - 2.0 * numpy(objectives.blur()(activations))
    )
    np.testing.assert_allclose(numpy(combined(activations)), expected, rtol=1e-5)
    assert combined.layers == ("conv", objectives.INPUT)
    assert objectives.regularized(channel) is channel
    with pytest.raises(ValueError, match="l2=-1.*≥ 0"):
        objectives.regularized(channel, l2=-1.0)


def test_regularizer_settings_are_ascended_against_but_not_reported(model):
    """The weights make the renderer's penalty: the step's gradient is that of the objective
    minus it, while the losses (loss_history, the final losses, dead filters) are the objective
    alone, the same numbers as a run without regularizers."""
    weights = dict(total_variation_weight=0.25, l2_weight=0.5)
    plans = {
        regularized: pipeline.plan_objectives(
            model,
            [objectives.channel("conv", i) for i in range(3)],
            [0, 1, 2],
            Settings.create(
                dict(image_size=8, num_steps=3, progress=False, **(weights if regularized else {}))
            ),
        )
        for regularized in (False, True)
    }
    renderer = plans[True].renderer
    activations = tensors(conv=by_hand(model, IMAGES)["conv"], **{objectives.INPUT: IMAGES})
    targets = np.array([2, 0, 1], np.int32)
    np.testing.assert_allclose(
        numpy(renderer.objective(activations, targets)),
        numpy(objectives.channel("conv")(activations, targets)),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        numpy(renderer.penalty(activations, targets)),
        0.25 * numpy(objectives.total_variation()(activations))
        + 0.5 * numpy(objectives.l2()(activations)),
        rtol=1e-5,
    )
    assert plans[False].renderer.penalty is None

    results = {key: plan.renderer.run_chunk([0, 1, 2], targets) for key, plan in plans.items()}
    start = renderer.initial_params([0, 1, 2])
    own_channel = by_hand(model, start)["conv"][np.arange(3), ..., targets].mean(axis=(1, 2))
    for result in results.values():
        np.testing.assert_allclose(result.loss_history[0], own_channel, rtol=1e-5)
    # The penalty moved the images elsewhere, so the reported objective differs after step 1.
    assert not np.allclose(results[True].inputs, results[False].inputs)
    assert not np.allclose(results[True].loss_history[1:], results[False].loss_history[1:])


@pytest.mark.parametrize("name", ["total_variation_weight", "l2_weight", "blur_weight"])
def test_regularizer_weights_are_off_by_default_and_not_negative(name):
    assert getattr(Settings.create({}), name) == 0.0
    with pytest.raises(errors.UsageError, match=f"{name}=-1.*≥ 0"):
        Settings.create({name: -1.0})


# --- Batching


def test_same_kind_objectives_differing_in_the_index_run_batched():
    neuron_plan, neuron_targets = objectives.batch_plan(
        [objectives.neuron("conv", i, x=1, y=2) for i in (2, 0)]
    )
    assert neuron_plan.name == "neuron(conv, own, x=1, y=2)"
    np.testing.assert_array_equal(neuron_targets, [2, 0])
    logit_plan, logit_targets = objectives.batch_plan([objectives.class_logit(i) for i in (3, 1)])
    assert logit_plan.name == "class_logit(own)" and logit_plan.layers == (objectives.LOGITS,)
    np.testing.assert_array_equal(logit_targets, [3, 1])
    logits = np.random.default_rng(4).normal(size=(2, 4)).astype(np.float32)
    np.testing.assert_allclose(
        numpy(logit_plan(tensors(**{objectives.LOGITS: logits}), logit_targets)),
        [logits[0, 3], logits[1, 1]],
    )


def test_neurons_at_different_positions_run_per_image():
    first, second = objectives.neuron("conv", 0, x=0), objectives.neuron("conv", 0, x=1)
    objective, targets = objectives.batch_plan([first, second])
    assert objective.batch_key is None
    np.testing.assert_array_equal(targets, [0, 1])
    values = np.random.default_rng(5).normal(size=(2, 3, 3, 1)).astype(np.float32)
    np.testing.assert_allclose(
        numpy(objective(tensors(conv=values), targets)), [values[0, 1, 0, 0], values[1, 1, 1, 0]]
    )


def test_one_objective_shared_by_every_image_is_computed_once():
    shared = objectives.channel("conv", 0) + objectives.diversity("conv")
    objective, targets = objectives.batch_plan([shared] * 3)
    assert objective is shared
    np.testing.assert_array_equal(targets, [0, 0, 0])


RUN = dict(
    image_size=8,
    num_steps=3,
    step_size=0.5,
    init_low=-1.0,
    init_high=1.0,
    gradient_normalization="l2",
    progress=False,
)


def test_a_list_of_neurons_runs_in_one_step_and_equals_running_each_alone(model, monkeypatch):
    compiled = []
    make_step = step_lib.make_step

    def counting_make_step(extractor, objective, *args, **kwargs):
        compiled.append(objective.name)
        return make_step(extractor, objective, *args, **kwargs)

    monkeypatch.setattr(step_lib, "make_step", counting_make_step)
    neurons = [objectives.neuron("conv", index, x=2, y=3) for index in range(3)]
    together = keras_filters.optimize(model, neurons, batch_size=3, **RUN)
    assert compiled == ["neuron(conv, own, x=2, y=3)"]
    for index, neuron in enumerate(neurons):
        alone = keras_filters.optimize(model, [neuron], keys=[index], **RUN)
        np.testing.assert_allclose(together.inputs[index], alone.inputs[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(together.losses[index], alone.losses[0], rtol=1e-5, atol=1e-6)
    # The ascent raised each neuron that its starting noise made fire.
    start, end = together.loss_history[0], together.loss_history[-1]
    assert (end[start > 0] > start[start > 0]).all() and (start > 0).sum() >= 2


def test_class_logits_of_a_softmax_model_run_batched(model):
    result = keras_filters.optimize(
        model, [objectives.class_logit(index) for index in range(4)], batch_size=4, **RUN
    )
    expected = numpy(linear_copy(model)(result.inputs))
    np.testing.assert_allclose(
        objectives.evaluate(model, objectives.class_logit(0), result.inputs[:1]),
        expected[:1, 0],
        rtol=1e-5,
        atol=1e-6,
    )
    assert (result.loss_history[-1] > result.loss_history[0]).all()


# --- Diversity keeps its batch whole


def test_diversity_runs_when_its_images_share_one_batch(model):
    shared = objectives.channel("conv", 0) + 0.5 * objectives.diversity("conv")
    result = keras_filters.optimize(model, [shared] * 3, batch_size=3, **RUN)
    activations = {"conv": by_hand(model, result.inputs)["conv"]}
    expected = activations["conv"][..., 0].mean(axis=(1, 2)) + 0.5 * diversity_by_hand(
        activations["conv"]
    )
    # The losses are those before the last step; the images are after it.
    np.testing.assert_allclose(
        objectives.evaluate(model, shared, result.inputs), expected, rtol=1e-4
    )
    assert np.isfinite(result.losses).all()


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(batch_size=2), r"batch_size=2 splits its 3 images over 2 chunks; set batch_size=3"),
        (dict(batch_size=3, num_shards=2), r"num_shards=2 would split its 3 images"),
    ],
)
def test_diversity_refuses_to_split_its_images(model, settings, message):
    shared = objectives.channel("conv", 0) - objectives.diversity("conv")
    with pytest.raises(errors.UsageError, match=message):
        keras_filters.optimize(model, [shared] * 3, **RUN, **settings)


def test_diversity_refuses_several_devices():
    with pytest.raises(errors.UsageError, match="2 devices would each see a share of its 4"):
        pipeline.check_one_batch(4, batch_size=4, num_shards=1, num_replicas=2)
    pipeline.check_one_batch(4, batch_size=4, num_shards=1, num_replicas=1)


# --- linear_output: the last layer's units are class logits


def test_linear_output_on_the_last_layer_optimizes_class_logits(model):
    settings = Settings.create(
        dict(RUN, layer="predictions", linear_output=True, filter_indices=(3, 1), batch_size=2)
    )
    plan = pipeline.plan_layer(model, settings)
    assert plan.renderer.objective.name == "class_logit(own)"
    assert plan.layer_name == "predictions"
    by_logits = pipeline.run_plan(plan, settings)
    copy = linear_copy(model)
    channels = [objectives.channel("predictions", index) for index in (3, 1)]
    by_copy = pipeline.run_plan(
        pipeline.plan_objectives(copy, channels, [3, 1], settings), settings
    )
    np.testing.assert_allclose(by_logits.inputs, by_copy.inputs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(by_logits.losses, by_copy.losses, rtol=1e-5, atol=1e-6)


def test_linear_output_in_optimize_makes_the_last_layers_channels_logits(model):
    channels = [objectives.channel("predictions", index) for index in (3, 1)]
    by_copy = keras_filters.optimize(model, channels, linear_output=True, **RUN)
    logits = [objectives.class_logit(index) for index in (3, 1)]
    by_logits = keras_filters.optimize(model, logits, **RUN)
    np.testing.assert_allclose(by_copy.inputs, by_logits.inputs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(by_copy.losses, by_logits.losses, rtol=1e-5, atol=1e-6)
    probabilities = keras_filters.optimize(model, channels, **RUN)
    assert not np.allclose(probabilities.losses, by_logits.losses)


# --- Bad arguments are refused when the objective is made, in one line


def one_line_usage_error(make, message: str):
    """Calls `make` and checks that it raises a one-line UsageError that matches `message`."""
    with pytest.raises(errors.UsageError, match=message) as raised:
        make()
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: objectives.channel("conv", -2), r"channel\('conv'\): index=-2 is not an integer"),
        (lambda: objectives.channel("conv", 1.5), r"index=1\.5 is not an integer ≥ 0"),
        (lambda: objectives.channel("conv", True), r"index=true is not an integer ≥ 0"),
        (lambda: objectives.channel("conv", "3"), r"index='3' is not an integer ≥ 0"),
        (lambda: objectives.channel("conv", 0, border=-1), r"border=-1 is not an integer ≥ 0"),
        (lambda: objectives.channel("conv", 0, border=1.0), r"border=1\.0 is not an integer"),
        (lambda: objectives.channel("", 0), r"channel: layer='' is not a layer name"),
        (lambda: objectives.channel(3, 0), r"channel: layer=3 is not a layer name"),
        (lambda: objectives.neuron("conv", -1), r"neuron\('conv'\): index=-1 is not an integer"),
        (lambda: objectives.neuron("conv", 0, x=-1), r"x=-1 is not an integer ≥ 0; use a column"),
        (lambda: objectives.neuron("conv", 0, y=2.0), r"y=2\.0 is not an integer ≥ 0; use a row"),
        (lambda: objectives.neuron(None, 0), r"neuron: layer=None is not a layer name"),
        (lambda: objectives.class_logit(-1), r"class_logit: index=-1 is not an integer ≥ 0"),
        (lambda: objectives.class_logit(False), r"class_logit: index=false is not an integer"),
        (lambda: objectives.deepdream(" "), r"deepdream: layer=' ' is not a layer name"),
        (lambda: objectives.diversity(["conv"]), r"diversity: layer=\('conv',\) is not a layer"),
        (lambda: float("nan") * objectives.channel("conv", 0), r"multiplied by nan"),
        (lambda: objectives.channel("conv", 0) * np.inf, r"multiplied by inf"),
        (lambda: objectives.penalty(l2=float("inf")), r"weight l2=inf is not a finite number ≥ 0"),
        (lambda: objectives.penalty(blur=float("nan")), r"weight blur=nan is not a finite"),
        (lambda: objectives.penalty(total_variation="a"), r"total_variation='a' is not a finite"),
        (lambda: objectives.penalty(blur=True), r"weight blur=true is not a finite number"),
        (lambda: objectives.l2(center=float("nan")), r"l2: center=nan is not a finite number"),
    ],
)
def test_bad_arguments_are_refused_naming_the_value(make, message):
    one_line_usage_error(make, message)


def test_numpy_integers_are_indices_and_positions():
    objective = objectives.neuron("conv", np.int64(2), x=np.int32(1), y=np.uint8(0))
    assert objective.name == "neuron(conv, 2, x=1, y=0)" and objective.target == 2
    assert objectives.channel("conv", np.int64(1), border=np.int32(1)).name == "channel(conv, 1)"


# --- Indices, positions and borders are checked against the model before the first step


def refuse_to_compile(monkeypatch):
    """Makes compiling a step fail the test: a refusal must come before any optimization."""

    def no_step(*args, **kwargs):
        raise AssertionError("a step was compiled before the objective was refused")

    monkeypatch.setattr(step_lib, "make_step", no_step)


@pytest.mark.parametrize(
    "objective, message",
    [
        (
            objectives.channel("conv", 3),
            r"^channel\(conv, 3\): index 3 is out of range for layer 'conv', which has 3 "
            r"channels; use an index from 0 to 2$",
        ),
        (  # Inside a sum, the empty slice gave a nan loss without a word.
            objectives.channel("conv", 0) + 0.5 * objectives.channel("conv", 7),
            r"^channel\(conv, 7\): index 7 is out of range for layer 'conv'",
        ),
        (
            objectives.neuron("conv", 0, x=8),
            r"^neuron\(conv, 0, x=8, y=centre\): x=8 is outside the 8x8 activation map of layer "
            r"'conv' at 8 px; use x from 0 to 7$",
        ),
        (objectives.neuron("conv", 0, y=20), r"y=20 is outside the 8x8 .*use y from 0 to 7$"),
        (objectives.neuron("conv", 5), r"^neuron\(conv, 5, .*index 5 is out of range"),
        (
            objectives.neuron("pool", 0),
            r"layer 'pool' gives shape \(3,\) per image, not \(height, width, channels\); use "
            "channel",
        ),
        (
            objectives.class_logit(4),
            r"^class_logit\(4\): index 4 is out of range for the model's logits, which has 4 "
            r"classes; use an index from 0 to 3$",
        ),
        (
            objectives.channel("conv", 0, border=4),
            r"^channel\(conv, 0\): border=4 leaves no pixels of the 8x8 activation map of layer "
            r"'conv' at 8 px; use a border from 0 to 3$",
        ),
    ],
)
def test_a_run_refuses_what_the_layer_does_not_have(model, monkeypatch, objective, message):
    refuse_to_compile(monkeypatch)
    one_line_usage_error(lambda: keras_filters.optimize(model, [objective], **RUN), message)


def test_a_batched_list_is_checked_objective_by_objective(model, monkeypatch):
    refuse_to_compile(monkeypatch)
    channels = [objectives.channel("conv", index) for index in (0, 2, 3)]
    one_line_usage_error(
        lambda: keras_filters.optimize(model, channels, **RUN), r"^channel\(conv, 3\): index 3"
    )


def test_positions_are_checked_at_the_smallest_scale(model, monkeypatch):
    refuse_to_compile(monkeypatch)
    run = dict(RUN, image_size=12, num_upscalings=2, upscale_factor=1.2)  # Scales 8, 10, 12.
    one_line_usage_error(
        lambda: keras_filters.optimize(model, [objectives.neuron("conv", 0, x=9)], **run),
        r"x=9 is outside the 8x8 activation map of layer 'conv' at 8 px; use x from 0 to 7$",
    )


def test_evaluate_refuses_what_the_layer_does_not_have(model):
    one_line_usage_error(
        lambda: objectives.evaluate(model, objectives.channel("conv", 3), IMAGES),
        r"index 3 is out of range for layer 'conv', which has 3 channels",
    )
    one_line_usage_error(
        lambda: objectives.evaluate(model, objectives.neuron("conv", 0, x=6), IMAGES),
        r"x=6 is outside the 5x6 activation map of layer 'conv' at 5x6 px; use x from 0 to 5$",
    )
    np.testing.assert_allclose(  # The last column and row are inside.
        objectives.evaluate(model, objectives.neuron("conv", 2, x=5, y=4), IMAGES),
        by_hand(model, IMAGES)["conv"][:, 4, 5, 2],
        rtol=1e-5,
    )
