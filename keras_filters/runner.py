"""The main job: visualize a layer's filters and write the mosaic, the tiles and the JSON.

Every check runs before the first file is written. Finished chunks are saved as they finish
(see `resume`); Ctrl-C or SIGTERM stops the run within one chunk, writes the mosaic of what is
done and raises `interruption.RunInterrupted`; running again with the same settings into the
same outdir goes on where it stopped and ends with the same files as an uninterrupted run.
"""

import dataclasses
import importlib
import os
import sys
import time

import keras
import numpy as np

from keras_filters import api, errors, interruption, mosaic, outputs, panels, resume, validation
from keras_filters import settings as settings_lib

MOSAIC_FILE = "mosaic.png"
RUN_FILE = "run.json"
TILES_FOLDER = "tiles"


def run(outdir: str, settings: dict, log=None, resume_only: bool = False) -> dict:
    """Runs the whole job for one config and writes its files into `outdir`.

    An unfinished run of the same settings in `outdir` is resumed: its finished chunks are
    kept and only the rest is computed, in the same chunks as before. With `panel_layers`,
    every listed layer is visualized and drawn as a titled panel, and the panels are stacked
    into the one mosaic (see `panels.py`); such a run is short and is not resumable.

    Args:
        outdir: Output folder; created if missing.
        settings: Every key of configs/base.py (missing ones take their defaults).
        log: Stream for warnings. Defaults to sys.stderr.
        resume_only: Refuse to start a new run: there must be an unfinished one to resume.
            Defaults to False.

    Returns:
        The run record that was written as run.json.

    Raises:
        UsageError: For settings that cannot be used, an outdir that cannot be written, or an
            unfinished run of other settings in `outdir`; nothing is written then.
        RunInterrupted: After SIGINT or SIGTERM, once the mosaic and JSON of the finished
            filters are written.
    """
    log = log if log is not None else sys.stderr
    started = time.monotonic()
    settings = settings_lib.resolve_settings(settings)
    validation.check_settings(settings)
    validation.check_outdir(outdir)
    if settings["panel_layers"]:
        record = _run_panels(outdir, settings, log)
        record["seconds"] = round(time.monotonic() - started, 3)
        outputs.write_json(os.path.join(outdir, RUN_FILE), record)
        return record
    plan = api.plan(settings["model"], settings)
    validation.check_mosaic_size(settings, len(plan.filter_indices))
    store = resume.ProgressStore(outdir)
    progress_record = _start_or_resume(store, plan, settings, resume_only)
    layout = api.chunk_layout(plan.filter_indices, plan.batch_size)
    done = store.load_chunks(layout)
    if done:
        print(
            f"keras-filters: resuming the run in {outdir}: "
            f"{sum(len(layout[number]) for number in done)} of {len(plan.filter_indices)} "
            "filters already done",
            file=log,
        )
    signal_number = _run_chunks(plan, layout, done, store, progress_record, settings["progress"])
    if not done:
        raise interruption.RunInterrupted(signal_number, 0, len(plan.filter_indices))
    result = api.collect(
        [done[number] for number in sorted(done)], plan.visualizer.layer_info.name, settings
    )
    record = _write_outputs(outdir, plan, result, settings, signal_number, log)
    record["seconds"] = round(time.monotonic() - started, 3)
    outputs.write_json(os.path.join(outdir, RUN_FILE), record)
    if signal_number is not None:
        raise interruption.RunInterrupted(
            signal_number, len(result.filter_indices), len(plan.filter_indices)
        )
    store.remove()
    return record


def _start_or_resume(store, plan, settings: dict, resume_only: bool) -> dict:
    """Writes the progress record of a new run, or checks and adopts that of an unfinished
    run of the same settings (its filters and chunk layout).

    Returns:
        The progress record.

    Raises:
        UsageError: For an unfinished run of other settings, or none when `resume_only`.
    """
    identity = resume.run_identity(
        settings, resume.weights_digest(plan.visualizer.feature_extractor.weights), _versions()
    )
    progress_record = store.read_record()
    if progress_record is None:
        if resume_only:
            raise errors.UsageError(f"outdir {store.outdir!r} holds no unfinished run to resume")
        return store.start(identity, settings, plan.filter_indices, plan.batch_size)
    store.check_same_run(progress_record, identity)
    plan.filter_indices = progress_record["filter_indices"]
    plan.batch_size = progress_record["batch_size"]
    return progress_record


