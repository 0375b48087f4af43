"""What the ascent maximizes: objectives that map layer activations to one loss per image.

An `Objective` names the layers it reads and maps their activations (a dict from layer path to
tensor) to a float32 tensor with one loss per image. Objectives combine with `+`, `-` and
multiplication by a number: `0.5 * channel("conv3", 3) + channel("conv2", 7)`.

Two keys of the activations dict are not layers. `INPUT` is the image the parameterization
makes, in the model's input space, before the transforms: the regularizers (`total_variation`,
`l2`, `blur`) read it. `LOGITS` is the output of the model's final layer before its softmax or
other activation (the feature extractor builds it): `class_logit` reads it.

Many images run in one batch. Objectives of the same kind that differ only in the index
(`channel("conv3", 0)`, `channel("conv3", 1)`, …; `neuron` at the same position; `class_logit`)
run as one objective that reads each image's index from a `targets` tensor, so a whole layer's
filters share one compiled step; any other list runs as `per_image`, which gives image i the
loss of objective i.

Every objective here is per image (image i's loss depends on image i only) except `diversity`,
which compares the images of one batch with each other: an objective that holds it has
`couples_batch` set, and a run refuses to split its images over several batches.

Arguments are checked where an objective is made (an index is an integer ≥ 0, a layer a name);
what the model must have (the channel, the position inside the activation map) is checked by
`check_ranges` when a run is planned, in one line, before the first step.
"""

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from keras import ops

from keras_filters import errors, settings

# Activation keys that name no layer: the image before the transforms (regularizers read it),
# and the final layer before its softmax or other activation (class_logit reads it).
INPUT = "<input>"
LOGITS = "<logits>"


@dataclasses.dataclass(frozen=True)
class Reads:
    """What an objective reads of one layer's output, so that it can be checked against the model.

    An index past the layer's channels would give an empty slice (a silent nan) or an error
    deep in the compiled step, and a position outside the map would wrap: `check_ranges`
    refuses them in one line before the first step.

    Attributes:
        objective: The reading objective's name, for messages ("channel(conv3, 7)").
        layer: The layer path (or `LOGITS`).
        index: The channel (or class) read; None for each image's own, from `targets`.
        border: Pixels of a spatial map left out on each side.
        x: The column read (`neuron`); None for the centre.
        y: The row read (`neuron`); None for the centre.
        spatial: Whether the output must be (batch, height, width, channels) (`neuron`).
    """

    objective: str
    layer: str
    index: int | None = None
    border: int = 0
    x: int | None = None
    y: int | None = None
    spatial: bool = False


class Objective:
    """A differentiable function of activations, one loss per image.

    Args:
        function: `function(activations, targets) -> (batch,) tensor`; `activations` maps
            each layer path in `layers` to that layer's output for the batch; `targets` is an
            int tensor (batch,) or None (see `channel`).
        layers: The layer paths (or `INPUT`, `LOGITS`) the objective reads.
        name: A readable description, e.g. "channel(conv3, 3)".
        batch_key: Objectives with the same key differ only in `target`, and run together as
            `batched(key)`; None for objectives that cannot.
        target: This objective's value of the batched argument (its channel or class).
        couples_batch: Whether an image's loss depends on the other images of its batch
            (`diversity`). Defaults to False.
        reads: The indices and positions it reads (`Reads`), which `check_ranges` checks
            against the model's shapes. Defaults to none.
    """

    def __init__(
        self,
        function: Callable,
        layers: Sequence[str],
        name: str,
        batch_key=None,
        target: int | None = None,
        couples_batch: bool = False,
        reads: Sequence[Reads] = (),
    ):
        self.function = function
        self.layers = tuple(dict.fromkeys(layers))
        self.name = name
        self.batch_key = batch_key
        self.target = target
        self.couples_batch = couples_batch
        self.reads = tuple(reads)

    def __call__(self, activations: dict, targets=None):
        return self.function(activations, targets)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    def __add__(self, other):
        if isinstance(other, numbers.Real) and other == 0:
            return self  # sum() starts from 0.
        other = _as_objective(other, "+")
        return Objective(
            lambda activations, targets: self(activations, targets) + other(activations, targets),
            self.layers + other.layers,
            f"{self.name} + {other.name}",
            couples_batch=self.couples_batch or other.couples_batch,
            reads=self.reads + other.reads,
        )

    __radd__ = __add__

    def __neg__(self):
        return -1.0 * self

    def __sub__(self, other):
        return self + (-1.0 * _as_objective(other, "-"))

    def __mul__(self, factor):
        if not settings.is_number(factor):
            raise TypeError(
                f"an objective can be multiplied by a number only; got {type(factor).__name__}"
            )
        factor = float(factor)
        if not math.isfinite(factor):
            raise errors.UsageError(
                f"an objective multiplied by {factor} has no finite loss; multiply by a finite "
                "number"
            )
        return Objective(
            lambda activations, targets: factor * self(activations, targets),
            self.layers,
            f"{factor:g} * ({self.name})",
            couples_batch=self.couples_batch,
            reads=self.reads,
        )

    __rmul__ = __mul__


