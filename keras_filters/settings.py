"""Every setting of keras-filters, declared once: name, type, default, valid values, meaning.

`Settings` is the one declaration. `Settings.create(...)` turns user input (keyword arguments,
a config dict) into a frozen, typed object through the one validation, so each entry point
(the command line, `visualize_filters`, the job) checks its input once and passes the typed
object down. `configs/base.py` is built from `default_config()`; recipes override its keys.

Nothing here imports TensorFlow, so the command checks its settings before TensorFlow starts.
Messages are in Python words (`image_size=-5 is out of range: use an integer ≥ 1`); the command
line rewrites them into flag words (`--config.image_size=-5 …`).
"""

import dataclasses
import math
import numbers
import re
from collections.abc import Callable, Mapping

import numpy as np

from keras_filters import errors
from keras_filters.model import files as model_files

# The largest seed: keras.utils.set_random_seed hands it to NumPy's 32-bit legacy seeding.
MAX_SEED = 2**32 - 1
# Images are float32: noise or a step beyond this would start as infinity.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The smallest float32 above 0 at full precision: a divisor below it is 0 in float32.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
# The largest image side: one tile of it is the largest mosaic (image.mosaic.MAX_MOSAIC_PIXELS,
# 2**28 pixels); the largest published figure (keras_v3_upscale) is 412 px.
MAX_IMAGE_SIZE = 2**14
# The Fourier picture: its spectrum is scaled by 1/f**fourier_decay and fourier_gain, and drawn
# with std fourier_init_std. Within these bounds the spectrum of the largest canvas
# (MAX_IMAGE_SIZE × 8 px) stays far inside float32; beyond them the picture is saturated (all
# 0 or 1 through the sigmoid) or the step overflows.
MAX_FOURIER_DECAY = 4.0
MAX_FOURIER_GAIN = 100.0
MAX_FOURIER_INIT_STD = 100.0
# The half-width, in output pixels, of the antialiasing filter that shrinks the canvas
# (optvis.resample.downsample).
ANTIALIAS_LOBES = 5

GRADIENT_NORMALIZATIONS = ("rms", "l2", "pixel_l2", "none")
INIT_DISTRIBUTIONS = ("uniform", "normal")
DEPROCESS_STYLES = ("standard", "dlwp2", "picture")
SELECTIONS = ("first", "top")
GRID_ORDERS = ("row", "column")
AUTOMATIC_GRIDS = ("fit", "square")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
PARAMETERIZATIONS = ("pixel", "fourier")
OPTIMIZERS = ("normalized_gradient", "adam")
SCHEDULES = ("constant", "linear", "cosine")
# The transforms as the `transforms` setting writes them; `optvis.transforms` builds them.
TRANSFORM_FORMS = (
    "pad(pixels)",
    "jitter(pixels)",
    "shift(fraction)",
    "scale(low, high)",
    "rotate(degrees)",
)
# lucid's standard list (Distill 2017): pad 12, jitter 8, scale 0.9-1.1, rotate ±10°, jitter 4.
STANDARD_TRANSFORMS = ("pad(12)", "jitter(8)", "scale(0.9, 1.1)", "rotate(10)", "jitter(4)")

# The groups, in the order `configs/base.py` and `--help` show them.
GROUPS = (
    "The model",
    "Which filters",
    "The objective and the ascent",
    "The optimizer",
    "The image parameterization",
    "Transforms",
    "Regularizers",
    "The initial noise",
    "Deprocess",
    "The mosaic",
    "Execution",
    "Scale-out",
    "Published figures",
    "Atlas",
)


@dataclasses.dataclass(frozen=True)
class AppliesWhen:
    """When a setting has an effect: while another setting has one of `values`, or passes `test`.

    Attributes:
        setting: The other setting.
        values: The values of it with which the setting acts.
        test: Instead of `values`, whether a value of it lets the setting act.
        words: The condition after "it applies only", for a `test` ("when filter_indices is
            empty"); `values` say it themselves ("with parameterization='fourier'").
    """

    setting: str
    values: tuple = ()
    test: Callable | None = None
    words: str = ""

    def holds(self, value) -> bool:
        """Whether the setting acts when the other setting is `value`."""
        return self.test(value) if self.test is not None else value in self.values

    def describe(self) -> str:
        """The condition in words: "with schedule='linear' or 'cosine'"."""
        if self.words:
            return self.words
        return f"with {self.setting}=" + " or ".join(show(value) for value in self.values)


def setting(
    default,
    meaning: str,
    group: str,
    *,
    choices: tuple = (),
    valid: Callable | None = None,
    requirement: str = "",
    non_empty: bool = False,
    names: bool = False,
    numbers: bool = False,
    example: str = "",
    applies_when: AppliesWhen | None = None,
):
    """Declares one setting: a dataclass field whose metadata holds its rules and meaning.

    Args:
        default: The default value; its type is the setting's type (ints pass as floats).
        meaning: One line that says what the setting does.
        group: One of GROUPS.
        choices: The words a text setting may take.
        valid: A test of the value's range.
        requirement: What `valid` asks for, in words ("an integer ≥ 1").
        non_empty: A text setting that cannot be empty.
        names: A tuple setting that holds names (text) rather than integers.
        numbers: A tuple setting that holds numbers (floats) rather than integers.
        example: For a tuple of names: a value as the command line takes it, shown with a value
            of the wrong type. Defaults to layer names.
        applies_when: The condition without which the setting has no effect; a value given
            explicitly outside it is reported (`unused_settings`). Defaults to None: always.
    """
    metadata = dict(
        meaning=meaning,
        group=group,
        choices=choices,
        valid=valid,
        requirement=requirement,
        non_empty=non_empty,
        names=names,
        numbers=numbers,
        example=example or '("block1_conv1", "block2_conv1")',
        applies_when=applies_when,
    )
    return dataclasses.field(default=default, metadata=metadata)


