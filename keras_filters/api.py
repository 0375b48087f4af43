"""The notebook API: optimize images for some filters of a layer and get them back as arrays."""

import dataclasses
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from keras_filters import (
    ascent,
    chunking,
    deprocess,
    errors,
    layers,
    logits,
    models,
    noise,
    precision,
    scales,
    steps,
    validation,
)
from keras_filters import settings as settings_lib
from keras_filters.progress import ProgressBar


@dataclasses.dataclass
class VisualizationResult:
    """The filters' images and how far each got.

    Attributes:
        images: uint8 array (N, H, W, C): the deprocessed tiles (black for failed filters).
        inputs: float32 array (N, H, W, C): the optimized images in the model's own input
            space, before deprocessing, ready to feed back to the model.
        losses: float32 array (N,): the final objective of each filter (NaN if failed).
        filter_indices: int array (N,).
        loss_history: float32 array (steps, N): the objective at every step.
        dead: bool array (N,): the filter never responded (see `dead_threshold`).
        failed_step: int array (N,): the step at which the loss or gradient became NaN or
            infinite, or -1.
        layer_name: The layer's path in the model.
    """

    images: np.ndarray
    inputs: np.ndarray
    losses: np.ndarray
    filter_indices: np.ndarray
    loss_history: np.ndarray
    dead: np.ndarray
    failed_step: np.ndarray
    layer_name: str

    @property
    def failed(self) -> np.ndarray:
        """bool array (N,): the filter's loss or gradient stopped being finite."""
        return self.failed_step >= 0


class Visualizer:
    """Optimizes chunks of filters of one layer with one compiled step.

    Args:
        model: The full model.
        layer: The layer's path or unique name.
        image_size: Side of the final image in pixels.
        num_steps: Steps per scale.
        step_size: Step length.
        border: Activation border left out of the objective.
        gradient_normalization: "rms", "l2", "pixel_l2" or "none".
        gradient_epsilon: Added to each gradient norm.
        num_upscalings: Upscalings of the multi-scale schedule (0 for one scale).
        upscale_factor: Factor between scales.
        init_distribution: "uniform" or "normal".
        init_low: Lower end of the initial noise.
        init_high: Upper end of the initial noise.
        seed: Seed of the noise.
        deprocess_scale: Contrast factor, also used between scales.
        deprocess_epsilon: Std epsilon, also used between scales.
        jit_compile: Compile the step with XLA.
        mixed_precision: Compute the model in bfloat16 (a "mixed_bfloat16" copy of the
            sub-model); the image and the objective stay float32. Defaults to False.
        parameterization: Maps parameters to images inside the tape. Defaults to identity.
        transforms: Differentiable transforms applied inside the tape. Defaults to none.
    """

    def __init__(
        self,
        model,
        *,
        layer: str,
        image_size: int,
        num_steps: int,
        step_size: float,
        border: int,
        gradient_normalization: str,
        gradient_epsilon: float,
        num_upscalings: int,
        upscale_factor: float,
        init_distribution: str,
        init_low: float,
        init_high: float,
        seed: int,
        deprocess_scale: float,
        deprocess_epsilon: float,
        jit_compile: bool,
        mixed_precision: bool = False,
        parameterization: Callable = steps.identity,
        transforms: Sequence[Callable] = (),
    ):
        self.layer_info = layers.find_layer(model, layer)
        self.feature_extractor = layers.build_feature_extractor(model, layer)
        if mixed_precision:
            self.feature_extractor = precision.mixed_precision_copy(self.feature_extractor)
        input_shape = tuple(self.feature_extractor.input_shape)
        self.channels = int(input_shape[-1])
        self.sizes = scales.scale_sizes(image_size, num_upscalings, upscale_factor)
        fixed = [size for size in input_shape[1:3] if size is not None]
        if fixed and (num_upscalings or any(size != image_size for size in fixed)):
            raise errors.UsageError(
                f"image_size={image_size} (with num_upscalings={num_upscalings}) does not fit "
                f"model {model.name!r}, whose input size is fixed at {input_shape[1]}x"
                f"{input_shape[2]}; use --config.image_size={fixed[0]} --config.num_upscalings=0"
            )
        validation.check_image_size(
            self.feature_extractor, sizes=self.sizes, border=border, layer_name=self.layer_info.name
        )
        self.num_steps = num_steps
        self.step_size = step_size
        self.noise_settings = dict(
            seed=seed, distribution=init_distribution, low=init_low, high=init_high
        )
        self.upscale_settings = dict(
            upscale_scale=deprocess_scale, upscale_epsilon=deprocess_epsilon
        )
        self.step = steps.make_ascent_step(
            self.feature_extractor,
            channels=self.channels,
            border=border,
            gradient_normalization=gradient_normalization,
            gradient_epsilon=gradient_epsilon,
            parameterization=parameterization,
            transforms=transforms,
            jit_compile=jit_compile,
        )

    @property
    def num_filters(self) -> int:
        """How many filters the layer has."""
        return self.layer_info.num_filters

    @property
    def total_steps(self) -> int:
        """Steps per filter over all scales."""
        return self.num_steps * max(1, len(self.sizes) - 1)

    def initial_images(self, filter_indices: Sequence[int]) -> np.ndarray:
        """Each filter's seeded starting noise at the first scale."""
        size = self.sizes[0]
        return noise.initial_images(
            filter_indices, height=size, width=size, channels=self.channels, **self.noise_settings
        )

    def run_chunk(self, filter_indices: Sequence[int], on_step=None) -> ascent.ChunkResult:
        """Optimizes one image per filter, all in one batch."""
        return ascent.ascend(
            self.step,
            self.initial_images(filter_indices),
            filter_indices,
            num_steps=self.num_steps,
            step_size=self.step_size,
            sizes=self.sizes,
            on_step=on_step,
            **self.upscale_settings,
        )

    def iterate_chunks(
        self, filter_indices: Sequence[int], batch_size: int, progress: ProgressBar | None = None
    ) -> Iterator[ascent.ChunkResult]:
        """Optimizes `filter_indices` in chunks of `batch_size`, yielding each finished chunk."""
        for chunk_filters in chunk_layout(filter_indices, batch_size):
            chunk = self.run_chunk(chunk_filters, on_step=progress.step if progress else None)
            if progress:
                progress.chunk_done(chunk.losses)
            yield chunk


