"""A copy of a classifier whose last layer outputs logits, for class-unit visualization.

Maximizing a softmax probability can be won by pushing the other classes down; maximizing the
pre-softmax logit asks for the class itself (Distill, "Feature Visualization", 2017). The copy
shares every weight with the original, which stays untouched.
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
            "--config.linear_output=false"
        )
    if _is_linear(activation):
        return model
    config = last.get_config()
    config["activation"] = "linear"
    replacement = type(last).from_config(config)
    outputs = replacement(last.input)
    replacement.set_weights(last.get_weights())
    return keras.Model(model.inputs[0], outputs, name=model.name)
