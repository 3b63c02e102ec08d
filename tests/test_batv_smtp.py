"""BATV end to end on the private Postfix lab (generator/lab/postfix_lab.py), with the real spamd
and bouncegen's milter in both roles (docs/batv.md).

One lab plays both sides: mail submitted with sendmail(1) goes through pickup and cleanup to
non_smtpd_milters = the relay-role milter, which signs the envelope sender; mail from foreign
clients (XCLIENT) goes through smtpd_milters = the MX milter, which checks tags at RCPT and
refuses null-sender mail to unsigned addresses at the DATA command. The bounce replayed to the
MX is the one Postfix itself wrote for a signed message that could not be delivered. Every
process started here is stopped by its PID (PostfixLab.stop).
"""

from __future__ import annotations

import email
import os
import time
from pathlib import Path

import pytest

from bouncegen import batv
from bouncegen.lab import mail as samples
from support import relay_lab
from test_smtp import ALICE, FOREIGN, _need_engines, client

pytestmark = [pytest.mark.smtp, pytest.mark.slow]

BOB = "bob@example.org"
DAY = 86400


class BatvLab:
    def __init__(self, workdir: Path):
        self.dir = workdir
        self.key_file = workdir / "batv.keys"
        batv.create_key_file(self.key_file)
        self.lab = relay_lab(workdir, "tempfail", batv={"domains": ["example.org"], "key_file": str(self.key_file),
                                                      "exempt_senders": ["lists@example.org"]})
        self.inv = self.lab.inv

    def start(self) -> "BatvLab":
        try:
            self.lab.start()
            self.lab.start_relay_milter()
        except BaseException:
            self.lab.stop()
            raise
        return self

    def wait_for(self, address: str, subject: str, before: set) -> email.message.Message:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for f in set(self.lab.delivered(address)) - before:
                m = email.message_from_bytes(f.read_bytes())
                if subject in (m["Subject"] or "") or subject in m.as_string():
                    return m
            time.sleep(0.1)
        raise AssertionError(f"not delivered to {address}: {subject}\n{self.lab.maillog()[-3000:]}")

    def send_out(self, sender: str, rcpt: str, subject: str, extra: str = "") -> email.message.Message:
        """Submit through the relay role (sendmail(1): pickup, cleanup, the relay milter) to one
        of the lab's mailboxes; the message as delivered."""
        before = set(self.lab.delivered(rcpt))
        msg = f"From: Alice <{sender}>\nTo: {rcpt}\nSubject: {subject}\n{extra}\nhello\n".encode()
        proc = self.lab.sendmail(msg, sender, rcpt)
        assert proc.returncode == 0, proc.stderr
        return self.wait_for(rcpt, subject, before)

    def scans(self) -> int:
        """Messages spamd has judged so far (its log's result lines)."""
        return self.lab.spamd.log.read_text(errors="replace").count("result:")


@pytest.fixture(scope="module")
def blab(tmp_path_factory):
    _need_engines()
    lab = BatvLab(tmp_path_factory.mktemp("batv")).start()
    yield lab
    lab.lab.stop()


def session(blab, who=FOREIGN):
    return client(blab.lab, who)


def sav(blab) -> tuple[int, int]:
    """A sender-verification callout: MAIL FROM:<>, RCPT TO:, QUIT."""
    s = session(blab)
    try:
        return s.mail("")[0], s.rcpt(ALICE)[0]
    finally:
        s.quit()


def test_postfix_takes_the_rendered_lines_with_the_data_event(blab):
    assert "protocol=6" in (blab.lab.conf / "main.cf").read_text()
    assert blab.lab.check() == ""  # postfix check: no warning about the map or the milter entry
    from bouncegen.milter import health

    assert "BATV keys 1" in health.check(blab.lab.milter_conf)