def chunk_layout(filter_indices: Sequence[int], batch_size: int) -> list[list[int]]:
    """Splits the filters into the chunks that run as one batch each, in order.

    A resumed run reuses the layout of the run it continues, so that every filter is computed
    in the same batch as before and the results are the same bit for bit.
    """
    filter_indices = [int(index) for index in filter_indices]
    return [
        filter_indices[start : start + batch_size]
        for start in range(0, len(filter_indices), batch_size)
    ]


def choose_filter_indices(filter_indices, max_filters: int, num_filters: int) -> list[int]:
    """The filters to optimize: the explicit list, or the first `max_filters` (0: all).

    Raises:
        UsageError: For an empty list or an index outside [0, num_filters).
    """
    if filter_indices is None or len(filter_indices) == 0:
        count = num_filters if max_filters <= 0 else min(max_filters, num_filters)
        return list(range(count))
    chosen = [int(index) for index in filter_indices]
    bad = [index for index in chosen if not 0 <= index < num_filters]
    if bad:
        raise errors.UsageError(
            f"filter index {bad[0]} is out of range; the layer has {num_filters} filters: "
            f"choose from 0 to {num_filters - 1}"
        )
    return chosen


def dead_filters(loss_history: np.ndarray, threshold: float, at_any_step: bool) -> np.ndarray:
    """bool (N,): final loss ≤ threshold, or, with `at_any_step`, loss ≤ threshold at any step."""
    with np.errstate(invalid="ignore"):
        below = loss_history <= threshold
    return below.any(axis=0) if at_any_step else below[-1]


def deprocess_tiles(inputs: np.ndarray, failed: np.ndarray, **deprocess_settings) -> np.ndarray:
    """Deprocesses each optimized image; a failed filter's tile stays black."""
    tiles = []
    for image, is_failed in zip(inputs, failed, strict=True):
        tile = deprocess.deprocess_image(image, **deprocess_settings)
        tiles.append(np.zeros_like(tile) if is_failed else tile)
    return np.stack(tiles)


def build_visualizer(model, settings: dict) -> Visualizer:
    """Builds a `Visualizer` from a loaded model and resolved settings."""
    return Visualizer(
        model,
        layer=settings["layer"],
        image_size=settings["image_size"],
        num_steps=settings["num_steps"],
        step_size=settings["step_size"],
        border=settings["border"],
        gradient_normalization=settings["gradient_normalization"],
        gradient_epsilon=settings["gradient_epsilon"],
        num_upscalings=settings["num_upscalings"],
        upscale_factor=settings["upscale_factor"],
        init_distribution=settings["init_distribution"],
        init_low=settings["init_low"],
        init_high=settings["init_high"],
        seed=settings["seed"],
        deprocess_scale=settings["deprocess_scale"],
        deprocess_epsilon=settings["deprocess_epsilon"],
        jit_compile=settings["jit_compile"],
        mixed_precision=settings["mixed_precision"],
    )


