"""``bouncegen ledger check``: can each reader of the ledger open it, as its own user?

The readers are the lean spamd of bouncegen's milter (user ``bouncegen``, or ``--user``) and,
where they exist on the host, the post-queue readers: Debian's spamd (``debian-spamd``) and
amavisd-new (``amavis``). Each is tested in a child process that has become that user (its
groups from the group database, as a service started now would get them), doing what the plugin
does: read the key file, open the SQLite store read-write without creating it (a reader of a WAL
database writes the ``-shm`` index and may create ``-wal`` beside it) and look up one entry.

Each problem is one line naming the user, the path, what it lacks and the command that fixes it
(the layout of docs/ledger.md, "Rights of the readers"): ``/var/lib/bouncegen`` 2770
root:bouncegen, the database and its ``-wal``/``-shm`` 0660 group bouncegen, the key 0640
bouncegen:bouncegen, each reader in group bouncegen. A Redis store needs only the key file.

The sandbox of the running unit is another matter (ProtectSystem=strict makes every path
read-only that ReadWritePaths= does not name): the installed bouncegen-spamd.service is read and a
ReadWritePaths= that misses the database's directory is reported too; ``bouncegen milter --check``
proves the lookup from inside the running unit.
"""

from __future__ import annotations

import codecs
import grp
import json
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from . import keys

SERVICE_GROUP = "bouncegen"
# The post-queue readers as Debian names their users, and the service each runs.
HOST_READERS = {"debian-spamd": "spamd", "amavis": "amavis"}
SPAMD_UNIT = Path("/etc/systemd/system/bouncegen-spamd.service")


@dataclass(frozen=True)
class Need:
    path: Path
    bits: str        # "r", "rw", "x", "wx"
    what: str        # "the key file", "the ledger database", ...


def _needs(store: str, key_file: str) -> list[Need]:
    """What a reader must be able to do, in the order a lookup does it."""
    key = Path(key_file)
    out = [Need(d, "x", "a directory above the key file") for d in reversed(key.parents) if d != Path("/")]
    out.append(Need(key, "r", "the key file"))
    if store.startswith("sqlite:"):
        db = Path(store[len("sqlite:"):])
        out += [Need(d, "x", "a directory above the ledger") for d in reversed(db.parent.parents) if d != Path("/")]
        out.append(Need(db.parent, "wx", "the ledger's directory (SQLite creates -wal and -shm there)"))
        out.append(Need(db, "rw", "the ledger database"))
        for suffix in ("-wal", "-shm"):
            out.append(Need(db.with_name(db.name + suffix), "rw", f"the ledger's {suffix} file"))
    return out


_BITS = {"r": os.R_OK, "w": os.W_OK, "x": os.X_OK}
_VERBS = {"r": "read", "rw": "read and write", "x": "enter", "wx": "create files in"}


