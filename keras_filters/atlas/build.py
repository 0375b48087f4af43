"""Builds the atlas of a model: every filter of every chosen layer, then the static site.

Each layer is one ordinary run (`job.run`) of every filter, tiles saved, into
OUTDIR/layers/<layer folder>/, so a layer is batched, shows progress, resumes from its progress
folder after an interruption and splits into shards exactly as a single-layer run does. A layer
whose run.json says it finished with the same settings is not run again, so running the same
command after an interruption goes on with the first unfinished layer. The site is written only
once every layer is done, from the layers' run records and tiles, so an interrupted and resumed
atlas ends with the same pages as an uninterrupted one (only the times differ).

Each layer's run also keeps its optimized images in the model's input space (inputs.npz, written
before run.json); from them each filter's quality measures (`keras_filters.quality`: robustness
and the high-frequency fraction, on the images clipped into the model's input range) are scored
once the layer is done, batched, and kept in the layer's measures.json.

With `num_shards` > 1, each shard runs its share of every layer into
OUTDIR/layers/<layer folder>/shard-<k>/ (the shards share OUTDIR); the shard that finds all
shards finished merges each layer (`job.merge`) and writes the site.

Layout, relative to OUTDIR:

    index.html, <layer folder>/index.html, <layer folder>/filter-NNNN.html   the site
    atlas.json                       the site's data (site.atlas_from_dict reads it)
    layers/<layer folder>/           the layer's run: mosaic.png, run.json, tiles/,
                                     inputs.npz, measures.json, examples/
"""

import dataclasses
import os
import sys

import numpy as np

from keras_filters import errors, pipeline, quality
from keras_filters.atlas import examples as examples_lib
from keras_filters.atlas import receptive_field as receptive_field_lib
from keras_filters.atlas import site
from keras_filters.job import artifacts, batching, interruption, merge, resume
from keras_filters.job import run as job
from keras_filters.model import extractor, input_range
from keras_filters.settings import Settings, show

ATLAS_FILE = "atlas.json"
LAYERS_FOLDER = "layers"
EXAMPLES_FOLDER = "examples"
EXAMPLES_FILE = "examples.json"
MEASURES_FILE = "measures.json"
# The atlas's own settings, which do not change what a layer's run computes.
ATLAS_SETTINGS = ("atlas_layers", "examples_dir", "examples_top_k")
# What every layer's run takes, whatever the recipe says: every filter, in index order, in an
# automatic grid, tiles saved, one layer (`layer_settings`).
LAYER_RUN_SETTINGS = dict(
    max_filters=0,
    filter_indices=(),
    selection="first",
    grid_rows=0,
    grid_cols=0,
    save_tiles=True,
    panel_layers=(),
    panel_titles=(),
)


@dataclasses.dataclass(frozen=True)
class AtlasResult:
    """What `build_atlas` did.

    Attributes:
        pages: The pages written, relative to the outdir; empty while shards are missing.
        layers: The layers' names, in atlas order.
        num_filters: Filters in all.
        num_dead: Dead filters in all.
        num_failed: Failed filters in all.
        waiting_for: The shards not yet finished (empty without shards, or when all are done).
        notes: Things the user should know (input size taken from the model, layers without
            examples).
    """

    pages: tuple
    layers: tuple
    num_filters: int
    num_dead: int
    num_failed: int
    waiting_for: tuple = ()
    notes: tuple = ()


def layer_settings(settings: Settings, layer: str) -> Settings:
    """The settings of one layer's run: every filter, in index order, tiles saved."""
    defaults = Settings.create()
    return settings.replace(
        layer=layer,
        **LAYER_RUN_SETTINGS,
        **{name: getattr(defaults, name) for name in ATLAS_SETTINGS},
    )


def _finished_layer(folder: str, settings: Settings) -> dict | None:
    """The run record of a layer that finished with `settings` and kept its inputs, else None
    (a layer run by an atlas that did not keep them runs again)."""
    if not os.path.isfile(os.path.join(folder, job.INPUTS_FILE)):
        return None
    return job.finished_record(folder, settings)


def _shard_folder(layer_folder: str, shard_index: int) -> str:
    return os.path.join(layer_folder, f"shard-{shard_index}")


