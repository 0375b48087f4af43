"""The main job: visualize a layer's filters (or several layers as panels) and write the mosaic,
the tiles and run.json.

Every check runs before the first file is written. Finished chunks are saved as they finish
(see `resume`); Ctrl-C or SIGTERM stops the run within one chunk, writes the mosaic of what is
done and raises `interruption.RunInterrupted`; running again with the same settings into the
same outdir goes on where it stopped and ends with the same files as an uninterrupted run. A
run of several panel layers goes through the same path, one part of the progress folder per
layer.
"""

import dataclasses
import importlib
import os
import shutil
import sys
import tempfile
import time

import keras
import numpy as np

from keras_filters import errors, pipeline
from keras_filters.image import mosaic, panels
from keras_filters.job import artifacts, batching, interruption, resume
from keras_filters.settings import Settings

MOSAIC_FILE = "mosaic.png"
RUN_FILE = "run.json"
TILES_FOLDER = "tiles"
# With `keep_inputs`: each filter's optimized image in the model's input space (arrays
# "inputs", "filter_indices" and "layer", as scripts/evaluate_quality.py writes them).
INPUTS_FILE = "inputs.npz"
# A shard's results, for scripts/merge.py: each field of the chunk results, and the axis along
# which the chunks are joined.
SHARD_FILE = "shard.npz"
SHARD_FIELDS = {"keys": 0, "inputs": 0, "losses": 0, "loss_history": 1, "failed_step": 0}


@dataclasses.dataclass
class LayerJob:
    """One layer of a run: its settings, its plan, its part of the progress folder."""

    settings: Settings
    plan: pipeline.Plan
    store: resume.ProgressStore
    record: dict = None
    layout: list = None
    done: dict = None
    # With rival_rounds: the rival restarts over the finished chunks (`pipeline.restart_rivals`).
    restarts: object = None

    @property
    def finished(self) -> bool:
        """Every chunk is done, and the rival restarts where the settings ask for them."""
        chunks_done = len(self.done) == len(self.layout)
        return chunks_done and (self.restarts is not None or not self.settings.rival_rounds)


def run(
    outdir: str,
    settings,
    log=None,
    resume_only: bool = False,
    image_size_given: bool = True,
    placement=None,
    keep_inputs: bool = False,
) -> dict:
    """Runs the whole job for one config and writes its files into `outdir`.

    An unfinished run of the same settings in `outdir` is resumed: its finished chunks are
    kept and only the rest is computed, in the same chunks as before. With `panel_layers`,
    every listed layer is visualized and drawn as a titled panel, and the panels are stacked
    into the one mosaic (see `image.panels`). A shard (`num_shards` > 1) whose share of the
    layer is empty (the layer has fewer chunks than shards) runs nothing and says so on `log`;
    it writes its run.json and shard.npz of no filters, and no mosaic.

    Args:
        outdir: Output folder; created if missing.
        settings: A `Settings`, or a dict of settings (validated here, once).
        log: Stream for warnings. Defaults to sys.stderr.
        resume_only: Refuse to start a new run: there must be an unfinished one to resume.
            Defaults to False.
        image_size_given: The user set `image_size`. When False and the model fixes its
            input size, the run takes the model's size. Defaults to True.
        placement: Where the images run (see `distribution`). Defaults to the settings'
            strategy. On a cluster every worker runs this with the same outdir; only the chief
            writes there (the others work in a scratch folder that they remove).
        keep_inputs: Also write inputs.npz: the optimized images in the model's input space
            (one layer, no panels), before run.json. Defaults to False.

    Returns:
        The run record that was written as run.json.

    Raises:
        UsageError: For settings that cannot be used, an outdir that cannot be written, or an
            unfinished run of other settings in `outdir`; nothing is written then.
        RunInterrupted: After SIGINT or SIGTERM, once the mosaic and JSON of the finished
            filters are written.
    """
    log = log if log is not None else sys.stderr
    settings = settings if isinstance(settings, Settings) else Settings.create(settings)
    placement = placement or pipeline.make_placement(settings)
    if placement.is_chief:
        return _run(outdir, settings, log, resume_only, image_size_given, placement, keep_inputs)
    scratch = tempfile.mkdtemp(prefix="keras-filters-worker-")
    try:
        # A worker skips the chunks that the chief skips: it starts from the chief's progress.
        progress = os.path.join(outdir, resume.PROGRESS_FOLDER)
        if os.path.isdir(progress):
            shutil.copytree(progress, os.path.join(scratch, resume.PROGRESS_FOLDER))
        with open(os.devnull, "w") as quiet:
            record = _run(
                scratch, settings, quiet, resume_only, image_size_given, placement, keep_inputs
            )
        return {**record, "written_by": "the chief"}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def finished_record(folder: str, settings: Settings) -> dict | None:
    """The run record in `folder` if a run of exactly `settings` finished there, else None: no
    record, one that cannot be read or is not a record, one cut short (complete false, or a
    progress folder beside it), one of other settings, or one whose mosaic is gone. A caller
    that finds None runs it (again); the atlas and reproduce keep what they find."""
    try:
        record = artifacts.read_json(os.path.join(folder, RUN_FILE))
        same = record["settings"] == artifacts.plain_json(settings.to_dict())
        complete = record["complete"] is True
        mosaic_file = (record.get("mosaic") or {}).get("file")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not (same and complete) or os.path.isdir(os.path.join(folder, resume.PROGRESS_FOLDER)):
        return None
    if mosaic_file and not os.path.isfile(os.path.join(folder, mosaic_file)):
        return None
    return record