def _finite(value) -> bool:
    return math.isfinite(value)


def antialias_first_tap(factor: int, lobes: int = ANTIALIAS_LOBES) -> int:
    """The first input pixel that the `factor`-to-1 antialiasing filter reads, counted from its
    output pixel's block (≤ 0): `optvis.resample.downsample` reflects `-antialias_first_tap`
    pixels at each border. Pure Python, so the settings check the image size before Keras
    starts."""
    return math.floor((factor - 1) / 2.0 - lobes * factor) + 1


def smallest_canvas_image(factor: int) -> int:
    """The smallest image side whose canvas of `factor` times it can be downsampled: the canvas
    must be larger than the reflected border (TensorFlow's reflect padding needs that)."""
    return -antialias_first_tap(factor) // factor + 1


def is_saved_model(model) -> bool:
    """Whether `model` names the demo model or a saved model file, which bring their own
    weights; a `keras.Model` object, as the Python API takes, is neither."""
    return isinstance(model, str) and (
        model == model_files.DEMO_MODEL_NAME or model_files.is_model_path(model)
    )


def is_applications_model(model) -> bool:
    """Whether `model` names a Keras Applications model ("vgg16"), built from its name."""
    return isinstance(model, str) and not is_saved_model(model)


# Rounds of rival restarts at most: each round judges every picture against every filter.
MAX_RIVAL_ROUNDS = 16

# The conditions that several settings share (`applies_when`), each checked in the code that
# reads the settings: `pipeline.make_parameterization` passes the Fourier settings only to
# `param.Fourier` and the noise settings only to `param.Pixel`; `update.make_update` passes the
# normalization only to the normalized-gradient step; `model.loading.load_model` passes
# weights and include_top only to a Keras Applications model, unsafe_deserialization only to
# a saved file.
FOURIER_ONLY = AppliesWhen("parameterization", ("fourier",))
PIXEL_ONLY = AppliesWhen("parameterization", ("pixel",))
NORMALIZED_GRADIENT_ONLY = AppliesWhen("optimizer", ("normalized_gradient",))
APPLICATIONS_ONLY = AppliesWhen(
    "model", test=is_applications_model, words="for a Keras Applications model"
)
SAVED_MODEL_ONLY = AppliesWhen(
    "model", test=is_saved_model, words="for the demo model or a saved model file"
)

