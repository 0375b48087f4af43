"""Trains the two small classifiers that judge the quality recipe (issue 10), offline.

- `rgb`: a 32x32 RGB classifier whose input is raw 0-255 pixels (a leading `Rescaling` maps
  them to [-1, 1]); 3x3 convolution + batch norm + ReLU units whose ReLU layers are named
  `conv1`, `conv2` (on conv1: a 5x5 receptive field, the "early" layer), pooling, `conv3`,
  pooling, `conv4` (the "deep" layer), global pooling, logits.
- `grey`: a 64x64 greyscale classifier with [-1, 1] input: a stem convolution, then residual
  blocks of separable convolutions with batch norm (`relu(x + f(x))`, ResNet-v1 style, so
  every block output is a ReLU), pooling between stages; `block3_out` is the deep layer.

The pictures come in ten classes that ask for oriented, coloured and textured features:
gratings at any angle, plaids, rotated checkerboards, concentric rings, a soft blob, many dots,
a few thin lines, band-pass noise texture, a star (angular grating) and a smooth two-colour
gradient, each blended between two random colours with a little pixel noise. Nothing is
downloaded. `--scene=leaves` shows the pattern instead as an object on a dead-leaves scene
(occluding discs of every scale, the classic model of natural-image statistics), partly
occluded; `textured_leaves` adds band-pass texture to the discs. Batch norm keeps every unit
alive on the data, so "no dead filter" is reachable.

The models in benchmarks/models/ that the quality recipe is measured on were made with
(TensorFlow 2.21, 2 CPU cores; held-out accuracy 0.673 on pictures with noise 0.1, and 0.938):

    python scripts/train_quality_models.py --kind=rgb --antialias --augment=0.125 --noise=0.1 \\
        --output=benchmarks/models/rgb32_antialiased.keras
    python scripts/train_quality_models.py --kind=grey --epochs=10 --scene=leaves \\
        --output=benchmarks/models/grey64_leaves.keras

and the first acceptance models, `rgb32.keras` and `grey64.keras`, with the defaults (`--kind=rgb`;
`--kind=grey --epochs=10`; benchmarks/models/README.md).
"""

import time

from keras_filters import command_line, startup

PROGRAM = "train_quality_models"

# TensorFlow's start-up lines would bury a one-line error.
startup.import_backend_for_command(PROGRAM)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from keras_filters.job import artifacts  # noqa: E402

_KIND = flags.DEFINE_enum("kind", None, ["rgb", "grey"], "Which model to train.")
_OUTPUT = flags.DEFINE_string("output", None, "Where to save it (.keras).")
_NUM_TRAIN = flags.DEFINE_integer("num_train", 12000, "Training pictures.", lower_bound=1)
_EPOCHS = flags.DEFINE_integer("epochs", 8, "Passes over the training set.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the data and the weights.", lower_bound=0)
_ANTIALIAS = flags.DEFINE_boolean(
    "antialias",
    False,
    "Max-blur pooling (a binomial blur before each stride) instead of max pooling.",
)
_AUGMENT = flags.DEFINE_float(
    "augment",
    0.0,
    "Redraw the training pictures every epoch under a random shift of up to this fraction of "
    "the size, zoom within 1 ± 0.8× it and rotation within ± 80× it degrees (0.125: ±1/8, "
    "0.9-1.1, ±10°); 0 trains on the pictures as drawn.",
    lower_bound=0.0,
    upper_bound=0.5,
)
_NOISE = flags.DEFINE_float(
    "noise",
    0.03,
    "Standard deviation of the pixel noise on every picture, training and held-out.",
    lower_bound=0.0,
    upper_bound=1.0,
)
RGB_LAYOUTS = ("single", "paired")
_LAYOUT = flags.DEFINE_enum(
    "layout",
    "single",
    RGB_LAYOUTS,
    "RGB only: single (conv1 conv2 pool conv3 pool conv4) or paired (conv1 conv2 pool conv3 "
    "conv4 pool, Keras' CIFAR-10 example).",
)
SCENES = ("plain", "leaves", "textured_leaves")
_SCENE = flags.DEFINE_enum(
    "scene",
    "plain",
    SCENES,
    "What surrounds the pattern: plain (the pattern fills the picture), leaves (the pattern in "
    "an ellipse on a dead-leaves scene, partly occluded), textured_leaves (leaves that carry "
    "band-pass texture too).",
)

