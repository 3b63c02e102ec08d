"""`bouncegen check` tells the truth about a ledger that spamd cannot use (issue 16, part 3).

The real spamd (as nobody under root) and a real WAL-mode SQLite ledger: in a directory spamd's
user cannot write (the WAL reader must create the -shm index beside the database), and with a key
file only root can read. Every message that refers to a Message-ID then gets BG_LEDGER_UNAVAIL,
which cancels its verdict; the check counts them, names the cause on one line and exits 2.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from bouncegen.lab.site import MX1, ONE_RELAY, example_site
from bouncegen.ledger import create_key_file, open_store
from support import need, run

pytestmark = [pytest.mark.spamassassin, pytest.mark.slow]

SITE = example_site(site={"domains": ["example.org"]}, relay=ONE_RELAY, mx=MX1)

# An out-of-office reply to spam that forged alice@example.org: it names the spam's Message-ID,
# so spamd looks it up in the ledger.
REPLY = """\
Return-Path: <>
Received: from mx.remote.example (mx.remote.example [203.0.113.9])
\tby mx1.example.org (Postfix) with ESMTP id 4AB12
\tfor <alice@example.org>; Mon, 30 Nov 2026 10:00:00 +0000
From: Bob Example <bob@remote.example>
To: alice@example.org
Subject: Automatic reply: cheap pills
Auto-Submitted: auto-replied
In-Reply-To: <spam.4711@bulk.example>
Date: Mon, 30 Nov 2026 10:00:00 +0000
Message-ID: <oof.1@remote.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

I am out of the office until Monday.
"""


def _ledger_site(where: Path, *, dir_writable: bool, key_readable: bool) -> Path:
    key_file = where / "ledger.key"
    key = create_key_file(key_file)
    db = where / "ledger.db"
    with open_store(f"sqlite:{db}", key, 30) as store:
        store.record(["<sent.1@example.org>"])
    os.chmod(db, 0o666)  # readable and writable: only the directory (or the key) is in the way
    os.chmod(where, 0o777 if dir_writable else 0o755)  # root-owned 0755: nobody cannot create -shm
    os.chmod(key_file, 0o644 if key_readable else 0o600)
    inv = where / "site.toml"
    inv.write_text(SITE + f'[ledger]\nstore = "sqlite:{db}"\nkey_file = "{key_file}"\ndays = 30\n')
    corpus = where / "corpus"
    (corpus / "backscatter" / "autoreply").mkdir(parents=True)
    (corpus / "backscatter" / "autoreply" / "oof.eml").write_text(REPLY)
    os.chmod(corpus, 0o755)
    return inv


@pytest.mark.parametrize("case,cause", [("directory", "permission"), ("key", "key")])
def test_check_exits_2_naming_the_cause_when_spamd_cannot_use_the_ledger(capsys, case, cause):
    need("spamassassin", "spamd", "spamc", "postmap")
    if os.geteuid() != 0:
        pytest.skip("spamd must run as another user (nobody) than the ledger's owner: needs root")
    where = Path(tempfile.mkdtemp(prefix="bg-check-ledger-", dir="/tmp"))
    try:
        inv = _ledger_site(where, dir_writable=case != "directory", key_readable=case != "key")
        status, out, err = run(capsys, "check", "--inventory", str(inv), "--corpus", str(where / "corpus"),
                               "--no-lint", "-j", "1", "--json")
        assert status == 2, err
        lines = [line for line in err.splitlines() if "could not be used by spamd" in line]
        assert len(lines) == 1, err
        line = lines[0]
        assert f": {cause}: " in line, line
        assert "1 of 1 messages" in line and "BG_LEDGER_UNAVAIL" in line and "nobody" in line, line
        if case == "directory":
            assert str(where / "ledger.db") in line, line
        else:
            assert str(where / "ledger.key") in line, line
        doc = json.loads(out)
        assert doc["summary"]["ledger_unavail"] == 1
        assert doc["summary"]["exit_status"] == 2
        assert doc["summary"]["ledger_problem"] == line
        msg = doc["messages"][0]
        assert "BG_LEDGER_UNAVAIL" in msg["spamassassin"]["tests"]
        # The verdict the ledger outage cancelled is still there to read, with its signals.
        assert "BG_AUTOREPLY" in msg["spamassassin"]["rules"]
        assert "__BG_AR_ASUB" in msg["spamassassin"]["signals"]
    finally:
        shutil.rmtree(where, ignore_errors=True)
