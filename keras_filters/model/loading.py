"""Loads the model to visualize: a Keras Applications model by name, a saved file, or the demo."""

import contextlib
import io
import json
import os
import re
import sys
import warnings
import zipfile
from importlib import resources

import keras

from keras_filters import errors
from keras_filters.model import files as model_files

DEMO_MODEL_NAME = model_files.DEMO_MODEL_NAME
SAVED_MODEL_SUFFIXES = model_files.SAVED_MODEL_SUFFIXES


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
    seed: int | None = None,
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
        seed: For Keras Applications with weights "none": seeds Keras' random initialisation,
            so that the same seed builds the same random model. Defaults to None (unseeded).

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
        loaded = load_saved_model(demo_model_path(), unsafe_deserialization=unsafe_deserialization)
    elif model_files.is_model_path(model):
        return load_saved_model(model, unsafe_deserialization=unsafe_deserialization)
    else:
        loaded = load_application(
            model, weights=weights, include_top=include_top, image_size=image_size, seed=seed
        )
    # The demo and Keras Applications models say their input range by their name
    # (`model.input_range.resolve` reads it); a file or a model object does not.
    loaded.keras_filters_source = model
    return loaded


def load_saved_model(path: str, *, unsafe_deserialization: bool = False) -> keras.Model:
    """Loads a saved Keras model file with `safe_mode` on unless explicitly allowed.

    Raises:
        UsageError: If the file is missing, is not a Keras model file, is truncated or corrupt,
            or holds code that safe mode refuses.
    """
    model_files.check_model_file(path)
    try:
        with _warnings_kept_on_success():
            return keras.saving.load_model(
                path, compile=False, safe_mode=not unsafe_deserialization
            )
    except Exception as error:  # Keras raises many types for a bad file; all mean the same here.
        message = " ".join(str(error).split())
        if not unsafe_deserialization and ("safe_mode" in message or "Lambda" in message):
            raise errors.UsageError(
                f"model file {path!r} has {_describe_code_layers(path)} that would run on "
                "loading; refused in safe mode. If you trust the file, opt in with "
                "unsafe_deserialization=true"
            ) from None
        raise errors.UsageError(
            f"model file {path!r} could not be loaded as a Keras model: {message[:300]}"
        ) from None


# Warnings about how a file's model was written, which its user cannot act on: Keras rebuilds
# a Sequential model saved with `input_shape` on its first layer (any legacy .h5 classifier)
# and warns once per such layer, on every load.
WRITER_WARNINGS = ("Do not pass an `input_shape`/`input_dim` argument to a layer",)


@contextlib.contextmanager
def _warnings_kept_on_success():
    """Holds back Python warnings while a model loads; shows them only if loading succeeds,
    leaving out `WRITER_WARNINGS`.

    A file that does not fit makes Keras warn about every layer before it fails; the failure
    is reported in one line, and those warnings would bury it.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        if str(warning.message).startswith(WRITER_WARNINGS):
            continue
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


class _DownloadNotice(io.TextIOBase):
    """Passes Keras' download messages on to stderr, holding back "Downloading data from …"
    until the download shows progress: a download that fails at once ends in our one-line
    error (which names the address), not in two lines."""

    def __init__(self):
        self.held = ""

    def write(self, text: str) -> int:
        if not self.held and text.lstrip().startswith("Downloading data from"):
            self.held = text
        else:
            sys.stderr.write(self.held + text)
            self.held = ""
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _saved_config(path: str):
    """The model's architecture as saved in the file (a JSON tree), or None if unreadable."""
    try:
        if path.lower().endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(path, "r") as file:
            text = file.attrs.get("model_config")
            return json.loads(text.decode() if isinstance(text, bytes) else text)
    except Exception:  # Only used to word a message: an unreadable config names nothing.
        return None


def code_layer_names(config) -> list[str]:
    """Names the layers of a saved architecture that carry Python code.

    Those are Lambda layers, and any layer whose saved settings hold a Python lambda; layers
    of nested models count.

    Args:
        config: The architecture as a JSON tree (config.json of a .keras file).

    Returns:
        The layers' names, in the order of the file.
    """
    found = []

    def walk(node, layer_name):
        if isinstance(node, list):
            for item in node:
                walk(item, layer_name)
            return
        if not isinstance(node, dict):
            return
        inner = node.get("config")
        if "class_name" in node and isinstance(inner, dict) and isinstance(inner.get("name"), str):
            layer_name = inner["name"]
        if node.get("class_name") in ("Lambda", "__lambda__") and layer_name not in found:
            found.append(layer_name)
        for value in node.values():
            walk(value, layer_name)

    walk(config, None)
    return [name for name in found if name is not None]


def _describe_code_layers(path: str) -> str:
    """ "Python code in layer 'name'", from the architecture saved in the file, for a message."""
    config = _saved_config(path)
    names = code_layer_names(config) if config is not None else []
    if not names:
        return "Python code (a Lambda layer, say)"
    listed = ", ".join(repr(name) for name in names)
    return (
        f"Python code in layer {listed}" if len(names) == 1 else f"Python code in layers {listed}"
    )


def load_application(
    name: str,
    *,
    weights: str = "imagenet",
    include_top: bool = False,
    image_size=None,
    seed: int | None = None,
) -> keras.Model:
    """Builds a `keras.applications` model by name.

    With weights "none" and a `seed`, Keras' global random state is seeded first, so that the
    random model is the same in every run with that seed.

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
    if keras_weights is None and seed is not None:
        keras.utils.set_random_seed(seed)
    keyword_arguments = {"weights": keras_weights, "include_top": include_top}
    try:
        # Keras says "Downloading data from …" on stdout, where the command prints its results.
        with _warnings_kept_on_success(), contextlib.redirect_stdout(_DownloadNotice()):
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
        raise _weights_error(name, weights, include_top, error) from None


def _keras_weights(weights: str):
    """Maps our `weights` setting to the argument that Keras Applications take."""
    if weights is None or str(weights).lower() == "none":
        return None
    if str(weights).lower() == "imagenet":
        return "imagenet"
    if not os.path.isfile(weights):
        problem = "is a folder" if os.path.isdir(weights) else "does not exist"
        raise errors.UsageError(
            f"weights file {weights!r} {problem}; expected 'imagenet', 'none' or a path to a "
            "weights file"
        )
    return weights


def _weights_error(
    name: str, weights: str, include_top: bool, error: Exception
) -> errors.UsageError:
    """Turns the exception of a failed application build into a one-line UsageError."""
    message = " ".join(str(error).split())
    url = re.search(r"https?://\S+?\.h5", message)
    if url:
        return errors.UsageError(
            f"could not download the ImageNet weights of {name} (weights={weights!r}, "
            f"{url.group(0)}); use weights=none for random weights or "
            f"weights=/path/to/{url.group(0).rsplit('/', 1)[-1]} for a local copy"
        )
    if os.path.isfile(str(weights)):
        return errors.UsageError(
            f"weights file {weights!r} does not match the architecture of {name} "
            f"(include_top={include_top}): {message[:240]}"
        )
    return errors.UsageError(f"could not build {name} with weights={weights!r}: {message[:300]}")
