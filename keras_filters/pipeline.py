"""From typed settings and a model to optimized images: the steps that the API and the job share.

`plan_layer` (the filters of one layer) and `plan_objectives` (any list of objectives) load
nothing twice and check everything that needs the model before the first step; `run_plan`
optimizes a plan chunk by chunk, then restarts the rivals' losers (`restart_rivals`); `collect`
turns chunk results into a `VisualizationResult`.
"""

import dataclasses
from collections.abc import Iterator, Sequence
from functools import partial

import numpy as np

from keras_filters import distribution, errors
from keras_filters.image import deprocess
from keras_filters.job import batching
from keras_filters.job.progress import ProgressBar
from keras_filters.model import checks, extractor, input_range, loading, variants
from keras_filters.optvis import objectives as objectives_lib
from keras_filters.optvis import param, render, rivals, transforms, update
from keras_filters.settings import Settings


@dataclasses.dataclass
class VisualizationResult:
    """The optimized images and how far each got.

    Attributes:
        images: uint8 array (N, H, W, C): the deprocessed tiles (black for failed images).
        inputs: float32 array (N, H, W, C): the optimized images in the model's own input
            space, before deprocessing, ready to feed back to the model.
        losses: float32 array (N,): the final objective of each image (NaN if failed).
        filter_indices: int array (N,): each image's filter index (for `optimize`, its key:
            the objective's position in the list unless keys were given).
        loss_history: float32 array (steps, N): the objective at every step.
        dead: bool array (N,): the objective never rose above `dead_threshold`.
        failed_step: int array (N,): the step at which the loss or gradient became NaN or
            infinite, or -1.
        layer_name: The layer's path in the model (layers joined by ", " for objectives that
            read several).
        needed_warmup: bool array (N,): with `relu_warmup_steps`, the images whose objective
            was at or below `dead_threshold` at the start (noise did not excite the filter),
            which only the warm-up's redirected gradient could move; all False without it.
        restarted_from: int array (N,): with `rival_rounds`, the key (filter index) of the
            picture from which the image last restarted (`optvis.rivals`), or -1; all -1
            without it. A restarted image's loss and dead flag are its restart's; its
            `loss_history` stays that of its ascent.
        beaten_by: int array (N,): with `rival_rounds`, the key of a picture that still
            excites the image's filter more than its own after the last round, or -1.
    """

    images: np.ndarray
    inputs: np.ndarray
    losses: np.ndarray
    filter_indices: np.ndarray
    loss_history: np.ndarray
    dead: np.ndarray
    failed_step: np.ndarray
    layer_name: str
    needed_warmup: np.ndarray | None = None
    restarted_from: np.ndarray | None = None
    beaten_by: np.ndarray | None = None

    def __post_init__(self):
        if self.needed_warmup is None:
            self.needed_warmup = np.zeros(len(self.losses), dtype=bool)
        if self.restarted_from is None:
            self.restarted_from = np.full(len(self.losses), -1, dtype=np.int64)
        if self.beaten_by is None:
            self.beaten_by = np.full(len(self.losses), -1, dtype=np.int64)

    @property
    def failed(self) -> np.ndarray:
        """bool array (N,): the image's loss or gradient stopped being finite."""
        return self.failed_step >= 0

    @property
    def alive(self) -> np.ndarray:
        """bool array (N,): neither dead nor failed."""
        return ~(self.dead | self.failed)

    def summary(self) -> str:
        """One line: "64 filters of conv3: 42 alive, 22 dead, 0 failed"."""
        failed = int(self.failed.sum())
        dead = int((self.dead & ~self.failed).sum())
        return (
            f"{len(self.losses)} filters of {self.layer_name}: {int(self.alive.sum())} alive, "
            f"{dead} dead, {failed} failed"
        )