# The check of a setting that is a float32 number ≥ 0 (a weight, an epsilon).
NON_NEGATIVE_FLOAT32 = dict(
    valid=lambda v: 0 <= v <= FLOAT32_MAX, requirement="a number ≥ 0 (up to 3.4e38, float32)"
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """A validated, read-only set of every setting; build it with `Settings.create`."""

    # --- The model ---
    model: str = setting(
        "vgg16",
        '"demo" (the CNN shipped with the package), a Keras Applications name in any case '
        '("vgg16", "ResNet50V2", "convnext_tiny"), or a .keras / .h5 / .hdf5 file.',
        "The model",
        non_empty=True,
    )
    weights: str = setting(
        "imagenet",
        'Keras Applications weights: "imagenet" (downloaded once by Keras), "none", or a file.',
        "The model",
        non_empty=True,
        applies_when=APPLICATIONS_ONLY,
    )
    include_top: bool = setting(
        False,
        "Keras Applications: keep the classifier on top (fixes the input size, e.g. 224 px).",
        "The model",
        applies_when=APPLICATIONS_ONLY,
    )
    unsafe_deserialization: bool = setting(
        False,
        "Let a saved model file run code of its own (Lambda layers). Only for files you trust.",
        "The model",
        applies_when=SAVED_MODEL_ONLY,
    )
    layer: str = setting(
        "block5_conv1",
        'The layer to visualize; "outer/inner" for a layer of a nested model.',
        "The model",
        non_empty=True,
    )

    # --- Which filters ---
    max_filters: int = setting(
        200,
        "How many filters are tried, counting from index 0; 0 tries every filter of the layer.",
        "Which filters",
        valid=lambda v: v >= 0,
        requirement="an integer ≥ 1, or 0 to try every filter",
        applies_when=AppliesWhen(
            "filter_indices", test=lambda v: not v, words="when filter_indices is empty"
        ),
    )
    filter_indices: tuple = setting(
        (),
        'Explicit filter indices, e.g. "(0, 5, 9)"; overrides max_filters.',
        "Which filters",
    )

    # --- The objective and the ascent ---
    border: int = setting(
        0,
        "Pixels of the activation map's border left out of the mean (keras.io leaves out 2).",
        "The objective and the ascent",
        valid=lambda v: v >= 0,
        requirement="an integer ≥ 0",
    )
    image_size: int = setting(
        128,
        "Side of the square input image in pixels (the final size when there are scales).",
        "The objective and the ascent",
        valid=lambda v: 1 <= v <= MAX_IMAGE_SIZE,
        requirement=f"an integer ≥ 1 (pixels), up to {MAX_IMAGE_SIZE}",
    )
    num_steps: int = setting(
        20,
        "Ascent steps per scale.",
        "The objective and the ascent",
        valid=lambda v: v >= 1,
        requirement="an integer ≥ 1",
    )
    step_size: float = setting(
        1.0,
        "How far each normalized step moves the image; Adam's learning rate (optimizer=adam).",
        "The objective and the ascent",
        valid=lambda v: 0 < v <= FLOAT32_MAX,
        requirement="a finite number > 0 (up to 3.4e38, float32)",
    )
    gradient_normalization: str = setting(
        "rms",
        '"rms" (Keras blog), "l2" (keras.io, DLwP 2nd ed.), "pixel_l2" (DLwP 3rd ed.) or "none".',
        "The objective and the ascent",
        choices=GRADIENT_NORMALIZATIONS,
        applies_when=NORMALIZED_GRADIENT_ONLY,
    )
    gradient_epsilon: float = setting(
        1e-5,
        "Added to each image's gradient norm, so that a dead filter takes a zero step, never NaN.",
        "The objective and the ascent",
        **NON_NEGATIVE_FLOAT32,
        applies_when=NORMALIZED_GRADIENT_ONLY,
    )
    num_upscalings: int = setting(
        0,
        "Multi-scale schedule (2019 Keras example): upscalings; the sizes visited are "
        "int(image_size / upscale_factor**k) for k = num_upscalings … 0.",
        "The objective and the ascent",
        valid=lambda v: v >= 0,
        requirement="an integer ≥ 0",
    )
    upscale_factor: float = setting(
        1.2,
        "Factor between the scales of the multi-scale schedule.",
        "The objective and the ascent",
        valid=lambda v: _finite(v) and v >= 1,
        requirement="a finite number ≥ 1",
        applies_when=AppliesWhen(
            "num_upscalings", test=lambda v: v >= 1, words="with num_upscalings ≥ 1"
        ),
    )

    # --- The optimizer (issue 10: transforms branch adds its fields here) ---
    optimizer: str = setting(
        "normalized_gradient",
        '"normalized_gradient": step_size along each image\'s normalized gradient (the '
        'references); "adam": Adam ascent with learning rate step_size.',
        "The optimizer",
        choices=OPTIMIZERS,
    )
    schedule: str = setting(
        "constant",
        '"constant": step_size at every step; "linear" or "cosine": from step_size at the first '
        "step down to step_size × final_step_fraction at the last.",
        "The optimizer",
        choices=SCHEDULES,
    )
    final_step_fraction: float = setting(
        0.1,
        'The last step\'s size as a fraction of step_size, for a "linear" or "cosine" schedule.',
        "The optimizer",
        valid=lambda v: _finite(v) and 0 < v <= 1,
        requirement="a number in (0, 1]",
        applies_when=AppliesWhen("schedule", ("linear", "cosine")),
    )

    # --- The image parameterization ---
    parameterization: str = setting(
        "pixel",
        '"pixel": the image is the parameters (the references); "fourier": a 1/f-scaled '
        "spectrum in a decorrelated colour space, squashed into [0, 1] and mapped into the "
        "model's input range (lucid, Distill).",
        "The image parameterization",
        choices=PARAMETERIZATIONS,
    )
    input_range: tuple = setting(
        (),
        "The model's input range (low, high) for a picture in [0, 1] (fourier); empty: the "
        "Keras Applications family's preprocess_input, [0, 1] for the demo model, or a model "
        "file's leading Rescaling layer.",
        "The image parameterization",
        numbers=True,
        valid=lambda v: (
            not v or (len(v) == 2 and all(abs(x) <= FLOAT32_MAX for x in v) and v[0] < v[1])
        ),
        requirement="two finite numbers (low, high) with low < high, within ±3.4e38 (float32), "
        "or () for automatic",
    )
    fourier_decay: float = setting(
        1.0,
        "Each frequency's amplitude is scaled by 1/f**fourier_decay (1: natural images' spectrum).",
        "The image parameterization",
        valid=lambda v: 0 <= v <= MAX_FOURIER_DECAY,
        requirement=f"a number from 0 to {MAX_FOURIER_DECAY:g}",
        applies_when=FOURIER_ONLY,
    )
    fourier_gain: float = setting(
        0.25,
        "Overall factor of the spectrum: how far one step moves the picture.",
        "The image parameterization",
        valid=lambda v: 0 < v <= MAX_FOURIER_GAIN,
        requirement=f"a number > 0, up to {MAX_FOURIER_GAIN:g}",
        applies_when=FOURIER_ONLY,
    )
    fourier_init_std: float = setting(
        0.01,
        "Standard deviation of the starting spectrum (seeded per (seed, filter)).",
        "The image parameterization",
        valid=lambda v: 0 <= v <= MAX_FOURIER_INIT_STD,
        requirement=f"a number from 0 to {MAX_FOURIER_INIT_STD:g}",
        applies_when=FOURIER_ONLY,
    )
    decorrelate_colour: bool = setting(
        True,
        "Optimize RGB pictures in a decorrelated colour space (luminance and two opponent "
        "axes, scaled as in natural photos).",
        "The image parameterization",
        applies_when=FOURIER_ONLY,
    )
    canvas_factor: int = setting(
        1,
        "Optimize the picture at this many times the image size, then downsample it with "
        "antialiasing inside the step (kills pooling-grid checkerboards).",
        "The image parameterization",
        valid=lambda v: 1 <= v <= 8,
        requirement="an integer from 1 to 8",
        applies_when=FOURIER_ONLY,
    )
    downsample_cutoff: float = setting(
        0.5,
        "Cutoff of that antialiasing, in cycles per pixel of the image (0.5: Nyquist).",
        "The image parameterization",
        valid=lambda v: _finite(v) and 0 < v <= 0.5,
        requirement="a number in (0, 0.5]",
        applies_when=FOURIER_ONLY,
    )
    relu_warmup_steps: int = setting(
        0,
        "For the first steps, ReLUs whose gradient is zero for an image pass it where it "
        "would raise their input, so filters that never fire from noise still move.",
        "The objective and the ascent",
        valid=lambda v: v >= 0,
        requirement="an integer ≥ 0",
    )
    rival_rounds: int = setting(
        0,
        "After the ascent, a filter whose picture excites it less than another filter's "
        "picture does starts again from that picture for rival_steps steps; at most this many "
        "rounds, each judging all pictures again (see optvis/rivals.py). 0: off.",
        "The objective and the ascent",
        valid=lambda v: 0 <= v <= MAX_RIVAL_ROUNDS,
        requirement=f"an integer from 0 to {MAX_RIVAL_ROUNDS}",
    )
    rival_steps: int = setting(
        64,
        "Steps of each rival restart (at most the ascent's): the second half of the "
        "schedule, compressed.",
        "The objective and the ascent",
        valid=lambda v: v >= 1,
        requirement="an integer ≥ 1",
        applies_when=AppliesWhen(
            "rival_rounds", test=lambda v: v > 0, words="when rival_rounds is above 0"
        ),
    )

    # --- Transforms (issue 10: transforms branch adds its fields here) ---
    transforms: tuple = setting(
        (),
        "Random transforms of the image at every step, in order, drawn per (seed, filter, "
        'step): "pad(pixels)", "jitter(pixels)", "scale(low, high)", "rotate(degrees)"; '
        f"lucid's standard list is {STANDARD_TRANSFORMS}. Empty: none.",
        "Transforms",
        names=True,
        example='("pad(12)", "jitter(8)")',
    )

    # --- Regularizers (issue 10: objectives branch adds its fields here) ---
    total_variation_weight: float = setting(
        0.0,
        "Weight of the total-variation penalty (mean |neighbour difference|) on the image.",
        "Regularizers",
        **NON_NEGATIVE_FLOAT32,
    )
    l2_weight: float = setting(
        0.0,
        "Weight of the L2 penalty (mean squared value) on the image.",
        "Regularizers",
        **NON_NEGATIVE_FLOAT32,
    )
    blur_weight: float = setting(
        0.0,
        "Weight of the blur penalty (what a 3x3 box blur would remove) on the image.",
        "Regularizers",
        **NON_NEGATIVE_FLOAT32,
    )

    # --- The initial noise ---
    init_distribution: str = setting(
        "uniform",
        '"uniform": U[init_low, init_high); "normal": mean at the midpoint, std half the range.',
        "The initial noise",
        choices=INIT_DISTRIBUTIONS,
        applies_when=PIXEL_ONLY,
    )
    init_low: float = setting(
        118.0,
        "Lower end of the initial noise (U[118, 138) is the blog's grey in raw 0-255 space).",
        "The initial noise",
        valid=lambda v: abs(v) <= FLOAT32_MAX,
        requirement="a number within ±3.4e38 (float32)",
        applies_when=PIXEL_ONLY,
    )
    init_high: float = setting(
        138.0,
        "Upper end of the initial noise.",
        "The initial noise",
        valid=lambda v: abs(v) <= FLOAT32_MAX,
        requirement="a number within ±3.4e38 (float32)",
        applies_when=PIXEL_ONLY,
    )
    seed: int = setting(
        0,
        "Seeds the noise; each filter's noise comes from (seed, filter index).",
        "The initial noise",
        valid=lambda v: 0 <= v <= MAX_SEED,
        requirement=f"an integer from 0 to {MAX_SEED}",
    )

    # --- Deprocess ---
    deprocess: str = setting(
        "standard",
        '"standard" (−mean, /(std+eps), ×scale, +0.5, clip, ×255), "dlwp2" (/std, ×64, +128) '
        'or "picture" (the model\'s input range onto 0–255, as the picture is: the quality '
        "recipe).",
        "Deprocess",
        choices=DEPROCESS_STYLES,
    )
    deprocess_scale: float = setting(
        0.1,
        'Contrast factor of the "standard" deprocess (0.1 blog, 0.15 keras.io, 0.25 Keras 2019).',
        "Deprocess",
        # The multi-scale schedule divides by it: it must be a float32 above 0.
        valid=lambda v: FLOAT32_TINY <= v <= FLOAT32_MAX,
        requirement="a number > 0, from 1.2e-38 to 3.4e38 (float32)",
    )
    deprocess_epsilon: float = setting(
        1e-5,
        'Added to the std in the "standard" deprocess.',
        "Deprocess",
        **NON_NEGATIVE_FLOAT32,
    )
    crop: int = setting(
        0,
        "Pixels cropped from each side of every tile after deprocessing (keras.io crops 25).",
        "Deprocess",
        valid=lambda v: v >= 0,
        requirement="an integer ≥ 0",
    )

    # --- The mosaic ---
    selection: str = setting(
        "top",
        '"first": filters in index order; "top": best final loss first, dead filters left out.',
        "The mosaic",
        choices=SELECTIONS,
    )
    dead_threshold: float = setting(
        0.0,
        "A filter is dead when its final loss is ≤ this threshold.",
        "The mosaic",
        valid=lambda v: not math.isnan(v),
        requirement="a number, not NaN",
    )
    dead_at_any_step: bool = setting(
        False,
        "Also call a filter dead when its loss is ≤ the threshold at any step (Keras 2019).",
        "The mosaic",
    )
    grid_rows: int = setting(
        0,
        "Rows of the grid; 0 with grid_cols=0: an automatic grid (see automatic_grid).",
        "The mosaic",
        valid=lambda v: v >= 0,
        requirement="an integer ≥ 1, or 0 with grid_cols=0 for automatic",
    )
    grid_cols: int = setting(
        0,
        "Columns of the grid (see grid_rows).",
        "The mosaic",
        valid=lambda v: v >= 0,
        requirement="an integer ≥ 1, or 0 with grid_rows=0 for automatic",
    )
    automatic_grid: str = setting(
        "fit",
        'The automatic grid: "fit", the smallest near-square grid that holds every shown filter '
        '(empty cells at the end); "square", the largest square they fill (Keras 2019).',
        "The mosaic",
        choices=AUTOMATIC_GRIDS,
        applies_when=AppliesWhen(
            "grid_rows", test=lambda v: v == 0, words="with grid_rows=0 and grid_cols=0"
        ),
    )
    margin: int = setting(
        5,
        "Black pixels between tiles.",
        "The mosaic",
        valid=lambda v: v >= 0,
        requirement="an integer ≥ 0 (pixels)",
    )
    grid_order: str = setting(
        "row",
        '"row" (row-major) or "column" (column-major, DLwP 1st ed.).',
        "The mosaic",
        choices=GRID_ORDERS,
    )

    # --- Execution ---
    batch_size: int = setting(
        0,
        "Filters optimized together in one batch; 0 picks a size from the free memory.",
        "Execution",
        valid=lambda v: v >= 0,
        requirement="an integer ≥ 1, or 0 for automatic",
    )
    jit_compile: bool = setting(
        False,
        "Compile the step with XLA (1.5x slower on a oneDNN CPU; see README, Performance).",
        "Execution",
    )
    mixed_precision: bool = setting(
        False,
        'Compute the model in bfloat16 ("mixed_bfloat16"); image and objective stay float32.',
        "Execution",
    )
    save_tiles: bool = setting(
        False, "Also write each filter's tile as its own PNG under tiles/.", "Execution"
    )
    progress: bool = setting(True, "Show the progress line on stderr.", "Execution")

    # --- Scale-out ---
    strategy: str = setting(
        "default",
        '"default" (one device), "mirrored" (all local GPUs, or the named devices), '
        '"multi_worker" (the cluster in TF_CONFIG), "tpu" (the TPU at tpu_address).',
        "Scale-out",
        choices=STRATEGIES,
    )
    devices: tuple = setting(
        (),
        'Devices for "mirrored", e.g. ("/gpu:0", "/gpu:1"); empty: every local GPU. Naming more '
        "CPUs than there are splits the host CPU into that many logical devices.",
        "Scale-out",
        names=True,
        example='("/gpu:0", "/gpu:1")',
    )
    tpu_address: str = setting(
        "",
        'The TPU for "tpu": a name or grpc:// address; empty: the TPU VM\'s own or $TPU_NAME.',
        "Scale-out",
    )
    num_shards: int = setting(
        1,
        "Split the filters among this many independent jobs (scripts/merge.py joins them).",
        "Scale-out",
        valid=lambda v: v >= 1,
        requirement="an integer ≥ 1",
    )
    shard_index: int = setting(
        0,
        "Which share of the filters this job takes, from 0 to num_shards − 1.",
        "Scale-out",
        valid=lambda v: v >= 0,
        requirement="an integer ≥ 0",
    )

    # --- Published figures ---
    linear_output: bool = setting(
        False,
        "Visualize the last layer before its softmax (or other activation): its logit, not its "
        "probability (blog_classes).",
        "Published figures",
    )
    panel_layers: tuple = setting(
        (),
        "Several layers in one image, one titled panel each, stacked (the blog's overview); "
        "takes the place of layer.",
        "Published figures",
        names=True,
    )
    panel_titles: tuple = setting(
        (), "One title per panel layer; empty: the layer names.", "Published figures", names=True
    )

    # --- Atlas ---
    atlas_layers: tuple = setting(
        (),
        "The layers scripts/atlas.py visualizes, every filter of each; empty: every "
        "visualizable layer of the model (those --list_layers prints).",
        "Atlas",
        names=True,
    )
    examples_dir: str = setting(
        "",
        "A folder of your images (JPEG, PNG, any size) in which scripts/atlas.py finds each "
        "filter's most exciting crops; empty: the atlas shows none.",
        "Atlas",
    )
    examples_top_k: int = setting(
        9,
        "How many dataset examples (crops) the atlas shows per filter.",
        "Atlas",
        valid=lambda v: v >= 1,
        requirement="an integer ≥ 1",
        applies_when=AppliesWhen(
            "examples_dir", test=bool, words="when examples_dir names a folder"
        ),
    )

    @classmethod
    def create(cls, values: Mapping | None = None, **overrides) -> "Settings":
        """Validates `values` and `overrides` over the defaults and returns the settings.

        Args:
            values: A mapping of setting names to values (a config dict, say).
            **overrides: More settings; they win over `values`.

        Returns:
            A frozen `Settings`.

        Raises:
            UnknownSettingError: For a name that is not declared here (a TypeError too).
            UsageError: For the first bad value, naming it and what it must be.
        """
        given = {**dict(values or {}), **overrides}
        declared = field_names()
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise errors.UnknownSettingError(
                f"unknown setting {unknown[0]!r}; the settings are: "
                f"{errors.format_choices(unknown[0], declared, limit=12)}"
            )
        defaults = {name: field.default for name, field in fields().items()}
        merged = {**defaults, **given}
        for name, field in fields().items():
            merged[name] = _check_value(name, merged[name], field)
        _check_combinations(merged)
        return cls(**merged)

    def replace(self, **changes) -> "Settings":
        """A copy with `changes`, validated like `create`."""
        return Settings.create(self.to_dict(), **changes)

    def to_dict(self) -> dict:
        """Every setting as a plain dict (tuples stay tuples)."""
        return {name: getattr(self, name) for name in field_names()}


def fields() -> dict:
    """The declared fields by name, in declaration order."""
    return {field.name: field for field in dataclasses.fields(Settings)}


def field_names() -> list[str]:
    """The names of every setting, in declaration order."""
    return list(fields())


def default_settings() -> dict:
    """Every setting with its default."""
    return {name: field.default for name, field in fields().items()}


def default_config():
    """The defaults as a locked `ml_collections.ConfigDict`: recipes change keys, never add.

    `configs/base.py` returns this; a recipe that sets an undeclared key fails at once.
    """
    import ml_collections

    config = ml_collections.ConfigDict(default_settings())
    config.lock()
    return config


def meaning(name: str) -> str:
    """Setting `name`'s meaning, and the condition without which it has no effect:
    "… (only with parameterization='fourier')", as --help shows it."""
    field = fields()[name]
    condition = field.metadata["applies_when"]
    if condition is None:
        return field.metadata["meaning"]
    return f"{field.metadata['meaning']} (only {condition.describe()})"


def unused_settings(values: Mapping, given) -> list[str]:
    """One line for each setting given explicitly that has no effect with the other values.

    Only the names in `given` are looked at: a recipe sets many values that only some of its
    variants read (the Fourier settings of a pixel recipe, say), and its user did not ask for
    them. Each setting's condition is its `applies_when`.

    Args:
        values: Every setting's validated value by name (`Settings.to_dict()`); the Python API
            puts its `model` argument, which may be a `keras.Model`, under "model".
        given: The names the user set: the command line's --config.NAME overrides, or the
            keyword arguments of an API call.

    Returns:
        The lines, in declaration order, e.g. "fourier_decay=2.0 has no effect with
        parameterization='pixel': it applies only with parameterization='fourier'".
    """
    lines = []
    for name, field in fields().items():
        condition = field.metadata["applies_when"]
        if name not in given or condition is None:
            continue
        other = values[condition.setting]
        if not condition.holds(other):
            lines.append(
                f"{name}={show(values[name])} has no effect with {condition.setting}="
                f"{show(other)}: it applies only {condition.describe()}"
            )
    return lines


def show(value) -> str:
    """A setting's value as the user would type it: 0, 2.5, nan, 'rms', (0, 5)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, (tuple, list)):
        inner = ", ".join(show(item) for item in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def type_name(name: str) -> str:
    """What setting `name` holds, in words."""
    field = fields()[name]
    default = field.default
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "text"
    if field.metadata["names"]:
        return f"a tuple of names, e.g. '{field.metadata['example']}'"
    if field.metadata["numbers"]:
        return "a tuple of numbers, e.g. '(-1, 1)'"
    return "a tuple of integers, e.g. '(0, 5, 9)'"


def is_integer(value) -> bool:
    """Whether `value` is an integer, Python's or NumPy's, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value) -> bool:
    """Whether `value` is a real number, Python's or NumPy's, and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _has_type(value, field) -> bool:
    """Whether `value` has the type of the field's default (ints pass as floats)."""
    default = field.default
    if isinstance(default, bool):
        return isinstance(value, (bool, np.bool_))
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(default, int):
        return isinstance(value, numbers.Integral)
    if isinstance(default, float):
        return isinstance(value, numbers.Real)
    if isinstance(default, str):
        return isinstance(value, str)
    if not isinstance(value, (tuple, list)):
        return False
    if field.metadata["names"]:
        return all(isinstance(item, str) for item in value)
    if field.metadata["numbers"]:
        return all(map(is_number, value))
    return all(map(is_integer, value))


