"""Building blocks for the corpus samples: dates, IDs, Received hops, envelopes, MIME parts.

Everything here is written for bouncegen; the shapes follow what the usual MTAs print, the words,
names, addresses and IDs are our own. Only documentation networks (RFC 5737, RFC 3849) and
example/test domains are used. A fixed random seed keeps the output reproducible.
"""

from __future__ import annotations

import base64
import email.header
import email.utils
import datetime as dt
import quopri
import random
import string

RNG = random.Random(20261127)

TZ = {
    "utc": dt.timezone.utc,
    "cet": dt.timezone(dt.timedelta(hours=1)),
    "est": dt.timezone(dt.timedelta(hours=-5)),
    "jst": dt.timezone(dt.timedelta(hours=9)),
    "brt": dt.timezone(dt.timedelta(hours=-3)),
}
BASE = dt.datetime(2026, 11, 20, 7, 0, 0, tzinfo=dt.timezone.utc)

# --- our site (corpus/inventory.toml) -------------------------------------------------------
USERS = [
    "alice@example.org", "bob.martin@example.org", "carol@example.net", "dave@example.net",
    "erik.svensson@example.org", "fatima.haddad@example.org", "g.rossi@example.net",
    "hans.mueller@example.org", "ines.costa@example.net", "jules.bernard@example.org",
    "k.tanaka@example.org", "lena.jansen@example.net", "sales@example.org", "info@example.net",
]
NAMES = {
    "alice@example.org": "Alice Walker", "bob.martin@example.org": "Bob Martin",
    "carol@example.net": "Carol Nguyen", "dave@example.net": "Dave O'Brien",
    "erik.svensson@example.org": "Erik Svensson", "fatima.haddad@example.org": "Fatima Haddad",
    "g.rossi@example.net": "Giulia Rossi", "hans.mueller@example.org": "Hans Mueller",
    "ines.costa@example.net": "Ines Costa", "jules.bernard@example.org": "Jules Bernard",
    "k.tanaka@example.org": "Kenji Tanaka", "lena.jansen@example.net": "Lena Jansen",
    "sales@example.org": "Example Sales", "info@example.net": "Example Info",
}

_counter = 0


def pick(seq):
    return RNG.choice(seq)


def when(day: int = 0, minutes: int = 0, tz: str = "cet") -> dt.datetime:
    """A moment some days/minutes after BASE (with a little jitter), in the given zone."""
    global _counter
    _counter += 1
    t = BASE + dt.timedelta(days=day, minutes=minutes + 37 * _counter % 500, seconds=RNG.randrange(60))
    return t.astimezone(TZ[tz])


def later(t: dt.datetime, seconds: int) -> dt.datetime:
    return t + dt.timedelta(seconds=seconds)


def rfc(t: dt.datetime) -> str:
    """RFC 5322 date: 'Fri, 20 Nov 2026 08:14:03 +0100'."""
    return t.strftime("%a, %d %b %Y %H:%M:%S %z")


def rfc_qmail(t: dt.datetime) -> str:
    """qmail writes its Received dates in UTC as '20 Nov 2026 07:14:03 -0000'."""
    u = t.astimezone(dt.timezone.utc)
    return u.strftime("%d %b %Y %H:%M:%S -0000").lstrip("0")


def rfc_name(t: dt.datetime) -> str:
    """With a zone comment, as Postfix and Sendmail print it."""
    name = {3600: "CET", 0: "UTC", -18000: "EST", 32400: "JST", -10800: "-03"}[int(t.utcoffset().total_seconds())]
    return f"{rfc(t)} ({name})"


def _rand(alphabet: str, n: int) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def qid_postfix() -> str:
    """Postfix long queue ID (enable_long_queue_ids): base-52 time + inode part."""
    return RNG.choice("456789") + _rand("BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789", 11)


def qid_postfix_short() -> str:
    return _rand("0123456789ABCDEF", 10)


def qid_sendmail() -> str:
    return "5AK" + _rand(string.ascii_letters + string.digits, 5) + _rand(string.digits, 6)


def exim_id() -> str:
    b62 = string.digits + string.ascii_letters
    return "1" + _rand(b62, 5) + "-" + _rand(b62, 6) + "-" + _rand(b62, 2)


def hexid(n: int = 16) -> str:
    return _rand("0123456789abcdef", n)


def msgid(domain: str, style: str = "plain") -> str:
    if style == "outlook":
        return f"<{_rand(string.ascii_uppercase + string.digits, 4)}PR{RNG.randrange(10)}{_rand(string.ascii_uppercase + string.digits, 6)}{_rand(string.digits, 4)}" \
               f"{_rand(string.ascii_uppercase + string.digits, 12)}@{domain}>"
    if style == "uuid":
        h = hexid(32)
        return f"<{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}@{domain}>"
    return f"<{BASE.strftime('%Y%m%d')}{_rand(string.digits, 6)}.{hexid(8)}@{domain}>"


