"""Big and hostile messages against the lean spamd and bouncegen's milter: a 30 MB message, 5,000
MIME parts, 8-bit and NUL bytes in headers. None may stall a milter thread or a spamd child beyond
the deadline, none may crash the milter, and a message above the scan limit is judged on its
prefix and the milter's log says so (never passed unjudged in silence). Real spamd, real
Postfix lab; no mocks."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from bouncegen.engines.spamd import Spamd
from bouncegen.lab import mail as samples
from bouncegen.lab.postfix_lab import PostfixLab
from bouncegen.lab.site import FOREIGN, MX1, ONE_RELAY, example_site
from bouncegen.milter.spamc import spamd_symbols
from bouncegen.renderer import inventory, render
from support import ROOT, need, need_lab

TIMEOUT = 20  # [milter] timeout of the lab: every answer must come before it

INVENTORY = example_site(relay=ONE_RELAY, mx=MX1, policy={"dsn": "spamassassin"},
                         milter={"timeout": TIMEOUT, "scan_limit_kb": 256})
ALICE = "alice@example.org"


def many_parts(n: int = 5000) -> bytes:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d of many\r\n" % i for i in range(n))
    return (b"From: Grace <grace@foreign.test>\r\nTo: alice@example.org\r\nSubject: many parts\r\n"
            b"Date: Mon, 30 Nov 2026 06:00:00 +0000\r\nMessage-ID: <many@foreign.test>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n")


def eight_bit_and_nul() -> bytes:
    return (b"From: Grace <grace@foreign.test>\r\nTo: alice@example.org\r\nSubject: caf\xe9 \x00 \xff\xfe\r\n"
            b"X-Binary: \x00\x01\x02\xe9\xff\r\nDate: Mon, 30 Nov 2026 06:00:00 +0000\r\n"
            b"Message-ID: <nul@foreign.test>\r\n\r\nbody with \x00 and \xe9\r\n")


def huge(base: bytes, megabytes: int = 30) -> bytes:
    """BASE followed by MEGABYTES of text after its last line (a MIME epilogue for a multipart)."""
    line = b"x" * 76 + b"\r\n"
    return base + line * (megabytes * 1024 * 1024 // len(line))


# -- the lean spamd itself ------------------------------------------------------------------------
@pytest.mark.spamassassin
@pytest.mark.parametrize("name", ["many-parts", "8bit-nul"])
def test_lean_spamd_answers_hostile_messages_quickly(name):
    need("spamd", "spamc")
    message = many_parts() if name == "many-parts" else eight_bit_and_nul()
    tmp = Path(tempfile.mkdtemp(prefix="bouncegen-hostile-", dir="/tmp"))
    os.chmod(tmp, 0o755)
    try:
        render.write_tree(render.render_files(inventory.load(ROOT / "corpus" / "inventory.toml")), tmp / "r")
        with Spamd(tmp / "r" / "spamassassin", children=1, profile="lean", workdir=tmp / "spamd") as d:
            t = time.monotonic()
            tests = spamd_symbols(message, "127.0.0.1", d.port, TIMEOUT)
            assert time.monotonic() - t < TIMEOUT
            assert not [x for x in tests if x.startswith("BG_")]  # neither is backscatter
            assert d.alive() and spamd_symbols(samples.forged_dsn(0), "127.0.0.1", d.port, TIMEOUT)
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


# -- through Postfix and the milter --------------------------------------------------------------
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    need_lab()
    path = tmp_path_factory.mktemp("inv") / "site.toml"
    path.write_text(INVENTORY)
    with PostfixLab(inventory.load(path), extra_params={"message_size_limit": "41943040"}) as lab:
        yield lab


def send(lab, message: bytes, sender: str = "") -> tuple[int, bytes, float]:
    with lab.smtp(timeout=TIMEOUT + 60) as s:
        s.ehlo()
        addr, name = FOREIGN
        s.docmd("XCLIENT", f"ADDR={addr} NAME={name} HELO={name}")
        s.ehlo(name)
        s.mail(sender)
        s.rcpt(ALICE)
        t = time.monotonic()
        code, text = s.data(message)
        return code, text, time.monotonic() - t


def _log_since(lab, mark: int) -> str:
    return lab.milter_log()[mark:]


@pytest.mark.smtp
@pytest.mark.slow
def test_30mb_backscatter_is_refused_on_its_prefix(lab):
    mark = len(lab.milter_log())
    code, text, secs = send(lab, huge(samples.forged_dsn(7)))
    assert code == 550 and b"backscatter" in text, (code, text)
    log = _log_since(lab, mark)
    assert "verdict=reject" in log and "judged on the first 262144 of" in log, log[-2000:]
    assert lab.milter_proc.poll() is None


@pytest.mark.smtp
@pytest.mark.slow
def test_30mb_ordinary_mail_is_delivered_and_the_prefix_logged(lab):
    mark = len(lab.milter_log())
    code, text, secs = send(lab, huge(samples.ordinary(7)), "grace@foreign.test")
    assert code == 250, (code, text)
    log = _log_since(lab, mark)
    assert "verdict=accept" in log and "judged on the first 262144 of" in log, log[-2000:]


@pytest.mark.smtp
@pytest.mark.slow
@pytest.mark.parametrize("name", ["many-parts", "8bit-nul"])
def test_hostile_message_gets_an_answer_within_the_deadline(lab, name):
    message = many_parts() if name == "many-parts" else eight_bit_and_nul()
    code, text, secs = send(lab, message, "grace@foreign.test")
    assert secs < TIMEOUT, secs
    assert code in (250, 451, 550), (code, text)  # an answer; Postfix itself may refuse NUL bytes
    assert lab.milter_proc.poll() is None and lab.spamd.alive()
    # the milter and spamd go on serving
    code, text, _ = send(lab, samples.forged_dsn(8))
    assert code == 550, (code, text)