def _as_objective(value, operator: str) -> Objective:
    if not isinstance(value, Objective):
        raise TypeError(
            f"objectives combine with objectives under {operator!r}; got {type(value).__name__}"
        )
    return value


def objective_list(objectives) -> list[Objective]:
    """`objectives` as a list, refusing anything but a sequence of `Objective`s.

    A layer name in place of an objective would fail deep in the plan, without a word on what
    to give instead.

    Args:
        objectives: One `Objective` per image.

    Returns:
        The objectives, as a list.

    Raises:
        UsageError: For a single objective, text or another value that is not a sequence of
            objectives, naming the first bad item.
    """
    example = "e.g. [objectives.channel('conv3', 0), objectives.channel('conv3', 1)]"
    if isinstance(objectives, Objective):
        raise errors.UsageError(
            f"objectives takes a list of objectives, one per image; got one, {objectives.name}: "
            "give [objective]"
        )
    if isinstance(objectives, str) or not isinstance(objectives, Iterable):
        raise errors.UsageError(
            f"objectives={settings.show(objectives)} is not a list of objectives; give one "
            f"objective per image, {example}"
        )
    objectives = list(objectives)
    for position, objective in enumerate(objectives):
        if not isinstance(objective, Objective):
            raise errors.UsageError(
                f"objectives[{position}]={settings.show(objective)} ({type(objective).__name__}) "
                f"is not an objective; make one with keras_filters.objectives, {example}"
            )
    return objectives


# --- Argument checks: a bad argument is refused when the objective is made, in one line.


def _check_layer(kind: str, layer) -> None:
    """Refuses a layer that is not a non-empty text: `find_layer` could only say "not found"."""
    if not isinstance(layer, str) or not layer.strip():
        raise errors.UsageError(
            f"{kind}: layer={settings.show(layer)} is not a layer name; give the layer's path "
            "as text, e.g. 'conv3' or 'outer/inner'"
        )


def _check_whole_number(kind: str, name: str, value, use: str, *, optional: bool = False):
    """Refuses `value` unless it is an integer ≥ 0 (or None, where `optional`)."""
    if optional and value is None:
        return
    if not settings.is_integer(value) or value < 0:
        raise errors.UsageError(
            f"{kind}: {name}={settings.show(value)} is not an integer ≥ 0; use {use}"
        )


def _check_index(kind: str, index, unit: str) -> None:
    """Refuses an index that is not None or an integer ≥ 0 (-1 would count from the end)."""
    use = f"a {unit} counted from 0, or None for each image's own {unit}"
    _check_whole_number(kind, "index", index, use, optional=True)


def _check_weight(name: str, weight) -> None:
    """Refuses a regularizer weight that is not a finite number ≥ 0."""
    if not settings.is_number(weight) or not math.isfinite(weight) or weight < 0:
        raise errors.UsageError(
            f"regularizer weight {name}={settings.show(weight)} is not a finite number ≥ 0; "
            "use a number ≥ 0 (0 leaves it out)"
        )


# --- Range checks: what an objective reads, against the model's output shapes.


