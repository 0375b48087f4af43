"""Finds the layers to visualize and builds the sub-model from the model input to their outputs."""

import dataclasses
import re

import keras

from keras_filters import errors
from keras_filters.model import variants
from keras_filters.optvis import objectives

PATH_SEPARATOR = "/"

# Layers that only pass their input on, or rearrange it, unchanged at inference: their "filters"
# are another layer's, which is the one to visualize.
PASS_THROUGH_TYPES = (
    "Flatten",
    "Reshape",
    "Permute",
    "Identity",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianDropout",
    "GaussianNoise",
    "AlphaDropout",
    "ActivityRegularization",
)


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """A layer whose filters can be visualized.

    Attributes:
        name: The layer's path: its name, prefixed by the nested models that hold it
            ("vgg16/block5_conv1").
        type: The layer's class name.
        output_shape: The output shape, batch axis included.
        num_filters: The size of the last (channel) axis.
    """

    name: str
    type: str
    output_shape: tuple
    num_filters: int

    @property
    def unit_word(self) -> str:
        """ "units" for a Dense layer (one unit per class, say), else "filters"."""
        return "units" if self.type in ("Dense", "EinsumDense") else "filters"


def _output_shape(layer) -> tuple | None:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):  # Unbuilt, or used at several places in the graph.
        return None


def is_pass_through(layer) -> bool:
    """Whether `layer` only passes its input on or rearranges it (Flatten, Dropout, …)."""
    return type(layer).__name__ in PASS_THROUGH_TYPES


def list_layers(model) -> list[LayerInfo]:
    """Lists the layers whose output has a channel axis to pick a filter from.

    Layers of nested models are listed too, under their path ("outer/inner"). Dense outputs
    (rank 2) count: their "filters" are the units, for class visualization. Layers that only
    pass values on or rearrange them (Flatten, Dropout, …) are left out.

    Args:
        model: A `keras.Model`, or anything `keras_filters.load_model` takes ("demo", a Keras
            Applications name, a file). An Applications model is built without weights: its
            layers do not depend on them.

    Returns:
        The visualizable layers in model order.
    """
    if not isinstance(model, keras.Model):
        from keras_filters.model import loading

        model = loading.load_model(model, weights="none")
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or is_pass_through(layer):
            continue
        if isinstance(layer, keras.Model):
            for inner in list_layers(layer):
                found.append(
                    dataclasses.replace(inner, name=layer.name + PATH_SEPARATOR + inner.name)
                )
        shape = _output_shape(layer)
        if shape is not None and len(shape) >= 2 and shape[-1] is not None:
            found.append(LayerInfo(layer.name, type(layer).__name__, shape, int(shape[-1])))
    return found


def find_layer(model: keras.Model, layer_name: str) -> LayerInfo:
    """Looks up a visualizable layer by path, or by plain name when it is unique in the model.

    Raises:
        UsageError: If no such visualizable layer exists; the message lists the closest names.
    """
    available = list_layers(model)
    by_name = {info.name: info for info in available}
    if layer_name in by_name:
        return by_name[layer_name]
    nested = [info for info in available if info.name.split(PATH_SEPARATOR)[-1] == layer_name]
    if len(nested) == 1:
        return nested[0]
    names = [info.name for info in available]
    choices = errors.format_choices(layer_name, names, limit=15)
    existing = [
        (path, layer)
        for path, layer in _all_layers(model)
        if layer_name in (path, path.split(PATH_SEPARATOR)[-1])
    ]
    if existing:
        path, layer = existing[0]
        if isinstance(layer, keras.layers.InputLayer):
            why = "is the model's input, not a layer to visualize"
        elif is_pass_through(layer):
            source = _carried_layer(layer)
            where = f"the output of {source!r}" if source else "its input"
            why = f"({type(layer).__name__}) only passes on or rearranges {where}" + (
                f"; visualize {source!r} instead" if source else ""
            )
        else:
            why = f"(output shape {_output_shape(layer)}) has no channel axis to pick a filter from"
        raise errors.UsageError(f"layer {path!r} {why}; choose one of: {choices}")
    raise errors.UsageError(
        f"layer {layer_name!r} is not a visualizable layer of model {model.name!r}; "
        f"choose one of: {choices}"
    )


