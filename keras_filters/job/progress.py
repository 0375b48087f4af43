"""A dependency-free progress line: filters done / total, step, current mean loss."""

import sys
import time

import numpy as np


def mean_finite(losses) -> float:
    """Mean of the finite losses, NaN when there are none."""
    losses = np.asarray(losses, dtype=np.float64)
    finite = losses[np.isfinite(losses)]
    return float(finite.mean()) if finite.size else float("nan")


class ProgressBar:
    """Writes progress to a stream; redraws one line on a terminal, else a line per chunk.

    Args:
        total_filters: How many filters the run optimizes.
        total_steps: Steps per filter (over all scales).
        stream: Where to write. Defaults to sys.stderr.
        enabled: Write nothing when False. Defaults to True.
    """

    def __init__(self, total_filters: int, total_steps: int, stream=None, enabled: bool = True):
        self.total_filters = total_filters
        self.total_steps = total_steps
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interactive = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.filters_done = 0
        self.started = time.monotonic()

    def _line(self, step: int, mean_loss: float) -> str:
        elapsed = time.monotonic() - self.started
        return (
            f"filters {self.filters_done}/{self.total_filters} | step {step}/{self.total_steps}"
            f" | mean loss {mean_loss:.4g} | {elapsed:.0f}s"
        )

    def skip(self, count: int) -> None:
        """Counts filters that an earlier, interrupted run finished, without a line."""
        self.filters_done += count

    def step(self, step: int, losses) -> None:
        """Reports a finished step of the current chunk, with the chunk's losses."""
        if self.interactive:
            self.stream.write("\r" + self._line(step, mean_finite(losses)))
            self.stream.flush()

    def chunk_done(self, losses) -> None:
        """Reports a finished chunk, with its final losses."""
        self.filters_done += len(losses)
        mean_loss = mean_finite(losses)
        if not self.enabled:
            return
        prefix = "\r" if self.interactive else ""
        end = "\n" if not self.interactive or self.filters_done >= self.total_filters else ""
        self.stream.write(prefix + self._line(self.total_steps, mean_loss) + end)
        self.stream.flush()
