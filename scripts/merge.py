"""Joins the outputs of sharded keras-filters jobs into the files of one unsharded run.

Each job ran the same command with --config.num_shards=N --config.shard_index=K into its own
--outdir (array jobs on any scheduler); the merge reads their folders and writes the mosaic
and run.json of the whole run, the same files as an unsharded run:

    python scripts/merge.py --outdir=out/whole out/shard_0 out/shard_1 out/shard_2

Runtime: seconds (deprocessing and the mosaic). Output: OUTDIR/mosaic.png and OUTDIR/run.json.
"""

import os
import sys

from keras_filters import startup

PROGRAM = "merge"

startup.import_backend_for_command(PROGRAM)

from absl import flags  # noqa: E402

from keras_filters import command_line  # noqa: E402

_OUTDIR = flags.DEFINE_string("outdir", None, "Folder for the merged mosaic and run.json.")


def main(argv) -> None:
    """Merges the shard folders given as arguments."""
    from keras_filters import errors
    from keras_filters.job import merge

    if _OUTDIR.value is None:
        print(
            f"{PROGRAM}: error: --outdir is missing: where to write the merged run", file=sys.stderr
        )
        sys.exit(2)
    try:
        record = merge.merge(_OUTDIR.value, argv[1:])
    except errors.UsageError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(record["summary"])
    # A run with no filter to show (all dead or failed, with selection="top") has no mosaic.
    written = record["mosaic"]["file"] or "run.json"
    print(f"wrote {os.path.join(_OUTDIR.value, written)} ({record['notes'][0]})")


if __name__ == "__main__":
    command_line.run_script(main, PROGRAM, command_line.script_flags_parser(PROGRAM))