CLASS_NAMES = (
    "grating",
    "plaid",
    "checkerboard",
    "rings",
    "blob",
    "dots",
    "lines",
    "texture",
    "star",
    "gradient",
)
NOISE_STANDARD_DEVIATION = 0.03
# Zoom and rotation ranges per unit of `augment` (its shift fraction).
AUGMENT_ZOOM_PER_SHIFT = 0.8
AUGMENT_DEGREES_PER_SHIFT = 80.0
MINIMUM_COLOUR_DISTANCE = 0.4
# Offset so the held-out set never shares a random stream with training.
TEST_SEED_OFFSET = 1_000_003

RGB_SIZE = 32
GREY_SIZE = 64

# The dead-leaves scenes (`scene`): disc radii from 1/16 of the size to the size behind the
# pattern, up to 1/8 of the size (from 1 px) for the few discs in front of it.
BACKGROUND_RADII = (1.0 / 16.0, 1.0)
FRONT_RADIUS = 1.0 / 8.0
MAX_FRONT_LEAVES = 3
# Discs drawn before a scene counts as covered (each covers new pixels or none).
MAX_LEAVES = 4000
# The ellipse that holds the pattern: centre and radii, as fractions of the size.
PATTERN_CENTRE = (0.35, 0.65)
PATTERN_RADII = (0.3, 0.55)
# Textured leaves: band-pass noise fields per scene, their centre frequencies (cycles per
# pixel) and the largest amplitude a leaf gives its field.
TEXTURE_FIELDS = 4
TEXTURE_FREQUENCIES = (0.06, 0.35)
TEXTURE_AMPLITUDE = 0.35


def _grating(rows, columns, rng, period_range):
    angle = rng.uniform(0.0, np.pi)
    period = rng.uniform(*period_range)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    coordinate = rows * np.cos(angle) + columns * np.sin(angle)
    return 0.5 + 0.5 * np.cos(2.0 * np.pi * coordinate / period + phase)


def _pattern(class_index, size, rng):
    """One pattern in [0, 1], shape (size, size): where 1 is foreground colour."""
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    scale = size / 32.0
    name = CLASS_NAMES[class_index]
    if name == "grating":
        pattern = _grating(rows, columns, rng, (3.0 * scale, 10.0 * scale))
        if rng.random() < 0.5:  # Square-wave gratings too: sharp edges.
            pattern = (pattern > 0.5).astype(np.float32)
        return pattern
    if name == "plaid":
        first = _grating(rows, columns, rng, (3.0 * scale, 9.0 * scale))
        second = _grating(rows, columns, rng, (3.0 * scale, 9.0 * scale))
        return 0.5 * (first + second)
    if name == "checkerboard":
        angle = rng.uniform(0.0, np.pi / 2)
        cell = rng.uniform(3.0 * scale, 7.0 * scale)
        u = rows * np.cos(angle) + columns * np.sin(angle) + rng.uniform(0, cell)
        v = -rows * np.sin(angle) + columns * np.cos(angle) + rng.uniform(0, cell)
        return (np.mod(np.floor(u / cell) + np.floor(v / cell), 2) == 0).astype(np.float32)
    if name == "rings":
        center = rng.uniform(0.25 * size, 0.75 * size, size=2)
        radius = np.hypot(rows - center[0], columns - center[1])
        period = rng.uniform(3.0 * scale, 8.0 * scale)
        return 0.5 + 0.5 * np.cos(2.0 * np.pi * radius / period + rng.uniform(0, 2 * np.pi))
    if name == "blob":
        center = rng.uniform(0.2 * size, 0.8 * size, size=2)
        width = rng.uniform(3.0 * scale, 8.0 * scale, size=2)
        return np.exp(
            -0.5 * (((rows - center[0]) / width[0]) ** 2 + ((columns - center[1]) / width[1]) ** 2)
        )
    if name == "dots":
        pattern = np.zeros((size, size), np.float32)
        for _ in range(rng.integers(8, 20)):
            center = rng.uniform(0.0, size, size=2)
            radius = rng.uniform(0.8, 2.0) * scale
            pattern = np.maximum(
                pattern, (np.hypot(rows - center[0], columns - center[1]) <= radius)
            )
        return pattern
    if name == "lines":
        pattern = np.zeros((size, size), np.float32)
        for _ in range(rng.integers(2, 5)):
            angle = rng.uniform(0.0, np.pi)
            offset = rng.uniform(-0.4 * size, 0.4 * size)
            distance = np.abs(
                (rows - size / 2) * np.cos(angle) + (columns - size / 2) * np.sin(angle) - offset
            )
            pattern = np.maximum(pattern, distance <= rng.uniform(0.5, 1.2) * scale)
        return pattern
    if name == "texture":
        noise = rng.normal(size=(size, size))
        frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size)))
        center = rng.uniform(0.08, 0.3)
        band = np.exp(-0.5 * ((frequency - center) / (0.25 * center)) ** 2)
        texture = np.real(np.fft.ifft2(np.fft.fft2(noise) * band))
        return (texture > 0).astype(np.float32)
    if name == "star":
        center = rng.uniform(0.3 * size, 0.7 * size, size=2)
        angle = np.arctan2(rows - center[0], columns - center[1])
        arms = rng.integers(4, 12)
        return 0.5 + 0.5 * np.cos(arms * angle + rng.uniform(0, 2 * np.pi))
    if name == "gradient":
        angle = rng.uniform(0.0, 2 * np.pi)
        coordinate = (rows - size / 2) * np.cos(angle) + (columns - size / 2) * np.sin(angle)
        return np.clip(0.5 + coordinate / size, 0.0, 1.0)
    raise ValueError(f"unknown class index {class_index}; choose one of 0..{len(CLASS_NAMES) - 1}")


