"""Every rule's own ok/fail strings, and whole-message samples of each verdict, through the real
SpamAssassin (one private spamd for the session, many spamc calls in parallel).

A header rule's string is a header line placed into a minimal message (replacing the header of
the same name); a mimeheader rule's string is the header of a second MIME part; body, rawbody and
uri strings are the text body; meta rules are tested by the whole-message samples below, which
also check the never-flag list of issue 3 and the points a verdict adds under policy "block".
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bouncegen import engines
from bouncegen.engines.spamd import Spamd
from bouncegen.renderer import inventory
from bouncegen.renderer.render import render_files, write_tree
from bouncegen.renderer.rules import load_families

pytestmark = pytest.mark.spamassassin

REPO = Path(__file__).resolve().parent.parent
FAMILIES = load_families()
POINTS = {r.name: r.score("block") or 0.0 for f in FAMILIES for r in f.rules if not r.is_sub}
VERDICTS = ("BG_BOUNCE", "BG_CHALLENGE", "BG_AUTOREPLY", "BG_VIRUS")


def visible(name: str) -> str:
    """spamd never reports __sub-rules: the tests see each through a scored mirror, BGT_*."""
    return "BGT" + name[4:] if name.startswith("__BG_") else name


# Test-only config for the private spamd: one tiny-scored mirror meta per sub-rule.
MIRRORS = "".join(f"meta {visible(r.name)} {r.name}\nscore {visible(r.name)} 0.001\n"
                  for f in FAMILIES for r in f.rules if r.is_sub)

_BASE = [
    ("From", "Sender Example <sender@example.com>"),
    ("To", "rcpt@example.org"),
    ("Subject", "test message"),
    ("Date", "Fri, 27 Nov 2026 10:00:00 +0000"),
    ("Message-ID", "<rule-test@example.com>"),
    ("MIME-Version", "1.0"),
]


def _headers(extra: list[tuple[str, str]]) -> str:
    names = {n.lower() for n, _ in extra}
    lines = [f"{n}: {v}" for n, v in _BASE if n.lower() not in names]
    lines += [f"{n}: {v}" for n, v in extra]
    return "\n".join(lines) + "\n"


def _split(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip(), value.strip()


def message_for(rule_type: str, text: str) -> bytes:
    """A minimal message that carries ``text`` where a rule of ``rule_type`` looks."""
    if rule_type == "header":
        hdrs = [_split(text)]
        if not any(n.lower() == "content-type" for n, _ in hdrs):
            hdrs.append(("Content-Type", "text/plain; charset=utf-8"))
        msg = _headers(hdrs) + "\nHello.\n"
    elif rule_type == "mimeheader":
        msg = (_headers([("Content-Type", 'multipart/mixed; boundary="b0"')])
               + "\n--b0\nContent-Type: text/plain\n\nHello.\n\n--b0\n" + text
               + "\n\nx: y\n\n--b0--\n")
    elif rule_type in ("body", "rawbody", "uri"):
        msg = (_headers([("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")])
               + "\n" + text + "\n")
    elif rule_type == "full":
        msg = text if text.endswith("\n") else text + "\n"
    else:
        raise ValueError(rule_type)
    return msg.encode("utf-8")


def _string_cases():
    for fam in FAMILIES:
        for rule in fam.rules:
            if rule.type == "meta":
                continue
            for kind, strings in (("ok", rule.ok), ("fail", rule.fail)):
                for i, text in enumerate(strings):
                    yield pytest.param(rule.name, rule.type, kind, text, id=f"{fam.path.stem}-{rule.name}-{kind}{i}")


# --- whole-message samples (written for these tests) -------------------------------------------

_DSN_PARTS = """\
--b1
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.remote.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@remote.example>: host mx.remote.example[203.0.113.9] said: 550 5.1.1
    <nobody@remote.example>: Recipient address rejected: User unknown

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example

Final-Recipient: rfc822; nobody@remote.example
Action: failed
Status: 5.1.1

--b1
Content-Type: text/rfc822-headers

Received: from {helo} (unknown [{ip}])
\tby {by} (Postfix) with ESMTP id 4AB12
\tfor <nobody@remote.example>; Fri, 27 Nov 2026 09:59:00 +0000
From: alice@example.org
To: nobody@remote.example
Subject: hello