def _probe_as(user: str, store: str, key_file: str, needs: list[Need]) -> dict:
    """In a child that has become USER: which needs fail (by index), and the lookup's error."""
    pw = pwd.getpwnam(user)
    for codec in ("ascii", "utf-8"):  # looked up now: the child may not read this Python's files
        codecs.lookup(codec)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the user, test, report as JSON, exit
        result: dict = {"denied": [], "error": ""}
        try:
            os.close(rfd)
            os.setgroups(os.getgrouplist(user, pw.pw_gid))
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            for i, need in enumerate(needs):
                if need.path.exists() and not all(os.access(need.path, _BITS[b]) for b in need.bits):
                    result["denied"].append(i)
            try:
                key = keys.load_key(key_file)
                if store.startswith("sqlite:"):
                    db = store[len("sqlite:"):]
                    con = sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=2)
                    try:
                        con.execute("SELECT 1 FROM sent WHERE h = ? LIMIT 1", (key[:16],)).fetchall()
                    finally:
                        con.close()
            except Exception as exc:  # noqa: BLE001 - reported, whatever it is
                result["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001
            result["error"] = f"cannot test as {user}: {exc}"
        os.write(wfd, json.dumps(result).encode())
        os._exit(0)
    os.close(wfd)
    data = b""
    while chunk := os.read(rfd, 65536):
        data += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    return json.loads(data or b'{"denied": [], "error": "the test process ended without an answer"}')


def _fix(user: str, need: Need) -> str:
    """The path's owner and mode, and the one command that gives USER what NEED asks for, by the
    documented layout (group bouncegen)."""
    st = need.path.stat()
    owner = _name(st.st_uid, pwd.getpwuid) or str(st.st_uid)
    group = _name(st.st_gid, grp.getgrgid) or str(st.st_gid)
    pw = pwd.getpwnam(user)
    gids = os.getgrouplist(user, pw.pw_gid)
    group_bits = {"r": stat.S_IRGRP, "w": stat.S_IWGRP, "x": stat.S_IXGRP}
    group_has = all(st.st_mode & group_bits[b] for b in need.bits)
    shown = f"{stat.S_IMODE(st.st_mode):04o} {owner}:{group}"
    restart = f", then restart {HOST_READERS[user]}" if user in HOST_READERS else ""
    if owner == user:
        return f"{shown}: chmod u+{need.bits} {need.path}"
    if group_has and st.st_gid not in gids:
        return f"{shown}: adduser {user} {group}{restart}"
    steps = []
    if group != SERVICE_GROUP:
        steps.append(f"chgrp {SERVICE_GROUP} {need.path}")
    if not group_has:
        steps.append(f"chmod g+{need.bits}{'s' if stat.S_ISDIR(st.st_mode) and 'w' in need.bits else ''} {need.path}")
    if SERVICE_GROUP not in (_name(g, grp.getgrgid) for g in gids):
        steps.append(f"adduser {user} {SERVICE_GROUP}{restart}")
    return f"{shown}: {' && '.join(steps) or 'a restart of the reader (its groups are read at start)'}"


def _name(ident: int, lookup: Callable[[int], tuple]) -> str | None:
    """The name the passwd or group database (LOOKUP: pwd.getpwuid, grp.getgrgid) gives the
    numeric IDENT; None when it has no entry for it."""
    try:
        return lookup(ident)[0]
    except KeyError:
        return None


def readers(user: str | None) -> list[str]:
    """The users to test: the scanning spamd's (USER, default bouncegen) and the host's
    post-queue readers that exist."""
    out = [user or SERVICE_GROUP]
    for name in HOST_READERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        if name not in out:
            out.append(name)
    return out


def _unit_sandbox(unit: Path) -> tuple[str, list[str]] | None:
    """(ProtectSystem, ReadWritePaths) of the spamd unit: as systemd has loaded it, drop-ins
    included, where systemd runs; else from the installed file; None when it is not installed."""
    systemctl = shutil.which("systemctl")
    if systemctl and Path("/run/systemd/system").is_dir():
        proc = subprocess.run([systemctl, "show", "-p", "LoadState,ProtectSystem,ReadWritePaths", unit.name],
                              capture_output=True, text=True)
        props = dict(ln.split("=", 1) for ln in proc.stdout.splitlines() if "=" in ln)
        if proc.returncode == 0 and props.get("LoadState") == "loaded":
            return props.get("ProtectSystem", ""), props.get("ReadWritePaths", "").split()
    if not unit.is_file():
        return None
    lines = [ln.strip() for ln in unit.read_text(errors="replace").splitlines()]
    protect = next((ln.split("=", 1)[1] for ln in reversed(lines) if ln.startswith("ProtectSystem=")), "")
    return protect, [p for ln in lines if ln.startswith("ReadWritePaths=") for p in ln.split("=", 1)[1].split()]


def unit_sandbox_problem(store: str, unit: Path = SPAMD_UNIT) -> str | None:
    """A line when the spamd unit's sandbox hides an SQLite ledger's directory from spamd."""
    if not store.startswith("sqlite:"):
        return None
    sandbox = _unit_sandbox(unit)
    if sandbox is None or sandbox[0] != "strict":
        return None
    db_dir = Path(store[len("sqlite:"):]).parent
    writable = [Path(p.lstrip("-+")) for p in sandbox[1] if p.lstrip("-+").startswith("/")]
    if any(db_dir == p or db_dir.is_relative_to(p) for p in writable):
        return None
    return (f"{unit.name}: ProtectSystem=strict and ReadWritePaths= does not name {db_dir}: spamd cannot open "
            f"the ledger inside its unit; install the unit bouncegen renders now (bouncegen install), "
            f"or remove the drop-in that overrides ReadWritePaths=")


def check(store: str, key_file: str, *, user: str | None = None, unit: Path = SPAMD_UNIT) -> tuple[list[str], list[str]]:
    """(ok lines, problem lines) for every reader of the ledger."""
    if os.geteuid() != 0:
        raise UsageError("ledger check: run as root (it tests the ledger as each reader's user)")
    users = readers(user)
    for name in users:
        try:
            pwd.getpwnam(name)
        except KeyError:
            raise UsageError(f"ledger check: no such user: {name}") from None
    needs = _needs(store, key_file)
    ok: list[str] = []
    problems: list[str] = []
    missing = [(p, what) for p, what in ((Path(key_file), "the key file"),
                                         (Path(store[len("sqlite:"):]) if store.startswith("sqlite:") else None, "the ledger database"))
               if p is not None and not p.exists()]
    if missing:
        return ok, [f"{p}: {what} does not exist: bouncegen ledger init INVENTORY" for p, what in missing]
    for name in users:
        result = _probe_as(name, store, key_file, needs)
        mine = [f"{name}: cannot {_VERBS[needs[i].bits]} {needs[i].what} {needs[i].path} ({_fix(name, needs[i])})"
                for i in result["denied"]]
        if not mine and result["error"]:
            mine.append(f"{name}: the lookup failed: {result['error']}")
        problems += mine
        if not mine:
            ok.append(f"{name}: reads the key and looks up the ledger")
    sandbox = unit_sandbox_problem(store, unit)
    if sandbox:
        problems.append(sandbox)
    return ok, problems
