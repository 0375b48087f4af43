"""Runs a recipe on a layer's filters and scores the returned inputs with `keras_filters.quality`.

The library side of scripts/evaluate_quality.py: it optimizes the configured filters (or reads
inputs saved by an earlier evaluation), scores them, and writes quality.json, quality.md (the
Markdown table), inputs.npz and mosaic.png into the output folder.
"""

import dataclasses
import os
import time
import zipfile

import numpy as np

from keras_filters import errors, pipeline, quality
from keras_filters.image import mosaic
from keras_filters.job import artifacts
from keras_filters.model import checks, extractor, input_range
from keras_filters.settings import Settings

JSON_FILE = "quality.json"
TABLE_FILE = "quality.md"
INPUTS_FILE = "inputs.npz"
INPUTS_ARRAYS = "arrays 'inputs', 'filter_indices' and 'layer'"
MOSAIC_FILE = "mosaic.png"


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One layer's scores and where they were written.

    Attributes:
        name: What was scored: the model's name or file name, and the layer.
        scores: The `quality.QualityScores`.
        seconds_per_filter: The optimization's wall time (tracing included) per filter; None
            when the inputs were read from a file.
        input_range: (low, high) lists, one number per channel (model channel order).
        table: The Markdown table (header and one row).
        failed_filters: The filters whose optimization failed (a loss or gradient that
            stopped being finite): their images are scored as they stood when it stopped.
    """

    name: str
    scores: quality.QualityScores
    seconds_per_filter: float | None
    input_range: tuple
    table: str
    failed_filters: tuple = ()


def read_inputs(path: str, layer: str) -> tuple[np.ndarray, np.ndarray]:
    """The (inputs, filter_indices) of an inputs.npz that `evaluate` wrote for `layer`.

    Raises:
        UsageError: For a file that is not an .npz file, an unreadable one, one without those
            arrays, one of another layer, or arrays that are not one finite square image and
            one integer index per filter.
    """
    _check_npz_file(path)
    try:
        with np.load(path, allow_pickle=False) as saved:
            inputs = np.asarray(saved["inputs"], np.float32)
            filter_indices = np.asarray(saved["filter_indices"])
            saved_layer = str(saved["layer"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise errors.UsageError(
            f"inputs={path!r} cannot be read as an {INPUTS_FILE} of this script "
            f"({INPUTS_ARRAYS}): {type(error).__name__}: {error}"
        ) from None
    if saved_layer != layer:
        raise errors.UsageError(
            f"inputs={path!r} holds images of layer {saved_layer!r}, not of layer={layer!r}; "
            f"set layer={saved_layer!r}"
        )
    if inputs.ndim != 4 or not len(inputs) or inputs.shape[1] != inputs.shape[2]:
        raise errors.UsageError(
            f"inputs={path!r} holds inputs of shape {inputs.shape}; expected square images, "
            "(filters, size, size, channels), at least one"
        )
    integers = np.issubdtype(filter_indices.dtype, np.integer)
    if not integers or filter_indices.shape != (len(inputs),):
        raise errors.UsageError(
            f"inputs={path!r} holds filter_indices of shape {filter_indices.shape} and type "
            f"{filter_indices.dtype}; expected one integer per image: {len(inputs)}"
        )
    not_finite = ~np.isfinite(inputs).all(axis=(1, 2, 3))
    if not_finite.any():
        raise errors.UsageError(
            f"inputs={path!r} holds NaN or infinite values in the images of filters "
            f"{filter_indices[not_finite].tolist()}; expected finite images to score"
        )
    values, counts = np.unique(filter_indices, return_counts=True)
    repeated = values[counts > 1]
    if len(repeated):
        raise errors.UsageError(
            f"inputs={path!r} holds filter index {repeated[0]} more than once; each filter "
            "has one image"
        )
    return inputs, filter_indices


def _check_npz_file(path: str) -> None:
    """Refuses a file that is not an .npz file (a zip of NumPy arrays, as np.savez writes):
    np.load would read it as a .npy array, or refuse it as pickled data.

    Raises:
        UsageError: Naming the path, what it is, and the file expected.
    """
    if zipfile.is_zipfile(path):
        return
    with open(path, "rb") as file:
        npy = file.read(len(np.lib.format.MAGIC_PREFIX)) == np.lib.format.MAGIC_PREFIX
    raise errors.UsageError(
        f"inputs={path!r} is not an .npz file of images{' (it is one .npy array)' if npy else ''}; "
        f"expected an {INPUTS_FILE} of this script, with {INPUTS_ARRAYS}"
    )


def check_inputs_fit(model, layer: str, inputs: np.ndarray, path: str) -> None:
    """Checks that the model takes the saved `inputs` (channels, and a size its layer has an
    output at), as they would be run.

    Raises:
        UsageError: Naming the file, the images' shape and what the model takes.
    """
    size, channels = inputs.shape[1], inputs.shape[-1]
    shape = tuple(model.inputs[0].shape) if model.inputs else (None, None, None, channels)
    _, height, width, model_channels = shape
    if channels != model_channels or (height, width) not in ((None, None), (size, size)):
        takes = "images of any size" if height is None else f"{height}x{width} images"
        raise errors.UsageError(
            f"inputs={path!r} holds {size}x{size} images with {channels} channels; model "
            f"{model.name!r} takes {takes} with {model_channels} channels"
        )
    features = extractor.build_feature_extractor(model, layer)
    try:
        checks.check_input_size(
            features, sizes=[size], border=0, layer_names=[layer], model_name=model.name
        )
    except errors.UsageError:
        raise errors.UsageError(
            f"inputs={path!r} holds {size}x{size} images, too small for layer {layer!r} of "
            f"model {model.name!r} (its pooling reaches zero size); score inputs made at a "
            "larger image_size"
        ) from None


def evaluate(
    settings: Settings,
    outdir: str,
    *,
    inputs_file: str | None = None,
    image_size_given: bool = False,
) -> Evaluation:
    """Optimizes the configured filters (or reads `inputs_file`), scores them, writes the files.

    Args:
        settings: The recipe's settings: model, layer and filters as for a run.
        outdir: Folder for quality.json, quality.md, inputs.npz and mosaic.png.
        inputs_file: An inputs.npz of an earlier evaluation to score instead of optimizing.
            Defaults to None.
        image_size_given: Whether the user set `image_size` (else a model that fixes its input
            size is run at that size). Defaults to False.

    Returns:
        The `Evaluation`.

    Raises:
        UsageError: For a model, layer, filter or file that cannot be used, or a model whose
            input range is not known (a model file without a leading Rescaling layer and no
            `input_range` setting).
    """
    if settings.panel_layers or settings.num_shards > 1:
        raise errors.UsageError(
            "evaluate_quality scores all the chosen filters of one layer, in one job: leave out "
            "panel_layers and num_shards"
        )
    artifacts.check_outdir(outdir)
    model = pipeline.load_model(settings.model, settings)
    settings, _ = pipeline.fit_input_size(model, settings, image_size_given)
    # The faithful recipes need no range to run, but every score does.
    model_range = input_range.resolve(model, settings)
    seconds_per_filter = None
    if inputs_file is None:
        start = time.perf_counter()
        result = pipeline.run_plan(pipeline.plan_layer(model, settings), settings)
        seconds_per_filter = (time.perf_counter() - start) / len(result.filter_indices)
        inputs, filter_indices = result.inputs, result.filter_indices
        failed = result.failed
    else:
        inputs, filter_indices = read_inputs(inputs_file, settings.layer)
        check_inputs_fit(model, settings.layer, inputs, inputs_file)
        failed = np.zeros(len(inputs), bool)
    try:
        scores = quality.score(
            model,
            settings.layer,
            filter_indices,
            inputs,
            (model_range.low, model_range.high),
            to_model=model_range.to_model,
        )
    except ValueError as error:
        raise errors.UsageError(str(error)) from None
    # "demo conv3", "vgg16 block5_conv1", "rgb32 conv4" for a model file.
    model_name = os.path.splitext(os.path.basename(settings.model))[0]
    name = f"{model_name} {settings.layer}"
    table = "\n".join([quality.TABLE_HEADER, quality.table_row(name, scores, seconds_per_filter)])
    bounds = (model_range.low.tolist(), model_range.high.tolist())
    record = {
        "model": settings.model,
        "layer": settings.layer,
        "filter_indices": filter_indices,
        "seconds_per_filter": seconds_per_filter,
        "inputs_file": inputs_file,
        "input_range": {
            "low": bounds[0],
            "high": bounds[1],
            "from": model_range.description,
        },
        "gain_note": None if scores.gain is not None else quality.GAIN_NOT_AVAILABLE,
        "failed_filters": [int(index) for index in np.asarray(filter_indices)[failed]],
        "scores": scores.to_dict(),
        "settings": settings.to_dict(),
    }
    os.makedirs(outdir, exist_ok=True)
    artifacts.write_json(os.path.join(outdir, JSON_FILE), record)
    artifacts.write_text(os.path.join(outdir, TABLE_FILE), table + "\n")
    artifacts.write_npz(
        os.path.join(outdir, INPUTS_FILE),
        inputs=inputs,
        filter_indices=filter_indices,
        layer=np.array(settings.layer),
    )
    tiles = pipeline.deprocess_tiles(inputs, failed, settings, model_range)
    rows, cols = mosaic.fitting_grid(len(tiles))
    artifacts.write_png(
        os.path.join(outdir, MOSAIC_FILE), mosaic.stitch(tiles, rows, cols, settings.margin)
    )
    failed_filters = tuple(record["failed_filters"])
    return Evaluation(name, scores, seconds_per_filter, bounds, table, failed_filters)
