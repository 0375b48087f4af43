"""The ascent loop: runs the step on one chunk of filters for all steps and scales."""

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from keras import ops

from keras_filters import scales


@dataclasses.dataclass
class ChunkResult:
    """What the ascent made of one chunk of filters.

    Attributes:
        filter_indices: int array (batch,).
        inputs: float32 array (batch, height, width, channels): the optimized images in the
            model's input space.
        losses: float32 array (batch,): the objective at the last step (NaN if failed).
        loss_history: float32 array (steps, batch): the objective at every step.
        failed_step: int array (batch,): the step at which the loss or gradient stopped being
            finite, or -1.
    """

    filter_indices: np.ndarray
    inputs: np.ndarray
    losses: np.ndarray
    loss_history: np.ndarray
    failed_step: np.ndarray


def ascend(
    step: Callable,
    initial_images: np.ndarray,
    filter_indices: Sequence[int],
    *,
    num_steps: int,
    step_size: float,
    sizes: Sequence[int],
    upscale_scale: float,
    upscale_epsilon: float,
    on_step: Callable[[int, np.ndarray], None] | None = None,
) -> ChunkResult:
    """Runs gradient ascent on one chunk of images, one filter per image.

    With one size, `num_steps` steps are taken. With several (the multi-scale schedule),
    `num_steps` steps are taken at each size but the last, and the images are upscaled to the
    next size after each (see `scales.upscale_images`).

    Args:
        step: An ascent step as `step.make_ascent_step` builds it.
        initial_images: Float array (batch, height, width, channels) at `sizes[0]`.
        filter_indices: The filter of each image.
        num_steps: Steps per scale.
        step_size: How far each normalized step goes.
        sizes: The image sizes visited; see `scales.scale_sizes`.
        upscale_scale: Deprocess contrast used between scales.
        upscale_epsilon: Deprocess epsilon used between scales.
        on_step: Called after each step with the step number (from 1) and the losses.

    Returns:
        A `ChunkResult`.
    """
    indices = ops.convert_to_tensor(np.asarray(filter_indices, dtype=np.int32))
    step_size_tensor = ops.convert_to_tensor(np.float32(step_size))
    params = ops.convert_to_tensor(np.asarray(initial_images, dtype=np.float32))
    history = []
    failed_step = np.full(len(filter_indices), -1, dtype=np.int64)
    for scale_number, _ in enumerate(scales.optimized_sizes(sizes)):
        if scale_number > 0:
            params = ops.convert_to_tensor(
                scales.upscale_images(
                    np.asarray(params), sizes[scale_number], upscale_scale, upscale_epsilon
                )
            )
        for _ in range(num_steps):
            params, losses, finite = step(params, indices, step_size_tensor)
            losses = np.asarray(losses, dtype=np.float32)
            newly_failed = ~np.asarray(finite) & (failed_step < 0)
            failed_step[newly_failed] = len(history)
            history.append(losses)
            if on_step is not None:
                on_step(len(history), losses)
    images = np.asarray(params, dtype=np.float32)
    if len(sizes) > 1:
        images = scales.upscale_images(images, sizes[-1], upscale_scale, upscale_epsilon)
    loss_history = np.stack(history).astype(np.float32)
    final_losses = loss_history[-1].copy()
    final_losses[failed_step >= 0] = np.nan
    return ChunkResult(
        filter_indices=np.asarray(filter_indices, dtype=np.int64),
        inputs=images,
        losses=final_losses,
        loss_history=loss_history,
        failed_step=failed_step,
    )
