"""Dataset examples: the crops of the user's images that excite each filter most.

One streaming pass over a folder of images (JPEG or PNG, any size): each image is brought to the
model's input size (shorter side resized, centre cropped), images go through the model in
batches, and for every filter a bounded top-k table keeps the k images whose activation maximum
is highest, with the position of that maximum. Memory holds one batch and, per filter, k
(activation, image number, row, column) entries, whatever the folder's size. The crops are cut
afterwards, by loading again only the images that won (at most k per filter), so no pixels are
kept during the pass. A crop is the receptive field of the maximum's position (see
receptive_field.py), clipped to the image: the pixels the activation was computed from.

An image counts once per filter (its best position), so that one image cannot fill a filter's k
places with neighbouring positions. Ties go to the earlier image, then the earlier position in
row-major order, so the result does not depend on the batch size.

Backend-neutral: keras.ops and numpy only.
"""

import dataclasses
import os
from collections.abc import Callable, Sequence

import keras
import numpy as np
from PIL import Image, ImageOps

from keras_filters.atlas import receptive_field as receptive_field_lib
from keras_filters.atlas import site
from keras_filters.job import artifacts

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclasses.dataclass(frozen=True)
class Example:
    """One dataset example of one filter.

    Attributes:
        filter_index: The filter (channel) index.
        rank: 0 for the most exciting example, then 1, ...
        activation: The filter's activation at `position` of the image.
        file: The image file, as listed.
        image_number: The image's place in the scan order.
        position: (row, column) of the activation maximum in the layer's output.
        box: (top, left, bottom, right) of the crop in the model-input image, bottom and right
            exclusive: the position's receptive field, clipped to the image.
    """

    filter_index: int
    rank: int
    activation: float
    file: str
    image_number: int
    position: tuple[int, int]
    box: tuple[int, int, int, int]


@dataclasses.dataclass(frozen=True)
class ScanResult:
    """What one pass over a folder found.

    Attributes:
        examples: For each filter index scanned, its examples, most exciting first.
        files: The images scanned, in order (an Example's image_number indexes it).
        skipped: (file, reason) for each file that could not be read as an image.
        field: The receptive field the crops were cut to.
        image_size: (height, width) every image was brought to.
    """

    examples: dict[int, list[Example]]
    files: list[str]
    skipped: list[tuple[str, str]]
    field: receptive_field_lib.ReceptiveField
    image_size: tuple[int, int]


def list_images(folder: str) -> list[str]:
    """The JPEG and PNG files in `folder` and its subfolders, in sorted order.

    Raises:
        ValueError: If `folder` is not a folder or holds no JPEG or PNG file.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"examples folder {folder!r} is not a folder")
    files = []
    for root, folders, names in os.walk(folder):
        folders.sort()
        files += [
            os.path.join(root, name)
            for name in sorted(names)
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")
        ]
    if not files:
        raise ValueError(
            f"examples folder {folder!r} holds no image: expected files ending in "
            + ", ".join(IMAGE_EXTENSIONS)
        )
    return files


def check_readable(files: list[str], folder: str) -> None:
    """Checks that at least one of `files` opens as an image, before any layer runs: the scan
    passes over the files it cannot read, but a folder of nothing readable finds no example.

    Raises:
        ValueError: Naming the folder and what the first file gave.
    """
    first_error = ""
    for path in files:
        try:
            with Image.open(path) as opened:
                opened.verify()
            return
        except (OSError, ValueError, SyntaxError) as error:  # What PIL raises for non-images.
            first_error = first_error or f"{os.path.basename(path)}: {error}"
    raise ValueError(
        f"examples folder {folder!r}: none of its {len(files)} image files can be read as an "
        f"image ({first_error})"
    )


def load_image(path: str, image_size) -> np.ndarray:
    """Loads an image as uint8 RGB (height, width, 3) at the model's input size.

    The shorter side is resized to fit, then the centre is cropped, so that nothing is
    stretched. EXIF orientation is applied; grey, palette and alpha images become RGB.

    Args:
        path: A JPEG or PNG file.
        image_size: An int for a square, or (height, width).

    Raises:
        OSError: If the file cannot be read as an image.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    scale = max(height / image.height, width / image.width)
    resized = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    image = image.resize(resized, Image.Resampling.BICUBIC)
    left = (image.width - width) // 2
    top = (image.height - height) // 2
    return np.asarray(image.crop((left, top, left + width, top + height)), dtype=np.uint8)


