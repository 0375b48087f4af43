"""Small models that stand in for VGG16, ResNet50V2 and Xception in the figure tests.

The figure configs name layers of the published models; a stand-in has layers of those names
(each a 1x1 convolution of the input with 64 filters, so that only it runs), and a softmax
classifier named `predictions`, so that every figure config runs unchanged but for the model.
"""

import keras

# The layers that the figure configs visualize. 64 filters each is as many as any figure
# shows; the real layers have up to 512, which would only make the tests slower.
FIGURE_LAYERS = (
    "block1_conv1",
    "block2_conv1",
    "block3_conv1",
    "block4_conv1",
    "block5_conv1",
    "block5_conv2",
    "conv3_block4_out",
    "block3_sepconv1",
)
FILTERS = 64
CLASSES = 1000


def figure_stand_in(name: str = "stand_in") -> keras.Model:
    """Every figure layer as a 1x1 convolution of the image, then a 1000-class softmax.

    The kernels are positive, so that on the references' positive noise no filter is dead
    and every grid fills.
    """
    inputs = keras.Input((None, None, 3), name="image")
    pooled = []
    for seed, layer_name in enumerate(FIGURE_LAYERS):
        branch = keras.layers.Conv2D(
            FILTERS,
            1,
            name=layer_name,
            kernel_initializer=keras.initializers.RandomUniform(0.0, 1.0, seed=seed),
        )(inputs)
        pooled.append(keras.layers.GlobalAveragePooling2D()(branch))
    features = keras.layers.Concatenate()(pooled)
    hidden = keras.layers.Dense(8, name="hidden")(features)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="predictions")(hidden)
    return keras.Model(inputs, outputs, name=name)


def constant_filters_model(biases, name: str = "constant_filters") -> keras.Model:
    """A 1x1 ReLU convolution with zero kernels: filter f's activation is max(biases[f], 0).

    Every filter's loss is known in advance and stays put (its gradient is zero), which
    makes the selection of filters checkable exactly.
    """
    inputs = keras.Input((None, None, 3), name="image")
    conv = keras.layers.Conv2D(len(biases), 1, activation="relu", name="conv")
    model = keras.Model(inputs, conv(inputs), name=name)
    kernel, bias = conv.get_weights()
    conv.set_weights([kernel * 0.0, bias * 0.0 + biases])
    return model


def linear_model(kernel, name: str = "linear") -> keras.Model:
    """A 1x1 convolution without bias or activation: activation = image · kernel per pixel.

    The gradient of a filter's mean activation is known in closed form: kernel[:, f] divided
    by the number of pixels averaged, at each pixel that counts.
    """
    inputs = keras.Input((None, None, kernel.shape[0]), name="image")
    conv = keras.layers.Conv2D(kernel.shape[1], 1, use_bias=False, name="conv")
    model = keras.Model(inputs, conv(inputs), name=name)
    conv.set_weights([kernel.reshape(1, 1, *kernel.shape)])
    return model