def _is_empty_filter_list(value) -> bool:
    """'' on the command line parses as ('',): a filter list that names no filter."""
    return (
        isinstance(value, (tuple, list))
        and bool(value)
        and all(isinstance(item, str) and not item.strip() for item in value)
    )


def _numbers_from_text(value):
    """The numbers of a tuple that the command line left as text: it reads "(nan, 1)" as
    ('(nan, 1)',), since Python literals have no nan or inf. Read as numbers, the range check
    names the value that is not finite; text that holds no numbers stays as it is."""
    if not (isinstance(value, (tuple, list)) and len(value) == 1 and isinstance(value[0], str)):
        return value
    parts = [part for part in value[0].strip().strip("()").split(",") if part.strip()]
    try:
        numbers_given = tuple(float(part) for part in parts)
    except ValueError:
        return value
    return numbers_given or value


def _check_value(name: str, value, field):
    """Checks one value's type, choice, emptiness and range; returns it in its plain type."""
    metadata = field.metadata
    if name == "filter_indices" and _is_empty_filter_list(value):
        raise errors.SettingError(
            name,
            value,
            "is an empty filter list; give at least one index, e.g. filter_indices=(0, 5, 9), "
            "or leave it out to try the first max_filters",
        )
    if metadata["numbers"]:
        value = _numbers_from_text(value)
    if not _has_type(value, field):
        raise errors.SettingError(
            name, value, f"has the wrong type; {name} takes {type_name(name)}"
        )
    if metadata["choices"] and value not in metadata["choices"]:
        raise errors.SettingError(
            name,
            value,
            "is not one of the choices: " + errors.format_choices(str(value), metadata["choices"]),
        )
    if metadata["non_empty"] and not value.strip():
        raise errors.SettingError(name, value, "is empty; give a value")
    if metadata["valid"] is not None and not metadata["valid"](value):
        raise errors.SettingError(name, value, f"is out of range: use {metadata['requirement']}")
    if metadata["numbers"]:
        return tuple(float(item) for item in value)
    return _plain(value, field.default)