def _run_chunks(plan, layout, done: dict, store, progress_record: dict, show_progress: bool):
    """Runs the chunks of `layout` that are not in `done`, saving and adding each as it finishes.

    Returns:
        The signal that stopped the run early, or None if every chunk is done.
    """
    progress = plan.progress_bar(show_progress)
    progress.skip(sum(len(layout[number]) for number in done))

    def on_step(step, losses):
        progress.step(step, losses)
        stop.check()

    with interruption.StopSignals() as stop:
        for number, chunk_filters in enumerate(layout):
            if number in done:
                continue
            if stop.requested:
                break
            try:
                chunk = plan.visualizer.run_chunk(chunk_filters, on_step=on_step)
            except interruption.StopRequested:
                break
            store.save_chunk(progress_record, number, chunk)
            done[number] = chunk
            progress.chunk_done(chunk.losses)
    # A signal that comes after the last chunk stopped nothing.
    return None if len(done) == len(layout) else stop.signal_number


def _write_outputs(outdir: str, plan, result, settings: dict, signal_number, log) -> dict:
    """Writes the mosaic and the tiles, and returns the run record for run.json."""
    rendered = _stitch_selected(plan, result, settings, log)
    record = rendered.record
    record["complete"] = signal_number is None
    record["interrupted"] = interruption.signal_name(signal_number) if signal_number else None
    if rendered.pixels is not None:
        outputs.write_png(os.path.join(outdir, MOSAIC_FILE), rendered.pixels)
        record["mosaic"].update(file=MOSAIC_FILE, **_size(rendered.pixels))
    if settings["save_tiles"]:
        _write_tiles(os.path.join(outdir, TILES_FOLDER), result)
    return record


@dataclasses.dataclass
class _Rendered:
    """One layer's run: its record, its mosaic (None when no filter is shown), its result."""

    record: dict
    pixels: np.ndarray | None
    result: api.VisualizationResult


def _stitch_selected(plan, result, settings: dict, log) -> _Rendered:
    """Selects the filters to show, stitches them, and makes the layer's run record."""
    selection = mosaic.select_filters(
        result.losses,
        ~(result.dead | result.failed),
        settings["grid_rows"],
        settings["grid_cols"],
        settings["selection"],
    )
    if selection.warning:
        print(f"keras-filters: warning: {selection.warning}", file=log)
    pixels = None
    if selection.positions:
        pixels = mosaic.stitch(
            result.images[selection.positions],
            selection.rows,
            selection.cols,
            settings["margin"],
            settings["grid_order"],
        )
    return _Rendered(_run_record(plan, result, selection, settings), pixels, result)


def _render_layer(model, settings: dict, log) -> _Rendered:
    """Visualizes the filters of `settings["layer"]` in one go and stitches the chosen ones."""
    plan = api.plan(model, settings)
    return _stitch_selected(plan, api.run_plan(plan, settings), settings, log)


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


def _versions() -> dict:
    """The versions that decide the numbers a run computes: Keras, its backend, NumPy."""
    backend = keras.backend.backend()
    return {
        "keras": keras.__version__,
        backend: importlib.import_module(backend).__version__,
        "numpy": np.__version__,
    }


def _run_record(plan, result, selection, settings) -> dict:
    """The run's settings and, per filter, its final loss and state, for run.json."""
    return {
        "settings": settings,
        "model": plan.model.name,
        "layer": plan.visualizer.layer_info.name,
        "layer_filters": plan.visualizer.num_filters,
        "image_sizes": plan.visualizer.sizes,
        "batch_size": plan.batch_size,
        "versions": _versions(),
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
