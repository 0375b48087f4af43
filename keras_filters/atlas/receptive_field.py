"""The receptive field of a layer of a Keras model: which input pixels one output position sees.

Computed analytically from the layers between the model's input and the layer (kernel sizes,
strides, dilations, padding), not measured from gradients: the result is exact, does not depend on
the weights (a gradient through a dead ReLU or a max-pool is zero, and would shrink a measured
field), needs no forward or backward pass, and needs no backend code. tests/test_receptive_field.py
checks it against the support of gradients on linear stand-in models.

Per spatial axis, every tensor of the graph carries (size, field, stride, start): its length in
positions, the length of one position's field in input pixels, the input pixels between two
neighbouring positions, and the input coordinate of the first pixel of position 0's field
(negative where the field reaches into padding). Position `i` sees input pixels
`start + i * stride` to `start + i * stride + field - 1`. The formulas are those of Araujo, Norris
and Sim, "Computing Receptive Fields of Convolutional Neural Networks" (Distill, 2019).

Where branches merge (Add, Concatenate, ...), the field is the union of the branches' fields.
A branch that has lost its spatial axes (global pooling, Flatten; the squeeze-and-excitation
gate of EfficientNet and MobileNetV3) sees the whole image but is broadcast over positions: it is
left out of the union, so that a position's field stays the local window its value varies with.
"""

import dataclasses
import math

import keras

# Layers and operations that act on each position alone (or mix channels only): they leave the
# field unchanged. Matched by class name, which also covers keras.ops operations in a graph.
POINTWISE_TYPES = frozenset(
    {
        "InputLayer",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "Softmax",
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "Rescaling",
        "Normalization",
        "Dropout",
        "SpatialDropout2D",
        "GaussianDropout",
        "GaussianNoise",
        "AlphaDropout",
        "ActivityRegularization",
        "Identity",
        "Dense",
        "Add",
        "Subtract",
        "Multiply",
        "Average",
        "Maximum",
        "Minimum",
        "Concatenate",
        # Keras Applications' own per-position layers (ConvNeXt).
        "LayerScale",
        "StochasticDepth",
    }
)

# Layers after which a tensor has no spatial axes left: every output value sees the whole image.
GLOBAL_TYPES = frozenset(
    {
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "Flatten",
        "Reshape",
        "Permute",
    }
)

UNSUPPORTED_TYPES = frozenset({"Conv2DTranspose", "UpSampling2D", "Resizing"})


@dataclasses.dataclass(frozen=True)
class _Axis:
    size: int
    field: int
    stride: int
    start: int


@dataclasses.dataclass(frozen=True)
class _State:
    """The field of one tensor: one _Axis per spatial axis (height, width), or global."""

    axes: tuple[_Axis, _Axis] | None  # None: no spatial axes left, the field is the whole image.


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of a layer's output positions, for one input size.

    Attributes:
        layer: The layer's path, as given.
        image_size: (height, width) of the input the field was computed for ("same" padding
            with a stride above 1 pads differently for even and odd sizes).
        output_size: (height, width) of the layer's output at that input size; (1, 1) for a
            layer without spatial axes.
        size: (height, width) of one position's field, in input pixels. For a global field,
            the image size.
        stride: (vertical, horizontal) input pixels between neighbouring output positions.
        start: Input coordinates (row, column) of the first pixel of position (0, 0)'s field;
            negative where it reaches into padding.
        is_global: Whether every output value sees the whole image (Dense after Flatten,
            global pooling).
        assumptions: One line for each layer of unknown type that was taken as acting on each
            position alone because it keeps the spatial size (a custom normalization, say).
    """

    layer: str
    image_size: tuple[int, int]
    output_size: tuple[int, int]
    size: tuple[int, int]
    stride: tuple[int, int]
    start: tuple[int, int]
    is_global: bool
    assumptions: tuple[str, ...] = ()

    def box(self, row: int, column: int) -> tuple[int, int, int, int]:
        """The field of output position (row, column), clipped to the image.

        Returns:
            (top, left, bottom, right) in input pixels, bottom and right exclusive.

        Raises:
            ValueError: If the position is outside the layer's output.
        """
        if not (0 <= row < self.output_size[0] and 0 <= column < self.output_size[1]):
            raise ValueError(
                f"position ({row}, {column}) is outside the output of layer {self.layer!r}, "
                f"which is {self.output_size[0]}x{self.output_size[1]}"
            )
        if self.is_global:
            return 0, 0, self.image_size[0], self.image_size[1]
        edges = []
        for axis, position in enumerate((row, column)):
            first = self.start[axis] + position * self.stride[axis]
            last = first + self.size[axis]
            edges.append((max(first, 0), min(last, self.image_size[axis])))
        (top, bottom), (left, right) = edges
        return top, left, bottom, right


def receptive_field(model: keras.Model, layer: str, image_size) -> ReceptiveField:
    """Computes the receptive field of a layer of a functional or Sequential Keras model.

    Args:
        model: The model, channels-last, with one image input.
        layer: The layer's name, or its path through nested models ("vgg16/block5_conv1").
        image_size: The input's spatial size: an int for a square image, or (height, width).

    Returns:
        The layer's ReceptiveField at that input size.

    Raises:
        ValueError: For a layer that is not in the model, a layer type whose field cannot be
            computed (transposed convolutions, upsampling, channels-first data), or branches that
            merge with different strides.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"image_size={image_size!r}: use positive integers")
    if len(model.inputs) != 1:
        raise ValueError(
            f"model {model.name!r} has {len(model.inputs)} inputs; the receptive field needs one "
            "image input"
        )
    start = _State((_Axis(int(height), 1, 1, 0), _Axis(int(width), 1, 1, 0)))
    walker = _Walker()
    state = walker.layer_state(model, {id(model.inputs[0]): start}, layer.split("/"), layer)
    if state.axes is None:
        return ReceptiveField(
            layer=layer,
            image_size=(int(height), int(width)),
            output_size=(1, 1),
            size=(int(height), int(width)),
            stride=(int(height), int(width)),
            start=(0, 0),
            is_global=True,
            assumptions=tuple(walker.assumptions),
        )
    rows, columns = state.axes
    return ReceptiveField(
        layer=layer,
        image_size=(int(height), int(width)),
        output_size=(rows.size, columns.size),
        size=(rows.field, columns.field),
        stride=(rows.stride, columns.stride),
        start=(rows.start, columns.start),
        is_global=False,
        assumptions=tuple(walker.assumptions),
    )


