"""The main job: visualize a layer's filters and write the mosaic, the tiles and the JSON."""

import dataclasses
import os
import sys
import time

import keras
import numpy as np

from keras_filters import api, mosaic, outputs, panels
from keras_filters import settings as settings_lib

MOSAIC_FILE = "mosaic.png"
RUN_FILE = "run.json"
TILES_FOLDER = "tiles"


def run(outdir: str, settings: dict, log=None) -> dict:
    """Runs the whole job for one config and writes its files into `outdir`.

    With `panel_layers`, every listed layer is visualized and drawn as a titled panel, and
    the panels are stacked into the one mosaic (see `panels.py`).

    Args:
        outdir: Output folder; created if missing.
        settings: Every key of configs/base.py (missing ones take their defaults).
        log: Stream for warnings. Defaults to sys.stderr.

    Returns:
        The run record that was written as run.json.

    Raises:
        UsageError: For settings that cannot be used.
    """
    log = log if log is not None else sys.stderr
    settings = settings_lib.resolve_settings(settings)
    started = time.monotonic()
    if settings["panel_layers"]:
        record = _run_panels(outdir, settings, log)
    else:
        rendered = _render_layer(settings["model"], settings, log)
        record = rendered.record
        if rendered.pixels is not None:
            outputs.write_png(os.path.join(outdir, MOSAIC_FILE), rendered.pixels)
            record["mosaic"].update(file=MOSAIC_FILE, **_size(rendered.pixels))
        if settings["save_tiles"]:
            _write_tiles(os.path.join(outdir, TILES_FOLDER), rendered.result)
    record["seconds"] = round(time.monotonic() - started, 3)
    outputs.write_json(os.path.join(outdir, RUN_FILE), record)
    return record


@dataclasses.dataclass
class _Rendered:
    """One layer's run: its record, its mosaic (None when no filter is shown), its result."""

    record: dict
    pixels: np.ndarray | None
    result: api.VisualizationResult


def _render_layer(model, settings: dict, log) -> _Rendered:
    """Visualizes the filters of `settings["layer"]` and stitches the chosen ones."""
    plan = api.plan(model, settings)
    chunks = plan.visualizer.iterate_chunks(
        plan.filter_indices, plan.batch_size, plan.progress_bar(settings["progress"])
    )
    result = api.collect(chunks, plan.visualizer.layer_info.name, settings)
    selection = mosaic.select_filters(
        result.losses,
        ~(result.dead | result.failed),
        settings["grid_rows"],
        settings["grid_cols"],
        settings["selection"],
    )
    if selection.warning:
        print(f"keras-filters: warning: {selection.warning}", file=log)
    record = _run_record(plan, result, selection, settings)
    pixels = None
    if selection.positions:
        pixels = mosaic.stitch(
            result.images[selection.positions],
            selection.rows,
            selection.cols,
            settings["margin"],
            settings["grid_order"],
        )
    return _Rendered(record, pixels, result)


def _run_panels(outdir: str, settings: dict, log) -> dict:
    """Renders each panel layer, titles its mosaic, and writes the stacked panels."""
    layer_names = list(settings["panel_layers"])
    titles = panels.panel_titles(layer_names, settings["panel_titles"])
    model = api.load_model_from_settings(settings["model"], settings)
    images, panel_records = [], []
    for layer_name, title in zip(layer_names, titles, strict=True):
        rendered = _render_layer(model, {**settings, "layer": layer_name}, log)
        pixels = rendered.pixels
        if pixels is None:  # No filter to show: keep the panel's place, black, with its title.
            tile_height, tile_width = rendered.result.images.shape[1:3]
            rows, cols = max(settings["grid_rows"], 1), max(settings["grid_cols"], 1)
            height, width = mosaic.mosaic_size(
                rows, cols, tile_height, tile_width, settings["margin"]
            )
            pixels = np.zeros((height, width, rendered.result.images.shape[3]), np.uint8)
        images.append(panels.titled_panel(pixels, title))
        layer_record = {key: value for key, value in rendered.record.items() if key != "settings"}
        layer_record["mosaic"].update(_size(pixels))
        panel_records.append({"title": title, **layer_record})
        if settings["save_tiles"]:
            folder = os.path.join(outdir, TILES_FOLDER, rendered.record["layer"].replace("/", "_"))
            _write_tiles(folder, rendered.result)
    pixels = panels.stack_panels(images, settings["margin"])
    outputs.write_png(os.path.join(outdir, MOSAIC_FILE), pixels)
    return {
        "settings": settings,
        "model": model.name,
        "layer": ", ".join(record["layer"] for record in panel_records),
        "versions": panel_records[0]["versions"],
        "mosaic": {"file": MOSAIC_FILE, **_size(pixels)},
        "panels": panel_records,
    }


def _size(pixels: np.ndarray) -> dict:
    return {"height": int(pixels.shape[0]), "width": int(pixels.shape[1])}


def _write_tiles(folder: str, result) -> None:
    """Writes each filter's tile as tiles/filter_NNNN.png."""
    for filter_index, tile in zip(result.filter_indices, result.images, strict=True):
        outputs.write_png(os.path.join(folder, f"filter_{filter_index:04d}.png"), tile)


def _run_record(plan, result, selection, settings) -> dict:
    """The run's settings and, per filter, its final loss and state, for run.json."""
    import tensorflow as tf

    return {
        "settings": settings,
        "model": plan.model.name,
        "layer": plan.visualizer.layer_info.name,
        "layer_filters": plan.visualizer.num_filters,
        "image_sizes": plan.visualizer.sizes,
        "batch_size": plan.batch_size,
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
        "mosaic": {
            "file": None,
            "rows": selection.rows,
            "cols": selection.cols,
            "filters": [int(result.filter_indices[p]) for p in selection.positions],
            "warning": selection.warning,
        },
        "filters": [
            {
                "index": int(index),
                "loss": float(loss),
                "dead": bool(dead),
                "failed": bool(failed_step >= 0),
                "failed_step": int(failed_step) if failed_step >= 0 else None,
            }
            for index, loss, dead, failed_step in zip(
                result.filter_indices, result.losses, result.dead, result.failed_step, strict=True
            )
        ],
        "mean_loss": float(np.nanmean(result.losses)) if np.isfinite(result.losses).any() else None,
    }
