"""Our own DKIM signature in a returned original as proof of origin ([dkim], BouncegenDKIM).

Real keys (opendkim-genkey, made in the test) and a real signer: OpenDKIM in its test mode
(``opendkim -x CONF -t MSG`` signs the message as its milter would and prints the header it
adds), run under libfaketime for signatures made days ago. The bounces that return those
messages are judged by ``bouncegen check`` (real spamd, lean and full profiles, real postmap):
a bounce of a message our OpenDKIM signed passes, with the full original, with headers only and
with the header quoted inline; a tampered header, a body that is not the signed one, a foreign
domain's signature, our selector signed with a stranger's key, an rsa-sha1 signature, an expired
x= and a t= older than max_age_days are all blocked. On the private Postfix lab, OpenDKIM signs as a milter on the way
out (sendmail, pickup, non_smtpd_milters) and bouncegen's milter judges the bounces of that mail
in the SMTP session (lean spamd): 250 for the returned original and its headers, 550 tampered.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from bouncegen import cli, engines
from bouncegen.errors import InventoryError
from bouncegen.lab.postfix_lab import PostfixLab
from bouncegen.lab.site import MX1, ONE_RELAY, example_site
from bouncegen.renderer import inventory, render
from support import need, need_lab
from test_service import OpenDKIM  # opendkim -f -x CONF on a loopback port, stopped by PID
from test_smtp import deliver

# Every test reads the keys OpenDKIM made (the module fixture `site`): out of make test-fast.
pytestmark = pytest.mark.engine

SELECTOR = "mail2026"
ORIGINAL = (
    "From: Alice <alice@example.org>\r\n"
    "To: Bob <bob@example.com>\r\n"
    "Subject: Minutes of Tuesday's meeting\r\n"
    "Date: Tue, 01 Dec 2026 09:12:44 +0000\r\n"
    "Message-ID: <20261201091244.A1b2@example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "Hello Bob,\r\n\r\nthe minutes are below.\r\n\r\nAlice\r\n"
)
OPENDKIM_CONF = """\
Mode                    s
Domain                  {domain}
Selector                {selector}
KeyFile                 {key}
Canonicalization        relaxed/simple
Syslog                  no
RequireSafeKeys         false
{ttl}"""


def genkey(directory: Path, domain: str, selector: str = SELECTOR, bits: int = 2048) -> Path:
    """A real key pair: DIR/SELECTOR.private and DIR/SELECTOR.txt (the DNS record)."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([engines.require("opendkim-genkey"), "-b", str(bits), "-D", str(directory), "-d", domain,
                    "-s", selector], check=True, capture_output=True)
    return directory


def opendkim_sign(tmp: Path, message: str, domain: str, keys: Path, *, ago: str | None = None,
                  ttl: int | None = None, algorithm: str = "rsa-sha256") -> str:
    """MESSAGE with the DKIM-Signature that OpenDKIM adds (optionally signed AGO, e.g. '-3d',
    under faketime, with SignatureTTL TTL seconds)."""
    conf = tmp / f"opendkim-{domain}-{ago}-{ttl}-{algorithm}.conf"
    conf.write_text(OPENDKIM_CONF.format(domain=domain, selector=SELECTOR, key=keys / f"{SELECTOR}.private",
                                         ttl=f"SignatureTTL {ttl}\n" if ttl else "") + f"SignatureAlgorithm {algorithm}\n")
    msg = tmp / "to-sign.eml"
    msg.write_bytes(message.encode())
    argv = [engines.require("opendkim"), "-x", str(conf), "-t", str(msg)]
    if ago:
        argv = [engines.require("faketime"), "-f", ago] + argv
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # "opendkim: FILE:" then the header it adds, folded with tabs.
    m = re.search(r"^(DKIM-Signature: .*?)\n(?![ \t])", proc.stdout + "\n", re.S | re.M)
    assert m, f"opendkim added no signature: {proc.stdout!r} {proc.stderr!r}"
    assert f"d={domain};" in m.group(1) and "t=" in m.group(1) and f"a={algorithm};" in m.group(1)
    return m.group(1).rstrip().replace("\n", "\r\n") + "\r\n" + message