def check_ranges(objectives: Sequence[Objective], shapes: Mapping[str, tuple], where: str = ""):
    """Refuses an index, position or border that the layers' outputs do not have, in one line.

    Without this, an index past the channels gives an empty slice (a nan loss) or an error
    from inside the compiled step, and a position past the map wraps or fails the same way.

    Args:
        objectives: The objectives of a run (their `reads`).
        shapes: Each layer path's output shape, batch axis first (None for a size not known).
            Layers missing here are not checked.
        where: The image size the shapes hold for, for the message (" at 32 px"). Defaults to
            "".

    Raises:
        UsageError: For the first bad read, naming the objective, the layer, the value and the
            valid range.
    """
    for objective in objectives:
        for reads in objective.reads:
            if reads.layer in shapes:
                _check_reads(reads, tuple(shapes[reads.layer]), where)


def _layer_words(layer: str) -> str:
    return "the model's logits" if layer == LOGITS else f"layer {layer!r}"


def _check_reads(reads: Reads, shape: tuple, where: str) -> None:
    layer = _layer_words(reads.layer)
    if reads.spatial and len(shape) != 4:
        raise errors.UsageError(
            f"{reads.objective}: {layer} gives shape {shape[1:]} per image, not (height, "
            "width, channels); use channel instead"
        )
    count = shape[-1]
    if reads.index is not None and count is not None and reads.index >= count:
        unit = "classes" if reads.layer == LOGITS else "channels"
        raise errors.UsageError(
            f"{reads.objective}: index {reads.index} is out of range for {layer}, which has "
            f"{count} {unit}; use an index from 0 to {count - 1}"
        )
    if len(shape) != 4 or None in shape[1:3]:
        return
    height, width = shape[1:3]
    if reads.border and 2 * reads.border >= min(height, width):
        raise errors.UsageError(
            f"{reads.objective}: border={reads.border} leaves no pixels of the {height}x{width} "
            f"activation map of {layer}{where}; use a border from 0 to "
            f"{(min(height, width) - 1) // 2}"
        )
    for axis, value, size in (("x", reads.x, width), ("y", reads.y, height)):
        if value is not None and value >= size:
            raise errors.UsageError(
                f"{reads.objective}: {axis}={value} is outside the {height}x{width} activation "
                f"map of {layer}{where}; use {axis} from 0 to {size - 1}"
            )


def _without_border(activations, border: int):
    if border and len(activations.shape) == 4:
        return activations[:, border:-border, border:-border, :]
    return activations


def _spatial_mean(values):
    # Mixed precision computes the layer in bfloat16; the objective stays float32.
    values = ops.cast(values, "float32")
    return ops.mean(values, axis=tuple(range(1, len(values.shape))))


def _each_images_channel(values, targets):
    """values[i, ..., targets[i]] for every image i, keeping the channel axis (size 1)."""
    indices = ops.reshape(ops.cast(targets, "int32"), (-1,) + (1,) * (len(values.shape) - 1))
    return ops.take_along_axis(values, indices, axis=-1)


def _channel_mean(key: str, index: int | None, border: int = 0) -> Callable:
    """The function of activations: the mean of channel `index` (None: `targets`) of `key`."""

    def function(activations, targets):
        values = _without_border(activations[key], border)
        if index is None:
            return _spatial_mean(_each_images_channel(values, targets))
        return _spatial_mean(values[..., index : index + 1])

    return function


def _unit_objective(
    function: Callable,
    layer: str,
    index: int | None,
    batch_key,
    prefix: str,
    suffix: str = ")",
    **reads,
) -> Objective:
    """`function` as the objective of unit `index` of `layer`, named prefix + unit + suffix.

    With `index` None it reads each image's own unit from `targets` ("own" in the name);
    with a unit it carries `batch_key` and `target`, so that objectives which differ only in
    the unit run as one batched objective. `reads` are the other fields of its `Reads`.
    """
    if index is None:
        name = f"{prefix}own{suffix}"
        return Objective(function, [layer], name, reads=[Reads(name, layer, **reads)])
    index = int(index)
    name = f"{prefix}{index}{suffix}"
    return Objective(
        function,
        [layer],
        name,
        batch_key=batch_key,
        target=index,
        reads=[Reads(name, layer, index, **reads)],
    )


