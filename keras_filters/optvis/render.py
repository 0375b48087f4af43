"""The render loop: steps and scales over one chunk of images, with one compiled step.

`Renderer` holds what a run needs once (the step, the parameterization, the schedule) and
optimizes one chunk at a time: one image per key, all in one batch.
"""

import dataclasses
from collections.abc import Callable, Sequence

import keras
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
        # TensorFlow's image warp has no XLA kernel: a step that XLA compiles resamples with
        # gathers instead (the same pixels).
        xla = jit_compile or self.placement.needs_xla
        self.transforms = transforms_lib.Compose(
            transforms, gather=xla and keras.backend.backend() == "tensorflow"
        )
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
        count = len(keys)
        # Padding with copies of the last image makes the chunk divide among the replicas.
        padding = self.placement.padded_size(count) - count
        keys = [int(key) for key in keys] + [int(keys[-1])] * padding
        targets = list(targets) + [targets[-1]] * padding
        place = self.placement.put
        target_tensor = place(np.asarray(targets, dtype=np.int32))
        constant_step_size = place(np.float32(self.step_size))

        def step_size_of(step):
            # A constant step length is placed once; a schedule's, at every step.
            if self.step_size_at is None:
                return constant_step_size
            return place(np.float32(self.step_size_at(step)))

        def placed_start(host_params):
            # The update's state (Adam's moments) is made on the host, then placed like the
            # parameters; each scale of a multi-scale schedule starts it afresh.
            state = tuple(place(value) for value in self.update.init_state(host_params))
            return place(host_params), state

        params, state = placed_start(self.initial_params(keys))
        history = []
        failed_step = np.full(count, -1, dtype=np.int64)
        num_draws = self.transforms.num_draws
        no_draws = place(np.zeros((len(keys), 0), np.float32)) if not num_draws else None

        def draws_of(keys, step):
            # Without transforms every step takes the same empty draws: place them once.
            if no_draws is not None:
                return no_draws
            return place(transforms_lib.random_draws(self.seed, keys, step, num_draws))

        for scale_number, _ in enumerate(optimized_sizes(self.sizes)):
            if scale_number > 0:
                params, state = placed_start(
                    self.parameterization.resize(
                        self.placement.fetch(params), self.sizes[scale_number]
                    )
                )
            for _ in range(self.num_steps):
                step = len(history)
                step_function = (
                    self.placed_warmup_step if step < self.warmup_steps else self.placed_step
                )
                params, state, losses, finite = step_function(
                    params, state, target_tensor, step_size_of(step), draws_of(keys, step)
                )
                losses = self.placement.fetch(losses)[:count].astype(np.float32)
                finite = self.placement.fetch(finite)[:count].astype(bool)
                newly_failed = ~finite & (failed_step < 0)
                failed_step[newly_failed] = len(history)
                history.append(losses)
                if on_step is not None:
                    on_step(len(history), losses)
        params = self.placement.fetch(params)[:count]
        keys = keys[:count]
        if len(self.sizes) > 1:
            params = self.parameterization.resize(params, self.sizes[-1])
        loss_history = np.stack(history).astype(np.float32)
        final_losses = loss_history[-1].copy()
        final_losses[failed_step >= 0] = np.nan
        return ChunkResult(
            keys=np.asarray(keys, dtype=np.int64),
            inputs=self.parameterization.to_inputs(params),
            losses=final_losses,
            loss_history=loss_history,
            failed_step=failed_step,
        )
