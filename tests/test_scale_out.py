"""Scale-out: replicas, workers and shards give the images of a one-device run.

Each distributed run happens in fresh processes: TensorFlow splits the host CPU into logical
devices, and a cluster's strategy starts, only before its runtime starts; JAX fixes its host
device count at start.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT, command_line, run_command

from keras_filters import errors
from keras_filters.job import merge
from keras_filters.job import run as job
from keras_filters.settings import Settings

# tf.distribute strategies are the TensorFlow backend's (the command runs on this process's).
tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf.distribute strategies run under the TensorFlow backend",
)

SMALL = [
    "--config=quickstart_faithful",
    "--config.filter_indices=(0, 5, 9, 12, 3)",  # an odd number of filters
    "--config.batch_size=4",
    "--config.num_steps=3",
    "--config.image_size=24",
    "--config.save_tiles=true",
]
TWO_CPUS = ["--config.strategy=mirrored", '--config.devices=("/cpu:0", "/cpu:1")']

API_SCRIPT = """
import sys
import numpy as np
from keras_filters import distribution
if sys.argv[1] == "tensorflow":
    distribution.split_host_cpu(2)
import keras_filters
settings = dict(image_size=24, num_steps=3, batch_size=4, progress=False, step_size=10.0,
                gradient_normalization="l2", init_low=0.4, init_high=0.6)
filters = [0, 5, 9, 12, 3]
one = keras_filters.visualize_filters("demo", "conv3", filters, **settings)
both = keras_filters.visualize_filters("demo", "conv3", filters, strategy="mirrored", **settings)
# A second distributed call in the same process (a notebook) reuses the strategy.
again = keras_filters.visualize_filters("demo", "conv3", filters, strategy="mirrored", **settings)
np.savez(sys.argv[2], one=one.inputs, both=both.inputs, one_losses=one.losses,
         both_losses=both.losses, again=again.inputs)
