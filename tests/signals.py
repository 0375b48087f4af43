"""A progress stream for tests that stop a run as a user would: SIGINT at a chosen line."""

import os
import signal


class SignalOnLine:
    """A log stream that sends this process SIGINT once a written line starts with `trigger`
    (an empty trigger: the first line)."""

    def __init__(self, trigger: str):
        self.trigger = trigger
        self.sent = False

    def write(self, text: str) -> int:
        if not self.sent and text.lstrip("\r").startswith(self.trigger):
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
        return len(text)

    def flush(self) -> None:
        pass