@dataclasses.dataclass
class Plan:
    """A loaded model, the renderer of its objectives, and the images to run in which chunks.

    Attributes:
        model: The loaded model.
        renderer: The `render.Renderer` with the run's one compiled step.
        keys: Each image's key (a filter index, or an objective's position).
        targets: {key: target} for the batched objective.
        batch_size: Images per chunk.
        layer_name: The layers the objectives read, for records and messages.
        num_filters: Filters of the layer, for a layer plan; else None.
        input_range: The model's `InputRange` where the parameterization needs one.
    """

    model: object
    renderer: render.Renderer
    keys: list
    targets: dict
    batch_size: int
    layer_name: str
    num_filters: int | None = None
    input_range: object = None

    def progress_bar(self, enabled: bool) -> ProgressBar:
        """A progress bar sized for this plan."""
        return ProgressBar(len(self.keys), self.renderer.total_steps, enabled=enabled)

    def layout(self) -> list[list[int]]:
        """The keys of each chunk, in order."""
        return batching.chunk_layout(self.keys, self.batch_size)

    def run_chunk(self, keys: Sequence[int], on_step=None) -> render.ChunkResult:
        """Optimizes one chunk of keys."""
        targets = [self.targets[int(key)] for key in keys]
        return self.renderer.run_chunk(keys, targets, on_step=on_step)

    def iterate_chunks(self, progress: ProgressBar | None = None) -> Iterator[render.ChunkResult]:
        """Optimizes every chunk in order, yielding each as it finishes."""
        for chunk_keys in self.layout():
            chunk = self.run_chunk(chunk_keys, on_step=progress.step if progress else None)
            if progress:
                progress.chunk_done(chunk.losses)
            yield chunk


def make_placement(settings: Settings):
    """Where the run's images run: one device, or the settings' distribution strategy."""
    return distribution.make_placement(settings.strategy, settings.devices, settings.tpu_address)


def load_model(model, settings: Settings, placement=None, *, linear_copy: bool = False):
    """Loads `model` (a keras.Model, name or path) with the settings' loading options.

    With a `placement`, the variables are made in its scope (mirrored over its devices).

    Args:
        model: A `keras.Model`, "demo", a Keras Applications name, or a saved model file.
        settings: The run's settings.
        placement: Where the images run. Defaults to one device.
        linear_copy: With the `linear_output` setting, give a copy of the model whose final
            activation is linear, so that any objective on the last layer reads its logits
            (for `optimize`). Defaults to False: a layer plan reads the logits through
            `objectives.class_logit` (see `plan_layer`) and needs no copy.
    """
    placement = placement or distribution.Placement()
    with placement.scope():
        loaded = loading.load_model(
            model,
            weights=settings.weights,
            include_top=settings.include_top,
            image_size=settings.image_size,
            unsafe_deserialization=settings.unsafe_deserialization,
            seed=settings.seed,
        )
        if linear_copy and settings.linear_output:
            loaded = variants.linear_output_model(loaded)
    if isinstance(placement, distribution.JaxPlacement):
        placement.replicate_variables(loaded)
    return loaded


def fit_input_size(model, settings: Settings, image_size_given: bool):
    """The settings with the model's own input size, where the model fixes one and the user did
    not set `image_size`; a size the user set stays (and fails the check if it does not fit).

    Returns:
        (settings, note): `note` says what was chosen, or is None when nothing changed.
    """
    height, width = tuple(model.inputs[0].shape)[1:3] if model.inputs else (None, None)
    if image_size_given or height is None or height != width or height == settings.image_size:
        return settings, None
    note = (
        f"image_size={height}: the input size that model {model.name!r} fixes "
        f"(the recipe's {settings.image_size} px would not fit)"
    )
    return settings.replace(image_size=int(height)), note


