"""Adam ascent, the step-size schedules, and the guard that keeps a failed image's state."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_filters import backends, errors, settings
from keras_filters.optvis import update


def numpy(tensor) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(tensor))


def gradients_of_steps(num_steps: int, shape=(2, 3, 3, 2)) -> list:
    generator = np.random.default_rng(0)
    return [generator.normal(size=shape).astype(np.float32) for _ in range(num_steps)]


def test_adam_ascent_equals_keras_adam_descent_on_the_negated_objective():
    params = np.random.default_rng(1).normal(size=(2, 3, 3, 2)).astype(np.float32)
    adam = update.Adam(epsilon=1e-7)  # Keras' default epsilon.
    state = adam.init_state(params)
    ours = ops.convert_to_tensor(params)
    variable = keras.Variable(params)
    reference = keras.optimizers.Adam(learning_rate=0.05, epsilon=1e-7)
    for gradient in gradients_of_steps(5):
        ours, state = adam.apply(ours, ops.convert_to_tensor(gradient), state, 0.05)
        # The objective's gradient is the negated loss's gradient with its sign turned.
        reference.apply_gradients([(ops.convert_to_tensor(-gradient), variable)])
        np.testing.assert_allclose(numpy(ours), numpy(variable), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(numpy(state[2]), [5.0, 5.0])


def test_adam_climbs_a_concave_objective():
    # Objective -(x - 3)²: its gradient is -2 (x - 3); Adam's steps carry x up towards 3.
    adam = update.Adam()
    params = np.zeros((1, 1, 1, 1), np.float32)
    state = adam.init_state(params)
    values = []
    for _ in range(60):
        params, state = adam.apply(params, -2.0 * (params - 3.0), state, 0.1)
        values.append(float(numpy(params).squeeze()))
    assert values[0] == pytest.approx(0.1, rel=1e-5)  # The first step is step_size along +.
    assert abs(values[-1] - 3.0) < 0.3


def test_adam_state_is_host_arrays_shaped_like_the_params():
    first, second, count = update.Adam().init_state(np.ones((4, 5, 5, 3), np.float32))
    assert first.shape == second.shape == (4, 5, 5, 3) and count.shape == (4,)
    assert all(isinstance(array, np.ndarray) for array in (first, second, count))
    assert not np.any(first) and not np.any(second) and not np.any(count)
    assert first is not second


@pytest.mark.parametrize("arguments", [dict(beta_1=1.0), dict(beta_2=-0.1), dict(epsilon=-1.0)])
def test_adam_refuses_bad_constants(arguments):
    with pytest.raises(ValueError, match="is out of range"):
        update.Adam(**arguments)


def test_guard_keeps_a_failed_images_adam_state_in_the_compiled_step():
    """Image 1's objective is NaN at the second step: its picture and Adam state stay put."""
    adam = update.Adam()
    params = np.random.default_rng(2).normal(size=(3, 4, 4, 1)).astype(np.float32)
    identity = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Identity()])

    def image_losses(call_model, params, targets, draws):
        # targets == 1 poisons the image's objective: a NaN loss and a NaN gradient.
        scale = ops.where(targets == 1, np.float32(np.nan), np.float32(1.0))
        scaled = call_model(params) * ops.reshape(scale, (-1, 1, 1, 1))
        losses = ops.sum(ops.square(scaled), axis=(1, 2, 3))
        return losses, losses

    def apply_update(params, state, losses, gradients, step_size):
        updated, new_state = adam.apply(params, gradients, state, step_size)
        return update.guard(params, state, updated, new_state, losses, gradients)

    step = backends.current().compile_step(
        identity, image_losses, apply_update, example_args=(params, adam.init_state(params))
    )

    def run(params, state, targets):
        return step(
            ops.convert_to_tensor(params),
            tuple(ops.convert_to_tensor(array) for array in state),
            ops.convert_to_tensor(np.asarray(targets, np.int32)),
            ops.convert_to_tensor(np.float32(0.1)),
            ops.zeros((3, 0)),
        )

    first_params, first_state, _ = run(params, adam.init_state(params), [0, 0, 0])
    before = [numpy(array) for array in first_state]
    second_params, second_state, finite = run(first_params, first_state, [0, 1, 0])
    after = [numpy(array) for array in second_state]
    np.testing.assert_array_equal(numpy(finite), [True, False, True])
    np.testing.assert_array_equal(numpy(second_params)[1], numpy(first_params)[1])
    for kept, old in zip(after, before, strict=True):
        np.testing.assert_array_equal(kept[1], old[1])  # Moments and count: the old rows.
        assert np.all(np.isfinite(kept))
    np.testing.assert_array_equal(after[2], [2.0, 1.0, 2.0])
    assert not np.array_equal(after[0][0], before[0][0])  # The others moved on.
    assert not np.array_equal(numpy(second_params)[0], numpy(first_params)[0])


# Schedules.


@pytest.mark.parametrize(
    "schedule, middle",
    [("constant", 0.2), ("linear", 0.2 * (0.1 + 0.9 * 0.5)), ("cosine", 0.2 * (0.1 + 0.9 * 0.5))],
)
def test_schedules_at_the_first_middle_and_last_step(schedule, middle):
    def size(step):
        return update.step_size_at(step, 11, 0.2, schedule, 0.1)

    assert size(0) == pytest.approx(0.2)
    assert size(5) == pytest.approx(middle)
    assert size(10) == pytest.approx(0.2 if schedule == "constant" else 0.02)


def test_cosine_starts_slower_and_ends_slower_than_linear():
    def size(step, schedule):
        return update.step_size_at(step, 11, 1.0, schedule, 0.1)

    assert size(2, "cosine") > size(2, "linear")
    assert size(8, "cosine") < size(8, "linear")
    steps = [size(step, "cosine") for step in range(11)]
    assert np.all(np.diff(steps) < 0)


def test_schedules_with_one_step_or_final_fraction_one_stay_at_the_base():
    for schedule in settings.SCHEDULES:
        assert update.step_size_at(0, 1, 0.3, schedule, 0.1) == pytest.approx(0.3)
        assert update.step_size_at(7, 20, 0.3, schedule, 1.0) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="unknown schedule 'step'; choose one of"):
        update.step_size_at(0, 10, 0.3, "step")


def test_default_settings_keep_todays_constant_normalized_step():
    defaults = settings.Settings.create()
    assert (defaults.optimizer, defaults.schedule) == ("normalized_gradient", "constant")
    sizes = {
        update.step_size_at(
            step,
            defaults.num_steps,
            defaults.step_size,
            defaults.schedule,
            defaults.final_step_fraction,
        )
        for step in range(defaults.num_steps)
    }
    assert sizes == {defaults.step_size}
    made = update.make_update(
        defaults.optimizer, defaults.gradient_normalization, defaults.gradient_epsilon
    )
    assert isinstance(made, update.NormalizedGradient) and made.mode == "rms"
    assert isinstance(update.make_update("adam", "rms", 1e-5), update.Adam)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(optimizer="sgd"), "optimizer='sgd' is not one of the choices"),
        (dict(schedule="step"), "schedule='step' is not one of the choices"),
        (dict(final_step_fraction=0.0), "final_step_fraction=0.0 is out of range: use a number"),
        (dict(final_step_fraction=1.5), "final_step_fraction=1.5 is out of range"),
    ],
)
def test_bad_optimizer_settings_are_named(overrides, message):
    with pytest.raises(errors.UsageError, match=message.replace("(", r"\(")):
        settings.Settings.create(**overrides)
