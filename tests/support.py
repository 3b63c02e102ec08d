"""Test helpers shared by the test modules (imported as `support`; pytest puts tests/ on sys.path).

Engine tests run the real programs: under CI=true a missing engine is a failure, never a skip (a
skipped engine test would make a green CI that tested nothing)."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from bouncegen import cli, engines
from bouncegen.lab import chroot, daemon, hosts
from bouncegen.lab.postfix_lab import PostfixLab
from bouncegen.lab.site import MX1, ONE_RELAY, example_site
from bouncegen.renderer import inventory

ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))


def lacking(msg: str) -> None:
    """This machine lacks what the test needs (MSG says what): under CI=true a failure, else a skip."""
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


def need(*programs: str) -> None:
    missing = [p for p in programs if not engines.which(p)]
    if missing:
        lacking(f"engine missing: {', '.join(missing)} (scripts/install-engines installs them)")


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
        lacking(f"{what} need: " + ", ".join(missing))


def need_hosts() -> None:
    """What the booted-host lab (generator/lab/hosts.py) needs: root, debootstrap, systemd-nspawn,
    namespaces. Under CI=true a missing piece fails with its one line; elsewhere the test skips."""
    problem = hosts.boot_problem()
    if problem:
        lacking(problem)


def need_chroot(what: str) -> None:
    """What a lab chroot (generator/lab/chroot.py) needs: root, mmdebstrap, unshare, nsenter..."""
    missing = chroot.missing()
    if missing:
        lacking(f"{what} needs: " + ", ".join(missing) + " (scripts/install-engines)")


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


def relay_lab(workdir: Path, relay_milter: str, **tables) -> PostfixLab:
    """A private Postfix (not started) for the example site with one relay and one MX, bounces
    judged by SpamAssassin, plus TABLES (batv=..., ledger=...), its inventory written to
    WORKDIR/site.toml; the relay-role milter wired into non_smtpd_milters with RELAY_MILTER as
    its default_action (start it with lab.start_relay_milter())."""
    (workdir / "site.toml").write_text(example_site(relay=ONE_RELAY, mx=MX1, policy={"dsn": "spamassassin"},
                                                    milter={"timeout": 10}, **tables))
    return PostfixLab(inventory.load(workdir / "site.toml"), smtpd_processes=10, relay_milter=relay_milter)


def wait_for(predicate, timeout: float = 20, interval: float = 0.1) -> bool:
    """Whether PREDICATE() came true within TIMEOUT seconds (asked every INTERVAL, and once more
    at the end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def auto_reply(message_id: str, n: int) -> bytes:
    """An out-of-office reply from remote.test to our MESSAGE_ID (In-Reply-To, References): only
    the ledger can tell it answers mail we sent. Its own Message-ID is unique at every call."""
    return f"""\
Return-Path: <>
From: Paul <paul@remote.test>
To: alice@example.org
Subject: Automatic reply: Order {n}
Date: Mon, 30 Nov 2026 10:01:{n:02d} +0100
Message-ID: <ar.{n}.{time.time_ns()}@remote.test>
In-Reply-To: {message_id}
References: {message_id}
Auto-Submitted: auto-replied
X-Autoreply: yes
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

I am out of the office until Monday 7 December with no access to email.
""".replace("\n", "\r\n").encode()


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