def unit_inputs(pixels: np.ndarray) -> np.ndarray:
    """The default model input: uint8 pixels scaled to float32 in [0, 1]."""
    return pixels.astype(np.float32) / 255.0


class TopK:
    """For every filter, the k highest (activation, image, position) entries seen so far.

    A vectorized bounded top-k (the job a heap per filter does, for all filters at once): each
    batch's candidates are merged into the (filters, k) table with one sort, so the cost per
    batch does not grow with a Python loop over filters.
    """

    def __init__(self, num_filters: int, top_k: int):
        if top_k < 1:
            raise ValueError(f"top_k={top_k!r}: use an integer >= 1")
        self.top_k = top_k
        self.values = np.full((num_filters, 0), -np.inf)
        self.image_numbers = np.zeros((num_filters, 0), dtype=np.int64)
        self.flat_positions = np.zeros((num_filters, 0), dtype=np.int64)

    def add(self, values: np.ndarray, image_numbers: np.ndarray, flat_positions: np.ndarray):
        """Merges one batch of candidates.

        Args:
            values: (batch, filters) activation maxima.
            image_numbers: (batch,) the images' places in the scan order.
            flat_positions: (batch, filters) row-major index of each maximum.
        """
        num_filters = self.values.shape[0]
        values = np.concatenate([self.values, np.asarray(values, np.float64).T], axis=1)
        numbers = np.concatenate(
            [self.image_numbers, np.broadcast_to(image_numbers, (num_filters, len(image_numbers)))],
            axis=1,
        )
        positions = np.concatenate([self.flat_positions, np.asarray(flat_positions).T], axis=1)
        # Highest value first; among equal values, the earlier image. NaN (a failed forward
        # pass) sorts last.
        keys = np.where(np.isnan(values), np.inf, -values)
        order = np.lexsort((numbers, keys), axis=1)[:, : self.top_k]
        self.values = np.take_along_axis(values, order, axis=1)
        self.image_numbers = np.take_along_axis(numbers, order, axis=1)
        self.flat_positions = np.take_along_axis(positions, order, axis=1)


