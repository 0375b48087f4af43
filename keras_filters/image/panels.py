"""Titled panels: one mosaic per layer with its title above, stacked into one image.

The 2016 Keras blog post shows its overview as one small titled grid per layer; these
functions draw that figure from mosaics that `mosaic.stitch` made.
"""

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from keras_filters import errors

# Height of the black band that holds a panel's title; fits PIL's default font with room.
TITLE_HEIGHT = 24
# Pixels between the left edge of the band and the title.
TITLE_INDENT = 4
TITLE_COLOR = 255


def panel_titles(layers: Sequence[str], titles: Sequence[str]) -> list[str]:
    """The title of each panel: `titles` if given, else the layer names.

    Raises:
        UsageError: When `titles` is given but does not have one title per layer.
    """
    if not titles:
        return [str(layer) for layer in layers]
    if len(titles) != len(layers):
        raise errors.UsageError(
            f"panel_titles has {len(titles)} titles for {len(layers)} panel_layers; give one "
            "title per layer, or none to use the layer names"
        )
    return [str(title) for title in titles]


def title_band(title: str, width: int, channels: int, height: int = TITLE_HEIGHT) -> np.ndarray:
    """A black uint8 band (height, width, channels) with `title` written in white on it.

    PIL's default font is used, so that no font file is needed. A title wider than the band
    is cut off at its right edge.
    """
    band = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(band)
    font = ImageFont.load_default()
    left, top, right, bottom = draw.textbbox((0, 0), title, font=font)
    draw.text(
        (TITLE_INDENT - left, (height - (bottom - top)) // 2 - top),
        title,
        fill=TITLE_COLOR,
        font=font,
    )
    return np.repeat(np.asarray(band, dtype=np.uint8)[..., None], channels, axis=-1)


def titled_panel(pixels: np.ndarray, title: str, title_height: int = TITLE_HEIGHT) -> np.ndarray:
    """Puts a title band above a mosaic.

    Args:
        pixels: uint8 array (height, width, channels): the mosaic.
        title: The text of the title.
        title_height: Height of the band in pixels. Defaults to TITLE_HEIGHT.

    Returns:
        uint8 array (title_height + height, width, channels); the rows below the band are
        `pixels` unchanged.
    """
    pixels = np.asarray(pixels, dtype=np.uint8)
    band = title_band(title, pixels.shape[1], pixels.shape[2], title_height)
    return np.concatenate([band, pixels], axis=0)


def stack_panels(panels: Sequence[np.ndarray], margin: int) -> np.ndarray:
    """Stacks panels top to bottom, left-aligned, `margin` black rows apart.

    Narrower panels are padded with black on the right to the widest panel.

    Args:
        panels: uint8 arrays (height, width, channels), all with the same channels.
        margin: Black rows between panels.

    Returns:
        uint8 array (sum of heights + (len(panels) − 1)·margin, widest width, channels).

    Raises:
        ValueError: For no panels, a negative margin or panels with different channels.
    """
    if not panels:
        raise ValueError("no panels to stack")
    if margin < 0:
        raise ValueError(f"margin must be ≥ 0; got {margin}")
    channels = {panel.shape[2] for panel in panels}
    if len(channels) != 1:
        raise ValueError(f"panels differ in channels: {sorted(channels)}")
    width = max(panel.shape[1] for panel in panels)
    height = sum(panel.shape[0] for panel in panels) + margin * (len(panels) - 1)
    canvas = np.zeros((height, width, channels.pop()), dtype=np.uint8)
    top = 0
    for panel in panels:
        canvas[top : top + panel.shape[0], : panel.shape[1]] = panel
        top += panel.shape[0] + margin
    return canvas