def test_relay_signs_the_envelope_sender_once_from_untouched(blab):
    m = blab.send_out(ALICE, BOB, "batv signed")
    rp = m["Return-Path"].strip("<> ")
    c = batv.check(rp, batv.load_keys(blab.key_file), 7)
    assert c.tagged and c.valid and c.plain == ALICE, rp
    assert m["From"] == f"Alice <{ALICE}>"
    assert f"as <{rp}>" in blab.lab.relay_milter_log()
    # already tagged: left as it is; exempt: never signed
    m = blab.send_out(rp, BOB, "batv already signed")
    assert m["Return-Path"].strip("<> ") == rp
    m = blab.send_out("lists@example.org", BOB, "batv exempt sender")
    assert m["Return-Path"].strip("<> ") == "lists@example.org"


def test_read_receipt_address_is_signed_and_its_receipt_accepted(blab):
    """A read receipt (RFC 8098) comes back with the null sender to Disposition-Notification-To:
    the relay signs our address there too, so the receipt reaches alice@, not a 550 at DATA."""
    m = blab.send_out(ALICE, BOB, "batv receipt please", extra=f"Disposition-Notification-To: Alice <{ALICE}>\n")
    dnt = m["Disposition-Notification-To"]
    tag = dnt[dnt.index("<") + 1:dnt.index(">")]
    assert dnt.startswith("Alice <prvs=") and batv.check(tag, batv.load_keys(blab.key_file), 7).valid, dnt
    before = set(blab.lab.delivered(ALICE))
    s = session(blab)
    try:
        assert s.mail("")[0] == 250 and s.rcpt(tag)[0] == 250
        code, text = s.data(samples.read_receipt(5))
    finally:
        s.quit()
    assert code == 250, (code, text)
    blab.lab.wait_queue_empty()
    assert len(set(blab.lab.delivered(ALICE)) - before) == 1


def test_real_bounce_of_signed_mail_is_delivered_to_the_plain_address(blab):
    """Postfix bounces a signed message (no such user); the bounce it wrote is then replayed to
    the MX by a foreign MTA, to the tagged address: 250, delivered to alice@, tag taken off."""
    before = set(blab.lab.delivered(ALICE))
    msg = f"From: Alice <{ALICE}>\nTo: nobody@example.org\nSubject: batv bounce me\n\nhello\n".encode()
    assert blab.lab.sendmail(msg, ALICE, "nobody@example.org").returncode == 0
    bounce = blab.wait_for(ALICE, "batv bounce me", before)
    tagged = bounce["X-Original-To"].strip()
    assert batv.check(tagged, batv.load_keys(blab.key_file), 7).valid, tagged
    raw = bounce.as_bytes().split(b"\n\n", 1)
    # The bounce as Postfix sent it: without the headers the delivery agent added here.
    head = b"\n".join(l for l in raw[0].split(b"\n") if not l.startswith((b"Return-Path:", b"Delivered-To:", b"X-Original-To:")))
    body = (head + b"\n\n" + raw[1]).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    body = body.replace(b"Subject: ", b"Subject: replayed ", 1)
    before = set(blab.lab.delivered(ALICE))
    s = session(blab)
    try:
        assert s.mail("")[0] == 250
        assert s.rcpt(tagged)[0] == 250
        code, text = s.data(body)
    finally:
        s.quit()
    assert code == 250, (code, text, blab.lab.milter_log()[-2000:])
    m = blab.wait_for(ALICE, "replayed", before)
    assert m["X-Original-To"].strip() == tagged and m["Delivered-To"].strip() == ALICE  # post-queue proof kept
    assert "batv: valid tag" in blab.lab.milter_log()
    assert not blab.lab.delivered("nobody@example.org")