def _shard_finished(folder: str, settings: Settings) -> bool:
    return job.finished_record(folder, settings) is not None and os.path.isfile(
        os.path.join(folder, job.SHARD_FILE)
    )


def build_atlas(
    outdir: str,
    settings: Settings,
    *,
    image_size_given: bool = True,
    log=None,
) -> AtlasResult:
    """Runs every filter of the chosen layers and writes the atlas site into `outdir`.

    Args:
        outdir: The site folder; created if missing.
        settings: The recipe's settings; `atlas_layers` picks the layers (empty: every
            visualizable layer), `examples_dir` adds dataset examples. `layer`, `max_filters`,
            `filter_indices` and the mosaic's grid are set per layer.
        image_size_given: The user set `image_size`; when False and the model fixes its input
            size, the atlas takes the model's size. Defaults to True.
        log: Stream for progress lines and notes. Defaults to sys.stderr.

    Returns:
        An AtlasResult.

    Raises:
        UsageError: For a layer that cannot be visualized, an examples folder without images,
            or an outdir that cannot be written; nothing is written then.
        RunInterrupted: After SIGINT or SIGTERM, once the running layer saved what it finished;
            the same call again goes on from there. It counts the filters this job runs over
            all the layers (with shards, this shard's share of each).
    """
    log = log if log is not None else sys.stderr
    if settings.panel_layers:
        raise errors.UsageError(
            f"panel_layers={show(settings.panel_layers)} stacks layers into one "
            "mosaic of keras-filters; the atlas gives each layer a page of its own: list them "
            "in atlas_layers"
        )
    artifacts.check_outdir(outdir)
    model = pipeline.load_model(settings.model, settings)
    settings, note = pipeline.fit_input_size(model, settings, image_size_given)
    notes = [note] if note else []
    names = list(settings.atlas_layers) or [info.name for info in extractor.list_layers(model)]
    if not names:
        raise errors.UsageError(f"model {model.name!r} has no layer to visualize")
    infos = [extractor.find_layer(model, name) for name in names]
    image_files = []
    if settings.examples_dir:
        try:
            image_files = examples_lib.list_images(settings.examples_dir)
            examples_lib.check_readable(image_files, settings.examples_dir)
        except ValueError as error:
            raise errors.UsageError(str(error)) from None
    folders = [site.layer_folder(position, info.name) for position, info in enumerate(infos)]
    for info, folder in zip(infos, folders, strict=True):  # Before any layer runs again.
        resume.refuse_other_unfinished_run(
            _run_folder(outdir, settings, folder),
            layer_settings(settings, info.name).to_dict(),
            f"layer {info.name!r}",
        )
    records = []
    to_run = [_filters_to_run(model, settings, info) for info in infos]
    total = sum(to_run)
    # One stop request for the whole loop: a signal between layers, or after a layer's last
    # chunk, stops the atlas before its next layer (each layer's run also stops mid-layer).
    done_before = 0  # Filters this job runs of the layers before this one.
    with interruption.StopSignals() as stop:
        for position, (info, folder) in enumerate(zip(infos, folders, strict=True)):
            title = f"atlas: layer {position + 1}/{len(infos)} {info.name}"
            title += f" ({info.num_filters} filters)"
            try:
                records.append(_run_layer(outdir, settings, info.name, folder, title, log))
            except interruption.RunInterrupted as stopped:  # Counted over every layer.
                done = done_before + stopped.filters_done
                raise interruption.RunInterrupted(stopped.signal_number, done, total) from None
            done_before += to_run[position]
            if stop.requested and position + 1 < len(infos):
                raise interruption.RunInterrupted(stop.signal_number, done_before, total)
    if settings.num_shards > 1:
        waiting = sorted(
            {
                shard
                for info, folder, record in zip(infos, folders, records, strict=True)
                if record is None
                for shard in range(settings.num_shards)
                if not _shard_finished(
                    _shard_folder(os.path.join(outdir, LAYERS_FOLDER, folder), shard),
                    layer_settings(settings, info.name).replace(shard_index=shard),
                )
            }
        )
        if waiting:
            return AtlasResult((), tuple(names), 0, 0, 0, tuple(waiting), tuple(notes))
        for position, (folder, record) in enumerate(zip(folders, records, strict=True)):
            if record is None:
                layer_outdir = os.path.join(outdir, LAYERS_FOLDER, folder)
                shard_folders = [
                    _shard_folder(layer_outdir, shard) for shard in range(settings.num_shards)
                ]
                records[position] = merge.merge(
                    layer_outdir, shard_folders, log=log, keep_inputs=True
                )
    try:
        model_range = input_range.resolve(model, settings)
    except errors.UsageError as error:
        model_range = None
        notes.append(f"robustness and high-frequency fraction measured without clipping: {error}")
        print(f"atlas: {notes[-1]}", file=log)
    layers = []
    for info, folder, record in zip(infos, folders, records, strict=True):
        measured = _layer_measures(
            os.path.join(outdir, LAYERS_FOLDER, folder), model, model_range, info.name, record
        )
        found = {}
        if image_files:
            found, why_not = _layer_examples(
                outdir, model, settings, info.name, folder, image_files
            )
            if why_not:
                notes.append(f"no dataset examples for layer {info.name!r}: {why_not}")
                print(f"atlas: {notes[-1]}", file=log)
        layers.append(_layer_entry(info, folder, record, measured, found))
    atlas = site.Atlas(
        _model_summary(model, settings, sum(len(layer.filters) for layer in layers)), tuple(layers)
    )
    artifacts.write_json(os.path.join(outdir, ATLAS_FILE), atlas_to_dict(atlas))
    pages = site.write_site(outdir, atlas)
    return AtlasResult(
        tuple(pages),
        tuple(names),
        sum(layer.num_filters for layer in layers),
        sum(layer.num_dead for layer in layers),
        sum(layer.num_failed for layer in layers),
        (),
        tuple(notes),
    )