def _plain(value, default):
    """The value in the type of its default: floats as float, tuples of int or str."""
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, tuple):
        return tuple(item if isinstance(item, str) else int(item) for item in value)
    return value


_TRANSFORM_ARITY = {"pad": 1, "jitter": 1, "shift": 1, "scale": 2, "rotate": 1}
_TRANSFORM_SPEC = re.compile(r"\s*([a-z_]+)\s*\((.*)\)\s*")


def parse_transform_specs(specs) -> list[tuple[str, tuple]]:
    """Reads the `transforms` setting: each text as (name, arguments), in order.

    The forms are `TRANSFORM_FORMS`: "pad(pixels)" and "jitter(pixels)" with a whole number
    ≥ 0, "shift(fraction)" with a fraction of the size in [0, 1), "scale(low, high)" with
    0 < low ≤ high, "rotate(degrees)" with a number ≥ 0. Pure
    Python, so the settings are checked before TensorFlow starts.

    Args:
        specs: A sequence of texts, e.g. ("pad(12)", "scale(0.9, 1.1)").

    Returns:
        A list of (name, arguments): ints for pad and jitter, floats for scale and rotate.

    Raises:
        UsageError: For the first text that is not one of the forms, naming it and the forms.
    """
    return [_parse_transform_spec(spec, specs) for spec in specs]


