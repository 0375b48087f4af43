"""Trains the small demo CNN shipped with keras-filters.

The model learns to tell apart six kinds of procedurally drawn 32x32 pictures
(stripes in three orientations, checkerboards, disks and dots) in random
colours, so that its filters end up tuned to edges, orientations and colours,
which makes them worth visualizing. Nothing is downloaded.

Example:

    python3 scripts/train_demo_model.py --output=keras_filters/demo/demo_model.keras
"""

import os
import tempfile
import time

from keras_filters import command_line, startup

PROGRAM = "train_demo_model"

# TensorFlow's start-up lines would bury a one-line error.
startup.import_backend_for_command(PROGRAM)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

IMAGE_SIZE = 32
CLASS_NAMES = (
    "horizontal_stripes",
    "vertical_stripes",
    "diagonal_stripes",
    "checkerboard",
    "disk",
    "dots",
)
NOISE_STANDARD_DEVIATION = 0.04
# Below this distance between foreground and background colours the pattern
# would be nearly invisible and the label meaningless.
MINIMUM_COLOUR_DISTANCE = 0.35
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
# Offset so the held-out set never shares a random stream with training.
TEST_SEED_OFFSET = 1_000_003

FLAGS = flags.FLAGS
flags.DEFINE_string("output", "keras_filters/demo/demo_model.keras", "Where to save the model.")
flags.DEFINE_integer("seed", 0, "Seed for data generation and training.", lower_bound=0)
flags.DEFINE_integer("epochs", 12, "Number of training epochs.", lower_bound=1)
flags.DEFINE_integer("num_train", 12000, "Number of training images.", lower_bound=1)
flags.DEFINE_integer("num_test", 1200, "Number of held-out test images.", lower_bound=1)


def random_colour_pair(rng):
    """Draws a foreground and a background colour that are clearly distinct.

    Args:
        rng: A numpy random generator.

    Returns:
        A tuple (foreground, background) of float32 arrays of shape (3,).
    """
    while True:
        foreground = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
        background = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
        if np.linalg.norm(foreground - background) >= MINIMUM_COLOUR_DISTANCE:
            return foreground, background


def stripe_mask(coordinate, rng):
    """Turns a pixel coordinate map into a mask of stripes across it.

    Args:
        coordinate: Float array of shape (IMAGE_SIZE, IMAGE_SIZE) giving, for
            each pixel, its position along the direction across the stripes.
        rng: A numpy random generator.

    Returns:
        A boolean array of shape (IMAGE_SIZE, IMAGE_SIZE).
    """
    period = rng.uniform(4.0, 10.0)
    phase = rng.uniform(0.0, period)
    duty_cycle = rng.uniform(0.35, 0.65)
    return np.mod(coordinate + phase, period) < duty_cycle * period


def class_mask(class_index, rng):
    """Draws the foreground mask of one image of the given class.

    Args:
        class_index: Index into CLASS_NAMES.
        rng: A numpy random generator.

    Returns:
        A boolean array of shape (IMAGE_SIZE, IMAGE_SIZE).
    """
    rows, columns = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
    name = CLASS_NAMES[class_index]
    if name == "horizontal_stripes":
        return stripe_mask(rows, rng)
    if name == "vertical_stripes":
        return stripe_mask(columns, rng)
    if name == "diagonal_stripes":
        # Both diagonals share one class; dividing by sqrt(2) keeps the
        # period measured perpendicular to the stripes.
        sign = rng.choice((-1.0, 1.0))
        return stripe_mask((rows + sign * columns) / np.sqrt(2.0), rng)
    if name == "checkerboard":
        cell_size = rng.uniform(3.0, 8.0)
        row_cell = np.floor((rows + rng.uniform(0.0, cell_size)) / cell_size)
        column_cell = np.floor((columns + rng.uniform(0.0, cell_size)) / cell_size)
        return np.mod(row_cell + column_cell, 2) == 0
    if name == "disk":
        radius = rng.uniform(5.0, 12.0)
        center_row, center_column = rng.uniform(radius, IMAGE_SIZE - radius, size=2)
        return (rows - center_row) ** 2 + (columns - center_column) ** 2 <= radius**2
    if name == "dots":
        mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
        for _ in range(rng.integers(8, 21)):
            radius = rng.uniform(0.8, 2.0)
            center_row, center_column = rng.uniform(0.0, IMAGE_SIZE, size=2)
            distance_squared = (rows - center_row) ** 2 + (columns - center_column) ** 2
            mask |= distance_squared <= radius**2
        return mask
    raise ValueError(f"Unknown class index: {class_index}")