def channel(layer: str, index: int | None = None, border: int = 0) -> Objective:
    """The mean activation of one channel (filter) of `layer`.

    Args:
        layer: The layer's path ("block5_conv1", "outer/inner").
        index: The channel. Defaults to None: each image's own channel, read from `targets`.
        border: Pixels of the activation map left out on each side (keras.io leaves out 2,
            so that border artifacts do not count). Defaults to 0. Only for spatial outputs.

    Returns:
        An `Objective`.

    Raises:
        UsageError: For a layer that is not a name, or an index or border that is not an
            integer ≥ 0 (the model's own ranges are checked when a run is planned).
    """
    _check_layer("channel", layer)
    kind = f"channel({layer!r})"
    _check_index(kind, index, "channel")
    _check_whole_number(kind, "border", border, "the pixels to leave out on each side")
    border = int(border)
    function = _channel_mean(layer, index, border)
    batch_key = ("channel", layer, border)
    return _unit_objective(function, layer, index, batch_key, f"channel({layer}, ", border=border)


def _position(size, given: int | None, axis: str, layer: str):
    """The index along a spatial axis: `given`, checked against a known size, or the centre."""
    if given is None:
        return size // 2
    if isinstance(size, int) and not 0 <= given < size:
        raise ValueError(
            f"neuron({layer}): {axis}={given} is outside the activation map; use 0 … {size - 1}"
        )
    return given


def neuron(
    layer: str, index: int | None = None, x: int | None = None, y: int | None = None
) -> Objective:
    """The activation of one channel of `layer` at one spatial position.

    A channel's mean asks for its pattern everywhere; a neuron asks for it once, at one place,
    within that unit's receptive field (Distill, "Feature Visualization", 2017).

    Args:
        layer: The path of a layer with a spatial output (batch, height, width, channels).
        index: The channel. Defaults to None: each image's own channel, read from `targets`.
        x: The column of the activation map. Defaults to None: the centre, width // 2.
        y: The row of the activation map. Defaults to None: the centre, height // 2.

    Returns:
        An `Objective`.

    Raises:
        UsageError: For a layer that is not a name, an index, x or y that is not an integer
            ≥ 0; and, when a run is planned (`check_ranges`), for a layer without a spatial
            output or a position outside its activation map.
    """
    _check_layer("neuron", layer)
    kind = f"neuron({layer!r})"
    _check_index(kind, index, "channel")
    for axis, value in (("x", x), ("y", y)):
        line = "column" if axis == "x" else "row"
        use = f"a {line} of the activation map counted from 0, or None for the centre"
        _check_whole_number(kind, axis, value, use, optional=True)
    x, y = (None if value is None else int(value) for value in (x, y))

    def function(activations, targets):
        values = activations[layer]
        if len(values.shape) != 4:
            raise ValueError(
                f"neuron({layer}) needs a spatial output (batch, height, width, channels); "
                f"layer {layer!r} gives shape {tuple(values.shape)}; use channel instead"
            )
        shape = ops.shape(values)
        row = _position(shape[1], y, "y", layer)
        column = _position(shape[2], x, "x", layer)
        at_position = values[:, row, column, :]
        if index is None:
            return ops.cast(_each_images_channel(at_position, targets)[:, 0], "float32")
        return ops.cast(at_position[:, index], "float32")

    where = f"x={'centre' if x is None else x}, y={'centre' if y is None else y}"
    batch_key = ("neuron", layer, x, y)
    prefix, suffix = f"neuron({layer}, ", f", {where})"
    return _unit_objective(
        function, layer, index, batch_key, prefix, suffix, x=x, y=y, spatial=True
    )


def class_logit(index: int | None = None) -> Objective:
    """The logit of class `index`: the model's final layer before its softmax (or activation).

    Maximizing a softmax probability can be won by pushing the other classes down; maximizing
    the logit asks for the class itself (Distill, "Feature Visualization", 2017). The feature
    extractor computes `LOGITS` from the model's last layer with its activation left out: a
    last layer with an activation (`Dense(1000, activation="softmax")`) or a trailing
    `Softmax`/`Activation` layer (see `model.variants.logits_output`).

    Args:
        index: The class. Defaults to None: each image's own class, read from `targets`.

    Returns:
        An `Objective`.

    Raises:
        UsageError: For an index that is not an integer ≥ 0 (the model's classes are checked
            when a run is planned).
    """
    _check_index("class_logit", index, "class")
    function = _channel_mean(LOGITS, index)
    return _unit_objective(function, LOGITS, index, ("class_logit",), "class_logit(")