def _parse_transform_spec(spec, specs) -> tuple[str, tuple]:
    def refuse(problem: str):
        return errors.UsageError(
            f"transform {spec!r} in transforms={show(tuple(specs))} {problem}; use "
            f"{', '.join(TRANSFORM_FORMS)}, e.g. transforms={show(STANDARD_TRANSFORMS)}"
        )

    match = _TRANSFORM_SPEC.fullmatch(spec) if isinstance(spec, str) else None
    if match is None:
        raise refuse("is not of the form name(numbers)")
    name, text = match.groups()
    if name not in _TRANSFORM_ARITY:
        raise refuse(f"names no transform (the transforms are {', '.join(_TRANSFORM_ARITY)})")
    try:
        numbers_given = tuple(float(part) for part in text.split(",")) if text.strip() else ()
    except ValueError:
        raise refuse("has an argument that is not a number") from None
    if len(numbers_given) != _TRANSFORM_ARITY[name]:
        raise refuse(
            f"gives {len(numbers_given)} numbers where {name} takes {_TRANSFORM_ARITY[name]}"
        )
    if not all(math.isfinite(number) for number in numbers_given):
        raise refuse("has an argument that is not finite")
    if name in ("pad", "jitter"):
        (pixels,) = numbers_given
        if pixels != int(pixels) or pixels < 0:
            raise refuse(f"needs whole pixels ≥ 0 for {name}")
        return name, (int(pixels),)
    if name == "shift" and not 0 <= numbers_given[0] < 1:
        raise refuse("needs a fraction of the size in [0, 1) for shift")
    if name == "scale" and not 0 < numbers_given[0] <= numbers_given[1]:
        raise refuse("needs 0 < low ≤ high for scale")
    if name == "rotate" and numbers_given[0] < 0:
        raise refuse("needs degrees ≥ 0 for rotate")
    return name, numbers_given


