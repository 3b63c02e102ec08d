"""Relay rescue (__BG_RESCUE, __BG_RESCUE_REPLY) through the real spamd.

Each inventory below is rendered (and linted) with bouncegen, loaded into one private spamd for
the session, and every case's whole message is checked through spamc, LF and CRLF. Sub-rules
(``__*``) are never reported by ``spamc -y``, so the daemon gets a test-only extra config that
exposes them as tiny-score metas: BGTEST_RESCUE, BGTEST_REPLY, and BGTEST_MYSERVERS for stock
VBounce's __MY_SERVERS_FOUND (to show what our rescue does better: the forged-HELO case).

Every message here was written for this test; none is copied from a real mail or a corpus.
"""

from __future__ import annotations

import base64
import quopri
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from bouncegen import engines
from bouncegen.engines.spamd import Spamd
from bouncegen.errors import TemplateError
from bouncegen.renderer import inventory, lint, render
from support import need  # under CI a missing engine fails, never skips

pytestmark = pytest.mark.spamassassin

EXPOSE_CF = """
# test only: expose the rescue sub-rules to spamc -y
meta  BGTEST_RESCUE    __BG_RESCUE
score BGTEST_RESCUE    0.001
meta  BGTEST_REPLY     __BG_RESCUE_REPLY
score BGTEST_REPLY     0.001
meta  BGTEST_MYSERVERS __MY_SERVERS_FOUND
score BGTEST_MYSERVERS 0.001
"""

INVENTORIES = {
    # the shipped example: exact relays with IPv4/IPv6 addresses and ranges, and a glob relay
    # without addresses
    "example": None,
    # IDN domain and IDN glob relay; IPv6 and IPv4 ranges only
    "idn": """\
        [site]
        domains = ["bücher.example", "example.com"]
        [[relay]]
        host = "relais-*.bücher.example"
        addresses = ["2001:db8:abc::/48", "203.0.113.64/26"]
        [[relay]]
        host = "out.example.com"
        addresses = ["2001:db8:1::/64"]
        """,
    # the foundation's tricky inventory: IDN glob relay without addresses, glob relay with an
    # IPv6 /48, policy "tag" and regexp tables
    "tricky": Path(__file__).resolve().parent / "data" / "inventories" / "tricky-idn-glob-regexp.toml",
}

REPO = Path(__file__).resolve().parent.parent


def load_inventory(name: str, tmp: Path) -> inventory.Inventory:
    if INVENTORIES[name] is None:
        return inventory.load(REPO / "inventory.example.toml")
    if isinstance(INVENTORIES[name], Path):
        return inventory.load(INVENTORIES[name])
    path = tmp / f"{name}.toml"
    path.write_text(textwrap.dedent(INVENTORIES[name]), encoding="utf-8")
    return inventory.load(path)


def _drain_stderr(d: Spamd) -> None:
    """Read spamd's stderr if it is a pipe: spamd logs every message there too, and a full pipe
    blocks its children after ~85 messages (fixed in spamd.py on other branches: a file)."""
    pipe = getattr(d.proc, "stderr", None)
    if pipe is not None:
        def drain():
            try:
                while pipe.read(65536):
                    pass
            except (OSError, ValueError):  # closed by Spamd.stop()
                pass
        threading.Thread(target=drain, daemon=True).start()


@pytest.fixture(scope="session")
def daemons(tmp_path_factory):
    """One spamd per inventory, started lazily, stopped at the end of the session."""
    need("spamassassin", "spamd", "spamc")
    started: dict[str, Spamd] = {}

    def get(name: str) -> Spamd:
        if name not in started:
            tmp = tmp_path_factory.mktemp(f"rescue-{name}")
            inv = load_inventory(name, tmp)
            render.render(inv, tmp / "out", require_tools=True)  # lints with spamassassin --lint
            d = Spamd(tmp / "out" / "spamassassin", children=2, extra_cf=EXPOSE_CF).start()
            _drain_stderr(d)
            started[name] = d
        return started[name]

    yield get
    for d in started.values():
        d.stop()


# -------------------------------------------------------------------------------------------------
# Message builders. A bounce from a remote MX to one of our users; what it quotes is the case.

