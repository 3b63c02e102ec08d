"""A private spamd on 127.0.0.1, loaded with a given set of rendered files, and its client.

Used by the corpus runner, the rule tests and the SMTP tests: the real SpamAssassin, one daemon
started once, fed by the real ``spamc -x`` (so a failing daemon is an error, never a silent pass).
The daemon reads nothing from the host's configuration but the stock .pre files and the stock
rules; Bayes, auto-learning, AWL and TxRep are off and no network tests run (``-L``), so a
verdict depends only on the message and the rendered files.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import engines
from .errors import EngineError

# Settings for a reproducible, offline verdict; the plugin-guarded ones only apply if loaded.
_PRIVATE_CF = """\
# bouncegen private spamd: deterministic, offline verdicts
use_bayes 0
bayes_auto_learn 0
ifplugin Mail::SpamAssassin::Plugin::AWL
use_auto_whitelist 0
endif
ifplugin Mail::SpamAssassin::Plugin::TxRep
use_txrep 0
endif
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SpamdResult:
    ok: bool
    tests: tuple[str, ...] = ()
    error: str = ""


class Spamd:
    """``with Spamd(rendered_sa_dir) as d: d.check(message_bytes)``; stops the daemon by PID."""

    def __init__(self, rendered_sa: Path, *, children: int = 2, extra_cf: str = "", workdir: Path | None = None,
                 start_timeout: float = 90.0):
        self.rendered_sa = Path(rendered_sa)
        self.children = children
        self.extra_cf = extra_cf
        self.start_timeout = start_timeout
        self._own_tmp = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="bouncegen-spamd-"))
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.spamc = engines.require("spamc")

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> "Spamd":
        exe = engines.require("spamd")
        site = engines.sa_site_dir(self.workdir / "site", self.rendered_sa)
        (site / "01_bouncegen_private.cf").write_text(_PRIVATE_CF + self.extra_cf)
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        for d in (self.workdir, site, home):
            os.chmod(d, 0o755)
        self.log = self.workdir / "spamd.log"
        self.pidfile = self.workdir / "spamd.pid"
        argv = [exe, "-L", "-x", f"--siteconfigpath={site}", f"--max-children={self.children}",
                f"--min-children={self.children}", "--allowed-ips=127.0.0.1", f"--pidfile={self.pidfile}",
                f"--syslog={self.log}", f"--helper-home-dir={home}"]
        if os.geteuid() == 0:
            argv.append("--username=nobody")
        for _ in range(3):  # a port taken between free_port() and bind: try another
            self.port = free_port()
            # stderr to a file, never an undrained pipe: spamd logs every message there too, and
            # blocks once a pipe's 64 KiB are full (after some 90 messages).
            self._stderr = open(self.workdir / "spamd.stderr", "ab")
            self.proc = subprocess.Popen(argv + [f"--listen=127.0.0.1:{self.port}"], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=self._stderr, start_new_session=True)
            if self._wait_ready():
                return self
            self.stop()
        raise EngineError(f"spamd: did not start; its log: {self.log}\n{self._log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING SPAMC/1.5\r\n\r\n")
                    if b"PONG" in s.recv(100):
                        return True
            except OSError:
                time.sleep(0.2)
        return False

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop spamd (the parent and its children: one process group) and remove the work dir."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
            self._stderr = None
        self.proc = None
        if self._own_tmp:
            import shutil
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Spamd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- client --------------------------------------------------------------------------------
    def spamc_argv(self, max_size: int = 50 * 1024 * 1024) -> list[str]:
        return [self.spamc, "-d", "127.0.0.1", "-p", str(self.port), "-x", "-y", "-s", str(max_size), "-t", "120"]

    def check(self, message: bytes) -> SpamdResult:
        """The names of the tests a message hits, through the real spamc."""
        proc = subprocess.run(self.spamc_argv(), input=message, capture_output=True, timeout=180)
        out = proc.stdout.decode("ascii", "replace").strip()
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip() or f"spamc exit status {proc.returncode}"
            return SpamdResult(ok=False, error=err)
        tests = tuple(t for t in out.split(",") if t)
        return SpamdResult(ok=True, tests=tests)