def deepdream(layer: str) -> Objective:
    """The mean of the squared activations of `layer`: DeepDream's objective (Mordvintsev 2015).

    Args:
        layer: The layer's path.

    Returns:
        An `Objective`.

    Raises:
        UsageError: For a layer that is not a name.
    """
    _check_layer("deepdream", layer)

    def function(activations, targets):
        return _spatial_mean(ops.square(ops.cast(activations[layer], "float32")))

    return Objective(function, [layer], f"deepdream({layer})")


def gram_matrices(values):
    """The Gram matrix of each image's activations: (batch, channels, channels).

    Args:
        values: Activations (batch, height, width, channels).

    Returns:
        float32 tensor: for image b, Σ over positions p of values[b, p, :]ᵀ values[b, p, :].
    """
    values = ops.cast(values, "float32")
    flat = ops.reshape(values, (ops.shape(values)[0], -1, values.shape[-1]))
    return ops.matmul(ops.transpose(flat, (0, 2, 1)), flat)


def diversity(layer: str) -> Objective:
    """How different the batch's images are, at `layer`: Distill's diversity term, per image.

    Each image's Gram matrix of `layer`'s activations (which channels fire together, whatever
    the position) is flattened and scaled to unit length; image i's value is minus the mean
    cosine similarity to the other images': −1/(N−1) · Σ_{j≠i} ⟨Ĝ_i, Ĝ_j⟩ for a batch of N
    (0 for a batch of one). Adding it to an objective (`channel(layer, 3) + 0.1 *
    diversity(layer)`, every image of the batch given the same objective) pushes the images
    apart, so that they show several things the channel responds to. lucid's
    `diversity(layer)` is the same similarity as one number for the batch, Σ_i Σ_{j≠i}
    ⟨Ĝ_i, Ĝ_j⟩ / N, with the sign left to the user (lucid subtracts it); the sum of this
    objective over the batch is −N/(N−1) times lucid's.

    The term couples the images of one batch: an image's value, and its gradient (the
    gradient of the batch's sum, where each pair counts twice), depend on which images share
    its batch. The objective has `couples_batch` set, and a run refuses to split its images
    over several chunks, shards or devices (see `pipeline.plan_objectives`).

    Args:
        layer: The path of a layer with a spatial output (batch, height, width, channels).

    Returns:
        An `Objective`.

    Raises:
        UsageError: For a layer that is not a name.
    """
    _check_layer("diversity", layer)

    def function(activations, targets):
        grams = gram_matrices(activations[layer])
        flat = ops.reshape(grams, (ops.shape(grams)[0], -1))
        # lucid's l2_normalize: x / sqrt(max(|x|², 1e-10)); an all-zero Gram stays zero.
        squared_norm = ops.sum(ops.square(flat), axis=1, keepdims=True)
        unit = flat / ops.sqrt(ops.maximum(squared_norm, 1e-10))
        similarity = ops.matmul(unit, ops.transpose(unit))
        count = ops.cast(ops.shape(unit)[0], "float32")
        to_others = ops.sum(similarity, axis=1) - ops.diagonal(similarity)
        return -to_others / ops.maximum(count - 1.0, 1.0)

    return Objective(function, [layer], f"diversity({layer})", couples_batch=True)


def batched(batch_key) -> Objective:
    """The objective that runs every objective of `batch_key` at once, reading `targets`.

    Args:
        batch_key: The `batch_key` of a `channel`, `neuron` or `class_logit` objective.

    Returns:
        The same kind of objective with `index=None`.

    Raises:
        ValueError: For a key of no batchable kind.
    """
    kind, *arguments = batch_key
    if kind == "channel":
        layer, border = arguments
        return channel(layer, None, border)
    if kind == "neuron":
        layer, x, y = arguments
        return neuron(layer, None, x, y)
    if kind == "class_logit":
        return class_logit(None)
    raise ValueError(
        f"no batched form for objectives of kind {kind!r}; batchable: channel, neuron, class_logit"
    )


