"""bouncegen install on a host that already runs a milter (a real OpenDKIM, configured the way
Debian hosts do), with the real spamd, the real milter and a private Postfix (lab/postfix_lab):
the health gate, the host's lines kept, local mail signed and never judged, fault drills,
uninstall. The services are started with services.Commands (no systemd in the container) and
every process is stopped by its PID."""

from __future__ import annotations

import os
import re
import shutil
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bouncegen import engines
from bouncegen.deploy import install, services as svc
from bouncegen.engines.spamd import Spamd, free_port
from bouncegen.errors import LintError
from bouncegen.lab import daemon, mail as samples
from bouncegen.lab.postfix_lab import PostfixLab
from bouncegen.lab.site import FOREIGN, MX1, ONE_RELAY, example_site
from bouncegen.milter import health
from bouncegen.renderer import inventory
from support import need_lab, wait_for

pytestmark = [pytest.mark.smtp, pytest.mark.slow]

ALICE = "alice@example.org"
MILTER = "bouncegen-milter.service"

HOST_INVENTORY = example_site(site={"domains": ["example.org"]}, relay=ONE_RELAY, mx=MX1,
                              policy={"dsn": "spamassassin"})
MILTER_TABLE = """\
[milter]
socket = "inet:127.0.0.1:{port}"
spamd = "127.0.0.1:{spamd}"
timeout = 5
bouncegen = "{exe}"
"""

OPENDKIM_CONF = """\
Mode                    sv
Domain                  example.org
Selector                lab
KeyFile                 {keys}/lab.private
Socket                  inet:{port}@127.0.0.1
PidFile                 {tmp}/opendkim.pid
Syslog                  no
RequireSafeKeys         false
InternalHosts           127.0.0.1
"""


def _need_engines():
    need_lab("opendkim", "opendkim-genkey", "sendmail", what="service tests")


class OpenDKIM:
    """opendkim -f -x CONF on a loopback port, with a key made by opendkim-genkey; stopped by PID."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = free_port()
        keys = tmp / "keys"
        keys.mkdir(parents=True)
        subprocess.run([engines.require("opendkim-genkey"), "-D", str(keys), "-d", "example.org", "-s", "lab"],
                       check=True, capture_output=True)
        self.conf = tmp / "opendkim.conf"
        self.conf.write_text(OPENDKIM_CONF.format(keys=keys, port=self.port, tmp=tmp))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "OpenDKIM":
        self.log = open(self.tmp / "opendkim.log", "ab")
        self.proc = subprocess.Popen([engines.require("opendkim"), "-f", "-x", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                health.milter_handshake(f"inet:127.0.0.1:{self.port}", 2)
                return self
            except health.CheckError:
                assert self.proc.poll() is None, (self.tmp / "opendkim.log").read_text()
                time.sleep(0.1)
        raise AssertionError("opendkim did not listen")

    def stop(self) -> None:
        daemon.stop(self.proc, group=False)
        self.log.close()


class Host:
    """The lab host: Postfix with OpenDKIM wired as on Debian, spamd running, bouncegen not yet."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.dkim = OpenDKIM(tmp / "dkim").start()
        inv_path = tmp / "host.toml"
        inv_path.write_text(HOST_INVENTORY)
        self.lab = PostfixLab(inventory.load(inv_path), bouncegen=False, config_subdir="etc/postfix", extra_params={
            "milter_default_action": "accept",
            "milter_protocol": "6",
            "smtpd_milters": f"inet:127.0.0.1:{self.dkim.port}",
            "non_smtpd_milters": "$smtpd_milters",
        })
        self.lab.start()
        self.root = self.lab.tmp
        self.target = install.Target.make(self.root, "/etc/spamassassin", "/etc/postfix")
        self.target.sa_dir.mkdir(parents=True)  # SpamAssassin as Debian installs it: its .pre files
        for pre in engines.stock_pre_files():
            shutil.copy(pre, self.target.sa_dir / pre.name)
        self.services = svc.Commands({MILTER: [sys.executable, "-m", "bouncegen", "milter", "--config",
                                               str(self.target.milter_conf), "--log", "stderr"]},
                                     self.root / "services")
        self.milter_port = free_port()
        self.host_main_cf = (self.target.pf_dir / "main.cf").read_text()

    def inventory(self, *, port: int | None = None, spamd: int | None = None) -> Path:
        exe = shutil.which("bouncegen") or str(Path(sys.executable).parent / "bouncegen")
        path = self.tmp / "site.toml"
        path.write_text(HOST_INVENTORY + MILTER_TABLE.format(
            port=port or self.milter_port, spamd=spamd or self.lab.spamd.port, exe=exe))
        return path

    def install(self, inv: Path, said: list[str] | None = None) -> bool:
        return install.install(inv, self.target, services=self.services, say=(said if said is not None else []).append,
                               backup_dir=self.tmp / "backups", health_deadline=20)

    def milter_log(self) -> str:
        try:
            return (self.root / "services" / f"{MILTER}.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        try:
            self.services.stop_all()
            self.lab.stop()
        finally:
            self.dkim.stop()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    _need_engines()
    h = Host(tmp_path_factory.mktemp("host"))
    try:
        yield h
    finally:
        h.stop()


# -- clients ----------------------------------------------------------------------------------
def deliver(host, message: bytes, sender: str = "", who=FOREIGN) -> tuple[int, bytes]:
    """One SMTP transaction as the foreign MX WHO (XCLIENT); HOST is a Host or a PostfixLab."""
    lab = getattr(host, "lab", host)
    with lab.smtp() as s:
        s.ehlo()
        addr, name = who
        code, text = s.docmd("XCLIENT", f"ADDR={addr} NAME={name} HELO={name}")
        assert code == 220, text
        s.ehlo(name)
        code, text = s.mail(sender)
        if code != 250:
            return code, text
        code, text = s.rcpt(ALICE)
        if code != 250:
            return code, text
        try:
            return s.data(message)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error


def etc_snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "etc").rglob("*")) if p.is_file()}


