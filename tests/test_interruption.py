"""Ctrl-C or SIGTERM stops a run within one chunk; running again finishes it, bit for bit."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest
from conftest import (
    REPO_ROOT,
    command_environment,
    command_line,
    raising,
    run_command,
    run_main,
)
from signals import SignalOnLine

from keras_filters import errors, startup
from keras_filters.job import interruption, resume
from keras_filters.job import run as runner

# 16 filters in 4 chunks of 4, long enough per chunk (about 0.5 s) to be caught between chunks.
ARGUMENTS = [
    "--config=configs/quickstart_faithful.py",
    "--config.max_filters=16",
    "--config.batch_size=4",
    "--config.num_steps=150",
    "--config.grid_rows=4",
    "--config.grid_cols=4",
    "--config.progress=false",
]
FIRST_CHUNK = os.path.join(resume.PROGRESS_FOLDER, "chunk_00000.npz")


def start_command(*args) -> subprocess.Popen:
    """Starts scripts/visualize.py as a user would, without waiting for it."""
    return subprocess.Popen(
        command_line(*args),
        cwd=REPO_ROOT,
        env=command_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path, process=None, timeout=120.0):
    """Waits until `path` exists; fails if `process` ends first or the time runs out."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert process is None or process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def finished_filters(record):
    return [(entry["index"], entry["loss"]) for entry in record["filters"]]


@pytest.mark.end_to_end
def test_sigint_after_first_chunk_then_resume_gives_the_uninterrupted_mosaic(tmp_path):
    interrupted, whole = tmp_path / "interrupted", tmp_path / "whole"
    process = start_command(*ARGUMENTS, f"--outdir={interrupted}")
    wait_for(interrupted / FIRST_CHUNK, process)
    process.send_signal(signal.SIGINT)
    uninterrupted = start_command(*ARGUMENTS, f"--outdir={whole}")
    _, stderr = process.communicate(timeout=120)
    assert uninterrupted.communicate(timeout=300) and uninterrupted.returncode == 0
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted by SIGINT" in stderr
    partial = json.loads((interrupted / "run.json").read_text())
    assert partial["complete"] is False and partial["interrupted"] == "SIGINT"
    done = [entry["index"] for entry in partial["filters"]]
    assert 4 <= len(done) < 16 and len(done) % 4 == 0  # whole chunks only
    assert partial["mosaic"]["file"] == "mosaic.png" and set(partial["mosaic"]["filters"]) <= set(
        done
    )

    resumed = run_command(*ARGUMENTS, f"--outdir={interrupted}")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert sorted(os.listdir(interrupted)) == ["mosaic.png", "run.json"]
    assert (interrupted / "mosaic.png").read_bytes() == (whole / "mosaic.png").read_bytes()
    final = json.loads((interrupted / "run.json").read_text())
    expected = json.loads((whole / "run.json").read_text())
    assert finished_filters(final) == finished_filters(expected)
    assert final["complete"] is True and final["settings"] == expected["settings"]


SETTINGS = dict(
    model="demo",
    weights="none",
    layer="conv3",
    image_size=32,
    max_filters=12,
    batch_size=4,
    num_steps=60,
    step_size=10.0,
    gradient_normalization="l2",
    init_low=0.4,
    init_high=0.6,
    selection="first",
    grid_rows=3,
    grid_cols=4,
    progress=False,
)


@pytest.fixture
def safety_handler():
    """Keeps a late SIGTERM from ending the test session: the run's handlers sit on top of it."""
    received = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: received.append(number))
    yield received
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_stops_in_process_and_other_settings_are_refused(tmp_path, safety_handler):
    outdir = str(tmp_path / "run")

    def terminate_after_first_chunk():
        wait_for(os.path.join(outdir, FIRST_CHUNK))
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_after_first_chunk)
    killer.start()
    with pytest.raises(interruption.RunInterrupted) as stopped:
        runner.run(outdir, SETTINGS)
    killer.join()
    assert stopped.value.signal_name == "SIGTERM" and stopped.value.exit_code == 143
    assert 4 <= stopped.value.filters_done < 12 and stopped.value.filters_total == 12
    progress_files = sorted(os.listdir(os.path.join(outdir, resume.PROGRESS_FOLDER)))

    with pytest.raises(errors.UsageError, match=r"num_steps: 60 there, 61 now"):
        runner.run(outdir, dict(SETTINGS, num_steps=61))
    assert sorted(os.listdir(os.path.join(outdir, resume.PROGRESS_FOLDER))) == progress_files

    runner.run(outdir, dict(SETTINGS, batch_size=5), resume_only=True)  # keeps its chunks of 4
    runner.run(str(tmp_path / "whole"), SETTINGS)
    assert (
        open(os.path.join(outdir, "mosaic.png"), "rb").read()
        == (tmp_path / "whole" / "mosaic.png").read_bytes()
    )
    assert not os.path.exists(os.path.join(outdir, resume.PROGRESS_FOLDER))
    with pytest.raises(errors.UsageError, match="no unfinished run to resume"):
        runner.run(outdir, SETTINGS, resume_only=True)


