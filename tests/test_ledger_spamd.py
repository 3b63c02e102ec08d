"""The sent-mail ledger through the real spamd: the BouncegenRescue plugin reads what
bouncegen.ledger wrote, from SQLite (DBI + DBD::SQLite) and from a real redis-server.

A bounce or auto-reply that refers to a Message-ID our relays recorded is kept; one that refers
to an unrecorded ID, or to an ID minted in our own domain by a joe-job spammer, is caught once a
ledger is configured. A ledger that cannot answer (Redis stopped mid-run, an SQLite file locked
by a transaction this test holds) makes BG_LEDGER_UNAVAIL hit, and post-queue the message stays
below the threshold. Every process started here is stopped by its PID.
"""

from __future__ import annotations

import quopri
import re
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from bouncegen.engines.spamd import Spamd
from bouncegen.ledger import create_key_file, open_store
from bouncegen.milter.service import decide
from bouncegen.milter.settings import Settings
from bouncegen.renderer import inventory, render
from bouncegen.renderer.rules import load_families, verdict_precedence, verdict_scores
from support import RedisServer, give_to_spamd, need, spamd_dir
from test_rescue import (
    CLIENT,
    EXPOSE_CF,
    POSTFIX,
    TOP,
    D,
    attached,
    auto_reply,
    base64_attached,
    base64_headers,
    crlf,
    dsn,
    forwarded_twice,
    headers_part,
    original,
    plain_bounce,
    qp_bounce,
    quoted_reply,
)

