"""Every bad input of the command line ends in one line on stderr, exit code 2, nothing written.

Each case runs the real command (scripts/visualize.py) in a subprocess. Cases that the command
answers before TensorFlow starts take a fraction of a second; the others 3 to 5 s each, so the
selected cases' commands run a few at a time, before their tests check them.
"""

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

import keras
import pytest
from conftest import lambda_model, raising, run_command, run_main, small_cnn

from keras_filters.model import loading as models

QUICKSTART = "--config=configs/quickstart_faithful.py"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Model, weights and config files, good and bad, shared by the cases."""
    folder = tmp_path_factory.mktemp("inputs")
    paths = {}
    demo = open(models.demo_model_path(), "rb").read()
    paths["truncated"] = folder / "truncated.keras"
    paths["truncated"].write_bytes(demo[: len(demo) // 2])
    paths["corrupt_h5"] = folder / "corrupt.h5"
    paths["corrupt_h5"].write_bytes(b"not an HDF5 file" * 10)
    paths["text"] = folder / "notes.txt"
    paths["text"].write_text("not a model")
    paths["lambda"] = folder / "lambda.keras"
    lambda_model().save(paths["lambda"])
    inputs = keras.Input((None, None, 3), name="image")
    score = keras.layers.Dense(1, name="score")(
        keras.layers.GlobalAveragePooling2D(name="pool")(
            keras.layers.Conv2D(4, 3, name="conv")(inputs)
        )
    )
    scalar = keras.layers.Reshape((), name="scalar")(score)  # output shape (None,): no channels
    paths["scalar"] = folder / "scalar.keras"
    keras.Model(inputs, scalar).save(paths["scalar"])
    fixed_inputs = keras.Input((32, 32, 3))
    paths["fixed"] = folder / "fixed.keras"
    keras.Model(fixed_inputs, keras.layers.Conv2D(2, 3, name="conv")(fixed_inputs)).save(
        paths["fixed"]
    )
    paths["other_weights"] = folder / "small_cnn.weights.h5"
    small_cnn().save_weights(paths["other_weights"])
    paths["extra_key_config"] = folder / "extra_key_config.py"
    paths["extra_key_config"].write_text(
        "from configs import quickstart_faithful as quickstart\n\n\ndef get_config():\n"
        "    config = quickstart.get_config()\n    config.num_stepz = 3\n    return config\n"
    )
    paths["a_file"] = folder / "a_file"
    paths["a_file"].write_text("I am a file")
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture(scope="module")
def file_sizes(files):
    """The sizes of the input files before any command ran."""
    return {name: os.path.getsize(path) for name, path in files.items()}


def not_writable_folder(tmp_path) -> str | None:
    """A folder the command cannot write into, or None if this machine has none to offer."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder))
    except OSError:
        return str(folder / "out")
    # Root ignores permission bits; /sys refuses new folders even to root.
    if os.path.isdir("/sys"):
        try:
            os.rmdir(tempfile.mkdtemp(dir="/sys"))
        except OSError:
            return "/sys/keras_filters_out"
    return None


