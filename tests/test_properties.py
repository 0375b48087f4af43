"""Any settings of the right types either give a run or one UsageError line, and a bad one
writes nothing: never another exception. Settings inside the valid region always run, so an
over-strict check fails the second property.

The runs go through `job.run`, the entry point the command calls after parsing its flags,
on the demo model with small sizes.
"""

import os
import tempfile

from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from keras_filters import errors
from keras_filters import settings as settings_lib
from keras_filters.job import run as job


def words(choices):
    """A valid choice, or a word that is not one."""
    return st.sampled_from([*choices, "bogus", ""])


any_int = st.integers(-(2**40), 2**40)
any_float = st.floats(allow_nan=True, allow_infinity=True)

# Values a user would give: most runs with them succeed, on the demo model in a fraction of a
# second; some fail (a crop or border too large for the size, a filter the layer lacks).
USUAL = {
    "model": st.just("demo"),
    "weights": st.just("none"),
    "include_top": st.booleans(),
    "unsafe_deserialization": st.booleans(),
    "layer": st.sampled_from(["conv1", "conv2", "conv3", "pool2", "global_pool", "logits"]),
    "max_filters": st.integers(0, 5),
    "filter_indices": st.lists(st.integers(0, 20), max_size=3, unique=True).map(tuple),
    "border": st.integers(0, 1),
    "image_size": st.integers(4, 40),
    "num_steps": st.integers(1, 3),
    "step_size": st.floats(0.01, 20.0),
    "gradient_normalization": st.sampled_from(settings_lib.GRADIENT_NORMALIZATIONS),
    "gradient_epsilon": st.sampled_from([0.0, 1e-5, 1.0]),
    "num_upscalings": st.integers(0, 2),
    "upscale_factor": st.floats(1.0, 2.0),
    "init_distribution": st.sampled_from(settings_lib.INIT_DISTRIBUTIONS),
    "init_low": st.floats(-1.0, 0.5),
    "init_high": st.floats(0.5, 2.0),
    "seed": st.integers(0, 2**32 - 1),
    "deprocess": st.sampled_from(settings_lib.DEPROCESS_STYLES),
    "deprocess_scale": st.floats(0.01, 1.0),
    "deprocess_epsilon": st.sampled_from([0.0, 1e-5]),
    "crop": st.integers(0, 3),
    "selection": st.sampled_from(settings_lib.SELECTIONS),
    "dead_threshold": st.floats(-1.0, 1.0),
    "dead_at_any_step": st.booleans(),
    "grid_rows": st.integers(1, 3),
    "grid_cols": st.integers(1, 3),
    "margin": st.integers(0, 3),
    "grid_order": st.sampled_from(settings_lib.GRID_ORDERS),
    "batch_size": st.integers(0, 4),
    "save_tiles": st.booleans(),
    "progress": st.just(False),
}

# Any value of the setting's type.
ANY = {
    "model": st.sampled_from(["demo", "vgg61", "missing.keras", "/", ""]),
    "layer": st.sampled_from(["image", "conv9", "", "conv3/"]),
    "max_filters": any_int,
    "filter_indices": st.lists(any_int, max_size=3).map(tuple),
    "border": any_int,
    "image_size": st.integers(-(2**40), 64),
    "num_steps": st.integers(-(2**40), 5),
    "step_size": any_float,
    "gradient_normalization": words(settings_lib.GRADIENT_NORMALIZATIONS),
    "gradient_epsilon": any_float,
    "num_upscalings": st.integers(-(2**40), 3),
    "upscale_factor": any_float,
    "init_distribution": words(settings_lib.INIT_DISTRIBUTIONS),
    "init_low": any_float,
    "init_high": any_float,
    "seed": any_int,
    "deprocess": words(settings_lib.DEPROCESS_STYLES),
    "deprocess_scale": any_float,
    "deprocess_epsilon": any_float,
    "crop": any_int,
    "selection": words(settings_lib.SELECTIONS),
    "dead_threshold": any_float,
    "grid_rows": any_int,
    "grid_cols": any_int,
    "margin": any_int,
    "grid_order": words(settings_lib.GRID_ORDERS),
    "batch_size": st.integers(-(2**40), 70),
}


@st.composite
def settings_within_types(draw):
    """Usual settings with up to two of them replaced by any value of their type."""
    settings = draw(st.fixed_dictionaries(USUAL))
    for key in draw(st.lists(st.sampled_from(sorted(ANY)), max_size=2, unique=True)):
        settings[key] = draw(ANY[key])
    return settings


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(settings=settings_within_types())
def test_any_settings_run_or_fail_in_one_line_writing_nothing(settings):
    with tempfile.TemporaryDirectory() as folder:
        outdir = os.path.join(folder, "out")
        try:
            record = job.run(outdir, settings)
        except errors.UsageError as error:
            assert "\n" not in str(error) and str(error)
            assert not os.path.exists(outdir), os.listdir(outdir)
            event(f"usage error: {str(error).split(' ')[0]}")
            return
        event("ran")
        assert len(record["filters"]) >= 1
        assert os.path.exists(os.path.join(outdir, "run.json"))
        assert not os.path.exists(os.path.join(outdir, ".progress"))


# A region of USUAL that every check must accept: filters every layer has (logits has 6),
# images large enough for the demo model's two poolings at every scale, crops that leave pixels.
VALID = {
    **USUAL,
    "filter_indices": st.lists(st.integers(0, 5), max_size=3, unique=True).map(tuple),
    "image_size": st.integers(24, 40),
    "num_upscalings": st.integers(0, 1),
    "upscale_factor": st.floats(1.0, 1.5),
    "crop": st.integers(0, 3),
}


@hypothesis_settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(settings=st.fixed_dictionaries(VALID))
def test_valid_settings_always_run(settings):
    with tempfile.TemporaryDirectory() as folder:
        record = job.run(os.path.join(folder, "out"), settings)
    count = record["layer_filters"]
    if settings["max_filters"]:
        count = min(count, settings["max_filters"])
    expected = list(settings["filter_indices"]) or list(range(count))
    assert [entry["index"] for entry in record["filters"]] == expected
    assert record["complete"] and record["image_sizes"][-1] == settings["image_size"]