class _Disconnected(Exception):
    """A tensor does not depend on the inputs the walk started from."""


class _Walker:
    """Walks a model's graph from a tensor back to the model's input, memoizing states."""

    def __init__(self):
        self.assumptions = []

    def layer_state(self, model, inputs: dict, path: list[str], full_path: str) -> _State:
        """The state of the output of the layer at `path` inside `model`.

        `inputs` maps id() of the model's input tensors to their states.
        """
        try:
            target = model.get_layer(path[0])
        except ValueError:
            names = ", ".join(repr(layer.name) for layer in model.layers)
            raise ValueError(
                f"layer {full_path!r}: model {model.name!r} has no layer {path[0]!r}; "
                f"its layers are {names}"
            ) from None
        if len(path) == 1:
            return self.tensor_state(target.output, inputs, {})
        if not isinstance(target, keras.Model):
            raise ValueError(
                f"layer {full_path!r}: {path[0]!r} is a {type(target).__name__}, not a nested "
                "model, so it holds no layer {path[1]!r}"
            )
        # A nested model may have several call nodes; the one fed from this graph's inputs is it.
        for node in reversed(target._inbound_nodes):
            try:
                states = [self.tensor_state(tensor, inputs, {}) for tensor in node.input_tensors]
            except _Disconnected:
                continue
            inner = {id(tensor): state for tensor, state in zip(target.inputs, states, strict=True)}
            return self.layer_state(target, inner, path[1:], full_path)
        raise ValueError(f"layer {full_path!r} cannot be reached from the input of {model.name!r}")

    def tensor_state(self, tensor, inputs: dict, memo: dict) -> _State:
        key = id(tensor)
        if key in inputs:
            return inputs[key]
        if key in memo:
            return memo[key]
        operation, node_index, tensor_index = tensor._keras_history
        node = operation._inbound_nodes[node_index]
        if not node.input_tensors:
            raise _Disconnected()
        states = [self.tensor_state(item, inputs, memo) for item in node.input_tensors]
        if isinstance(operation, keras.Model):
            inner = {
                id(inner): state for inner, state in zip(operation.inputs, states, strict=True)
            }
            state = self.tensor_state(operation.outputs[tensor_index], inner, {})
        else:
            state = self._apply(operation, states, tensor)
        memo[key] = state
        return state

    def _apply(self, operation, states: list[_State], output) -> _State:
        name = type(operation).__name__
        local = [state for state in states if state.axes is not None]
        if not local:
            return _State(None)
        if getattr(operation, "data_format", "channels_last") == "channels_first":
            raise ValueError(
                f"layer {operation.name!r} is channels_first; the receptive field is computed "
                "for channels_last models"
            )
        if name in UNSUPPORTED_TYPES:
            raise ValueError(
                f"layer {operation.name!r} ({name}) changes the scale of its input; the "
                "receptive field is computed for convolutions, pooling, padding, cropping and "
                "layers that act on each position"
            )
        if name in GLOBAL_TYPES:
            return _State(None)
        if len(local) > 1 or name in ("Add", "Concatenate", "Multiply"):
            if name == "Concatenate" and getattr(operation, "axis", -1) not in (-1, 3):
                raise ValueError(
                    f"layer {operation.name!r} concatenates along axis {operation.axis}, a "
                    "spatial axis; the receptive field is defined for channel concatenation"
                )
            if name not in POINTWISE_TYPES:
                self.assumptions.append(
                    f"{operation.name} ({name}): taken as an element-wise merge of its inputs"
                )
            return _union(operation, local)
        (state,) = local
        if isinstance(operation, keras.layers.Conv2DTranspose):
            raise ValueError(f"layer {operation.name!r} is a transposed convolution")
        if isinstance(
            operation,
            (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D),
        ):
            return _window(
                state,
                operation.kernel_size,
                operation.strides,
                operation.dilation_rate,
                operation.padding,
            )
        if isinstance(operation, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
            strides = operation.strides or operation.pool_size
            return _window(state, operation.pool_size, strides, (1, 1), operation.padding)
        if isinstance(operation, keras.layers.ZeroPadding2D):
            return _pad(state, operation.padding, sign=1)
        if isinstance(operation, keras.layers.Cropping2D):
            return _pad(state, operation.cropping, sign=-1)
        if name in POINTWISE_TYPES:
            return state
        return self._unknown(operation, state, output)

    def _unknown(self, operation, state: _State, output) -> _State:
        """A layer of unknown type: pointwise if it keeps the spatial size, else global."""
        name = type(operation).__name__
        sizes = tuple(axis.size for axis in state.axes)
        try:
            shape = operation.compute_output_shape((1, *sizes, output.shape[-1]))
            spatial = tuple(shape[1:3]) if len(shape) == 4 else None
        except Exception:  # A custom layer need not implement shape inference for any shape.
            static = tuple(output.shape[1:3]) if len(output.shape) == 4 else None
            spatial = sizes if static is not None and None in static else static
        if spatial == sizes:
            self.assumptions.append(
                f"{operation.name} ({name}): keeps the spatial size, taken as acting on each "
                "position alone"
            )
            return state
        self.assumptions.append(
            f"{operation.name} ({name}): changes the spatial layout, taken as seeing the whole "
            "image"
        )
        return _State(None)


def _window(state: _State, kernel, strides, dilations, padding) -> _State:
    """A sliding window (convolution or pooling) over each spatial axis."""
    axes = []
    for axis, kernel_size, stride, dilation in zip(
        state.axes, kernel, strides, dilations, strict=True
    ):
        extent = dilation * (kernel_size - 1) + 1
        if padding == "valid":
            size = (axis.size - extent) // stride + 1
            before = 0
        elif padding == "same":
            size = math.ceil(axis.size / stride)
            # TensorFlow's and XLA's "same": the odd pixel of padding goes after.
            before = max((size - 1) * stride + extent - axis.size, 0) // 2
        elif padding == "causal":
            size = axis.size
            before = extent - 1
        else:
            raise ValueError(f"padding={padding!r} is not one of 'valid', 'same', 'causal'")
        if size < 1:
            raise ValueError(
                f"a window of {extent} pixels does not fit an axis of {axis.size} positions: "
                "the image is too small for this layer"
            )
        axes.append(
            _Axis(
                size=size,
                field=axis.field + (extent - 1) * axis.stride,
                stride=axis.stride * stride,
                start=axis.start - before * axis.stride,
            )
        )
    return _State(tuple(axes))


def _pad(state: _State, amounts, sign: int) -> _State:
    """Zero padding (sign 1) or cropping (sign -1) of ((top, bottom), (left, right))."""
    axes = []
    for axis, (before, after) in zip(state.axes, amounts, strict=True):
        axes.append(
            _Axis(
                size=axis.size + sign * (before + after),
                field=axis.field,
                stride=axis.stride,
                start=axis.start - sign * before * axis.stride,
            )
        )
    return _State(tuple(axes))


def _union(operation, states: list[_State]) -> _State:
    """The field of a merge: the union of its inputs' fields, which must share size and stride."""
    axes = []
    for index in range(2):
        items = [state.axes[index] for state in states]
        if len({item.stride for item in items}) > 1 or len({item.size for item in items}) > 1:
            described = ", ".join(f"{item.size} positions every {item.stride} px" for item in items)
            raise ValueError(
                f"layer {operation.name!r} merges inputs with different grids ({described}); "
                "their receptive fields cannot be combined position by position"
            )
        first = min(item.start for item in items)
        last = max(item.start + item.field for item in items)
        axes.append(_Axis(items[0].size, last - first, items[0].stride, first))
    return _State(tuple(axes))