def _run(
    outdir, settings: Settings, log, resume_only, image_size_given, placement, keep_inputs
) -> dict:
    """The run, with the files written into `outdir`."""
    started = time.monotonic()
    artifacts.check_outdir(outdir)
    model = pipeline.load_model(settings.model, settings, placement)
    settings, note = pipeline.fit_input_size(model, settings, image_size_given)
    jobs = _plan_layers(outdir, model, settings, placement)
    resume.check_layout(outdir, [job.store.part for job in jobs])
    artifacts.remove_temporaries(outdir, os.path.join(outdir, TILES_FOLDER))
    for job in jobs:
        _start_or_resume(job, settings, resume_only)
    finished = sum(len(job.layout[number]) for job in jobs for number in job.done)
    total = sum(len(job.plan.keys) for job in jobs)
    if finished:
        print(
            f"keras-filters: resuming the run in {outdir}: {finished} of {total} filters "
            "already done",
            file=log,
        )
    if not total:
        _note_empty_shard(jobs[0], log)
    signal_number = _run_chunks(jobs, settings.progress)
    finished = sum(len(job.layout[number]) for job in jobs for number in job.done)
    if total and not finished:  # Stopped before its first chunk: there is nothing to write.
        raise interruption.RunInterrupted(signal_number, 0, total)
    record = _write_outputs(outdir, jobs, settings, log, keep_inputs)
    record["notes"] = [note] if note else []
    record["complete"] = signal_number is None
    record["interrupted"] = interruption.signal_name(signal_number) if signal_number else None
    record["seconds"] = round(time.monotonic() - started, 3)
    artifacts.write_json(os.path.join(outdir, RUN_FILE), record)
    if signal_number is not None:
        raise interruption.RunInterrupted(signal_number, finished, total)
    jobs[0].store.remove()
    return record


def _note_empty_shard(job: LayerJob, log) -> None:
    """Says that this shard has no filter of the layer to run: a shard runs whole chunks of the
    unsharded layout, and the layer has fewer chunks than there are shards. The shard still
    writes its (empty) files, so that the merge and the atlas count it finished."""
    settings = job.settings
    num_filters = len(pipeline.choose_filter_indices(settings, job.plan.num_filters))
    num_chunks = len(batching.chunk_layout(range(num_filters), job.plan.batch_size))
    print(
        f"keras-filters: shard {settings.shard_index} of {settings.num_shards} has no filters "
        f"of {job.plan.layer_name} to run: its {num_filters} filters make {num_chunks} "
        f"chunk{'s' if num_chunks > 1 else ''} of batch_size={job.plan.batch_size} for "
        f"{settings.num_shards} shards; writing an empty shard for the merge",
        file=log,
    )