def plan_objectives(
    model,
    objectives: Sequence,
    keys: Sequence[int],
    settings: Settings,
    *,
    num_filters=None,
    placement=None,
) -> Plan:
    """Builds the renderer for `objectives` (one image each) and picks the batch size.

    The settings' regularizer weights make the renderer's penalty (`objectives.penalty`): the
    ascent subtracts it, the reported losses leave it out.
    An objective that couples the images of its batch (`diversity`) needs all its images in
    one chunk: with it, the run is refused when the batch size is below the number of images,
    with `num_shards` > 1, or on several devices (`check_one_batch`).

    Args:
        model: A loaded `keras.Model`.
        objectives: One `Objective` per image.
        keys: One key per image: seeds its noise (and transforms); unique.
        settings: The run's settings.
        num_filters: For a layer plan, the layer's filter count (kept in the plan).
        placement: Where the images run. Defaults to one device.

    Raises:
        UsageError: For a layer or image size that the model cannot take, an index, position
            or border that an objective's layer does not have, or a coupling objective whose
            images would be split.
    """
    if not objectives:
        raise errors.UsageError("no objectives to optimize; give at least one")
    if len(set(int(key) for key in keys)) != len(keys) or len(keys) != len(objectives):
        raise errors.UsageError(
            f"keys must give each of the {len(objectives)} objectives its own key; got {keys!r}"
        )
    placement = placement or distribution.Placement()
    objective, targets = objectives_lib.batch_plan(objectives)
    penalty = objectives_lib.penalty(
        total_variation=settings.total_variation_weight,
        l2=settings.l2_weight,
        blur=settings.blur_weight,
    )
    with placement.scope():  # LOGITS may add a linear copy of the last layer, with weights.
        features = extractor.build_feature_extractor(model, objective.layers)
    if settings.mixed_precision:
        with placement.scope():
            features = variants.mixed_precision_copy(features)
    warmup_features = None
    if settings.relu_warmup_steps:
        with placement.scope():
            warmup_features, _ = variants.relu_warmup_copy(features)
        if isinstance(placement, distribution.JaxPlacement):
            placement.replicate_variables(warmup_features)  # Its own copies of the weights.
    model_range = make_input_range(model, settings)
    sizes = render.scale_sizes(
        settings.image_size, settings.num_upscalings, settings.upscale_factor
    )
    checks.check_input_size(
        features,
        sizes=sizes,
        border=settings.border,
        layer_names=[layer for layer in objective.layers if layer != objectives_lib.INPUT],
        model_name=model.name,
    )
    checks.check_objectives(features, objectives, size=min(sizes))
    renderer = render.Renderer(
        features,
        objective,
        make_parameterization(settings, model_range),
        make_update(settings),
        transforms=make_transforms(settings),
        seed=settings.seed,
        sizes=sizes,
        num_steps=settings.num_steps,
        step_size=settings.step_size,
        channels=int(features.input_shape[-1]),
        jit_compile=settings.jit_compile,
        placement=placement,
        step_size_at=make_schedule(settings, len(render.optimized_sizes(sizes))),
        warmup_extractor=warmup_features,
        warmup_steps=settings.relu_warmup_steps,
        penalty=penalty,
    )
    keys = [int(key) for key in keys]
    batch_size = settings.batch_size or batching.auto_batch_size(
        features,
        sizes[-1],
        len(keys),
        replicas=placement.num_replicas,
        read_memory=settings.strategy != "multi_worker",
    )
    if objective.couples_batch:
        check_one_batch(len(keys), batch_size, settings.num_shards, placement.num_replicas)
        if settings.rival_rounds:
            raise errors.UsageError(
                f"rival_rounds={settings.rival_rounds} restarts single images, but the "
                "objective couples the images of a batch (diversity): set rival_rounds=0"
            )
    return Plan(
        model=model,
        renderer=renderer,
        keys=keys,
        targets=dict(zip(keys, (int(target) for target in targets), strict=True)),
        batch_size=batch_size,
        layer_name=", ".join(layer for layer in objective.layers if layer != objectives_lib.INPUT),
        num_filters=num_filters,
        input_range=model_range,
    )


def make_input_range(model, settings: Settings):
    """The model's input range where the run needs one (the Fourier image, the picture
    deprocess), else None: the faithful recipes' pixels are already in the model's space.

    Raises:
        UsageError: When the model does not say its range and `input_range` is not set.
    """
    if settings.parameterization == "pixel" and settings.deprocess != "picture":
        return None
    return input_range.resolve(model, settings)


def make_parameterization(settings: Settings, model_range):
    """The settings' image parameterization (`param.Pixel` or `param.Fourier`)."""
    if settings.parameterization == "fourier":
        return param.Fourier(
            model_range,
            decay=settings.fourier_decay,
            gain=settings.fourier_gain,
            init_std=settings.fourier_init_std,
            decorrelate=settings.decorrelate_colour,
            canvas_factor=settings.canvas_factor,
            downsample_cutoff=settings.downsample_cutoff,
        )
    return param.Pixel(
        settings.init_distribution,
        settings.init_low,
        settings.init_high,
        upscale_scale=settings.deprocess_scale,
        upscale_epsilon=settings.deprocess_epsilon,
    )


def make_update(settings: Settings):
    """The settings' update: the normalized-gradient step, or Adam."""
    return update.make_update(
        settings.optimizer, settings.gradient_normalization, settings.gradient_epsilon
    )