def per_image(objectives: Sequence[Objective]) -> Objective:
    """Image i's loss is that of `objectives[targets[i]]`: any list of objectives in one batch.

    Every objective is computed for every image of the batch and each image keeps its own, so
    this costs one reduction per objective and step; lists that `batch_plan` can batch are
    cheaper.
    """
    objectives = list(objectives)

    def function(activations, targets):
        losses = ops.stack([objective(activations, None) for objective in objectives], axis=1)
        chosen = ops.reshape(ops.cast(targets, "int32"), (-1, 1))
        return ops.take_along_axis(losses, chosen, axis=1)[:, 0]

    layers = [layer for objective in objectives for layer in objective.layers]
    return Objective(
        function,
        layers,
        "per image: " + ", ".join(o.name for o in objectives),
        couples_batch=any(objective.couples_batch for objective in objectives),
        reads=[reads for objective in objectives for reads in objective.reads],
    )


def batch_plan(objectives: Sequence[Objective]) -> tuple[Objective, np.ndarray]:
    """One objective that runs all of `objectives`, one per image, and each image's target.

    Objectives that share a `batch_key` run as their batched form with their targets (one
    compiled step for any subset of them). Otherwise the distinct objectives run as
    `per_image`, each computed once per step however many images share it (the same
    objective object for every image of a batch, as with `diversity`, costs one).

    Returns:
        (objective, targets): `targets` is an int32 array (N,).
    """
    objectives = list(objectives)
    keys = {objective.batch_key for objective in objectives}
    if len(keys) == 1 and None not in keys:
        targets = [objective.target for objective in objectives]
        return batched(keys.pop()), np.asarray(targets, dtype=np.int32)
    distinct = list({id(objective): objective for objective in objectives}.values())
    if len(distinct) == 1:
        return distinct[0], np.zeros(len(objectives), dtype=np.int32)
    position = {id(objective): number for number, objective in enumerate(distinct)}
    targets = [position[id(objective)] for objective in objectives]
    return per_image(distinct), np.asarray(targets, dtype=np.int32)


# --- Regularizers: penalties on the image (positive numbers), read from INPUT.


def _input_image(activations):
    return ops.cast(activations[INPUT], "float32")


def total_variation() -> Objective:
    """How much the image changes between neighbouring pixels: a penalty on noise.

    Image i's value is the mean over its vertical neighbour pairs of |x[r+1, c] − x[r, c]| plus
    the mean over its horizontal pairs of |x[r, c+1] − x[r, c]|, every channel counted (the
    anisotropic total variation of Simonyan et al. 2014, as a mean, so that a weight does not
    depend on the image size; `tf.image.total_variation`, which lucid uses, is the sum).

    Returns:
        An `Objective` reading `INPUT`; ≥ 0.
    """

    def function(activations, targets):
        image = _input_image(activations)
        rows = ops.abs(image[:, 1:, :, :] - image[:, :-1, :, :])
        columns = ops.abs(image[:, :, 1:, :] - image[:, :, :-1, :])
        return _spatial_mean(rows) + _spatial_mean(columns)

    return Objective(function, [INPUT], "total_variation()")


def l2(center: float = 0.0) -> Objective:
    """The mean squared distance of the image's values from `center`: a penalty on contrast.

    Args:
        center: The value the penalty pulls the pixels towards, in the model's input space.
            Defaults to 0.

    Returns:
        An `Objective` reading `INPUT`: image i's mean of (x − center)²; ≥ 0.

    Raises:
        UsageError: For a center that is not a finite number.
    """
    if not settings.is_number(center) or not math.isfinite(center):
        raise errors.UsageError(
            f"l2: center={settings.show(center)} is not a finite number; use a value of the "
            "model's input space, e.g. 0"
        )
    center = float(center)

    def function(activations, targets):
        return _spatial_mean(ops.square(_input_image(activations) - center))

    return Objective(function, [INPUT], f"l2(center={center:g})")


def box_blur(images):
    """Each pixel replaced by the mean of its 3x3 neighbourhood inside the image, per channel.

    At the border only the neighbours inside the image count (lucid's `_tf_blur`, with a box
    kernel): a constant image stays constant.

    Args:
        images: float32 (batch, height, width, channels).

    Returns:
        The blurred images, same shape.
    """
    kernel = ops.ones((3, 3, images.shape[-1], 1), dtype="float32")
    sums = ops.depthwise_conv(images, kernel, strides=1, padding="same")
    counts = ops.depthwise_conv(ops.ones_like(images), kernel, strides=1, padding="same")
    return sums / counts