@pytest.mark.parametrize(
    "changes, filters_total",
    [
        ({}, 12),
        ({"num_shards": 2, "shard_index": 1}, 8),  # The last 2 of the 3 chunks of 4.
    ],
)
def test_a_signal_before_the_first_chunk_finishes_stops_the_run_with_nothing_written(
    tmp_path, monkeypatch, changes, filters_total
):
    # A run with chunks to run that none finished: not a shard with nothing to run.
    outdir = tmp_path / "run"
    stream = SignalOnLine("")  # Any line: the first step's.
    monkeypatch.setattr("sys.stderr", stream)  # The progress lines go there.
    with pytest.raises(interruption.RunInterrupted) as stopped:
        runner.run(
            str(outdir),
            dict(SETTINGS, num_steps=3, progress=True, **changes),
            log=open(os.devnull, "w"),
        )
    monkeypatch.undo()
    assert stream.sent
    assert (stopped.value.signal_name, stopped.value.filters_done) == ("SIGINT", 0)
    assert stopped.value.filters_total == filters_total
    assert sorted(os.listdir(outdir)) == [resume.PROGRESS_FOLDER]  # Only the run's record.


def test_second_signal_stops_at_once():
    with interruption.StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.signal_number == signal.SIGINT
        with pytest.raises(interruption.StopRequested):
            stop.check()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is not stop._handle


def test_a_second_sigterm_stops_at_once_as_sigterm(safety_handler):
    with interruption.StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signal_number == signal.SIGTERM
        with pytest.raises(interruption.Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
    assert safety_handler == []


def test_nested_stop_signals_share_one_request():
    # A signal inside the inner one (a layer's run) reaches the outer one (the atlas's loop)...
    with interruption.StopSignals() as outer:
        with interruption.StopSignals() as inner:
            os.kill(os.getpid(), signal.SIGTERM)
        assert inner.signal_number == signal.SIGTERM
        assert outer.signal_number == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) == outer._handle
    # ... and one that came before the inner one began is already its request.
    with interruption.StopSignals() as outer:
        os.kill(os.getpid(), signal.SIGINT)
        with interruption.StopSignals() as inner:
            assert inner.signal_number == signal.SIGINT
            with pytest.raises(KeyboardInterrupt):  # The second signal stops at once.
                os.kill(os.getpid(), signal.SIGINT)
    # Without a signal neither asks to stop.
    with interruption.StopSignals() as outer:
        with interruption.StopSignals() as inner:
            pass
    assert not inner.requested and not outer.requested


PANEL_ARGUMENTS = [
    "--config=configs/quickstart_faithful.py",
    "--config.panel_layers=('conv1', 'conv2')",
    "--config.max_filters=8",
    "--config.batch_size=4",
    "--config.num_steps=150",
    "--config.grid_rows=2",
    "--config.grid_cols=4",
    "--config.progress=false",
]