def make_transforms(settings: Settings) -> list:
    """The settings' transforms, in order (none in the published recipes)."""
    return list(transforms.from_specs(settings.transforms))


def make_schedule(settings: Settings, num_scales: int):
    """The step length of each step, or None for a constant one."""
    schedule = settings.schedule
    if schedule == "constant":
        return None
    total = settings.num_steps * num_scales

    def step_size_at(step: int) -> float:
        return update.step_size_at(
            step, total, settings.step_size, schedule, settings.final_step_fraction
        )

    return step_size_at


def check_one_batch(num_images: int, batch_size: int, num_shards: int, num_replicas: int):
    """Refuses to split the images of an objective that couples its batch (`diversity`).

    Such an objective compares each image with the others of its batch, so the run must
    optimize all its images in one chunk, in one job, on one device (several devices would
    each see their share, padded with copies).

    Raises:
        UsageError: When the images would be split over chunks, shards or devices.
    """
    if num_images > batch_size:
        raise errors.UsageError(
            f"the objective couples the images of a batch (diversity), but batch_size="
            f"{batch_size} splits its {num_images} images over "
            f"{-(-num_images // batch_size)} chunks; set batch_size={num_images} or more"
        )
    if num_shards > 1:
        raise errors.UsageError(
            f"the objective couples the images of a batch (diversity); num_shards={num_shards} "
            f"would split its {num_images} images over jobs; set num_shards=1"
        )
    if num_replicas > 1:
        raise errors.UsageError(
            f"the objective couples the images of a batch (diversity); {num_replicas} devices "
            f"would each see a share of its {num_images} images; use one device "
            '(strategy="default")'
        )


def choose_filter_indices(settings: Settings, num_filters: int) -> list[int]:
    """The filters to optimize: the explicit list, or the first `max_filters` (0: all).

    Raises:
        UsageError: For an index outside [0, num_filters).
    """
    if settings.filter_indices:
        checks.check_filter_indices(settings.filter_indices, num_filters)
        return list(settings.filter_indices)
    count = num_filters if settings.max_filters <= 0 else min(settings.max_filters, num_filters)
    return list(range(count))


def plan_layer(model, settings: Settings, placement=None) -> Plan:
    """The plan for the filters of `settings.layer`: one channel objective per filter.

    With `linear_output`, the units of the model's last layer are its classes: each image's
    objective is `objectives.class_logit` (the layer before its activation), not the channel.
    With `num_shards` > 1, the plan holds this shard's share: whole chunks of the unsharded
    run's layout, so that every filter runs in the same batch as it would unsharded.

    Raises:
        UsageError: For a layer, filter or image size that the model cannot take, or, with
            `linear_output`, a last layer without an activation to leave out.
    """
    info = extractor.find_layer(model, settings.layer)
    filter_indices = choose_filter_indices(settings, info.num_filters)
    if settings.linear_output and info.name == model.layers[-1].name:
        layer_objectives = [objectives_lib.class_logit(index) for index in filter_indices]
    else:
        layer_objectives = [
            objectives_lib.channel(info.name, index, settings.border) for index in filter_indices
        ]
    plan = plan_objectives(
        model,
        layer_objectives,
        filter_indices,
        settings,
        num_filters=info.num_filters,
        placement=placement,
    )
    plan.layer_name = info.name
    if settings.num_shards > 1:
        plan.keys = batching.shard_keys(
            plan.keys, plan.batch_size, settings.num_shards, settings.shard_index
        )
    return plan


def dead_images(loss_history: np.ndarray, threshold: float, at_any_step: bool) -> np.ndarray:
    """bool (N,): final loss ≤ threshold, or, with `at_any_step`, loss ≤ threshold at any step."""
    with np.errstate(invalid="ignore"):
        below = loss_history <= threshold
    return below.any(axis=0) if at_any_step else below[-1]