def headers(message: str) -> str:
    return message.split("\r\n\r\n", 1)[0] + "\r\n"


def dsn(part_type: str, returned: str) -> bytes:
    """A Postfix-style bounce to alice@example.org returning RETURNED as a PART_TYPE part."""
    return (
        "Return-Path: <>\r\n"
        "Received: from mx.foreign.example (mx.foreign.example [203.0.113.7])\r\n"
        "\tby mx1.example.org (Postfix) with ESMTPS id 4Wq1; Tue, 01 Dec 2026 09:13:02 +0000 (UTC)\r\n"
        "From: MAILER-DAEMON@mx.foreign.example (Mail Delivery System)\r\n"
        "To: alice@example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Date: Tue, 01 Dec 2026 09:13:01 +0000\r\n"
        "Message-ID: <20261201091301.7C1@mx.foreign.example>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"4Wq1.1764580381/mx\"\r\n"
        "\r\n"
        "--4Wq1.1764580381/mx\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is the mail system at host mx.foreign.example.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n\r\n"
        "<bob@example.com>: host mail.example.com[198.51.100.77] said: 550 5.1.1\r\n"
        "    <bob@example.com>: Recipient address rejected: User unknown\r\n\r\n"
        "--4Wq1.1764580381/mx\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.foreign.example\r\n"
        "Arrival-Date: Tue, 01 Dec 2026 09:13:00 +0000 (UTC)\r\n\r\n"
        "Final-Recipient: rfc822; bob@example.com\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown\r\n\r\n"
        "--4Wq1.1764580381/mx\r\n"
        f"Content-Description: {'Undelivered Message' if part_type == 'message/rfc822' else 'Undelivered Message Headers'}\r\n"
        f"Content-Type: {part_type}\r\n"
        "\r\n"
        f"{returned}"
        "\r\n--4Wq1.1764580381/mx--\r\n"
    ).encode()