def load_model_from_settings(model, settings: dict):
    """Loads `model` (a keras.Model, name or path) with the settings' loading options.

    With `linear_output`, the result is a copy whose final activation is linear (logits).
    """
    loaded = models.load_model(
        model,
        weights=settings["weights"],
        include_top=settings["include_top"],
        image_size=settings["image_size"],
        unsafe_deserialization=settings["unsafe_deserialization"],
        seed=settings["seed"],
    )
    return logits.linear_output_model(loaded) if settings["linear_output"] else loaded


def collect(chunks, layer_name: str, settings: dict) -> VisualizationResult:
    """Concatenates chunk results, deprocesses the tiles and marks dead and failed filters."""
    chunks = list(chunks)
    inputs = np.concatenate([chunk.inputs for chunk in chunks])
    failed_step = np.concatenate([chunk.failed_step for chunk in chunks])
    loss_history = np.concatenate([chunk.loss_history for chunk in chunks], axis=1)
    images = deprocess_tiles(
        inputs,
        failed_step >= 0,
        style=settings["deprocess"],
        scale=settings["deprocess_scale"],
        epsilon=settings["deprocess_epsilon"],
        crop=settings["crop"],
    )
    return VisualizationResult(
        images=images,
        inputs=inputs,
        losses=np.concatenate([chunk.losses for chunk in chunks]),
        filter_indices=np.concatenate([chunk.filter_indices for chunk in chunks]),
        loss_history=loss_history,
        dead=dead_filters(loss_history, settings["dead_threshold"], settings["dead_at_any_step"]),
        failed_step=failed_step,
        layer_name=layer_name,
    )


@dataclasses.dataclass
class Plan:
    """A loaded model, its visualizer for the layer, and the filters and batch size to run."""

    model: object
    visualizer: Visualizer
    filter_indices: list
    batch_size: int

    def progress_bar(self, enabled: bool) -> ProgressBar:
        """A progress bar sized for this plan."""
        return ProgressBar(len(self.filter_indices), self.visualizer.total_steps, enabled=enabled)


def plan(model, settings: dict) -> Plan:
    """Loads the model, builds the visualizer and picks the filters and the batch size.

    Args:
        model: A `keras.Model`, "demo", a Keras Applications name, or a saved model file.
        settings: Resolved settings (every key of configs/base.py).

    Returns:
        A `Plan`.

    Raises:
        UsageError: For settings, a model, layer, filter or image size that cannot be used.
    """
    validation.check_settings(settings)
    model = load_model_from_settings(model, settings)
    visualizer = build_visualizer(model, settings)
    indices = choose_filter_indices(
        settings["filter_indices"], settings["max_filters"], visualizer.num_filters
    )
    batch_size = settings["batch_size"] or chunking.auto_batch_size(
        visualizer.feature_extractor, visualizer.sizes[-1], len(indices)
    )
    return Plan(model, visualizer, indices, batch_size)


def run_plan(run: Plan, settings: dict) -> VisualizationResult:
    """Optimizes all the plan's filters, chunk by chunk, and collects the results."""
    chunks = run.visualizer.iterate_chunks(
        run.filter_indices, run.batch_size, run.progress_bar(settings["progress"])
    )
    return collect(chunks, run.visualizer.layer_info.name, settings)


def visualize_filters(
    model, layer_name: str, filter_indices=None, **settings
) -> VisualizationResult:
    """Optimizes one image per filter so that the filter's mean activation grows.

    Args:
        model: A `keras.Model`, "demo", a Keras Applications name, or a saved model file.
        layer_name: The layer's name, or "outer/inner" for a layer of a nested model.
        filter_indices: The filters; None takes `settings["filter_indices"]` or, when that is
            empty, the first `max_filters`.
        **settings: Any key of configs/base.py (`image_size`, `num_steps`, `step_size`,
            `seed`, `batch_size`, `gradient_normalization`, …); the rest keep their defaults.

    Returns:
        A `VisualizationResult`.

    Raises:
        TypeError: For a setting that configs/base.py does not declare.
        UsageError: For a model, layer or filter that cannot be used.
    """
    if filter_indices is not None:
        filter_indices = tuple(int(index) for index in filter_indices)
        if not filter_indices:
            raise errors.UsageError(
                "filter_indices is an empty list; give at least one filter index, or None to "
                "try the first max_filters"
            )
        settings["filter_indices"] = filter_indices
    settings = settings_lib.resolve_settings({**settings, "layer": layer_name})
    return run_plan(plan(model, settings), settings)
