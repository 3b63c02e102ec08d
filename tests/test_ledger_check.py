"""`bouncegen check` with a ledger: a corpus's ledger/maillog becomes a temporary SQLite ledger
(fresh key, IDs recorded as today), so the corpus needs no state outside itself; without the line
in the maillog the same auto-reply is backscatter. Real spamd and postmap."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bouncegen import cli
from support import need

pytestmark = [pytest.mark.spamassassin, pytest.mark.slow]

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
LEGIT = "legit/autoreply/outlook-ledger-irt.eml"
FORGED = "backscatter/autoreply/outlook-unrecorded-irt.eml"
RECORDED = "<20261123112833.L8e4a056@example.org>"


def small_corpus(tmp_path: Path, maillog: str) -> Path:
    root = tmp_path / "corpus"
    for rel in (LEGIT, FORGED):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / rel, root / rel)
    shutil.copy(CORPUS / "inventory.toml", root / "inventory.toml")
    (root / "ledger").mkdir()
    (root / "ledger" / "maillog").write_text(maillog)
    return root


def check(root: Path, capsys) -> tuple[int, dict, str]:
    status = cli.main(["check", "--inventory", str(root / "inventory.toml"), "--corpus", str(root), "--json", "-j", "1"])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


def test_check_builds_the_ledger_from_the_corpus_maillog(tmp_path, capsys):
    need("spamd", "spamc", "spamassassin", "postmap", "postconf")
    line = f"Nov 23 11:28:33 smtp1 postfix/cleanup[31251]: 4WmN1pQ2rS3t: message-id={RECORDED}\n"
    root = small_corpus(tmp_path, line)
    status, doc, err = check(root, capsys)
    assert status == 0, doc
    assert "temporary SQLite ledger" in err and "1 message-ids" in err
    assert "temporary SQLite ledger" in doc["provenance"]["ledger"]
    # The same corpus without the line: the auto-reply no longer answers mail we sent.
    root2 = small_corpus(tmp_path / "2", "")
    status, doc, _ = check(root2, capsys)
    verdicts = {m["path"]: m["verdict"] for m in doc["messages"]}
    assert status == 1 and verdicts == {LEGIT: "block", FORGED: "block"}
