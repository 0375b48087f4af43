"""The model's input range: how a picture in [0, 1] becomes what the model takes.

The quality recipe optimizes a picture in [0, 1] and maps it into the model's input space
inside the graph, so that the model always sees values it was trained on. The map comes from,
in order: the `input_range=(low, high)` setting; the Keras Applications family's
`preprocess_input` ("caffe" BGR minus the ImageNet mean for VGG16/VGG19/ResNet50, [−1, 1] for
ResNetV2/Xception/Inception/MobileNet, ImageNet mean and std for DenseNet, raw 0–255 for
EfficientNet/ConvNeXt/MobileNetV3, which preprocess inside the model); [0, 1] for the demo
model; a leading `Rescaling` layer of a model file. Returned `inputs` are in the model's space.
"""

import re

import numpy as np
from keras import ops

from keras_filters import errors

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)

# Keras Applications families by the start of their canonical name, and their preprocess.
_FAMILY_MODES = (
    ("vgg", "caffe"),
    ("resnet50v2", "tf"),
    ("resnet101v2", "tf"),
    ("resnet152v2", "tf"),
    ("resnet", "caffe"),
    ("xception", "tf"),
    ("inceptionv3", "tf"),
    ("inceptionresnetv2", "tf"),
    ("mobilenetv3", "raw"),
    ("mobilenet", "tf"),
    ("nasnet", "tf"),
    ("densenet", "torch"),
    ("efficientnet", "raw"),
    ("convnext", "raw"),
)


class InputRange:
    """Maps pictures in [0, 1] (RGB order) to the model's input space, per channel.

    `to_model(x) = flip(x) · scale + offset`, where `flip` reverses RGB to BGR for the "caffe"
    family. The valid inputs are those of pictures in [0, 1]: per channel, from `offset` to
    `offset + scale`.

    Args:
        scale: Per-channel factor (channels,).
        offset: Per-channel offset (channels,).
        flip_channels: Reverse the channel order first (RGB to BGR). Defaults to False.
        description: How the range was found, for messages and records.
    """

    def __init__(self, scale, offset, *, flip_channels: bool = False, description: str = ""):
        self.scale = np.asarray(scale, np.float32).reshape(-1)
        self.offset = np.asarray(offset, np.float32).reshape(-1)
        self.flip_channels = flip_channels
        self.description = description

    @classmethod
    def from_bounds(cls, low: float, high: float, channels: int, description: str = ""):
        """The range that maps [0, 1] linearly onto [low, high] in every channel."""
        return cls(np.full(channels, high - low), np.full(channels, low), description=description)

    @classmethod
    def from_mode(cls, mode: str, channels: int, description: str = ""):
        """The range of a Keras Applications preprocess mode: caffe, tf, torch, raw or unit."""
        if mode == "caffe":
            return cls(
                np.full(3, 255.0),
                -np.asarray(CAFFE_MEAN_BGR),
                flip_channels=True,
                description=description,
            )
        if mode == "torch":
            std = np.asarray(TORCH_STD)
            return cls(1.0 / std, -np.asarray(TORCH_MEAN) / std, description=description)
        low, high = {"tf": (-1.0, 1.0), "raw": (0.0, 255.0), "unit": (0.0, 1.0)}[mode]
        return cls.from_bounds(low, high, channels, description)

    @property
    def channels(self) -> int:
        """Channels of the model's input."""
        return len(self.scale)

    @property
    def low(self) -> np.ndarray:
        """Per-channel lowest valid input (model channel order)."""
        return np.minimum(self.offset, self.offset + self.scale)

    @property
    def high(self) -> np.ndarray:
        """Per-channel highest valid input (model channel order)."""
        return np.maximum(self.offset, self.offset + self.scale)

    @property
    def span(self) -> np.ndarray:
        """Per-channel width of the valid range."""
        return np.abs(self.scale)

    def to_model(self, unit_images):
        """[0, 1] pictures → model inputs; `keras.ops`, differentiable."""
        if self.flip_channels:
            unit_images = ops.flip(unit_images, axis=-1)
        return unit_images * self.scale + self.offset

    def to_unit(self, model_images) -> np.ndarray:
        """Model inputs → [0, 1] pictures in RGB order (NumPy)."""
        unit = (np.asarray(model_images, np.float32) - self.offset) / self.scale
        return unit[..., ::-1] if self.flip_channels else unit

    def clip_ops(self, model_images):
        """Clips model inputs into the valid range; `keras.ops`."""
        return ops.minimum(ops.maximum(model_images, self.low), self.high)

    def clip(self, model_images) -> np.ndarray:
        """Clips model inputs into the valid range (NumPy)."""
        return np.clip(np.asarray(model_images, np.float32), self.low, self.high)

    def outside(self, model_images) -> float:
        """How far the furthest value lies outside the range, as a fraction of the range."""
        images = np.asarray(model_images, np.float32)
        beyond = np.maximum(images - self.high, self.low - images) / self.span
        return float(max(np.max(beyond), 0.0)) if beyond.size else 0.0

    def bounds(self) -> tuple[float, float]:
        """The lowest and highest valid input over all channels."""
        return float(self.low.min()), float(self.high.max())

    def to_record(self) -> dict:
        """The range as JSON-ready values (run records; `from_record` reads them back)."""
        return {
            "scale": [float(value) for value in self.scale],
            "offset": [float(value) for value in self.offset],
            "flip_channels": self.flip_channels,
            "description": self.description,
        }

    @classmethod
    def from_record(cls, record: dict | None):
        """The range that `to_record` wrote, or None for None."""
        if record is None:
            return None
        return cls(
            record["scale"],
            record["offset"],
            flip_channels=record["flip_channels"],
            description=record["description"],
        )

    def __repr__(self) -> str:
        return f"InputRange({self.description or self.bounds()})"


