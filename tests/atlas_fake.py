"""Stand-in atlas data, with small generated images, to develop and test the site without a model.

The real data will come from the atlas driver (optimization of every filter of every layer);
this makes the same shapes of data: a filter image, a mosaic, dataset-example crops and a loss
curve per filter, some filters dead, one failed, and a layer with a hostile name.
"""

import math
import posixpath

import numpy as np

from keras_filters.atlas import site
from keras_filters.job import artifacts as files

HOSTILE_NAME = "<img src=x onerror=alert(1)>"

DEFAULT_LAYERS = (
    ("conv1", "Conv2D", (None, 30, 30, 8), 8),
    (HOSTILE_NAME, "Conv2D", (None, 14, 14, 6), 6),
    ('block "3"/conv & pool', "MaxPooling2D", (None, 7, 7, 5), 5),
)


def _filter_image(rng: np.random.Generator, index: int, size: int) -> np.ndarray:
    """Oriented stripes in a random colour: something a tile can be told apart by."""
    rows, columns = np.mgrid[0:size, 0:size] / size
    angle = index * math.pi / 5
    wave = np.sin(
        2 * math.pi * (3 + index % 4) * (rows * math.cos(angle) + columns * math.sin(angle))
    )
    colour = rng.uniform(0.2, 1.0, size=3)
    pixels = 0.5 + 0.5 * wave[..., None] * colour
    return (np.clip(pixels, 0, 1) * 255).astype(np.uint8)


def _mosaic(tiles: list[np.ndarray], margin: int = 2) -> np.ndarray:
    count = len(tiles)
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    size = tiles[0].shape[0]
    out = np.zeros(
        (rows * (size + margin) - margin, columns * (size + margin) - margin, 3), np.uint8
    )
    for number, tile in enumerate(tiles):
        row, column = divmod(number, columns)
        top, left = row * (size + margin), column * (size + margin)
        out[top : top + size, left : left + size] = tile
    return out


def fake_atlas(
    outdir: str,
    layers=DEFAULT_LAYERS,
    *,
    image_size: int = 32,
    num_examples: int = 3,
    num_steps: int = 20,
    seed: int = 0,
) -> site.Atlas:
    """Writes stand-in images under `outdir` and returns the Atlas that names them.

    Args:
        outdir: The site folder.
        layers: (name, type, output shape, filter count) per layer.
        image_size: Side of each filter image in pixels. Defaults to 32.
        num_examples: Dataset examples per live filter. Defaults to 3.
        num_steps: Loss-curve length. Defaults to 20.
        seed: Seeds the images and numbers. Defaults to 0.

    Returns:
        The atlas: filters 1 and 4 of every layer are dead, filter 2 of the first layer failed.
    """
    rng = np.random.default_rng(seed)
    entries = []
    for position, (name, kind, shape, count) in enumerate(layers):
        folder = site.layer_folder(position, name)
        filters, tiles = [], []
        for index in range(count):
            dead = index in (1, 4)
            failed = position == 0 and index == 2
            pixels = _filter_image(rng, index + 7 * position, image_size)
            if dead:
                pixels = np.full_like(pixels, 128)
            image = posixpath.join(folder, "images", f"filter-{index:04d}.png")
            files.write_png(f"{outdir}/{image}", pixels)
            tiles.append(pixels)
            steps = np.arange(num_steps)
            scale = 0.0 if dead else rng.uniform(0.5, 3.0)
            curve = scale * (1 - np.exp(-steps / 5)) + rng.normal(0, 0.02, num_steps)
            if failed:
                curve[num_steps // 2 :] = np.nan
            examples = []
            if not (dead or failed):
                for rank in range(num_examples):
                    crop = rng.integers(0, 256, size=(9 + 2 * position, 9 + 2 * position, 3))
                    path = posixpath.join(folder, "examples", f"filter-{index:04d}-{rank}.png")
                    files.write_png(f"{outdir}/{path}", crop.astype(np.uint8))
                    examples.append(
                        site.ExampleCrop(path, float(3.0 - 0.5 * rank), f"photos/<cat> {rank}.jpg")
                    )
            filters.append(
                site.FilterEntry(
                    index=index,
                    image=image,
                    objective=math.nan if failed else float(curve[-1]),
                    dead=dead,
                    failed=failed,
                    robustness=None if failed else float(rng.uniform(0, 1)),
                    high_frequency=None if failed else float(rng.uniform(0, 0.5)),
                    loss_curve=tuple(float(value) for value in curve),
                    examples=tuple(examples),
                )
            )
        mosaic = posixpath.join(folder, "mosaic.png")
        files.write_png(f"{outdir}/{mosaic}", _mosaic(tiles))
        entries.append(
            site.LayerEntry(
                name=name,
                type=kind,
                output_shape=shape,
                num_filters=count,
                num_dead=sum(entry.dead for entry in filters),
                seconds=float(rng.uniform(0.5, 5.0)),
                mosaic=mosaic,
                filters=tuple(filters),
                num_failed=sum(entry.failed for entry in filters),
            )
        )
    model = site.ModelSummary(
        name="fake <model>",
        details=(("Input", "32×32×3"), ("Parameters", "24,102"), ("Recipe", "quality & <b>")),
    )
    return site.Atlas(model, tuple(entries))