def _carried_layer(layer) -> str | None:
    """The name of the layer whose output a pass-through layer carries, past other such layers."""
    while True:
        try:
            source = layer.input._keras_history[0]
        except (AttributeError, ValueError, IndexError, TypeError):
            return None
        if isinstance(source, keras.layers.InputLayer):
            return None
        if not is_pass_through(source):
            return source.name
        layer = source


def _all_layers(model: keras.Model):
    """Every layer of the model with its path, nested models' layers included."""
    for layer in model.layers:
        yield layer.name, layer
        if isinstance(layer, keras.Model):
            for path, inner in _all_layers(layer):
                yield layer.name + PATH_SEPARATOR + path, inner


def build_feature_extractor(model: keras.Model, layer_names) -> keras.Model:
    """Builds the sub-model from the model's input to the outputs of `layer_names`.

    Only the layers up to the targets run, in one forward pass. A layer inside a nested model
    is reached by calling a sub-model of the nested model on the nested model's input in the
    outer graph, which avoids "graph disconnected" errors. Two names are not layers:
    `objectives.INPUT` is left out (the step puts the image into the activations itself), and
    `objectives.LOGITS` is the model's final layer before its activation
    (`variants.logits_output`).

    Args:
        model: The full model.
        layer_names: A layer path as `list_layers` gives it (or a plain name that is unique in
            the model), `objectives.LOGITS`, or a sequence of them.

    Returns:
        A `keras.Model` that shares the weights of `model`, whose output is a dict from each
        layer's path, as given, to that layer's output.

    Raises:
        UsageError: If a layer is not visualizable, if no layer is left once `INPUT` is left
            out, or if the model has no logits before an activation.
    """
    names = [layer_names] if isinstance(layer_names, str) else list(dict.fromkeys(layer_names))
    names = [name for name in names if name != objectives.INPUT]
    if not names:
        raise errors.UsageError(
            f"the objective reads no layer of model {model.name!r}, only the input image; add "
            "an objective on a layer"
        )
    outputs = {}
    for name in names:
        if name == objectives.LOGITS:
            # A name of its own, so that the linear copy of the last layer can sit beside it.
            outputs[name] = variants.logits_output(model, name=model.layers[-1].name + "_logits")
            continue
        info = find_layer(model, name)
        outputs[name] = _layer_output(model, info.name.split(PATH_SEPARATOR))
    target = "_and_".join(name.replace(PATH_SEPARATOR, "_") for name in names)
    return keras.Model(_model_inputs(model), outputs, name=_scope_name(model.name, target))


def _model_inputs(model: keras.Model):
    """The model's input tensor, or its list of inputs when it has several."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def _scope_name(model_name: str, target: str) -> str:
    """The sub-model's name, "model_to_target", in characters that TensorFlow takes as a scope.

    A model file may name its models and layers "<b>" or "a b"; TensorFlow refuses such names
    for the root name scope that a called model opens.
    """
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", f"{model_name}_to_{target}").lstrip("_.-")
    return name[:200] or "sub"


def _layer_output(model: keras.Model, path: list[str]):
    """The output tensor of the layer at `path`, in the graph of `model`'s inputs."""
    layer = model.get_layer(path[0])
    if len(path) == 1:
        return layer.output
    inner_output = _layer_output(layer, path[1:])
    inner = keras.Model(_model_inputs(layer), inner_output, name=_scope_name(layer.name, path[-1]))
    # A nested model has a call node in each graph it was called in (a Sequential adds its own):
    # the node whose inputs are reachable from this model's inputs is the one to follow.
    for node in reversed(layer._inbound_nodes):
        tensors = node.input_tensors
        try:
            outputs = inner(tensors[0] if len(tensors) == 1 else tensors)
            keras.Model(_model_inputs(model), outputs)
            return outputs
        except ValueError:
            continue
    raise errors.UsageError(
        f"layer {'/'.join(path)!r} cannot be reached from the input of {model.name!r}"
    )
