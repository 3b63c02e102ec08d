"""The relay milter in-process: its BATV decision (relay.sign, a pure function of the signer,
the envelope sender and the Disposition-Notification-To headers) row by row, and its pymilter
callbacks driven by pymilter's own test context (Milter.testctx.TestCtx) into a SQLite ledger in
a temporary directory. No Postfix, no engine: seconds (make test-fast). The same milter behind a
real relay Postfix is test_ledger_smtp.py and test_batv_smtp.py."""

from __future__ import annotations

import io
import logging
import os

import pytest

from bouncegen import batv
from bouncegen.ledger import keys, open_store
from bouncegen.milter.relay import SIGNING_TEMPFAIL, RelaySettings, Signer, Signing, recordable, sign

try:
    import Milter
    from Milter.testctx import TestCtx as MilterContext

    from bouncegen.milter import relay_milter
except ImportError:  # pymilter is the optional [milter] extra; make .venv/.test-deps installs it
    if os.environ.get("CI"):
        raise
    pytest.skip("pymilter missing", allow_module_level=True)

MSGID = "<20261202.4711@smtp1.out.example.org>"


@pytest.fixture
def signer(tmp_path) -> Signer:
    batv.create_key_file(tmp_path / "batv.keys")
    return Signer(domains=frozenset({"example.org"}), exempt=frozenset({"noreply@example.org"}), days=7,
                  keys=batv.KeyCache(tmp_path / "batv.keys"))


def settings_with(tmp_path, signer: Signer | None, *, ledger: bool = True) -> RelaySettings:
    if ledger:
        keys.create_key_file(tmp_path / "ledger.key")
    return RelaySettings(socket="inet:127.0.0.1:0", store=f"sqlite:{tmp_path / 'ledger.db'}" if ledger else None,
                         key_file=str(tmp_path / "ledger.key") if ledger else None, days=30, timeout=2.0,
                         signer=signer)


def recorded(s: RelaySettings, message_id: str) -> bool:
    assert s.store is not None and s.key_file is not None
    with open_store(s.store, keys.load_key(s.key_file), s.days) as store:
        return store.lookup([message_id])


# -- the decision ----------------------------------------------------------------------------------

def test_sign_rows(signer):
    rows = [
        # (envelope sender, signed?)
        ("<alice@example.org>", True),
        ("alice@EXAMPLE.ORG", True),           # domains compare without case
        ("<>", False),                          # the null sender: a bounce, never signed
        ("<bob@example.net>", False),           # not one of our BATV domains
        ("<noreply@example.org>", False),       # an exempt sender
    ]
    for sender, signs in rows:
        s = sign(signer, sender, [])
        assert s.reply is None and s.headers == ()
        assert (s.sender is not None) == signs, sender
        if signs:
            assert batv.is_tagged(s.sender) and s.sender.lower().endswith("=" + sender.strip("<>").lower())
            assert batv.check(s.sender, signer.keys.get(), signer.days).valid
            assert sign(signer, s.sender, []).sender is None  # a tagged sender is never signed twice


def test_sign_changes_our_receipt_addresses_only(signer):
    s = sign(signer, "<bob@example.net>", ["Bob <bob@example.net>", "Alice <alice@example.org>"])
    assert s.sender is None
    [(index, value)] = s.headers  # the first header has nothing of ours: unchanged
    assert index == 2 and value.startswith("Alice <prvs=") and value.endswith("=alice@example.org>")


def test_sign_with_unreadable_keys_is_a_tempfail(signer):
    signer.keys.path.unlink()
    s = sign(signer, "<alice@example.org>", ["alice@example.org"])
    assert (s.reply, s.sender, s.headers) == (SIGNING_TEMPFAIL, None, ())
    assert s.reply[0] == "451" and "cannot read the BATV keys" in s.problem
    assert sign(signer, "<bob@example.net>", []) == Signing()  # a foreign sender needs no key


def test_recordable():
    assert recordable(MSGID) and recordable("plain@id")
    assert not recordable(None) and not recordable("") and not recordable("<>") and not recordable("  ")


# -- the callbacks, through pymilter's test context --------------------------------------------------

MESSAGE = (f"From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: hello\nMessage-ID: {MSGID}\n"
           "Disposition-Notification-To: Alice <alice@example.org>\n\nHello Bob.\n")


def session(s: RelaySettings, sender: str, message: str = MESSAGE):
    """One connection of a RelayMilter in TestCtx: connect, then _feedFile's MAIL FROM, RCPT,
    headers, body and end of message, in libmilter's order."""
    shared = relay_milter.Shared(s)
    Milter.factory = lambda: relay_milter.RelayMilter(shared)
    try:
        ctx = MilterContext()
        ctx._setsymval("i", "4QRELAY1")
        assert ctx._connect("client.example.org", "client.example.org", "127.0.0.1") == Milter.CONTINUE
        return ctx, ctx._feedFile(io.BytesIO(message.encode()), sender, "bob@example.net")
    finally:
        Milter.factory = Milter.Milter


def test_our_mail_is_signed_and_recorded(tmp_path, signer, caplog):
    s = settings_with(tmp_path, signer)
    with caplog.at_level(logging.INFO, "bouncegen"):
        ctx, rc = session(s, "alice@example.org")
    assert rc == Milter.ACCEPT and ctx._reply is None
    assert ctx._envfromchanged and ctx._sender.startswith("<prvs=") and ctx._sender.endswith("=alice@example.org>")
    assert ctx._headerschanged and ctx._msg.get_all("Disposition-Notification-To")[-1].startswith("Alice <prvs=")
    assert recorded(s, MSGID)
    assert any("4QRELAY1: ledger: recorded message-id=" + MSGID == r.message for r in caplog.records)


def test_foreign_sender_is_recorded_unsigned(tmp_path, signer):
    s = settings_with(tmp_path, signer)
    ctx, rc = session(s, "bob@example.net", MESSAGE.replace("Disposition-Notification-To: Alice <alice@example.org>\n", ""))
    assert rc == Milter.ACCEPT and not ctx._envfromchanged and not ctx._headerschanged
    assert recorded(s, MSGID)


def test_unreadable_batv_keys_tempfail_and_record_nothing(tmp_path, signer):
    s = settings_with(tmp_path, signer)
    signer.keys.path.unlink()
    ctx, rc = session(s, "alice@example.org")
    assert rc == Milter.TEMPFAIL and ctx._reply == SIGNING_TEMPFAIL
    assert not ctx._envfromchanged and not recorded(s, MSGID)


def test_recording_never_stops_mail(tmp_path):
    s = settings_with(tmp_path, None)
    broken = RelaySettings(**{**s.__dict__, "key_file": str(tmp_path / "no-such.key")})
    ctx, rc = session(broken, "alice@example.org")
    assert rc == Milter.ACCEPT and ctx._reply is None and not ctx._envfromchanged
    assert not recorded(s, MSGID)
    ctx, rc = session(s, "alice@example.org", MESSAGE.replace(f"Message-ID: {MSGID}\n", ""))
    assert rc == Milter.ACCEPT  # no Message-ID: nothing to record, accepted all the same