"""


def run_python(script: str, *args, environment=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, **(environment or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_mirrored_gives_the_default_images_through_the_api(backend, tmp_path):
    environment = {"KERAS_BACKEND": backend}
    if backend == "jax":
        environment.update(
            JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2"
        )
    finished = run_python(API_SCRIPT, backend, str(tmp_path / "out.npz"), environment=environment)
    assert finished.returncode == 0, finished.stderr[-3000:]
    arrays = np.load(tmp_path / "out.npz")
    assert arrays["one"].shape == (5, 24, 24, 3)
    np.testing.assert_allclose(arrays["both"], arrays["one"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(arrays["both_losses"], arrays["one_losses"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(arrays["again"], arrays["both"])


@tensorflow_only
@pytest.mark.end_to_end
def test_mirrored_gives_the_default_mosaic_through_the_command_line(tmp_path):
    one = run_command(*SMALL, f"--outdir={tmp_path / 'one'}")
    both = run_command(*SMALL, *TWO_CPUS, f"--outdir={tmp_path / 'both'}")
    assert one.returncode == 0, one.stderr
    assert both.returncode == 0, both.stderr
    record = json.loads((tmp_path / "both" / "run.json").read_text())
    assert record["settings"]["strategy"] == "mirrored"
    for index in (0, 5, 9, 12, 3):
        name = f"tiles/filter_{index:04d}.png"
        assert (tmp_path / "both" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@tensorflow_only
@pytest.mark.end_to_end
def test_two_workers_on_loopback_give_the_single_process_mosaic_written_once(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    outdir = tmp_path / "cluster"
    arguments = [*SMALL, "--config.strategy=multi_worker", f"--outdir={outdir}"]
    workers = []
    try:
        for index in range(2):
            config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            workers.append(
                subprocess.Popen(
                    command_line(*arguments),
                    cwd=REPO_ROOT,
                    env=dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CONFIG=json.dumps(config)),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        outputs = [worker.communicate(timeout=240) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
    assert "the chief wrote the files" in outputs[1][0]
    single = run_command(*SMALL, f"--outdir={tmp_path / 'single'}")
    assert single.returncode == 0, single.stderr
    assert (outdir / "mosaic.png").read_bytes() == (tmp_path / "single" / "mosaic.png").read_bytes()
    assert sorted(os.listdir(outdir)) == ["mosaic.png", "run.json", "tiles"]


def run_merge(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "merge.py"), *args],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=300,
    )


SHARDED = ["--config=quickstart_faithful", "--config.max_filters=20", "--config.batch_size=4"]


@pytest.mark.end_to_end
def test_three_shards_merge_into_the_unsharded_mosaic(tmp_path):
    for index in range(3):
        shard = run_command(
            *SHARDED,
            "--config.num_shards=3",
            f"--config.shard_index={index}",
            f"--outdir={tmp_path / f'shard_{index}'}",
        )
        assert shard.returncode == 0, shard.stderr
    whole = run_command(*SHARDED, f"--outdir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr
    shards = [str(tmp_path / f"shard_{index}") for index in (2, 0, 1)]  # any order
    merged = run_merge(f"--outdir={tmp_path / 'merged'}", *shards)
    assert merged.returncode == 0, merged.stderr
    assert (tmp_path / "merged" / "mosaic.png").read_bytes() == (
        tmp_path / "whole" / "mosaic.png"
    ).read_bytes()
    merged_record = json.loads((tmp_path / "merged" / "run.json").read_text())
    whole_record = json.loads((tmp_path / "whole" / "run.json").read_text())
    assert merged_record["filters"] == whole_record["filters"]
    assert merged_record["settings"] == whole_record["settings"]

    missing = run_merge(f"--outdir={tmp_path / 'missing'}", shards[0], shards[1])
    assert missing.returncode == 2 and not (tmp_path / "missing").exists()
    assert missing.stderr.strip().splitlines() == [
        "merge: error: shard 1 of 3 is missing (shard_index=1); run it, or give its folder"
    ]
    other = run_command(
        *SHARDED,
        "--config.num_shards=3",
        "--config.shard_index=1",
        "--config.seed=7",
        f"--outdir={tmp_path / 'other'}",
    )
    assert other.returncode == 0, other.stderr
    mixed = run_merge(f"--outdir={tmp_path / 'mixed'}", shards[0], str(tmp_path / "other"))
    assert mixed.returncode == 2 and not (tmp_path / "mixed").exists()
    [line] = mixed.stderr.strip().splitlines()
    assert "other" in line and "seed: 0 against 7" in line


def test_a_shard_without_a_chunk_finishes_empty_and_merges_into_the_unsharded_run(tmp_path):
    # SMALL's 5 filters make 2 chunks of 4; of 3 shards, shard 0 gets neither.
    empty = tmp_path / "shard_0"
    finished = run_command(
        *SMALL, "--config.num_shards=3", "--config.shard_index=0", f"--outdir={empty}"
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr.strip().splitlines() == [
        "keras-filters: shard 0 of 3 has no filters of conv3 to run: its 5 filters make 2 "
        "chunks of batch_size=4 for 3 shards; writing an empty shard for the merge"
    ]
    assert finished.stdout.splitlines() == ["0 filters of conv3: 0 alive, 0 dead, 0 failed"]
    assert sorted(os.listdir(empty)) == [job.RUN_FILE, job.SHARD_FILE]  # No mosaic, no tiles.
    record = json.loads((empty / job.RUN_FILE).read_text())
    assert record["complete"] is True and record["interrupted"] is None
    assert record["filters"] == [] and record["mean_loss"] is None
    assert record["mosaic"] == {"file": None, "rows": 0, "cols": 0, "filters": [], "warning": None}
    with np.load(empty / job.SHARD_FILE) as arrays:
        shapes = {field: arrays[field].shape for field in job.SHARD_FIELDS}
    assert shapes == {
        "keys": (0,),
        "inputs": (0, 24, 24, 3),
        "losses": (0,),
        "loss_history": (3, 0),  # num_steps
        "failed_step": (0,),
    }
    # The other shards and the unsharded run, with the settings the command recorded.
    quiet = open(os.devnull, "w")
    for index in (1, 2):
        settings = Settings.create(record["settings"], shard_index=index)
        job.run(str(tmp_path / f"shard_{index}"), settings, log=quiet)
    job.run(str(tmp_path / "whole"), Settings.create(record["settings"], num_shards=1), log=quiet)
    shards = [str(tmp_path / f"shard_{index}") for index in (0, 2, 1)]  # the empty one first
    merge.merge(str(tmp_path / "merged"), shards, log=quiet)
    merged = json.loads((tmp_path / "merged" / job.RUN_FILE).read_text())
    whole = json.loads((tmp_path / "whole" / job.RUN_FILE).read_text())
    assert [entry["index"] for entry in merged["filters"]] == [0, 5, 9, 12, 3]
    for key in ("settings", "filters", "mosaic", "layer", "image_sizes", "summary"):
        assert merged[key] == whole[key], key
    assert sorted(os.listdir(tmp_path / "merged")) == sorted(os.listdir(tmp_path / "whole"))
    for name in ["mosaic.png"] + [f"tiles/filter_{index:04d}.png" for index in (0, 5, 9, 12, 3)]:
        assert (tmp_path / "merged" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


# 5 filters in 3 chunks of 2 for 2 shards (shard 0: 0 and 5; shard 1: 9, 12 and 3); every
# filter counts as dead and "top" shows only live ones, so the 3x3 grid is left with none.
DEAD_SHARDS = dict(
    model="demo",
    weights="none",
    layer="conv3",
    image_size=24,
    filter_indices=(0, 5, 9, 12, 3),
    batch_size=2,
    num_steps=2,
    grid_rows=3,
    grid_cols=3,
    selection="top",
    dead_threshold=1e9,
    save_tiles=True,
    progress=False,
    num_shards=2,
)


@pytest.fixture(scope="module")
def dead_shards(tmp_path_factory):
    """The folders of DEAD_SHARDS' two finished shards, in shard order (do not change them)."""
    folder = tmp_path_factory.mktemp("dead_shards")
    quiet = open(os.devnull, "w")
    shards = [str(folder / f"shard_{index}") for index in range(2)]
    for index, shard in enumerate(shards):
        job.run(shard, Settings.create(DEAD_SHARDS, shard_index=index), log=quiet)
    return shards


