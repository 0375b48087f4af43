"""What a kill -9, a full disk or a hand edit leaves in an outdir: a chunk file cut short, a
progress record that is not one, stray temporary files, another kind of run's progress. Each
is recomputed, removed or refused in one line; none ends in a traceback or a wrong mosaic."""

import json
import os

import numpy as np
import pytest

from keras_filters import errors
from keras_filters.job import artifacts, resume
from keras_filters.job import run as runner
from keras_filters.optvis import render

QUICK = dict(
    model="demo",
    weights="none",
    layer="conv1",
    image_size=16,
    max_filters=4,
    batch_size=2,
    num_steps=2,
    progress=False,
)


def started_store(outdir) -> tuple[resume.ProgressStore, dict]:
    store = resume.ProgressStore(str(outdir))
    record = store.start({"settings": {}}, {"layer": "conv1"}, [0, 1, 2, 3], 2)
    return store, record


def a_chunk(keys) -> render.ChunkResult:
    count = len(keys)
    return render.ChunkResult(
        keys=np.array(keys),
        inputs=np.zeros((count, 4, 4, 3), np.float32),
        losses=np.ones(count, np.float32),
        loss_history=np.ones((count, 2), np.float32),
        failed_step=np.full(count, -1),
    )


@pytest.mark.parametrize("cut", ["empty", "half"])
def test_a_chunk_file_cut_short_is_recomputed_not_a_traceback(tmp_path, cut):
    store, record = started_store(tmp_path)
    store.save_chunk(record, 0, a_chunk([0, 1]))
    store.save_chunk(record, 1, a_chunk([2, 3]))
    path = os.path.join(store.folder, "chunk_00001.npz")
    size = os.path.getsize(path)
    with open(path, "r+b") as file:
        file.truncate(0 if cut == "empty" else size // 2)
    done = store.load_chunks([[0, 1], [2, 3]])
    assert sorted(done) == [0]  # The cut chunk runs again.
    assert list(done[0].keys) == [0, 1]


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda record: record.pop("identity"), "no identity or settings"),
        (lambda record: record.update(filter_indices="abc"), "filter_indices 'abc'"),
        (lambda record: record.update(batch_size=0), "batch_size 0"),
        (lambda record: record.update(chunks_done=None), "no chunks_done"),
    ],
)
def test_a_progress_record_that_is_not_one_is_refused_in_one_line(tmp_path, change, named):
    store, record = started_store(tmp_path)
    change(record)
    artifacts.write_json(store.record_path, record)
    with pytest.raises(errors.UsageError) as raised:
        store.read_record()
    message = str(raised.value)
    assert "cannot be read" in message and named in message and "\n" not in message


def test_a_new_record_removes_the_chunks_of_a_run_whose_record_is_gone(tmp_path):
    store, record = started_store(tmp_path)
    store.save_chunk(record, 0, a_chunk([0, 1]))
    os.remove(store.record_path)  # What is left: a chunk of unknown settings.
    store, _ = started_store(tmp_path)
    assert store.load_chunks([[0, 1], [2, 3]]) == {}
    assert sorted(os.listdir(store.folder)) == [resume.RECORD_FILE]


def test_a_run_of_one_layer_refuses_an_outdir_where_panels_stopped_and_the_reverse(tmp_path):
    panels = tmp_path / "panels"
    resume.ProgressStore(str(panels), "panel_00").start({}, {}, [0], 1)
    with pytest.raises(errors.UsageError, match="unfinished run of several panel layers"):
        resume.check_layout(str(panels), [""])
    resume.check_layout(str(panels), ["panel_00", "panel_01"])  # Its own kind: checked later.

    one_layer = tmp_path / "one_layer"
    started_store(one_layer)
    with pytest.raises(errors.UsageError, match="unfinished run of one layer"):
        resume.check_layout(str(one_layer), ["panel_00", "panel_01"])
    resume.check_layout(str(one_layer), [""])
    resume.check_layout(str(tmp_path / "empty"), [""])


def test_the_panel_run_refuses_before_removing_the_one_layer_runs_chunks(tmp_path):
    started_store(tmp_path)
    kept = sorted(os.listdir(tmp_path / resume.PROGRESS_FOLDER))
    panels = dict(QUICK, panel_layers=("conv1", "conv2"), grid_rows=1, grid_cols=4)
    with pytest.raises(errors.UsageError, match="unfinished run of one layer"):
        runner.run(str(tmp_path), panels, log=open(os.devnull, "w"))
    assert sorted(os.listdir(tmp_path / resume.PROGRESS_FOLDER)) == kept


def test_temporary_files_of_a_killed_write_are_removed_by_the_next_run(tmp_path):
    (tmp_path / "tiles").mkdir()
    for stray in (tmp_path / ".tmp-abc123mosaic.png", tmp_path / "tiles" / ".tmp-x.png"):
        stray.write_bytes(b"\x89PNG cut short")
    (tmp_path / "notes.txt").write_text("the user's own file")
    runner.run(str(tmp_path), QUICK, log=open(os.devnull, "w"))
    assert sorted(os.listdir(tmp_path)) == ["mosaic.png", "notes.txt", "run.json", "tiles"]
    assert os.listdir(tmp_path / "tiles") == []
    assert json.loads((tmp_path / "run.json").read_text())["complete"] is True