def _plan_layers(outdir: str, model, settings: Settings, placement) -> list[LayerJob]:
    """Plans every layer of the loaded model; every model check runs here."""
    if not settings.panel_layers:
        plan = pipeline.plan_layer(model, settings, placement)
        _check_mosaic(settings, plan)
        return [LayerJob(settings, plan, resume.ProgressStore(outdir))]
    jobs = []
    for number, layer in enumerate(settings.panel_layers):
        layer_settings = settings.replace(layer=layer)
        plan = pipeline.plan_layer(model, layer_settings, placement)
        _check_mosaic(layer_settings, plan)
        jobs.append(
            LayerJob(layer_settings, plan, resume.ProgressStore(outdir, f"panel_{number:02d}"))
        )
    return jobs


def _check_mosaic(settings: Settings, plan) -> None:
    """Checks that the layer's mosaic fits, before anything is written.

    A shard checks the mosaic of the whole run, of every shard's filters: the merge draws
    that one, and a shard must refuse what the unsharded run refuses.
    """
    mosaic.check_mosaic_size(
        settings.grid_rows,
        settings.grid_cols,
        settings.image_size - 2 * settings.crop,
        settings.margin,
        len(pipeline.choose_filter_indices(settings, plan.num_filters)),
        settings.automatic_grid,
    )


def _start_or_resume(job: LayerJob, run_settings: Settings, resume_only: bool) -> None:
    """Writes the progress record of a new run, or checks and adopts that of an unfinished
    run of the same settings (its filters and chunk layout), and loads its finished chunks.

    Raises:
        UsageError: For an unfinished run of other settings, or none when `resume_only`.
    """
    plan = job.plan
    identity = resume.run_identity(
        job.settings.to_dict(),
        resume.weights_digest(plan.renderer.extractor.weights),
        _versions(),
    )
    record = job.store.read_record()
    if record is None:
        if resume_only:
            raise errors.UsageError(
                f"outdir {job.store.outdir!r} holds no unfinished run to resume"
            )
        record = job.store.start(identity, run_settings.to_dict(), plan.keys, plan.batch_size)
    else:
        job.store.check_same_run(record, identity)
        plan.keys = [int(key) for key in record["filter_indices"]]
        plan.batch_size = int(record["batch_size"])
    job.record = record
    job.layout = plan.layout()
    job.done = job.store.load_chunks(job.layout)


def _run_chunks(jobs: list[LayerJob], show_progress: bool):
    """Runs the chunks that are not done, saving each as it finishes.

    Returns:
        The signal that stopped the run early, or None if every chunk is done.
    """
    with interruption.StopSignals() as stop:
        for job in jobs:
            progress = job.plan.progress_bar(show_progress)
            if len(jobs) > 1 and show_progress:
                print(f"keras-filters: layer {job.plan.layer_name}", file=progress.stream)
            progress.skip(sum(len(job.layout[number]) for number in job.done))

            def on_step(step, losses, progress=progress):
                progress.step(step, losses)
                stop.check()

            for number, chunk_keys in enumerate(job.layout):
                if number in job.done:
                    continue
                if stop.requested:
                    break
                try:
                    chunk = job.plan.run_chunk(chunk_keys, on_step=on_step)
                except interruption.StopRequested:
                    break
                job.store.save_chunk(job.record, number, chunk)
                job.done[number] = chunk
                progress.chunk_done(chunk.losses)
            if len(job.done) == len(job.layout) and not stop.requested:
                # Not saved as it goes: a run stopped here does the restarts again on resume.
                try:
                    job.restarts = pipeline.restart_rivals(
                        job.plan,
                        job.settings,
                        _finished_chunks(job),
                        on_step=lambda step, losses: stop.check(),
                        progress=progress,
                    )
                except interruption.StopRequested:
                    break
    # A signal that comes after the last chunk stopped nothing.
    complete = all(job.finished for job in jobs)
    return None if complete else stop.signal_number


