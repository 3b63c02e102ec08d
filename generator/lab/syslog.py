"""A private rsyslogd for the lab: the milter's lines reach a file the way they reach mail.log on
a host (its own SysLogHandler, facility mail, through a syslog socket), with rsyslog's own
timestamps, so that `bouncegen report` reads them as it would in production.

Debian's rsyslog with a configuration of our own: no /dev/log (SysSock.Use="off"), no kernel
log, one unix socket in the lab's directory, one file in RFC 3339 form (RSYSLOG_FileFormat, the
default of Debian 12's rsyslog.conf). Started in the foreground (-n) in its own session and
stopped by its PID.
"""

from __future__ import annotations

import logging
import logging.handlers
import subprocess
import time
from pathlib import Path

from .. import engines
from ..errors import EngineError
from . import daemon

CONF = """\
global(workDirectory="{dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{socket}")
*.* action(type="omfile" file="{file}" template="{template}")
"""


class Rsyslog:
    def __init__(self, directory: Path, template: str = "RSYSLOG_FileFormat"):
        self.dir = Path(directory)
        self.socket = self.dir / "syslog.sock"
        self.file = self.dir / "syslog"
        self.template = template
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Rsyslog":
        exe = engines.require("rsyslogd")
        conf = self.dir / "rsyslog.conf"
        conf.write_text(CONF.format(dir=self.dir, socket=self.socket, file=self.file, template=self.template))
        self.file.touch()
        self.proc = subprocess.Popen([exe, "-n", "-f", str(conf), "-i", str(self.dir / "rsyslog.pid")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "rsyslog.err", "ab"), start_new_session=True)

        def probe() -> None:
            if not self.socket.is_socket():
                raise OSError("no socket yet")

        daemon.wait_listening(self.proc, probe, "rsyslogd",
                              lambda: (self.dir / "rsyslog.err").read_text(errors="replace"))
        return self

    def flush(self, seconds: float = 5) -> None:
        """Wait until rsyslog has written what it was given: a marker line sent last shows up."""
        marker = f"bouncegen-lab-flush-{time.monotonic_ns()}"
        h = logging.handlers.SysLogHandler(address=str(self.socket))
        h.ident = "bouncegen-lab: "  # a syslog line like any other, of no program the report reads
        try:
            h.emit(logging.LogRecord("lab", logging.INFO, "", 0, marker, None, None))
        finally:
            h.close()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if marker in self.file.read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise EngineError(f"rsyslogd: {self.file} did not receive a line within {seconds:g} s")

    def stop(self) -> None:
        p, self.proc = self.proc, None
        daemon.stop(p)
