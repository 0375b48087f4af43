"""Writes the run's files atomically (a temporary file in the same folder, then a rename), and
checks before a run that its output folder can be written."""

import glob
import json
import os
import tempfile

import numpy as np
from PIL import Image

from keras_filters import errors

TEMPORARY_PREFIX = ".tmp-"


def remove_temporaries(*folders: str) -> None:
    """Removes the temporary files that `save_atomically` left in `folders` when its process was
    killed mid-write (kill -9, a power cut): they are never renamed, and a finished run must
    leave only its own files. Missing folders are passed over."""
    for folder in folders:
        for path in glob.glob(os.path.join(glob.escape(folder), TEMPORARY_PREFIX + "*")):
            if os.path.isfile(path):
                os.remove(path)


def save_atomically(path: str, save) -> None:
    """Calls `save(temporary_path)` for a temporary file next to `path`, then renames it there.

    The temporary name ends like `path`, so writers that choose the format by the suffix (Keras'
    `save`, `save_weights`) write the right one. A failure leaves no file behind.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=folder, prefix=TEMPORARY_PREFIX, suffix=os.path.basename(path)
    )
    os.close(handle)
    try:
        save(temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _atomic_write(path: str, write) -> None:
    """Calls `write(file)` on a temporary file next to `path`, synced, then renames it."""

    def save(temporary: str) -> None:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())

    save_atomically(path, save)


def image_from_array(pixels: np.ndarray) -> Image.Image:
    """A PIL image from a uint8 (height, width, channels) array: RGB, RGBA or greyscale.

    Other channel counts (2, or more than 4) are shown as greyscale of their mean.
    """
    pixels = np.asarray(pixels, dtype=np.uint8)
    channels = pixels.shape[-1] if pixels.ndim == 3 else 1
    if channels in (3, 4):
        return Image.fromarray(pixels, "RGB" if channels == 3 else "RGBA")
    if channels != 1:
        pixels = pixels.mean(axis=-1, keepdims=True).astype(np.uint8)
    return Image.fromarray(pixels.reshape(pixels.shape[:2]), "L")


def write_png(path: str, pixels: np.ndarray) -> None:
    """Writes a uint8 image array as PNG, atomically."""
    image = image_from_array(pixels)
    _atomic_write(path, lambda file: image.save(file, format="PNG"))


def write_json(path: str, data) -> None:
    """Writes `data` as indented JSON (NaN written as null), atomically."""
    text = json.dumps(_json_safe(data), indent=2, sort_keys=False, allow_nan=False) + "\n"
    _atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def plain_json(value):
    """`value` as `write_json` then `read_json` give it back (tuples become lists, …), for
    comparing a value with one read from a file."""
    return json.loads(json.dumps(_json_safe(value)))


def read_json(path: str):
    """The data of a JSON file that `write_json` wrote."""
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def write_npz(path: str, **arrays) -> None:
    """Writes numpy arrays into one uncompressed .npz file, atomically."""
    _atomic_write(path, lambda file: np.savez(file, **arrays))


def write_text(path: str, text: str) -> None:
    """Writes UTF-8 text, atomically."""
    _atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def _json_safe(value):
    """Converts numpy values and non-finite floats (→ None) so that JSON can hold them."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def check_output_file(path: str, suffix: str = "") -> None:
    """Checks that a file can be written at `path`, without creating anything (a bad command
    must leave nothing behind, and should fail before its work, not after).

    Args:
        path: The file to write.
        suffix: The ending the file must have (".keras"); empty for any. Defaults to "".

    Raises:
        UsageError: For another ending, a path that is a folder, or a folder that is a file,
            lies under a file, or cannot be written.
    """
    if not isinstance(path, str) or not path.strip():
        raise errors.UsageError(f"output={path!r} is not a file path")
    if not path.endswith(suffix):
        raise errors.UsageError(f"output={path!r} must end in {suffix!r}")
    if os.path.isdir(path):
        raise errors.UsageError(f"output={path!r} is a folder, not a file")
    try:
        check_outdir(os.path.dirname(os.path.abspath(path)))
    except errors.UsageError as error:
        raise errors.UsageError(f"output={path!r} cannot be written: {error}") from None


def check_outdir(outdir: str) -> None:
    """Checks that `outdir` is a folder that can be written, or can be created, without
    creating it (a bad run must leave nothing behind).

    Raises:
        UsageError: If `outdir` is a file, lies under a file, or cannot be written.
    """
    if not isinstance(outdir, str) or not outdir.strip():
        raise errors.UsageError(f"outdir={outdir!r} is not a folder path")
    path = os.path.abspath(outdir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise errors.UsageError(f"outdir {outdir!r} is a file, not a folder")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise errors.UsageError(f"outdir {outdir!r} cannot be created: {existing!r} is a file")
    try:
        # Permission bits do not tell for root or on read-only file systems: try for real.
        os.rmdir(tempfile.mkdtemp(prefix=".keras-filters-probe-", dir=existing))
    except OSError as error:
        where = "" if existing == path else f" (in {existing!r})"
        raise errors.UsageError(
            f"outdir {outdir!r} is not writable{where}: {error.strerror or error}"
        ) from None