def _check_combinations(values: dict) -> None:
    """The checks that involve more than one setting, or the file system."""
    model, weights = values["model"], values["weights"]
    if model_files.is_model_path(model):
        model_files.check_model_file(model)
    if is_saved_model(model) and weights.lower() not in ("imagenet", "none"):
        # The weights of a saved model come with it: a weights file would go unread.
        raise errors.UsageError(
            f"weights={show(weights)} is for a Keras Applications model (vgg16, resnet50v2, …); "
            f"model={show(model)} is a saved model with weights of its own: leave weights out"
        )
    rows, cols = values["grid_rows"], values["grid_cols"]
    if (rows == 0) != (cols == 0):
        raise errors.UsageError(
            f"grid_rows={rows} grid_cols={cols} is a grid without "
            f"{'rows' if rows == 0 else 'columns'}; give both grid_rows and grid_cols ≥ 1, or "
            "both 0 for the largest square grid that fits"
        )
    _check_filter_indices(values["filter_indices"])
    low, high = values["init_low"], values["init_high"]
    if low > high:
        raise errors.UsageError(
            f"init_low={show(low)} is above init_high={show(high)}; the noise is drawn from "
            "[init_low, init_high)"
        )
    if high - low > FLOAT32_MAX:
        raise errors.UsageError(
            f"the noise range init_low={show(low)} to init_high={show(high)} is too wide to "
            "draw from"
        )
    crop, image_size = values["crop"], values["image_size"]
    if 2 * crop >= image_size:
        raise errors.UsageError(
            f"crop={crop} leaves no pixels of a {image_size} px tile (image_size={image_size}); "
            f"use a crop from 0 to {(image_size - 1) // 2}"
        )
    upscalings, factor = values["num_upscalings"], values["upscale_factor"]
    try:
        first = int(image_size / factor**upscalings)
    except OverflowError:
        first = 0
    if first < 1:
        raise errors.UsageError(
            f"num_upscalings={upscalings} with upscale_factor={show(factor)} makes the first "
            f"scale of image_size={image_size} smaller than 1 px; use fewer upscalings or a "
            "larger image_size"
        )
    canvas_factor = values["canvas_factor"]
    if values["parameterization"] == "fourier" and canvas_factor > 1:
        smallest = smallest_canvas_image(canvas_factor)
        if first < smallest:
            scale = (
                f"the first scale ({first} px, num_upscalings={upscalings} with "
                f"upscale_factor={show(factor)})"
                if upscalings
                else "the image"
            )
            raise errors.UsageError(
                f"image_size={image_size} with canvas_factor={canvas_factor} is too small: "
                f"{scale} must be at least {smallest} px for the canvas's antialiasing filter, "
                f"which reflects {-antialias_first_tap(canvas_factor)} px at each border; use "
                f"a larger image_size{', fewer upscalings' if upscalings else ''} or "
                "canvas_factor=1"
            )
    model_range = values["input_range"]
    if model_range and model_range[1] - model_range[0] > FLOAT32_MAX:
        raise errors.UsageError(
            f"input_range={show(model_range)} is too wide for float32: high − low must be at "
            "most 3.4e38"
        )
    _check_transforms(values["transforms"], first)
    strategy = values["strategy"]
    if values["devices"] and strategy != "mirrored":
        # Without this, a forgotten strategy runs on one device without a word.
        raise errors.UsageError(
            f"devices={show(values['devices'])} names the devices of strategy='mirrored'; "
            f"strategy={show(strategy)} does not use it: set strategy='mirrored', or leave "
            "devices out"
        )
    _check_name_list(
        "devices", values["devices"], "device", "('/gpu:0', '/gpu:1'), or leave devices out"
    )
    if values["tpu_address"] and strategy != "tpu":
        raise errors.UsageError(
            f"tpu_address={show(values['tpu_address'])} names the TPU of strategy='tpu'; "
            f"strategy={show(strategy)} does not use it: set strategy='tpu', or leave "
            "tpu_address out"
        )
    if values["shard_index"] >= values["num_shards"]:
        raise errors.UsageError(
            f"shard_index={values['shard_index']} is out of range for num_shards="
            f"{values['num_shards']}: use 0 to {values['num_shards'] - 1}"
        )
    if values["num_shards"] > 1 and values["rival_rounds"]:
        raise errors.UsageError(
            f"rival_rounds={values['rival_rounds']} judges every picture of the layer against "
            f"the others; num_shards={values['num_shards']} splits them among jobs: set "
            "rival_rounds=0 to shard, or num_shards=1"
        )
    if values["num_shards"] > 1 and values["panel_layers"]:
        raise errors.UsageError(
            "num_shards > 1 splits the filters of one layer; panel_layers runs several: shard "
            "one layer at a time"
        )
    _check_name_list("atlas_layers", values["atlas_layers"])
    _check_name_list("panel_layers", values["panel_layers"])
    titles, layers = values["panel_titles"], values["panel_layers"]
    if titles and len(titles) != len(layers):
        raise errors.UsageError(
            f"panel_titles has {len(titles)} titles for {len(layers)} panel_layers; give one "
            "title per layer, or none to use the layer names"
        )


