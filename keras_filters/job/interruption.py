"""Ends a run cleanly on Ctrl-C (SIGINT) or SIGTERM instead of killing it mid-write.

While `StopSignals` is active (the chunk loop), the first signal only sets a flag: the chunk in
progress is abandoned at its next step, the finished chunks are kept, and the caller writes
what is done. A second signal stops the run at once (`stop_now`), for a run that must stop now.

Outside the chunk loop (loading the model, writing the files) there is nothing to finish
first: SIGINT raises KeyboardInterrupt there, as Python does, and SIGTERM raises `Terminated`
while `SigtermStops` is active, so that a command ends in one line rather than being killed
without a word. Files are written whole or not at all, so none is left half-written.
"""

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signal_number: int) -> str:
    """'SIGINT' for 2, and so on."""
    return signal.Signals(signal_number).name


def exit_code(signal_number: int) -> int:
    """128 + the signal number, as a shell reports a process that a signal ended."""
    return 128 + signal_number


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, as Python raises KeyboardInterrupt for SIGINT.

    A KeyboardInterrupt, so that what cleans up after a Ctrl-C cleans up after it too, and
    `except Exception` does not take it for an error.
    """


def stop_now(signal_number, frame=None) -> None:
    """Stops the run at once: raises `Terminated` for SIGTERM, KeyboardInterrupt for SIGINT.

    What `SigtermStops` does on SIGTERM, and `StopSignals` on a second signal.
    """
    raise Terminated if signal_number == signal.SIGTERM else KeyboardInterrupt


def describe(interrupt: KeyboardInterrupt) -> tuple[str, int]:
    """How a command ends on `interrupt`: its words and its exit code ("interrupted", 130 for
    a Ctrl-C; "terminated by SIGTERM", 143 for `Terminated`)."""
    if isinstance(interrupt, Terminated):
        return f"terminated by {signal_name(signal.SIGTERM)}", exit_code(signal.SIGTERM)
    return "interrupted", exit_code(signal.SIGINT)


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
        return exit_code(self.signal_number)


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

    # The signals it handles.
    signals = SIGNALS

    def __init__(self):
        self.signal_number = None
        self._previous = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signal_number in self.signals:
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
        owner = getattr(self._previous.get(signal.SIGTERM), "__self__", None)
        return owner if isinstance(owner, StopSignals) else None

    def _record(self, signal_number) -> None:
        if self.signal_number is None:
            self.signal_number = signal_number

    def _handle(self, signal_number, frame) -> None:
        if self.signal_number is not None:
            stop_now(signal_number)
        self.signal_number = signal_number

    @property
    def requested(self) -> bool:
        """Whether a stop signal arrived."""
        return self.signal_number is not None

    def check(self, *unused) -> None:
        """Raises StopRequested if a stop signal arrived; usable as an `on_step` callback."""
        if self.signal_number is not None:
            raise StopRequested


class SigtermStops(StopSignals):
    """Context manager that makes SIGTERM stop a command at once where it is: outside the chunk
    loop (loading the model, writing the files) there is nothing to finish first, so SIGTERM
    raises `Terminated` there (`stop_now`), as SIGINT raises KeyboardInterrupt.

    The request is kept as well: Python drops an exception that a handler raises inside a
    garbage-collection callback (as JAX's), and some libraries catch everything while they
    import, so a `Terminated` can be lost. A `StopSignals` entered inside this one (the chunk
    loop) starts with its request, so a SIGTERM lost that way still stops the run before its
    next chunk; `requested` tells the caller of a step that has no chunk loop.
    """

    signals = (signal.SIGTERM,)

    def _handle(self, signal_number, frame) -> None:
        self._record(signal_number)
        stop_now(signal_number)