def blur() -> Objective:
    """What a 3x3 box blur would remove from the image: the penalty of "blur each step".

    Image i's value is ½ · mean of (x − stop_gradient(box_blur(x)))² over pixels and channels
    (`box_blur`). With the blurred image held constant, the penalty's gradient is
    (x − box_blur(x)) / count, so a step of −weight · blur moves the image a little towards
    its blur: lucid's `blur_input_each_step` (Nguyen et al. 2015 blurred the image every few
    steps), as a mean instead of a sum so that a weight does not depend on the image size.

    Returns:
        An `Objective` reading `INPUT`; ≥ 0.
    """

    def function(activations, targets):
        image = _input_image(activations)
        blurred = ops.stop_gradient(box_blur(image))
        return 0.5 * _spatial_mean(ops.square(image - blurred))

    return Objective(function, [INPUT], "blur()")


def penalty(*, total_variation: float = 0.0, l2: float = 0.0, blur: float = 0.0):
    """The weighted sum of the regularizers whose weight is nonzero, or None when none is.

    A run ascends `objective − penalty` but reports the objective alone (its `loss_history`,
    its final losses and so which filters are dead), so that the regularizers' weights do not
    change what a filter's number means.

    Args:
        total_variation: Weight of `total_variation()`. Defaults to 0 (off).
        l2: Weight of `l2()` (centred on 0). Defaults to 0 (off).
        blur: Weight of `blur()`. Defaults to 0 (off).

    Returns:
        An `Objective` that reads `INPUT`, or None.

    Raises:
        UsageError: For a weight that is not a finite number ≥ 0.
    """
    penalties = (
        ("total_variation", total_variation, _total_variation_penalty),
        ("l2", l2, _l2_penalty),
        ("blur", blur, _blur_penalty),
    )
    for name, weight, _ in penalties:
        _check_weight(name, weight)
    weighted = [float(weight) * make() for _, weight, make in penalties if weight]
    return sum(weighted) if weighted else None


def regularized(
    objective: Objective, *, total_variation: float = 0.0, l2: float = 0.0, blur: float = 0.0
) -> Objective:
    """`objective` minus each regularizer times its weight (`penalty`), as one objective.

    Args:
        objective: The objective to regularize.
        total_variation, l2, blur: The weights, as `penalty`'s.

    Returns:
        `objective − penalty`; `objective` itself when every weight is 0.

    Raises:
        UsageError: For a weight that is not a finite number ≥ 0.
    """
    weighted = penalty(total_variation=total_variation, l2=l2, blur=blur)
    return objective if weighted is None else objective - weighted


# `penalty`'s keyword arguments hide the module's functions of the same names.
_total_variation_penalty = total_variation
_l2_penalty = l2
_blur_penalty = blur


def evaluate(model, objective: Objective, images) -> np.ndarray:
    """The objective of each image, computed with a plain forward pass of `model`.

    Args:
        model: A `keras.Model`, or anything `keras_filters.load_model` takes.
        objective: An objective whose layers belong to `model` (or are `INPUT`, the images
            given, or `LOGITS`).
        images: Float array (batch, height, width, channels) in the model's input space.

    Returns:
        float32 array (batch,).

    Raises:
        UsageError: For an index, position or border that the model's layers do not have
            (`check_ranges`).
    """
    from keras_filters.model import extractor, loading

    model = loading.load_model(model)
    images = ops.convert_to_tensor(np.asarray(images, np.float32))
    layers = [layer for layer in objective.layers if layer != INPUT]
    activations = {}
    if layers:
        features = extractor.build_feature_extractor(model, layers)
        activations = dict(features(images, training=False))
    shapes = {layer: tuple(values.shape) for layer, values in activations.items()}
    height, width = tuple(images.shape)[1:3]
    check_ranges([objective], shapes, f" at {height}x{width} px")
    activations[INPUT] = images
    return np.asarray(ops.convert_to_numpy(objective(activations, None)), dtype=np.float32)