@pytest.mark.end_to_end
def test_panels_resume_through_the_same_path_as_one_layer(tmp_path):
    interrupted, whole = tmp_path / "interrupted", tmp_path / "whole"
    first_chunk = interrupted / resume.PROGRESS_FOLDER / "panel_00" / "chunk_00000.npz"
    process = start_command(*PANEL_ARGUMENTS, f"--outdir={interrupted}")
    wait_for(first_chunk, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    partial = json.loads((interrupted / "run.json").read_text())
    assert partial["complete"] is False and partial["panels"][0]["layer"] == "conv1"

    resumed = run_command(*PANEL_ARGUMENTS, f"--outdir={interrupted}")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    uninterrupted = run_command(*PANEL_ARGUMENTS, f"--outdir={whole}")
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert sorted(os.listdir(interrupted)) == ["mosaic.png", "run.json"]
    assert (interrupted / "mosaic.png").read_bytes() == (whole / "mosaic.png").read_bytes()
    final = json.loads((interrupted / "run.json").read_text())
    assert [panel["layer"] for panel in final["panels"]] == ["conv1", "conv2"]
    assert final["complete"] is True


@pytest.mark.parametrize(
    "exception, message",
    [
        (KeyboardInterrupt(), "merge: interrupted; run the same command again to finish"),
        (
            interruption.RunInterrupted(signal.SIGINT, 3, 8),
            "merge: interrupted by SIGINT after 3 of 8 filters; run the same command again to "
            "finish",
        ),
    ],
)
def test_a_command_stopped_by_ctrl_c_ends_in_one_line_with_code_130(
    exception, message, monkeypatch, capsys
):
    assert run_main(raising(exception), monkeypatch, "merge") == 130
    assert capsys.readouterr().err == message + "\n"


def terminating(function, lost: bool = False):
    """`function`, made to send this process SIGTERM before it runs: the handler of SIGTERM
    takes it at once, in this thread, at a chosen point of a run. With `lost`, the exception it
    raises is dropped, as Python drops one raised in a garbage-collection callback."""

    def call(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt:
            if not lost:
                raise
        return function(*args, **kwargs)

    return call


@pytest.mark.parametrize("stage", ["loading the model", "writing the mosaic"])
def test_sigterm_outside_the_chunk_loop_ends_the_command_in_one_line_with_code_143(
    stage, tmp_path, monkeypatch, capsys, safety_handler
):
    from PIL import Image

    from keras_filters import pipeline

    outdir = tmp_path / "run"
    settings = dict(SETTINGS, num_steps=3)
    if stage == "loading the model":
        monkeypatch.setattr(pipeline, "load_model", terminating(pipeline.load_model))
    else:  # The first file written after the chunks: the mosaic, once its temporary file is open.
        monkeypatch.setattr(Image.Image, "save", terminating(Image.Image.save))
    ended = run_main(lambda argv: runner.run(str(outdir), settings), monkeypatch)
    monkeypatch.undo()
    assert ended == 143 and safety_handler == []
    assert capsys.readouterr().err == (
        "keras-filters: terminated by SIGTERM; run the same command again to finish\n"
    )
    if stage == "loading the model":
        assert not outdir.exists()
        return
    # The finished chunks are kept, and no file is half-written: the next run writes the files.
    assert os.listdir(outdir) == [resume.PROGRESS_FOLDER]
    assert sorted(os.listdir(outdir / resume.PROGRESS_FOLDER)) == [
        "chunk_00000.npz",
        "chunk_00001.npz",
        "chunk_00002.npz",
        resume.RECORD_FILE,
    ]
    log = open(tmp_path / "log", "w+")
    record = runner.run(str(outdir), settings, log=log)
    log.seek(0)
    assert "12 of 12 filters already done" in log.read()
    assert record["complete"] and sorted(os.listdir(outdir)) == ["mosaic.png", "run.json"]


def test_a_sigterm_lost_while_the_model_loads_stops_the_run_before_its_first_chunk(
    tmp_path, monkeypatch, capsys, safety_handler
):
    from keras_filters import pipeline

    outdir = tmp_path / "run"
    monkeypatch.setattr(pipeline, "load_model", terminating(pipeline.load_model, lost=True))
    ended = run_main(lambda argv: runner.run(str(outdir), SETTINGS), monkeypatch)
    assert ended == 143 and safety_handler == []
    assert capsys.readouterr().err == (
        "keras-filters: interrupted by SIGTERM after 0 of 12 filters; run the same command "
        "again to finish\n"
    )
    assert os.listdir(outdir) == [resume.PROGRESS_FOLDER]  # Only the run's record.


@pytest.mark.parametrize("lost", [False, True])
def test_sigterm_while_keras_loads_ends_in_one_line(lost, monkeypatch, capsys, safety_handler):
    monkeypatch.setattr(startup, "import_backend_quietly", terminating(lambda: None, lost))
    with pytest.raises(SystemExit) as ended:
        startup.import_backend_for_command("merge")
    assert ended.value.code == 143 and safety_handler == []
    assert capsys.readouterr().err == (
        "merge: terminated by SIGTERM while Keras was loading; nothing was done\n"
    )


def test_ctrl_c_while_keras_loads_ends_in_one_line(monkeypatch, capsys):
    def interrupted_import():
        raise KeyboardInterrupt

    monkeypatch.setattr(startup, "import_backend_quietly", interrupted_import)
    with pytest.raises(SystemExit) as ended:
        startup.import_backend_for_command("merge")
    assert ended.value.code == 130
    assert capsys.readouterr().err == (
        "merge: interrupted while Keras was loading; nothing was done\n"
    )
