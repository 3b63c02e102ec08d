"""An MX host on a booted Debian 12 (generator/lab/hosts.py): systemd as PID 1 starts, supervises
and restarts bouncegen's units, driven only as an admin would.

The container gets Debian's spamassassin, spamd, postfix, postfix-pcre and libdbd-sqlite3-perl,
bouncegen by ``apt install ./bouncegen_*.deb`` (built by make deb's script; its dependencies are
in the cached image), the layout docs/ledger.md describes (/var/lib/bouncegen 2770 root:bouncegen
from the package, the SQLite ledger 0660, the key 0640), then
``bouncegen render`` + ``bouncegen install --reload``. From the lab's own network namespace, over
SMTP on port 25: a forged auto-reply is refused with 550 in the session, a reply to mail the
ledger recorded is accepted, a SAV callout gets 250, ordinary mail is delivered; nothing logs
BG_LEDGER_UNAVAIL (issue 21: the unit's sandbox hid the ledger from spamd). Then
``systemctl kill -s KILL bouncegen-milter``: systemd restarts it and mail during the gap gets 4xx,
never 5xx, never an unchecked accept; with the issue-21 sandbox put back by a drop-in, the health
check fails with one line naming the cause and ``bouncegen install`` refuses to wire Postfix; and
``bouncegen uninstall`` leaves main.cf and the unit list as they were.

The tests of this module run in order on one booted host (module fixture); the container is
halted by the PID of its nspawn and its overlay, namespaces and veths removed at the end.
"""

from __future__ import annotations

import smtplib
import time

import pytest

from bouncegen.lab import hosts
from bouncegen.lab.site import MX1, ONE_RELAY, example_site
from support import ROOT, auto_reply, need_hosts

pytestmark = [pytest.mark.smtp, pytest.mark.slow]

ALICE = "alice@example.org"
RECORDED = "<20261201.order-17@example.org>"
UNRECORDED = "<20261201.forged-99@example.org>"
MILTER_CONF = "/etc/bouncegen/bouncegen-milter.conf"
SITE = "/etc/bouncegen/site.toml"
DROPIN = "/etc/systemd/system/bouncegen-spamd.service.d/issue21.conf"


def ordinary(n: int) -> bytes:
    return (f"From: Carol <carol@remote.test>\r\nTo: {ALICE}\r\nSubject: lunch {n}\r\n"
            f"Date: Tue, 01 Dec 2026 12:00:00 +0000\r\nMessage-ID: <lunch.{n}.{time.time_ns()}@remote.test>\r\n"
            "\r\nLunch on Thursday?\r\n").encode()


@pytest.fixture(scope="module")
def mx(tmp_path_factory):
    need_hosts()
    t0 = time.monotonic()
    deb = hosts.build_deb(ROOT, tmp_path_factory.mktemp("deb"))
    root = hosts.image(hosts.MX_PACKAGES + hosts.deb_depends(deb))
    t1 = time.monotonic()
    with hosts.Lab() as lab:
        host = lab.host("mx1", root)
        host.timings = {"deb+image": t1 - t0, "boot": time.monotonic() - t1}
        exe = host.install_deb(deb)
        # The host as its admin found it: Postfix an Internet Site for example.org, a user.
        host.run(["postconf", "-e", "myhostname = mx1.example.org", "mydestination = example.org, localhost",
                  "inet_interfaces = all", "inet_protocols = ipv4"])
        host.run(["useradd", "-m", "alice"])
        host.run(["systemctl", "restart", "postfix"])
        host.before = {"main.cf": host.read("/etc/postfix/main.cf"), "units": _unit_list(host)}
        # The package made the user and /var/lib/bouncegen (2770 root:bouncegen); the rest of
        # docs/ledger.md's layout as an admin types it.
        assert host.run(["stat", "-c", "%a %U:%G", "/var/lib/bouncegen"]).stdout.strip() == "2770 root:bouncegen"
        host.run(["install", "-d", "-m", "0755", "/etc/bouncegen"])
        host.put(SITE, example_site(relay=ONE_RELAY, mx=MX1, policy={"dsn": "spamassassin"},
                                    milter={"bouncegen": exe, "timeout": 10},
                                    ledger={"store": "sqlite:/var/lib/bouncegen/ledger.db",
                                            "key_file": "/etc/bouncegen/ledger.key"}))
        host.run(["bouncegen", "ledger", "init", SITE])
        host.put("/var/tmp/relay.log", f"Dec  1 09:59:00 smtp1 postfix/cleanup[4711]: 4Qk2Xy1zS9z9tZ: message-id={RECORDED}\n")
        host.run(["bouncegen", "ledger", "import", SITE, "/var/tmp/relay.log"])
        host.check_before = host.run(["bouncegen", "ledger", "check", SITE], check=False)
        host.run(["chown", "bouncegen:bouncegen", "/etc/bouncegen/ledger.key"])
        host.run(["chmod", "0640", "/etc/bouncegen/ledger.key"])
        host.run("chmod 0660 /var/lib/bouncegen/ledger.db*")
        host.run(["adduser", "--quiet", "debian-spamd", "bouncegen"])
        host.check_after = host.run(["bouncegen", "ledger", "check", SITE], check=False)
        host.run(["bouncegen", "render", SITE, "-o", "/root/build"])
        host.install = host.run(["bouncegen", "install", "/root/build", "--reload"], check=False)
        host.timings["install"] = time.monotonic() - t1 - host.timings["boot"]
        yield host


