"""The render loop: steps and scales over one chunk of images, with one compiled step.

`Renderer` holds what a run needs once (the step, the parameterization, the schedule) and
optimizes one chunk at a time: one image per key, all in one batch.
"""

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from keras_filters import distribution
from keras_filters.optvis import step as step_lib
from keras_filters.optvis import transforms as transforms_lib

# The largest key. A key seeds NumPy generators with (seed, key), which refuse a negative one,
# and is kept as int64 (`ChunkResult.keys`), which holds no larger one.
MAX_KEY = 2**63 - 1


def scale_sizes(image_size: int, num_upscalings: int, upscale_factor: float) -> list[int]:
    """The image sizes visited, smallest first, ending at `image_size`.

    As the 2019 Keras example: size k is int(image_size / factor**k), for k from
    `num_upscalings` down to 0 (412 px, 9 upscalings by 1.2: 79, 95, 114, …, 343, 412).
    """
    return [int(image_size / upscale_factor**k) for k in range(num_upscalings, -1, -1)]


def optimized_sizes(sizes: Sequence[int]) -> list[int]:
    """The sizes at which steps are taken: all but the last, or the one size if there is one.

    The last size of a multi-scale schedule is only upscaled to, never optimized at.
    """
    return list(sizes[:-1]) if len(sizes) > 1 else list(sizes)


@dataclasses.dataclass
class ChunkResult:
    """What the ascent made of one chunk.

    Attributes:
        keys: int array (batch,): each image's key (its filter index, or its objective's
            position), which seeded its noise and transforms.
        inputs: float32 array (batch, height, width, channels): the optimized images in the
            model's input space.
        losses: float32 array (batch,): the objective at the last step (NaN if failed).
        loss_history: float32 array (steps, batch): the objective at every step.
        failed_step: int array (batch,): the step at which the loss or gradient stopped being
            finite, or -1.
    """

    keys: np.ndarray
    inputs: np.ndarray
    losses: np.ndarray
    loss_history: np.ndarray
    failed_step: np.ndarray


