"""A private spamd on 127.0.0.1, loaded with a given set of rendered files, and its client.

Used by the corpus runner, the rule tests, the SMTP tests and the storm: the real SpamAssassin,
one daemon started once, fed by the real ``spamc -x`` (so a failing daemon is an error, never a
silent pass). Two profiles (PROFILES):

- ``lean``: the rendered lean scanning profile, DIR/spamd/rules as --configpath and DIR/spamd/site
  as --siteconfigpath, exactly what bouncegen-spamd.service runs; nothing of the host's
  configuration is read (no stock .pre file, no stock rule).
- ``full``: the rendered DIR/spamassassin/ files beside the stock .pre files and the whole stock
  rule set: the ruleset as a host's own spamd (amavis, spamc at delivery) judges with it.

In both, Bayes, auto-learning, AWL and TxRep are off and no network tests run (``-L``), so a
verdict depends only on the message and the rendered files.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .. import engines
from ..errors import EngineError

# Settings for a reproducible, offline verdict; the plugin-guarded ones only apply if loaded.
PRIVATE_CF = """\
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


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses; split after it.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return sorted(members)


def stop_group(pgid: int, proc: subprocess.Popen | None, timeout: float = 15.0) -> None:
    """SIGTERM the process group, wait for every member to go, SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None:
                proc.poll()  # reap the parent, else it stays a zombie member of the group
            if not _group_members(pgid):
                break
            time.sleep(0.05)
        else:
            continue
        break
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


@dataclass
class SpamdResult:
    ok: bool
    tests: tuple[str, ...] = ()
    error: str = ""


PROFILES = ("lean", "full")


class Spamd:
    """``with Spamd(rendered_sa_dir) as d: d.check(message_bytes)``; stops the daemon by PID.

    ``rendered_sa`` is DIR/spamassassin of a rendered tree; with ``profile="lean"`` the daemon
    loads that tree's DIR/spamd/ instead (see the module's docstring)."""

    def __init__(self, rendered_sa: Path, *, children: int = 2, extra_cf: str = "", workdir: Path | None = None,
                 start_timeout: float = 90.0, profile: str = "full"):
        if profile not in PROFILES:
            raise ValueError(f"spamd profile {profile!r}: expected one of {', '.join(PROFILES)}")
        self.profile = profile
        self.rendered_sa = Path(rendered_sa)
        self.children = children
        self.extra_cf = extra_cf
        self.start_timeout = start_timeout
        self._own_tmp = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="bouncegen-spamd-"))
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._pgid: int | None = None
        self.spamc = engines.require("spamc")
        self.clients = engines.Children()  # the spamc processes at work, stopped with the daemon

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> "Spamd":
        exe = engines.require("spamd")
        self.clients = engines.Children()
        paths = []
        if self.profile == "lean":
            lean = self.rendered_sa.parent / "spamd"
            rules, site = self.workdir / "rules", self.workdir / "site"
            for d in (rules, site):
                shutil.rmtree(d, ignore_errors=True)
                shutil.copytree(lean / d.name, d)
            paths.append(f"--configpath={rules}")
        else:
            site = engines.sa_site_dir(self.workdir / "site", self.rendered_sa)
        paths.append(f"--siteconfigpath={site}")
        (site / "01_bouncegen_private.cf").write_text(PRIVATE_CF + self.extra_cf)
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        for d in (self.workdir, site, home, *((rules,) if self.profile == "lean" else ())):
            os.chmod(d, 0o755)
        self.log = self.workdir / "spamd.log"
        self.pidfile = self.workdir / "spamd.pid"
        argv = [exe, "-L", "-x", *paths, f"--max-children={self.children}",
                f"--min-children={self.children}", "--allowed-ips=127.0.0.1", f"--pidfile={self.pidfile}",
                f"--syslog={self.log}", f"--helper-home-dir={home}"]
        if os.geteuid() == 0:
            argv.append("--username=nobody")
            # As nobody, spamd must traverse every directory above its site config; a private
            # TMPDIR (mode 0700) would make it start without a single .pre file.
            for parent in self.workdir.resolve().parents:
                if not os.stat(parent).st_mode & 0o001:
                    raise EngineError(f"spamd runs as nobody and cannot reach {self.workdir}: {parent} is not "
                                      "searchable by others (set TMPDIR to a directory such as /tmp)")
        self.errlog = self.workdir / "spamd.stderr"
        for _ in range(3):  # a port taken between free_port() and bind: try another
            self.port = free_port()
            # stderr to a file, not a pipe: an unread pipe that fills up would block spamd.
            with open(self.errlog, "ab") as err:
                self.proc = subprocess.Popen(argv + [f"--listen=127.0.0.1:{self.port}"], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            self._pgid = self.proc.pid  # start_new_session: the parent leads its own group
            if self._wait_ready():
                return self
            self._terminate()
        tail = self.log_tail()
        self.stop()
        raise EngineError(f"spamd: did not start; the end of its log:\n{tail}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        assert self.proc is not None
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

    def log_tail(self) -> str:
        lines = []
        for f in (self.errlog, self.log):
            try:
                lines += f.read_text(errors="replace").splitlines()[-15:]
            except (OSError, AttributeError):
                pass
        return "\n".join(lines)

    @property
    def user(self) -> str:
        """The user spamd's children run as (nobody when started as root)."""
        if os.geteuid() == 0:
            return "nobody"
        return pwd.getpwuid(os.geteuid()).pw_name

    def log_text(self) -> str:
        """Everything spamd logged so far (its --syslog file and stderr)."""
        out = []
        for f in (getattr(self, "errlog", None), getattr(self, "log", None)):
            if f is None:
                continue  # not started yet
            try:
                out.append(Path(f).read_text(errors="replace"))
            except OSError:
                pass
        return "\n".join(out)

    def alive(self) -> bool:
        """True while the spamd parent runs. Its children outlive a killed parent and go on
        answering, so a runner must ask this, not only look at spamc's exit status."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def pids(self) -> list[int]:
        """Every process of spamd's process group (the parent and its children), from /proc."""
        if self._pgid is None:
            return []
        return _group_members(self._pgid)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the spamd parent only (tests: a daemon dying mid-run)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        """Stop spamd (the parent and its children: one process group) and remove the work dir.

        The group is signalled even when the parent is already gone: children of a killed
        parent keep running and would otherwise be left behind."""
        self.clients.stop()
        self._terminate()
        if self._own_tmp:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _terminate(self) -> None:
        if self._pgid is not None:
            stop_group(self._pgid, self.proc)
            self._pgid = None
        self.proc = None

    def __enter__(self) -> "Spamd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- client --------------------------------------------------------------------------------
    def spamc_argv(self, max_size: int = 50 * 1024 * 1024) -> list[str]:
        return [self.spamc, "-d", "127.0.0.1", "-p", str(self.port), "-x", "-y", "-s", str(max_size), "-t", "120"]

    def check(self, message: bytes) -> SpamdResult:
        """The names of the tests a message hits, through the real spamc."""
        proc = self.clients.run(self.spamc_argv(), message, timeout=180)
        out = proc.stdout.decode("ascii", "replace").strip()
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip() or f"spamc exit status {proc.returncode}"
            return SpamdResult(ok=False, error=err)
        tests = tuple(t for t in out.split(",") if t)
        return SpamdResult(ok=True, tests=tests)