def scan(
    activations: Callable,
    files: Sequence[str],
    field: receptive_field_lib.ReceptiveField,
    *,
    top_k: int = 9,
    batch_size: int = 16,
    to_inputs: Callable[[np.ndarray], np.ndarray] = unit_inputs,
    filters: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScanResult:
    """Finds each filter's top-k images and positions in one pass over `files`.

    Args:
        activations: The layer's activations for a batch of model inputs: a keras.Model (its
            output, or the one value of its dict output) or any callable, returning
            (batch, height, width, filters), or (batch, filters) for a layer without spatial
            axes.
        files: The image files, in scan order (see list_images).
        field: The layer's receptive field at the model's input size (see
            receptive_field.receptive_field); its image_size is the size images are brought to.
        top_k: Examples kept per filter. Defaults to 9.
        batch_size: Images per forward pass. Defaults to 16.
        to_inputs: Turns a uint8 (batch, height, width, 3) array into model inputs. Defaults to
            scaling to [0, 1].
        filters: The filter indices to keep examples for. Defaults to all.
        progress: Called as progress(images done, images in all) after every batch.

    Returns:
        A ScanResult; filters with fewer than top_k readable images get fewer examples.

    Raises:
        ValueError: For a bad top_k or batch_size, an empty file list, no readable image, or
            activations whose spatial size is not the receptive field's output size.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: use an integer >= 1")
    if not files:
        raise ValueError("no image files to scan")
    table = None
    skipped = []
    batch, numbers = [], []

    def flush():
        nonlocal table
        outputs = _layer_output(activations, to_inputs(np.stack(batch)))
        if outputs.ndim == 2:
            outputs = outputs[:, None, None, :]
        if outputs.ndim != 4 or tuple(outputs.shape[1:3]) != tuple(field.output_size):
            raise ValueError(
                f"activations of shape {tuple(outputs.shape)} do not match the receptive field "
                f"of layer {field.layer!r}, whose output is {field.output_size[0]}x"
                f"{field.output_size[1]} at {field.image_size[0]}x{field.image_size[1]} px"
            )
        chosen = outputs if filters is None else outputs[..., list(filters)]
        flat = chosen.reshape(chosen.shape[0], -1, chosen.shape[-1])
        if table is None:
            table = TopK(flat.shape[-1], top_k)
        table.add(flat.max(axis=1), np.asarray(numbers), flat.argmax(axis=1))
        batch.clear()
        numbers.clear()

    for number, path in enumerate(files):
        try:
            batch.append(load_image(path, field.image_size))
            numbers.append(number)
        except (OSError, ValueError) as error:  # PIL raises both for files that are not images.
            skipped.append((path, str(error) or type(error).__name__))
        if len(batch) == batch_size:
            flush()
            if progress:
                progress(number + 1, len(files))
    if batch:
        flush()
        if progress:
            progress(len(files), len(files))
    if table is None:
        raise ValueError(f"none of the {len(files)} files could be read as an image")
    indices = list(range(table.values.shape[0])) if filters is None else list(filters)
    width = field.output_size[1]
    examples = {}
    for row, filter_index in enumerate(indices):
        found = []
        for rank in range(table.values.shape[1]):
            position = divmod(int(table.flat_positions[row, rank]), width)
            number = int(table.image_numbers[row, rank])
            found.append(
                Example(
                    filter_index=filter_index,
                    rank=rank,
                    activation=float(table.values[row, rank]),
                    file=files[number],
                    image_number=number,
                    position=position,
                    box=field.box(*position),
                )
            )
        examples[filter_index] = found
    return ScanResult(examples, list(files), skipped, field, tuple(field.image_size))


def _layer_output(activations, inputs: np.ndarray) -> np.ndarray:
    if isinstance(activations, keras.Model):
        outputs = activations(inputs, training=False)
    else:
        outputs = activations(inputs)
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise ValueError(
                f"the activations model has {len(outputs)} outputs ({', '.join(outputs)}); "
                "give it the one layer to scan"
            )
        (outputs,) = outputs.values()
    return np.asarray(keras.ops.convert_to_numpy(outputs))


def cut_crops(result: ScanResult) -> dict[tuple[int, int], np.ndarray]:
    """Cuts every example's crop, loading each winning image once.

    Returns:
        {(filter_index, rank): uint8 (height, width, 3) crop}.
    """
    by_image = {}
    for found in result.examples.values():
        for example in found:
            by_image.setdefault(example.image_number, []).append(example)
    crops = {}
    for number in sorted(by_image):
        pixels = load_image(result.files[number], result.image_size)
        for example in by_image[number]:
            top, left, bottom, right = example.box
            crops[example.filter_index, example.rank] = pixels[top:bottom, left:right].copy()
    return crops


def find_examples(
    model: keras.Model,
    layer: str,
    folder: str,
    *,
    image_size,
    top_k: int = 9,
    batch_size: int = 16,
    to_inputs: Callable[[np.ndarray], np.ndarray] = unit_inputs,
    filters: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ScanResult, dict[tuple[int, int], np.ndarray]]:
    """The dataset examples of a layer of a model: receptive field, scan and crops in one call.

    For a layer inside a nested model, build the activations model with the package's
    extractor and call scan() and cut_crops() directly; this convenience reads `layer` from
    the top-level model.

    Args:
        model: A functional or Sequential Keras model with one image input.
        layer: The name of a layer of `model`.
        folder: A folder of JPEG and PNG images.
        image_size: The model's input size: an int for a square, or (height, width).
        top_k, batch_size, to_inputs, filters, progress: As for scan().

    Returns:
        (scan result, crops) as scan() and cut_crops() give them.
    """
    field = receptive_field_lib.receptive_field(model, layer, image_size)
    activations = keras.Model(model.inputs[0], model.get_layer(layer).output)
    result = scan(
        activations,
        list_images(folder),
        field,
        top_k=top_k,
        batch_size=batch_size,
        to_inputs=to_inputs,
        filters=filters,
        progress=progress,
    )
    return result, cut_crops(result)


def write_crops(
    result: ScanResult, crops: dict, outdir: str, folder: str
) -> dict[int, tuple[site.ExampleCrop, ...]]:
    """Writes the crops as PNG files for the site, and describes them for its filter pages.

    Args:
        result: The scan's result.
        crops: The crops, as cut_crops() gives them.
        outdir: The site folder.
        folder: The folder, relative to `outdir` with "/", to write the crops into (the layer's
            folder and "examples", say).

    Returns:
        {filter index: its site.ExampleCrop entries, most exciting first}; the source shown is
        the image's file name.
    """
    entries = {}
    for filter_index, found in result.examples.items():
        described = []
        for example in found:
            image = f"{folder}/filter-{filter_index:04d}-{example.rank}.png"
            artifacts.write_png(
                os.path.join(outdir, *image.split("/")), crops[filter_index, example.rank]
            )
            described.append(
                site.ExampleCrop(image, example.activation, os.path.basename(example.file))
            )
        entries[filter_index] = tuple(described)
    return entries
