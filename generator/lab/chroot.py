"""Debian roots for the lab: a Debian release with packages from Debian's own archive, made by
mmdebstrap (a debootstrap that installs the packages in the same apt run), built once and cached,
then used through a throw-away overlay so every run starts from the same files.

Why a chroot and not a booted container: amavisd-new and SpamAssassin 3.4 are programs we run in
the foreground, as their packages ship them; they need Debian's files (perl modules, /etc/amavis,
the amavis user), not a systemd. Each run lives in its own mount and network namespace
(``unshare --mount --net``): the overlay, /proc and /dev vanish with the namespace's last process,
so a killed test leaves no mount behind, and the daemons inside listen on a loopback of their own
(amavis keeps Debian's ports 10024/10025, and nothing outside the namespace can reach them).

The cache (``BOUNCEGEN_LAB_CACHE``, default /var/cache/bouncegen-lab) holds one directory per
(release, package list, recipe) key; a half-built root is never used (it is built under a temporary
name and renamed when complete; a lock file serialises builders).
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from ..errors import EngineError

MIRROR = "http://deb.debian.org/debian"
# Bumped when the way a root is built changes (invalidates the cache).
RECIPE = "2"
T = TypeVar("T")


def cache_dir() -> Path:
    return Path(os.environ.get("BOUNCEGEN_LAB_CACHE", "/var/cache/bouncegen-lab"))


def missing() -> list[str]:
    """What building or entering a root needs and this machine lacks (empty: all there)."""
    out = [p for p in ("mmdebstrap", "unshare", "chroot", "mount", "ip", "nsenter", "setpriv")
           if not shutil.which(p, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
    if os.geteuid() != 0:
        out.append("root (mmdebstrap, mount and network namespaces)")
    return out


def _key(suite: str, packages: tuple[str, ...]) -> str:
    text = "\n".join([RECIPE, suite, MIRROR, *sorted(packages)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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

def build(suite: str, packages: tuple[str, ...], log: Callable[[str], None] = lambda s: None) -> Path:
    """The cached root of Debian ``suite`` with ``packages`` (and their dependencies, no
    recommends) installed; built on first use with mmdebstrap (Debian's tool: one apt run that
    downloads in parallel, several times faster than debootstrap followed by apt-get; services
    never start while it installs)."""
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    name = f"{suite}-{_key(suite, packages)}"
    root = base / name
    if (root / ".bouncegen-complete").exists():
        return root
    with open(base / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / ".bouncegen-complete").exists():
            return root
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=base))
        try:
            log(f"mmdebstrap {suite} with {' '.join(packages)} into {tmp}")
            _run(["mmdebstrap", "--quiet", "--mode=root", "--variant=minbase", "--aptopt=APT::Install-Recommends \"false\"",
                  f"--include={','.join(packages)}", suite, str(tmp), MIRROR])
            policy = tmp / "usr/sbin/policy-rc.d"
            policy.write_text("#!/bin/sh\n# bouncegen lab: no service starts in this root\nexit 101\n")
            policy.chmod(0o755)
            (tmp / ".bouncegen-complete").write_text(" ".join(packages) + "\n")
            tmp.rename(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return root


def _run(argv: list[str], env: dict | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise EngineError(f"{argv[0]} {' '.join(argv[1:4])}...: exit {proc.returncode}: "
                          f"{(proc.stdout + proc.stderr)[-3000:]}")


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


_CLONE_NEWNET = 0x40000000


def in_netns(pid: int, fn: Callable[[], T]) -> T:
    """``fn()`` in a thread that joined the network namespace of process ``pid``: sockets it
    creates belong to that namespace (and keep working from any thread afterwards). The calling
    thread's namespace is untouched (setns changes only the thread that calls it)."""
    result: dict = {}

    def body() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc

    t = threading.Thread(target=body, name="netns")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


@contextmanager
def session(lower: Path, scratch: Path) -> Iterator[Session]:
    s = Session(lower, scratch)
    try:
        yield s
    finally:
        shutil.rmtree(s.work, ignore_errors=True)


def mounts_below(path: Path) -> list[str]:
    """Mount points of this (the host's) namespace at or below ``path``: none after a session."""
    prefix = str(Path(path).resolve())
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp == prefix or mp.startswith(prefix + "/"):
                out.append(mp)
    return out
