"""Booted Debian hosts for the lab: Debian 12 containers with systemd as PID 1, each in a network
namespace of its own, joined by a bridge in a lab namespace that the test creates.

What a test gets is a host an admin would recognise: systemd starts, supervises and restarts the
units, Postfix listens on port 25, ``journalctl`` tells the truth. The test drives it only as an
admin would: commands run inside (``Host.run``), files put in place (``Host.put``), SMTP from the
lab's own namespace (``Lab.call``).

How it is built:

- ``image(packages)``: a Debian 12 root with systemd and PACKAGES from Debian's archive, built
  ONCE into the cache by lab/debroot.py (variant "boot": debootstrap, then apt-get in a
  systemd-nspawn that is not booted; /var/cache/bouncegen-lab/``bookworm-boot-KEY``).
- ``Lab()``: a network namespace ``bglabPID-N`` with a bridge at 10.213.0.1/24 (a private range,
  only ever inside namespaces the lab created); the test's own SMTP client runs there
  (``Lab.call(fn)`` runs fn in a thread that joined it; ``Lab.run(argv)`` = ``ip netns exec``).
- ``lab.host(name, root)``: a throw-away overlay over the cached root (writes never reach the
  cache), a namespace of its own with a veth on the bridge (10.213.0.10+i), booted with
  ``systemd-nspawn --boot --register=no --keep-unit --network-namespace-path=...`` (no machined,
  no scope unit: works where the lab's own machine has no systemd as PID 1). Commands enter the
  container's namespaces with ``nsenter -t PID1 -a``. ``Host.stop`` (and ``Lab.close``, which
  stops every host) halts the container by the PID of its nspawn (SIGTERM = orderly halt,
  SIGKILL after 30 s), unmounts the overlay and deletes the namespaces and veths.

Use::

    from bouncegen.lab import hosts
    problem = hosts.boot_problem()          # None, or why this machine cannot boot a container
    root = hosts.image(hosts.MX_PACKAGES)   # cached after the first build (minutes, once)
    with hosts.Lab() as lab:
        mx = lab.host("mx1", root)          # booted; systemctl is-system-running has answered
        mx.run(["postconf", "-e", "myhostname = mx1.example.org"])
        mx.put("/etc/bouncegen/site.toml", text)
        print(mx.address, mx.run(["systemctl", "is-active", "postfix"]).stdout)
        lab.call(lambda: smtplib.SMTP(mx.address, 25).quit())
        print(mx.journal("bouncegen-milter"))

    # bouncegen as Debian packages it (make deb), its dependencies baked into the image:
    deb = hosts.build_deb(Path("."), tmp)
    root = hosts.image(hosts.MX_PACKAGES + hosts.deb_depends(deb))
    ...
        mx.install_deb(deb)                  # apt install ./bouncegen_*.deb: /usr/bin/bouncegen
    # or, from wheels into a venv at /opt/bouncegen (no .deb needed):
    #   mx.install_wheels(hosts.wheelhouse(Path("."), tmp))

A test that needs a booted host calls ``boot_problem()`` first: under CI=true a problem is a
failure with that one line, elsewhere a skip (tests/support.py ``need_hosts``).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

from ..errors import EngineError
from . import debroot

SUITE = "bookworm"
# An MX host as Debian packages it: the engines bouncegen deploys beside, and what runs bouncegen
# from wheels in a venv (python3-venv; libmilter for pymilter) until the .deb is used.
MX_PACKAGES = ("spamassassin", "spamd", "spamc", "postfix", "postfix-pcre", "libdbd-sqlite3-perl",
               "python3", "python3-venv", "libmilter1.0.1", "sqlite3")
NET = "10.213.0"         # the lab's /24, only ever inside the lab's own namespaces
GATEWAY = f"{NET}.1"     # the bridge in the lab namespace: the test's SMTP client
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Debian root's
_counter = itertools.count(1)
T = TypeVar("T")


def _which(prog: str) -> str | None:
    return shutil.which(prog, path=os.environ.get("PATH", "") + ":" + PATH)


def boot_problem() -> str | None:
    """None when this machine can build and boot a container, else one line saying why not."""
    if os.geteuid() != 0:
        return "booted-host lab needs root (debootstrap, mounts, network namespaces, systemd-nspawn)"
    missing = [p for p in ("debootstrap", "systemd-nspawn", "nsenter", "ip", "mount") if not _which(p)]
    if missing:
        return (f"booted-host lab needs {', '.join(missing)} "
                "(scripts/install-engines installs debootstrap and systemd-container)")
    proc = subprocess.run(["unshare", "--net", "--pid", "--mount", "--uts", "--ipc", "--fork", "true"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return f"booted-host lab: cannot create namespaces here: {proc.stderr.strip()}"
    return None


def image(packages: Iterable[str] = MX_PACKAGES, log: Callable[[str], None] = lambda s: None) -> Path:
    """The cached Debian 12 root with systemd and PACKAGES (no recommends), built on first use."""
    return debroot.build(SUITE, packages, "boot", log)


class Lab:
    """A lab network: a namespace with a bridge (GATEWAY/24) that hosts attach to; the test's own
    client side. Use as a context manager, or call close() (stops every host it booted)."""

    def __init__(self):
        self.name = f"bglab{os.getpid()}-{next(_counter)}"
        self.netns = f"/run/netns/{self.name}"
        self.hosts: list[Host] = []
        debroot.run(["ip", "netns", "add", self.name])
        try:
            for argv in (["link", "set", "lo", "up"], ["link", "add", "br0", "type", "bridge"],
                         ["addr", "add", f"{GATEWAY}/24", "dev", "br0"], ["link", "set", "br0", "up"]):
                debroot.run(["ip", "-n", self.name, *argv])
        except BaseException:
            debroot.run(["ip", "netns", "del", self.name], check=False)
            raise

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def host(self, name: str, root: Path, *, boot_timeout: float = 120) -> "Host":
        """A container named NAME booted from the cached ROOT, at 10.213.0.(10 + its index)."""
        host = Host(self, name, root, f"{NET}.{10 + len(self.hosts)}")
        self.hosts.append(host)
        host.boot(boot_timeout)
        return host

    def call(self, fn: Callable[[], T]) -> T:
        """fn() with its sockets in the lab namespace (connect to host.address from here)."""
        return debroot.in_netns(self.netns, fn)

    def run(self, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True, **kw)

    def close(self) -> None:
        for host in reversed(self.hosts):
            host.stop()
        self.hosts.clear()
        debroot.run(["ip", "netns", "del", self.name], check=False)


class Host:
    """One booted container: an overlay over a cached root, its own network namespace, systemd as
    PID 1. Files are written through ``put`` (or ``path``); commands run with ``run``."""

    def __init__(self, lab: Lab, name: str, root: Path, address: str):
        self.lab, self.name, self.root, self.address = lab, name, Path(root), address
        self.netns_name = f"{lab.name}-{name}"[:40]
        self.scratch = Path(tempfile.mkdtemp(prefix=f"bouncegen-host-{name}-", dir="/var/tmp"))
        self.merged = self.scratch / "merged"
        self.console = self.scratch / "console.log"
        self.nspawn: subprocess.Popen | None = None
        self.pid1: int | None = None

    # -- files --------------------------------------------------------------------------------
    def path(self, inside: str) -> Path:
        """Where a path inside the container is, seen from the lab's machine (the overlay)."""
        return self.merged / inside.lstrip("/")

    def put(self, inside: str, data: bytes | str, mode: int = 0o644, owner: str = "root:root") -> None:
        p = self.path(inside)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        if self.pid1 is not None:  # owner and mode by the container's own names
            self.run(["chown", owner, inside])
            self.run(["chmod", f"{mode:o}", inside])
        else:
            p.chmod(mode)

    def read(self, inside: str) -> str:
        return self.path(inside).read_text(errors="replace")

    # -- life ---------------------------------------------------------------------------------
    def _network(self) -> None:
        lab, ns = self.lab.name, self.netns_name
        idx = self.address.rsplit(".", 1)[1]
        debroot.run(["ip", "netns", "add", ns])
        for argv in (["ip", "-n", lab, "link", "add", f"v{idx}", "type", "veth", "peer", "name", "host0", "netns", ns],
                     ["ip", "-n", lab, "link", "set", f"v{idx}", "master", "br0", "up"],
                     ["ip", "-n", ns, "link", "set", "lo", "up"],
                     ["ip", "-n", ns, "addr", "add", f"{self.address}/24", "dev", "host0"],
                     ["ip", "-n", ns, "link", "set", "host0", "up"],
                     ["ip", "-n", ns, "route", "add", "default", "via", GATEWAY]):
            debroot.run(argv)

    def boot(self, timeout: float = 120) -> str:
        """Mount the overlay, make the network, boot; returns systemd's state once boot is done
        ('running' or 'degraded'). Raises EngineError (with the console's tail) otherwise."""
        upper, work = self.scratch / "upper", self.scratch / "work"
        for d in (upper, work, self.merged):
            d.mkdir()
        debroot.run(["mount", "-t", "overlay", "overlay", "-o",
                     f"lowerdir={self.root},upperdir={upper},workdir={work}", str(self.merged)])
        self._network()
        # The container's own names; no DNS server at all (a resolver that answers "refused" at
        # once, instead of timing out on an address the lab cannot reach).
        self.path("/etc/hostname").write_text(f"{self.name}\n")
        self.path("/etc/hosts").write_text(f"127.0.0.1 localhost\n{self.address} {self.name}\n"
                                           + "".join(f"{h.address} {h.name}\n" for h in self.lab.hosts if h is not self))
        resolv = self.path("/etc/resolv.conf")
        if resolv.is_symlink() or resolv.exists():
            resolv.unlink()
        resolv.write_text("nameserver 127.0.0.1\n")
        with open(self.console, "wb") as out:
            self.nspawn = subprocess.Popen(
                ["systemd-nspawn", "-D", str(self.merged), "--boot", "--register=no", "--keep-unit",
                 f"--machine={self.name}", f"--network-namespace-path=/run/netns/{self.netns_name}",
                 "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while self.pid1 is None:
            if self.nspawn.poll() is not None or time.monotonic() > deadline:
                raise EngineError(f"container {self.name} did not start: {self._console_tail()}")
            self.pid1 = self._find_pid1()
            time.sleep(0.1)
        while True:
            left = deadline - time.monotonic()
            proc = self.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=max(1, left))
            state = proc.stdout.strip()
            if state in ("running", "degraded"):
                return state
            if self.nspawn.poll() is not None or time.monotonic() > deadline:
                raise EngineError(f"container {self.name}: systemd {state or proc.stderr.strip()}: {self._console_tail()}")
            time.sleep(0.2)

    def _find_pid1(self) -> int | None:
        """The container's PID 1 (systemd): the process below nspawn whose PID in its own
        namespace is 1."""
        if self.nspawn is None:
            return None
        todo = [self.nspawn.pid]
        while todo:
            pid = todo.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                nspid = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:")), [])
                if len(nspid) > 1 and nspid[-1] == "1":
                    return pid
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
        return None

    def _console_tail(self) -> str:
        try:
            return self.console.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        """Halt the container (SIGTERM to nspawn = an orderly shutdown of its systemd; SIGKILL to
        the process group after TIMEOUT), unmount, remove the namespace and the scratch."""
        proc = self.nspawn
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.nspawn, self.pid1 = None, None
        debroot.umount_below(self.merged)
        debroot.run(["ip", "netns", "del", self.netns_name], check=False)
        shutil.rmtree(self.scratch, ignore_errors=True)

    # -- inside -------------------------------------------------------------------------------
    def run(self, argv: Sequence[str] | str, *, check: bool = True, timeout: float = 300,
            input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        """ARGV (a string: a shell script) inside the container, in all of its namespaces, with a
        clean environment; check=True raises EngineError naming the command and its output."""
        if self.pid1 is None:
            raise EngineError(f"container {self.name} is not running")
        cmd = ["sh", "-c", argv] if isinstance(argv, str) else list(argv)
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        proc = subprocess.run(["nsenter", "-t", str(self.pid1), "-a", "env", "-i", f"PATH={PATH}",
                               "LC_ALL=C.UTF-8", "HOME=/root", *extra, *cmd],
                              capture_output=True, text=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise EngineError(f"{self.name}: {' '.join(cmd)[:200]}: exit {proc.returncode}: "
                              f"{(proc.stdout + proc.stderr)[-3000:]}")
        return proc

    def journal(self, unit: str | None = None, since: str | None = None) -> str:
        argv = ["journalctl", "--no-pager", "-o", "short-iso", *(["-u", unit] if unit else []),
                *(["--since", since] if since else [])]
        return self.run(argv, check=False).stdout

    def install_deb(self, deb: Path) -> str:
        """``apt install ./bouncegen_*.deb`` as an admin types it (its dependencies are in the
        image: see deb_depends); the executable."""
        dest = f"/var/tmp/{deb.name}"
        shutil.copy(deb, self.path(dest))
        self.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", dest],
                 env={"DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
        return "/usr/bin/bouncegen"

    def install_wheels(self, wheels: Path, prefix: str = "/opt/bouncegen") -> str:
        """bouncegen from a wheelhouse (see wheelhouse) into a venv at PREFIX; its executable."""
        dest = "/var/tmp/bouncegen-wheels"
        shutil.copytree(wheels, self.path(dest), dirs_exist_ok=True)
        self.run(["python3", "-m", "venv", prefix])
        self.run([f"{prefix}/bin/pip", "install", "-q", "--no-index", "--find-links", dest, "bouncegen[milter]"])
        return f"{prefix}/bin/bouncegen"


def build_deb(source: Path, dest: Path) -> Path:
    """``make deb``'s script on SOURCE: bouncegen_<version>_all.deb in DEST (lintian-checked)."""
    dest.mkdir(parents=True, exist_ok=True)
    debroot.run([str(Path(source) / "scripts/build-deb"), str(dest)], timeout=900)
    return next(dest.glob("bouncegen_*_all.deb"))


def deb_depends(deb: Path) -> tuple[str, ...]:
    """The packages DEB's Depends: names (the first of alternatives, no versions): put them in
    the image, and ``apt install ./DEB`` inside a container needs no network."""
    text = debroot.run(["dpkg-deb", "-f", str(deb), "Depends"]).stdout
    names = {re.split(r"[\s(:]", part.split("|")[0].strip(), maxsplit=1)[0] for part in text.split(",")}
    return tuple(sorted(n for n in names if n))


def wheelhouse(source: Path, dest: Path) -> Path:
    """Wheels of bouncegen (built from SOURCE) and of its dependencies (with the milter extra) in
    DEST, resolved by the lab machine's Debian 12 Python (/usr/bin/python3, the containers' own
    3.11.2: a newer Python would skip dependencies with version markers) in a venv of its own."""
    dest.mkdir(parents=True, exist_ok=True)
    venv = dest / ".venv"
    debroot.run(["/usr/bin/python3", "-m", "venv", str(venv)])
    try:
        debroot.run([str(venv / "bin/pip"), "wheel", "-q", "--disable-pip-version-check", "--wheel-dir", str(dest),
              f"{source}[milter]"], timeout=900)
    finally:
        shutil.rmtree(venv, ignore_errors=True)
    return dest