--b1--
"""


def _dsn(top: str, helo="spam.example", ip="203.0.113.66", by="spam.example") -> str:
    return top + "\n" + _DSN_PARTS.replace("{helo}", helo).replace("{ip}", ip).replace("{by}", by)


_REPORT_CT = 'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\n'

SAMPLES = {
    # -- must be caught ----------------------------------------------------------------------
    "postfix-dsn-after-delivery": ("BG_BOUNCE", _dsn(
        "Return-Path: <>\nFrom: MAILER-DAEMON@mx.remote.example (Mail Delivery System)\n"
        "To: alice@example.org\nSubject: Undelivered Mail Returned to Sender\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <s1@mx.remote.example>\nMIME-Version: 1.0\n" + _REPORT_CT)),
    "postfix-dsn-in-milter-session": ("BG_BOUNCE", _dsn(
        "X-Envelope-From: <>\nFrom: MAILER-DAEMON@mx.remote.example (Mail Delivery System)\n"
        "To: alice@example.org\nSubject: Undelivered Mail Returned to Sender\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <s2@mx.remote.example>\nMIME-Version: 1.0\n" + _REPORT_CT)),
    "exim-plain-bounce-null-sender": ("BG_BOUNCE", (
        "X-Envelope-From: <>\nFrom: Mail Delivery System <Mailer-Daemon@mx.remote.example>\nTo: alice@example.org\n"
        "Subject: Mail delivery failed: returning message to sender\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <s3@mx.remote.example>\n\n"
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error.\n")),
    "groupware-bounce-non-null-sender": ("BG_BOUNCE", (
        "Return-Path: <helpdesk@groupware.example>\nFrom: Groupware <helpdesk@groupware.example>\nTo: alice@example.org\n"
        "Subject: Undeliverable: Budget\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <s4@groupware.example>\n\n"
        "Delivery has failed to these recipients or groups:\n\nnobody@groupware.example\n")),
    "sieve-reject-mdn": ("BG_BOUNCE", (
        "Return-Path: <>\nFrom: Mail Delivery Subsystem <postmaster@remote.example>\nTo: alice@example.org\n"
        "Subject: Automatically rejected mail\nAuto-Submitted: auto-replied (rejected)\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <s5@remote.example>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="b2"\n\n'
        "--b2\nContent-Type: text/plain\n\nYour message was automatically rejected by Sieve.\n\n"
        "--b2\nContent-Type: message/disposition-notification\n\n"
        "Reporting-UA: remote.example; Dovecot Mail Delivery Agent\nFinal-Recipient: rfc822; bob@remote.example\n"
        "Disposition: automatic-action/MDN-sent-automatically; deleted\n\n--b2--\n")),
    "boxtrapper-challenge": ("BG_CHALLENGE", (
        "Return-Path: <cpanel@host.remote.example>\nFrom: <cpanel@host.remote.example>\nTo: alice@example.org\n"
        "X-Boxtrapper: abcdef\nPrecedence: auto_reply\nSubject: Your email requires verification verify#abcdef\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <s6@host.remote.example>\n\n"
        "The message you sent requires that you verify that you are a real live human being.\n")),
    "generic-challenge": ("BG_CHALLENGE", (
        "Return-Path: <>\nFrom: Bob <bob@remote.example>\nTo: alice@example.org\n"
        "Subject: Please confirm your message\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <s7@remote.example>\n\n"
        "Your message has been held by my spam filter. To have your message delivered, please reply to this email.\n")),
    "rfc3834-autoreply": ("BG_AUTOREPLY", (
        "Return-Path: <>\nAuto-Submitted: auto-replied\nFrom: Bob <bob@remote.example>\nTo: alice@example.org\n"
        "Subject: Away until Monday\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <s8@remote.example>\n\n"
        "I am away until Monday.\n")),
    "german-ooo-null-sender": ("BG_AUTOREPLY", (
        "X-Envelope-From: <>\nFrom: Bob <bob@remote.example>\nTo: alice@example.org\n"
        "Subject: Abwesend: Angebot\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <s9@remote.example>\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        "Ich bin bis 15.12. nicht im Büro.\n")),
    "list-relayed-notes-ooo": ("BG_AUTOREPLY", (
        "From: Bob Example <bob@remote.example>\nTo: users@lists.example.org\nList-Id: Users <users.lists.example.org>\n"
        "Precedence: bulk\nSubject: [users] Bob Example/Branch/Remote is out of the office.\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <s11@remote.example>\n\n"
        "I will be out of the office starting 01.12.2026 and will not return until 08.12.2026.\n")),
    "amavis-virus-notice": ("BG_VIRUS", (
        "Return-Path: <>\nFrom: Content-filter at mx.remote.example <postmaster@mx.remote.example>\nTo: alice@example.org\n"
        "Subject: VIRUS (Eicar-Signature) IN MAIL FROM YOU\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <s10@mx.remote.example>\n\n"
        "Our content checker found\n    virus: Eicar-Signature\nin email presumably from you.\n")),
    # -- must never be flagged ---------------------------------------------------------------
    "fp-dsn-quoting-our-relay": (None, _dsn(
        "Return-Path: <>\nFrom: MAILER-DAEMON@mx.remote.example (Mail Delivery System)\n"
        "To: alice@example.org\nSubject: Undelivered Mail Returned to Sender\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <f1@mx.remote.example>\nMIME-Version: 1.0\n" + _REPORT_CT,
        helo="smtp1.out.example.org", ip="192.0.2.25", by="smtp1.out.example.org")),
    "fp-read-receipt": (None, (
        "Return-Path: <>\nFrom: Bob <bob@remote.example>\nTo: alice@example.org\nSubject: Read: Budget\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <f2@remote.example>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="b3"\n\n'
        "--b3\nContent-Type: text/plain\n\nYour message was displayed.\n\n"
        "--b3\nContent-Type: message/disposition-notification\n\n"
        "Final-Recipient: rfc822; bob@remote.example\nDisposition: manual-action/MDN-sent-manually; displayed\n\n--b3--\n")),
    "fp-arf-report": (None, (
        "From: abuse@remote.example\nTo: abuse@example.org\nSubject: FW: spam report\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <f3@remote.example>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b4"\n\n'
        "--b4\nContent-Type: text/plain\n\nThis is an email abuse report. Delivery failed for nobody.\n\n"
        "--b4\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: X/1.0\nVersion: 1\n\n--b4--\n")),
    "fp-tlsrpt": (None, (
        "From: noreply-smtp-tls-reporting@remote.example\nTo: tlsrpt@example.org\n"
        "Subject: Report Domain: example.org Submitter: remote.example Report-ID: <1@remote.example>\n"
        "TLS-Report-Domain: example.org\nTLS-Report-Submitter: remote.example\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <f4@remote.example>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type="tlsrpt"; boundary="b5"\n\n'
        "--b5\nContent-Type: text/plain\n\nThis is an aggregate TLS report.\n\n--b5--\n")),
    "fp-dmarc-aggregate": (None, (
        "Return-Path: <noreply-dmarc@remote.example>\nFrom: noreply-dmarc@remote.example\nTo: dmarc@example.org\n"
        "Subject: Report Domain: example.org Submitter: remote.example Report-ID: <2@remote.example>\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <f5@remote.example>\n\n"
        "This is an aggregate report from remote.example. Delivery failed for 0 messages.\n")),
    "fp-list-ooo-announcement": (None, (
        "From: Bob <bob@remote.example>\nTo: users@lists.example.org\nList-Id: Users <users.lists.example.org>\n"
        "Precedence: bulk\nSubject: Out of office next week\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <f6@remote.example>\n\n"
        "Hi all, I will be out of the office from Monday until Friday; Carol answers the tickets.\n")),
    "fp-calendar-ooo": (None, (
        "From: Bob <bob@remote.example>\nTo: alice@example.org\nSubject: Out of office\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <f7@remote.example>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="b6"\n\n'
        "--b6\nContent-Type: text/plain\n\nI am on vacation from Monday until Friday.\n\n"
        "--b6\nContent-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\nMETHOD:REQUEST\nEND:VCALENDAR\n\n--b6--\n")),
    "fp-parcel-delivery-status": (None, (
        "From: Parcel Service <noreply@parcel.example>\nTo: alice@example.org\n"
        "Subject: Delivery Status Notification for your parcel 123\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <f8@parcel.example>\n\nYour parcel is out for delivery today. Track it online.\n")),
    "fp-human-reply-undeliverable": (None, (
        "From: Bob <bob@remote.example>\nTo: alice@example.org\nSubject: Re: Undeliverable: Budget\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <f9@remote.example>\n\n"
        "Did you get this too?\n\n> Delivery has failed to these recipients or groups:\n> nobody@remote.example\n")),
    "fp-forwarded-dsn": (None, (
        "From: Bob <bob@remote.example>\nTo: alice@example.org\nSubject: Fwd: bounce I got\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <f10@remote.example>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b7"\n\n'
        "--b7\nContent-Type: text/plain\n\nSee the attached bounce, any idea?\n\n"
        "--b7\nContent-Type: message/rfc822\n\n" + _dsn(
            "Return-Path: <>\nFrom: MAILER-DAEMON@mx.remote.example (Mail Delivery System)\n"
            "To: bob@remote.example\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n" + _REPORT_CT)
        + "\n--b7--\n")),
    "fp-cron-550": (None, (
        "From: Cron Daemon <root@mx1.example.org>\nTo: root@example.org\n"
        "Subject: Cron <root@mx1> /usr/local/bin/queue-report\nX-Cron-Env: <SHELL=/bin/sh>\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <f11@mx1.example.org>\n\n"
        "to=<nobody@remote.example>, status=bounced (host said: 550 5.1.1 user unknown)\n"
        "Delivery failed: 550 5.1.1 <nobody@remote.example>: Recipient address rejected: User unknown\n")),
    "fp-logwatch-null-sender": (None, (
        "Return-Path: <>\nFrom: logwatch@mx1.example.org\nTo: root@example.org\nSubject: Logwatch for mx1 (Linux)\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <f12@mx1.example.org>\n\n"
        "Your message could not be delivered: 550 5.1.1 user unknown (3 times)\n")),
}


# --- the engine -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def spamd(tmp_path_factory):
    missing = [p for p in ("spamd", "spamc", "spamassassin") if not engines.which(p)]
    if missing:
        reason = f"{', '.join(missing)} not installed ({engines.INSTALL_HINT[missing[0]]})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {reason}")
        pytest.skip(reason)
    inv = inventory.load(REPO / "inventory.example.toml")
    out = tmp_path_factory.mktemp("rendered")
    write_tree(render_files(inv, FAMILIES), out)
    with Spamd(out / "spamassassin", children=2, extra_cf=MIRRORS) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def verdicts(spamd):
    """All messages of this module checked once, in parallel: {key: set of rules hit}."""
    jobs = {}
    for p in _string_cases():
        name, rtype, kind, text = p.values
        jobs[("string", p.id)] = message_for(rtype, text)
    for key, (_, text) in SAMPLES.items():
        jobs[("sample", key)] = text.encode("utf-8")
    with ThreadPoolExecutor(4) as pool:
        results = dict(zip(jobs, pool.map(spamd.check, jobs.values()), strict=True))
    for key, res in results.items():
        if not res.ok:
            pytest.fail(f"spamc failed for {key}: {res.error}")
    return {key: set(res.tests) for key, res in results.items()}


@pytest.mark.parametrize("name,rtype,kind,text", list(_string_cases()))
def test_rule_string(request, verdicts, name, rtype, kind, text):
    hits = verdicts[("string", request.node.callspec.id)]
    if kind == "ok":
        assert visible(name) in hits, f"{name} must hit {text!r}; hits: {sorted(hits)}"
    else:
        assert visible(name) not in hits, f"{name} must miss {text!r}"


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_sample_verdict(verdicts, key):
    expected, _ = SAMPLES[key]
    hits = verdicts[("sample", key)]
    ours = sorted(h for h in hits if h in POINTS)
    points = sum(POINTS[h] for h in ours)
    if expected is None:
        assert not ours, f"{key}: legitimate mail must get nothing from bouncegen; got {ours}"
    else:
        assert expected in hits, f"{key}: {expected} must fire; bouncegen rules hit: {ours}"
        # One message, one verdict (the precedence of rules/*.toml): BG_LEDGER_UNAVAIL cancels one.
        assert hits & set(VERDICTS) == {expected}, f"{key}: more than one verdict: {ours}"
        assert "BG_ANY_BOUNCE" in hits
        assert points >= 5.0, f"{key}: {points} points from {ours}; policy block needs >= 5.0"


def test_every_scored_rule_has_samples():
    """Each family verdict is exercised by at least one sample that hits it."""
    caught = {v for v, _ in SAMPLES.values() if v}
    assert caught == set(VERDICTS)
