"""Debian roots run as chroots: a root of Debian's own packages (built and cached by
lab/debroot.py, variant "chroot") used through a throw-away overlay so every run starts from the
same files.

Why a chroot and not a booted container: amavisd-new and SpamAssassin 3.4 are programs we run in
the foreground, as their packages ship them; they need Debian's files (perl modules, /etc/amavis,
the amavis user), not a systemd. Each run lives in its own mount and network namespace
(``unshare --mount --net``): the overlay, /proc and /dev vanish with the namespace's last process,
so a killed test leaves no mount behind, and the daemons inside listen on a loopback of their own
(amavis keeps Debian's ports 10024/10025, and nothing outside the namespace can reach them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from ..errors import EngineError
from . import debroot

T = TypeVar("T")


def missing() -> list[str]:
    """What building or entering a root needs and this machine lacks (empty: all there)."""
    out = [p for p in ("mmdebstrap", "unshare", "chroot", "mount", "ip", "nsenter", "setpriv")
           if not shutil.which(p, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
    if os.geteuid() != 0:
        out.append("root (mmdebstrap, mount and network namespaces)")
    return out


# Run inside the namespace before the command: the overlay over the cached root, a /proc, a small
# /dev with the device nodes perl and amavis open, a /tmp, and loopback up. $1 lower, $2 upper,
# $3 work, $4 merged; the rest is the command run chrooted.
_ENTER = r"""
set -e
lower=$1 upper=$2 work=$3 root=$4; shift 4
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$root"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=755,size=1m dev "$root/dev"
for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read name maj min <<EOF
$n
EOF
    mknod -m 666 "$root/dev/$name" c "$maj" "$min"
done
ln -s /proc/self/fd "$root/dev/fd"
mount -t tmpfs -o mode=1777 tmp "$root/tmp"
mount -t tmpfs -o mode=755 run "$root/run"
ip link set lo up
exec chroot "$root" "$@"
"""


class Session:
    """One run's view of a cached root: writes go to ``upper`` (a scratch directory), never to the
    cache. Files are put in place before ``start`` with ``write``; commands run chrooted, in a fresh
    mount and network namespace each (``run``), or in one long-lived namespace (``start``) whose
    network the caller's threads join with ``in_netns``."""

    def __init__(self, lower: Path, scratch: Path):
        self.lower = Path(lower)
        self.scratch = Path(scratch)
        self.upper = self.scratch / "upper"
        self.work = self.scratch / "work"
        self.merged = self.scratch / "merged"
        for d in (self.upper, self.work, self.merged):
            d.mkdir(parents=True, exist_ok=True)

    def path(self, inside: str) -> Path:
        """Where a path inside the root is written (the overlay's upper layer)."""
        return self.upper / inside.lstrip("/")

    def read(self, inside: str) -> str:
        """A file as the root sees it (upper layer first, then the cached root)."""
        for layer in (self.upper, self.lower):
            p = layer / inside.lstrip("/")
            if p.exists():
                return p.read_text()
        raise FileNotFoundError(inside)

    def ids(self, user: str) -> tuple[int, int]:
        """uid and gid of ``user`` in the root's own /etc/passwd (not the host's)."""
        for line in self.read("/etc/passwd").splitlines():
            f = line.split(":")
            if f[0] == user:
                return int(f[2]), int(f[3])
        raise EngineError(f"no user {user} in the root's /etc/passwd")

    def write(self, inside: str, data: bytes | str, mode: int = 0o644, owner: str | None = None) -> Path:
        p = self.path(inside)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        p.chmod(mode)
        if owner:
            os.chown(p, *self.ids(owner))
        return p

    def _argv(self, argv: list[str], net: bool) -> list[str]:
        # --uts: a host name of the root's own (``hostname`` inside never renames this machine).
        return (["unshare", "--mount", "--uts", "--propagation", "private", *(["--net"] if net else []),
                 "sh", "-c", _ENTER, "enter", str(self.lower), str(self.upper), str(self.work),
                 str(self.merged), "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                 "LC_ALL=C.UTF-8", "HOME=/root", *argv])

    def run(self, argv: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
        """``argv`` chrooted, in its own mount and network namespace; returns when it exits."""
        return subprocess.run(self._argv(argv, net=True), capture_output=True, timeout=timeout, **kw)

    def start(self, argv: list[str], **kw) -> subprocess.Popen:
        """``argv`` chrooted in a new session (stop it with lab.daemon.stop: its process group)."""
        return subprocess.Popen(self._argv(argv, net=True), start_new_session=True, **kw)


def in_netns(pid: int, fn: Callable[[], T]) -> T:
    """``fn()`` with its sockets in the network namespace of process ``pid`` (debroot.in_netns)."""
    return debroot.in_netns(f"/proc/{pid}/ns/net", fn)


@contextmanager
def session(lower: Path, scratch: Path) -> Iterator[Session]:
    s = Session(lower, scratch)
    try:
        yield s
    finally:
        shutil.rmtree(s.work, ignore_errors=True)

