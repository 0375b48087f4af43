"""The Python API: optimize images for objectives, or for the filters of a layer, as arrays.

Each call turns its keyword settings into one validated `Settings` (errors in Python words,
`ValueError: image_size=-5 is out of range: use an integer ≥ 1`) and runs the shared pipeline.
"""

from collections.abc import Sequence

from keras_filters import errors, pipeline
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
        ValueError: For a value, model, layer or size that cannot be used (`UsageError`).
    """
    objectives = list(objectives)
    keys = list(range(len(objectives))) if keys is None else [int(key) for key in keys]
    resolved = Settings.create(settings)
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
        filter_indices = tuple(int(index) for index in filter_indices)
        if not filter_indices:
            raise errors.UsageError(
                "filter_indices is an empty list; give at least one filter index, or None to "
                "try the first max_filters"
            )
        settings["filter_indices"] = filter_indices
    resolved = Settings.create(settings, layer=layer_name)
    placement = pipeline.make_placement(resolved)
    model = pipeline.load_model(model, resolved, placement)
    resolved, _ = pipeline.fit_input_size(model, resolved, "image_size" in settings)
    return pipeline.run_plan(pipeline.plan_layer(model, resolved, placement), resolved)