TOP = """\
Received: from mx.remote.test (mx.remote.test [203.0.113.50])
\tby mx1.example.org (Postfix) with ESMTPS id 4ZtQ1
\tfor <alice@example.org>; Fri, 27 Nov 2026 10:00:05 +0000 (UTC)
From: Mail Delivery System <MAILER-DAEMON@mx.remote.test>
To: alice@example.org
Date: Fri, 27 Nov 2026 10:00:04 +0000
Message-ID: <bounce.4ZtQ0@mx.remote.test>
MIME-Version: 1.0
"""

ORIGINAL_REST = """\
From: Alice <alice@example.org>
To: bob@remote.test
Subject: lunch on friday
Date: Fri, 27 Nov 2026 09:59:58 +0000
Message-ID: <lunch.77@example.org>
"""


def original(*hops: str, body: str = "Shall we meet at noon?\n") -> str:
    """The headers and body of the message that bounced, with the given Received: hops."""
    return "".join(f"Received: {h}\n" for h in hops) + ORIGINAL_REST + "\n" + body


def dsn(part_headers: str, part_body: str) -> str:
    """multipart/report with a text part, a delivery-status part and the given third part."""
    return (TOP + "Subject: Undelivered Mail Returned to Sender\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\n\n'
            "--b1\nContent-Type: text/plain; charset=us-ascii\n\n"
            "I'm sorry to have to inform you that your message could not be delivered.\n\n"
            "--b1\nContent-Type: message/delivery-status\n\n"
            "Reporting-MTA: dns; mx.remote.test\n\nFinal-Recipient: rfc822; bob@remote.test\n"
            "Action: failed\nStatus: 5.1.1\n\n"
            f"--b1\n{part_headers}\n\n{part_body}\n--b1--\n")


def attached(*hops: str) -> str:
    return dsn("Content-Type: message/rfc822", original(*hops))


def headers_part(*hops: str) -> str:
    return dsn("Content-Type: text/rfc822-headers", original(*hops, body=""))


def global_part(*hops: str) -> str:
    return dsn("Content-Type: message/global", original(*hops))


def base64_attached(*hops: str) -> str:
    data = base64.encodebytes(original(*hops).encode()).decode()
    return dsn("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64", data)


def base64_headers(*hops: str) -> str:
    data = base64.encodebytes(original(*hops, body="").encode()).decode()
    return dsn("Content-Type: text/rfc822-headers\nContent-Transfer-Encoding: base64", data)


def plain_bounce(*hops: str) -> str:
    """A non-MIME bounce (qmail style): the copy of the message follows the text, unindented."""
    return (TOP + "Subject: failure notice\n\n"
            "Hi. This is the mail transport agent at mx.remote.test.\n"
            "I could not deliver your message to the following address.\n\n"
            "<bob@remote.test>:\nSorry, no mailbox here by that name.\n\n"
            "--- Below this line is a copy of the message.\n\n" + original(*hops))


def qp_bounce(*hops: str) -> str:
    """The copy of the message inside a quoted-printable text part, soft line breaks and all."""
    text = ("Your message could not be delivered. Its header follows.\n\n"
            + original(*hops, body=""))
    data = quopri.encodestring(text.encode(), quotetabs=False).decode()
    # Soft-break every long line in the middle of a word, as some encoders do.
    lines = []
    for line in data.splitlines():
        while len(line) > 40:
            cut = 37 if line[36] != "=" and line[35] != "=" else 34
            lines.append(line[:cut] + "=")
            line = line[cut:]
        lines.append(line)
    return (TOP + "Subject: Returned mail\nContent-Type: multipart/mixed; boundary=\"q1\"\n\n"
            "--q1\nContent-Type: text/plain; charset=us-ascii\n"
            "Content-Transfer-Encoding: quoted-printable\n\n" + "\n".join(lines) + "\n--q1--\n")


def quoted_reply(*hops: str, prefix: str = "> ") -> str:
    """An auto-reply quoting the original's header with '> '."""
    quoted = "".join(prefix + line + "\n" for line in original(*hops, body="See you.").splitlines())
    return ("Received: from mx.remote.test (mx.remote.test [203.0.113.50])\n"
            "\tby mx1.example.org (Postfix) with ESMTPS id 4ZtQ2; Fri, 27 Nov 2026 10:00:07 +0000\n"
            "From: Bob <bob@remote.test>\nTo: alice@example.org\nSubject: Out of office: lunch on friday\n"
            "Date: Fri, 27 Nov 2026 10:00:06 +0000\nMessage-ID: <ooo.1@remote.test>\n"
            "Auto-Submitted: auto-replied\n\n"
            "I am away until Monday. Your message:\n\n" + quoted)


