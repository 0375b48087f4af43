"""Variants of a model: its logits instead of its probabilities, and a bfloat16 copy.

`logits_output`, `linear_output_model`: maximizing a softmax probability can be won by pushing
the other classes down; maximizing the pre-softmax logit asks for the class itself (Distill,
"Feature Visualization", 2017). The copy shares every weight with the original, which stays
untouched; only a last layer with an activation is copied, weights included.

`mixed_precision_copy`: the sub-model computing in bfloat16, its weights kept float32.

`relu_warmup_copy`: the sub-model with the same forward values, whose ReLUs pass gradient to
an image that no plain ReLU gradient reaches (lucid's "redirected ReLU"), for the first steps.
"""

import keras
from keras import ops

from keras_filters import errors


def _is_linear(activation) -> bool:
    return activation is None or getattr(activation, "__name__", "") == "linear"


def _last_layer(model: keras.Model, purpose: str):
    """The model's last layer, once it is checked to have one input and one output."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise errors.UsageError(
            f"{purpose} needs a model with one input and one output; model {model.name!r} "
            f"has {len(model.inputs)} and {len(model.outputs)}"
        )
    return model.layers[-1]


def _no_activation_error(model: keras.Model, last, hint: str) -> errors.UsageError:
    return errors.UsageError(
        f"the last layer of model {model.name!r}, {last.name!r} ({type(last).__name__}), has "
        f"no activation to replace; {hint}"
    )


def logits_output(model: keras.Model, name: str | None = None):
    """The output of the model's final layer before its activation, in the model's graph.

    A last `Activation` or `Softmax` layer is left out: the logits are its input. A last
    layer with an `activation` argument (Keras Applications' `Dense(classes,
    activation="softmax", name="predictions")`) is called again as a copy of itself with a
    linear activation and the same weights (copied: a layer applies its activation inside its
    own call). A last layer whose activation is already linear gives its own output.

    Args:
        model: A functional or Sequential model with one input and one output.
        name: The name of the linear copy of the last layer. Defaults to None: the last
            layer's own name (the copy then cannot sit in one model beside the original).

    Returns:
        A symbolic tensor of the logits.

    Raises:
        UsageError: When the model has several inputs or outputs, or its last layer has no
            activation to leave out.
    """
    last = _last_layer(model, "the logits")
    if isinstance(last, (keras.layers.Softmax, keras.layers.Activation)):
        return last.input
    activation = getattr(last, "activation", None)
    if activation is None:
        raise _no_activation_error(
            model,
            last,
            "its logits are the output of a Dense-like layer with an activation, "
            "or the input of a last Softmax or Activation layer",
        )
    if _is_linear(activation):
        return last.output
    config = last.get_config()
    config["activation"] = "linear"
    if name is not None:
        config["name"] = name
    replacement = type(last).from_config(config)
    outputs = replacement(last.input)
    replacement.set_weights(last.get_weights())
    return outputs


def linear_output_model(model: keras.Model) -> keras.Model:
    """Returns a model like `model` whose final activation is linear.

    Two shapes of classifier are handled: a last layer with an `activation` argument (Keras
    Applications' `Dense(classes, activation="softmax", name="predictions")`) is replaced by a
    copy of itself with a linear activation and the same weights; a last `Activation` or
    `Softmax` layer is dropped, so that the output is its input. All other layers are shared.

    Args:
        model: A functional or Sequential model with one input and one output.

    Returns:
        A new `keras.Model`, or `model` itself when its last activation is already linear.

    Raises:
        UsageError: When the last layer has no activation to replace.
    """
    last = _last_layer(model, "linear_output")
    activation = getattr(last, "activation", None)
    is_activation_layer = isinstance(last, (keras.layers.Softmax, keras.layers.Activation))
    if not is_activation_layer and activation is None:
        raise _no_activation_error(model, last, "set linear_output=false")
    if not is_activation_layer and _is_linear(activation):
        return model
    copy = keras.Model(model.inputs[0], logits_output(model), name=model.name)
    # The copy takes the inputs the model takes: it keeps the name it was loaded by, which
    # says its input range (`model.input_range.resolve`).
    if hasattr(model, "keras_filters_source"):
        copy.keras_filters_source = model.keras_filters_source
    return copy


MIXED_POLICY = "mixed_bfloat16"


def _clone_layer_with_policy(layer, policy: str):
    """A new layer of the same class and config, with `policy` as its dtype policy."""
    config = layer.get_config()
    config["dtype"] = keras.DTypePolicy(policy)
    return layer.__class__.from_config(config)


def mixed_precision_copy(model: keras.Model, policy: str = MIXED_POLICY) -> keras.Model:
    """Copies `model` so that every layer computes in bfloat16.

    Under the "mixed_bfloat16" policy each layer keeps float32 variables and casts its inputs and
    weights to bfloat16 when called, so the convolutions run as bfloat16 products (twice the
    float32 rate on CPUs with AVX512_BF16, and on GPUs with tensor cores). The caller's image
    stays float32: the first layer casts it, and the gradient flows back to it as float32. The
    objective casts the layer output back to float32 (see `objectives.filter_mean_activation`).
    The model passed in is left untouched.

    Args:
        model: A functional or sequential model, e.g. the sub-model up to the target layer;
            nested models are copied too.
        policy: The Keras dtype policy of the copy. Defaults to "mixed_bfloat16".

    Returns:
        A new `keras.Model` with the same architecture and weights.
    """
    copy = keras.models.clone_model(
        model,
        clone_function=lambda layer: _clone_layer_with_policy(layer, policy),
        recursive=True,
    )
    # Same architecture, so the flat weight lists line up; set_weights checks every shape.
    copy.set_weights(model.get_weights())
    return copy


@ops.custom_gradient
def redirected_relu(inputs):
    """relu(inputs) forward; backward, a direction even for an image that the ReLU blocks.

    For each image whose plain ReLU gradient at this layer is non-zero somewhere, the gradient
    is the plain one. For an image whose plain gradient is zero everywhere (every unit that the
    objective reads is off), the upstream gradient also passes where the input is negative and
    the upstream is positive, that is, where raising the input raises the objective. Passing it
    only where nothing gets through keeps healthy gradients intact (redirecting everywhere
    drowned them on VGG16's block5). The step maximizes, so positive upstream means "raise".
    """

    def gradient(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        zeros = ops.zeros_like(upstream)
        plain = ops.where(inputs > 0, upstream, zeros)
        redirected = ops.where(ops.logical_or(inputs > 0, upstream > 0), upstream, zeros)
        image_axes = tuple(range(1, len(upstream.shape)))
        reaches = ops.sum(ops.abs(plain), axis=image_axes, keepdims=True) > 0
        return ops.where(reaches, plain, redirected)

    return ops.relu(inputs), gradient


class RedirectedReLU(keras.layers.Layer):
    """A plain ReLU layer whose gradient is `redirected_relu`'s."""

    def call(self, inputs):
        return redirected_relu(inputs)


def _is_relu(activation) -> bool:
    return getattr(activation, "__name__", "") == "relu"


def _is_plain_relu_layer(layer) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        return not (
            config.get("max_value") or config.get("negative_slope") or config.get("threshold")
        )
    return isinstance(layer, keras.layers.Activation) and _is_relu(layer.activation)


def relu_warmup_copy(model: keras.Model) -> tuple[keras.Model, int]:
    """Copies `model` with every plain ReLU's gradient redirected (`redirected_relu`).

    Layers built with `activation="relu"` (Conv2D, SeparableConv2D, Dense, …) keep their class
    with the activation swapped; `ReLU()` and `Activation("relu")` layers become
    `RedirectedReLU`. Capped or leaky ReLUs (ReLU6) are left as they are. The forward values
    are exactly the model's; the model passed in is left untouched.

    Args:
        model: A functional or Sequential model, e.g. the feature extractor; nested models
            are copied too.

    Returns:
        (copy, number of ReLUs redirected).
    """
    redirected = 0

    def clone(layer):
        nonlocal redirected
        if _is_plain_relu_layer(layer):
            redirected += 1
            return RedirectedReLU(name=layer.name, dtype=layer.dtype_policy)
        new = layer.__class__.from_config(layer.get_config())
        if _is_relu(getattr(layer, "activation", None)):
            new.activation = redirected_relu
            redirected += 1
        return new

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights(model.get_weights())
    return copy, redirected