def test_the_merge_script_warns_on_stderr_and_names_the_run_json_where_there_is_no_mosaic(
    tmp_path, dead_shards
):
    merged = run_merge(f"--outdir={tmp_path / 'merged'}", *reversed(dead_shards))
    assert merged.returncode == 0, merged.stderr
    assert merged.stderr.splitlines() == [
        "keras-filters: warning: no filters to show for a 3x3 grid (all dead or failed)"
    ]
    assert merged.stdout.splitlines() == [
        "5 filters of conv3: 0 alive, 5 dead, 0 failed",
        f"wrote {tmp_path / 'merged' / job.RUN_FILE} (merged from 2 shards)",
    ]
    assert sorted(os.listdir(tmp_path / "merged")) == [job.RUN_FILE, job.TILES_FOLDER]
    record = json.loads((tmp_path / "merged" / job.RUN_FILE).read_text())
    assert [entry["index"] for entry in record["filters"]] == [0, 5, 9, 12, 3]
    assert record["mosaic"]["file"] is None and record["mosaic"]["filters"] == []


def cut_short(path):
    with open(path, "rb") as file:
        start = file.read(300)
    with open(path, "wb") as file:
        file.write(start)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda shard: open(shard / job.SHARD_FILE, "wb").close(), "No data left in file"),
        (lambda shard: cut_short(shard / job.SHARD_FILE), "File is not a zip file"),
        (
            lambda shard: (shard / job.RUN_FILE).write_text("[]"),
            "its run.json is not a shard's run record (it lacks settings)",
        ),
        (
            lambda shard: (shard / job.RUN_FILE).write_text('{"settings": {"shard_index": 1}}'),
            "its run.json is not a shard's run record (it lacks model, layer, layer_filters, "
            "image_sizes, batch_size, input_range, settings.num_shards)",
        ),
    ],
    ids=["empty shard.npz", "truncated shard.npz", "run.json a list", "run.json of no run"],
)
def test_the_merge_refuses_a_shard_cut_short_in_one_line(tmp_path, dead_shards, damage, reason):
    # A copy of a shard folder that stopped part way, or files that no shard wrote.
    damaged = tmp_path / "shard_1"
    shutil.copytree(dead_shards[1], damaged)
    damage(damaged)
    with pytest.raises(errors.UsageError) as refused:
        merge.merge(str(tmp_path / "merged"), [str(damaged), dead_shards[0]])
    assert str(refused.value).startswith(f"shard folder {str(damaged)!r} holds no finished shard")
    assert str(refused.value).endswith(reason)
    assert not (tmp_path / "merged").exists()