def boundary(kind: str = "plain") -> str:
    if kind == "outlook":
        return "_000_" + _rand(string.ascii_uppercase + string.digits, 36) + "_"
    if kind == "exim":
        return f"{RNG.randrange(1763000000, 1765000000)}-eximdsn-{RNG.randrange(10**9, 2 * 10**9)}"
    return "=_" + hexid(24)


def fold(text: str) -> str:
    """Hop text may use '\\n\\t' for continuation lines already; nothing else to do."""
    return text


# --- Received hops ---------------------------------------------------------------------------
# Each returns one complete 'Received: ...' header (folded with LF + TAB/spaces).

def hop_postfix(helo: str, rdns: str, ip: str, by: str, t, *, tls=True, rcpt=None, auth=False) -> str:
    addr = ip if ":" not in ip else f"IPv6:{ip}"
    with_ = "ESMTPSA" if auth else ("ESMTPS" if tls else "ESMTP")
    s = f"Received: from {helo} ({rdns} [{addr}])\n\tby {by} (Postfix) with {with_} id {qid_postfix()}"
    if rcpt:
        s += f"\n\tfor <{rcpt}>"
    return s + f"; {rfc_name(t)}"


def hop_postfix_by(client_helo: str, client_ip: str, by: str, t, *, rcpt=None) -> str:
    """A hop written BY our relay (submission from a client); the client is foreign or roaming."""
    return hop_postfix(client_helo, "unknown" if "." not in client_helo else client_helo, client_ip, by, t,
                       auth=True, rcpt=rcpt)


def hop_exim(helo: str, ip: str, by: str, t, *, rdns: str | None = None, sender: str | None = None,
             rcpt: str | None = None, port: int | None = None) -> str:
    # Exim's $sender_rcvhost: a verified host name, then ([ip]:port) and helo= only when the HELO
    # differs; without a host name, [ip] then (port=... helo=...).
    port = port or RNG.randrange(32768, 60999)
    if rdns:
        head = f"from {rdns} ([{ip}]:{port})" if helo.lower() == rdns.lower() else f"from {rdns} ([{ip}]:{port} helo={helo})"
    else:
        head = f"from [{ip}] (port={port} helo={helo})"
    s = f"Received: {head}\n\tby {by} with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384\n\t(Exim 4.97)"
    if sender:
        s += f"\n\t(envelope-from <{sender}>)"
    s += f"\n\tid {exim_id()}"
    if rcpt:
        s += f"\n\tfor {rcpt}"
    return s + f"; {rfc(t)}"


def hop_sendmail(helo: str, rdns: str, ip: str, by: str, t, *, rcpt=None, v6=False) -> str:
    addr = f"IPv6:{ip}" if v6 else ip
    s = f"Received: from {helo} ({rdns} [{addr}])\n\tby {by} (8.17.2/8.17.2) with ESMTP id {qid_sendmail()}"
    if rcpt:
        s += f"\n\tfor <{rcpt}>"
    return s + f"; {rfc_name(t)}"


def hop_qmail_net(helo: str, ip: str, by: str, t) -> str:
    return f"Received: from unknown (HELO {helo}) ({ip})\n  by {by} with SMTP; {rfc_qmail(t)}"


def hop_qmail_invoked(t, n=None) -> str:
    return f"Received: (qmail {n or RNG.randrange(1000, 99999)} invoked from network); {rfc_qmail(t)}"


def hop_exchange(helo: str, ip: str, by: str, by_ip: str, t) -> str:
    return (f"Received: from {helo} ({ip}) by {by}\n ({by_ip}) with Microsoft SMTP Server (version=TLS1_2,\n"
            f" cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.2.1544.11; {rfc(t)}")


def hop_o365(helo: str, ip: str, by: str, t) -> str:
    return (f"Received: from {helo} ({ip}) by\n {by} (2001:db8:f0::{RNG.randrange(16, 250):x}) with Microsoft\n"
            f" SMTP Server (version=TLS1_3, cipher=TLS_AES_256_GCM_SHA384) id 15.20.8158.{RNG.randrange(10, 40)}; "
            f"{t.astimezone(dt.timezone.utc).strftime('%a, %d %b %Y %H:%M:%S +0000')}")


def hop_sendmail_local(user: str, by: str, t) -> str:
    return f"Received: (from {user}@localhost)\n\tby {by} (8.17.2/8.17.2/Submit) id {qid_sendmail()};\n\t{rfc_name(t)}"


def hop_courier(helo: str, ip: str, by: str, t) -> str:
    return f"Received: from {helo} ({helo} [::ffff:{ip}])\n  by {by} with ESMTP; {rfc(t)}\n  id 00C1A0B2.{hexid(16).upper()}"