def forwarded_twice(*hops: str) -> str:
    """message/rfc822 inside multipart/mixed inside message/rfc822 (a forwarded bounce)."""
    inner = ('From: MAILER-DAEMON@relay.remote.test\nTo: alice@example.org\nSubject: bounce\n'
             'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="i1"\n\n'
             "--i1\nContent-Type: text/plain\n\nnot delivered\n"
             f"--i1\nContent-Type: message/rfc822\n\n{original(*hops)}\n--i1--\n")
    return dsn("Content-Type: message/rfc822", inner)


def auto_reply(**headers: str) -> str:
    """An auto-reply that quotes nothing, with the given extra top-level headers."""
    extra = "".join(f"{k.replace('_', '-')}: {v}\n" for k, v in headers.items())
    return ("Received: from mx.remote.test (mx.remote.test [203.0.113.50])\n"
            "\tby mx1.example.org (Postfix) with ESMTPS id 4ZtQ3; Fri, 27 Nov 2026 10:00:09 +0000\n"
            "From: Bob <bob@remote.test>\nTo: alice@example.org\nSubject: Automatic reply: hello\n"
            "Date: Fri, 27 Nov 2026 10:00:08 +0000\nMessage-ID: <ooo.2@remote.test>\n"
            f"Auto-Submitted: auto-replied\n{extra}\nThanks for your mail, I will answer next week.\n")


def prose_bounce(text: str) -> str:
    return TOP + "Subject: Delivery failure\n\n" + text


# Hops, written as each MTA writes them (dates shortened to one format).
D = "Fri, 27 Nov 2026 09:59:59 +0000"
POSTFIX = f"from smtp1.out.example.org (smtp1.out.example.org [192.0.2.25])\n\tby mx.remote.test (Postfix) with ESMTPS id 4ZtP9\n\tfor <bob@remote.test>; {D}"
FORGED_HELO = f"from smtp1.out.example.org (unknown [203.0.113.9])\n\tby mx.remote.test (Postfix) with ESMTP id 4ZtP8\n\tfor <bob@remote.test>; {D}"
CLIENT = f"from [10.20.0.7] (unknown [203.0.113.77])\n\tby mx.spam.test (Postfix) with ESMTP id 11; {D}"


@dataclass(frozen=True)
class Case:
    name: str
    message: str
    rescue: bool
    reply: bool | None = None  # default: same as rescue
    inv: str = "example"
    myservers: bool | None = None  # stock VBounce __MY_SERVERS_FOUND, where the case shows it


def returned(rescue: bool, hops: dict[str, str], inv: str = "example") -> list[Case]:
    """One case a hop: a returned original whose one Received: line is the hop (its date
    appended), named by its key; the rescue expected of each is RESCUE."""
    return [Case(name, attached(f"{hop}; {D}"), rescue, inv=inv) for name, hop in hops.items()]


