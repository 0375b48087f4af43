"""Variants of a model: its logits instead of its probabilities, and a bfloat16 copy.

`linear_output_model`: maximizing a softmax probability can be won by pushing the other classes
down; maximizing the pre-softmax logit asks for the class itself (Distill, "Feature
Visualization", 2017). The copy shares every weight with the original, which stays untouched.

`mixed_precision_copy`: the sub-model computing in bfloat16, its weights kept float32.
"""

import keras

from keras_filters import errors


def _is_linear(activation) -> bool:
    return activation is None or getattr(activation, "__name__", "") == "linear"


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
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise errors.UsageError(
            f"linear_output needs a model with one input and one output; model {model.name!r} "
            f"has {len(model.inputs)} and {len(model.outputs)}"
        )
    last = model.layers[-1]
    if isinstance(last, (keras.layers.Softmax, keras.layers.Activation)):
        return keras.Model(model.inputs[0], last.input, name=model.name)
    activation = getattr(last, "activation", None)
    if activation is None:
        raise errors.UsageError(
            f"linear_output: the last layer of model {model.name!r}, {last.name!r} "
            f"({type(last).__name__}), has no activation to replace; set "
            "linear_output=false"
        )
    if _is_linear(activation):
        return model
    config = last.get_config()
    config["activation"] = "linear"
    replacement = type(last).from_config(config)
    outputs = replacement(last.input)
    replacement.set_weights(last.get_weights())
    return keras.Model(model.inputs[0], outputs, name=model.name)


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
