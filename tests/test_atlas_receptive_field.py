"""The analytic receptive field, checked by hand and against the model's own dependencies.

The check measures which input pixels each output position depends on: with positive weights,
no bias and a one-hot image (one pixel at 1, the rest 0), every value on the way is >= 0 and the
pixel's contribution is > 0 wherever it reaches, even through ReLU and max pooling. One batch of
all one-hot images gives every position's dependencies in one forward pass, on any backend.
"""

import keras
import numpy as np
import pytest

from keras_filters.atlas import receptive_field as receptive_field_lib

receptive_field = receptive_field_lib.receptive_field
POSITIVE = keras.initializers.RandomUniform(0.1, 1.0, seed=3)


def conv(filters, kernel, **options):
    return keras.layers.Conv2D(
        filters, kernel, use_bias=False, kernel_initializer=POSITIVE, activation="relu", **options
    )


def measured_boxes(model, layer, height, width):
    """{(row, column): (top, left, bottom, right)} from one-hot images through the model."""
    pixels = height * width
    images = np.zeros((pixels, height, width, 1), np.float32)
    images[np.arange(pixels), np.arange(pixels) // width, np.arange(pixels) % width, 0] = 1
    extractor = keras.Model(model.inputs[0], model.get_layer(layer).output)
    outputs = keras.ops.convert_to_numpy(extractor(images)).max(axis=-1)  # (pixels, rows, cols)
    boxes = {}
    for row in range(outputs.shape[1]):
        for column in range(outputs.shape[2]):
            seen = np.flatnonzero(outputs[:, row, column] > 0)
            rows, columns = seen // width, seen % width
            boxes[row, column] = (rows.min(), columns.min(), rows.max() + 1, columns.max() + 1)
    return boxes


def expected_boxes(field):
    rows, columns = field.output_size
    return {(r, c): field.box(r, c) for r in range(rows) for c in range(columns)}


def chain(*layers, height=None, width=None):
    inputs = keras.Input((height, width, 1))
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


CASES = {
    "valid conv, pool, conv": lambda: chain(
        conv(2, 3, name="a"), keras.layers.MaxPooling2D(2), conv(2, 3, name="target")
    ),
    "same padding, stride 2": lambda: chain(
        conv(2, 3, padding="same"), conv(2, 3, strides=2, padding="same", name="target")
    ),
    "same padding, stride 2, even kernel, pooling same": lambda: chain(
        conv(2, 4, strides=2, padding="same"),
        keras.layers.MaxPooling2D(3, strides=2, padding="same"),
        conv(2, (1, 3), name="target"),
    ),
    "dilation": lambda: chain(conv(2, 3, dilation_rate=2, name="target")),
    "zero padding and cropping": lambda: chain(
        keras.layers.ZeroPadding2D(((2, 0), (1, 3))),
        conv(2, 3, strides=2),
        keras.layers.Cropping2D(((1, 0), (0, 1))),
        conv(2, 2, name="target"),
    ),
    "depthwise and separable": lambda: chain(
        keras.layers.DepthwiseConv2D(
            3, padding="same", use_bias=False, depthwise_initializer=POSITIVE
        ),
        keras.layers.SeparableConv2D(
            2,
            3,
            strides=2,
            use_bias=False,
            depthwise_initializer=POSITIVE,
            pointwise_initializer=POSITIVE,
            name="target",
        ),
    ),
    "average pooling and normalization": lambda: chain(
        conv(2, 3),
        keras.layers.AveragePooling2D(2, strides=1),
        keras.layers.Rescaling(2.0),
        keras.layers.Activation("relu", name="target"),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("size", [(15, 15), (16, 13)])
def test_field_matches_measured_dependencies(case, size):
    model = CASES[case]()
    field = receptive_field(model, "target", size)
    assert not field.is_global and field.assumptions == ()
    assert expected_boxes(field) == measured_boxes(model, "target", *size)


def test_branches_merge_as_the_union_of_their_fields():
    inputs = keras.Input((None, None, 1))
    stem = conv(2, 3, padding="same")(inputs)
    wide = conv(2, 5, padding="same")(stem)
    short = conv(2, 1)(stem)
    added = keras.layers.Add()([wide, short])
    joined = keras.layers.Concatenate()([added, conv(2, 3, dilation_rate=3, padding="same")(stem)])
    target = conv(2, 3, strides=2, padding="same", name="target")(joined)
    model = keras.Model(inputs, target)
    field = receptive_field(model, "target", 17)
    # stem 3, then the widest branch (dilated: 7 more pixels, centred) 9, then the target: 11.
    assert field.size == (11, 11)
    assert expected_boxes(field) == measured_boxes(model, "target", 17, 17)


def test_a_global_gate_does_not_widen_the_local_field():
    """A squeeze-and-excitation gate sees the whole image but is the same at every position."""
    inputs = keras.Input((None, None, 1))
    features = conv(4, 3, padding="same", name="features")(inputs)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True)(features)
    gate = keras.layers.Dense(4, activation="sigmoid")(gate)
    gated = keras.layers.Multiply(name="gated")([features, gate])
    model = keras.Model(inputs, gated)
    gated_field = receptive_field(model, "gated", 12)
    features_field = receptive_field(model, "features", 12)
    assert (gated_field.size, gated_field.stride, gated_field.start) == (
        features_field.size,
        features_field.stride,
        features_field.start,
    )


def test_layers_without_spatial_axes_see_the_whole_image():
    model = chain(
        conv(2, 3),
        keras.layers.Flatten(),
        keras.layers.Dense(3, name="logits"),
        height=10,
        width=12,
    )
    field = receptive_field(model, "logits", (10, 12))
    assert field.is_global and field.output_size == (1, 1)
    assert field.box(0, 0) == (0, 0, 10, 12)


def test_nested_models_compose_their_fields():
    inner_input = keras.Input((None, None, 2))
    inner_hidden = conv(2, 3, strides=2, name="inner_conv")(inner_input)
    inner = keras.Model(inner_input, conv(2, 3, name="inner_out")(inner_hidden), name="backbone")
    sequential = keras.Sequential(
        [keras.Input((None, None, 2)), conv(2, 3, name="seq_conv")], name="head"
    )
    inputs = keras.Input((None, None, 1))
    x = conv(2, 3, padding="same", name="stem")(inputs)
    x = inner(x)
    outputs = sequential(x)
    model = keras.Model(inputs, outputs)
    field = receptive_field(model, "backbone/inner_conv", 21)
    assert (field.size, field.stride, field.start) == ((5, 5), (2, 2), (-1, -1))
    assert receptive_field(model, "backbone/inner_out", 21).size == (9, 9)
    assert receptive_field(model, "head/seq_conv", 21).size == (13, 13)
    # The nested models as layers of the outer graph: their output, measured.
    head = receptive_field(model, "head", 21)
    assert head.size == (13, 13)
    assert expected_boxes(head) == measured_boxes(model, "head", 21, 21)


def test_box_clips_to_the_image_and_refuses_positions_outside():
    model = chain(conv(1, 5, padding="same", name="target"))
    field = receptive_field(model, "target", 8)
    assert (field.start, field.size) == ((-2, -2), (5, 5))
    assert field.box(0, 0) == (0, 0, 3, 3)
    assert field.box(7, 3) == (5, 1, 8, 6)
    with pytest.raises(ValueError, match=r"position \(8, 0\) is outside .* 8x8"):
        field.box(8, 0)


def test_unsupported_and_unknown_layers_are_named():
    model = chain(conv(1, 3), keras.layers.UpSampling2D(name="up"), conv(1, 3, name="target"))
    with pytest.raises(ValueError, match=r"'up' \(UpSampling2D\) changes the scale"):
        receptive_field(model, "target", 12)
    with pytest.raises(ValueError, match=r"has no layer 'nothing'; its layers are"):
        receptive_field(model, "nothing", 12)


class Scale(keras.layers.Layer):
    """A custom layer that acts on each position: taken as pointwise, and said so."""

    def call(self, inputs):
        return inputs * 2.0


def test_unknown_layer_keeping_the_size_is_an_assumption_said_aloud():
    model = chain(conv(1, 3), Scale(name="scale"), conv(1, 3, name="target"))
    field = receptive_field(model, "target", 12)
    assert field.size == (5, 5)
    assert field.assumptions == (
        "scale (Scale): keeps the spatial size, taken as acting on each position alone",
    )


@pytest.mark.parametrize(
    "constructor, layer, size, field_size, stride",
    [
        # Published values: Araujo, Norris and Sim, Distill 2019, table of receptive fields.
        ("VGG16", "block5_pool", 224, 212, 32),
        ("ResNet50", "conv5_block3_out", 224, 483, 32),
        ("MobileNetV2", "out_relu", 224, 491, 32),
        ("InceptionV3", "mixed10", 299, 1311, 32),
    ],
)
def test_applications_match_published_receptive_fields(
    constructor, layer, size, field_size, stride
):
    model = getattr(keras.applications, constructor)(
        weights=None, include_top=False, input_shape=(size, size, 3)
    )
    field = receptive_field(model, layer, size)
    assert (field.size, field.stride, field.assumptions) == (
        (field_size, field_size),
        (stride, stride),
        (),
    )
