"""Rival restarts: a filter whose picture excites it less than another filter's picture does
starts again from that picture.

Filters of one layer often share directions: an ascent from noise can settle in a poorer optimum
than the one a related filter's ascent found, and then that filter's picture excites it more
than its own does. After the ascent, each such loser starts again from its strongest rival's
picture (at the last size, with a fresh optimizer state) and takes `rival_steps` more steps for
its own objective: the second half of the run's schedule, compressed into those steps, with
transforms drawn afresh. Every round judges all pictures again, since a restarted picture may
now beat others (the pictures that did not change keep their scores); rounds stop when no filter loses, or after `rival_rounds`.

The pictures are judged as they are (no transforms), each filter's objective on every picture
of the run, in batches of a fixed size: which filters restart depends on the run's filters and
settings, not on its batch size. A picture whose own score is not finite does not restart, a
score that is not finite beats nothing, and a restart that stops being finite is dropped (the
filter keeps its picture).
"""

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from keras import ops

from keras_filters.job import batching
from keras_filters.optvis import objectives as objectives_lib

# Pictures per pass when judging: fixed, so that the judgement does not depend on batch_size.
JUDGE_BATCH = 16


@dataclasses.dataclass
class RivalOutcome:
    """The pictures after the rival restarts, in the order of the run's keys.

    Attributes:
        inputs: float32 (N, H, W, C): each picture in the model's input space.
        losses: float32 (N,): the final objective (a restarted picture's from its last step).
        restarted_from: int64 (N,): the key of the picture that the last restart of this
            filter started from, or -1 for a filter that never restarted.
        beaten_by: int64 (N,): after the last round, the key of a picture that still excites
            this filter more than its own, or -1.
        rounds: The rounds that restarted any filter.
    """

    inputs: np.ndarray
    losses: np.ndarray
    restarted_from: np.ndarray
    beaten_by: np.ndarray
    rounds: int


def objective_matrix(extractor, objective, inputs, targets: Sequence[int]) -> np.ndarray:
    """values[i, j]: the objective with target j on picture i, seen as it is.

    Args:
        extractor: The run's feature extractor (dict outputs).
        objective: The run's batched objective, `objective(activations, targets)`.
        inputs: float32 (N, H, W, C) in the model's input space.
        targets: The targets to score (one column each).

    Returns:
        float64 (N, len(targets)).
    """
    reads_input = objectives_lib.INPUT in objective.layers
    columns = len(targets)
    values = np.empty((len(inputs), columns), np.float64)
    for start in range(0, len(inputs), JUDGE_BATCH):
        images = ops.convert_to_tensor(np.asarray(inputs[start : start + JUDGE_BATCH], np.float32))
        activations = extractor(images)
        if reads_input:
            activations = {**activations, objectives_lib.INPUT: images}
        count = int(images.shape[0])
        for column, target in enumerate(targets):
            column_targets = ops.convert_to_tensor(np.full(count, target, np.int32))
            scores = objective(activations, column_targets)
            values[start : start + count, column] = ops.convert_to_numpy(scores)
    return values


def strongest_rivals(values: np.ndarray) -> np.ndarray:
    """For each picture i, the picture j ≠ i that scores highest on i's objective, where it
    scores strictly above picture i itself; else -1. A picture whose own score is not finite
    does not lose, and a score that is not finite beats nothing.

    Args:
        values: (N, N) from `objective_matrix` with the pictures' own targets, in order.
    """
    values = np.where(np.isfinite(values), values, -np.inf)
    own = np.diag(values).copy()
    others = values.copy()
    np.fill_diagonal(others, -np.inf)
    best = np.argmax(others, axis=0)
    beats = others[best, np.arange(len(own))] > own
    return np.where(beats & np.isfinite(own), best, -1)


def restart_schedule(total_steps: int, rival_steps: int, round_number: int, step_size_at):
    """The restart steps of one round: the step numbers that draw their transforms (after the
    ascent's, distinct per round) and each step's length (the second half of the schedule,
    compressed into `rival_steps`)."""
    first = total_steps + round_number * rival_steps
    half = total_steps // 2
    schedule_steps = [half + (k * (total_steps - half)) // rival_steps for k in range(rival_steps)]
    return list(range(first, first + rival_steps)), [step_size_at(s) for s in schedule_steps]


def restart_rivals(
    renderer,
    keys: Sequence[int],
    targets: Sequence[int],
    inputs: np.ndarray,
    losses: np.ndarray,
    *,
    rounds: int,
    rival_steps: int,
    batch_size: int,
    on_step: Callable[[int, np.ndarray], None] | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> RivalOutcome:
    """Restarts losing filters from their strongest rival's picture, round after round.

    Args:
        renderer: The run's `render.Renderer` (its extractor, objective and step).
        keys: Each picture's key, in order.
        targets: Each picture's target for the objective.
        inputs: The pictures after the ascent, in the model's input space.
        losses: Their final objectives.
        rounds: At most this many rounds.
        rival_steps: Steps per restart.
        batch_size: Pictures per restart chunk.
        on_step: Called after each restart step (see `Renderer.restart_chunk`).
        on_round: Called before each round with its number (from 1) and how many restart.

    Returns:
        A `RivalOutcome`.
    """
    keys = np.asarray(keys, np.int64)
    targets = [int(target) for target in targets]
    inputs = np.array(inputs, np.float32)
    losses = np.array(losses, np.float32)
    restarted_from = np.full(len(keys), -1, np.int64)
    step_size_at = renderer.step_size_at or (lambda step: renderer.step_size)
    rounds_run = 0
    values = objective_matrix(renderer.extractor, renderer.objective, inputs, targets)
    rivals = strongest_rivals(values)
    while rounds_run < rounds and (rivals >= 0).any():
        draw_steps, step_sizes = restart_schedule(
            renderer.total_steps, rival_steps, rounds_run, step_size_at
        )
        losers = np.flatnonzero(rivals >= 0)
        if on_round is not None:
            on_round(rounds_run + 1, len(losers))
        # Every restart of a round starts from the pictures as the round found them, whichever
        # chunk restarted first: the outcome does not depend on the batch size.
        starts = inputs.copy()
        moved = np.zeros(len(keys), bool)
        for chunk in batching.chunk_layout(list(losers), batch_size):
            chunk = np.asarray(chunk)
            result = renderer.restart_chunk(
                keys[chunk],
                [targets[position] for position in chunk],
                starts[rivals[chunk]],
                draw_steps,
                step_sizes=step_sizes,
                on_step=on_step,
            )
            # A restart that stopped being finite leaves its picture as it was.
            kept = result.failed_step < 0
            inputs[chunk[kept]] = result.inputs[kept]
            losses[chunk[kept]] = result.losses[kept]
            restarted_from[chunk[kept]] = keys[rivals[chunk[kept]]]
            moved[chunk[kept]] = True
        rounds_run += 1
        # Only the restarted pictures changed: their rows are judged again, the others kept.
        values[moved] = objective_matrix(
            renderer.extractor, renderer.objective, inputs[moved], targets
        )
        rivals = strongest_rivals(values)
    beaten_by = np.where(rivals >= 0, keys[np.maximum(rivals, 0)], -1)
    return RivalOutcome(inputs, losses, restarted_from, beaten_by, rounds_run)

