"""A daemon of the lab: started by the caller with start_new_session, waited for until it listens,
stopped by its PID (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from typing import Callable

from ..errors import EngineError


def tcp(port: int) -> Callable[[], None]:
    """A probe that connects to 127.0.0.1:port and closes again (OSError while nothing listens)."""
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close()


def wait_listening(proc: subprocess.Popen, probe: Callable[[], None], what: str,
                   log: Callable[[], str] = lambda: "", seconds: float = 20,
                   error: type[Exception] = EngineError, interval: float = 0.05) -> None:
    """Return once ``probe`` no longer raises OSError, tried every ``interval`` seconds; raise
    ``error`` with the tail of ``log()`` if the process exits first or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise error(f"{what} exited ({proc.returncode}): {log()[-2000:]}")
        try:
            probe()
            return
        except OSError:
            time.sleep(interval)
    raise error(f"{what}: not listening after {seconds:g} s: {log()[-2000:]}")


def stop(proc: subprocess.Popen | None, timeout: float = 15, group: bool = True) -> None:
    """Stop a running process by its PID (its process group with ``group``): SIGTERM, then SIGKILL
    after ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    kill = os.killpg if group else os.kill
    kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc.pid, signal.SIGKILL)
        proc.wait()