def _filters_to_run(model, settings: Settings, info) -> int:
    """How many of a layer's filters this job runs: all of them, or with shards this shard's
    share.

    A shard runs whole chunks of the unsharded layout (`batching.shard_keys`), so its share
    depends on the layer's batch size. An automatic batch size depends on the layer (the
    memory one image takes there), so the layer is planned to find it, as its run plans it.
    """
    if settings.num_shards == 1:
        return info.num_filters
    run_settings = layer_settings(settings, info.name)
    if not run_settings.batch_size:
        placement = pipeline.make_placement(run_settings)
        return len(pipeline.plan_layer(model, run_settings, placement).keys)
    filter_indices = pipeline.choose_filter_indices(run_settings, info.num_filters)
    shard = batching.shard_keys(
        filter_indices, run_settings.batch_size, settings.num_shards, settings.shard_index
    )
    return len(shard)


def _run_folder(outdir: str, settings: Settings, folder: str) -> str:
    """Where a layer's run writes: its folder, or this shard's folder inside it."""
    layer_outdir = os.path.join(outdir, LAYERS_FOLDER, folder)
    if settings.num_shards > 1:
        return _shard_folder(layer_outdir, settings.shard_index)
    return layer_outdir


def _run_layer(outdir: str, settings: Settings, layer: str, folder: str, title: str, log):
    """Runs one layer's filters into its folder, or finds them done before.

    Returns:
        The layer's run record; None for a shard's part, which the last shard merges.
    """
    run_settings = layer_settings(settings, layer)
    layer_outdir = os.path.join(outdir, LAYERS_FOLDER, folder)
    record = _finished_layer(layer_outdir, run_settings.replace(num_shards=1, shard_index=0))
    if record is not None:
        print(f"{title}: done before", file=log)
        return record
    if settings.num_shards > 1:
        shard_outdir = _run_folder(outdir, settings, folder)
        if _shard_finished(shard_outdir, run_settings):
            print(f"{title}: shard {settings.shard_index} done before", file=log)
        else:
            print(f"{title}: shard {settings.shard_index} of {settings.num_shards}", file=log)
            job.run(shard_outdir, run_settings, log=log)
        return None
    print(title, file=log)
    return job.run(layer_outdir, run_settings, log=log, keep_inputs=True)