def _colour_pair(rng, channels):
    while True:
        foreground = rng.uniform(0.0, 1.0, size=channels)
        background = rng.uniform(0.0, 1.0, size=channels)
        if np.linalg.norm(foreground - background) >= MINIMUM_COLOUR_DISTANCE * np.sqrt(
            channels / 3.0
        ):
            return foreground, background


def _texture_fields(size, rng):
    """Band-pass noise fields in [-1, 1], one random centre frequency each."""
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size)))
    fields = []
    for _ in range(TEXTURE_FIELDS):
        centre = rng.uniform(*TEXTURE_FREQUENCIES)
        band = np.exp(-0.5 * ((frequency - centre) / (0.3 * centre)) ** 2)
        field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) * band))
        fields.append(field / (np.abs(field).max() + 1e-6))
    return fields


def leaf_radius(uniform, smallest, largest):
    """The radius at quantile `uniform` of the density ∝ r⁻³ on [smallest, largest]: the
    inverse of its distribution function F(r) = (smallest⁻² − r⁻²) / (smallest⁻² − largest⁻²).
    """
    return 1.0 / np.sqrt((1.0 - uniform) / smallest**2 + uniform / largest**2)


def dead_leaves(size, channels, rng, smallest, largest, count=None, textured=False):
    """Occluding discs of random colours, painted front to back (the dead-leaves model).

    Radii have density ∝ r⁻³ between `smallest` and `largest` pixels, which makes the scene's
    statistics scale-invariant like those of natural images (occlusion edges at every scale, a
    1/f-like spectrum). A disc only paints the pixels that no disc in front of it holds.

    Args:
        size: Height and width.
        channels: 3 or 1.
        rng: A `np.random.Generator`.
        smallest: Smallest radius, in pixels.
        largest: Largest radius, in pixels.
        count: How many discs; None paints until every pixel is held (or MAX_LEAVES discs).
            Defaults to None.
        textured: Each disc also carries one of a few band-pass noise fields, at a random
            amplitude up to TEXTURE_AMPLITUDE. Defaults to False.

    Returns:
        (scene, held): float32 (size, size, channels) in [0, 1], and the bool mask of the
        pixels the discs hold.
    """
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    fields = _texture_fields(size, rng) if textured else None
    scene = np.zeros((size, size, channels), np.float32)
    held = np.zeros((size, size), bool)
    for _ in range(MAX_LEAVES if count is None else count):
        radius = leaf_radius(rng.random(), smallest, largest)
        centre = rng.uniform(-radius, size + radius, size=2)
        disc = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius * radius
        new = disc & ~held
        if new.any():
            colour = rng.uniform(0.0, 1.0, size=channels)
            if textured:
                amplitude = rng.uniform(0.0, TEXTURE_AMPLITUDE)
                field = fields[rng.integers(len(fields))][new]
                scene[new] = np.clip(colour + amplitude * field[:, np.newaxis], 0.0, 1.0)
            else:
                scene[new] = colour
            held |= new
        if count is None and held.all():
            break
    return scene, held


