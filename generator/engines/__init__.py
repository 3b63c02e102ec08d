"""Finding and running the real engines: SpamAssassin and Postfix.

Nothing here imitates either engine; it only finds the programs, says how to install a missing
one, and runs them with a private configuration so that the host's /etc is never read or touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

from ..errors import EngineError
from ..facts import MAPS_SUBDIR

# Postfix and spamd live in sbin, which a non-root PATH often lacks.
_EXTRA_PATH = ("/usr/sbin", "/usr/local/sbin", "/sbin")

INSTALL_HINT = {
    "spamassassin": "apt-get install spamassassin",
    "spamd": "apt-get install spamd (Debian 12: part of spamassassin)",
    "spamc": "apt-get install spamc",
    "sa-update": "apt-get install sa-update (Debian 12: part of spamassassin)",
    "postmap": "apt-get install postfix postfix-pcre",
    "postconf": "apt-get install postfix",
    "postfix": "apt-get install postfix",
    "smtp-source": "apt-get install postfix",
    "smtp-sink": "apt-get install postfix",
    "spamass-milter": "apt-get install spamass-milter",
    "rsyslogd": "apt-get install rsyslog",
    "chromium": "apt-get install chromium",
}

# Where Debian keeps the stock .pre files (loadplugin lines) next to which our files are linted.
SA_SITE_CONFIG = Path(os.environ.get("BOUNCEGEN_SA_SITECONFIG", "/etc/spamassassin"))


def which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    path = os.pathsep.join((os.environ.get("PATH", ""),) + _EXTRA_PATH)
    return shutil.which(name, path=path)


def require(name: str) -> str:
    found = which(name)
    if not found:
        raise EngineError(f"{name}: not found; install it: {INSTALL_HINT.get(name, name)}")
    return found


def run(argv: list[str], *, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run an engine command, text mode; a missing program or a time-out is an EngineError."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except FileNotFoundError:
        raise EngineError(f"{argv[0]}: not found") from None
    except subprocess.TimeoutExpired:
        raise EngineError(f"{Path(argv[0]).name}: no answer within {timeout:.0f} s") from None


class Children:
    """The engine processes a caller starts one after another from several threads (postmap,
    spamc), kept by PID so that ``stop()`` can end every one still running when the caller ends
    early (an error, a signal) and refuse to start any after that: nothing is left behind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()
        self._stopped = False

    def run(self, argv: list[str], data: bytes, timeout: float) -> subprocess.CompletedProcess:
        """``subprocess.run(argv, input=data, capture_output=True, timeout=timeout)``, tracked.
        Raises OSError (ChildProcessError once stopped) and subprocess.TimeoutExpired (the
        process is killed and reaped first), as subprocess.run does."""
        if self._stopped:
            raise ChildProcessError(f"{Path(argv[0]).name} not started: the run is stopping")
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self._lock:
            # stop() either saw this process or ran before it was recorded: then it goes now.
            if self._stopped:
                proc.kill()
                proc.communicate()
                raise ChildProcessError(f"{Path(argv[0]).name} stopped: the run is stopping")
            self._live.add(proc)
        try:
            out, err = proc.communicate(data, timeout=timeout)
        finally:
            if proc.poll() is None:  # a time-out, or an exception in this thread
                proc.kill()
                proc.communicate()
            with self._lock:
                self._live.discard(proc)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def stop(self) -> None:
        """Kill (SIGKILL) and reap every process still running; start no more."""
        with self._lock:
            self._stopped = True
            live = list(self._live)
        for proc in live:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        for proc in live:
            proc.wait()

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(p.pid for p in self._live)


def sa_version() -> str:
    exe = which("spamassassin")
    if not exe:
        return "absent"
    out = run([exe, "--version"]).stdout.split()
    return out[2] if len(out) > 2 else "unknown"


def postfix_version() -> str:
    exe = which("postconf")
    if not exe:
        return "absent"
    out = run([exe, "-d", "-h", "mail_version"]).stdout.strip()
    return out or "unknown"


def stock_pre_files() -> list[Path]:
    """The stock .pre files (plugin loading) that a real installation has beside our files."""
    return sorted(SA_SITE_CONFIG.glob("*.pre"))


def sa_site_dir(dest: Path, rendered_sa: Path) -> Path:
    """Lay out a private SpamAssassin site-config directory: stock .pre files + our files."""
    dest.mkdir(parents=True, exist_ok=True)
    for pre in stock_pre_files():
        shutil.copy(pre, dest / pre.name)
    for f in sorted(rendered_sa.iterdir()):
        shutil.copy(f, dest / f.name)
    return dest


def postfix_config_dir(dest: Path, rendered_pf: Path) -> Path:
    """Lay out a private Postfix config directory: the rendered main.cf lines as main.cf, and the
    maps under bouncegen/, exactly where those lines name them ($config_directory/bouncegen/)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MAPS_SUBDIR).mkdir(exist_ok=True)
    for f in sorted(rendered_pf.iterdir()):
        if f.name != "main.cf":
            shutil.copy(f, dest / MAPS_SUBDIR / f.name)
    shutil.copy(rendered_pf / "main.cf", dest / "main.cf")
    (dest / "master.cf").touch()
    return dest