def _model_summary(model, settings: Settings, num_filters: int) -> site.ModelSummary:
    """The index page's table: the model and the recipe's main numbers (nothing timed)."""
    details = (
        ("model", settings.model),
        ("parameters", f"{model.count_params():,}"),
        ("input size", f"{settings.image_size}x{settings.image_size} px"),
        ("filters", str(num_filters)),
        ("ascent", _ascent_text(settings)),
        ("image", _image_text(settings)),
        ("transforms", ", ".join(settings.transforms) or "none"),
        ("seed", str(settings.seed)),
    )
    return site.ModelSummary(model.name, details)


def _ascent_text(settings: Settings) -> str:
    """How the images climbed: optimizer, steps, step size and its schedule, extras."""
    if settings.optimizer == "adam":
        text = f"{settings.num_steps} Adam steps, learning rate {settings.step_size:g}"
    else:
        text = (
            f"{settings.num_steps} steps of {settings.step_size:g} along the "
            f"{settings.gradient_normalization}-normalized gradient"
        )
    if settings.schedule != "constant":
        final = settings.step_size * settings.final_step_fraction
        text += f" ({settings.schedule} to {final:g})"
    if settings.num_upscalings:
        text += f", {settings.num_upscalings} upscalings"
    if settings.relu_warmup_steps:
        text += f", ReLU-gradient warm-up for {settings.relu_warmup_steps} steps"
    if settings.rival_rounds:
        text += (
            f", rival restarts (up to {settings.rival_rounds} rounds of "
            f"{pipeline.restart_length(settings)} steps)"
        )
    return text


def _image_text(settings: Settings) -> str:
    """What the optimized image is and where it starts."""
    if settings.parameterization == "fourier":
        canvas = f", on a {settings.canvas_factor}x canvas" if settings.canvas_factor > 1 else ""
        return (
            f"Fourier (1/f^{settings.fourier_decay:g} spectrum{canvas}), starting from spectrum "
            f"noise of standard deviation {settings.fourier_init_std:g}"
        )
    return (
        f"pixels, starting from {settings.init_distribution} noise in "
        f"[{settings.init_low:g}, {settings.init_high:g})"
    )


def _tile_path(folder: str, index: int) -> str:
    return f"{LAYERS_FOLDER}/{folder}/{job.TILES_FOLDER}/filter_{index:04d}.png"


def _layer_measures(layer_outdir: str, model, model_range, layer: str, record: dict) -> dict:
    """Each filter's quality measures, scored once on the layer's inputs.npz and kept in its
    measures.json.

    Args:
        layer_outdir: The layer's run folder (run.json, inputs.npz).
        model: The loaded model.
        model_range: The model's `InputRange`; None for a model that does not say it (the
            images are then measured as they are).
        layer: The layer's name.
        record: The layer's run record.

    Returns:
        {filter index: (robustness, high-frequency fraction)} for every filter that did not
        fail (see `keras_filters.quality`).
    """
    bounds = None if model_range is None else (model_range.low, model_range.high)
    key = artifacts.plain_json(
        {
            "settings": record["settings"],
            "input_range": None if bounds is None else [bound.tolist() for bound in bounds],
            "num_views": quality.NUM_VIEWS,
            "cutoff": quality.HIGH_FREQUENCY_CUTOFF,
        }
    )
    saved_path = os.path.join(layer_outdir, MEASURES_FILE)
    saved = _saved_for(saved_path, key)
    if saved is not None:
        return {int(index): tuple(values) for index, values in saved["filters"].items()}
    with np.load(os.path.join(layer_outdir, job.INPUTS_FILE), allow_pickle=False) as saved:
        inputs = np.asarray(saved["inputs"], np.float32)
        filter_indices = [int(index) for index in saved["filter_indices"]]
    failed = {int(item["index"]) for item in record["filters"] if item["failed"]}
    kept = [position for position, index in enumerate(filter_indices) if index not in failed]
    measured = {}
    if kept:
        filters = [filter_indices[position] for position in kept]
        images = inputs[kept]
        if bounds is not None:
            images, _ = quality.clip_to_range(images, *bounds)
        robustness = quality.robustness(model, layer, filters, images, bounds)
        high_frequency = quality.high_frequency_fraction(images)
        measured = {
            index: (float(robust), float(high))
            for index, robust, high in zip(filters, robustness, high_frequency, strict=True)
        }
    artifacts.write_json(
        saved_path,
        {"key": key, "filters": {str(index): list(values) for index, values in measured.items()}},
    )
    return measured