def _in_scene(picture, background, rng, textured):
    """The picture inside a random ellipse over the middle of `background`, then 0 to
    MAX_FRONT_LEAVES small discs in front of it: an object on a cluttered scene, partly
    occluded."""
    size, channels = picture.shape[0], picture.shape[-1]
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    centre = rng.uniform(PATTERN_CENTRE[0] * size, PATTERN_CENTRE[1] * size, size=2)
    radii = rng.uniform(PATTERN_RADII[0] * size, PATTERN_RADII[1] * size, size=2)
    angle = rng.uniform(0.0, np.pi)
    along = (rows - centre[0]) * np.cos(angle) + (columns - centre[1]) * np.sin(angle)
    across = -(rows - centre[0]) * np.sin(angle) + (columns - centre[1]) * np.cos(angle)
    inside = (along / radii[0]) ** 2 + (across / radii[1]) ** 2 <= 1.0
    scene = np.where(inside[..., np.newaxis], picture, background)
    front, held = dead_leaves(
        size,
        channels,
        rng,
        1.0,
        FRONT_RADIUS * size,
        count=int(rng.integers(0, MAX_FRONT_LEAVES + 1)),
        textured=textured,
    )
    return np.where(held[..., np.newaxis], front, scene)


def make_dataset(
    num_images: int,
    seed: int,
    size: int,
    channels: int,
    noise: float = NOISE_STANDARD_DEVIATION,
    scene: str = "plain",
):
    """Draws a balanced, shuffled set of labelled pattern images in [0, 1].

    Args:
        num_images: Number of images.
        seed: Seed of `np.random.default_rng`.
        size: Height and width.
        channels: 3 (colour) or 1 (grey).
        noise: Standard deviation of the Gaussian pixel noise. Defaults to 0.03.
        scene: One of SCENES: "plain" (the pattern fills the picture), "leaves" (the pattern
            in an ellipse on a dead-leaves scene, `_in_scene`) or "textured_leaves" (leaves
            with band-pass texture). Defaults to "plain".

    Returns:
        (images, labels): float32 (num_images, size, size, channels) in [0, 1], int32 labels.

    Raises:
        ValueError: For an unknown scene.
    """
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; choose one of: {', '.join(SCENES)}")
    textured = scene == "textured_leaves"
    radii = [fraction * size for fraction in BACKGROUND_RADII]
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % len(CLASS_NAMES)).astype(np.int32)
    images = np.empty((num_images, size, size, channels), np.float32)
    for index, label in enumerate(labels):
        # Drawn first: the plain pictures keep their random stream.
        behind = None
        if scene != "plain":
            behind, _ = dead_leaves(size, channels, rng, *radii, textured=textured)
        pattern = _pattern(label, size, rng)[..., np.newaxis]
        foreground, background = _colour_pair(rng, channels)
        images[index] = background + pattern * (foreground - background)
        if behind is not None:
            images[index] = _in_scene(images[index], behind, rng, textured)
    images += rng.normal(0.0, noise, size=images.shape).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    return images, labels


def _conv_bn_relu(x, filters, name):
    """3x3 convolution, batch normalization, ReLU; the ReLU layer carries `name`.

    Batch normalization keeps units from dying during training: a unit that no input can
    activate would make "no dead filter" unreachable for any recipe.
    """
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=name)(x)


def _pooling(x, name, antialias):
    """Halves the resolution: 2x2 max pooling, or with `antialias` max-blur pooling.

    Max-blur pooling (Zhang, "Making convolutional networks shift-invariant again", 2019) takes
    the 2x2 max at every position, then blurs with a fixed binomial [1, 2, 1]^2 / 16 filter
    before keeping every second pixel, so that the pooled maps alias less under small shifts.
    The blur is a frozen depthwise convolution: the model stays plain Keras layers.
    """
    if not antialias:
        return keras.layers.MaxPooling2D(2, name=name)(x)
    x = keras.layers.MaxPooling2D(2, strides=1, padding="same", name=f"{name}_max")(x)
    blur = keras.layers.DepthwiseConv2D(
        3, strides=2, padding="same", use_bias=False, trainable=False, name=name
    )
    pooled = blur(x)
    binomial = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]).astype(np.float32) / 16.0
    blur.set_weights([np.tile(binomial[:, :, np.newaxis, np.newaxis], (1, 1, x.shape[-1], 1))])
    return pooled