def hop_gmail(helo: str, ip: str, t, rcpt: str) -> str:
    return (f"Received: from {helo} ({helo}. [{ip}])\n        by mx.google.test with ESMTPS id "
            f"{_rand(string.ascii_lowercase + string.digits, 22)}.{RNG.randrange(100, 999)}.2026.11.{t.day:02d}.{RNG.randrange(10, 99)}\n"
            f"        for <{rcpt}>\n        (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256);\n"
            f"        {t.astimezone(dt.timezone(dt.timedelta(hours=-8))).strftime('%a, %d %b %Y %H:%M:%S -0800 (PST)')}")


# --- top-level envelope as our MX receives it --------------------------------------------------

def inbound(remote_helo: str, remote_ip: str, rcpt: str, t, *, sender: str = "", mode: str = "return-path",
            mx: str = "mx1.example.org", rdns: str | None = None, extra_hops: list[str] | None = None) -> str:
    """The headers our MX adds: Return-Path (after delivery) or X-Envelope-From (a milter's view).

    mode: 'return-path' (delivered), 'x-envelope' (in the SMTP session: no Return-Path yet),
    'both', or 'none'.
    """
    rdns = rdns or remote_helo
    lines = []
    if mode in ("return-path", "both"):
        lines.append(f"Return-Path: <{sender}>")
    if mode in ("x-envelope", "both"):
        lines.append(f"X-Envelope-From: <{sender}>")
    lines.append(hop_postfix(remote_helo, rdns, remote_ip, mx, t, rcpt=rcpt))
    for h in extra_hops or []:
        lines.append(h)
    return "\n".join(lines)


# --- MIME helpers ------------------------------------------------------------------------------

def b64(data: bytes | str, width: int = 76) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    enc = base64.b64encode(data).decode("ascii")
    return "\n".join(enc[i:i + width] for i in range(0, len(enc), width))


def qp(text: str) -> str:
    return quopri.encodestring(text.encode("utf-8")).decode("ascii")


def part(headers: str, body: str) -> str:
    return f"{headers}\n\n{body}"


def multipart(bnd: str, parts: list[str], preamble: str | None = None) -> str:
    out = []
    if preamble is not None:
        out.append(preamble + "\n")
    for p in parts:
        out.append(f"--{bnd}\n{p.rstrip(chr(10))}\n")
    out.append(f"--{bnd}--\n")
    return "\n".join(out)


def note_header(note: str) -> str:
    """X-Corpus-Note: the one idea this sample tests (folded to stay below 78 columns)."""
    words = note.split()
    lines, cur = [], "X-Corpus-Note:"
    for w in words:
        if len(cur) + 1 + len(w) > 76:
            lines.append(cur)
            cur = " " + w
        else:
            cur += " " + w
    lines.append(cur)
    return "\n".join(lines)


def _encode_header(line: str) -> str:
    """RFC 2047-encode a header line with non-ASCII text, as a MUA would (display names, subjects)."""
    name, _, value = line.partition(":")
    value = value.strip()
    if name.lower() in ("from", "to", "cc", "reply-to"):
        dn, addr = email.utils.parseaddr(value)
        return f"{name}: {email.utils.formataddr((dn, addr), charset='utf-8')}"
    return f"{name}: {email.header.Header(value, 'utf-8', header_name=name).encode()}"


def mail(note: str, head: str, body: str) -> str:
    """A whole message: the note first, then the headers, a blank line, the body."""
    head = head.strip("\n")
    lines = head.split("\n")
    for i, line in enumerate(lines):
        if not line.isascii() and not line[:1].isspace():
            lines[i] = _encode_header(line)
    head = "\n".join(lines)
    return f"{note_header(note)}\n{head}\n\n{body.rstrip(chr(10))}\n"


# --- the original messages that a bounce or reply answers ---------------------------------------

def original(hops: list[str], from_: str, to: str, subject: str, t, *, mid: str | None = None,
             body: str | None = None, extra: list[str] | None = None, return_path: str | None = None,
             headers_only: bool = False, ctype: str = "text/plain; charset=utf-8") -> str:
    """The quoted original: its hops (newest first), then the usual headers and (optionally) body."""
    sender_domain = from_.split("@")[-1].rstrip(">")
    lines = []
    if return_path is not None:
        lines.append(f"Return-Path: <{return_path}>")
    lines += hops
    lines += [f"From: {from_}", f"To: {to}", f"Subject: {subject}", f"Date: {rfc(t)}",
              f"Message-ID: {mid or msgid(sender_domain)}", "MIME-Version: 1.0", f"Content-Type: {ctype}"]
    lines += extra or []
    text = "\n".join(lines) + "\n"
    if headers_only:
        return text
    return text + "\n" + (body or "Hello,\n\nsee below.\n").rstrip("\n") + "\n"


def display(addr: str) -> str:
    n = NAMES.get(addr)
    return f"{n} <{addr}>" if n else f"<{addr}>"


def locale(lang: str) -> str:
    """Outlook's Content-Language for a language code."""
    return {"en": "en-US", "pt": "pt-PT"}.get(lang, f"{lang}-{lang.upper()}")