def _unit_list(host) -> str:
    return host.run(["systemctl", "list-unit-files", "--no-legend", "--no-pager"]).stdout


def smtp(host, message: bytes | None, *, sender: str = "", rcpt: str = ALICE) -> tuple[int, str]:
    """One SMTP session from the lab's namespace to HOST:25: the first reply that is not 250
    (connect, MAIL, RCPT) or the reply to DATA; without a message, the RCPT reply (SAV)."""
    def session() -> tuple[int, str]:
        with smtplib.SMTP(timeout=60) as s:
            code, text = s.connect(host.address, 25)
            if code != 220:
                return code, text.decode()
            code, text = s.ehlo("mx.remote.test")
            if code != 250:
                return code, text.decode()
            code, text = s.mail(sender)
            if code != 250:
                return code, text.decode()
            code, text = s.rcpt(rcpt)
            if code != 250 or message is None:
                return code, text.decode()
            try:
                code, text = s.data(message)
            except smtplib.SMTPDataError as exc:  # a 4xx/5xx to the DATA command itself
                return exc.smtp_code, exc.smtp_error.decode()
            return code, text.decode()
    try:
        return host.lab.call(session)
    except smtplib.SMTPServerDisconnected as exc:
        return 0, str(exc)
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code, exc.smtp_error.decode()


def test_installed_with_systemd(mx):
    assert mx.install.returncode == 0, mx.install.stdout + mx.install.stderr
    assert "looks up the ledger" in mx.install.stdout, mx.install.stdout
    for unit in ("bouncegen-spamd", "bouncegen-milter", "postfix"):
        assert mx.run(["systemctl", "is-active", unit], check=False).stdout.strip() == "active", unit
        assert mx.run(["systemctl", "is-enabled", unit], check=False).stdout.strip() == "enabled", unit
    ok = mx.run(["bouncegen", "milter", "--check", "--config", MILTER_CONF], check=False)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: ") and "looks up the ledger" in ok.stdout, ok


def test_ledger_check_names_each_readers_problem_then_passes(mx):
    """As `ledger init` leaves them (key 0600 root, database 0644), bouncegen and debian-spamd
    cannot read the ledger: one line each with the command; after the documented rights, none."""
    before = mx.check_before
    assert before.returncode == 1, before
    lines = before.stderr.strip().splitlines()
    assert lines and all(ln.startswith("error: ") for ln in lines), lines
    assert any(ln.startswith("error: bouncegen: cannot read the key file /etc/bouncegen/ledger.key") for ln in lines), lines
    assert any(ln.startswith("error: debian-spamd: cannot create files in the ledger's directory")
               and "adduser debian-spamd bouncegen" in ln for ln in lines), lines
    after = mx.check_after
    assert after.returncode == 0 and after.stderr == "", after
    assert "ok: bouncegen: reads the key and looks up the ledger" in after.stdout
    assert "ok: debian-spamd: reads the key and looks up the ledger" in after.stdout


def test_backscatter_refused_replies_to_our_mail_accepted(mx):
    code, text = smtp(mx, auto_reply(UNRECORDED, 1))
    assert code == 550 and "backscatter" in text, (code, text, mx.journal("bouncegen-milter")[-2000:])
    code, text = smtp(mx, auto_reply(RECORDED, 2))
    assert code == 250, (code, text, mx.journal("bouncegen-milter")[-2000:])


def test_sav_callout_and_ordinary_mail(mx):
    assert smtp(mx, None)[0] == 250  # MAIL FROM:<> RCPT TO:<alice@example.org>
    code, text = smtp(mx, ordinary(1), sender="carol@remote.test")
    assert code == 250, text
    deadline = time.monotonic() + 30
    while "Subject: lunch 1" not in (mx.path("/var/mail/alice").read_text(errors="replace")
                                     if mx.path("/var/mail/alice").exists() else ""):
        assert time.monotonic() < deadline, mx.journal("postfix@-")[-2000:]
        time.sleep(0.2)