def build_rgb_model(
    widths=(32, 48, 64, 96), antialias: bool = False, layout: str = "single"
) -> keras.Model:
    """The 32x32 RGB classifier with raw 0-255 input.

    Args:
        widths: Filters of conv1..conv4. Defaults to (32, 48, 64, 96).
        antialias: Max-blur pooling instead of max pooling (`_pooling`). Defaults to False.
        layout: Where the second pooling sits (`RGB_LAYOUTS`): "single" pools before conv4
            (conv4 sees an 8x8 grid), "paired" after it, two convolutions per resolution as in
            Keras' CIFAR-10 example (conv4 sees a 16x16 grid). Defaults to "single".

    Returns:
        An uncompiled model named "rgb32" mapping 0-255 RGB to logits.
    """
    image = keras.Input(shape=(RGB_SIZE, RGB_SIZE, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(image)
    x = _conv_bn_relu(x, widths[0], "conv1")
    x = _conv_bn_relu(x, widths[1], "conv2")
    x = _pooling(x, "pool1", antialias)
    x = _conv_bn_relu(x, widths[2], "conv3")
    if layout == "single":
        x = _pooling(x, "pool2", antialias)
    x = _conv_bn_relu(x, widths[3], "conv4")
    if layout == "paired":
        x = _pooling(x, "pool2", antialias)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    logits = keras.layers.Dense(len(CLASS_NAMES), name="logits")(x)
    return keras.Model(image, logits, name="rgb32")


def _residual_block(x, filters, name):
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, name=f"{name}_project")(x)
    y = keras.layers.SeparableConv2D(
        filters, 3, padding="same", use_bias=False, name=f"{name}_sep1"
    )(x)
    y = keras.layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = keras.layers.SeparableConv2D(
        filters, 3, padding="same", use_bias=False, name=f"{name}_sep2"
    )(y)
    y = keras.layers.BatchNormalization(name=f"{name}_bn2")(y)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def build_grey_model(widths=(24, 32, 48, 64), antialias: bool = False) -> keras.Model:
    """The 64x64 greyscale classifier with [-1, 1] input, separable convs and residuals.

    Args:
        widths: Filters of the stem and blocks 1..3. Defaults to (24, 32, 48, 64).
        antialias: Max-blur pooling instead of max pooling (`_pooling`). Defaults to False.

    Returns:
        An uncompiled model named "grey64" mapping [-1, 1] grey images to logits.
    """
    image = keras.Input(shape=(GREY_SIZE, GREY_SIZE, 1), name="image")
    x = _conv_bn_relu(image, widths[0], "stem")
    x = _pooling(x, "pool0", antialias)
    x = _residual_block(x, widths[1], "block1")
    x = _pooling(x, "pool1", antialias)
    x = _residual_block(x, widths[2], "block2")
    x = _pooling(x, "pool2", antialias)
    x = _residual_block(x, widths[3], "block3")
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    logits = keras.layers.Dense(len(CLASS_NAMES), name="logits")(x)
    return keras.Model(image, logits, name="grey64")


# What each kind needs: size, channels, builder, how [0, 1] pictures map to its input.
KINDS = {
    "rgb": dict(size=RGB_SIZE, channels=3, build=build_rgb_model, low=0.0, high=255.0),
    "grey": dict(size=GREY_SIZE, channels=1, build=build_grey_model, low=-1.0, high=1.0),
}


def augmenter(fraction: float, seed: int) -> keras.Sequential:
    """Random shift (up to `fraction` of the size), zoom and rotation, reflected borders.

    Zoom is within 1 ± 0.8 × fraction and rotation within ± 80 × fraction degrees, so 0.125
    gives ±1/8, 0.9-1.1 and ±10°. Each call draws new transforms; the sequence is fixed by
    `seed`.
    """
    return keras.Sequential(
        [
            keras.layers.RandomTranslation(fraction, fraction, fill_mode="reflect", seed=seed),
            keras.layers.RandomZoom(
                AUGMENT_ZOOM_PER_SHIFT * fraction, fill_mode="reflect", seed=seed + 1
            ),
            keras.layers.RandomRotation(
                AUGMENT_DEGREES_PER_SHIFT * fraction / 360.0, fill_mode="reflect", seed=seed + 2
            ),
        ],
        name="augmenter",
    )


def train(
    kind: str,
    *,
    num_train: int = 12000,
    num_test: int = 1000,
    epochs: int = 8,
    seed: int = 0,
    small: bool = False,
    verbose: int = 0,
    antialias: bool = False,
    augment: float = 0.0,
    noise: float = NOISE_STANDARD_DEVIATION,
    scene: str = "plain",
    layout: str = "single",
):
    """Trains one model on freshly drawn pictures; deterministic for a seed.

    The defaults made the first models in benchmarks/models (`rgb32`, `grey64`). `antialias`,
    `augment`, `noise` and `scene` are the variants that issue 10's tuning tried on the model
    side; `rgb32_antialiased` and `grey64_leaves`, which the quality recipe is measured on,
    are two of them (benchmarks/models/README.md).

    Args:
        kind: "rgb" or "grey".
        num_train: Training pictures. Defaults to 12000.
        num_test: Held-out pictures. Defaults to 1000.
        epochs: Passes over the training set. Defaults to 8.
        seed: Seed of data and weights. Defaults to 0.
        small: A tiny variant for tests: narrow layers, 600 pictures, 2 epochs (seconds).
            Defaults to False.
        verbose: Keras fit verbosity. Defaults to 0.
        antialias: Max-blur pooling instead of max pooling. Defaults to False.
        augment: Each epoch sees the training pictures under new random shifts (up to this
            fraction of the size), zooms and rotations (`augmenter`); 0 for none. The held-out
            pictures are never transformed. Defaults to 0.
        noise: Pixel noise of every picture (`make_dataset`). Defaults to 0.03.
        scene: What surrounds the pattern, training and held-out (`make_dataset`). Defaults
            to "plain".
        layout: The RGB model's layout (`build_rgb_model`); the grey model has one. Defaults
            to "single".

    Returns:
        (model, held-out accuracy).

    Raises:
        ValueError: For an unknown kind, or a layout other than "single" for the grey model.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of: {', '.join(KINDS)}")
    spec = KINDS[kind]
    options = dict(antialias=antialias)
    if kind == "rgb":
        options["layout"] = layout
    elif layout != "single":
        raise ValueError(f"layout {layout!r} is for the rgb model; the grey model has one layout")
    keras.utils.set_random_seed(seed)  # Before the model is built: it seeds the weights too.
    if small:
        num_train, num_test, epochs = 600, 200, 2
        widths = (8, 8, 16, 16) if kind == "rgb" else (8, 8, 12, 16)
        model = spec["build"](widths, **options)
    else:
        model = spec["build"](**options)
    train_images, train_labels = make_dataset(
        num_train, seed, spec["size"], spec["channels"], noise, scene
    )
    test_images, test_labels = make_dataset(
        num_test, seed + TEST_SEED_OFFSET, spec["size"], spec["channels"], noise, scene
    )

    def to_input(images):
        return spec["low"] + images * (spec["high"] - spec["low"])

    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    inputs = to_input(train_images)
    if augment:
        transform = augmenter(augment, seed)
        for _ in range(epochs):
            pictures = np.concatenate(
                [
                    np.asarray(transform(inputs[start : start + 1000]))
                    for start in range(0, num_train, 1000)
                ]
            )
            model.fit(pictures, train_labels, batch_size=64, epochs=1, verbose=verbose)
    else:
        model.fit(inputs, train_labels, batch_size=64, epochs=epochs, verbose=verbose)
    logits = model.predict(to_input(test_images), batch_size=256, verbose=0)
    return model, float(np.mean(np.argmax(logits, -1) == test_labels))


def main(argv) -> None:
    """Trains the chosen model and saves it."""
    command_line.check_output_command(argv, _OUTPUT.value, PROGRAM, ".keras")
    if _KIND.value != "rgb" and _LAYOUT.value != "single":
        command_line.fail(
            f"--layout={_LAYOUT.value} is for --kind=rgb; the {_KIND.value} model has one "
            "layout (--layout=single)",
            PROGRAM,
        )
    start = time.monotonic()
    model, accuracy = train(
        _KIND.value,
        num_train=_NUM_TRAIN.value,
        epochs=_EPOCHS.value,
        seed=_SEED.value,
        verbose=2,
        antialias=_ANTIALIAS.value,
        augment=_AUGMENT.value,
        noise=_NOISE.value,
        scene=_SCENE.value,
        layout=_LAYOUT.value,
    )
    artifacts.save_atomically(_OUTPUT.value, model.save)
    print(
        f"{_KIND.value}: held-out accuracy {accuracy:.3f}, "
        f"{time.monotonic() - start:.1f} s, wrote {_OUTPUT.value}"
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(["kind", "output"])
    command_line.run_script(main, PROGRAM, command_line.script_flags_parser(PROGRAM))