CASES = [
    # --- hostname / address in the usual Received: forms --------------------------------------
    Case("postfix-rdns-ip", attached(POSTFIX), True),
    *returned(True, {
        "postfix-by-local": "by smtp1.out.example.org (Postfix, from userid 1000)\n\tid 4ZtP1",
        "by-semicolon": "by smtp2.out.example.org",
        "by-trailing-dot": "from client.example.org (client.example.org [203.0.113.80])\n\tby smtp1.out.example.org. (Postfix) with ESMTPSA id 4ZtP2",
        "by-upper-case": "FROM WS17 (UNKNOWN [203.0.113.81]) BY SMTP2.OUT.EXAMPLE.ORG (POSTFIX) WITH ESMTPSA ID 4ZtP3",
        "gmail-rdns-trailing-dot": "from smtp1.out.example.org (smtp1.out.example.org. [192.0.2.25])\n        by mx.google.test with ESMTPS id x12si",
        "sendmail-may-be-forged": "from smtp2.out.example.org (smtp2.out.example.org [198.51.100.7] (may be forged))\n\tby relay.remote.test (8.17.1/8.17.1) with ESMTP id 2ARA0x",
        "sendmail-submit": "(from alice@localhost)\n\tby smtp1.out.example.org (8.17.1/8.17.1/Submit) id 2ARA0y",
        "exim-helo-literal-from": "from [192.0.2.25] (port=51234 helo=smtp1.out.example.org)\n\tby mx.exim.test with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384\n\t(Exim 4.96) (envelope-from <alice@example.org>) id 1qA-0001",
        "exim-rdns-glob-relay": "from mailout-3.example.net ([203.0.113.7])\n\tby mx.exim.test with esmtp (Exim 4.96)\n\t(envelope-from <alice@example.net>) id 1qB-0002",
        "postfix-rdns-glob-relay": "from mailout-3.example.net (mailout-3.example.net [203.0.113.7])\n\tby mx.remote.test (Postfix) with ESMTPS id 4ZtP4",
        "qmail": "from unknown (HELO smtp1.out.example.org) (192.0.2.25)\n  by mx.qmail.test with SMTP",
        "exchange": "from SMTP2.OUT.EXAMPLE.ORG (198.51.100.9) by\n EXCH01.corp.remote.test (10.1.2.3) with Microsoft SMTP Server (version=TLS1_2,\n cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.2.1118.40",
        "yahoo-from-address": "from 192.0.2.25 (EHLO smtp1.out.example.org)\n  by mta1.yahoo.test with SMTPS",
        "folded-many-lines": "from smtp1.out.example.org\n\t(smtp1.out.example.org\n\t [192.0.2.25])\n\tby\n\t mx.remote.test\n\t(Postfix)\n\twith ESMTPS id 4ZtP5",
        "dragonfly-local": "from alice (uid 1000)\n\t(envelope-from alice@example.org)\n\tid 5e1f0\n\tby smtp1.out.example.org (DragonFly Mail Agent v0.13)\n\t",
        "indimail-queue": "indimail-mta queue 4411 by host smtp2.out.example.org\n (invoked by uid 1000)",
        "powermta-no-from-token": "from (127.0.0.1) by smtp1.out.example.org (PowerMTA(TM) v5.0r1)\n    id 9f2a for <bob@remote.test>",
        "imail-bracket-after-name": "from smtp1.out.example.org [192.0.2.25] by mail.remote.test with ESMTP\n    (SMTPD32-8.15) id 0A1B2C3D",
    }),
    # --- addresses ----------------------------------------------------------------------------
    *returned(True, {
        "ipv4-exact": "from relay (unknown [192.0.2.25]) by mx.remote.test (Postfix) id 1",
        "ipv4-in-range": "from relay (unknown [198.51.100.14]) by mx.remote.test (Postfix) id 1",
        "ipv6-prefix-compressed": "from relay (unknown [IPv6:2001:db8:25::25]) by mx.remote.test (Postfix) id 1",
        "ipv6-uncompressed": "from relay (unknown [2001:0db8:0025:0000:0000:0000:0000:0025]) by mx.remote.test id 1",
        "ipv6-no-leading-zeros": "from relay (unknown [IPv6:2001:db8:25:0:0:0:0:25]) by mx.remote.test id 1",
        "ipv6-upper-case": "from RELAY (2001:DB8:25::25) by EXCH02.corp.remote.test (2001:db8:ff::2) with Microsoft SMTP Server id 15.2",
        "ipv6-in-range": "from relay (unknown [IPv6:2001:db8:26:ab::1]) by mx.remote.test (Postfix) id 1",
        "ipv6-exim-port": "from relay ([2001:db8:26::7]:40112 helo=x) by mx.exim.test with esmtp (Exim 4.96) id 1",
        "ipv4-mapped-ipv6": "from relay (unknown [::ffff:192.0.2.25]) by mx.remote.test id 1",
        "address-in-by": "from ws1 (ws1 [10.1.1.1]) by [192.0.2.25] with ESMTP id 1",
    }),
    # --- where the hop is found ----------------------------------------------------------------
    Case("text-rfc822-headers", headers_part(CLIENT, POSTFIX), True),
    Case("message-global", global_part(POSTFIX), True),
    Case("base64-attached-message", base64_attached(CLIENT, POSTFIX), True),
    Case("base64-headers-part", base64_headers(POSTFIX), True),
    Case("quoted-printable", qp_bounce(CLIENT, POSTFIX), True),
    Case("plain-non-mime-bounce", plain_bounce(POSTFIX), True),
    Case("quoted-reply", quoted_reply(POSTFIX), True),
    Case("quoted-twice", quoted_reply(POSTFIX, prefix="> > "), True),
    Case("quoted-no-space", quoted_reply(POSTFIX, prefix=">"), True),
    Case("reflowed-without-indent", prose_bounce(
        "Original message headers:\n\nReceived: from WS42.corp.example.org\n(10.0.0.42) by\n"
        f"smtp1.out.example.org (10.0.0.25) with Microsoft SMTP Server id 15.2;\n{D}\nSubject: lunch\n"), True),
    Case("reflow-stops-at-date", prose_bounce(
        f"Received: from a (a [203.0.113.9]) by mx.remote.test; {D}\nforwarded by smtp1.out.example.org\n"), False),
    Case("reflow-stops-at-header", prose_bounce(
        "Received: from a (a [203.0.113.9])\nX-Note: by smtp1.out.example.org\n"), False),
    Case("nested-forwarded-bounce", forwarded_twice(POSTFIX), True),
    # our relay's own hops below the foreign MX that received from it (a returned original)
    Case("returned-original-two-hops", attached(POSTFIX, f"from ws (ws [10.0.0.9])\n\tby smtp1.out.example.org (Postfix) with ESMTPSA id 4ZtP0; {D}"), True),
    Case("returned-list-post", attached(POSTFIX, f"from example.org (list.example.org [192.0.2.30])\n\tby smtp1.out.example.org (Postfix) with ESMTP id 4ZtP0; {D}"), True),
    # --- not evidence --------------------------------------------------------------------------
    # a hop "by our relay" below a hop whose client was somebody else: the spammer's own text
    Case("fabricated-lower-by-hop", attached(f"from bot.spam.test (unknown [203.0.113.66])\n\tby mx.remote.test (Postfix) with ESMTP id 9; {D}", f"from ws (ws [10.0.0.9])\n\tby smtp1.out.example.org (Postfix) with ESMTPSA id 8; {D}"), False),
    Case("fabricated-lower-by-address", attached(CLIENT, f"from ws1 (ws1 [10.1.1.1]) by [192.0.2.25] with ESMTP id 1; {D}"), False),
    Case("fabricated-lower-by-headers-part", headers_part(CLIENT, f"by smtp2.out.example.org (Postfix, from userid 1000) id 7; {D}"), False),
    Case("forged-helo-foreign-ip", attached(CLIENT, FORGED_HELO), False, myservers=True),
    Case("forged-helo-sendmail-no-rdns", attached(f"from smtp1.out.example.org ([203.0.113.9])\n\tby relay.remote.test (8.17.1/8.17.1) with ESMTP id 2ARA1; {D}"), False, myservers=True),
    Case("forged-helo-exchange", attached(f"from smtp1.out.example.org (203.0.113.9) by EXCH01.corp.remote.test (10.1.2.3) with Microsoft SMTP Server id 15.2; {D}"), False, myservers=True),
    *returned(False, {
        "forged-helo-exim": "from host9.spam.test ([203.0.113.9] helo=smtp1.out.example.org)\n\tby mx.exim.test with esmtp (Exim 4.96) id 1qC",
        "forged-helo-qmail": "from unknown (HELO smtp1.out.example.org) (203.0.113.9)\n  by mx.qmail.test with SMTP",
        "forged-helo-address-literal": "from [192.0.2.25] (unknown [203.0.113.9])\n\tby mx.remote.test (Postfix) with ESMTP id 4ZtP7",
        "forged-helo-exim-literal": "from [203.0.113.9] (helo=[192.0.2.25]) by mx.exim.test with esmtp (Exim 4.96) id 1qD",
        "forged-qmail-helo-injection": "from unknown (HELO x by smtp1.out.example.org (Postfix)) (203.0.113.9)\n  by mx.qmail.test with SMTP",
    }),
    # HELO injection: some MTAs copy a HELO with spaces and parentheses into the hop
    *returned(False, {
        "helo-injects-by-clause": "from x by smtp1.out.example.org (unknown [203.0.113.9])\n\tby mx.remote.test (Postfix) with ESMTP id 4ZtP6",
        "helo-injects-tcp-info": "from x ([192.0.2.25]) (unknown [203.0.113.9])\n\tby mx.remote.test (Postfix) with ESMTP id 4ZtP6",
        "helo-injects-bracket": "from x [192.0.2.25] (unknown [203.0.113.9])\n\tby mx.remote.test (Postfix) with ESMTP id 4ZtP6",
        "helo-injects-rdns": "from x (mailout-1.example.net [203.0.113.7]) (unknown [203.0.113.9])\n\tby mx.remote.test (Postfix) id 4ZtP6",
        "ehlo-injects-address": "from 203.0.113.9 (EHLO x) (192.0.2.25)\n  by mta1.yahoo.test with SMTPS",
        "envelope-from-address": "from alice (uid 1000) (envelope-from x [192.0.2.25]) id 1 by mx.remote.test (DragonFly Mail Agent v0.13)",
        "rdns-ours-but-foreign-ip": "from smtp1.out.example.org (smtp1.out.example.org [203.0.113.9]) by mx.remote.test (Postfix) id 1",
        "helo-ours-private-ip": "from smtp1.out.example.org (localhost [127.0.0.1]) by mx.remote.test (Postfix) id 1",
        "glob-relay-rdns-private-ip": "from mailout-3.example.net (mailout-3.example.net [10.0.0.3]) by mx.remote.test (Postfix) id 1",
    }),
    Case("look-alike-suffix", attached(f"from a (a [203.0.113.9]) by smtp1.out.example.org.relay.test (Postfix) id 1; {D}"), False, myservers=False),
    *returned(False, {
        "look-alike-prefix": "from a (a [203.0.113.9]) by xsmtp1.out.example.org (Postfix) id 1",
        "look-alike-glob": "from a (a [203.0.113.9]) by mailout-12.example.net (Postfix) id 1",
        "look-alike-rdns": "from a (smtp1.out.example.org.relay.test [203.0.113.9]) by mx.remote.test (Postfix) id 1",
        "ipv4-contains-ours": "from a (unknown [192.0.2.251]) by mx.remote.test (Postfix) id 1",
        "ipv4-prefix-of-ours": "from a (unknown [192.0.2.2]) by mx.remote.test (Postfix) id 1",
        "ipv4-outside-range": "from a (unknown [198.51.100.16]) by mx.remote.test (Postfix) id 1",
        "ipv4-in-hostname": "from a (192.0.2.25.static.isp.test [203.0.113.9]) by mx.remote.test (Postfix) id 1",
        "ipv6-contains-ours": "from a (unknown [IPv6:2001:db8:25::251]) by mx.remote.test (Postfix) id 1",
        "ipv6-outside-range": "from a (unknown [IPv6:2001:db8:27::1]) by mx.remote.test (Postfix) id 1",
    }),
    Case("relay-in-prose", prose_bounce(
        "Your message to <bob@remote.test> was relayed by smtp1.out.example.org [192.0.2.25]\n"
        "and then refused by mx.remote.test. Received: 1 copy.\n"
        "Reporting host: smtp1.out.example.org (192.0.2.25)\n"), False),
    Case("relay-only-in-own-header", (
        "Received: from mx.remote.test (mx.remote.test [203.0.113.50])\n"
        "\tby smtp1.out.example.org (Postfix) with ESMTPS id 4ZtQ4; Fri, 27 Nov 2026 10:00:05 +0000\n"
        + TOP.split("\n", 3)[3] + "Subject: Undeliverable\n\nYour message could not be delivered.\n"), False),
    Case("delivery-status-received-from-mta", dsn(
        "Content-Type: message/delivery-status",
        "Reporting-MTA: dns; mx.remote.test\nReceived-From-MTA: dns; smtp1.out.example.org\n\n"
        "Final-Recipient: rfc822; carol@remote.test\nAction: failed\nStatus: 5.1.1\n"), False),
    # --- In-Reply-To / References --------------------------------------------------------------
    Case("in-reply-to-domain", auto_reply(In_Reply_To="<lunch.77@example.org>"), False, reply=True),
    Case("references-relay-host", auto_reply(References="<a.1@remote.test>\n <q.2@smtp1.out.example.org>"), False, reply=True),
    Case("references-glob-relay", auto_reply(References="<x.3@mailout-4.example.net>"), False, reply=True),
    Case("in-reply-to-trailing-dot-case", auto_reply(In_Reply_To="<x.4@Example.NET.>"), False, reply=True),
    Case("msgid-subdomain", auto_reply(In_Reply_To="<x.5@mail.example.org>"), False, reply=False),
    Case("msgid-superdomain", auto_reply(In_Reply_To="<x.6@org>", References="<x.7@out.example.org>"), False, reply=False),
    Case("msgid-look-alike", auto_reply(In_Reply_To="<x.8@example.org.evil.test>", References="<x.9@notexample.org>"), False, reply=False),
    Case("msgid-in-text-only", auto_reply(X_Original_Message_ID="<x.10@example.org>"), False, reply=False),
    Case("quoted-message-id-not-evidence", quoted_reply(CLIENT), False, reply=False),
    # --- tricky inventory: IDN domain, IDN glob relay, IPv6 and IPv4 ranges ----------------------
    *returned(True, {
        "idn-glob-by": "from ws (ws [10.0.0.9]) by relais-eu1.xn--bcher-kva.example (Postfix) id 1",
        "idn-ipv6-range": "from a (unknown [IPv6:2001:db8:abc:ffff::9]) by mx.remote.test id 1",
        "idn-ipv6-64": "from a (unknown [2001:db8:1:0:ffff:ffff:ffff:ffff]) by mx.remote.test id 1",
        "idn-ipv4-range": "from a (unknown [203.0.113.127]) by mx.remote.test id 1",
    }, inv="idn"),
    *returned(False, {
        "idn-ipv4-outside": "from a (unknown [203.0.113.128]) by mx.remote.test id 1",
        "idn-ipv6-outside": "from a (unknown [2001:db8:abd::9]) by mx.remote.test id 1",
        "idn-ipv6-64-outside": "from a (unknown [2001:db8:1:1::1]) by mx.remote.test id 1",
        "idn-glob-look-alike": "from a (a [203.0.113.9]) by relais-eu1.xn--bcher-kva.example.test id 1",
    }, inv="idn"),
    Case("idn-example-relays-unknown", attached(POSTFIX), False, inv="idn"),
    Case("tricky-idn-glob-by", attached(f"from ws (ws [10.0.0.9]) by mailout-a.xn--bcher-kva.example (Postfix) id 1; {D}"), True, inv="tricky"),
    Case("tricky-idn-glob-rdns", attached(f"from mailout-b.xn--bcher-kva.example (mailout-b.xn--bcher-kva.example [203.0.113.20]) by mx.remote.test (Postfix) id 1; {D}"), True, inv="tricky"),
    Case("tricky-idn-glob-two-chars", attached(f"from a (a [203.0.113.9]) by mailout-ab.xn--bcher-kva.example (Postfix) id 1; {D}"), False, inv="tricky"),
    Case("tricky-star-glob-by", attached(f"by smtp-eu-7.out.example.net (Postfix, from userid 33) id 1; {D}"), True, inv="tricky"),
    Case("tricky-star-glob-forged-helo", attached(f"from smtp9.out.example.net (unknown [203.0.113.9]) by mx.remote.test (Postfix) id 1; {D}"), False, inv="tricky"),
    Case("tricky-ipv6-48", attached(f"from a (unknown [IPv6:2001:db8:25:ffff:ffff:ffff:ffff:ffff]) by mx.remote.test id 1; {D}"), True, inv="tricky"),
    Case("tricky-ipv6-single", attached(f"from a (unknown [2001:0db8:0000:0000:0000:0000:0000:0025]) by mx.remote.test id 1; {D}"), True, inv="tricky"),
    Case("tricky-ipv6-single-neighbour", attached(f"from a (unknown [2001:db8::26]) by mx.remote.test id 1; {D}"), False, inv="tricky"),
    Case("tricky-msgid-idn", auto_reply(References="<r.1@xn--bcher-kva.example>"), False, reply=True, inv="tricky"),
    Case("idn-msgid", auto_reply(In_Reply_To="<x.11@xn--bcher-kva.example>"), False, reply=True, inv="idn"),
]


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