def make_dataset(num_images, seed):
    """Generates a balanced, shuffled set of labelled pattern images.

    Args:
        num_images: Number of images to draw.
        seed: Seed for np.random.default_rng.

    Returns:
        A tuple (images, labels): float32 images of shape
        (num_images, IMAGE_SIZE, IMAGE_SIZE, 3) with values in [0, 1], and
        int32 labels of shape (num_images,).
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % len(CLASS_NAMES)).astype(np.int32)
    images = np.empty((num_images, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    for index, label in enumerate(labels):
        mask = class_mask(label, rng)
        foreground, background = random_colour_pair(rng)
        images[index] = np.where(mask[..., np.newaxis], foreground, background)
    images += rng.normal(0.0, NOISE_STANDARD_DEVIATION, size=images.shape).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    return images, labels


def build_model():
    """Builds the uncompiled demo CNN, which accepts images of any size.

    Returns:
        A keras.Model named "demo_cnn" mapping [0, 1] RGB images to logits.
    """
    image = keras.Input(shape=(None, None, 3), name="image")
    features = keras.layers.Conv2D(16, 3, activation="relu", padding="same", name="conv1")(image)
    features = keras.layers.MaxPooling2D(2, name="pool1")(features)
    features = keras.layers.Conv2D(32, 3, activation="relu", padding="same", name="conv2")(features)
    features = keras.layers.MaxPooling2D(2, name="pool2")(features)
    features = keras.layers.Conv2D(64, 3, activation="relu", padding="same", name="conv3")(features)
    features = keras.layers.GlobalAveragePooling2D(name="global_pool")(features)
    logits = keras.layers.Dense(len(CLASS_NAMES), name="logits")(features)
    return keras.Model(image, logits, name="demo_cnn")


def train_model(model, images, labels, epochs):
    """Compiles and fits the model in place.

    Args:
        model: The model from build_model.
        images: Training images, float32 in [0, 1].
        labels: Integer class labels.
        epochs: Number of passes over the training set.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(images, labels, batch_size=BATCH_SIZE, epochs=epochs, verbose=2)


def accuracy(model, images, labels):
    """Computes the fraction of images whose top logit is the true class.

    Args:
        model: A model mapping images to logits.
        images: Float32 images in [0, 1].
        labels: Integer class labels.

    Returns:
        The accuracy as a Python float.
    """
    logits = model.predict(images, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def save_atomically(model, output):
    """Saves the model so that a half-written file never appears at output.

    Args:
        model: The model to save.
        output: Destination path ending in ".keras".
    """
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    # Keras insists on the ".keras" suffix, and the temporary file must sit in
    # the same folder so that os.replace is an atomic rename.
    file_descriptor, temporary_path = tempfile.mkstemp(
        suffix=".keras", prefix=".tmp_", dir=directory
    )
    os.close(file_descriptor)
    try:
        # mkstemp creates the file owner-only; the model is meant to be shipped
        # and read by anyone, like any other package data file.
        os.chmod(temporary_path, 0o644)
        model.save(temporary_path)
        os.replace(temporary_path, output)
    except BaseException:
        if os.path.exists(temporary_path):
            os.remove(temporary_path)
        raise


def main(argv):
    command_line.check_output_command(argv, FLAGS.output, PROGRAM, ".keras")
    keras.utils.set_random_seed(FLAGS.seed)
    tf.config.experimental.enable_op_determinism()
    train_images, train_labels = make_dataset(FLAGS.num_train, FLAGS.seed)
    test_images, test_labels = make_dataset(FLAGS.num_test, FLAGS.seed + TEST_SEED_OFFSET)
    model = build_model()
    start_time = time.monotonic()
    train_model(model, train_images, train_labels, FLAGS.epochs)
    print(f"training time: {time.monotonic() - start_time:.1f} s")
    test_accuracy = accuracy(model, test_images, test_labels)
    save_atomically(model, FLAGS.output)
    print(f"held-out accuracy: {test_accuracy:.3f} on {FLAGS.num_test} images")


if __name__ == "__main__":
    command_line.run_script(main, PROGRAM, command_line.script_flags_parser(PROGRAM))