class Renderer:
    """Optimizes chunks of images for one batched objective with one compiled step.

    Args:
        extractor: Model from the input to the objective's layers (dict outputs).
        objective: The batch's objective (see `objectives.batch_plan`): what is ascended and
            reported.
        parameterization: E.g. `param.Pixel`.
        update: E.g. `update.NormalizedGradient`.
        transforms: Transforms applied inside the tape. Defaults to none.
        seed: Seeds the starting parameters and the transforms' draws.
        sizes: The image sizes visited (see `scale_sizes`).
        num_steps: Steps per scale.
        step_size: Step length (the learning rate, for Adam).
        channels: Channels of the model's input.
        step_size_at: The step length of step k (from 0), `step_size_at(k)`, for a schedule.
            Defaults to `step_size` at every step.
        warmup_extractor: The extractor whose ReLUs redirect their gradient
            (`variants.relu_warmup_copy`), used for the first `warmup_steps` steps. Defaults
            to none.
        warmup_steps: How many steps use `warmup_extractor`. Defaults to 0.
        penalty: The regularizers (`objectives.penalty`): ascended against, never reported,
            so the losses and the dead filters mean the same with or without them. Defaults
            to none.
        jit_compile: Compile the step with XLA. Defaults to False.
        placement: Where the images run (`distribution.Placement` and its kinds). Defaults
            to one device.
    """

    def __init__(
        self,
        extractor,
        objective,
        parameterization,
        update,
        *,
        transforms: Sequence = (),
        seed: int,
        sizes: Sequence[int],
        num_steps: int,
        step_size: float,
        channels: int,
        jit_compile: bool = False,
        placement=None,
        step_size_at: Callable[[int], float] | None = None,
        warmup_extractor=None,
        warmup_steps: int = 0,
        penalty=None,
    ):
        self.extractor = extractor
        self.objective = objective
        self.penalty = penalty
        self.parameterization = parameterization
        self.update = update
        self.placement = placement or distribution.Placement()
        self.transforms = transforms_lib.Compose(transforms)
        self.seed = seed
        self.sizes = list(sizes)
        self.num_steps = num_steps
        self.step_size = step_size
        self.channels = channels
        self.step_size_at = step_size_at
        self.warmup_steps = warmup_steps if warmup_extractor is not None else 0

        def compiled(features):
            return step_lib.make_step(
                features,
                objective,
                parameterization,
                self.transforms,
                update,
                example_params=self.initial_params([0]),
                jit_compile=jit_compile,
                penalty=penalty,
            )

        self.step = compiled(extractor)
        self.placed_step = self.placement.wrap(self.step)
        self.placed_warmup_step = (
            self.placement.wrap(compiled(warmup_extractor)) if self.warmup_steps else None
        )

    @property
    def total_steps(self) -> int:
        """Steps per image over all scales."""
        return self.num_steps * len(optimized_sizes(self.sizes))

    def initial_params(self, keys: Sequence[int]) -> np.ndarray:
        """Each key's seeded starting parameters at the first scale."""
        size = self.sizes[0]
        return self.parameterization.initial(
            keys, seed=self.seed, height=size, width=size, channels=self.channels
        )

    def empty_chunk(self) -> ChunkResult:
        """The result of a chunk of no images, shaped as `run_chunk` shapes its results.

        A shard whose share of a layer is empty saves this, so that its results join the
        other shards' (along the image axis) like any chunk's.
        """
        size = self.sizes[-1]  # Every parameterization gives its images at the last size.
        return ChunkResult(
            keys=np.zeros(0, np.int64),
            inputs=np.zeros((0, size, size, self.channels), np.float32),
            losses=np.zeros(0, np.float32),
            loss_history=np.zeros((self.total_steps, 0), np.float32),
            failed_step=np.zeros(0, np.int64),
        )

    def run_chunk(
        self,
        keys: Sequence[int],
        targets: Sequence[int],
        on_step: Callable[[int, np.ndarray], None] | None = None,
    ) -> ChunkResult:
        """Optimizes one image per key, all in one batch.

        With one size, `num_steps` steps are taken. With several (the multi-scale schedule),
        `num_steps` steps are taken at each size but the last, and the parameters are resized
        to the next size after each.

        Args:
            keys: Each image's key (seeds its start and its transforms).
            targets: Each image's target for the objective (its filter index, or position).
            on_step: Called after each step with the step number (from 1) and the losses.

        Returns:
            A `ChunkResult`.
        """
        ascent = _Ascent(self, keys, targets, on_step)
        params = self.initial_params(ascent.keys)
        for scale_number, _ in enumerate(optimized_sizes(self.sizes)):
            if scale_number > 0:
                params = self.parameterization.resize(params, self.sizes[scale_number])
            first = len(ascent.history)
            params = ascent.take_steps(params, range(first, first + self.num_steps))
        if len(self.sizes) > 1:
            params = self.parameterization.resize(params, self.sizes[-1])
        return ascent.result(params)

    def restart_chunk(
        self,
        keys: Sequence[int],
        targets: Sequence[int],
        start_inputs: np.ndarray,
        draw_steps: Sequence[int],
        step_sizes: Sequence[float],
        on_step: Callable[[int, np.ndarray], None] | None = None,
    ) -> ChunkResult:
        """Optimizes one image per key from given pictures, at the last size.

        Each image starts from its row of `start_inputs` (in the model's input space, at the
        last size) with a fresh optimizer state and takes one step per entry of `draw_steps`,
        which draws that step's transforms (with the key), of the length in `step_sizes`. No
        warm-up. `rivals` restarts losing filters so.

        Returns:
            A `ChunkResult` whose `loss_history` has one row per step taken here.
        """
        ascent = _Ascent(self, keys, targets, on_step)
        padded = np.concatenate(
            [start_inputs, np.repeat(start_inputs[-1:], len(ascent.keys) - len(keys), axis=0)]
        )
        params = self.parameterization.from_inputs(padded)
        return ascent.result(ascent.take_steps(params, draw_steps, step_sizes=step_sizes))


