"""The Python API: optimize images for objectives, or for the filters of a layer, as arrays.

Each call turns its keyword settings into one validated `Settings` (errors in Python words,
`ValueError: image_size=-5 is out of range: use an integer ≥ 1`) and runs the shared pipeline.
A keyword setting that has no effect with the others is reported with a warning
(`UnusedSettingWarning: fourier_decay=2.0 has no effect with parameterization='pixel': …`).
"""

import warnings
from collections.abc import Iterable, Sequence

from keras_filters import errors, pipeline
from keras_filters import settings as settings_lib
from keras_filters.optvis import objectives as objectives_lib
from keras_filters.optvis import render
from keras_filters.settings import Settings

VisualizationResult = pipeline.VisualizationResult


def optimize(model, objectives: Sequence, keys: Sequence[int] | None = None, **settings):
    """Optimizes one image per objective, all in batches, from seeded noise.

    Args:
        model: A `keras.Model`, "demo", a Keras Applications name, or a saved model file.
        objectives: A list of `keras_filters.objectives.Objective`, one image each.
        keys: One integer per objective that seeds its image's noise, so that an image starts
            the same in any batch. Defaults to the positions 0 … N−1.
        **settings: Any setting of `keras_filters.Settings` (`image_size`, `num_steps`,
            `step_size`, `seed`, `batch_size`, `gradient_normalization`, …); the rest keep
            their defaults. Without `image_size`, a model that fixes its input size is run
            at that size.

    Returns:
        A `VisualizationResult`, one entry per objective, in order.

    Raises:
        TypeError: For a setting that is not declared.
        ValueError: For a value, model, layer or size that cannot be used, an item of
            `objectives` that is not an objective, a key that is not an integer from 0 to
            2⁶³ − 1, or an index or position that an objective's layer does not have
            (`UsageError`).
    """
    objectives = objectives_lib.objective_list(objectives)
    keys = list(range(len(objectives))) if keys is None else checked_keys(keys)
    resolved = Settings.create(settings)
    warn_of_unused_settings(resolved, model, settings)
    placement = pipeline.make_placement(resolved)
    model = pipeline.load_model(model, resolved, placement, linear_copy=True)
    resolved, _ = pipeline.fit_input_size(model, resolved, "image_size" in settings)
    plan = pipeline.plan_objectives(model, objectives, keys, resolved, placement=placement)
    return pipeline.run_plan(plan, resolved)


def visualize_filters(model, layer_name: str, filter_indices=None, **settings):
    """Optimizes one image per filter so that the filter's mean activation grows.

    This is `optimize` with one `objectives.channel(layer_name, index)` per filter, each
    image seeded by its filter index.

    Args:
        model: A `keras.Model`, "demo", a Keras Applications name, or a saved model file.
        layer_name: The layer's name, or "outer/inner" for a layer of a nested model.
        filter_indices: The filters; None takes the `filter_indices` setting or, when that is
            empty, the first `max_filters`.
        **settings: Any setting of `keras_filters.Settings`; the rest keep their defaults.

    Returns:
        A `VisualizationResult`.

    Raises:
        TypeError: For a setting that is not declared.
        ValueError: For a value, model, layer or filter that cannot be used (`UsageError`).
    """
    if filter_indices is not None:
        # The items go to the settings as they are, so that their type check refuses 1.7,
        # True or "a" in its usual words; text and single numbers reach it whole.
        if not isinstance(filter_indices, str) and isinstance(filter_indices, Iterable):
            filter_indices = tuple(filter_indices)
        if filter_indices == ():
            raise errors.UsageError(
                "filter_indices is an empty list; give at least one filter index, or None to "
                "try the first max_filters"
            )
        settings["filter_indices"] = filter_indices
    resolved = Settings.create(settings, layer=layer_name)
    warn_of_unused_settings(resolved, model, settings)
    placement = pipeline.make_placement(resolved)
    model = pipeline.load_model(model, resolved, placement)
    resolved, _ = pipeline.fit_input_size(model, resolved, "image_size" in settings)
    return pipeline.run_plan(pipeline.plan_layer(model, resolved, placement), resolved)


def warn_of_unused_settings(resolved: Settings, model, given) -> None:
    """Warns (`errors.UnusedSettingWarning`), one warning each, of the settings among the
    keyword arguments `given` that have no effect with the others or with `model` (the
    model argument, not the `model` setting): `settings.unused_settings`."""
    values = {**resolved.to_dict(), "model": model}
    for line in settings_lib.unused_settings(values, given):
        # At the caller of `optimize` or `visualize_filters`.
        warnings.warn(line, errors.UnusedSettingWarning, stacklevel=3)


def checked_keys(keys) -> list[int]:
    """The keys of `optimize` as ints, each an integer (not a bool) from 0 to `render.MAX_KEY`.

    A key seeds its image's noise with NumPy (which refuses a negative key) and is kept as an
    int64: `int(1.5)` would seed another image without a word, and 2**70 fail deep in the run.

    Raises:
        UsageError: For keys that are not a sequence, or the first key that is not such an
            integer, naming it.
    """
    if isinstance(keys, str) or not isinstance(keys, Iterable):
        raise errors.UsageError(
            f"keys={settings_lib.show(keys)} is not a list of integers; give one integer key "
            "per objective, e.g. keys=[0, 1, 2], or leave keys out"
        )
    keys = list(keys)
    for key in keys:
        if not settings_lib.is_integer(key):
            raise errors.UsageError(
                f"key {settings_lib.show(key)} in keys is not an integer; use integers from 0 "
                f"to {render.MAX_KEY}"
            )
        if not 0 <= key <= render.MAX_KEY:
            raise errors.UsageError(
                f"key {int(key)} in keys is out of range; use integers from 0 to {render.MAX_KEY}"
            )
    return [int(key) for key in keys]
