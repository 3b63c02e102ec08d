"""The services beside Postfix: bouncegen's spamd and milter started, checked, stopped; Postfix and
spamd reloaded.

How they are started is a parameter: ``Systemd`` (systemctl, on a host where systemd runs) or
``Commands`` (the start command of each unit, run as a child process and stopped by its PID; what
the tests use, since the container they run in has no systemd as PID 1). Either way the install
waits for ``bouncegen milter --check`` (health.check: settings, spamd PING, a milter handshake)
to pass before Postfix is wired to the milter.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
from pathlib import Path
from typing import Callable

from .. import engines
from ..errors import BouncegenError, EngineError
from ..milter import health
from .layout import DEFAULT_POSTFIX_DIR, SERVICE_USER, Target

USER = SERVICE_USER  # the milter's own system user: never root, never postfix


def systemd_running() -> bool:
    """sd_booted(3): systemd is PID 1 when /run/systemd/system exists."""
    return Path("/run/systemd/system").is_dir()


def ensure_user(name: str = USER) -> bool:
    """Create the system user NAME (and its group) unless it exists; True when created. Debian's
    adduser where present (as opendkim's postinst does), useradd elsewhere."""
    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        pass
    adduser = engines.which("adduser")
    if adduser:
        argv = [adduser, "--system", "--group", "--no-create-home", "--home", "/nonexistent",
                "--quiet", name]
    else:
        argv = [engines.require("useradd"), "--system", "--user-group", "--no-create-home",
                "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name]
    proc = engines.run(argv)
    if proc.returncode != 0:
        raise EngineError(f"{Path(argv[0]).name} {name}: {proc.stderr.strip() or proc.returncode}")
    return True


class Systemd:
    """Units through systemctl: daemon-reload, enable, restart, stop."""

    def __init__(self):
        self.systemctl = engines.require("systemctl")

    def _run(self, *args: str) -> None:
        proc = engines.run([self.systemctl, *args], timeout=120)
        if proc.returncode != 0:
            raise EngineError(f"systemctl {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")

    def prepare(self) -> bool:
        """The system user, and systemd's view of the unit files. True when the user was created."""
        created = ensure_user()
        self._run("daemon-reload")
        return created

    def active(self, unit: str) -> bool:
        return engines.run([self.systemctl, "is-active", "--quiet", unit]).returncode == 0

    def alive(self, unit: str) -> bool:
        state = engines.run([self.systemctl, "is-active", unit]).stdout.strip()
        return state in ("active", "activating", "reloading")

    def restart(self, unit: str) -> None:
        self._run("enable", "--quiet", unit)
        self._run("restart", unit)

    def stop(self, unit: str, *, disable: bool = False) -> None:
        if disable:
            engines.run([self.systemctl, "disable", "--quiet", unit])
        engines.run([self.systemctl, "stop", unit])

    def log_hint(self, unit: str) -> str:
        return f"journalctl -u {unit}"


class Commands:
    """Units as plain commands, for hosts (and tests) without systemd: START maps a unit to the
    argv that runs it in the foreground; the process is stopped by its PID (SIGTERM, then
    SIGKILL). A unit without a command is taken as managed elsewhere (already running)."""

    def __init__(self, start: dict[str, list[str]], log_dir: Path):
        self.start_argv = start
        self.log_dir = Path(log_dir)
        self.procs: dict[str, subprocess.Popen] = {}

    def prepare(self) -> bool:
        return False

    def active(self, unit: str) -> bool:
        p = self.procs.get(unit)
        return p is not None and p.poll() is None

    def alive(self, unit: str) -> bool:
        return unit not in self.start_argv or self.active(unit)

    def restart(self, unit: str) -> None:
        if unit not in self.start_argv:
            return
        self.stop(unit)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{unit}.log", "ab") as log:
            self.procs[unit] = subprocess.Popen(self.start_argv[unit], stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=log, start_new_session=True)

    def stop(self, unit: str, *, disable: bool = False) -> None:
        p = self.procs.pop(unit, None)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def stop_all(self) -> None:
        for unit in list(self.procs):
            self.stop(unit)

    def pid(self, unit: str) -> int | None:
        p = self.procs.get(unit)
        return p.pid if p is not None and p.poll() is None else None

    def log_hint(self, unit: str) -> str:
        return str(self.log_dir / f"{unit}.log")


# ---------------------------------------------------------------------------------------------
# Reloading Postfix and the host's spamd (install --reload).

def reload_commands(target: Target) -> list[list[str]]:
    postfix = ["postfix", "reload"]
    if target.pf_dir != Path(DEFAULT_POSTFIX_DIR):
        postfix = ["postfix", "-c", str(target.pf_dir), "reload"]
    # spamd rereads its configuration on SIGHUP; spamass-milter and spamc use spamd, so nothing
    # else needs a reload. amavisd users: amavisd reload.
    return [postfix, ["systemctl", "reload", "spamd"]]


SPAMD_PIDFILES = (Path("/run/spamd.pid"), Path("/var/run/spamd.pid"), Path("/run/spamassassin.pid"))


def do_reload(target: Target, say: Callable[[str], None], *, units: tuple[str, ...] = ("spamd", "spamassassin"),
              pidfiles: tuple[Path, ...] = SPAMD_PIDFILES) -> None:
    """Reload Postfix if it runs, then spamd: through systemd (UNITS), else by a SIGHUP to the PID
    in the first of PIDFILES that names one."""
    reload_postfix(target, say)
    reload_spamd(say, units=units, pidfiles=pidfiles)


def reload_postfix(target: Target, say: Callable[[str], None]) -> None:
    """postfix -c DIR reload when that Postfix runs."""
    postfix = engines.require("postfix")
    status = engines.run([postfix, "-c", str(target.pf_dir), "status"])
    if status.returncode != 0:
        say("postfix is not running: nothing to reload (it reads the new files when it starts)")
    else:
        proc = engines.run([postfix, "-c", str(target.pf_dir), "reload"])
        if proc.returncode != 0:
            raise EngineError(f"postfix reload: {proc.stderr.strip() or proc.returncode} (the new files are installed)")
        say("postfix reload: done")


def reload_spamd(say: Callable[[str], None], *, units: tuple[str, ...] = ("spamd", "spamassassin"),
                 pidfiles: tuple[Path, ...] = SPAMD_PIDFILES) -> None:
    """The host's own spamd (the one amavis or spamc at delivery use) rereads the rules."""
    systemctl = engines.which("systemctl") or ""
    # Debian 12 names the unit spamd (package spamd); Debian 11 and older, spamassassin.
    for unit in units if systemctl else ():
        if engines.run([systemctl, "is-active", "--quiet", unit]).returncode != 0:
            continue
        proc = engines.run([systemctl, "reload", unit])
        if proc.returncode != 0:
            raise EngineError(f"systemctl reload {unit}: {proc.stderr.strip() or proc.returncode} (the new files are installed)")
        say(f"systemctl reload {unit}: done")
        return
    for pidfile in pidfiles:
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, signal.SIGHUP)
            say(f"spamd (pid {pid} from {pidfile}): sent SIGHUP")
            return
    say("spamd: no running service or PID file found: nothing to reload (amavisd: run amavisd reload)")


def missing_executables(units: list[Path]) -> list[str]:
    """One line for each ExecStart= of UNITS whose program this host lacks: a unit that cannot
    start, found before anything is written rather than by a health check timing out."""
    problems = []
    for unit in units:
        for line in unit.read_text(encoding="utf-8").splitlines():
            if line.startswith("ExecStart="):
                exe = line.split("=", 1)[1].lstrip("@-:+!").split()[0]
                if not os.access(exe, os.X_OK):
                    hint = (" (set [milter] bouncegen in the inventory to where bouncegen is on the host: "
                            "/usr/bin/bouncegen from the Debian package, `command -v bouncegen` after pip)"
                            if exe.endswith("/bouncegen") else "")
                    problems.append(f"{unit.name}: ExecStart={exe}: no such executable on this host{hint}")
    return problems


def restore(services, units: list[str], was_active: dict[str, bool], say: Callable[[str], None]) -> None:
    """After a rollback of the files: the units that ran before run again on the old files,
    the others are stopped."""
    with contextlib.suppress(BouncegenError, OSError):
        services.prepare()
    for unit in reversed(units):
        with contextlib.suppress(BouncegenError, OSError):
            services.stop(unit, disable=not was_active.get(unit))
    for unit in units:
        if was_active.get(unit):
            try:
                services.restart(unit)
            except (BouncegenError, OSError) as exc:
                say(f"warning: {unit}: could not be restarted on the previous files: {exc}")


def bring_up(services, units: list[str], milter_conf: Path, *, deadline: float = 30.0) -> str:
    """Start (or restart) UNITS in order and wait until ``bouncegen milter --check`` passes on
    MILTER_CONF; its OK line, or health.CheckError with the one line of what failed."""
    services.prepare()
    for unit in units:
        services.restart(unit)
    return health.wait_ready(milter_conf, deadline, alive=lambda: all(services.alive(u) for u in units))
