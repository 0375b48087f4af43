"""Mixed precision: a copy of the sub-model that computes in bfloat16, its weights kept float32."""

import keras

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
