"""Ends a run cleanly on Ctrl-C (SIGINT) or SIGTERM instead of killing it mid-write.

While `StopSignals` is active, the first signal only sets a flag: the chunk in progress is
abandoned at its next step, the finished chunks are kept, and the caller writes what is done.
A second signal raises KeyboardInterrupt at once, for a run that must stop now.
"""

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signal_number: int) -> str:
    """'SIGINT' for 2, and so on."""
    return signal.Signals(signal_number).name


class StopRequested(Exception):
    """Raised inside a chunk after a stop signal, to abandon the chunk."""


class RunInterrupted(Exception):
    """The run stopped early on a signal; the finished filters were saved and written.

    Attributes:
        signal_number: The signal that stopped the run.
        filters_done: Filters finished (in this run and the runs it resumed).
        filters_total: Filters the run was to optimize.
    """

    def __init__(self, signal_number: int, filters_done: int, filters_total: int):
        self.signal_number = signal_number
        self.filters_done = filters_done
        self.filters_total = filters_total
        super().__init__(
            f"interrupted by {self.signal_name} after {filters_done} of {filters_total} filters"
        )

    @property
    def signal_name(self) -> str:
        return signal_name(self.signal_number)

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process that a signal ended."""
        return 128 + self.signal_number


class StopSignals:
    """Context manager that turns SIGINT and SIGTERM into a request to stop.

    Python lets only the main thread install signal handlers; elsewhere (a notebook's worker
    thread, say) nothing is installed and signals act as usual.

    They nest: a `StopSignals` entered inside another (a layer's run inside an atlas's loop
    over layers) starts with the enclosing one's request, and hands its own request back when it
    exits, so a signal that arrives after a layer's last chunk still stops the loop.

    Attributes:
        signal_number: The first signal received, or None.
    """

    def __init__(self):
        self.signal_number = None
        self._previous = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signal_number in SIGNALS:
                self._previous[signal_number] = signal.signal(signal_number, self._handle)
            enclosing = self._enclosing()
            if enclosing is not None:
                self._record(enclosing.signal_number)
        return self

    def __exit__(self, *exception_info) -> None:
        enclosing = self._enclosing()
        for signal_number, handler in self._previous.items():
            signal.signal(signal_number, handler)
        self._previous = {}
        if enclosing is not None:
            enclosing._record(self.signal_number)

    def _enclosing(self) -> "StopSignals | None":
        """The enclosing StopSignals whose handler this one replaced, if any."""
        owner = getattr(self._previous.get(signal.SIGINT), "__self__", None)
        return owner if isinstance(owner, StopSignals) else None

    def _record(self, signal_number) -> None:
        if self.signal_number is None:
            self.signal_number = signal_number

    def _handle(self, signal_number, frame) -> None:
        if self.signal_number is not None:
            raise KeyboardInterrupt
        self.signal_number = signal_number

    @property
    def requested(self) -> bool:
        """Whether a stop signal arrived."""
        return self.signal_number is not None

    def check(self, *unused) -> None:
        """Raises StopRequested if a stop signal arrived; usable as an `on_step` callback."""
        if self.signal_number is not None:
            raise StopRequested
