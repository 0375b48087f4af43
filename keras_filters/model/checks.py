"""The checks that need the model: image sizes that the layers can take, filter indices that
the layer has, the indices and positions that objectives read. They run once the model is
loaded, before the first step or file."""

from collections.abc import Sequence

import keras

from keras_filters import errors
from keras_filters.optvis import objectives as objectives_lib


def check_input_size(
    extractor, *, sizes: Sequence[int], border: int, layer_names: Sequence[str], model_name: str
) -> None:
    """Checks that the layers have an output at every image size the run visits.

    Args:
        extractor: The sub-model from the input to the layers.
        sizes: The image sizes the run visits, smallest first.
        border: Pixels of the activation map left out of the objective on each side.
        layer_names: The layers' paths, for the message.
        model_name: The model's name, for the message.

    Raises:
        UsageError: If the model fixes an input size that the run does not use, if the
            model's pooling reaches zero size at the smallest size, or if the border leaves no
            pixels of an activation map.
    """
    input_shape = tuple(extractor.input_shape)
    fixed = [size for size in input_shape[1:3] if size is not None]
    if fixed and (len(sizes) > 1 or any(size != sizes[-1] for size in fixed)):
        raise errors.UsageError(
            f"image_size={sizes[-1]} (with num_upscalings={len(sizes) - 1}) does not fit "
            f"model {model_name!r}, whose input size is fixed at {input_shape[1]}x"
            f"{input_shape[2]}; use image_size={fixed[0]} num_upscalings=0"
        )
    channels = int(input_shape[-1])
    smallest = min(sizes)
    shapes = _output_shapes(extractor, smallest, channels)
    layer_label = ", ".join(repr(name) for name in layer_names)
    if not _works(shapes):
        # Some models cannot be traced symbolically at all; refuse only what a larger size fixes.
        minimum = _smallest_working_size(extractor, channels, smallest)
        if minimum is not None:
            where = (
                f"image_size={sizes[-1]} starts its {len(sizes)} scales at {smallest} px"
                if len(sizes) > 1
                else f"image_size={smallest} is too small"
            )
            raise errors.UsageError(
                f"{where} for layer {layer_label}: the model's pooling reaches zero size below "
                f"{minimum} px; use a larger image_size"
                + (" or fewer num_upscalings" if len(sizes) > 1 else "")
            )
        return
    for name, shape in zip(layer_names, shapes.values(), strict=False):
        if border and len(shape) == 4:
            height, width = shape[1:3]
            if height is not None and width is not None and 2 * border >= min(height, width):
                raise errors.UsageError(
                    f"border={border} leaves no pixels of the {height}x{width} activation map "
                    f"of layer {name!r} at {smallest} px; use a border below "
                    f"{(min(height, width) + 1) // 2} or a larger image_size"
                )


def check_filter_indices(filter_indices: Sequence[int], num_filters: int) -> None:
    """Checks that every index names a filter of the layer.

    Raises:
        UsageError: For an index outside [0, num_filters).
    """
    bad = [int(index) for index in filter_indices if not 0 <= int(index) < num_filters]
    if bad:
        raise errors.UsageError(
            f"filter index {bad[0]} is out of range; the layer has {num_filters} filters: "
            f"choose from 0 to {num_filters - 1}"
        )


def check_objectives(extractor, objectives, *, size: int) -> None:
    """Checks what each objective reads (channel, class, position, border) against the layers.

    Args:
        extractor: The sub-model from the input to the objectives' layers (dict outputs).
        objectives: The run's objectives, one per image.
        size: The smallest image size the run visits: an activation map only grows with the
            image, so a position or border that fits there fits at every size.

    Raises:
        UsageError: For an index, position or border that the layer's output does not have,
            naming the objective, the layer, the value and the valid range.
    """
    shapes = _output_shapes(extractor, size, int(extractor.input_shape[-1]))
    where = f" at {size} px"
    if shapes is None:  # Not traceable at this size: the symbolic shapes still give channels.
        shapes = {name: tuple(item.shape) for name, item in extractor.output.items()}
        where = ""
    objectives_lib.check_ranges(objectives, shapes, where)


def _output_shapes(extractor, size: int, channels: int) -> dict | None:
    """{output name: shape} for one size×size image (one output: named ""), or None where
    Keras refuses the size."""
    try:
        spec = extractor.compute_output_spec(keras.KerasTensor((1, size, size, channels)))
    except Exception:  # Keras raises ValueError for a pooling that reaches zero size; any
        return None  # failure here means the same: the layers cannot run at this size.
    specs = spec if isinstance(spec, dict) else {"": spec}
    return {name: tuple(item.shape) for name, item in specs.items()}


def _works(shapes) -> bool:
    return shapes is not None and all(
        dim is None or dim > 0 for shape in shapes.values() for dim in shape[1:]
    )


def _smallest_working_size(extractor, channels: int, failing: int, limit=4096):
    """The smallest image size above `failing` at which every layer has an output, or None."""
    low, high = failing, failing + 1
    while not _works(_output_shapes(extractor, high, channels)):
        low, high = high, high * 2
        if high > limit:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        if _works(_output_shapes(extractor, middle, channels)):
            high = middle
        else:
            low = middle
    return high