class _Ascent:
    """The steps of one chunk on the renderer's placement: padding, draws, losses, failures."""

    def __init__(self, renderer: Renderer, keys, targets, on_step):
        self.renderer = renderer
        placement = renderer.placement
        self.count = len(keys)
        # Padding with copies of the last image makes the chunk divide among the replicas.
        padding = placement.padded_size(self.count) - self.count
        self.keys = [int(key) for key in keys] + [int(keys[-1])] * padding
        targets = list(targets) + [targets[-1]] * padding
        self.target_tensor = placement.put(np.asarray(targets, dtype=np.int32))
        self.constant_step_size = placement.put(np.float32(renderer.step_size))
        self.on_step = on_step
        self.history = []
        self.failed_step = np.full(self.count, -1, dtype=np.int64)
        num_draws = renderer.transforms.num_draws
        self.no_draws = (
            placement.put(np.zeros((len(self.keys), 0), np.float32)) if not num_draws else None
        )

    def step_size_of(self, step):
        # A constant step length is placed once; a schedule's, at every step.
        if self.renderer.step_size_at is None:
            return self.constant_step_size
        return self.renderer.placement.put(np.float32(self.renderer.step_size_at(step)))

    def draws_of(self, step):
        # Without transforms every step takes the same empty draws: place them once.
        if self.no_draws is not None:
            return self.no_draws
        renderer = self.renderer
        return renderer.placement.put(
            transforms_lib.random_draws(
                renderer.seed, self.keys, step, renderer.transforms.num_draws
            )
        )

    def take_steps(self, host_params, step_numbers, step_sizes=None) -> np.ndarray:
        """Takes the steps from `host_params` with a fresh optimizer state; returns the
        parameters on the host (padded). Given `step_sizes` (one per step), the steps take
        those lengths and no warm-up; else the schedule's, and the warm-up's first steps."""
        renderer = self.renderer
        place = renderer.placement.put
        # The update's state (Adam's moments) is made on the host, then placed like the
        # parameters; each scale of a multi-scale schedule starts it afresh.
        state = tuple(place(value) for value in renderer.update.init_state(host_params))
        params = place(host_params)
        for number, step in enumerate(step_numbers):
            if step_sizes is None:
                step_size = self.step_size_of(step)
                warmup = step < renderer.warmup_steps
            else:
                step_size, warmup = place(np.float32(step_sizes[number])), False
            step_function = renderer.placed_warmup_step if warmup else renderer.placed_step
            params, state, losses, finite = step_function(
                params, state, self.target_tensor, step_size, self.draws_of(step)
            )
            losses = renderer.placement.fetch(losses)[: self.count].astype(np.float32)
            finite = renderer.placement.fetch(finite)[: self.count].astype(bool)
            newly_failed = ~finite & (self.failed_step < 0)
            self.failed_step[newly_failed] = len(self.history)
            self.history.append(losses)
            if self.on_step is not None:
                self.on_step(len(self.history), losses)
        return renderer.placement.fetch(params)

    def result(self, params) -> ChunkResult:
        """The chunk's result from its final parameters (padded)."""
        loss_history = np.stack(self.history).astype(np.float32)
        final_losses = loss_history[-1].copy()
        final_losses[self.failed_step >= 0] = np.nan
        return ChunkResult(
            keys=np.asarray(self.keys[: self.count], dtype=np.int64),
            inputs=self.renderer.parameterization.to_inputs(params[: self.count]),
            losses=final_losses,
            loss_history=loss_history,
            failed_step=self.failed_step,
        )
