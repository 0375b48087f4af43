"""Joins the outputs of sharded jobs (`num_shards` > 1) into the files of one unsharded run.

Each shard wrote its run.json and its results (shard.npz). The merge refuses shards made with
other settings, a shard that is missing, given twice or cut short, filters that no shard
holds, and a shard's own folder as the merged run's, naming them; then it renders the mosaic
from all the shards' results through the same code as an unsharded run, so the files are the
same. A shard whose share was empty (a layer of fewer chunks than shards) holds no filters,
and adds none.
"""

import os
import sys
import zipfile

import numpy as np

from keras_filters import errors, pipeline
from keras_filters.job import artifacts
from keras_filters.job import run as job
from keras_filters.model import input_range
from keras_filters.optvis import render
from keras_filters.settings import Settings

# Settings that differ between the shards of one run.
SHARD_SETTINGS = ("shard_index",)
# Facts of the run that every shard's record must share.
SHARED_FACTS = ("model", "layer", "layer_filters", "image_sizes", "batch_size", "input_range")


def _read_shard(folder: str) -> tuple[dict, dict]:
    """A shard's run record and its results.

    Raises:
        UsageError: For a folder without both files, a file cut short (a copy that stopped:
            an empty or truncated shard.npz), or a run.json that is not a shard's record.
    """
    try:
        record = artifacts.read_json(os.path.join(folder, job.RUN_FILE))
        with np.load(os.path.join(folder, job.SHARD_FILE), allow_pickle=False) as data:
            arrays = {field: data[field] for field in job.SHARD_FIELDS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise errors.UsageError(
            f"shard folder {folder!r} holds no finished shard ({job.RUN_FILE} and "
            f"{job.SHARD_FILE}): {error}"
        ) from None
    missing = _missing_keys(record)
    if missing:
        raise errors.UsageError(
            f"shard folder {folder!r} holds no finished shard: its {job.RUN_FILE} is not a "
            f"shard's run record (it lacks {', '.join(missing)})"
        )
    return record, arrays


def _missing_keys(record) -> list[str]:
    """What the merge reads from a shard's run record and `record` lacks (as "settings.KEY"
    for a setting)."""
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
        return ["settings"]
    return [key for key in SHARED_FACTS if key not in record] + [
        f"settings.{key}" for key in ("num_shards", "shard_index") if key not in record["settings"]
    ]


def _check_not_a_shard_folder(outdir: str, shard_folders) -> None:
    """Refuses to merge into a shard's own folder: the merged run.json and mosaic would
    replace that shard's, and the shard could not be merged again."""
    for folder in shard_folders:
        if os.path.realpath(outdir) == os.path.realpath(folder):
            raise errors.UsageError(
                f"outdir {outdir!r} is the shard folder {folder!r}: the merge would "
                "overwrite that shard; give the merged run a folder of its own"
            )


def _differences(first: dict, other: dict) -> list[str]:
    return [
        f"{key}: {first.get(key)!r} against {other.get(key)!r}"
        for key in sorted(set(first) | set(other))
        if key not in SHARD_SETTINGS and first.get(key) != other.get(key)
    ]


def merge(outdir: str, shard_folders, log=None, keep_inputs: bool = False) -> dict:
    """Writes the mosaic and run.json of the whole run into `outdir`.

    Args:
        outdir: The output folder of the merged run.
        shard_folders: The shards' output folders, in any order.
        log: Stream for warnings. Defaults to sys.stderr.
        keep_inputs: Also write the merged inputs.npz, as `job.run` does. Defaults to False.

    Returns:
        The run record written as run.json.

    Raises:
        UsageError: For shards of other settings, a missing or repeated shard, a shard
            folder without its finished files, filters that no shard holds, or an `outdir`
            that is a shard's own folder; nothing is written then.
    """
    log = log if log is not None else sys.stderr
    artifacts.check_outdir(outdir)
    shard_folders = list(shard_folders)
    _check_not_a_shard_folder(outdir, shard_folders)
    shards = [(folder, *_read_shard(folder)) for folder in shard_folders]
    if not shards:
        raise errors.UsageError("no shard folders given; give each shard's --outdir")
    first_folder, first, _ = shards[0]
    for folder, record, _ in shards[1:]:
        different = _differences(first["settings"], record["settings"]) + [
            f"{key}: {first.get(key)!r} against {record.get(key)!r}"
            for key in SHARED_FACTS
            if first.get(key) != record.get(key)
        ]
        if different:
            raise errors.UsageError(
                f"shard {folder!r} was made with other settings than {first_folder!r} "
                f"({'; '.join(different[:3])}); merge the shards of one run"
            )
    settings = Settings.create(first["settings"], shard_index=0)
    by_index = {}
    for folder, record, arrays in shards:
        index = record["settings"]["shard_index"]
        if index in by_index:
            raise errors.UsageError(
                f"shard {index} is given twice: {by_index[index][0]!r} and {folder!r}"
            )
        by_index[index] = (folder, arrays)
    missing = [index for index in range(settings.num_shards) if index not in by_index]
    if missing:
        raise errors.UsageError(
            f"shard {missing[0]} of {settings.num_shards} is missing (shard_index="
            f"{missing[0]}); run it, or give its folder"
        )
    chunks = [render.ChunkResult(**by_index[index][1]) for index in range(settings.num_shards)]
    expected = pipeline.choose_filter_indices(settings, first["layer_filters"])
    held = [int(key) for chunk in chunks for key in chunk.keys]
    if held != expected:
        absent = sorted(set(expected) - set(held))
        raise errors.UsageError(
            f"the shards hold {len(held)} of the run's {len(expected)} filters; missing: "
            f"{absent[:10]}; rerun the shards that hold them"
        )
    merged = settings.replace(num_shards=1)
    model_range = input_range.InputRange.from_record(first.get("input_range"))
    result = pipeline.collect(chunks, first["layer"], merged, model_range)
    facts = {key: first[key] for key in SHARED_FACTS}
    rendered = job.render_result(merged, result, facts, log)
    record = job.write_layer(outdir, merged, rendered, keep_inputs)
    record.update(
        notes=[f"merged from {settings.num_shards} shards"],
        complete=True,
        interrupted=None,
        seconds=round(sum(shard[1].get("seconds", 0.0) for shard in shards), 3),
    )
    artifacts.write_json(os.path.join(outdir, job.RUN_FILE), record)
    return record
