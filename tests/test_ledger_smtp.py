"""The sent-mail ledger end to end on the private Postfix lab (generator/lab/postfix_lab.py), with
the real spamd, bouncegen's milter in both roles, and SQLite or a real redis-server.

One lab plays both sides: mail submitted with sendmail(1) goes through pickup and cleanup to
non_smtpd_milters = the relay-role milter (the way out on a relay), which records its Message-ID;
mail from foreign clients (XCLIENT) goes through smtpd_milters = the MX milter. A bounce and an
auto-reply of a recorded message are accepted in the session; the same shapes about an
unrecorded ID, or an ID forged in our domain, are refused with 550. With the store unavailable
(SQLite locked by a transaction this test holds, Redis stopped mid-run) what would be refused is
a 451, never a 5xx, and the relay still sends its mail, unrecorded. Every process started here is
stopped by its PID (PostfixLab.stop, RedisServer.stop).
"""

from __future__ import annotations

import email
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from bouncegen.engines.spamd import Spamd
from bouncegen.ledger import create_key_file, load_key, open_store
from support import RedisServer, auto_reply, give_to_spamd, relay_lab, spamd_dir
from test_smtp import _need_engines, deliver

pytestmark = [pytest.mark.smtp, pytest.mark.slow]


BOB = "bob@example.org"


def bounce(message_id: str, n: int) -> bytes:
    """A Postfix DSN returning only the original's headers: no hop of ours, the Message-ID is the
    only evidence."""
    return f"""\
Return-Path: <>
Date: Mon, 30 Nov 2026 10:00:{n:02d} +0100
From: MAILER-DAEMON@mx.remote.test (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: alice@example.org
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B{n}"
Message-Id: <bounce.{n}.{time.time_ns()}@mx.remote.test>

--B{n}
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.remote.test.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@remote.test>: unknown user: "nobody"

--B{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.test

Final-Recipient: rfc822; nobody@remote.test
Action: failed
Status: 5.1.1
Diagnostic-Code: X-Postfix; unknown user: "nobody"

--B{n}
Content-Type: text/rfc822-headers

From: Alice <alice@example.org>
To: nobody@remote.test
Subject: Order {n}
Date: Mon, 30 Nov 2026 09:59:00 +0100
Message-ID: {message_id}

--B{n}--
""".replace("\n", "\r\n").encode()


class LedgerLab:
    def __init__(self, kind: str, workdir: Path):
        self.kind = kind
        self.dir = spamd_dir("bouncegen-ledger-lab-")
        self.key_file = self.dir / "ledger.key"
        create_key_file(self.key_file)
        give_to_spamd(self.key_file)
        self.redis = None
        if kind == "redis":
            self.redis = RedisServer(workdir / "redis", password="lab-secret").start()
            store = self.redis.url()
        else:
            store = f"sqlite:{self.dir / 'ledger.db'}"
        self.lab = relay_lab(workdir, "accept", ledger={"store": store, "key_file": str(self.key_file), "days": 30})
        self.inv = self.lab.inv

    def start(self) -> "LedgerLab":
        try:
            self.lab.start()
            if self.kind == "sqlite":  # the table, before the MX's first lookup
                with open_store(self.inv.ledger.store, load_key(self.key_file)):
                    pass
                give_to_spamd(*self.dir.glob("ledger.db*"))
            self.start_relay_milter()
        except BaseException:
            self.stop()
            raise
        return self

    def start_relay_milter(self) -> None:
        # The relay milter (root here) and spamd (nobody) share the SQLite file: the -wal and
        # -shm files the writer creates must stay writable for the reader (docs/ledger.md: one
        # group and UMask=0007 in deployment).
        self.lab.start_relay_milter(umask=0)

    def lock_sqlite(self) -> sqlite3.Connection:
        """Hold an exclusive lock on the SQLite ledger. In WAL mode every open connection keeps a
        shared lock, so the readers and the writer are stopped first and started again with the
        lock held: a new spamd (and MX milter) and a new relay milter, all locked out."""
        self.lab.stop_relay_milter()
        self.lab.stop_milter()
        self.lab.stop_spamd()
        db = sqlite3.connect(self.dir / "ledger.db", isolation_level=None)
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("BEGIN EXCLUSIVE")
        db.execute("INSERT INTO sent VALUES ('held', 1)")
        self.lab.spamd = Spamd(self.lab.rendered / "spamassassin", children=self.lab.spamd_children).start()
        self.lab._render(spamd_port=self.lab.spamd.port)
        self.lab.start_milter()
        self.start_relay_milter()
        return db

    def stop(self) -> None:
        try:
            self.lab.stop()
        finally:
            if self.redis is not None:
                self.redis.stop()
            shutil.rmtree(self.dir, ignore_errors=True)

    def send_out(self, subject: str) -> str:
        """Submit a message without Message-ID through sendmail(1); return the Message-ID Postfix
        gave it, as delivered."""
        before = set(self.lab.delivered(BOB))
        msg = f"From: alice@example.org\nTo: {BOB}\nSubject: {subject}\n\nhello\n".encode()
        proc = self.lab.sendmail(msg, "alice@example.org", BOB)
        assert proc.returncode == 0, proc.stderr
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = set(self.lab.delivered(BOB)) - before
            for f in new:
                m = email.message_from_bytes(f.read_bytes())
                if m["Subject"] == subject:
                    return m["Message-ID"].strip()
            time.sleep(0.1)
        raise AssertionError(f"not delivered: {subject}\n{self.lab.maillog()[-3000:]}")


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def ledger_lab(request, tmp_path_factory):
    _need_engines()
    lab = LedgerLab(request.param, tmp_path_factory.mktemp(f"ledger-{request.param}")).start()
    yield lab
    lab.stop()