@dataclasses.dataclass
class _Rendered:
    """One layer's result: its record, its mosaic (None when no filter is shown), its result."""

    record: dict
    pixels: np.ndarray | None
    result: pipeline.VisualizationResult


def layer_facts(plan) -> dict:
    """What a layer's record says of its run besides the filters: from the plan."""
    return {
        "model": plan.model.name,
        "layer": plan.layer_name,
        "layer_filters": plan.num_filters,
        "image_sizes": plan.renderer.sizes,
        "batch_size": plan.batch_size,
        "input_range": plan.input_range.to_record() if plan.input_range else None,
    }


def _finished_chunks(job: LayerJob) -> list:
    """A layer's finished chunks, in order. A layer with no chunk to run (a shard whose share
    of it is empty) gives one chunk of no images, so that its results have the shapes of any
    other shard's."""
    if not job.layout:
        return [job.plan.renderer.empty_chunk()]
    return [job.done[number] for number in sorted(job.done)]


def _render_layer(job: LayerJob, log) -> _Rendered | None:
    """Collects a layer's finished chunks, selects the filters to show and stitches them.

    Returns None for a layer that had chunks to run but was interrupted before any finished.
    """
    if job.layout and not job.done:
        return None
    chunks = _finished_chunks(job)
    result = pipeline.collect(
        chunks, job.plan.layer_name, job.settings, job.plan.input_range, job.restarts
    )
    return render_result(job.settings, result, layer_facts(job.plan), log)


def render_result(settings: Settings, result, facts: dict, log) -> _Rendered:
    """Selects the filters of a layer's result to show, stitches them, makes its record."""
    selection = mosaic.select_filters(
        result.losses,
        ~(result.dead | result.failed),
        settings.grid_rows,
        settings.grid_cols,
        settings.selection,
        settings.automatic_grid,
    )
    if selection.warning:
        print(f"keras-filters: warning: {selection.warning}", file=log)
    pixels = None
    if selection.positions:
        tiles = result.images[selection.positions].copy()
        for tile_number, position in enumerate(selection.positions):
            if result.dead[position] and not result.failed[position]:
                tiles[tile_number] = mosaic.dead_tile(*tiles.shape[1:])
        pixels = mosaic.stitch(
            tiles,
            selection.rows,
            selection.cols,
            settings.margin,
            settings.grid_order,
        )
    record = _layer_record(facts, result, selection, with_rivals=bool(settings.rival_rounds))
    return _Rendered(record, pixels, result)


def _write_outputs(
    outdir: str, jobs: list[LayerJob], settings: Settings, log, keep_inputs: bool
) -> dict:
    """Writes the mosaic (or stacked panels), the tiles and, with `keep_inputs` (one layer),
    inputs.npz; returns the run record."""
    rendered = [_render_layer(job, log) for job in jobs]
    if not settings.panel_layers:
        if settings.num_shards > 1:
            chunks = _finished_chunks(jobs[0])
            artifacts.write_npz(
                os.path.join(outdir, SHARD_FILE),
                **{
                    field: np.concatenate([getattr(chunk, field) for chunk in chunks], axis=axis)
                    for field, axis in SHARD_FIELDS.items()
                },
            )
        return write_layer(outdir, settings, rendered[0], keep_inputs)
    titles = panels.panel_titles(settings.panel_layers, settings.panel_titles)
    images, panel_records = [], []
    for layer, title in zip(rendered, titles, strict=True):
        if layer is None:  # Interrupted before this layer ran.
            continue
        pixels = layer.pixels
        if pixels is None:  # No filter to show: keep the panel's place, black, with its title.
            tile_height, tile_width, channels = layer.result.images.shape[1:4]
            height, width = mosaic.mosaic_size(
                max(settings.grid_rows, 1),
                max(settings.grid_cols, 1),
                tile_height,
                tile_width,
                settings.margin,
            )
            pixels = np.zeros((height, width, channels), np.uint8)
        images.append(panels.titled_panel(pixels, title))
        layer.record["mosaic"].update(_size(pixels))
        panel_records.append({"title": title, **layer.record})
        if settings.save_tiles:
            folder = os.path.join(outdir, TILES_FOLDER, layer.record["layer"].replace("/", "_"))
            _write_tiles(folder, layer.result)
    pixels = panels.stack_panels(images, settings.margin)
    artifacts.write_png(os.path.join(outdir, MOSAIC_FILE), pixels)
    return {
        "settings": settings.to_dict(),
        "model": jobs[0].plan.model.name,
        "layer": ", ".join(record["layer"] for record in panel_records),
        "versions": _versions(),
        "mosaic": {"file": MOSAIC_FILE, **_size(pixels)},
        "panels": panel_records,
    }