def _layer_entry(info, folder: str, record: dict, measured: dict, found: dict) -> site.LayerEntry:
    """A layer of the site from its run record, its measures and its dataset examples."""
    entries = []
    for item in record["filters"]:
        index = int(item["index"])
        robustness, high_frequency = measured.get(index, (None, None))
        entries.append(
            site.FilterEntry(
                index=index,
                image=_tile_path(folder, index),
                objective=np.nan if item["loss"] is None else float(item["loss"]),
                dead=bool(item["dead"]) and not item["failed"],
                failed=bool(item["failed"]),
                robustness=robustness,
                high_frequency=high_frequency,
                loss_curve=tuple(
                    np.nan if value is None else float(value)
                    for value in item.get("loss_history", ())
                ),
                examples=found.get(index, ()),
                restarted_from=item.get("restarted_from"),
            )
        )
    mosaic = record["mosaic"].get("file")
    return site.LayerEntry(
        name=info.name,
        type=info.type,
        output_shape=tuple(info.output_shape or ()),
        num_filters=info.num_filters,
        num_dead=sum(entry.dead for entry in entries),
        seconds=float(record.get("seconds", 0.0)),
        mosaic=f"{LAYERS_FOLDER}/{folder}/{mosaic}" if mosaic else None,
        filters=tuple(entries),
        num_failed=sum(entry.failed for entry in entries),
    )


def _saved_for(path: str, key: dict) -> dict | None:
    """What an earlier build saved at `path`, if it was made for the same `key`; else None (also
    for a file cut short or not of this kind: it is made again)."""
    if not os.path.isfile(path):
        return None
    try:
        saved = artifacts.read_json(path)
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) and saved.get("key") == key else None


def _layer_examples(outdir, model, settings: Settings, layer: str, folder: str, image_files):
    """A layer's dataset examples, found once and kept in its examples.json.

    Returns:
        ({filter index: tuple of site.ExampleCrop}, None), or ({}, why) for a layer whose
        receptive field cannot be computed.
    """
    layer_outdir = os.path.join(outdir, LAYERS_FOLDER, folder)
    key = {
        "examples_dir": os.path.abspath(settings.examples_dir),
        "files": len(image_files),
        "top_k": settings.examples_top_k,
        "image_size": settings.image_size,
    }
    saved_path = os.path.join(layer_outdir, EXAMPLES_FILE)
    saved = _saved_for(saved_path, key)
    if saved is not None:
        return _examples_from_dict(saved["filters"]), saved.get("why_not")
    try:
        field = receptive_field_lib.receptive_field(model, layer, settings.image_size)
    except (ValueError, KeyError) as error:
        found, why_not = {}, str(error)
    else:
        features = extractor.build_feature_extractor(model, layer)
        result = examples_lib.scan(
            features,
            image_files,
            field,
            top_k=settings.examples_top_k,
            batch_size=16,
        )
        crops = examples_lib.cut_crops(result)
        found = examples_lib.write_crops(
            result, crops, outdir, f"{LAYERS_FOLDER}/{folder}/{EXAMPLES_FOLDER}"
        )
        why_not = None
    artifacts.write_json(
        saved_path,
        {
            "key": key,
            "why_not": why_not,
            "filters": {
                str(index): [dataclasses.asdict(crop) for crop in crops]
                for index, crops in found.items()
            },
        },
    )
    return found, why_not


def _examples_from_dict(data: dict) -> dict:
    return {
        int(index): tuple(site.ExampleCrop(**crop) for crop in crops)
        for index, crops in data.items()
    }


def atlas_to_dict(atlas: site.Atlas) -> dict:
    """The atlas as plain data, as `site.atlas_from_dict` reads it."""
    return {
        "model": {"name": atlas.model.name, "details": [list(row) for row in atlas.model.details]},
        "layers": [dataclasses.asdict(layer) for layer in atlas.layers],
    }