# -- the health gate ----------------------------------------------------------------------------
@pytest.mark.parametrize("why", ["port taken", "spamd missing"])
def test_milter_that_cannot_start_is_never_wired(host, why):
    before = etc_snapshot(host.root)
    busy = None
    if why == "port taken":
        import socket
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        inv = host.inventory(port=busy.getsockname()[1])
    else:
        inv = host.inventory(spamd=free_port())
    try:
        with pytest.raises(LintError) as exc:
            host.install(inv)
    finally:
        if busy is not None:
            busy.close()
    lines = exc.value.problems
    assert len(lines) == 1 and lines[0].startswith("the milter did not come up, Postfix was not wired to it"), lines
    assert ("milter at inet:127.0.0.1:" if why == "port taken" else "spamd at 127.0.0.1:") in lines[0]
    assert etc_snapshot(host.root) == before, "every file as it was"
    assert host.services.pid(MILTER) is None, "the milter that did not pass its check is stopped"
    # Mail still flows, through OpenDKIM alone.
    n = len(host.lab.delivered(ALICE))
    assert deliver(host, samples.ordinary(41), "grace@foreign.test")[0] == 250
    assert wait_for(lambda: len(host.lab.delivered(ALICE)) == n + 1)


# -- installed beside OpenDKIM -------------------------------------------------------------------
def test_install_beside_opendkim(host):
    said: list[str] = []
    assert host.install(host.inventory(), said)
    assert any(line.startswith("OK: ") and "negotiated" in line for line in said), said
    assert "postfix reload: done" in said
    main = (host.target.pf_dir / "main.cf").read_text()
    before, after = host.host_main_cf.splitlines(), main.splitlines()
    changed = [l for l in after if l not in before and l and not l.startswith("#")]
    removed = [l for l in before if l not in after]
    assert removed == [f"smtpd_milters = inet:127.0.0.1:{host.dkim.port}"], removed
    assert f"smtpd_milters = inet:127.0.0.1:{host.dkim.port}, {{ inet:127.0.0.1:{host.milter_port}, " \
           "default_action=tempfail, connect_timeout=10s, command_timeout=10s, content_timeout=15s }" in changed
    assert not [l for l in changed if l.startswith(("milter_", "non_smtpd_milters"))], changed
    for line in ("milter_default_action = accept", "non_smtpd_milters = $smtpd_milters"):
        assert line in after