def _check_name_list(
    name: str, names, kind: str = "layer", example: str = "('conv1', 'conv2')"
) -> None:
    """Refuses an empty name, or a name given twice, in the list setting `name`.

    Args:
        name: The setting.
        names: Its value.
        kind: What the names name. Defaults to "layer".
        example: A good value, as the message shows it after `name=`. Defaults to layers'.
    """
    for position, item in enumerate(names):
        if not item.strip():
            raise errors.UsageError(
                f"{name}={show(names)} holds an empty {kind} name; give a {kind}'s name, e.g. "
                f"{name}={example}"
            )
        if item in names[:position]:
            raise errors.UsageError(
                f"{kind} {item!r} appears twice in {name}={show(names)}; list each {kind} once"
            )


def _check_transforms(specs, smallest_size: int) -> None:
    for name, arguments in parse_transform_specs(specs):
        # A reflection reaches at most one pixel short of the far side.
        if name == "pad" and arguments[0] >= smallest_size:
            raise errors.UsageError(
                f"transform 'pad({arguments[0]})' in transforms={show(specs)} reflects more "
                f"than the smallest image holds ({smallest_size} px); pad by at most "
                f"{smallest_size - 1} pixels, or use a larger image_size"
            )


def _check_filter_indices(filter_indices) -> None:
    seen = set()
    for index in filter_indices:
        if index < 0:
            raise errors.UsageError(
                f"filter index {index} in filter_indices={show(filter_indices)} is negative; "
                "filters are counted from 0"
            )
        if index in seen:
            raise errors.UsageError(
                f"filter index {index} appears twice in filter_indices={show(filter_indices)}; "
                "list each filter once"
            )
        seen.add(index)
