"""The ascent step, composed from the pieces: parameters → image → transforms → model →
objective → gradient → update → finite guard.

Everything here is shared by the backends; `keras_filters.backends` supplies the one part that
differs, "value and gradient of this loss, compiled". The step's contract:

    step(params, state, targets, step_size, draws) -> (params, state, losses, finite)

`losses` are the objectives before the update, without the penalty that the ascent also
subtracts (the settings' regularizers); an image whose loss, gradient or update is not finite
keeps its parameters and is reported in `finite`.
"""

from keras_filters import backends
from keras_filters.optvis import objectives as objectives_lib
from keras_filters.optvis import update as update_lib


def make_step(
    extractor,
    objective,
    parameterization,
    transforms,
    update,
    *,
    example_params,
    jit_compile: bool = False,
    penalty=None,
):
    """Builds the compiled step for the current Keras backend.

    Args:
        extractor: A model from the input to every layer that `objective` reads, with a dict
            of outputs keyed by layer path (see `model.extractor.build_feature_extractor`).
        objective: The batch's objective; `objective(activations, targets)` gives one loss
            per image.
        parameterization: Maps parameters to images (`to_image`), inside the tape.
        transforms: A `transforms.Compose`, applied to the images inside the tape.
        update: An update (`update.NormalizedGradient`): `apply(params, gradients, state,
            step_size)`.
        example_params: Parameters of one chunk (any batch and size), for the signature.
        jit_compile: Compile with XLA. Defaults to False.
        penalty: An objective (the regularizers, reading `INPUT`) that the ascent subtracts
            from `objective` but the reported losses leave out. Defaults to none.

    Returns:
        The step.
    """

    layers = objective.layers + (penalty.layers if penalty is not None else ())
    reads_input = objectives_lib.INPUT in layers

    def image_losses(call_model, params, targets, draws):
        images = parameterization.to_image(params)
        activations = call_model(transforms(images, draws))
        if reads_input:
            # Regularizers read the image itself, before the transforms.
            activations = {**activations, objectives_lib.INPUT: images}
        losses = objective(activations, targets)
        if penalty is None:
            return losses, losses
        return losses - penalty(activations, targets), losses

    def apply_update(params, state, losses, gradients, step_size):
        updated, new_state = update.apply(params, gradients, state, step_size)
        params, state, finite = update_lib.guard(
            params, state, updated, new_state, losses, gradients
        )
        return params, state, losses, finite

    return backends.current().compile_step(
        extractor,
        image_losses,
        apply_update,
        example_args=(example_params, update.init_state(example_params)),
        jit_compile=jit_compile,
        static_shapes=getattr(parameterization, "static_shapes", False),
    )
