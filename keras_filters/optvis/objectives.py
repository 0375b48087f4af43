"""What the ascent maximizes: objectives that map layer activations to one loss per image.

An `Objective` names the layers it reads and maps their activations (a dict from layer path to
tensor) to a float32 tensor with one loss per image. Objectives combine with `+`, `-` and
multiplication by a number: `0.5 * channel("conv3", 3) + channel("conv2", 7)`.

Many images run in one batch. Objectives of the same kind on the same layer that differ only in
the channel (`channel("conv3", 0)`, `channel("conv3", 1)`, …) run as one objective that reads
each image's channel from a `targets` tensor, so a whole layer's filters share one compiled
step; any other list runs as `per_image`, which gives image i the loss of objective i.
"""

import numbers
from collections.abc import Callable, Sequence

import numpy as np
from keras import ops

# Activation keys that name no layer: the image before the transforms (regularizers read it),
# and the final layer before its softmax or other activation (class_logit reads it).
INPUT = "<input>"
LOGITS = "<logits>"


class Objective:
    """A differentiable function of activations, one loss per image.

    Args:
        function: `function(activations, targets) -> (batch,) tensor`; `activations` maps
            each layer path in `layers` to that layer's output for the batch; `targets` is an
            int tensor (batch,) or None (see `channel`).
        layers: The layer paths the objective reads.
        name: A readable description, e.g. "channel(conv3, 3)".
        batch_key: Objectives with the same key differ only in `target`, and run together as
            `batched(key)`; None for objectives that cannot.
        target: This objective's value of the batched argument (its channel).
    """

    def __init__(
        self,
        function: Callable,
        layers: Sequence[str],
        name: str,
        batch_key=None,
        target: int | None = None,
    ):
        self.function = function
        self.layers = tuple(dict.fromkeys(layers))
        self.name = name
        self.batch_key = batch_key
        self.target = target

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
        )

    __radd__ = __add__

    def __neg__(self):
        return -1.0 * self

    def __sub__(self, other):
        return self + (-1.0 * _as_objective(other, "-"))

    def __mul__(self, factor):
        if not isinstance(factor, numbers.Real) or isinstance(factor, bool):
            raise TypeError(
                f"an objective can be multiplied by a number only; got {type(factor).__name__}"
            )
        factor = float(factor)
        return Objective(
            lambda activations, targets: factor * self(activations, targets),
            self.layers,
            f"{factor:g} * ({self.name})",
        )

    __rmul__ = __mul__


def _as_objective(value, operator: str) -> Objective:
    if not isinstance(value, Objective):
        raise TypeError(
            f"objectives combine with objectives under {operator!r}; got {type(value).__name__}"
        )
    return value


def _without_border(activations, border: int):
    if border and len(activations.shape) == 4:
        return activations[:, border:-border, border:-border, :]
    return activations


def _spatial_mean(values):
    # Mixed precision computes the layer in bfloat16; the objective stays float32.
    values = ops.cast(values, "float32")
    return ops.mean(values, axis=tuple(range(1, len(values.shape))))


def channel(layer: str, index: int | None = None, border: int = 0) -> Objective:
    """The mean activation of one channel (filter) of `layer`.

    Args:
        layer: The layer's path ("block5_conv1", "outer/inner").
        index: The channel. Defaults to None: each image's own channel, read from `targets`.
        border: Pixels of the activation map left out on each side (keras.io leaves out 2,
            so that border artifacts do not count). Defaults to 0. Only for spatial outputs.

    Returns:
        An `Objective`.
    """

    def per_image_channel(activations, targets):
        values = _without_border(activations[layer], border)
        rank = len(values.shape)
        indices = ops.reshape(ops.cast(targets, "int32"), (-1,) + (1,) * (rank - 1))
        return _spatial_mean(ops.take_along_axis(values, indices, axis=-1))

    def one_channel(activations, targets):
        values = _without_border(activations[layer], border)
        return _spatial_mean(values[..., index : index + 1])

    if index is None:
        return Objective(per_image_channel, [layer], f"channel({layer}, own)")
    return Objective(
        one_channel,
        [layer],
        f"channel({layer}, {int(index)})",
        batch_key=("channel", layer, border),
        target=int(index),
    )


def batched(batch_key) -> Objective:
    """The objective that runs every objective of `batch_key` at once, reading `targets`."""
    kind, layer, border = batch_key
    if kind != "channel":
        raise ValueError(f"no batched form for objectives of kind {kind!r}")
    return channel(layer, None, border)


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
    return Objective(function, layers, "per image: " + ", ".join(o.name for o in objectives))


def batch_plan(objectives: Sequence[Objective]) -> tuple[Objective, np.ndarray]:
    """One objective that runs all of `objectives`, one per image, and each image's target.

    Objectives that share a `batch_key` run as their batched form with their targets (one
    compiled step for any subset of them); otherwise `per_image` with targets 0 … N−1.

    Returns:
        (objective, targets): `targets` is an int32 array (N,).
    """
    objectives = list(objectives)
    keys = {objective.batch_key for objective in objectives}
    if len(keys) == 1 and None not in keys:
        targets = [objective.target for objective in objectives]
        return batched(keys.pop()), np.asarray(targets, dtype=np.int32)
    return per_image(objectives), np.arange(len(objectives), dtype=np.int32)


def evaluate(model, objective: Objective, images) -> np.ndarray:
    """The objective of each image, computed with a plain forward pass of `model`.

    Args:
        model: A `keras.Model`, or anything `keras_filters.load_model` takes.
        objective: An objective whose layers belong to `model`.
        images: Float array (batch, height, width, channels) in the model's input space.

    Returns:
        float32 array (batch,).
    """
    from keras_filters.model import extractor, loading

    model = loading.load_model(model)
    features = extractor.build_feature_extractor(model, objective.layers)
    activations = features(ops.convert_to_tensor(np.asarray(images, np.float32)), training=False)
    return np.asarray(ops.convert_to_numpy(objective(activations, None)), dtype=np.float32)