def test_relay_role_records_what_leaves_and_the_mx_accepts_its_answers(ledger_lab):
    mid = ledger_lab.send_out("ledger recorded")
    assert mid.startswith("<") and mid.endswith("@mx1.example.org>")  # added by cleanup
    assert f"recorded message-id={mid}" in ledger_lab.lab.relay_milter_log()
    code, text = deliver(ledger_lab.lab, bounce(mid, 1))
    assert code == 250, (code, text, ledger_lab.lab.milter_log()[-2000:])
    code, text = deliver(ledger_lab.lab, auto_reply(mid, 2))
    assert code == 250, (code, text, ledger_lab.lab.milter_log()[-2000:])


@pytest.mark.parametrize("forged", ["<20261130095900.f0f0f0f0@example.org>", "<000a01dc5c3e$4b2d9e80$6401a8c0@example.org>",
                                    "<1795431200.51515.qmail@example.org>"])
def test_unrecorded_and_forged_ids_are_refused(ledger_lab, forged):
    code, text = deliver(ledger_lab.lab, bounce(forged, 3))
    assert code == 550, (code, text)
    code, text = deliver(ledger_lab.lab, auto_reply(forged, 4))
    assert code == 550, (code, text)


def test_store_unavailable_is_451_never_5xx_and_the_relay_still_sends(ledger_lab):
    mid = ledger_lab.send_out("recorded before the outage")
    held = None
    if ledger_lab.kind == "sqlite":
        held = ledger_lab.lock_sqlite()
    else:
        ledger_lab.redis.stop()
    try:
        for n, message in enumerate([bounce("<20261130.never.sent@example.org>", 5), bounce(mid, 6),
                                     auto_reply("<20261130.never.sent@example.org>", 7)]):
            code, text = deliver(ledger_lab.lab, message)
            assert code == 451, (n, code, text, ledger_lab.lab.milter_log()[-2000:])
        # Outbound mail flows on, unrecorded; the failure is logged once, not per message.
        for i in range(3):
            ledger_lab.send_out(f"sent during the outage {i}")
        log = ledger_lab.lab.relay_milter_log()
        assert log.count("ledger: not recorded") == 1, log[-3000:]
        mx_log = ledger_lab.lab.milter_log()
        assert mx_log.count("ledger unavailable") == 1, mx_log[-3000:]
        # Mail that needs no ledger is still judged: an ordinary message passes.
        code, _ = deliver(ledger_lab.lab, b"From: grace@foreign.test\r\nTo: alice@example.org\r\n"
                          b"Subject: lunch\r\nMessage-ID: <l.1@foreign.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0100\r\n\r\nlunch?\r\n",
                          sender="grace@foreign.test")
        assert code == 250
    finally:
        if held is not None:
            held.execute("ROLLBACK")
            held.close()