# (case, command-line arguments ({name} is a path from `files`), text the line must contain).
CASES = [
    ("unknown_application", [QUICKSTART, "--config.model=vgg61"], ["'vgg61'", "vgg16"]),
    ("missing_model_file", [QUICKSTART, "--config.model=/nowhere/model.keras"], ["/nowhere"]),
    ("not_a_keras_file", [QUICKSTART, "--config.model={text}"], ["notes.txt", ".keras"]),
    ("truncated_keras_file", [QUICKSTART, "--config.model={truncated}"], ["truncated.keras"]),
    ("corrupt_h5_file", [QUICKSTART, "--config.model={corrupt_h5}"], ["corrupt.h5"]),
    (
        "lambda_layer_without_opt_in",
        [QUICKSTART, "--config.model={lambda}", "--config.layer=doubling"],
        ["'doubling'", "--config.unsafe_deserialization=true"],
    ),
    ("unknown_layer", [QUICKSTART, "--config.layer=conv33"], ["'conv33'", "conv3, conv2"]),
    (
        "layer_without_channel_axis",
        [QUICKSTART, "--config.model={scalar}", "--config.layer=scalar"],
        ["'scalar'", "(Reshape) only passes on or rearranges the output of 'score'", "conv"],
    ),
    ("negative_filter_index", [QUICKSTART, "--config.filter_indices=(3, -1)"], ["-1"]),
    ("filter_index_too_large", [QUICKSTART, "--config.filter_indices=(64,)"], ["64", "0 to 63"]),
    ("empty_filter_list", [QUICKSTART, "--config.filter_indices="], ["empty filter list"]),
    (
        "image_too_small_for_pooling",
        [QUICKSTART, "--config.image_size=3"],
        ["image_size=3", "below 4 px"],
    ),
    (
        "image_too_small_for_border",
        [QUICKSTART, "--config.image_size=16", "--config.border=3"],
        ["border=3", "4x4"],
    ),
    (
        "canvas_too_small_for_its_antialiasing",
        ["--config=configs/quickstart.py", "--config.image_size=4"],
        ["--config.image_size=4 with --config.canvas_factor=2", "at least 5 px"],
    ),
    (
        "input_range_not_finite",
        [QUICKSTART, "--config.input_range=(nan, 1)"],
        ["--config.input_range=(nan, 1.0)", "finite"],
    ),
    ("crop_leaves_no_pixels", [QUICKSTART, "--config.crop=32"], ["crop=32", "0 to 31"]),
    (
        "image_size_of_fixed_input_model",
        [QUICKSTART, "--config.model={fixed}", "--config.layer=conv", "--config.image_size=64"],
        ["image_size=64", "32x32"],
    ),
    ("zero_steps", [QUICKSTART, "--config.num_steps=0"], ["num_steps=0", "≥ 1"]),
    ("negative_step_size", [QUICKSTART, "--config.step_size=-2.5"], ["step_size=-2.5"]),
    ("zero_step_size", [QUICKSTART, "--config.step_size=0"], ["step_size=0.0", "> 0"]),
    ("nan_step_size", [QUICKSTART, "--config.step_size=nan"], ["step_size=nan", "finite"]),
    ("infinite_step_size", [QUICKSTART, "--config.step_size=inf"], ["step_size=inf"]),
    ("negative_margin", [QUICKSTART, "--config.margin=-7"], ["margin=-7"]),
    ("zero_grid_rows", [QUICKSTART, "--config.grid_rows=0", "--config.grid_cols=3"], ["rows"]),
    ("zero_grid_cols", [QUICKSTART, "--config.grid_rows=3", "--config.grid_cols=0"], ["columns"]),
    ("negative_batch_size", [QUICKSTART, "--config.batch_size=-4"], ["batch_size=-4", "0 for"]),
    (
        "unknown_choice",
        [QUICKSTART, "--config.gradient_normalization=rmss"],
        ["'rmss'", "rms, l2, pixel_l2, none"],
    ),
    ("bad_value_type", [QUICKSTART, "--config.num_steps=abc"], ["abc", "integer"]),
    (
        "weights_of_another_architecture",
        [
            "--config.model=vgg16",
            "--config.weights={other_weights}",
            "--config.layer=block1_conv1",
            "--config.image_size=32",
        ],
        ["small_cnn.weights.h5", "vgg16"],
    ),
    (
        "imagenet_weights_not_downloadable",
        ["--config.model=vgg16", "--config.weights=imagenet"],
        ["weights='imagenet'", "--config.weights=none"],
    ),
    ("outdir_is_a_file", [QUICKSTART, "--outdir={a_file}"], ["a_file", "is a file"]),
    ("outdir_under_a_file", [QUICKSTART, "--outdir={a_file}/out"], ["a_file", "is a file"]),
    ("missing_config_file", ["--config=configs/no_such_config.py"], ["no_such_config.py"]),
    ("config_file_with_undeclared_key", ["--config={extra_key_config}"], ["'num_stepz'"]),
    ("override_of_undeclared_key", [QUICKSTART, "--config.num_stepz=3"], ["'num_stepz'"]),
    ("unknown_flag", [QUICKSTART, "--outdri=x"], ["--outdri", "outdir"]),
    (
        "override_of_a_part_of_a_setting",
        [QUICKSTART, "--config.num_steps.x=3"],
        ["--config.num_steps.x=3", "--config.num_steps=VALUE"],
    ),
    (
        "weights_file_for_a_saved_model",
        [QUICKSTART, "--config.weights={other_weights}"],
        ["small_cnn.weights.h5", "--config.model='demo'"],
    ),
    (
        "device_that_is_no_device_name",
        [QUICKSTART, "--config.strategy=mirrored", '--config.devices=("banana",)'],
        ["'banana'", "choose from", "cpu:0"],  # Each backend lists its own devices.
    ),
    (
        "device_name_that_is_empty",
        [QUICKSTART, "--config.strategy=mirrored", "--config.devices=('/cpu:0', '')"],
        [
            "--config.devices=('/cpu:0', '') holds an empty device name",
            "e.g. --config.devices=('/gpu:0', '/gpu:1'), or leave devices out",
        ],
    ),
    (
        "device_list_that_is_a_comma",  # Quoted, the command line reads it as one name: ','.
        [QUICKSTART, "--config.strategy=mirrored", "--config.devices=','"],
        ["--config.devices=(',',) names ','", "choose from", "cpu:0"],
    ),
    (
        "device_list_that_does_not_parse",  # Unquoted, the shell leaves a bare comma.
        [QUICKSTART, "--config.strategy=mirrored", "--config.devices=,"],
        ["--config.devices=,", 'devices takes a tuple of names, e.g. \'("/gpu:0", "/gpu:1")\''],
    ),
    (
        "device_named_twice",
        [QUICKSTART, "--config.strategy=mirrored", "--config.devices=('/cpu:0', '/CPU:0')"],
        ["'/cpu:0' twice (as '/cpu:0' and '/CPU:0')", "list each device once"],
    ),
    (
        "device_that_this_machine_lacks",
        [QUICKSTART, "--config.strategy=mirrored", '--config.devices=("/gpu:99",)'],
        ["gpu:99'", "choose from", "cpu:0"],
    ),
]

