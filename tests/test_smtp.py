"""SMTP dialogues with a private Postfix, the real spamd and bouncegen's milter (lab/postfix_lab.py).

Every case runs for both dsn policies. The client is always 127.0.0.1; XCLIENT (granted to
127.0.0.1 in the lab only) makes Postfix, the milter and SpamAssassin see the client a real MX
would see: a foreign MX (203.0.113.7), our own relay (192.0.2.25), a host with a look-alike name.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from bouncegen.lab import mail as samples
from bouncegen.lab.postfix_lab import PostfixLab
from bouncegen.lab.site import FOREIGN, MX1, OUR_RELAY, example_site
from bouncegen.renderer import inventory
from support import ROOT, need_lab

pytestmark = [pytest.mark.smtp, pytest.mark.slow]


OUR_RELAY_BY_NAME = ("203.0.113.40", "mailout-3.example.net")  # a relay known by name only
ALICE = "alice@example.org"


def _need_engines():
    need_lab()


def make_inventory(tmp_path, dsn: str, timeout: int = 5):
    path = tmp_path / f"site-{dsn}.toml"
    path.write_text(example_site(mx=MX1, policy={"dsn": dsn}, milter={"timeout": timeout}))
    return inventory.load(path)


@pytest.fixture(scope="module", params=["reject", "spamassassin"])
def lab(request, tmp_path_factory):
    _need_engines()
    inv = make_inventory(tmp_path_factory.mktemp("inv"), request.param)
    with PostfixLab(inv) as lab:
        lab.policy = request.param
        yield lab


# -- clients ------------------------------------------------------------------------------------
def client(lab, who=FOREIGN, helo=None):
    s = lab.smtp()
    s.ehlo()
    addr, name = who
    code, text = s.docmd("XCLIENT", f"ADDR={addr} NAME={name} HELO={helo or name}")
    assert code == 220, text
    s.ehlo(helo or name)
    return s


def transaction(s, message: bytes, sender: str = "", rcpts=(ALICE,)) -> tuple[int, bytes]:
    code, text = s.mail(sender)
    assert code == 250, (code, text)
    for r in rcpts:
        code, text = s.rcpt(r)
        assert code == 250, (code, text)
    return s.data(message)


def deliver(lab, message, *, who=FOREIGN, sender="", helo=None) -> tuple[int, bytes]:
    s = client(lab, who, helo)
    try:
        return transaction(s, message, sender)
    finally:
        s.quit()


class Raw:
    """A raw SMTP client, for PIPELINING and CHUNKING (BDAT), which smtplib cannot speak."""

    def __init__(self, lab, who=FOREIGN):
        self.sock = socket.create_connection(("127.0.0.1", lab.port), timeout=60)
        self.file = self.sock.makefile("rb")
        assert self.reply()[0] == 220
        self.cmd(b"EHLO client.lab.invalid")
        addr, name = who
        assert self.cmd(f"XCLIENT ADDR={addr} NAME={name} HELO={name}".encode())[0] == 220
        code, text = self.cmd(f"EHLO {name}".encode())
        assert b"PIPELINING" in text and b"CHUNKING" in text

    def reply(self) -> tuple[int, bytes]:
        lines = []
        while True:
            line = self.file.readline()
            assert line, "server closed the connection"
            lines.append(line[4:].rstrip())
            if line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: bytes) -> tuple[int, bytes]:
        self.send(line + b"\r\n")
        return self.reply()

    def close(self):
        try:
            self.cmd(b"QUIT")
        finally:
            self.file.close()
            self.sock.close()


def dot_stuff(message: bytes) -> bytes:
    lines = message.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def settled(lab) -> int:
    """Alice's delivered count once earlier tests' mail has left the queue."""
    assert lab.wait_queue_empty() == 0
    return len(lab.delivered(ALICE))


def wait_delivered(lab, before: int, expect: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = len(lab.delivered(ALICE)) - before
        if n >= expect:
            return n
        time.sleep(0.05)
    return len(lab.delivered(ALICE)) - before


# -- the configuration -------------------------------------------------------------------------
def test_postfix_check_is_clean(lab):
    assert lab.check() == ""


# -- SAV callouts and recipients ---------------------------------------------------------------
def test_sav_callout(lab):
    s = client(lab)
    assert s.mail("")[0] == 250
    assert s.rcpt(ALICE)[0] == 250
    assert s.quit()[0] == 221


def test_unknown_user_550_at_rcpt(lab):
    s = client(lab)
    assert s.mail("")[0] == 250
    code, text = s.rcpt("nobody@example.org")
    assert code == 550, text
    s.quit()


@pytest.mark.parametrize("domain", ["example.org", "example.net"])
def test_postmaster_accepted(lab, domain):
    s = client(lab)
    assert s.mail("")[0] == 250
    assert s.rcpt(f"postmaster@{domain}")[0] == 250
    s.quit()


def test_multi_recipient_bounce_refused_at_data(lab):
    """<> reject_multi_recipient_bounce as an access-map result in smtpd_data_restrictions."""
    s = client(lab)
    assert s.mail("")[0] == 250
    assert s.rcpt(ALICE)[0] == 250
    assert s.rcpt("bob@example.org")[0] == 250
    code, text = s.docmd("DATA")
    assert code == 550 and b"Multi-recipient bounce" in text, (code, text)
    s.quit()


# -- verdicts at end of DATA -------------------------------------------------------------------
# (name, message, client, sender, expected first digit per policy {reject, spamassassin})
CASES = [
    ("backscatter-dsn", samples.forged_dsn(), FOREIGN, "", {"reject": 5, "spamassassin": 5}),
    ("dsn-quoting-relay-by-name", samples.dsn([samples.hop_submission()]), FOREIGN, "",
     {"reject": 5, "spamassassin": 2}),
    ("dsn-quoting-relay-by-ipv4", samples.dsn([samples.hop_postfix("outbound", "unknown", "198.51.100.5")]),
     FOREIGN, "", {"reject": 5, "spamassassin": 2}),
    ("dsn-quoting-relay-by-ipv6", samples.dsn([samples.hop_postfix("outbound", "unknown", "2001:db8:26::7")]),
     FOREIGN, "", {"reject": 5, "spamassassin": 2}),
    ("forged-helo-postfix-hop", samples.dsn([samples.hop_postfix("smtp1.out.example.org", "unknown", "203.0.113.99")]),
     FOREIGN, "", {"reject": 5, "spamassassin": 5}),
    ("forged-helo-exim-hop", samples.dsn([samples.hop_exim("smtp1.out.example.org", "203.0.113.99")]),
     FOREIGN, "", {"reject": 5, "spamassassin": 5}),
    ("ip-containing-ours", samples.dsn([samples.hop_postfix("mail.foreign.test", "mail.foreign.test", "192.0.2.251")]),
     FOREIGN, "", {"reject": 5, "spamassassin": 5}),
    ("look-alike-host", samples.dsn([samples.hop_postfix("smtp1.out.example.org.relay.test",
                                                         "smtp1.out.example.org.relay.test", "203.0.113.5")]),
     FOREIGN, "", {"reject": 5, "spamassassin": 5}),
    ("read-receipt", samples.read_receipt(), FOREIGN, "", {"reject": 2, "spamassassin": 2}),
    ("dsn-forwarded-by-a-person", samples.forwarded_dsn(), FOREIGN, "frank@foreign.test",
     {"reject": 2, "spamassassin": 2}),
    ("ordinary-mail", samples.ordinary(), FOREIGN, "grace@foreign.test", {"reject": 2, "spamassassin": 2}),
    # policy.dsn = "reject" refuses every RFC 3464 report in header_checks, whoever sends it:
    # the price of that policy (inventory.example.toml says so); "spamassassin" keeps them.
    ("bounce-from-our-relay", samples.relay_bounce(), OUR_RELAY, "", {"reject": 5, "spamassassin": 2}),
    ("bounce-from-relay-known-by-name", samples.relay_bounce(), OUR_RELAY_BY_NAME, "",
     {"reject": 5, "spamassassin": 2}),
    # Families the ruleset judges in the session under both policies.
    ("autoreply-to-forged-mail", samples.autoreply(), FOREIGN, "dana@foreign.test", {"reject": 5, "spamassassin": 5}),
    ("virus-notice", samples.virus_notice(), FOREIGN, "", {"reject": 5, "spamassassin": 5}),
    ("plain-text-bounce", samples.plain_bounce(), FOREIGN, "", {"reject": 5, "spamassassin": 5}),
]


@pytest.mark.parametrize("name,message,who,sender,expect", CASES, ids=[c[0] for c in CASES])
def test_end_of_data_verdict(lab, name, message, who, sender, expect):
    before = settled(lab)
    code, text = deliver(lab, message, who=who, sender=sender)
    want = expect[lab.policy]
    assert code // 100 == want, (name, code, text, lab.milter_log()[-600:])
    if want == 5:
        assert code == 550 and text.startswith(b"5.7.1 ")
        # A remote postmaster reads this in the bounce he gets: it must say why.
        assert b"backscatter" in text.lower() or b"forged" in text.lower(), text
        assert wait_delivered(lab, before, 1, timeout=1) == 0
    else:
        assert wait_delivered(lab, before, 1) == 1


def test_in_session_message_is_not_all_trusted(lab):
    """Issue 3, item 6: a message from a foreign MX is judged with an untrusted relay."""
    deliver(lab, samples.ordinary(7), sender="grace@foreign.test")
    lines = [l for l in lab.milter_log().splitlines() if "client=mx.foreign.test[203.0.113.7], verdict=accept" in l]
    assert lines and "ALL_TRUSTED" not in lines[-1], lines[-1:]


# -- PIPELINING, CHUNKING, RSET -----------------------------------------------------------------
BAD = samples.forged_dsn(11)
GOOD = samples.ordinary(11)


def test_pipelining(lab):
    before = settled(lab)
    r = Raw(lab)
    try:
        for message, sender, want in ((BAD, b"", 5), (GOOD, b"grace@foreign.test", 2), (BAD, b"", 5)):
            r.send(b"MAIL FROM:<" + sender + b">\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
            assert [r.reply()[0] for _ in range(3)] == [250, 250, 354]
            r.send(dot_stuff(message) + b"\r\n.\r\n")
            code, text = r.reply()
            assert code // 100 == want, (code, text)
    finally:
        r.close()
    assert wait_delivered(lab, before, 1) == 1


@pytest.mark.parametrize("chunks", [1, 3])
def test_chunking_bdat(lab, chunks):
    before = settled(lab)
    r = Raw(lab)
    try:
        for message, sender, want in ((BAD, b"", 5), (GOOD, b"grace@foreign.test", 2)):
            r.send(b"MAIL FROM:<" + sender + b"> BODY=8BITMIME\r\nRCPT TO:<alice@example.org>\r\n")
            assert [r.reply()[0] for _ in range(2)] == [250, 250]
            size = -(-len(message) // chunks)
            parts = [message[i:i + size] for i in range(0, len(message), size)]
            for i, part in enumerate(parts):
                last = b" LAST" if i == len(parts) - 1 else b""
                r.send(b"BDAT %d%s\r\n" % (len(part), last) + part)
                code, text = r.reply()
                if last:
                    assert code // 100 == want, (code, text)
                else:
                    assert code == 250, (code, text)
    finally:
        r.close()
    assert wait_delivered(lab, before, 1) == 1


def test_rset_between_good_and_bad(lab):
    before = settled(lab)
    s = client(lab)
    try:
        assert transaction(s, GOOD, "grace@foreign.test")[0] == 250
        assert s.rset()[0] == 250
        assert transaction(s, BAD)[0] == 550
        assert s.rset()[0] == 250
        # An abandoned transaction between them: its state must not leak into the next one.
        assert s.mail("")[0] == 250 and s.rcpt(ALICE)[0] == 250 and s.rset()[0] == 250
        assert transaction(s, GOOD, "grace@foreign.test")[0] == 250
        assert transaction(s, BAD)[0] == 550
    finally:
        s.quit()
    assert wait_delivered(lab, before, 2) == 2


# -- failures: tempfail, never an unchecked accept, never a 5xx ---------------------------------
def _only_tempfail(lab, message, sender=""):
    """Run a transaction; the first refusal must be a 4xx and nothing may be accepted."""
    s = client(lab)
    try:
        code, text = s.mail(sender)
        if code == 250:
            code, text = s.rcpt(ALICE)
        if code == 250:
            code, text = s.data(message)
    finally:
        s.close()
    assert code // 100 == 4, (code, text)
    return code, text


def test_milter_down_tempfails(lab):
    before = settled(lab)
    lab.stop_milter()
    try:
        _only_tempfail(lab, BAD)
        _only_tempfail(lab, GOOD, "grace@foreign.test")
    finally:
        lab.start_milter()
    assert wait_delivered(lab, before, 1, timeout=1) == 0
    assert deliver(lab, GOOD, sender="grace@foreign.test")[0] == 250


def for_the_milter(lab) -> bytes:
    """Backscatter that reaches the milter: under policy "reject" header_checks refuse a DSN
    (rightly, with a 5xx) before the milter is asked, so use an auto-reply there."""
    return samples.autoreply(3) if lab.policy == "reject" else BAD


def test_spamd_stopped_tempfails(lab):
    assert lab.spamd.profile == "lean"  # the faults hold with the lean spamd the milter uses
    message = for_the_milter(lab)
    before = settled(lab)
    lab.stop_spamd()
    try:
        code, text = _only_tempfail(lab, message)
        assert code == 451 and text.startswith(b"4.7.1 "), text
        _only_tempfail(lab, GOOD, "grace@foreign.test")
    finally:
        lab.restart_spamd()
    assert wait_delivered(lab, before, 1, timeout=1) == 0
    assert deliver(lab, GOOD, sender="grace@foreign.test")[0] == 250


def test_spamd_hanging_tempfails(lab):
    """spamd accepts the connection but does not answer (stopped with SIGSTOP): the milter's
    deadline ([milter] timeout) turns that into a 4xx before Postfix's own milter timeout."""
    assert lab.spamd.profile == "lean"
    pgid = lab.spamd.proc.pid
    os.killpg(pgid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        code, text = _only_tempfail(lab, for_the_milter(lab))
        assert code == 451 and b"temporarily" in text, text
        assert time.monotonic() - t0 < 5 + 5
    finally:
        os.killpg(pgid, signal.SIGCONT)
    assert deliver(lab, GOOD, sender="grace@foreign.test")[0] == 250


# -- the front-line design decision, checked on the real Postfix ---------------------------------
def test_mime_processing_would_refuse_the_forwarded_dsn(tmp_path):
    """Why the rendered main.cf sets disable_mime_input_processing = yes: with MIME processing,
    mime_header_checks (= header_checks) also sees the Content-Type of an attached message, so a
    person who forwards a bounce as an attachment is refused. Without it, header_checks see only
    the top-level headers, and body_checks see the attached message's headers."""
    _need_engines()
    inv = make_inventory(tmp_path, "reject")
    with PostfixLab(inv, extra_params={"disable_mime_input_processing": "no"}) as lab:
        code, text = deliver(lab, samples.forwarded_dsn(), sender="frank@foreign.test")
        assert code == 550 and b"Delivery status notification refused" in text
    with PostfixLab(inv) as lab:
        assert deliver(lab, samples.forwarded_dsn(), sender="frank@foreign.test")[0] == 250
        # body_checks see the attached message's headers, but refuse no forged hop there: the
        # person forwarding a bounce of the joe-job is accepted (the milter sees no bounce).
        forged = samples.forwarded_dsn().replace(b"from spam-bot.test (unknown [203.0.113.66])",
                                                 b"from smtp1.out.example.org (unknown [203.0.113.66])")
        assert forged != samples.forwarded_dsn()
        assert deliver(lab, forged, sender="frank@foreign.test")[0] == 250


# -- the joe-job reported to us: a forged hop of our relay inside a report ----------------------
# A spam whose bot greeted the victim's MX as our relay, from a foreign address. The reports about
# it (corpus/ham/, written for bouncegen) carry the hop in an attachment; so does its backscatter.
FORGED_HOP = samples.FORGED_RELAY_HOP.split("\r\n")[0].encode()
JOE_JOB_REPORTS = [ROOT / "corpus" / "ham" / name for name in
                   ("arf-joe-job-forged-relay-hop.eml", "abuse-complaint-joe-job-forged-relay-hop.eml")]


def test_joe_job_reports_accepted_its_backscatter_refused(lab):
    """The front line refuses no forged hop below the message's own headers (one body line cannot
    tell a report from a bounce); the milter accepts the reports and refuses the backscatter that
    quotes the same hop, since a forged hop rescues nothing."""
    before = settled(lab)
    for path in JOE_JOB_REPORTS:
        message = path.read_bytes()
        assert FORGED_HOP in message, path.name
        code, text = deliver(lab, message, sender="fbl-bounces@mailbox-provider.test")
        assert code == 250, (path.name, code, text, lab.milter_log()[-600:])
    assert wait_delivered(lab, before, 2) == 2
    backscatter = [
        ("rfc3464", samples.dsn([samples.FORGED_RELAY_HOP], n=21)),
        ("qmail", samples.forged_hop_bounce(21)),
    ]
    for name, message in backscatter:
        assert FORGED_HOP in message, name
        code, text = deliver(lab, message)
        assert code == 550 and text.startswith(b"5.7.1 "), (name, code, text)
        assert b"Forged Received" not in text, (name, text)  # not the front line's forged-hop refusal
        if name == "qmail" or lab.policy == "spamassassin":  # "reject": header_checks refuse any RFC 3464 report
            assert b"Refused as backscatter" in text, (name, text)
    assert wait_delivered(lab, before, 3, timeout=1) == 2
    # Sender address verification is untouched: MAIL FROM:<>, RCPT TO: 250.
    s = client(lab)
    try:
        assert s.mail("")[0] == 250 and s.rcpt(ALICE)[0] == 250
    finally:
        s.quit()
