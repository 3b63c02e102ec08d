"""Debian roots for the lab: a Debian release with packages from Debian's own archive, built once
into a cache and from then on only read (every run works on a throw-away overlay above it), and
the namespace and mount plumbing that both ways of running a root share.

Two variants of a root, one builder:

- ``chroot`` (lab/chroot.py: amavisd-new, SpamAssassin 3.4, run in the foreground in namespaces
  of their own): mmdebstrap's minbase with the packages installed in the same apt run (one run
  that downloads in parallel, several times faster than debootstrap followed by apt-get);
  policy-rc.d stays, so no service ever starts from a package script.
- ``boot`` (lab/hosts.py: booted with ``systemd-nspawn --boot``): debootstrap's minbase with
  systemd (BOOT_PACKAGES), then ``apt-get install`` of the packages inside a systemd-nspawn that
  is not booted, Postfix preseeded "Internet Site"; policy-rc.d goes once installed (the booted
  host's systemd starts the services), the machine id is made at first boot, no getty.

The cache (``BOUNCEGEN_LAB_CACHE``, default /var/cache/bouncegen-lab) holds ``SUITE-KEY`` (chroot)
and ``SUITE-boot-KEY`` (boot) directories, KEY a hash of the variant's recipe number, the suite,
the mirror and the package lists. Those names are the caches lab machines already hold (a cold
build costs minutes): change how KEY is computed only together with a recipe bump. A half-built
root is never used: it is built under a temporary name and renamed when complete, and a lock file
per root serialises builders.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence, TypeVar

from ..errors import EngineError

MIRROR = "http://deb.debian.org/debian"
# Always in a booted root: systemd as PID 1, D-Bus for systemctl, what the lab itself runs inside.
BOOT_PACKAGES = ("systemd", "systemd-sysv", "dbus", "iproute2", "procps", "adduser", "ca-certificates")
Variant = Literal["chroot", "boot"]
Log = Callable[[str], None]
T = TypeVar("T")


def cache_dir() -> Path:
    return Path(os.environ.get("BOUNCEGEN_LAB_CACHE", "/var/cache/bouncegen-lab"))


def run(argv: Sequence[str], *, timeout: float = 1800, env: dict | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """ARGV on this machine; check=True raises EngineError naming the command and its output."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise EngineError(f"{' '.join(argv[:4])}...: exit {proc.returncode}: {(proc.stdout + proc.stderr)[-3000:]}")
    return proc


def _policy_rc(root: Path) -> Path:
    """No service starts from a package's scripts while this file is there."""
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# bouncegen lab: no service starts in this root\nexit 101\n")
    policy.chmod(0o755)
    return policy


def _make_chroot(suite: str, packages: tuple[str, ...], tmp: Path, log: Log) -> None:
    log(f"mmdebstrap {suite} with {' '.join(packages)} into {tmp}")
    run(["mmdebstrap", "--quiet", "--mode=root", "--variant=minbase", "--aptopt=APT::Install-Recommends \"false\"",
         f"--include={','.join(packages)}", suite, str(tmp), MIRROR])
    _policy_rc(tmp)


def _make_boot(suite: str, packages: tuple[str, ...], tmp: Path, log: Log) -> None:
    log(f"debootstrap {suite} into {tmp}")
    run(["debootstrap", "--variant=minbase", f"--include={','.join(BOOT_PACKAGES)}", suite, str(tmp), MIRROR])
    policy = _policy_rc(tmp)
    preseed = ("postfix postfix/main_mailer_type select Internet Site\n"
               "postfix postfix/mailname string lab.invalid\n")
    log(f"apt-get install {' '.join(packages)}")
    # Not booted: nspawn as a chroot with /proc, /dev and the host's network for apt.
    nspawn = ["systemd-nspawn", "-q", "-D", str(tmp), "--register=no", "--keep-unit",
              "--resolv-conf=copy-host", "--timezone=off", "--setenv=DEBIAN_FRONTEND=noninteractive"]
    run([*nspawn, "sh", "-c", f"printf '{preseed}' | debconf-set-selections"])
    run([*nspawn, "apt-get", "update", "-q"])
    run([*nspawn, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages])
    run([*nspawn, "apt-get", "clean"])
    policy.unlink()
    # Boot quickly and quietly: no consoles to wait on, the machine id made at first boot.
    (tmp / "etc/machine-id").write_text("")
    for unit in ("getty@tty1.service", "console-getty.service"):
        run([*nspawn, "systemctl", "mask", "--quiet", unit], check=False)


@dataclass(frozen=True)
class _Recipe:
    number: str                # bumped when the way such a root is built changes (a new key)
    infix: str                 # in the directory's name, between the suite and the key
    base: tuple[str, ...]      # packages every root of the variant has, before the caller's
    make: Callable[[str, tuple[str, ...], Path, Log], None]


RECIPES: dict[str, _Recipe] = {
    "chroot": _Recipe("2", "", (), _make_chroot),
    "boot": _Recipe("1", "boot-", BOOT_PACKAGES, _make_boot),
}


def name(suite: str, packages: Iterable[str], variant: Variant) -> str:
    """The root's directory in the cache (see the module's docstring: keep these names stable)."""
    recipe = RECIPES[variant]
    text = "\n".join([recipe.number, suite, MIRROR, *recipe.base, *(["--"] if recipe.base else []),
                      *sorted(set(packages))])
    return f"{suite}-{recipe.infix}{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def build(suite: str, packages: Iterable[str], variant: Variant, log: Log = lambda s: None) -> Path:
    """The cached root of Debian SUITE with PACKAGES (and their dependencies, no recommends) in
    VARIANT's form, built on first use."""
    packages = tuple(sorted(set(packages)))
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    dirname = name(suite, packages, variant)
    root = base / dirname
    if (root / ".bouncegen-complete").exists():
        return root
    with open(base / f".{dirname}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / ".bouncegen-complete").exists():
            return root
        tmp = Path(tempfile.mkdtemp(prefix=f".{dirname}.", dir=base))
        tmp.chmod(0o755)  # the root directory of a Debian system (mkdtemp makes it 0700)
        try:
            RECIPES[variant].make(suite, packages, tmp, log)
            (tmp / ".bouncegen-complete").write_text(" ".join(packages) + "\n")
            tmp.rename(root)
        except BaseException:
            umount_below(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log(f"root {root} ready")
    return root


# -- running a root: mounts and network namespaces ------------------------------------------------

def mounts_below(path: Path) -> list[str]:
    """Mount points of this (the host's) namespace at or below PATH."""
    prefix = str(Path(path).resolve())
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [mp for mp in points if mp == prefix or mp.startswith(prefix + "/")]


def umount_below(path: Path) -> None:
    """Unmount (lazily) everything at or below PATH, the deepest first."""
    for mp in sorted(mounts_below(path), reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


_CLONE_NEWNET = 0x40000000


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """``fn()`` in a thread that joined the network namespace at NETNS (a /run/netns/NAME, or
    /proc/PID/ns/net): sockets it creates belong to that namespace (and keep working from any
    thread afterwards). The calling thread's namespace is untouched (setns changes only the
    thread that calls it)."""
    result: dict = {}

    def body() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(netns, os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc

    t = threading.Thread(target=body, name="lab-netns")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