# Keras caches downloads here and would find nothing; the proxy refuses every connection, so
# the download fails at once, with or without a network.
OFFLINE = {
    "https_proxy": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
}


CONCURRENT_COMMANDS = 3


@pytest.fixture(scope="module")
def outcomes(request, files, file_sizes, tmp_path_factory):
    """{case: (finished process, outdir)} for the cases selected in this session."""
    selected = {
        item.callspec.params["case"]
        for item in request.session.items
        if item.originalname == "test_bad_input_is_one_line_exit_2_and_writes_nothing"
    }

    def run_case(case, arguments):
        folder = tmp_path_factory.mktemp(case)
        outdir = folder / "out"
        arguments = [argument.format(**files) for argument in arguments]
        if not any(argument.startswith("--outdir") for argument in arguments):
            arguments.append(f"--outdir={outdir}")
        environment = dict(OFFLINE, KERAS_HOME=str(folder / "keras_home"))
        return run_command(*arguments, environment=environment), outdir

    with ThreadPoolExecutor(CONCURRENT_COMMANDS) as pool:
        futures = {
            case: pool.submit(run_case, case, arguments)
            for case, arguments, _ in CASES
            if case in selected
        }
        return {case: future.result() for case, future in futures.items()}


def assert_one_line_error(finished, expected):
    assert finished.returncode == 2, (finished.returncode, finished.stderr)
    assert "Traceback" not in finished.stderr
    lines = finished.stderr.splitlines()
    assert len(lines) == 1, finished.stderr
    assert lines[0].startswith("keras-filters: error: ")
    for text in expected:
        assert text in lines[0], (text, lines[0])


@pytest.mark.parametrize("case, arguments, expected", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case, arguments, expected, files, file_sizes, outcomes
):
    finished, outdir = outcomes[case]
    assert_one_line_error(finished, expected)
    assert not outdir.exists()
    # The files given as input, the outdir that is a file among them, are left as they were.
    assert {name: os.path.getsize(path) for name, path in files.items()} == file_sizes
    assert sorted(os.listdir(os.path.dirname(files["text"]))) == sorted(
        os.path.basename(path) for path in files.values()
    )


def test_outdir_that_is_not_writable(tmp_path):
    outdir = not_writable_folder(tmp_path)
    if outdir is None:
        pytest.skip("no folder on this machine is closed to this user")
    finished = run_command(QUICKSTART, f"--outdir={outdir}")
    assert_one_line_error(finished, [outdir, "not writable"])
    assert not os.path.exists(outdir)
    (tmp_path / "read_only").chmod(0o755)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="multi_worker is tf.distribute's: other backends refuse it before reading TF_CONFIG",
)
def test_multi_worker_with_a_tf_config_that_is_not_json(tmp_path):
    finished = run_command(
        QUICKSTART,
        "--config.strategy=multi_worker",
        f"--outdir={tmp_path / 'out'}",
        environment={"TF_CONFIG": "{'cluster': 1}"},
    )
    assert_one_line_error(finished, ["TF_CONFIG", "\"{'cluster': 1}\"", "not JSON"])
    assert not (tmp_path / "out").exists()