def test_forged_null_sender_refused_at_data_no_body_sav_250(blab):
    assert sav(blab) == (250, 250)
    # The counter counts: ordinary mail from a foreign sender is judged by spamd as before.
    scans = blab.scans()
    s = session(blab)
    try:
        assert s.mail("grace@foreign.test")[0] == 250 and s.rcpt(BOB)[0] == 250
        assert s.data(samples.ordinary(3))[0] == 250
    finally:
        s.quit()
    assert blab.scans() == scans + 1
    blab.lab.wait_queue_empty()
    scans, delivered = blab.scans(), len(blab.lab.delivered(BOB))
    s = session(blab)
    try:
        assert s.mail("")[0] == 250
        assert s.rcpt(BOB)[0] == 250
        code, text = s.docmd("DATA")  # the transcript: 550 to the DATA command itself, never 354
        assert code == 550 and b"BATV" in text, (code, text)
        assert s.docmd("RSET")[0] == 250  # the session goes on; no body was ever sent
    finally:
        s.quit()
    assert "null sender to unsigned" in blab.lab.milter_log()
    assert sav(blab) == (250, 250)
    # A forged sample of each backscatter shape, likewise, at DATA.
    for kind, _make in samples.BACKSCATTER:
        s = session(blab)
        try:
            s.mail("")
            s.rcpt(BOB)
            assert s.docmd("DATA")[0] == 550, kind
        finally:
            s.quit()
    assert sav(blab) == (250, 250)
    blab.lab.wait_queue_empty()
    assert blab.scans() == scans, "spamd was asked"
    assert len(blab.lab.delivered(BOB)) == delivered


@pytest.mark.parametrize("how", ["tampered", "expired", "unknown-key"])
def test_bad_tags_get_550_at_rcpt(blab, how):
    keys = batv.load_keys(blab.key_file)
    tag = batv.sign(ALICE, keys, 7)
    if how == "tampered":
        tag = tag[:9] + ("0" if tag[9] != "0" else "1") + tag[10:]
    elif how == "expired":
        tag = batv.sign(ALICE, keys, 7, time.time() - 9 * DAY)
    else:
        tag = "prvs=7" + tag[6:]
    s = session(blab)
    try:
        assert s.mail("")[0] == 250
        code, text = s.rcpt(tag)
        assert code == 550 and b"BATV" in text, (code, text)
    finally:
        s.quit()


def test_rotation_keeps_yesterdays_tags_valid(blab):
    yesterday = batv.sign(ALICE, batv.load_keys(blab.key_file), 7, time.time() - DAY)
    batv.rotate_key_file(blab.key_file)
    today = batv.sign(ALICE, batv.load_keys(blab.key_file), 7)
    assert today[5] != yesterday[5]
    for tag in (yesterday, today):
        before = set(blab.lab.delivered(ALICE))
        s = session(blab)
        try:
            assert s.mail("")[0] == 250
            assert s.rcpt(tag)[0] == 250
            code, text = s.data(samples.dsn([], n=7))
        finally:
            s.quit()
        assert code == 250, (code, text)
        blab.lab.wait_queue_empty()
        assert len(set(blab.lab.delivered(ALICE)) - before) == 1
    m = blab.send_out(ALICE, BOB, "batv after rotation")
    assert m["Return-Path"].strip("<> ").startswith(f"prvs={today[5]}")  # the newest key signs


def test_unreadable_keys_are_4xx_never_5xx_and_relay_holds_mail(blab):
    tag = batv.sign(ALICE, batv.load_keys(blab.key_file), 7)
    moved = blab.key_file.with_name("batv.keys.away")
    os.rename(blab.key_file, moved)
    try:
        s = session(blab)
        try:
            assert s.mail("")[0] == 250
            code, _ = s.rcpt(tag)
            assert code == 451
            assert s.rcpt(BOB)[0] == 250
            code, _ = s.docmd("DATA")
            assert code == 451
        finally:
            s.quit()
        assert sav(blab) == (250, 250)
        from bouncegen.errors import BatvError
        from bouncegen.milter import health

        with pytest.raises(BatvError, match="cannot read the BATV keys"):  # bouncegen milter --check: exit 1
            health.check(blab.lab.milter_conf)
        # The relay does not send unsigned mail: it stays queued (deferred), nothing delivered.
        msg = b"From: alice@example.org\nTo: bob@example.org\nSubject: batv no key\n\nhello\n"
        blab.lab.sendmail(msg, ALICE, BOB)
        time.sleep(3)
        assert not any(b"batv no key" in f.read_bytes() for f in blab.lab.delivered(BOB))
    finally:
        os.rename(moved, blab.key_file)