def qmail(returned: str) -> bytes:
    """A qmail-style failure notice with the original copied inline below a separator."""
    return (
        "Return-Path: <>\r\n"
        "From: MAILER-DAEMON@qmail.foreign.example\r\n"
        "To: alice@example.org\r\n"
        "Subject: failure notice\r\n"
        "Date: Tue, 01 Dec 2026 09:13:01 +0000\r\n"
        "\r\n"
        "Hi. This is the qmail-send program at qmail.foreign.example.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        "<bob@example.com>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        "--- Below this line is a copy of the message.\r\n\r\n"
        f"{returned}"
    ).encode()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Our key (example.org), a foreign domain's key (example.com) and a stranger's key for our
    selector; the inventory names only ours."""
    need("opendkim", "opendkim-genkey", "faketime")
    tmp = tmp_path_factory.mktemp("dkim")
    ours = genkey(tmp / "ours", "example.org")
    foreign = genkey(tmp / "foreign", "example.com")
    stranger = genkey(tmp / "stranger", "example.org")
    inv = tmp / "site.toml"
    inv.write_text(example_site(policy={"dsn": "spamassassin"}) + (
        "[dkim]\nmax_age_days = 30\n"
        f"[[dkim.key]]\ndomain = \"example.org\"\nselector = \"{SELECTOR}\"\npublic_key_file = \"ours/{SELECTOR}.txt\"\n"))
    return tmp, inv, ours, foreign, stranger


# -- inventory -------------------------------------------------------------------------------------

def test_dkim_keys_read_from_txt_and_pem_render_the_same_key(site, tmp_path):
    need("openssl")
    tmp, inv_path, ours, *_ = site
    inv = inventory.load(inv_path)
    (key,) = inv.dkim.keys
    assert (key.domain, key.selector, key.bits, inv.dkim.max_age_days) == ("example.org", SELECTOR, 2048, 30)
    # The same key as PEM (written by openssl from the private key) gives the same p=.
    pem = tmp_path / "pub.pem"
    subprocess.run(["openssl", "rsa", "-in", str(ours / f"{SELECTOR}.private"), "-pubout", "-out", str(pem)],
                   check=True, capture_output=True)
    text = inv_path.read_text().replace(f"ours/{SELECTOR}.txt", str(pem))
    other = tmp_path / "pem.toml"
    other.write_text(text)
    assert inventory.load(other).dkim.keys[0].public_key == key.public_key
    files = render.render_files(inv)
    cf = files["spamassassin/72_bouncegen.cf"]
    assert f"bouncegen_dkim_key example.org {SELECTOR} {key.public_key}\n" in cf
    assert "meta     __BG_RESCUE        __BG_RESCUE_HOP || __BG_DKIM_OURS" in cf
    assert "loadplugin Mail::SpamAssassin::Plugin::BouncegenDKIM BouncegenDKIM.pm" in files["spamd/site/72_bouncegen.pre"]
    assert files == render.render_files(inventory.load(inv_path))  # deterministic


@pytest.mark.spamassassin
@pytest.mark.parametrize("ledger", [False, True])
def test_dkim_rendering_lints_clean(site, tmp_path, ledger):
    """spamassassin --lint of the rendered output (full and lean) stays clean, with and without
    a ledger (the two shapes of __BG_RESCUE)."""
    need("spamassassin", "postmap")
    _, inv_path, *_ = site
    text = inv_path.read_text()
    if ledger:
        text += f'[ledger]\nstore = "sqlite:{tmp_path}/ledger.db"\nkey_file = "{tmp_path}/ledger.key"\n'
    inv = tmp_path / "site.toml"
    inv.write_text(text.replace(f"ours/{SELECTOR}.txt", str(inv_path.parent / "ours" / f"{SELECTOR}.txt")))
    written, notes = render.render(inventory.load(inv), tmp_path / "out", require_tools=True)
    assert "spamassassin/BouncegenDKIM.pm" in written and "spamd/site/BouncegenDKIM.pm" in written
    cf = (tmp_path / "out/spamassassin/72_bouncegen.cf").read_text()
    rescue = [line for line in cf.splitlines() if line.startswith("  meta     __BG_RESCUE ")]
    assert rescue and all(line.endswith(" || __BG_DKIM_OURS") for line in rescue), rescue
    assert ("__BG_LEDGER_HIT" in rescue[0]) == ledger


def test_dkim_inventory_errors_one_line_each(site, tmp_path):
    tmp, _, ours, foreign, _ = site
    short = genkey(tmp_path / "short", "example.org", "short", bits=512)
    (tmp_path / "private.pem").write_text((ours / f"{SELECTOR}.private").read_text())
    (tmp_path / "garbage.txt").write_text('v=DKIM1; k=rsa; p=bm90IGEga2V5')
    (tmp_path / "ed.txt").write_text('v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=')
    inv = tmp_path / "bad.toml"
    inv.write_text(example_site() + (
        "[dkim]\nmax_age_days = 0\ncolour = 1\n"
        f"[[dkim.key]]\ndomain = \"example.com\"\nselector = \"s\"\npublic_key_file = \"{foreign}/{SELECTOR}.txt\"\n"
        "[[dkim.key]]\ndomain = \"example.org\"\nselector = \"a b\"\npublic_key_file = \"missing.txt\"\n"
        f"[[dkim.key]]\ndomain = \"example.org\"\nselector = \"s1\"\npublic_key_file = \"{short}/short.txt\"\n"
        "[[dkim.key]]\ndomain = \"example.org\"\nselector = \"s2\"\npublic_key_file = \"private.pem\"\n"
        "[[dkim.key]]\ndomain = \"example.org\"\nselector = \"s3\"\npublic_key_file = \"garbage.txt\"\n"
        "[[dkim.key]]\ndomain = \"example.org\"\nselector = \"s4\"\npublic_key_file = \"ed.txt\"\n"
        "[[dkim.key]]\ndomain = \"example.org\"\n"))
    with pytest.raises(InventoryError) as exc:
        inventory.load(inv)
    lines = exc.value.problems
    expect = [
        "dkim.colour: unknown key",
        "dkim.max_age_days: expected a whole number of days from 1 to 365, got 0",
        "dkim.key[0].domain: 'example.com' is not one of site.domains",
        "dkim.key[1].selector: 'a b' is not a DKIM selector",
        "dkim.key[1].public_key_file: 'missing.txt': cannot read: No such file or directory",
        "dkim.key[2].public_key_file:",  # 512 bits
        "dkim.key[3].public_key_file: 'private.pem' is PEM but not a '-----BEGIN PUBLIC KEY-----' block",
        "dkim.key[4].public_key_file: 'garbage.txt' is not a usable RSA public key",
        "dkim.key[5].public_key_file: 'ed.txt' has k=ed25519: only RSA keys are supported",
        "dkim.key[6].public_key_file: missing",
        "dkim.key[6].selector: missing",
    ]
    for e in expect:
        assert sum(f"{inv}: {e}" in line for line in lines) == 1, (e, lines)
    assert any("512-bit RSA key" in line for line in lines)
    assert len(lines) == len(expect), lines
    # The CLI: one line per problem, exit 2, nothing written.
    out = tmp_path / "out"
    assert cli.main(["render", str(inv), "-o", str(out)]) == 2
    assert not out.exists()


# -- the verdict, with the real engines ------------------------------------------------------------

def corpus(site) -> Path:
    tmp, _, ours, foreign, stranger = site
    signed = opendkim_sign(tmp, ORIGINAL, "example.org", ours, ttl=7 * 86400)
    foreign_signed = opendkim_sign(tmp, ORIGINAL.replace("alice@example.org", "carol@example.com"), "example.com",
                                   foreign)
    forged = opendkim_sign(tmp, ORIGINAL, "example.org", stranger)
    expired = opendkim_sign(tmp, ORIGINAL, "example.org", ours, ago="-3d", ttl=86400)
    too_old = opendkim_sign(tmp, ORIGINAL, "example.org", ours, ago="-40d")
    sha1 = opendkim_sign(tmp, ORIGINAL, "example.org", ours, algorithm="rsa-sha1")
    tampered = signed.replace("Subject: Minutes of Tuesday's meeting", "Subject: Minutes of Tuesday's meetings")
    assert tampered != signed
    other_body = signed.replace("the minutes are below.", "buy cheap watches at the usual place.")
    samples = {
        "legit/dsn/dkim-full-original.eml": dsn("message/rfc822", signed),
        "legit/dsn/dkim-headers-only.eml": dsn("text/rfc822-headers", headers(signed)),
        # The returned header block without its last line break before the MIME boundary.
        "legit/dsn/dkim-headers-only-unterminated.eml": dsn("text/rfc822-headers", headers(signed).rstrip("\r\n")),
        "legit/dsn/dkim-qmail-inline.eml": qmail(signed),
        "backscatter/dsn/dkim-unsigned.eml": dsn("message/rfc822", ORIGINAL),
        "backscatter/dsn/dkim-tampered-header-full.eml": dsn("message/rfc822", tampered),
        "backscatter/dsn/dkim-tampered-header-only.eml": dsn("text/rfc822-headers", headers(tampered)),
        "backscatter/dsn/dkim-other-body.eml": dsn("message/rfc822", other_body),
        "backscatter/dsn/dkim-foreign-domain.eml": dsn("message/rfc822", foreign_signed),
        "backscatter/dsn/dkim-stranger-key.eml": dsn("text/rfc822-headers", headers(forged)),
        "backscatter/dsn/dkim-expired-x.eml": dsn("message/rfc822", expired),
        "backscatter/dsn/dkim-expired-x-headers.eml": dsn("text/rfc822-headers", headers(expired)),
        "backscatter/dsn/dkim-older-than-max-age.eml": dsn("text/rfc822-headers", headers(too_old)),
        # rsa-sha1 is no evidence (RFC 8301; Mail::DKIM's Strict mode).
        "backscatter/dsn/dkim-rsa-sha1.eml": dsn("message/rfc822", sha1),
        # Our valid signature among 8 copies of it: more than MAX_SIGS fields are never verified
        # (each one would hash the body again).
        "backscatter/dsn/dkim-too-many-signatures.eml": dsn("text/rfc822-headers",
                                                             headers(signed).split("From:", 1)[0] * 8 + headers(signed)),
    }
    root = tmp / "corpus"
    for rel, data in samples.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.mark.spamassassin
@pytest.mark.slow
@pytest.mark.parametrize("profile", ["lean", "full"])
def test_bounce_of_our_signed_mail_passes_forgeries_blocked(site, profile, capsys):
    need("spamd", "spamc", "spamassassin", "postmap", "postconf")
    _, inv, *_ = site
    root = corpus(site)
    status = cli.main(["check", "--inventory", str(inv), "--corpus", str(root), "--profile", profile, "--json",
                       "-j", "1"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    verdicts = {m["path"]: m["verdict"] for m in doc["messages"]}
    expected = {m["path"]: m["expected"] for m in doc["messages"]}
    assert len(verdicts) == 15
    assert verdicts == expected, err
    assert status == 0


# -- in the SMTP session, signed by OpenDKIM as a milter on the private Postfix ----------------------

@pytest.fixture(scope="module")
def signing_lab(tmp_path_factory):
    """The private Postfix: mail submitted with sendmail(1) leaves through non_smtpd_milters = a
    real OpenDKIM signing for example.org (selector "lab", key from opendkim-genkey); bounces from
    a foreign client go through bouncegen's milter and the lean spamd. Stopped by PID."""
    need_lab("opendkim", "opendkim-genkey", "sendmail", what="DKIM SMTP tests")
    tmp = tmp_path_factory.mktemp("dkim-lab")
    signer = OpenDKIM(tmp / "opendkim").start()
    lab = None
    try:
        inv = tmp / "site.toml"
        inv.write_text(example_site(relay=ONE_RELAY, mx=MX1, policy={"dsn": "spamassassin"}, milter={"timeout": 10})
                       + f'[[dkim.key]]\ndomain = "example.org"\nselector = "lab"\n'
                         f'public_key_file = "{tmp}/opendkim/keys/lab.txt"\n')
        lab = PostfixLab(inventory.load(inv), smtpd_processes=10, extra_params={
            "milter_protocol": "6",
            "non_smtpd_milters": f"{{ inet:127.0.0.1:{signer.port}, default_action=tempfail }}"}).start()
        yield lab
    finally:
        if lab is not None:
            lab.stop()
        signer.stop()