def _canonical(name: str) -> str:
    return re.sub(r"[_\-\s]", "", name).lower()


def application_mode(name: str) -> str | None:
    """The preprocess mode of a Keras Applications model name ("vgg16" → "caffe"), or None."""
    canonical = _canonical(name)
    for prefix, mode in _FAMILY_MODES:
        if canonical.startswith(prefix):
            return mode
    return None


def rescaling_range(model, channels: int) -> InputRange | None:
    """The range that a leading `Rescaling` layer expects, or None without one.

    `Rescaling(scale, offset)` maps x to x·scale + offset; the layer after it was trained on
    [−1, 1] when offset is negative (offset −1: `Rescaling(1/127.5, -1)`) and on [0, 1]
    otherwise, so the model's inputs are the values that land there.
    """
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not layers or not isinstance(layers[0], keras.layers.Rescaling):
        return None
    config = layers[0].get_config()
    scale = np.broadcast_to(np.asarray(config["scale"], np.float64), (channels,))
    offset = np.broadcast_to(np.asarray(config["offset"], np.float64), (channels,))
    target_low = np.where(offset < 0, -1.0, 0.0)
    low = (target_low - offset) / scale
    high = (1.0 - offset) / scale
    return InputRange(
        high - low, low, description=f"the leading Rescaling layer {layers[0].name!r}"
    )


def resolve(model, settings) -> InputRange:
    """The model's input range from the settings, its family or its first layer.

    Args:
        model: The loaded `keras.Model`; the demo and Keras Applications models carry the
            name they were loaded by (`keras_filters_source`, set by `model.loading`).
        settings: The run's `Settings` (`input_range`).

    Returns:
        An `InputRange`.

    Raises:
        UsageError: When nothing says the range (a model file without a leading Rescaling
            layer and no `input_range`), or for a family range that needs 3 channels.
    """
    channels = int(model.inputs[0].shape[-1])
    if settings.input_range:
        low, high = settings.input_range
        return InputRange.from_bounds(low, high, channels, f"input_range=({low:g}, {high:g})")
    spec = getattr(model, "keras_filters_source", "")
    if spec == "demo":
        return InputRange.from_mode("unit", channels, "the demo model's [0, 1]")
    mode = application_mode(spec) if spec else None
    if mode in ("caffe", "torch") and channels != 3:
        raise errors.UsageError(
            f"model={spec!r} takes {channels} channels, but its family's preprocess ({mode}) "
            "needs 3; set input_range=(low, high)"
        )
    if mode is not None:
        return InputRange.from_mode(mode, channels, f"{spec}'s preprocess_input ({mode})")
    found = rescaling_range(model, channels)
    if found is not None:
        return found
    raise errors.UsageError(
        f"model {model.name!r} does not say its input range (no leading Rescaling "
        "layer); set input_range=(low, high), e.g. input_range=(0, 255) for raw pixels or "
        "(-1, 1)"
    )
