"""The redesign changed no picture: every figure recipe and the faithful quickstart give the
mosaics that version 1 made.

tests/data/regression/<case>/ holds, for each recipe, the mosaic that version 1 (before the
core redesign) wrote with random weights (`weights=none`), the recipe's own seed, 1–2 steps
(1 per scale for the multi-scale figure) and filters 0–2 in a 1×3 grid (the recipe's own
filters where it names them), with its final losses (expected.json). The same run with today's
code must give the same mosaic within ±1 grey level and the same losses within float
tolerance, under the TensorFlow backend. One change since version 1 is on purpose: a dead
filter's tile in a mosaic is now the dead-filter mark (see `image.mosaic.dead_tile`), so the
recorded mosaic gets the mark at those tiles before the comparison.
"""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_filters import recipes
from keras_filters.image import mosaic
from keras_filters.job import run as job

CASES_FOLDER = os.path.join(os.path.dirname(__file__), "data", "regression")
CASES = sorted(os.listdir(CASES_FOLDER))
# Recipes that version 1 did not have: the benchmark, and the quality recipe (issue 10) and the
# quickstart built on it.
NEWER_RECIPES = ("benchmark.py", "quality.py", "quickstart.py")

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the version 1 mosaics were recorded with the TensorFlow backend",
)


def test_every_recipe_has_a_case():
    figure_recipes = {
        name[: -len(".py")]
        for name in os.listdir(recipes.CONFIGS_FOLDER)
        if name.endswith(".py") and name not in ("__init__.py", "base.py", *NEWER_RECIPES)
    }
    recorded = {
        json.load(open(os.path.join(CASES_FOLDER, case, "expected.json")))["config"].partition(":")[
            0
        ][: -len(".py")]
        for case in CASES
    }
    assert figure_recipes <= recorded, figure_recipes - recorded


@pytest.mark.parametrize("case", CASES)
def test_recipe_gives_the_version_1_mosaic(case, tmp_path):
    folder = os.path.join(CASES_FOLDER, case)
    with open(os.path.join(folder, "expected.json")) as file:
        expected = json.load(file)
    path, _, argument = expected["config"].partition(":")
    config, _ = recipes.load(os.path.join(recipes.CONFIGS_FOLDER, path), argument)
    settings = {**config.to_dict(), **expected["overrides"]}

    record = job.run(str(tmp_path), settings)

    entries = [entry for layer in record.get("panels", [record]) for entry in layer["filters"]]
    np.testing.assert_allclose(
        [entry["loss"] for entry in entries], expected["losses"], rtol=1e-3, atol=1e-6
    )
    assert [entry["dead"] for entry in entries] == expected["dead"]
    made = np.asarray(Image.open(tmp_path / "mosaic.png"), dtype=np.int16)
    recorded = np.asarray(Image.open(os.path.join(folder, "mosaic.png")), dtype=np.int16)
    if "panels" not in record:
        mark_dead_tiles(recorded, record)
    assert made.shape == recorded.shape
    assert made.shape[:2] == (expected["mosaic"]["height"], expected["mosaic"]["width"])
    difference = np.abs(made - recorded)
    # Float tolerance: a grey level may flip where a value sits on a rounding boundary.
    assert difference.max() <= 1, f"{(difference > 1).sum()} pixels differ by more than 1"


def mark_dead_tiles(pixels: np.ndarray, record: dict) -> None:
    """Puts the dead-filter mark on the tiles of dead filters, in place."""
    shown, settings = record["mosaic"], record["settings"]
    rows, cols, margin = shown["rows"], shown["cols"], settings["margin"]
    tile_height = (pixels.shape[0] - (rows - 1) * margin) // rows
    tile_width = (pixels.shape[1] - (cols - 1) * margin) // cols
    dead = {entry["index"] for entry in record["filters"] if entry["dead"] and not entry["failed"]}
    for position, filter_index in enumerate(shown["filters"]):
        if filter_index in dead:
            row, col = mosaic.tile_position(position, rows, cols, settings["grid_order"])
            top, left = row * (tile_height + margin), col * (tile_width + margin)
            pixels[top : top + tile_height, left : left + tile_width] = mosaic.dead_tile(
                tile_height, tile_width, pixels.shape[2]
            )
