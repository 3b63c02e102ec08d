"""BATV after the queue, through the real spamd: the BouncegenRescue plugin counts a valid prvs
tag on the recipient the delivery agent recorded (X-Original-To, Delivered-To, Envelope-To) as
rescue evidence, like a ledger hit (docs/batv.md); a tampered, expired or foreign tag, a tag in
another domain, or a valid tag only lower in the header (written by the sender) is none."""

from __future__ import annotations

import shutil
import time

import pytest

from bouncegen import batv
from bouncegen.engines.spamd import Spamd
from bouncegen.lab.site import example_site
from bouncegen.renderer import inventory, render
from support import give_to_spamd, need, spamd_dir
from test_rescue import CLIENT, EXPOSE_CF, attached, crlf

pytestmark = [pytest.mark.spamassassin, pytest.mark.slow]

EXPOSE = EXPOSE_CF + """
meta  BGTEST_BATV_HIT __BG_BATV_HIT
score BGTEST_BATV_HIT 0.001
"""
DAY = 86400


@pytest.fixture(scope="module")
def site():
    need("spamassassin", "spamd", "spamc")
    d = spamd_dir("bouncegen-batv-")
    key_file = d / "batv.keys"
    batv.create_key_file(key_file)
    give_to_spamd(key_file)
    (d / "site.toml").write_text(example_site(batv={"domains": ["example.org"], "key_file": str(key_file)}))
    inv = inventory.load(d / "site.toml")
    render.render(inv, d / "out", require_tools=True)
    spamd = Spamd(d / "out" / "spamassassin", children=1, extra_cf=EXPOSE).start()
    try:
        yield spamd, batv.load_keys(key_file)
    finally:
        spamd.stop()
        shutil.rmtree(d, ignore_errors=True)


def delivered(top: str) -> str:
    """A bounce with no hop of ours (the families' verdict fires without other evidence), as
    Postfix's virtual(8) delivers it: Return-Path, Delivered-To, X-Original-To on top."""
    return "Return-Path: <>\n" + top + attached(CLIENT)


def test_valid_tag_rescues_after_the_queue(site):
    spamd, keys = site
    tag = batv.sign("alice@example.org", keys, 7)
    bad = tag[:9] + ("0" if tag[9] != "0" else "1") + tag[10:]
    cases = [
        ("x-original-to", f"Delivered-To: alice@example.org\nX-Original-To: {tag}\n", True),
        ("delivered-to", f"Delivered-To: {tag}\n", True),
        ("envelope-to", f"Envelope-To: <{tag}>\n", True),
        ("yesterday", f"X-Original-To: {batv.sign('alice@example.org', keys, 7, time.time() - DAY)}\n", True),
        ("plain", "Delivered-To: alice@example.org\nX-Original-To: alice@example.org\n", False),
        ("tampered", f"X-Original-To: {bad}\n", False),
        ("expired", f"X-Original-To: {batv.sign('alice@example.org', keys, 7, time.time() - 9 * DAY)}\n", False),
        ("other-domain", f"X-Original-To: {batv.sign('alice@example.net', keys, 7)}\n", False),
        # the first X-Original-To is the delivery agent's; a valid tag below it is the sender's text
        ("sender-written", f"X-Original-To: alice@example.org\nX-Original-To: {tag}\n", False),
    ]
    for name, top, kept in cases:
        res = spamd.check(crlf(delivered(top)))
        assert res.ok, res.error
        hits = set(res.tests)
        if kept:
            assert "BGTEST_BATV_HIT" in hits and "BGTEST_RESCUE" in hits and "BG_BOUNCE" not in hits, (name, sorted(hits))
            assert "BG_RESCUE_BATV" in hits, (name, sorted(hits))  # the evidence, named for the milter's line
        else:
            assert "BGTEST_BATV_HIT" not in hits and "BG_BOUNCE" in hits, (name, sorted(hits))
            assert not hits & {"BG_RESCUE_BATV", "BG_RESCUE_HOP"}, (name, sorted(hits))
