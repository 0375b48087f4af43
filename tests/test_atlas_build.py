"""The atlas end to end: scripts/atlas.py on the demo model, interrupted and resumed, shards, a
hostile layer name, and each filter's quality measures."""

import io
import json
import os
import re
import signal
import subprocess

import atlas_fake
import keras
import numpy as np
import pytest
from conftest import SMALL_RUN, command_environment
from PIL import Image
from signals import SignalOnLine

from keras_filters import errors, quality
from keras_filters import settings as settings_lib
from keras_filters.atlas import build, site
from keras_filters.job import artifacts, interruption, resume
from keras_filters.job import run as job

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The quickstart recipe, shrunken: 2 steps at 32 px; three dataset examples per filter.
SHRUNKEN = ("--config.num_steps=2", "--config.image_size=32", "--config.examples_top_k=3")
DEMO_LAYERS = {"conv1": 16, "pool1": 16, "conv2": 32, "pool2": 32, "conv3": 64}
DEMO_LAYERS.update({"global_pool": 64, "logits": 6})
# The script runs as a user runs it once, under the default backend; the library path below it
# (build_atlas) is tested under every backend by the in-process tests further down.
script_test = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the atlas script runs end to end once, under the default backend (TensorFlow)",
)


def atlas_command(outdir, examples_dir) -> list:
    return [
        "python3",
        os.path.join(REPO_ROOT, "scripts", "atlas.py"),
        "--config=configs/quickstart.py",
        f"--outdir={outdir}",
        f"--config.examples_dir={examples_dir}",
        *SHRUNKEN,
    ]


