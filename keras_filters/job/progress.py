"""The progress display: filters done / total, step, current mean loss, time taken.

Keras' own `keras.utils.Progbar` was the first choice, but it cannot do what a run needs: it
writes to stdout (where the command prints its results), and into a file or a pipe it writes
its ANSI colour codes too. This bar writes to stderr; on a terminal or in Jupyter it redraws
one line in place, and into a file or a pipe it writes a plain line at the first step, at least
every 15 seconds after that (between steps), and after every chunk.
"""

import sys
import time

import numpy as np

# Longest wait between two plain lines (stderr a file or a pipe), in seconds.
PLAIN_LINE_INTERVAL = 15.0


def mean_finite(losses) -> float:
    """Mean of the finite losses, NaN when there are none."""
    losses = np.asarray(losses, dtype=np.float64)
    finite = losses[np.isfinite(losses)]
    return float(finite.mean()) if finite.size else float("nan")


def is_interactive(stream) -> bool:
    """Whether `stream` shows a redrawn line: a terminal, or a Jupyter kernel's output."""
    return bool(getattr(stream, "isatty", lambda: False)()) or "ipykernel" in sys.modules


class ProgressBar:
    """Writes progress to a stream.

    Args:
        total_filters: How many filters the run optimizes.
        total_steps: Steps per filter (over all scales).
        stream: Where to write. Defaults to sys.stderr.
        enabled: Write nothing when False. Defaults to True.
        clock: The time source, in seconds. Defaults to time.monotonic.
    """

    def __init__(
        self, total_filters: int, total_steps: int, stream=None, enabled: bool = True, clock=None
    ):
        self.total_filters = total_filters
        self.total_steps = total_steps
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interactive = enabled and is_interactive(self.stream)
        self.clock = clock or time.monotonic
        self.filters_done = 0
        self.started = self.clock()
        self.last_line = None

    def _line(self, step: int, mean_loss: float) -> str:
        elapsed = self.clock() - self.started
        return (
            f"filters {self.filters_done}/{self.total_filters} | step {step}/{self.total_steps}"
            f" | mean loss {mean_loss:.4g} | {elapsed:.0f}s"
        )

    def _write_plain(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self.last_line = self.clock()

    def note(self, text: str) -> None:
        """Writes one line of its own (after the bar's last line)."""
        if self.enabled:
            self._write_plain(text)

    def skip(self, count: int) -> None:
        """Counts filters that an earlier, interrupted run finished, without a line."""
        self.filters_done += count

    def step(self, step: int, losses) -> None:
        """Reports a finished step of the current chunk, with the chunk's losses."""
        if not self.enabled:
            return
        if self.interactive:
            self.stream.write("\r" + self._line(step, mean_finite(losses)))
            self.stream.flush()
        elif self.last_line is None or self.clock() - self.last_line >= PLAIN_LINE_INTERVAL:
            self._write_plain(self._line(step, mean_finite(losses)))

    def chunk_done(self, losses) -> None:
        """Reports a finished chunk, with its final losses."""
        self.filters_done += len(losses)
        if not self.enabled:
            return
        line = self._line(self.total_steps, mean_finite(losses))
        if self.interactive:
            end = "\n" if self.filters_done >= self.total_filters else ""
            self.stream.write("\r" + line + end)
            self.stream.flush()
        else:
            self._write_plain(line)