def test_backscatter_refused_by_bouncegen(host):
    code, text = deliver(host, samples.forged_dsn(42))
    assert code == 550 and b"backscatter" in text.lower(), (code, text, host.milter_log()[-800:])
    assert re.search(r"^\w+: client=mx\.foreign\.test\[203\.0\.113\.7\], verdict=reject, points=\d+\.\d, "
                     r"rules=BG_\w+.*, ms=\d+", host.milter_log(), re.M), host.milter_log()[-800:]
    n = len(host.lab.delivered(ALICE))
    assert deliver(host, samples.ordinary(42), "grace@foreign.test")[0] == 250
    assert wait_for(lambda: len(host.lab.delivered(ALICE)) == n + 1)


def test_local_submission_signed_by_opendkim_and_not_judged(host):
    """sendmail(1) -> postdrop -> pickup -> cleanup -> non_smtpd_milters (= $smtpd_milters: both
    milters): OpenDKIM signs it; bouncegen's milter accepts it unjudged (reason=local)."""
    msg = (b"From: Alice <alice@example.org>\nTo: Bob <bob@example.org>\nSubject: local test\n"
           b"Message-ID: <local-1@example.org>\n\nUndelivered mail returned to sender? No, just a note.\n")
    proc = subprocess.run([engines.require("sendmail"), "-C", str(host.target.pf_dir), "-f", ALICE, "-i",
                           "bob@example.org"], input=msg, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert wait_for(lambda: host.lab.delivered("bob@example.org"), 30), host.lab.maillog()[-2000:]
    delivered = host.lab.delivered("bob@example.org")[-1].read_bytes()
    assert b"DKIM-Signature:" in delivered and b"d=example.org" in delivered, delivered[:800]
    qid = re.search(rb"with ESMTP id (\w+)|id (\w+)", delivered)
    local = [l for l in host.milter_log().splitlines() if "client=localhost[127.0.0.1], verdict=accept, reason=local" in l]
    assert local, host.milter_log()[-800:]
    assert not [l for l in host.milter_log().splitlines() if "localhost[127.0.0.1]" in l and "points=" in l]
    assert qid


# -- fault drills: nothing lost, nothing accepted unchecked --------------------------------------
def drill(host: Host, fault, n: int = 12) -> dict:
    """Send N messages (every third one backscatter) one after the other, each retried while it
    gets a 4xx or the connection breaks; FAULT() runs in the main thread while they go. Returns
    what happened; the caller asserts."""
    messages = [(samples.forged_dsn(100 + i), "", 5) if i % 3 == 0 else
                (samples.ordinary(100 + i), "grace@foreign.test", 2) for i in range(n)]
    result = {"final": [], "tempfails": 0, "wrong": []}
    started = threading.Event()
    delivered_before = len(host.lab.delivered(ALICE))

    def sender():
        for i, (message, sender_addr, want) in enumerate(messages):
            if i == 2:
                started.set()
            deadline = time.monotonic() + 90
            while True:
                try:
                    code, text = deliver(host, message, sender_addr)
                except (OSError, smtplib.SMTPException):
                    code, text = 421, b"connection lost"
                if code // 100 == 4 and time.monotonic() < deadline:
                    result["tempfails"] += 1
                    time.sleep(0.3)
                    continue
                break
            result["final"].append(code)
            if code // 100 != want:
                result["wrong"].append((i, code, text))
            time.sleep(0.1)

    t = threading.Thread(target=sender)
    t.start()
    started.wait(60)
    try:
        fault()
    finally:
        t.join(180)
    result["legit"] = sum(1 for _, _, want in messages if want == 2)
    assert wait_for(lambda: len(host.lab.delivered(ALICE)) - delivered_before >= result["legit"], 30)
    result["delivered"] = len(host.lab.delivered(ALICE)) - delivered_before
    return result


def _restart_milter(host: Host) -> None:
    host.services.restart(MILTER)
    health.wait_ready(host.target.milter_conf, 20)


def test_drill_milter_killed(host):
    def fault():
        os.kill(host.services.pid(MILTER), 9)
        time.sleep(2)  # RestartSec=2s in the unit
        _restart_milter(host)

    r = drill(host, fault)
    assert r["wrong"] == [] and r["tempfails"] >= 1, r
    assert r["delivered"] == r["legit"], r


def test_drill_spamd_stopped(host):
    def fault():
        host.lab.stop_spamd()
        time.sleep(2)
        host.lab.spamd = Spamd(host.lab.rendered / "spamassassin", children=2).start()
        conf = host.target.milter_conf
        conf.write_text(re.sub(r'(?m)^spamd = ".*"$', f'spamd = "127.0.0.1:{host.lab.spamd.port}"', conf.read_text()))
        _restart_milter(host)

    r = drill(host, fault)
    assert r["wrong"] == [] and r["tempfails"] >= 1, r
    assert r["delivered"] == r["legit"], r
    assert "verdict=tempfail, reason=spamd at 127.0.0.1:" in host.milter_log()


def test_drill_postfix_reloaded(host):
    def fault():
        for _ in range(2):
            proc = subprocess.run([engines.require("postfix"), "-c", str(host.target.pf_dir), "reload"],
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr
            time.sleep(0.5)

    r = drill(host, fault)
    assert r["wrong"] == [], r
    assert r["delivered"] == r["legit"], r


def _sendmail(host: Host, n: int) -> None:
    msg = (f"From: Alice <alice@example.org>\nTo: Bob <bob@example.org>\nSubject: local {n}\n"
           f"Message-ID: <local-{n}@example.org>\n\nA note.\n").encode()
    proc = subprocess.run([engines.require("sendmail"), "-C", str(host.target.pf_dir), "-f", ALICE, "-i",
                           "bob@example.org"], input=msg, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_local_mail_waits_while_the_milter_is_down(host):
    """With non_smtpd_milters = $smtpd_milters, local mail passes bouncegen's entry too: while the
    milter is down it is not lost and not let through unchecked by bouncegen's entry; it waits
    in the maildrop queue and goes out when the milter is back (the next pickup scan)."""
    before = len(host.lab.delivered("bob@example.org"))
    host.services.stop(MILTER)
    try:
        _sendmail(host, 2)
        assert not wait_for(lambda: len(host.lab.delivered("bob@example.org")) > before, 4)
        assert any((host.lab.spool / "maildrop").iterdir()), "kept in the maildrop queue"
    finally:
        _restart_milter(host)
    _sendmail(host, 3)  # wakes pickup, which takes the whole maildrop queue again
    assert wait_for(lambda: len(host.lab.delivered("bob@example.org")) == before + 2, 90), host.lab.maillog()[-1500:]


# -- uninstall --------------------------------------------------------------------------------
def test_uninstall_gives_the_host_back(host):
    said: list[str] = []
    assert install.uninstall(host.target, services=host.services, say=said.append, backup_dir=host.tmp / "backups")
    assert (host.target.pf_dir / "main.cf").read_text() == host.host_main_cf
    assert host.services.pid(MILTER) is None
    assert not host.target.etc_dir.exists() and not host.target.maps_dir.exists()
    assert not (host.target.units_dir / MILTER).exists()
    # Postfix was reloaded: the backscatter now passes (only OpenDKIM is asked), nothing 4xx.
    assert deliver(host, samples.forged_dsn(43))[0] == 250


# -- a unix socket in Postfix's queue directory, smtpd chrooted ----------------------------------
def test_unix_socket_with_a_chrooted_smtpd(tmp_path, monkeypatch):
    """The Debian layout: smtpd chrooted in the queue directory, the milter's socket inside it.
    The rendered smtpd_milters entry names the socket relative to the queue directory (the lab's
    queue directory stands in for /var/spool/postfix), which a chrooted smtpd resolves."""
    _need_engines()
    from bouncegen.renderer import render
    inv_path = tmp_path / "site.toml"
    inv_path.write_text(HOST_INVENTORY)
    lab = PostfixLab(inventory.load(inv_path), milter_unix_socket=True, chroot_smtpd=True)
    monkeypatch.setattr(render, "POSTFIX_QUEUE_DIR", str(lab.spool))
    with lab:
        main = (lab.conf / "main.cf").read_text()
        assert "smtpd_milters = { unix:bouncegen/milter.sock, default_action=tempfail" in main
        assert "127.0.0.1:%d inet n - y - " % lab.port in (lab.conf / "master.cf").read_text()
        assert health.check(lab.milter_conf).startswith("OK: ")
        code, text = deliver(lab, samples.forged_dsn(51))
        assert code == 550 and b"backscatter" in text.lower(), (code, text, lab.maillog()[-1500:])
        assert deliver(lab, samples.ordinary(51), "grace@foreign.test")[0] == 250
