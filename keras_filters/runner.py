"""The main job: visualize a layer's filters and write the mosaic, the tiles and the JSON."""

import os
import sys
import time

import keras
import numpy as np

from keras_filters import api, mosaic, outputs
from keras_filters import settings as settings_lib

MOSAIC_FILE = "mosaic.png"
RUN_FILE = "run.json"
TILES_FOLDER = "tiles"


def run(outdir: str, settings: dict, log=None) -> dict:
    """Runs the whole job for one config and writes its files into `outdir`.

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
    plan = api.plan(settings["model"], settings)
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
    if selection.positions:
        pixels = mosaic.stitch(
            result.images[selection.positions],
            selection.rows,
            selection.cols,
            settings["margin"],
            settings["grid_order"],
        )
        outputs.write_png(os.path.join(outdir, MOSAIC_FILE), pixels)
        record["mosaic"].update(file=MOSAIC_FILE, height=pixels.shape[0], width=pixels.shape[1])
    if settings["save_tiles"]:
        for filter_index, tile in zip(result.filter_indices, result.images, strict=True):
            outputs.write_png(
                os.path.join(outdir, TILES_FOLDER, f"filter_{filter_index:04d}.png"), tile
            )
    record["seconds"] = round(time.monotonic() - started, 3)
    outputs.write_json(os.path.join(outdir, RUN_FILE), record)
    return record


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