def deprocess_tiles(
    inputs: np.ndarray, failed: np.ndarray, settings: Settings, model_range=None
) -> np.ndarray:
    """Deprocesses each optimized image; a failed image's tile stays black.

    The "picture" style shows each image as the model's input range maps it (`model_range`);
    the others normalize its contrast. No images (a shard whose share of the layer is empty)
    give no tiles, of the size the tiles would have.
    """
    if not len(inputs):
        height, width, channels = inputs.shape[1:]
        crop = settings.crop
        return np.zeros((0, height - 2 * crop, width - 2 * crop, channels), np.uint8)
    tiles = []
    for image, is_failed in zip(inputs, failed, strict=True):
        if settings.deprocess == "picture":
            tile = deprocess.picture_tile(model_range.to_unit(image), crop=settings.crop)
        else:
            tile = deprocess.deprocess_image(
                image,
                style=settings.deprocess,
                scale=settings.deprocess_scale,
                epsilon=settings.deprocess_epsilon,
                crop=settings.crop,
            )
        tiles.append(np.zeros_like(tile) if is_failed else tile)
    return np.stack(tiles)


def restart_rivals(plan: Plan, settings: Settings, chunks, on_step=None, progress=None):
    """With `rival_rounds`, restarts each filter whose picture another filter's picture
    beats (`optvis.rivals`) over the finished chunks of the whole plan; else None. Each round
    says how many restart on `progress` (a `ProgressBar`)."""
    if not settings.rival_rounds:
        return None
    keys = np.concatenate([chunk.keys for chunk in chunks])
    return rivals.restart_rivals(
        plan.renderer,
        keys,
        [plan.targets[int(key)] for key in keys],
        np.concatenate([chunk.inputs for chunk in chunks]),
        np.concatenate([chunk.losses for chunk in chunks]),
        rounds=settings.rival_rounds,
        rival_steps=restart_length(settings),
        batch_size=plan.batch_size,
        on_step=on_step,
        on_round=None if progress is None else partial(_note_round, progress),
    )


def restart_length(settings: Settings) -> int:
    """The steps of one rival restart: `rival_steps`, but never more than the ascent takes
    (a 4-step trial run restarts in 4)."""
    sizes = render.scale_sizes(
        settings.image_size, settings.num_upscalings, settings.upscale_factor
    )
    return min(settings.rival_steps, settings.num_steps * len(render.optimized_sizes(sizes)))


def _note_round(progress: ProgressBar, round_number: int, count: int) -> None:
    filters = "1 filter" if count == 1 else f"{count} filters"
    progress.note(
        f"rival restarts, round {round_number}: restarting {filters} from another filter's "
        "picture, which excites them more than their own"
    )


def collect(
    chunks, layer_name: str, settings: Settings, model_range=None, restarts=None
) -> VisualizationResult:
    """Concatenates chunk results, deprocesses the tiles and marks dead and failed images.

    `model_range` is the plan's input range, which the "picture" deprocess needs. `restarts`
    (a `rivals.RivalOutcome`) replaces the restarted images, their losses and dead flags.
    """
    chunks = list(chunks)
    inputs = np.concatenate([chunk.inputs for chunk in chunks])
    losses = np.concatenate([chunk.losses for chunk in chunks])
    failed_step = np.concatenate([chunk.failed_step for chunk in chunks])
    loss_history = np.concatenate([chunk.loss_history for chunk in chunks], axis=1)
    dead = dead_images(loss_history, settings.dead_threshold, settings.dead_at_any_step)
    with np.errstate(invalid="ignore"):
        at_start = loss_history[0] <= settings.dead_threshold
    restarted_from = beaten_by = None
    if restarts is not None:
        restarted_from, beaten_by = restarts.restarted_from, restarts.beaten_by
        moved = restarted_from >= 0
        inputs, losses = restarts.inputs, restarts.losses
        with np.errstate(invalid="ignore"):
            dead = np.where(moved, losses <= settings.dead_threshold, dead)
    return VisualizationResult(
        images=deprocess_tiles(inputs, failed_step >= 0, settings, model_range),
        inputs=inputs,
        losses=losses,
        filter_indices=np.concatenate([chunk.keys for chunk in chunks]),
        loss_history=loss_history,
        dead=dead,
        failed_step=failed_step,
        layer_name=layer_name,
        needed_warmup=at_start if settings.relu_warmup_steps else None,
        restarted_from=restarted_from,
        beaten_by=beaten_by,
    )


def run_plan(plan: Plan, settings: Settings) -> VisualizationResult:
    """Optimizes all the plan's images, chunk by chunk, restarts the rivals' losers and
    collects the results."""
    progress = plan.progress_bar(settings.progress)
    chunks = list(plan.iterate_chunks(progress))
    restarts = restart_rivals(plan, settings, chunks, progress=progress)
    return collect(chunks, plan.layer_name, settings, plan.input_range, restarts)