def pages(outdir) -> dict:
    """{page: its text} for every page of a site, with the times (which differ between any two
    runs) masked."""
    found = {}
    for folder, _, names in os.walk(outdir):
        for name in names:
            if name.endswith(".html"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as file:
                    text = file.read()
                text = re.sub(r"[0-9.e+-]+ s\.</p>", "TIME s.</p>", text)
                text = re.sub(r'<td class="number">[^<]*</td></tr>', "TIME</tr>", text)
                found[os.path.relpath(path, outdir)] = text
    return found


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Eight small pictures of different sizes: stripes and blobs in random colours."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for number in range(8):
        height, width = rng.integers(24, 80, 2)
        rows, cols = np.indices((height, width))
        stripes = ((rows + (number % 3) * cols) // (2 + number % 4)) % 2
        pixels = stripes[..., None] * rng.uniform(0, 255, 3) + rng.uniform(
            0, 40, (height, width, 3)
        )
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"photo_{number}.png")
    return str(folder)


def run_atlas(outdir: str, photos) -> subprocess.CompletedProcess:
    """Runs scripts/atlas.py on the demo model into `outdir` to the end."""
    return subprocess.run(
        atlas_command(outdir, photos),
        cwd=REPO_ROOT,
        env=command_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def demo_atlas(tmp_path_factory, photos):
    """The atlas of the demo model, built by the real script in one uninterrupted run."""
    outdir = str(tmp_path_factory.mktemp("atlas") / "site")
    process = run_atlas(outdir, photos)
    assert process.returncode == 0, process.stderr[-3000:]
    return outdir, process


@script_test
@pytest.mark.end_to_end
def test_the_script_builds_a_page_per_filter_with_every_link_resolving(demo_atlas):
    outdir, process = demo_atlas
    assert "7 layers, 230 filters" in process.stdout
    assert site.broken_references(outdir) == []
    data = artifacts.read_json(os.path.join(outdir, build.ATLAS_FILE))
    assert {layer["name"]: layer["num_filters"] for layer in data["layers"]} == DEMO_LAYERS
    for position, layer in enumerate(data["layers"]):
        folder = os.path.join(outdir, site.layer_folder(position, layer["name"]))
        assert sorted(os.listdir(folder)) == sorted(
            ["index.html"] + [site.filter_page(index) for index in range(layer["num_filters"])]
        )
        for entry in layer["filters"]:
            assert len(entry["loss_curve"]) == 2  # num_steps
            # A filter that restarted from a rival's picture ends past its ascent's curve.
            if entry["restarted_from"] is None:
                assert entry["loss_curve"][-1] == pytest.approx(entry["objective"])
            assert entry["failed"] or 0 <= entry["high_frequency"] <= 1
            assert entry["failed"] or 0 <= entry["robustness"] <= 1


@script_test
def test_a_filter_page_says_whose_picture_its_rival_restart_started_from(demo_atlas):
    outdir, _ = demo_atlas
    data = artifacts.read_json(os.path.join(outdir, build.ATLAS_FILE))
    restarted = [
        (position, layer["name"], entry)
        for position, layer in enumerate(data["layers"])
        for entry in layer["filters"]
        if entry["restarted_from"] is not None
    ]
    assert restarted  # Two steps from noise leave many filters beaten by another's picture.
    position, name, entry = restarted[0]
    page = os.path.join(outdir, site.layer_folder(position, name), site.filter_page(entry["index"]))
    with open(page, encoding="utf-8") as file:
        text = file.read()
    assert (
        f"<tr><th>Restarted from</th><td>filter {entry['restarted_from']}&#x27;s picture</td></tr>"
        in text
    )


@script_test
@pytest.mark.end_to_end
def test_the_script_warns_of_an_override_without_effect_in_a_layer_run(tmp_path):
    finished = subprocess.run(
        [
            "python3",
            os.path.join(REPO_ROOT, "scripts", "atlas.py"),
            "--config=configs/quickstart.py",
            f"--outdir={tmp_path / 'site'}",
            "--config.atlas_layers=('pool2',)",
            "--config.num_steps=1",
            "--config.image_size=32",
            "--config.init_low=0.0",  # The quickstart's picture is a Fourier one.
            # Every layer's run has an automatic grid, whatever grid_rows says: it acts.
            "--config.grid_rows=2",
            "--config.grid_cols=2",
            "--config.automatic_grid=square",
        ],
        cwd=REPO_ROOT,
        env=command_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert [line for line in finished.stderr.splitlines() if "warning" in line] == [
        "atlas: warning: --config.init_low=0.0 has no effect with "
        "--config.parameterization='fourier': it applies only with "
        "--config.parameterization='pixel'"
    ]
    assert "1 layers, 32 filters" in finished.stdout


def index_details(outdir) -> dict:
    """The index page's table of the model and its recipe: {row name: text}."""
    with open(os.path.join(outdir, "index.html"), encoding="utf-8") as file:
        return dict(re.findall(r"<tr><th>([a-z ]+)</th><td>([^<]*)</td></tr>", file.read()))


@script_test
def test_the_index_describes_the_quality_recipe_that_ran(demo_atlas):
    details = index_details(demo_atlas[0])
    assert details["ascent"] == (
        "2 Adam steps, learning rate 0.3 (cosine to 0.03), ReLU-gradient warm-up for 32 steps, "
        "rival restarts (up to 4 rounds of 2 steps)"
    )
    assert details["image"] == (
        "Fourier (1/f^1 spectrum, on a 2x canvas), starting from spectrum noise of standard "
        "deviation 0.01"
    )
    assert details["transforms"] == "shift(0.25), scale(0.8, 1.2), rotate(20)"


@script_test
def test_each_live_filter_page_shows_its_examples_in_descending_order(demo_atlas):
    outdir, _ = demo_atlas
    data = artifacts.read_json(os.path.join(outdir, build.ATLAS_FILE))
    for position, layer in enumerate(data["layers"]):
        for entry in layer["filters"]:
            activations = [example["activation"] for example in entry["examples"]]
            assert len(activations) == 3 and activations == sorted(activations, reverse=True)
            page = os.path.join(
                outdir, site.layer_folder(position, layer["name"]), site.filter_page(entry["index"])
            )
            with open(page, encoding="utf-8") as file:
                text = file.read()
            for example in entry["examples"]:
                assert os.path.basename(example["image"]) in text


@script_test
@pytest.mark.end_to_end
def test_interrupted_with_sigint_and_run_again_it_gives_the_same_site(demo_atlas, photos, tmp_path):
    reference, _ = demo_atlas
    outdir = str(tmp_path / "site")
    process = subprocess.Popen(
        atlas_command(outdir, photos),
        cwd=REPO_ROOT,
        env=command_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in process.stderr:  # Halfway: once the fourth of seven layers has started.
        seen.append(line)
        if line.startswith("atlas: layer 4/7"):
            process.send_signal(signal.SIGINT)
            break
    seen.append(process.stderr.read())
    assert process.wait(timeout=120) == 128 + signal.SIGINT, "".join(seen)[-3000:]
    assert not os.path.exists(os.path.join(outdir, site.INDEX_PAGE))
    again = run_atlas(outdir, photos)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "done before" in again.stderr
    assert pages(outdir) == pages(reference)


def small_model_file(folder, model_name: str = "small") -> str:
    """Two conv layers and a dense head, saved as .keras."""
    initializer = keras.initializers.GlorotUniform(seed=1)
    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv_a", kernel_initializer=initializer)(
        inputs
    )
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_b", kernel_initializer=initializer)(
        x
    )
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(2, name="logits", kernel_initializer=initializer)(x)
    path = os.path.join(folder, "small.keras")
    keras.Model(inputs, outputs, name=model_name).save(path)
    return path


def small_settings(model_path: str, **changes) -> settings_lib.Settings:
    return settings_lib.Settings.create(
        {**SMALL_RUN, "num_steps": 2, "batch_size": 3}, model=model_path, **changes
    )


def test_a_hostile_model_name_is_escaped_on_every_page(tmp_path):
    # Keras refuses such a layer name under TensorFlow (not a valid scope name), but not such a
    # model name; hostile layer names are tested on the site itself (test_atlas_site.py).
    hostile = atlas_fake.HOSTILE_NAME
    path = small_model_file(str(tmp_path), hostile)
    outdir = str(tmp_path / "site")
    result = build.build_atlas(outdir, small_settings(path), log=open(os.devnull, "w"))
    assert result.layers == ("conv_a", "conv_b", "pool", "logits")
    assert site.broken_references(outdir) == []
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    for page, text in pages(outdir).items():
        assert hostile not in text and escaped in text, page
    # The index describes the recipe that ran: here a faithful one (SMALL_RUN).
    details = index_details(outdir)
    assert details["ascent"] == "2 steps of 0.5 along the l2-normalized gradient"
    assert details["image"] == "pixels, starting from uniform noise in [-1, 1)"
    assert details["transforms"] == "none"


@pytest.mark.parametrize(
    "trigger",
    [
        "atlas: layer 2/4",  # Between two layers' runs.
        "filters 3/3",  # After the first layer's last chunk, inside its run.
    ],
)
def test_a_signal_between_layers_stops_the_atlas_before_the_next(tmp_path, monkeypatch, trigger):
    path = small_model_file(str(tmp_path))
    settings = small_settings(path, progress=True)
    whole = str(tmp_path / "whole")
    build.build_atlas(whole, settings, log=open(os.devnull, "w"))
    outdir = str(tmp_path / "site")
    stream = SignalOnLine(trigger)
    handler = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr("sys.stderr", stream)  # The progress lines go there.
    with pytest.raises(interruption.RunInterrupted) as stopped:
        build.build_atlas(outdir, settings, log=stream)
    monkeypatch.undo()
    assert stream.sent
    # The first layer's 3 filters of the atlas's 13, and nothing of the second layer's.
    assert (stopped.value.filters_done, stopped.value.filters_total) == (3, 13)
    assert stopped.value.exit_code == 128 + signal.SIGINT
    second = os.path.join(outdir, build.LAYERS_FOLDER, site.layer_folder(1, "conv_b"))
    assert not os.path.exists(os.path.join(second, job.RUN_FILE))
    assert signal.getsignal(signal.SIGINT) is handler  # Given back as it was.
    result = build.build_atlas(outdir, settings, log=open(os.devnull, "w"))
    assert result.num_filters == 13
    assert pages(outdir) == pages(whole)


def test_shards_give_the_same_site_as_one_job(tmp_path):
    path = small_model_file(str(tmp_path))
    quiet = open(os.devnull, "w")
    whole = str(tmp_path / "whole")
    build.build_atlas(whole, small_settings(path, atlas_layers=("conv_b",)), log=quiet)
    sharded = str(tmp_path / "sharded")
    first = build.build_atlas(
        sharded, small_settings(path, atlas_layers=("conv_b",), num_shards=2), log=quiet
    )
    assert first.waiting_for == (1,) and first.pages == ()
    second = build.build_atlas(
        sharded,
        small_settings(path, atlas_layers=("conv_b",), num_shards=2, shard_index=1),
        log=quiet,
    )
    assert second.waiting_for == () and second.num_filters == 4
    assert pages(sharded) == pages(whole)


def test_shards_give_the_same_site_as_one_job_where_a_layer_has_fewer_chunks_than_shards(
    tmp_path,
):
    path = small_model_file(str(tmp_path))
    quiet = open(os.devnull, "w")
    whole = str(tmp_path / "whole")
    build.build_atlas(whole, small_settings(path), log=quiet)
    # In chunks of 3, conv_a's 3 filters and the 2 logits make one chunk each, which shard 1
    # runs: shard 0 has none of them; conv_b's and pool's 4 make two, one for each shard.
    sharded = str(tmp_path / "sharded")
    log = io.StringIO()
    first = build.build_atlas(sharded, small_settings(path, num_shards=2), log=log)
    assert first.waiting_for == (1,) and first.pages == ()
    assert [line for line in log.getvalue().splitlines() if "has no filters" in line] == [
        f"keras-filters: shard 0 of 2 has no filters of {layer} to run: its {count} filters "
        "make 1 chunk of batch_size=3 for 2 shards; writing an empty shard for the merge"
        for layer, count in (("conv_a", 3), ("logits", 2))
    ]
    layers = os.path.join(sharded, build.LAYERS_FOLDER)
    ran = {
        layer: artifacts.read_json(
            os.path.join(layers, site.layer_folder(position, layer), "shard-0", job.RUN_FILE)
        )
        for position, layer in enumerate(first.layers)
    }
    assert {layer: len(record["filters"]) for layer, record in ran.items()} == {
        "conv_a": 0,
        "conv_b": 3,
        "pool": 3,
        "logits": 0,
    }
    assert ran["conv_a"]["complete"] and ran["conv_a"]["mosaic"]["file"] is None
    second = build.build_atlas(
        sharded, small_settings(path, num_shards=2, shard_index=1), log=quiet
    )
    assert second.waiting_for == () and second.num_filters == 13
    for position, layer in enumerate(second.layers):
        folder = os.path.join(build.LAYERS_FOLDER, site.layer_folder(position, layer))
        merged, alone = (
            artifacts.read_json(os.path.join(outdir, folder, job.RUN_FILE))
            for outdir in (sharded, whole)
        )
        assert merged["filters"] == alone["filters"], layer
    assert pages(sharded) == pages(whole)


@pytest.mark.parametrize(
    "trigger, filters_done",
    [
        ("filters 1/2", 2),  # Inside conv_b's run, after its first chunk.
        ("filters 2/2", 3),  # After conv_b's last chunk: the atlas stops before pool.
    ],
)
def test_an_interrupted_shard_counts_its_own_share_of_every_layer(
    tmp_path, monkeypatch, trigger, filters_done
):
    path = small_model_file(str(tmp_path))
    # One filter per chunk, the chunks split between two shards: shard 0 runs 1 of conv_a's 3
    # filters, 2 of conv_b's 4, 2 of pool's 4 and 1 of the 2 logits (6 of the atlas's 13).
    settings = small_settings(path, batch_size=1, num_shards=2, progress=True)
    outdir = str(tmp_path / "site")
    stream = SignalOnLine(trigger)
    monkeypatch.setattr("sys.stderr", stream)  # The progress lines go there.
    with pytest.raises(interruption.RunInterrupted) as stopped:
        build.build_atlas(outdir, settings, log=stream)
    monkeypatch.undo()
    assert stream.sent
    # conv_a's 1 and conv_b's first 1 or both 2, of the shard's 6.
    assert (stopped.value.filters_done, stopped.value.filters_total) == (filters_done, 6)
    result = build.build_atlas(outdir, settings, log=open(os.devnull, "w"))  # Goes on.
    assert result.waiting_for == (1,)
    layers = os.path.join(outdir, build.LAYERS_FOLDER)
    ran = [
        artifacts.read_json(
            os.path.join(layers, site.layer_folder(position, layer), "shard-0", job.RUN_FILE)
        )["filters"]
        for position, layer in enumerate(result.layers)
    ]
    assert [len(filters) for filters in ran] == [1, 2, 2, 1]  # The 6 it counted, layer by layer.


def test_each_filter_page_shows_the_quality_measures_of_its_own_image(tmp_path):
    path = small_model_file(str(tmp_path))
    outdir = str(tmp_path / "site")
    # The images start in [-1, 1), so clipping them into the range matters.
    settings = small_settings(path, atlas_layers=("conv_b",), input_range=(0.0, 1.0))
    build.build_atlas(outdir, settings, log=open(os.devnull, "w"))
    layer = artifacts.read_json(os.path.join(outdir, build.ATLAS_FILE))["layers"][0]
    folder = site.layer_folder(0, "conv_b")
    with np.load(os.path.join(outdir, build.LAYERS_FOLDER, folder, job.INPUTS_FILE)) as saved:
        inputs, filter_indices = saved["inputs"], list(saved["filter_indices"])
    assert filter_indices == [0, 1, 2, 3]
    model = keras.saving.load_model(path)
    robust = []
    for entry in layer["filters"]:
        index = entry["index"]
        # Each filter scored alone, as evaluate_quality.py scores a layer.
        scores = quality.score(
            model,
            "conv_b",
            [index],
            inputs[filter_indices.index(index)][None],
            (0.0, 1.0),
            natural_images=np.zeros((1, 16, 16, 3), np.float32),
        )
        assert not entry["failed"]
        assert entry["robustness"] == pytest.approx(scores.per_filter.robustness[0], abs=1e-6)
        assert entry["high_frequency"] == pytest.approx(
            scores.per_filter.high_frequency_fraction[0], abs=1e-9
        )
        robust.append(entry["robustness"])
        with open(os.path.join(outdir, folder, site.filter_page(index)), encoding="utf-8") as file:
            text = file.read()
        assert f"<th>Robustness</th><td>{entry['robustness']:.4g}</td>" in text
        assert f"<th>High-frequency fraction</th><td>{entry['high_frequency']:.4g}</td>" in text
    assert any(0 < value < 1 for value in robust), robust  # not only dead or capped filters


def test_panel_layers_are_refused_before_anything_is_written(tmp_path):
    outdir = tmp_path / "site"
    settings = settings_lib.Settings.create(SMALL_RUN, panel_layers=("conv1", "conv3"))
    with pytest.raises(errors.UsageError, match=r"panel_layers=\('conv1', 'conv3'\) stacks"):
        build.build_atlas(str(outdir), settings, log=open(os.devnull, "w"))
    assert not outdir.exists()


def test_examples_that_cannot_be_read_are_refused_before_the_first_layer(tmp_path):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "a.jpg").write_text("not a picture")
    (examples / "b.png").write_bytes(b"\x89PNG cut short")
    outdir = tmp_path / "site"
    settings = small_settings(small_model_file(str(tmp_path)), examples_dir=str(examples))
    with pytest.raises(errors.UsageError, match="none of its 2 image files can be read") as raised:
        build.build_atlas(str(outdir), settings, log=open(os.devnull, "w"))
    assert "a.jpg" in str(raised.value) and "\n" not in str(raised.value)
    assert not outdir.exists()


def test_an_unfinished_layer_of_other_settings_is_refused_before_any_layer_runs(tmp_path):
    path = small_model_file(str(tmp_path))
    outdir = tmp_path / "site"
    settings = small_settings(path, atlas_layers=("conv_a", "conv_b"))
    earlier = build.layer_settings(settings, "conv_b").replace(num_steps=3)
    stopped = outdir / build.LAYERS_FOLDER / site.layer_folder(1, "conv_b")
    resume.ProgressStore(str(stopped)).start({}, earlier.to_dict(), [0], 1)
    with pytest.raises(errors.UsageError) as raised:
        build.build_atlas(str(outdir), settings, log=open(os.devnull, "w"))
    assert str(raised.value).startswith("layer 'conv_b': ")
    assert "num_steps: 3 there, 2 now" in str(raised.value)
    assert os.listdir(outdir / build.LAYERS_FOLDER) == [stopped.name]  # conv_a did not run.


def test_saved_files_cut_short_or_of_another_kind_are_made_again(tmp_path):
    path = small_model_file(str(tmp_path))
    outdir = tmp_path / "site"
    settings = small_settings(path, atlas_layers=("conv_a", "conv_b"))
    first = build.build_atlas(str(outdir), settings, log=open(os.devnull, "w"))
    layers = outdir / build.LAYERS_FOLDER
    conv_a = layers / site.layer_folder(0, "conv_a")
    conv_b = layers / site.layer_folder(1, "conv_b")
    measures = (conv_a / build.MEASURES_FILE).read_text()
    (conv_a / build.MEASURES_FILE).write_text(measures[: len(measures) // 2])
    (conv_b / job.RUN_FILE).write_text("[]")
    again = build.build_atlas(str(outdir), settings, log=open(os.devnull, "w"))
    assert (again.num_filters, again.num_dead) == (first.num_filters, first.num_dead)
    assert json.loads((conv_a / build.MEASURES_FILE).read_text()) == json.loads(measures)
    assert json.loads((conv_b / job.RUN_FILE).read_text())["complete"] is True