def test_no_ledger_unavailable_in_the_journal(mx):
    journal = mx.journal()
    assert "BG_LEDGER_UNAVAIL" not in journal and "unavailable" not in mx.journal("bouncegen-spamd"), \
        [ln for ln in journal.splitlines() if "LEDGER" in ln or "unavailable" in ln][:5]
    assert "bouncegen-milter" in journal  # the milter logs its decisions there


def test_killed_milter_is_restarted_and_the_gap_is_4xx(mx):
    pid = mx.run(["systemctl", "show", "-p", "MainPID", "--value", "bouncegen-milter"]).stdout.strip()
    mx.run(["systemctl", "kill", "-s", "KILL", "bouncegen-milter"])
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        code, text = smtp(mx, auto_reply(UNRECORDED, 3))
        seen.append(code)
        assert code != 250, ("an unchecked accept", seen)
        assert code == 550 or 400 <= code < 500, (code, text, seen)
        if code == 550:
            break
        time.sleep(0.1)
    assert seen[0] // 100 == 4 and seen[-1] == 550, seen  # the gap was 4xx; refused again once back
    new = mx.run(["systemctl", "show", "-p", "MainPID", "--value", "bouncegen-milter"]).stdout.strip()
    restarts = mx.run(["systemctl", "show", "-p", "NRestarts", "--value", "bouncegen-milter"]).stdout.strip()
    assert new != pid and new != "0" and int(restarts) >= 1, (pid, new, restarts)
    code, _ = smtp(mx, ordinary(2), sender="carol@remote.test")
    assert code == 250


def test_health_check_fails_in_one_line_when_spamd_cannot_open_the_ledger(mx):
    """Issue 21 put back: a drop-in with the old sandbox (only spamd's own directory writable).
    milter --check fails with one line naming the cause; install refuses to wire Postfix."""
    mx.put(DROPIN, "[Service]\nReadWritePaths=\nReadWritePaths=/var/lib/bouncegen-spamd\n")
    try:
        mx.run(["systemctl", "daemon-reload"])
        # As a ledger is after its last connection closed: checkpointed, no -wal or -shm beside it
        # (with them present a read-only opener still gets through, and the bug hides).
        mx.run(["systemctl", "stop", "bouncegen-milter", "bouncegen-spamd"])
        mx.run(["sqlite3", "/var/lib/bouncegen/ledger.db", "PRAGMA wal_checkpoint(TRUNCATE);"])
        assert not mx.path("/var/lib/bouncegen/ledger.db-shm").exists()
        mx.run(["systemctl", "start", "bouncegen-spamd", "bouncegen-milter"])
        deadline = time.monotonic() + 60
        while True:  # spamd takes a few seconds to load the rules and listen again
            proc = mx.run(["bouncegen", "milter", "--check", "--config", MILTER_CONF], check=False)
            if "Connection refused" not in proc.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1, lines
        assert "cannot open the sent-mail ledger" in lines[0] and "unable to open database file" in lines[0], lines
        check = mx.run(["bouncegen", "ledger", "check", SITE], check=False)
        assert check.returncode == 1 and "ReadWritePaths=" in check.stderr, check
        # Postfix unwired, then an install against the dead ledger: refused, Postfix left unwired.
        mx.run(["bouncegen", "uninstall", "--reload"], check=False)
        unwired = mx.read("/etc/postfix/main.cf")
        inst = mx.run(["bouncegen", "install", "/root/build", "--reload"], check=False)
        assert inst.returncode == 1 and "cannot open the sent-mail ledger" in inst.stderr, inst
        assert mx.read("/etc/postfix/main.cf") == unwired
    finally:
        mx.run(["rm", "-rf", DROPIN.rsplit("/", 1)[0]])
        mx.run(["systemctl", "daemon-reload"])
    inst = mx.run(["bouncegen", "install", "/root/build", "--reload"], check=False)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    assert smtp(mx, auto_reply(UNRECORDED, 4))[0] == 550


def test_uninstall_leaves_main_cf_and_units_as_before(mx):
    proc = mx.run(["bouncegen", "uninstall", "--reload"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert mx.read("/etc/postfix/main.cf") == mx.before["main.cf"]
    assert _unit_list(mx) == mx.before["units"]
    assert mx.run(["systemctl", "is-active", "bouncegen-milter"], check=False).stdout.strip() in ("inactive", "unknown")
    print("lab timings (s):", {k: round(v, 1) for k, v in mx.timings.items()})