pytestmark = [pytest.mark.spamassassin, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
EXPOSE = EXPOSE_CF + """
meta  BGTEST_LEDGER_HIT __BG_LEDGER_HIT
score BGTEST_LEDGER_HIT 0.001
"""
RECORDED = "<lunch.77@example.org>"  # the Message-ID of test_rescue's original
VERDICTS = set(verdict_precedence(load_families()))


def _alone(name: str) -> str:
    """A verdict's test without its precedence terms (&& !BG_X): what the family alone would say."""
    test = next(r.test for f in load_families() for r in f.rules if r.name == name)
    return re.sub(r"\s*&&\s*!BG_[A-Z]+\b", "", test)


# Test only: whether the bounce and the auto-reply family would each flag a message on their own.
EXPOSE += "".join(f"meta  {probe} {_alone(name)}\nscore {probe} 0.001\n"
                  for probe, name in (("BGTEST_DSN_ALONE", "BG_BOUNCE"), ("BGTEST_AR_ALONE", "BG_AUTOREPLY")))


class Site:
    """An inventory with a [ledger], rendered, linted and loaded into its own spamd."""

    def __init__(self, store_url: str, workdir: Path):
        self.dir = workdir
        self.key_file = workdir / "ledger.key"
        self.key = create_key_file(self.key_file)
        give_to_spamd(self.key_file)
        self.store_url = store_url
        text = (REPO / "inventory.example.toml").read_text()
        text += f'\n[ledger]\nstore = "{store_url}"\nkey_file = "{self.key_file}"\ndays = 30\n'
        (workdir / "site.toml").write_text(text)
        self.inv = inventory.load(workdir / "site.toml")
        render.render(self.inv, workdir / "out", require_tools=True)
        self.spamd = Spamd(workdir / "out" / "spamassassin", children=1, extra_cf=EXPOSE).start()

    def record(self, *ids: str) -> None:
        with open_store(self.store_url, self.key, 30) as s:
            s.record(ids)
        for p in self.dir.glob("ledger.db*"):
            give_to_spamd(p)

    def check(self, message: str) -> tuple[set[str], float]:
        """(rules hit, total score) through the real spamc."""
        res = self.spamd.check(crlf(message))
        assert res.ok, res.error
        argv = [a if a != "-y" else "-c" for a in self.spamd.spamc_argv()]
        proc = subprocess.run(argv, input=message.encode(), capture_output=True, timeout=180)
        score = float(proc.stdout.decode().split("/")[0])
        return set(res.tests), score

    def log_tail(self) -> str:
        return "\n".join(l for l in self.spamd.log_tail().splitlines() if "bouncegen" in l)

    def stop(self) -> None:
        self.spamd.stop()


@pytest.fixture(scope="module")
def sqlite_site():
    need("spamassassin", "spamd", "spamc")
    d = spamd_dir("bouncegen-ledger-")
    site = Site(f"sqlite:{d}/ledger.db", d)
    try:
        site.record(RECORDED, "<q.42@example.org>")
        yield site
    finally:
        site.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_site():
    need("spamassassin", "spamd", "spamc", "redis-server")
    d = spamd_dir("bouncegen-ledger-")
    server = RedisServer(d / "redis", password="t3st-pw").start()
    site = None
    try:
        site = Site(server.url(db=3), d)
        site.record(RECORDED, "<q.42@example.org>")
        yield site
    finally:
        if site is not None:
            site.stop()
        server.stop()
        shutil.rmtree(d, ignore_errors=True)


def original_with(msgid: str, *hops: str) -> str:
    return attached(*hops).replace("Message-ID: <lunch.77@example.org>", f"Message-ID: {msgid}")


NULL = "Return-Path: <>\n"


# The shapes in which MTAs return the original's Message-ID (our own mails, written here).
def _header_of(msgid: str = "<lunch.77@example.org>") -> str:
    return original(CLIENT, body="").replace("Message-ID: <lunch.77@example.org>", f"Message-ID: {msgid}").rstrip("\n")


def glued(content_type: str, msgid: str = "<lunch.77@example.org>", body: str = "Shall we meet at noon?\n") -> str:
    """No empty line between the part's Content-Type: and the returned header (CommuniGate Pro,
    Mail2000, some Exchange and Domino): a MIME parser reads the original's header as the part's."""
    return dsn(f"{content_type}\n{_header_of(msgid)}", body)


def qp_attached(msgid: str = "<lunch.77@example.org>") -> str:
    """message/rfc822 encoded quoted-printable as a whole, "@" written "=40" as some encoders do."""
    text = original(CLIENT).replace("Message-ID: <lunch.77@example.org>", f"Message-ID: {msgid}")
    data = quopri.encodestring(text.encode()).decode().replace("@", "=40")
    return dsn("Content-Type: message/rfc822\nContent-Transfer-Encoding: quoted-printable", data)


def nested(depth: int) -> str:
    """The bounce, forwarded as message/rfc822 inside message/rfc822, depth times."""
    msg = attached(CLIENT)
    for i in range(depth):
        msg = ("From: helpdesk@remote.test\nTo: alice@example.org\nSubject: Fwd: bounce\n"
               f"Message-ID: <fwd.{i}@remote.test>\nMIME-Version: 1.0\n"
               f'Content-Type: multipart/mixed; boundary="n{i}"\n\n--n{i}\nContent-Type: text/plain\n\nsee below\n'
               f"--n{i}\nContent-Type: message/rfc822\n\n{msg}\n--n{i}--\n")
    return dsn("Content-Type: message/rfc822", msg)


def prose_id(line: str) -> str:
    """A bounce that returns no header, only names the message's ID in its text."""
    return (TOP + "Subject: Delivery failure\n\nYour message could not be delivered to bob@remote.test.\n\n"
            f"   Subject: lunch on friday\n{line}\n\nmailbox unavailable\n")


def gateway_rewritten(msgid: str) -> str:
    """A gateway replaced the Message-ID and kept the one our relay sent as X-Original-Message-ID."""
    return attached(CLIENT).replace("Message-ID: <lunch.77@example.org>",
                                    f"Message-ID: <gw.5512@remote.test>\nX-Original-Message-ID: {msgid}")


def flooded(n: int) -> str:
    """n unrecorded quoted IDs before the recorded one: only the first MAX_REFS (64) are looked up."""
    junk = "".join(f"Message-ID: <junk.{i}@spam.test>\n" for i in range(n))
    return prose_id(junk + "Message-ID: <lunch.77@example.org>")

# (name, message, kept?): kept = no verdict (BG_BOUNCE / BG_AUTOREPLY) fires
CASES = [
    ("dsn-recorded-original", NULL + attached(CLIENT), True),
    ("dsn-recorded-folded-id", NULL + original_with("\n <lunch.77@EXAMPLE.ORG>", CLIENT), True),
    ("dsn-unrecorded-original", NULL + original_with("<never.sent@example.org>", CLIENT), False),
    ("dsn-forged-domain-id", NULL + original_with("<a1b2c3.spam@example.org>", CLIENT), False),
    ("dsn-no-message-id", NULL + attached(CLIENT).replace("Message-ID: <lunch.77@example.org>\n", ""), False),
    ("dsn-relay-hop-still-evidence", NULL + original_with("<never.sent@example.org>", POSTFIX), True),
    ("dsn-fabricated-lower-by-hop", NULL + original_with(
        "<never.sent@example.org>",
        f"from bot.spam.test (unknown [203.0.113.66])\n\tby mx.remote.test (Postfix) with ESMTP id 9; {D}",
        f"from ws (ws [10.0.0.9])\n\tby smtp1.out.example.org (Postfix) with ESMTPSA id 8; {D}"), False),
    ("dsn-glued-rfc822-recorded", NULL + glued("Content-Type: message/rfc822"), True),
    ("dsn-glued-rfc822-unrecorded", NULL + glued("Content-Type: message/rfc822", "<never.sent@example.org>"), False),
    ("dsn-glued-described-rfc822-recorded", NULL + glued("Content-Description: Undelivered Message\n"
                                                         "Content-Type: message/rfc822"), True),
    ("dsn-glued-headers-recorded", NULL + glued("Content-Type: text/rfc822-headers", body=""), True),
    ("dsn-glued-plain-recorded", NULL + dsn(f"{_header_of()}\nContent-Type: text/plain; charset=US-ASCII", "hello\n"),
     True),
    ("dsn-glued-lower-case-field-recorded", NULL + glued("Content-Type: message/rfc822").replace(
        "Message-ID: <lunch", "message-id:\n\t<lunch"), True),
    ("dsn-headers-part-recorded", NULL + headers_part(CLIENT), True),
    ("dsn-qp-rfc822-recorded", NULL + qp_attached(), True),
    ("dsn-qp-rfc822-unrecorded", NULL + qp_attached("<never.sent@example.org>"), False),
    ("dsn-base64-rfc822-recorded", NULL + base64_attached(CLIENT), True),
    ("dsn-base64-headers-recorded", NULL + base64_headers(CLIENT), True),
    ("dsn-qp-text-soft-breaks-recorded", NULL + qp_bounce(CLIENT), True),
    ("dsn-plain-non-mime-recorded", NULL + plain_bounce(CLIENT), True),
    ("dsn-nested-2-recorded", NULL + forwarded_twice(CLIENT), True),
    ("dsn-nested-4-recorded", NULL + nested(3), True),
    ("dsn-prose-bare-id-recorded", NULL + prose_id("   Message-ID: lunch.77@EXAMPLE.org"), True),
    ("dsn-prose-bracketed-id-recorded", NULL + prose_id("Message-Id: <lunch.77@example.org>"), True),
    ("dsn-prose-bare-id-unrecorded", NULL + prose_id("   Message-ID: never.sent@example.org"), False),
    ("dsn-x-original-message-id-recorded", NULL + gateway_rewritten(RECORDED), True),
    ("dsn-x-original-message-id-unrecorded", NULL + gateway_rewritten("<never.sent@example.org>"), False),
    ("dsn-refs-bounded", NULL + flooded(70), False),
    ("dsn-refs-within-bound-recorded", NULL + flooded(40), True),
    ("autoreply-quoted-header-recorded", quoted_reply(CLIENT), True),
    ("autoreply-quoted-twice-recorded", quoted_reply(CLIENT, prefix="> > "), True),
    ("autoreply-in-reply-to-recorded", auto_reply(In_Reply_To=RECORDED), True),
    ("autoreply-references-recorded", auto_reply(References="<a.1@remote.test>\n <q.42@example.org>"), True),
    ("autoreply-forged-domain", auto_reply(In_Reply_To="<x.4@example.org>"), False),
    ("autoreply-relay-domain", auto_reply(References="<q.2@smtp1.out.example.org>"), False),
]


@pytest.mark.parametrize("store", ["sqlite", "redis"])
@pytest.mark.parametrize("name,message,kept", CASES, ids=[c[0] for c in CASES])
def test_ledger_verdicts(name, message, kept, store, request):
    site = request.getfixturevalue(f"{store}_site")
    hits, score = site.check(message)
    verdicts = hits & {"BG_BOUNCE", "BG_AUTOREPLY"}
    assert "BG_LEDGER_UNAVAIL" not in hits, (hits, site.log_tail())
    if kept:
        assert not verdicts and score < 5, (sorted(hits), score)
    else:
        assert verdicts and score >= 5, (sorted(hits), score)
    if "recorded" in name and "unrecorded" not in name:
        assert "BGTEST_LEDGER_HIT" in hits


def test_sqlite_locked_is_unavailable_not_blocked():
    """An exclusive lock held by this test (before spamd first opens the file, as a WAL
    reader's open connection would keep the lock from being taken): the lookup is unknown,
    nothing is blocked; once the lock is gone the store answers again."""
    need("spamassassin", "spamd", "spamc")
    d = spamd_dir("bouncegen-ledger-")
    site = Site(f"sqlite:{d}/ledger.db", d)
    try:
        site.record(RECORDED)
        db = sqlite3.connect(str(d / "ledger.db"), isolation_level=None)
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("BEGIN EXCLUSIVE")
        db.execute("INSERT INTO sent VALUES ('held', 1)")
        try:
            t0 = time.monotonic()
            hits, score = site.check(NULL + original_with("<never.sent@example.org>", CLIENT))
            assert "BG_LEDGER_UNAVAIL" in hits and "BG_BOUNCE" in hits, hits
            assert score < 5, (sorted(hits), score)
            assert time.monotonic() - t0 < 30
            # a recorded original is not rescued either while the store cannot answer
            hits, score = site.check(NULL + attached(CLIENT))
            assert "BG_LEDGER_UNAVAIL" in hits and "BGTEST_LEDGER_HIT" not in hits and score < 5
            assert "BG_RESCUE_LEDGER" not in hits
            # no references, nothing to look up: no outage rule
            hits, _ = site.check(NULL + attached(CLIENT).replace("Message-ID: <lunch.77@example.org>\n", ""))
            assert "BG_LEDGER_UNAVAIL" not in hits
        finally:
            db.execute("ROLLBACK")
            db.close()
        hits, score = site.check(NULL + attached(CLIENT))  # the store answers again
        assert "BG_LEDGER_UNAVAIL" not in hits and "BGTEST_LEDGER_HIT" in hits and "BG_BOUNCE" not in hits
        # the rescue label names the evidence to the milter's decision line (spamd hides __ rules)
        assert "BG_RESCUE_LEDGER" in hits, sorted(hits)
    finally:
        site.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_two_family_message_is_cancelled_by_a_ledger_outage():
    """A forged bounce that the auto-reply family would flag too (Auto-Submitted: auto-replied):
    it used to score two verdicts, and BG_LEDGER_UNAVAIL cancels exactly one, so an outage still
    marked it post-queue. Now one verdict fires (the precedence of rules/*.toml): with the store
    up the message is refused (milter) and marked (spamd); with the store locked its BG_ points
    cancel to the 0.01 label of BG_ANY_BOUNCE and the milter answers 4xx."""
    need("spamassassin", "spamd", "spamc")
    d = spamd_dir("bouncegen-ledger-")
    site = Site(f"sqlite:{d}/ledger.db", d)
    message = NULL + "Auto-Submitted: auto-replied\n" + original_with("<never.sent@example.org>", CLIENT)
    try:
        site.record(RECORDED)
        cfg = Settings.load(d / "out" / "milter" / "bouncegen-milter.conf")
        pol = site.inv.policy
        ruleset = verdict_scores(load_families(), pol.scores, ledger=True, points=pol.points)  # what the .cf scores
        points = ruleset["BG_BOUNCE"]

        def bg_points(hits: set[str]) -> float:
            return sum(ruleset.get(h, 0.0) for h in hits if h.startswith("BG_"))

        # locked before spamd first opens the file (see test_sqlite_locked_is_unavailable_not_blocked)
        db = sqlite3.connect(str(d / "ledger.db"), isolation_level=None)
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("BEGIN EXCLUSIVE")
        db.execute("INSERT INTO sent VALUES ('held', 1)")
        try:
            hits, score = site.check(message)
        finally:
            db.execute("ROLLBACK")
            db.close()
        assert "BG_LEDGER_UNAVAIL" in hits and hits & VERDICTS == {"BG_BOUNCE"}, sorted(hits)
        assert ruleset["BG_BOUNCE"] + ruleset["BG_LEDGER_UNAVAIL"] == 0
        assert bg_points(hits) == pytest.approx(0.01) and score < 5, (sorted(hits), score)
        assert decide(tuple(hits), cfg).action == "tempfail"
        # the store answers again: the unrecorded ID is no evidence, the message is refused
        hits, score = site.check(message)
        assert {"BGTEST_DSN_ALONE", "BGTEST_AR_ALONE"} <= hits, sorted(hits)  # both families would flag it
        assert hits & VERDICTS == {"BG_BOUNCE"}, sorted(hits)
        assert bg_points(hits) == pytest.approx(points + 0.01) and score >= 5, (sorted(hits), score)
        assert decide(tuple(hits), cfg).action == "reject"
    finally:
        site.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_redis_stopped_mid_run_is_unavailable_not_blocked():
    need("spamassassin", "spamd", "spamc", "redis-server")
    d = spamd_dir("bouncegen-ledger-")
    server = RedisServer(d / "redis").start()
    site = None
    try:
        site = Site(server.url(), d)
        site.record(RECORDED)
        hits, _ = site.check(NULL + attached(CLIENT))
        assert "BGTEST_LEDGER_HIT" in hits and "BG_BOUNCE" not in hits
        server.stop()
        for message in (NULL + original_with("<never.sent@example.org>", CLIENT), NULL + attached(CLIENT)):
            t0 = time.monotonic()
            hits, score = site.check(message)
            assert "BG_LEDGER_UNAVAIL" in hits and "BG_BOUNCE" in hits, hits
            assert score < 5, (sorted(hits), score)
            assert time.monotonic() - t0 < 30
        log = site.spamd.log.read_text(errors="replace")
        # logged once a minute, not once a message (two messages, each checked twice: 4 lookups)
        assert log.count("warn: bouncegen: ledger redis://127.0.0.1:") == 1, log[-3000:]
    finally:
        if site is not None:
            site.stop()
        server.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_redis_password_never_logged(redis_site):
    sa = redis_site.dir / "out" / "spamassassin"
    # The plugin needs the password: it is in the ledger's own file, never in the ruleset that
    # sa-update channels carry.
    assert "bouncegen_ledger      redis://:t3st-pw@" in (sa / "72_bouncegen_ledger.cf").read_text()
    assert "t3st-pw" not in (sa / "72_bouncegen.cf").read_text()
    log = redis_site.spamd.log.read_text(errors="replace") + redis_site.spamd.errlog.read_text(errors="replace")
    assert "t3st-pw" not in log
