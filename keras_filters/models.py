"""Loads the model to visualize: a Keras Applications model by name, a saved file, or the demo."""

import os
import re
from importlib import resources

import keras

from keras_filters import errors

DEMO_MODEL_NAME = "demo"
SAVED_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def _canonical(name: str) -> str:
    """Folds case, '_' and '-' so that 'convnext_tiny' and 'ConvNeXtTiny' are the same name."""
    return re.sub(r"[_\-\s]", "", name).lower()


def application_constructors() -> dict[str, object]:
    """Every model constructor of `keras.applications`, keyed by its lower-case name."""
    return {
        name.lower(): constructor
        for name, constructor in vars(keras.applications).items()
        if name[:1].isupper() and callable(constructor)
    }


def demo_model_path() -> str:
    """Path of the small CNN that ships with the package (see scripts/train_demo_model.py)."""
    return str(resources.files("keras_filters").joinpath("demo", "demo_model.keras"))


def load_model(
    model: "str | keras.Model",
    *,
    weights: str = "imagenet",
    include_top: bool = False,
    image_size: int | None = None,
    unsafe_deserialization: bool = False,
) -> keras.Model:
    """Returns the model to visualize.

    Args:
        model: A `keras.Model` (returned as is); "demo" for the embedded demo CNN; a path to a
            saved `.keras`, `.h5` or `.hdf5` file; or the name of a `keras.applications`
            constructor, in any case and with or without underscores ("vgg16", "ResNet50V2",
            "convnext_tiny").
        weights: For Keras Applications: "imagenet" (Keras downloads and caches the file),
            "none" (random initialisation) or a path to a weights file. Defaults to "imagenet".
        include_top: For Keras Applications: keep the classifier. Defaults to False.
        image_size: For Keras Applications without the top: the input size to build for when
            the architecture cannot take images of any size. Defaults to None.
        unsafe_deserialization: Allow saved files to run code of their own (Lambda layers).
            Defaults to False: Keras' `safe_mode` refuses them.

    Returns:
        The loaded `keras.Model`.

    Raises:
        UsageError: If the name, path or weights cannot be used; the message says what to do.
    """
    if isinstance(model, keras.Model):
        return model
    if not isinstance(model, str) or not model:
        raise errors.UsageError(f"model must be a keras.Model, a name or a path; got {model!r}")
    if model == DEMO_MODEL_NAME:
        return load_saved_model(demo_model_path(), unsafe_deserialization=unsafe_deserialization)
    if (
        model.lower().endswith(SAVED_MODEL_SUFFIXES)
        or os.path.sep in model
        or os.path.exists(model)
    ):
        return load_saved_model(model, unsafe_deserialization=unsafe_deserialization)
    return load_application(model, weights=weights, include_top=include_top, image_size=image_size)


def load_saved_model(path: str, *, unsafe_deserialization: bool = False) -> keras.Model:
    """Loads a saved Keras model file with `safe_mode` on unless explicitly allowed.

    Raises:
        UsageError: If the file is missing, is not a Keras model file, or is corrupt.
    """
    if not os.path.isfile(path):
        raise errors.UsageError(f"model file {path!r} does not exist")
    if not path.lower().endswith(SAVED_MODEL_SUFFIXES):
        raise errors.UsageError(
            f"model file {path!r} is not a Keras model file; expected one of: "
            + ", ".join(SAVED_MODEL_SUFFIXES)
        )
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=not unsafe_deserialization)
    except Exception as error:  # Keras raises many types for a bad file; all mean the same here.
        message = " ".join(str(error).split())
        if "safe_mode" in message or "Lambda" in message:
            raise errors.UsageError(
                f"model file {path!r} contains code that would run on loading "
                f"({_unsafe_layer(message)}); refused in safe mode. If you trust the file, "
                "opt in with --config.unsafe_deserialization=true"
            ) from None
        raise errors.UsageError(
            f"model file {path!r} could not be loaded as a Keras model: {message[:300]}"
        ) from None


def _unsafe_layer(message: str) -> str:
    """Names the layer that Keras' safe mode refused, as far as its message tells."""
    match = re.search(r"'name': '([^']+)'", message) or re.search(r"layer '([^']+)'", message)
    if match:
        return f"layer {match.group(1)!r}"
    return "a Lambda layer" if "Lambda" in message else "a layer with custom code"


def load_application(
    name: str, *, weights: str = "imagenet", include_top: bool = False, image_size=None
) -> keras.Model:
    """Builds a `keras.applications` model by name.

    Raises:
        UsageError: For an unknown name, a missing weights file, weights that do not fit, or
            ImageNet weights that cannot be downloaded.
    """
    constructors = {_canonical(key): value for key, value in application_constructors().items()}
    constructor = constructors.get(_canonical(name))
    if constructor is None:
        names = sorted(application_constructors())
        raise errors.UsageError(
            f"unknown model {name!r}; expected 'demo', a .keras/.h5 file or a Keras Applications "
            f"name: {errors.format_choices(name.lower(), names, limit=12)}"
        )
    keras_weights = _keras_weights(weights)
    keyword_arguments = {"weights": keras_weights, "include_top": include_top}
    try:
        if include_top:
            return constructor(**keyword_arguments)
        try:
            # Any input size, so that one model serves every image size and every scale.
            return constructor(input_shape=(None, None, 3), **keyword_arguments)
        except ValueError:
            if not image_size:
                raise
            return constructor(input_shape=(image_size, image_size, 3), **keyword_arguments)
    except errors.UsageError:
        raise
    except Exception as error:
        raise _weights_error(name, weights, error) from None


def _keras_weights(weights: str):
    """Maps our `weights` setting to the argument that Keras Applications take."""
    if weights is None or str(weights).lower() == "none":
        return None
    if str(weights).lower() == "imagenet":
        return "imagenet"
    if not os.path.isfile(weights):
        raise errors.UsageError(
            f"weights file {weights!r} does not exist; expected 'imagenet', 'none' or a path to "
            "a weights file"
        )
    return weights


def _weights_error(name: str, weights: str, error: Exception) -> errors.UsageError:
    """Turns the exception of a failed application build into a one-line UsageError."""
    message = " ".join(str(error).split())
    url = re.search(r"https?://\S+?\.h5", message)
    if url:
        return errors.UsageError(
            f"could not download the ImageNet weights of {name} ({url.group(0)}); use "
            "--config.weights=none for random weights or --config.weights=/path/to/"
            f"{url.group(0).rsplit('/', 1)[-1]} for a local copy"
        )
    return errors.UsageError(f"could not build {name} with weights={weights!r}: {message[:300]}")