def test_command_line_names_the_flag_where_python_names_the_setting(tmp_path):
    finished = run_command(QUICKSTART, "--config.image_size=-5", f"--outdir={tmp_path / 'out'}")
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines() == [
        "keras-filters: error: --config.image_size=-5 is out of range: use an integer ≥ 1 "
        "(pixels), up to 16384"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "error, detail",
    [
        (
            MemoryError(
                "Unable to allocate 112. GiB for an array with shape (1, 3, 100000, 50001, 2) "
                "and data type float32"
            ),
            " (Unable to allocate 112. GiB for an array with shape (1, 3, 100000, 50001, 2) "
            "and data type float32)",
        ),
        (MemoryError(), ""),
    ],
)
def test_running_out_of_memory_ends_in_one_line(error, detail, monkeypatch, capsys):
    assert run_main(raising(error), monkeypatch) == 2
    assert capsys.readouterr().err == (
        f"keras-filters: error: out of memory{detail}; use a smaller image_size or batch_size\n"
    )


# TensorFlow's report of a step that ran out of GPU memory: the allocation's line sits among the
# lines of the stack where the graph was built, and ends in a hint and the op.
GRAPH_OUT_OF_MEMORY = """Graph execution error:

Detected at node model/block5_conv1/Conv2D defined at (most recent call last):
  File "scripts/visualize.py", line 9, in <module>

  File "keras_filters/optvis/step.py", line 40, in step

OOM when allocating tensor with shape[64,512,128,128] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc
\t [[{{node model/block5_conv1/Conv2D}}]]
Hint: If you want to see a list of allocated tensors when OOM happens, add report_tensor_allocations_upon_oom to RunOptions for current allocation info. This isn't available when running in Eager mode.
 [Op:__inference_step_1234]"""  # noqa: E501
EAGER_OUT_OF_MEMORY = (
    "{{function_node __wrapped__Fill_device_/job:localhost/replica:0/task:0/device:CPU:0}} OOM "
    "when allocating tensor with shape[100000000,1000000] and type float on "
    "/job:localhost/replica:0/task:0/device:CPU:0 by allocator mklcpu [Op:Fill] name: "
)


def device_out_of_memory(backend: str, tensorflow_message: str):
    """The error that `backend` raises for a device out of memory: TensorFlow's, made here (its
    allocator retries for 10 s before it gives up), or JAX's own, for 400 TB."""
    if backend == "jax":
        with pytest.raises(RuntimeError) as raised:
            keras.ops.zeros((10**8, 10**6))
        return raised.value
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError(None, None, tensorflow_message)


@pytest.mark.parametrize(
    "backend, tensorflow_message, allocation",
    [
        (
            "tensorflow",
            GRAPH_OUT_OF_MEMORY,
            "OOM when allocating tensor with shape[64,512,128,128] and type float on "
            "/job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc",
        ),
        (
            "tensorflow",
            EAGER_OUT_OF_MEMORY,
            "OOM when allocating tensor with shape[100000000,1000000] and type float on "
            "/job:localhost/replica:0/task:0/device:CPU:0 by allocator mklcpu [Op:Fill] name:",
        ),
        ("jax", "", "RESOURCE_EXHAUSTED: Out of memory allocating 400000000000000 bytes."),
    ],
    ids=["tensorflow_graph", "tensorflow_eager", "jax"],
)
def test_a_device_out_of_memory_ends_in_one_line_with_the_settings_that_lower_it(
    backend, tensorflow_message, allocation, monkeypatch, capsys
):
    if keras.backend.backend() != backend:
        pytest.skip(f"the error of the {backend} backend")
    from keras_filters import backends

    backends.current()  # A command has loaded its backend before it can run out of memory.
    assert run_main(raising(device_out_of_memory(backend, tensorflow_message)), monkeypatch) == 2
    assert capsys.readouterr().err == (
        f"keras-filters: error: the device ran out of memory ({allocation}); use a smaller "
        "image_size or batch_size\n"
    )


def test_a_backend_error_that_is_not_out_of_memory_is_not_reported_as_one(monkeypatch):
    from keras_filters import backends

    backends.current()
    other = RuntimeError("INTERNAL: the step could not be compiled")
    with pytest.raises(RuntimeError, match="INTERNAL: the step could not be compiled"):
        run_main(raising(other), monkeypatch)
