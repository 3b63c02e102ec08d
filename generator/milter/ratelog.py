"""Logging of recurring failures at most once a minute (a store or ledger outage must not write a
line per message into mail.log), at warning level through the milter's logger (milter/log.py)."""

from __future__ import annotations

import threading
import time

from .log import logger

LOG_EVERY = 60.0  # seconds between two log lines about the same kind of failure


class RateLog:
    """One log line per ``every`` seconds for a recurring problem, with the count of the
    occurrences it stood for; thread-safe."""

    def __init__(self, every: float = LOG_EVERY, log=None, clock=time.monotonic):
        self.every = every
        self.log = log or _default
        self.clock = clock
        self.lock = threading.Lock()
        self.last: float | None = None
        self.suppressed = 0

    def __call__(self, line: str) -> None:
        with self.lock:
            now = self.clock()
            if self.last is not None and now - self.last < self.every:
                self.suppressed += 1
                return
            more = f" ({self.suppressed} more since the last report)" if self.suppressed else ""
            self.last, self.suppressed = now, 0
        self.log(line + more)


def _default(line: str) -> None:
    logger.warning(line)
