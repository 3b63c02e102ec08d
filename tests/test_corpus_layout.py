"""The corpus itself: layout, labels, MIME well-formedness, and that it only uses example data.

These tests look at the samples, not at the rules: whether the rendered rules catch the
backscatter and pass the rest is `bouncegen check` (run on the real engines).
"""

from __future__ import annotations

import ipaddress
import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from bouncegen.renderer import inventory

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

# category -> minimum number of samples (the labels: backscatter/* = block, legit/* and ham = pass)
MINIMUM = {
    "backscatter/dsn": 30,
    "backscatter/challenge": 10,
    "backscatter/autoreply": 15,
    "backscatter/virus": 11,
    "legit/bounce": 20,
    "legit/autoreply": 10,
    "legit/challenge": 3,
    "legit/virus": 3,
    "ham": 30,
}
TOTAL_MINIMUM = 150

SAMPLES = sorted(CORPUS.rglob("*.eml"))
IDS = [str(p.relative_to(CORPUS)) for p in SAMPLES]

DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]
ALLOWED_DOMAIN = re.compile(r"(?:^|\.)(?:example\.(?:org|net|com)|[a-z0-9-]+\.(?:test|example|invalid))$", re.I)
IPV4 = re.compile(rb"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)")
# Any run of hex digits, colons and dots with a colon in it; ipaddress decides what is an address.
IPV6 = re.compile(rb"(?<![\w:.])[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*[0-9A-Fa-f](?![\w:.])")
ADDRESS = re.compile(rb"[\w.+=-]+@((?:[\w-]+\.)+[\w-]+)")


def category(path: Path) -> str:
    rel = path.relative_to(CORPUS)
    return str(rel.parent)


def parse(path: Path):
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def test_inventory_loads_and_describes_the_site():
    inv = inventory.load(CORPUS / "inventory.toml")
    assert inv.domains == ("example.net", "example.org")
    relays = {r.host: [str(a) for a in r.addresses] for r in inv.relays}
    assert relays == {
        "smtp1.out.example.org": ["192.0.2.25/32", "2001:db8:25::25/128"],
        "smtp2.out.example.org": ["198.51.100.0/28", "2001:db8:26::/48"],
        "mailout-?.example.net": [],
    }
    assert inv.mx_hosts == ("mx1.example.org", "mx2.example.org")
    assert (inv.policy.dsn, inv.policy.map_type, inv.policy.scores) == ("spamassassin", "pcre", "block")


def test_every_inventory_key_is_commented():
    lines = (CORPUS / "inventory.toml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+\s*=", line):
            assert lines[i - 1].startswith("#"), f"inventory.toml line {i + 1}: key without a comment above it"


def test_categories_and_counts():
    assert len(SAMPLES) >= TOTAL_MINIMUM
    counts: dict[str, int] = {}
    for p in SAMPLES:
        cat = category(p)
        assert cat in MINIMUM, f"{p}: unknown category {cat!r} (allowed: {', '.join(MINIMUM)})"
        counts[cat] = counts.get(cat, 0) + 1
    for cat, n in MINIMUM.items():
        assert counts.get(cat, 0) >= n, f"{cat}: {counts.get(cat, 0)} samples, want at least {n}"


def test_no_stray_files():
    allowed = {"inventory.toml", "README.md", "ledger/maillog"}
    for p in CORPUS.rglob("*"):
        if p.is_file() and p.suffix != ".eml":
            assert p.relative_to(CORPUS).as_posix() in allowed, \
                f"{p}: only .eml samples, inventory.toml, README.md and ledger/maillog belong in corpus/"
        if p.suffix == ".eml":
            assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*\.eml", p.name), f"{p}: use a lower-case descriptive name"


def test_line_endings_are_consistent_and_both_kinds_present():
    crlf = 0
    for p in SAMPLES:
        data = p.read_bytes()
        lf_only = data.count(b"\n") - data.count(b"\r\n")
        if b"\r\n" in data:
            assert lf_only == 0, f"{p}: mixes CRLF and LF line endings"
            crlf += 1
        assert b"\r" not in data.replace(b"\r\n", b""), f"{p}: bare CR"
    assert 3 <= crlf < len(SAMPLES) // 2


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_sample_parses_cleanly(path):
    msg = parse(path)
    assert msg["X-Corpus-Note"], "every sample says what it tests in X-Corpus-Note"
    for name in ("From", "Date", "Message-ID"):
        assert msg[name] is not None, f"missing {name}"
    received = msg.get_all("Received") or []
    assert received and re.search(r"\bby mx[12]\.example\.org\b", str(received[0])), \
        "the top Received: line must be our MX receiving the message"
    for part in msg.walk():
        assert not part.defects, f"{part.get_content_type()}: {part.defects}"
        if part.get_content_maintype() == "multipart":
            assert part.get_boundary(), "multipart without boundary"
        if part.is_multipart() or part.get_content_maintype() == "message":
            continue
        part.get_payload(decode=True)
        assert not part.defects, f"{part.get_content_type()}: {part.defects} (transfer encoding)"
        if part.get_content_maintype() == "text":
            part.get_content()  # charset and encoding decode


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_sample_uses_documentation_addresses_and_example_domains(path):
    raw = path.read_bytes()
    texts = [raw]
    for part in parse(path).walk():   # look inside base64/QP too
        if not part.is_multipart() and part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
            payload = part.get_payload(decode=True) or b""
            if part.get_content_type() not in ("application/gzip", "application/zip", "application/tlsrpt+gzip"):
                texts.append(payload)
    for data in texts:
        for m in IPV4.finditer(data):
            try:
                ip = ipaddress.ip_address(m.group().decode())
            except ValueError:
                continue  # a version number such as 15.2.1544.11
            assert any(ip in n for n in DOC_NETS), f"{ip} is not a documentation address"
        for m in IPV6.finditer(re.sub(rb"(?i)IPv6:", b"IPv6 ", data)):
            try:
                ip = ipaddress.ip_address(m.group().decode())
            except ValueError:
                continue  # a time of day, a MIME boundary...
            if ip.version == 6 and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            assert any(ip in n for n in DOC_NETS if n.version == ip.version), f"{ip} is not a documentation address"
        for m in ADDRESS.finditer(re.sub(rb"=\r?\n", b"", data)):   # join quoted-printable soft breaks
            domain = m.group(1).decode().lower()
            assert ALLOWED_DOMAIN.search(domain), f"{m.group().decode()}: use example/test domains only"


@pytest.mark.parametrize("path", [p for p in SAMPLES if category(p).startswith("backscatter/")],
                         ids=[i for i, p in zip(IDS, SAMPLES, strict=True) if category(p).startswith("backscatter/")])
def test_backscatter_is_addressed_to_one_of_our_users(path):
    msg = parse(path)
    to = str(msg["To"] or "").lower()
    assert re.search(r"@example\.(org|net)\b", to), "backscatter goes to the user whose address was forged"
    assert msg["Return-Path"] is not None or msg["X-Envelope-From"] is not None, \
        "show the envelope sender: Return-Path (delivered) or X-Envelope-From (milter view)"


def test_backscatter_has_milter_view_samples():
    """Some backscatter arrives as a milter sees it: X-Envelope-From: <> and no Return-Path yet."""
    n = 0
    for p in SAMPLES:
        if category(p).startswith("backscatter/"):
            msg = parse(p)
            if msg["Return-Path"] is None and str(msg["X-Envelope-From"] or "").strip() == "<>":
                n += 1
    assert n >= 3
