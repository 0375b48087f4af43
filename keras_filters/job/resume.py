"""Keeps a run's finished chunks under `outdir/.progress`, so that an interrupted run resumes.

The folder is hidden, so that the outdir keeps its contract (the mosaic is the largest PNG,
next to one JSON). It holds `progress.json` (what identifies the run, its filters and chunk
layout, the chunks done) and one `chunk_NNNNN.npz` per finished chunk, each written atomically.
A run that finishes removes the folder.
"""

import glob
import hashlib
import json
import numbers
import os
import shutil
import zipfile

import numpy as np

from keras_filters import errors
from keras_filters import settings as settings_lib
from keras_filters.job import artifacts
from keras_filters.optvis import render

PROGRESS_FOLDER = ".progress"
RECORD_FILE = "progress.json"
RECORD_VERSION = 2

# Settings that change how fast a run goes or what else it writes, not what it computes.
# batch_size is among them because a resumed run keeps the chunk layout of the run it continues.
EXECUTION_SETTINGS = ("batch_size", "progress", "save_tiles")

CHUNK_FIELDS = ("keys", "inputs", "losses", "loss_history", "failed_step")
# What np.load raises for a chunk file cut short (a kill -9 mid-write, a full disk).
UNREADABLE_CHUNK = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def weights_digest(weights) -> str:
    """SHA-256 of the values of `weights` (a model's variables), in order."""
    import keras

    digest = hashlib.sha256()
    for weight in weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _plain(value, default):
    """A setting's value in the type its default declares, so that 1 and 1.0 compare equal."""
    if isinstance(default, float) and isinstance(value, numbers.Real):
        value = float(value)
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)  # JSON has no inf or NaN; the record must read back equal.
    if isinstance(value, (tuple, list)):
        return [_plain(item, None) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def run_identity(settings: dict, weights_sha256: str, versions: dict) -> dict:
    """Everything that decides a run's results: the settings that affect them, the weights of
    the layers that run, and the library versions."""
    defaults = settings_lib.default_settings()
    return {
        "settings": {
            key: _plain(value, defaults.get(key))
            for key, value in sorted(settings.items())
            if key not in EXECUTION_SETTINGS
        },
        "weights_sha256": weights_sha256,
        "versions": dict(versions),
    }


def _differences(recorded: dict, current: dict) -> str:
    """The first few ways in which two run identities differ, for a message."""
    found = []
    recorded_settings, current_settings = recorded["settings"], current["settings"]
    for key in sorted(set(recorded_settings) | set(current_settings)):
        if recorded_settings.get(key) != current_settings.get(key):
            found.append(
                f"{key}: {json.dumps(recorded_settings.get(key))} there, "
                f"{json.dumps(current_settings.get(key))} now"
            )
    if recorded["weights_sha256"] != current["weights_sha256"]:
        found.append("the model's weights differ")
    for name in sorted(set(recorded["versions"]) | set(current["versions"])):
        if recorded["versions"].get(name) != current["versions"].get(name):
            there, now = recorded["versions"].get(name), current["versions"].get(name)
            found.append(f"{name} {there} there, {now} now")
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return "; ".join(found[:3]) + more


class ProgressStore:
    """The `.progress` folder of one outdir.

    Args:
        outdir: The run's output folder.
        part: The subfolder of one layer of a run of several panel layers ("panel_00", …);
            empty for a one-layer run. Defaults to "".
    """

    def __init__(self, outdir: str, part: str = ""):
        self.outdir = outdir
        self.part = part
        self.root = os.path.join(outdir, PROGRESS_FOLDER)
        self.folder = os.path.join(self.root, part) if part else self.root
        self.record_path = os.path.join(self.folder, RECORD_FILE)

    def read_record(self) -> dict | None:
        """The progress record of an unfinished run in the outdir, or None if there is none.

        Raises:
            UsageError: If the record cannot be read.
        """
        if not os.path.exists(self.record_path):
            return None
        try:
            with open(self.record_path, encoding="utf-8") as file:
                record = json.load(file)
            if record.get("version") != RECORD_VERSION:
                raise ValueError(f"record version {record.get('version')!r}")
            _check_record(record)
            return record
        except (OSError, ValueError, AttributeError) as error:
            raise errors.UsageError(
                f"outdir {self.outdir!r} holds an unfinished run whose progress record "
                f"{self.record_path!r} cannot be read ({error}); delete {self.folder!r} to start "
                "over"
            ) from None

    def check_same_run(self, record: dict, identity: dict) -> None:
        """Refuses to go on with a run whose settings, weights or versions differ.

        Raises:
            UsageError: Naming what differs.
        """
        if record["identity"] != identity:
            raise errors.UsageError(
                f"outdir {self.outdir!r} holds an unfinished run with other settings "
                f"({_differences(record['identity'], identity)}); rerun with its settings "
                f"(keras-filters --resume takes them), use another --outdir, or delete "
                f"{self.folder!r} to start over"
            )

    def start(self, identity: dict, settings: dict, filter_indices, batch_size: int) -> dict:
        """Writes the record of a new run: the first file the run writes. Chunk files left by a
        run whose record is gone are removed first: they may hold other settings' results."""
        for path in glob.glob(os.path.join(self.folder, "chunk_*.npz")):
            os.remove(path)
        record = {
            "version": RECORD_VERSION,
            "identity": identity,
            "settings": {key: _plain(value, None) for key, value in settings.items()},
            "filter_indices": [int(index) for index in filter_indices],
            "batch_size": int(batch_size),
            "chunks_done": [],
            "filters_done": 0,
        }
        artifacts.write_json(self.record_path, record)
        return record

    def _chunk_path(self, number: int) -> str:
        return os.path.join(self.folder, f"chunk_{number:05d}.npz")

    def load_chunks(self, layout) -> dict:
        """The saved results of the chunks of `layout` that are done: {chunk number: result}.

        A chunk file that cannot be read or holds other filters is left out (and recomputed).
        """
        done = {}
        for number, chunk_filters in enumerate(layout):
            path = self._chunk_path(number)
            if not os.path.exists(path):
                continue
            try:
                with np.load(path, allow_pickle=False) as data:
                    chunk = render.ChunkResult(**{field: data[field] for field in CHUNK_FIELDS})
            except UNREADABLE_CHUNK:
                continue
            if list(chunk.keys) == list(chunk_filters):
                done[number] = chunk
        return done

    def save_chunk(self, record: dict, number: int, chunk: render.ChunkResult) -> None:
        """Saves a finished chunk, then counts it in the record."""
        artifacts.write_npz(
            self._chunk_path(number), **{field: getattr(chunk, field) for field in CHUNK_FIELDS}
        )
        if number not in record["chunks_done"]:
            record["chunks_done"] = sorted(record["chunks_done"] + [number])
            record["filters_done"] = int(record["filters_done"]) + len(chunk.keys)
        artifacts.write_json(self.record_path, record)

    def remove(self) -> None:
        """Removes the progress folder (every part) once the run's files are written."""
        shutil.rmtree(self.root, ignore_errors=True)


def _check_record(record: dict) -> None:
    """Raises ValueError unless `record` has the fields, and their types, that a resume reads."""
    if not isinstance(record.get("identity"), dict) or not isinstance(record.get("settings"), dict):
        raise ValueError("no identity or settings")
    indices, batch_size = record.get("filter_indices"), record.get("batch_size")
    if not isinstance(indices, list) or not all(type(index) is int for index in indices):
        raise ValueError(f"filter_indices {indices!r}")
    if type(batch_size) is not int or batch_size < 1:
        raise ValueError(f"batch_size {batch_size!r}")
    chunks_done, filters_done = record.get("chunks_done"), record.get("filters_done")
    if not isinstance(chunks_done, list) or type(filters_done) is not int:
        raise ValueError("no chunks_done or filters_done")


def stored_parts(outdir: str) -> list[str]:
    """The parts of `outdir`'s progress folder that hold a record: "" for a one-layer run's,
    "panel_00", "panel_01", … for a run of several panel layers."""
    root = os.path.join(outdir, PROGRESS_FOLDER)
    parts = [""] if os.path.exists(os.path.join(root, RECORD_FILE)) else []
    found = glob.glob(os.path.join(root, "*", RECORD_FILE))
    return parts + sorted(os.path.basename(os.path.dirname(path)) for path in found)


def check_layout(outdir: str, parts: list[str]) -> None:
    """Refuses a run whose progress parts are not those of the unfinished run in `outdir`: a
    one-layer run where a run of panel layers stopped, or the reverse. Each would start over
    and, once finished, remove the other's saved chunks.

    Args:
        outdir: The run's output folder.
        parts: The parts this run keeps (see `stored_parts`).

    Raises:
        UsageError: Naming what the outdir holds.
    """
    stored = stored_parts(outdir)
    if stored and ("" in stored) != ("" in parts):
        kind = "one layer" if "" in stored else "several panel layers"
        raise errors.UsageError(
            f"outdir {outdir!r} holds an unfinished run of {kind} (panel_layers differs); rerun "
            "with its settings (keras-filters --resume takes them), use another --outdir, or "
            f"delete {os.path.join(outdir, PROGRESS_FOLDER)!r} to start over"
        )


def refuse_other_unfinished_run(outdir: str, settings: dict, owner: str) -> None:
    """Refuses `outdir` if it holds an unfinished run of settings other than `settings` (those
    that decide the results). Lets a command that runs many folders (the atlas, reproduce)
    refuse before it runs any of them, not once the folders before had run again.

    Args:
        outdir: One folder of the command's runs.
        settings: The settings its run will have.
        owner: What the folder holds, for the message ("figure 'kerasio'", "layer 'conv3'").

    Raises:
        UsageError: Naming the owner, the folder and what differs. An unreadable progress
            record is left to the run itself, which reports it in the same words.
    """
    try:
        recorded = recorded_settings(outdir)
    except errors.UsageError:
        return
    if recorded is None:
        return
    no_weights = {"weights_sha256": "", "versions": {}}
    differences = _differences(
        run_identity(recorded, **no_weights), run_identity(settings, **no_weights)
    )
    if differences:
        raise errors.UsageError(
            f"{owner}: {outdir!r} holds an unfinished run with other settings ({differences}); "
            "rerun with those settings to finish it, use another outdir, or delete "
            f"{os.path.join(outdir, PROGRESS_FOLDER)!r} to start over"
        )


def recorded_settings(outdir: str) -> dict | None:
    """The settings of the unfinished run in `outdir` (for --resume), or None if there is none.

    Raises:
        UsageError: If the progress record cannot be read.
    """
    record = ProgressStore(outdir).read_record()
    parts = sorted(glob.glob(os.path.join(outdir, PROGRESS_FOLDER, "*", RECORD_FILE)))
    if record is None and parts:  # A run of several panels keeps one part per layer.
        record = ProgressStore(outdir, os.path.basename(os.path.dirname(parts[0]))).read_record()
    if record is None:
        return None
    return dict(record["settings"])