def test_the_merge_refuses_to_write_into_a_shard_folder(tmp_path, dead_shards):
    shards = [str(tmp_path / f"shard_{index}") for index in range(2)]
    for source, copy in zip(dead_shards, shards, strict=True):
        shutil.copytree(source, copy)
    before = {name: (tmp_path / name).read_bytes() for name in files_under(tmp_path)}
    with pytest.raises(errors.UsageError) as refused:
        merge.merge(os.path.join(shards[1], "."), shards)
    assert str(refused.value) == (
        f"outdir {os.path.join(shards[1], '.')!r} is the shard folder {shards[1]!r}: the merge "
        "would overwrite that shard; give the merged run a folder of its own"
    )
    assert {name: (tmp_path / name).read_bytes() for name in files_under(tmp_path)} == before


def files_under(folder) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


def test_a_shard_refuses_the_mosaic_that_the_unsharded_run_refuses(tmp_path):
    # 5 filters in a 2x3 grid, 11600 px apart: over MAX_MOSAIC_PIXELS. A shard's own 2 filters
    # (1x2) would fit, but the merge draws the mosaic of all 5.
    settings = Settings.create(DEAD_SHARDS, grid_rows=0, grid_cols=0, margin=11600)
    refusal = (
        "the mosaic would be 11648x23272 px (2x3 tiles of 24 px, margin=11600), more than "
        "268435456 pixels; use a smaller margin, grid or image_size"
    )
    for changes in ({"num_shards": 1}, {"shard_index": 0}, {"shard_index": 1}):
        with pytest.raises(errors.UsageError) as refused:
            job.run(str(tmp_path / "run"), settings.replace(**changes))
        assert str(refused.value) == refusal, changes
        assert not (tmp_path / "run").exists()


@tensorflow_only
def test_tpu_where_there_is_none_names_the_address_setting(tmp_path):
    finished = run_command(
        "--config=quickstart_faithful", "--config.strategy=tpu", f"--outdir={tmp_path}"
    )
    assert finished.returncode == 2
    [line] = finished.stderr.strip().splitlines()
    assert line.startswith("keras-filters: error: --config.strategy='tpu' found no TPU at ")
    assert "--config.tpu_address=''" in line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
@pytest.mark.end_to_end
def test_benchmark_runs_on_cpu_under_either_backend_with_one_command(backend, tmp_path):
    environment = dict(os.environ, PYTHONPATH=REPO_ROOT, KERAS_BACKEND=backend)
    environment["JAX_PLATFORMS"] = "cpu"
    finished = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "scripts", "benchmark.py"),
            "--config=configs/quickstart_faithful.py",
            "--config.max_filters=3",
            "--config.num_steps=2",
            "--config.image_size=32",
            "--matmul_size=64",
            "--matmul_repeats=1",
            f"--outdir={tmp_path}",
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads((tmp_path / "benchmark.json").read_text())
    assert report["machine"]["backend"] == backend
    reference, float32, mixed = report["runs"]
    assert reference["traces"] == 3  # one trace (TF) or compilation (JAX) per filter
    assert float32["losses_vs_first_run"]["mean_relative_difference"] < 1e-3
    assert mixed["losses_vs_first_run"]["mean_relative_difference"] < 0.03
    assert report["flops"]["step_per_image"] == 2 * report["flops"]["forward_per_image"] > 0


def test_jax_device_names_are_checked():
    script = (
        "from keras_filters import distribution\n"
        "placement = distribution.make_placement('mirrored', ('cpu:0', 'cpu:1'), backend='jax')\n"
        "print(placement.num_replicas)\n"
        "try:\n"
        "    distribution.make_placement('mirrored', ('gpu:0',), backend='jax')\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    finished = run_python(
        script,
        environment={
            "KERAS_BACKEND": "jax",
            "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        },
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.splitlines() == [
        "2",
        "devices=('gpu:0',) names 'gpu:0', which JAX does not have; choose from: cpu:0, cpu:1",
    ]


@tensorflow_only
def test_tpu_address_where_nothing_answers_fails_at_once(tmp_path):
    finished = run_command(
        "--config=quickstart_faithful",
        "--config.strategy=tpu",
        "--config.tpu_address=grpc://127.0.0.1:9",
        f"--outdir={tmp_path / 'out'}",
        timeout=60,
    )
    assert finished.returncode == 2
    [line] = finished.stderr.strip().splitlines()
    assert "--config.tpu_address='grpc://127.0.0.1:9'" in line and "refused" in line.lower()
