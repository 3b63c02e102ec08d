"""Test helpers shared by the test modules (imported as `support`; pytest puts tests/ on sys.path).

Engine tests run the real programs: under CI=true a missing engine is a failure, never a skip (a
skipped engine test would make a green CI that tested nothing)."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from pathlib import Path

import pytest

from bouncegen import cli, engines
from bouncegen.lab import daemon

ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))


def need(*programs: str) -> None:
    missing = [p for p in programs if not engines.which(p)]
    if missing:
        msg = f"engine missing: {', '.join(missing)} (scripts/install-engines installs them)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """bouncegen ARGV in this process: its exit status, stdout and stderr."""
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def need_lab(*programs: str, what: str = "SMTP tests") -> None:
    """What a PostfixLab needs: the engines (the Postfix and spamd ones and ``programs``),
    pymilter and root (a Postfix master runs as root)."""
    missing = [p for p in ("postfix", "postconf", "postmap", "spamd", "spamc", *programs) if not engines.which(p)]
    try:
        import Milter  # noqa: F401
    except ImportError:
        missing.append("pymilter (pip install pymilter; needs libmilter-dev)")
    if os.geteuid() != 0:
        missing.append("root (a Postfix master runs as root)")
    if missing:
        msg = f"{what} need: " + ", ".join(missing)
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


def need_hosts() -> None:
    """What the booted-host lab (generator/lab/hosts.py) needs: root, debootstrap, systemd-nspawn,
    namespaces. Under CI=true a missing piece fails with its one line; elsewhere the test skips."""
    from bouncegen.lab import hosts

    problem = hosts.boot_problem()
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)


def spamd_dir(prefix: str) -> Path:
    """A directory below /tmp that spamd's user can reach (spamd runs as nobody under root): the
    SQLite WAL reader writes its -shm index beside the database, and the key must be readable."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(d, 0o777)
    return d


def give_to_spamd(*paths: Path) -> None:
    """Hand the files to nobody, spamd's user under root (it opens the SQLite store read-write)."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for p in paths:
            if p.exists():
                os.chown(p, nobody.pw_uid, nobody.pw_gid)


class Tables:
    """The rendered Postfix tables, queried with the real postmap as main.cf wires them."""

    def __init__(self, out: Path, scratch: Path):
        self.conf = engines.postfix_config_dir(scratch / "pfconf", out / "postfix")
        main = (out / "postfix" / "main.cf").read_text()
        self.map_type = "pcre" if "header_checks = pcre:" in main else "regexp"

    def query(self, message: bytes, table: str) -> list[str]:
        flag = "-hq" if table == "header_checks" else "-bq"
        proc = subprocess.run(
            [engines.require("postmap"), "-c", str(self.conf), flag, "-",
             f"{self.map_type}:{self.conf / 'bouncegen' / table}"],
            input=message.replace(b"\r\n", b"\n"), capture_output=True, timeout=60,
        )
        assert proc.stderr == b"", proc.stderr.decode()
        return proc.stdout.decode("utf-8", "replace").splitlines()

    def rejects(self, message: bytes) -> list[str]:
        hits = self.query(message, "header_checks") + self.query(message, "body_checks")
        return [h for h in hits if "\tREJECT" in h]



class RedisServer:
    """A private redis-server on 127.0.0.1 (free port, no persistence, its own tmp dir), stopped
    by its PID. ``password`` sets requirepass. ``stop()`` may be called mid-test (an outage)."""

    def __init__(self, workdir: Path, password: str | None = None):
        self.workdir = Path(workdir)
        self.password = password
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        import socket
        import time

        from bouncegen.engines.spamd import free_port

        need("redis-server")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        argv = [engines.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
                "--logfile", str(self.workdir / "redis.log")]
        if self.password:
            argv += ["--requirepass", self.password]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                self.proc = None
                raise RuntimeError(f"redis-server exited: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(100)[:1] in (b"+", b"-"):  # +PONG, or -NOAUTH with a password
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start within 20 s")

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        """Stop the server by its PID (SIGTERM, then SIGKILL after 10 s)."""
        daemon.stop(self.proc, timeout=10, group=False)
        self.proc = None