@pytest.mark.smtp
@pytest.mark.slow
def test_smtp_bounce_of_mail_signed_by_our_opendkim(signing_lab):
    lab = signing_lab
    msg = ORIGINAL.replace("\r\n", "\n").replace("bob@example.com", "bob@example.org").encode()
    proc = lab.sendmail(msg, "alice@example.org", "bob@example.org")
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 30
    while not lab.delivered("bob@example.org") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lab.delivered("bob@example.org"), lab.maillog()[-2000:]
    copy = lab.delivered("bob@example.org")[-1].read_bytes().decode()
    assert "DKIM-Signature:" in copy and "d=example.org" in copy and "s=lab" in copy, copy[:800]
    # The original as a foreign MTA would return it: without our mailbox's delivery fields.
    head, body = copy.split("\n\n", 1)
    fields = re.split(r"\n(?![ \t])", head)
    kept = [f for f in fields if not re.match(r"(?i)(Return-Path|Delivered-To|X-Original-To|Received):", f)]
    signed = ("\n".join(kept) + "\n\n" + body).replace("\n", "\r\n")
    tampered = signed.replace("Subject: Minutes of Tuesday's meeting", "Subject: Minutes of Tuesday's meetings")
    assert tampered != signed
    cases = {
        "full original": (dsn("message/rfc822", signed), 250),
        "headers only": (dsn("text/rfc822-headers", headers(signed)), 250),
        "tampered, full": (dsn("message/rfc822", tampered), 550),
        "tampered, headers only": (dsn("text/rfc822-headers", headers(tampered)), 550),
        "unsigned": (dsn("text/rfc822-headers", headers(ORIGINAL)), 550),
    }
    got = {name: deliver(lab, message)[0] for name, (message, _) in cases.items()}
    assert got == {name: code for name, (_, code) in cases.items()}, lab.milter_log()[-2000:]
    # the two accepted bounces name their evidence in the milter's decision line (bouncegen report)
    assert len(re.findall(r"verdict=accept, points=[\d.]+, rules=[A-Z_,]*BG_RESCUE_DKIM\b", lab.milter_log())) == 2, \
        lab.milter_log()[-2000:]