@pytest.mark.parametrize("endings", ["lf", "crlf"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rescue(case: Case, endings: str, daemons):
    d = daemons(case.inv)
    data = case.message.encode("utf-8") if endings == "lf" else crlf(case.message)
    result = d.check(data)
    assert result.ok, result.error
    hits = set(result.tests)
    want_reply = case.rescue if case.reply is None else case.reply
    assert ("BGTEST_RESCUE" in hits) == case.rescue, f"__BG_RESCUE should {'' if case.rescue else 'not '}fire; hits: {sorted(hits)}"
    assert ("BGTEST_REPLY" in hits) == want_reply, f"__BG_RESCUE_REPLY should {'' if want_reply else 'not '}fire; hits: {sorted(hits)}"
    if case.myservers is not None:
        assert ("BGTEST_MYSERVERS" in hits) == case.myservers, f"stock __MY_SERVERS_FOUND; hits: {sorted(hits)}"


def test_case_names_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


# -------------------------------------------------------------------------------------------------
# Configuration: rendered values are checked twice (escape filter, and the plugin itself).

def test_render_outputs_plugin(tmp_path):
    inv = inventory.load(REPO / "inventory.example.toml")
    files = render.render_files(inv)
    assert "loadplugin Mail::SpamAssassin::Plugin::BouncegenRescue BouncegenRescue.pm" in files["spamassassin/72_bouncegen.pre"]
    pm = files["spamassassin/BouncegenRescue.pm"]
    assert "package Mail::SpamAssassin::Plugin::BouncegenRescue;" in pm
    assert pm.startswith("# spamassassin/BouncegenRescue.pm: generated by bouncegen")
    cf = files["spamassassin/72_bouncegen.cf"]
    assert "bouncegen_relay  smtp2.out.example.org 198.51.100.0/28 2001:db8:26::/48\n" in cf
    assert cf.count("eval:bouncegen_rescue()") == 1
    assert render.render_files(inv) == files  # byte-identical for the same inventory


@pytest.mark.parametrize("value", ["a b", "x#y", "a\nb", "[::1]", "", "ä.example"])
def test_sa_word_refuses(value):
    from bouncegen.renderer.escape import sa_word
    with pytest.raises(ValueError):
        sa_word(value)


def test_render_refuses_value_that_is_not_one_word(tmp_path):
    import dataclasses
    inv = inventory.load(REPO / "inventory.example.toml")
    bad = dataclasses.replace(inv, domains=("example.org bad.test",))
    with pytest.raises(TemplateError):
        render.render_files(bad)


BAD_SETTINGS = [
    "bouncegen_relay  *.net",                               # glob too broad
    "bouncegen_relay  smtp*.org",                           # glob in the second-to-last label
    "bouncegen_relay  .*",                                  # a regex, not a host
    "bouncegen_relay  smtp1.out.example.org 0.0.0.0/0",     # the whole Internet
    "bouncegen_relay  smtp1.out.example.org 192.0.0.0/8",   # wider than /16
    "bouncegen_relay  smtp1.out.example.org 2001:db8::/16", # wider than /32
    "bouncegen_relay  smtp1.out.example.org 10.1.0.0/16",   # private: every site's internal hops
    "bouncegen_relay  smtp1.out.example.org ::1",           # loopback
    "bouncegen_relay  smtp1.out.example.org 192.0.2.1/24",  # host bits set
    "bouncegen_relay  smtp1.out.example.org 192.0.2.025",   # not a canonical address
    "bouncegen_relay  smtp1.out.example.org 0xc0000219",    # not an address at all
    "bouncegen_relay  smtp1_out.example.org",               # not a host name
    "bouncegen_domain *.example.org",                       # no globs for domains
    "bouncegen_domain org",                                 # not a mail domain
]


def test_plugin_refuses_bad_settings(tmp_path):
    """Every bad setting is a lint error of the real spamassassin, each on its own line."""
    need("spamassassin")
    inv = inventory.load(REPO / "inventory.example.toml")
    files = render.render_files(inv)
    cf = files["spamassassin/72_bouncegen.cf"]
    anchor = "ifplugin Mail::SpamAssassin::Plugin::BouncegenRescue\n"
    assert anchor in cf
    files["spamassassin/72_bouncegen.cf"] = cf.replace(anchor, anchor + "".join(f"  {s}\n" for s in BAD_SETTINGS))
    render.write_tree(files, tmp_path / "out")
    problems = lint.lint_spamassassin(tmp_path / "out", tmp_path)
    for setting in BAD_SETTINGS:
        assert any(f": {setting}" in p and "invalid" in p for p in problems), (setting, problems)


def test_lint_passes_and_loads_plugin(tmp_path):
    need("spamassassin")
    inv = inventory.load(REPO / "inventory.example.toml")
    render.write_tree(render.render_files(inv), tmp_path / "out")
    assert lint.lint_spamassassin(tmp_path / "out", tmp_path) == []
    # without the .pre the rescue block is skipped: the plugin is what defines the sub-rules
    site = engines.sa_site_dir(tmp_path / "site", tmp_path / "out" / "spamassassin")
    proc = engines.run([engines.require("spamassassin"), "--lint", "-D", "plugin", f"--siteconfigpath={site}",
                        "--prefspath=/dev/null"], env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C"})
    assert "loading Mail::SpamAssassin::Plugin::BouncegenRescue from " + str(site / "BouncegenRescue.pm") in proc.stderr