def write_layer(
    outdir: str, settings: Settings, layer: _Rendered, keep_inputs: bool = False
) -> dict:
    """Writes one layer's mosaic (and tiles, and with `keep_inputs` inputs.npz); returns its
    run record."""
    record = {"settings": settings.to_dict(), **layer.record}
    if keep_inputs:
        artifacts.write_npz(
            os.path.join(outdir, INPUTS_FILE),
            inputs=layer.result.inputs,
            filter_indices=layer.result.filter_indices,
            layer=np.array(layer.record["layer"]),
        )
    if layer.pixels is not None:
        artifacts.write_png(os.path.join(outdir, MOSAIC_FILE), layer.pixels)
        record["mosaic"].update(file=MOSAIC_FILE, **_size(layer.pixels))
    if settings.save_tiles:
        _write_tiles(os.path.join(outdir, TILES_FOLDER), layer.result)
    return record


def _size(pixels: np.ndarray) -> dict:
    return {"height": int(pixels.shape[0]), "width": int(pixels.shape[1])}


def _write_tiles(folder: str, result) -> None:
    """Writes each filter's tile as tiles/filter_NNNN.png."""
    for filter_index, tile in zip(result.filter_indices, result.images, strict=True):
        artifacts.write_png(os.path.join(folder, f"filter_{filter_index:04d}.png"), tile)


def _versions() -> dict:
    """The versions that decide the numbers a run computes: Keras, its backend, NumPy."""
    backend = keras.backend.backend()
    return {
        "keras": keras.__version__,
        backend: importlib.import_module(backend).__version__,
        "numpy": np.__version__,
    }


def _layer_record(facts: dict, result, selection, with_rivals: bool = False) -> dict:
    """A layer's run: per filter, its final loss, state and loss curve, and the mosaic's
    filters; `with_rivals`, also the rival restarts: the filter whose picture it last
    restarted from, and the one whose picture still beats it (null for none)."""
    record = {
        **facts,
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
                # Noise did not excite it: only the ReLU-gradient warm-up could move it.
                "needed_warmup": bool(warmed),
                # The objective at every step (null where it was not finite): the loss curve.
                "loss_history": [float(value) for value in history],
            }
            for index, loss, dead, failed_step, history, warmed in zip(
                result.filter_indices,
                result.losses,
                result.dead,
                result.failed_step,
                result.loss_history.T,
                result.needed_warmup,
                strict=True,
            )
        ],
        "mean_loss": float(np.nanmean(result.losses)) if np.isfinite(result.losses).any() else None,
        "summary": result.summary(),
    }
    if with_rivals:
        for entry, restarted_from, beaten_by in zip(
            record["filters"], result.restarted_from, result.beaten_by, strict=True
        ):
            entry["restarted_from"] = int(restarted_from) if restarted_from >= 0 else None
            entry["beaten_by"] = int(beaten_by) if beaten_by >= 0 else None
    return record
