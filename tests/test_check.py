"""bouncegen check on the real spamd and postmap: verdicts agree with running the same rendered
files through the engines by hand, JSON shape, exit statuses, a spamd dying mid-run, clean-up on
every exit path, malformed input. No mocks of spamd or postmap: every verdict comes from them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bouncegen import cli, engines
from bouncegen.engines.spamd import Spamd
from bouncegen.lab.site import ONE_RELAY, example_site
from bouncegen.renderer import inventory, render
from bouncegen.runner import check

pytestmark = [pytest.mark.spamassassin, pytest.mark.postfix]

ENGINES = ("spamd", "spamc", "spamassassin", "postmap", "postconf")


@pytest.fixture(autouse=True)
def _engines():
    missing = [e for e in ENGINES if not engines.which(e)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"engines missing under CI=true: {', '.join(missing)} (run scripts/install-engines)")
        pytest.skip(f"engines missing: {', '.join(missing)}")


INVENTORY = example_site(site={"domains": ["example.org"]}, relay=ONE_RELAY, mx=None,
                         policy={"dsn": "spamassassin"})

# -- sample mails, written for these tests --------------------------------------------------------

HAM = b"""\
Received: from mail.example.com (mail.example.com [198.51.100.7])
\tby mx1.example.org (Postfix) with ESMTPS id 4A1B2C3D
\tfor <alice@example.org>; Mon, 02 Mar 2026 10:00:00 +0000 (UTC)
From: Bob Builder <bob@example.com>
To: alice@example.org
Subject: Lunch on Thursday?
Date: Mon, 02 Mar 2026 10:59:00 +0000
Message-ID: <lunch-4711@mail.example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hi Alice,

shall we meet at noon on Thursday? The usual place.

Bob
"""


def _dsn(relay_line: str, tag: str) -> bytes:
    return f"""\
Return-Path: <>
Received: from mx.remote.example (mx.remote.example [203.0.113.50])
\tby mx1.example.org (Postfix) with ESMTP id 9F8E7D6C
\tfor <alice@example.org>; Mon, 02 Mar 2026 11:00:00 +0000 (UTC)
From: Mail Delivery System <MAILER-DAEMON@mx.remote.example>
To: alice@example.org
Subject: Undelivered Mail Returned to Sender {tag}
Date: Mon, 02 Mar 2026 11:00:00 +0000
Message-ID: <dsn-{tag}@mx.remote.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="BOUNDARY-{tag}"

--BOUNDARY-{tag}
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@remote.example>: host mx.remote.example said: 550 5.1.1 unknown user

--BOUNDARY-{tag}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example
Arrival-Date: Mon, 02 Mar 2026 10:58:00 +0000

Final-Recipient: rfc822; nobody@remote.example
Action: failed
Status: 5.1.1

--BOUNDARY-{tag}
Content-Type: text/rfc822-headers

{relay_line}
From: alice@example.org
To: nobody@remote.example
Subject: hello {tag}
Message-ID: <orig-{tag}@example.org>

--BOUNDARY-{tag}--
""".encode()


# Backscatter: the returned headers name a host that is not our relay.
DSN_FORGED = _dsn("Received: from spambot.example.net (unknown [203.0.113.99])\n\tby mail.remote.example; Mon, 02 Mar 2026 10:57:00 +0000", "forged")
# The bounce of mail our relay really sent: it quotes smtp1.out.example.org at its address.
DSN_LEGIT = _dsn("Received: from smtp1.out.example.org (smtp1.out.example.org [192.0.2.25])\n\tby mx.remote.example; Mon, 02 Mar 2026 10:57:00 +0000", "legit")
# Our relay's name at a foreign address, pasted into the body of a person's mail (as in an abuse
# complaint about the joe-job): body_checks no longer refuse a forged hop (templates/postfix/
# body_checks.j2); the ruleset sees no bounce, so it passes.
FORGED_RELAY_BODY = HAM.replace(b"Bob\n", b"Bob\n\nReceived: from smtp1.out.example.org (helo [203.0.113.9])\n\tby victim.example\n")
# HELO as our own domain in the message's own Received: header: Postfix header_checks refuse it.
FORGED_HELO_HEADER = HAM.replace(b"Received: from mail.example.com (mail.example.com", b"Received: from example.org (unknown")

SAMPLES = {
    # path: (bytes, category, expected)
    "ham/lunch.eml": (HAM, "ham", "pass"),
    "backscatter/dsn/forged.eml": (DSN_FORGED, "backscatter/dsn", "block"),
    "legit/bounce/relay.eml": (DSN_LEGIT, "legit/bounce", "pass"),
    "ham/forged-relay-pasted.eml": (FORGED_RELAY_BODY, "ham", "pass"),
    "backscatter/forged/header.eml": (FORGED_HELO_HEADER, "backscatter/forged", "block"),
    "ham/lunch-crlf.eml": (HAM.replace(b"\n", b"\r\n"), "ham", "pass"),
    "backscatter/dsn/forged-crlf.eml": (DSN_FORGED.replace(b"\n", b"\r\n"), "backscatter/dsn", "block"),
    "backscatter/dsn/forged-mbox.eml": (b"From MAILER-DAEMON Mon Mar  2 11:00:00 2026\n" + DSN_FORGED, "backscatter/dsn", "block"),
}


def write_corpus(root: Path, samples: dict, manifest: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "inventory.toml").write_text(INVENTORY)
    for rel, (data, _, _) in samples.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    if manifest:
        lines = ["path\tcategory\texpected\tnote"] + [f"{rel}\t{c}\t{e}\tx" for rel, (_, c, e) in samples.items()]
        (root / "manifest.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus", SAMPLES)


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    status = cli.main(args)
    out, err = capsys.readouterr()
    return status, out, err


# -- by hand: the same rendered files through spamd and postmap, without the runner ---------------

def by_hand(corpus: Path, paths: list[str]) -> dict[str, dict]:
    inv = inventory.load(corpus / "inventory.toml")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)
        render.write_tree(render.render_files(inv), tmp / "r")
        conf = engines.postfix_config_dir(tmp / "pf", tmp / "r" / "postfix")
        cf = (tmp / "r" / "spamassassin" / "72_bouncegen.cf").read_text()
        scores = {m[0]: float(m[1]) for m in re.findall(r"^\s*score\s+(BG_\w+)\s+(\S+)", cf, re.M)}
        t = inv.policy.map_type
        with Spamd(tmp / "r" / "spamassassin", children=2, workdir=tmp / "spamd") as d:
            for rel in paths:
                data = (corpus / rel).read_bytes()
                if data.startswith(b"From "):  # as mbox delivery does
                    data = data.split(b"\n", 1)[1]
                data = data.replace(b"\r\n", b"\n")
                sa = d.check(data)
                assert sa.ok, sa.error
                # the rescue labels (BG_RESCUE_*) say why a message passed; no verdict rule
                bg = sorted(x for x in sa.tests if x.startswith("BG_") and not x.startswith("BG_RESCUE_"))
                refused = None
                for flags, table in (("-hq", "header_checks"), ("-bq", "body_checks")):
                    proc = subprocess.run([engines.require("postmap"), "-c", str(conf), flags, "-",
                                           f"{t}:{conf}/bouncegen/{table}"], input=data, capture_output=True)
                    assert proc.returncode in (0, 1), proc.stderr
                    for line in proc.stdout.decode().split("\n"):
                        if "\tREJECT" in line:
                            refused = table
                            break
                    if refused:
                        break
                points = sum(scores.get(x, 1.0) for x in bg)
                out[rel] = {"rules": bg, "refused": refused,
                            "verdict": "block" if refused or points >= 5 else "pass"}
    return out


# -- tests --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_verdicts_agree_with_engines_by_hand(corpus):
    result = check.run(check.Options(inventory=corpus / "inventory.toml", corpus=corpus,
                                     manifest=corpus / "manifest.tsv", jobs=3, lint=False, progress=False))
    hand = by_hand(corpus, sorted(SAMPLES))
    assert [r.path for r in result.records] == sorted(SAMPLES)
    for r in result.records:
        h = hand[r.path]
        assert r.verdict == h["verdict"], r.path
        assert r.spamassassin["rules"] == h["rules"], r.path
        assert (r.postfix["parameter"] if r.postfix["refused"] else None) == h["refused"], r.path
    got = {r.path: r.verdict for r in result.records}
    # The bounce our relay wrote passes, and spamd names the evidence (the relay hop) for the milter.
    if "legit/bounce/relay.eml" in got:
        rec = next(r for r in result.records if r.path == "legit/bounce/relay.eml")
        assert got[rec.path] == "pass" and "BG_RESCUE_HOP" in rec.spamassassin["tests"], rec.spamassassin
    # Anchors that hold for any ruleset rendered from these templates:
    assert got["ham/lunch.eml"] == "pass"
    assert got["backscatter/forged/header.eml"] == "block"
    assert got["ham/forged-relay-pasted.eml"] == "pass"
    # LF, CRLF and mbox copies of one mail get one verdict, by the same rules.
    recs = {r.path: r for r in result.records}
    for copy in ("backscatter/dsn/forged-crlf.eml", "backscatter/dsn/forged-mbox.eml"):
        assert recs[copy].verdict == recs["backscatter/dsn/forged.eml"].verdict
        assert recs[copy].spamassassin["rules"] == recs["backscatter/dsn/forged.eml"].spamassassin["rules"]
    assert "CRLF line ends read as LF" in recs["ham/lunch-crlf.eml"].notes
    assert "mbox 'From ' line removed" in recs["backscatter/dsn/forged-mbox.eml"].notes


def _labels_from_hand(corpus: Path, flip: str | None = None) -> Path:
    hand = by_hand(corpus, sorted(SAMPLES))
    rows = ["path\tcategory\texpected"]
    for rel, (_, cat, _) in SAMPLES.items():
        v = hand[rel]["verdict"]
        if rel == flip:
            v = "pass" if v == "block" else "block"
        rows.append(f"{rel}\t{cat}\t{v}")
    path = corpus / ("flipped.tsv" if flip else "hand.tsv")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.slow
def test_exit_0_and_1_json_shape_and_log(corpus, capsys, tmp_path):
    good = _labels_from_hand(corpus)
    base = ["check", "--inventory", str(corpus / "inventory.toml"), "--corpus", str(corpus), "-j", "2"]
    status, out, err = run_cli(base + ["--manifest", str(good), "--json", "--log", str(tmp_path / "check.log")], capsys)
    assert status == 0, err
    doc = json.loads(out)
    assert {"messages", "categories", "provenance", "rules", "summary"} <= set(doc)
    assert len(doc["messages"]) == len(SAMPLES)
    for m in doc["messages"]:
        assert {"path", "category", "expected", "verdict", "postfix", "spamassassin"} <= set(m)
        assert m["verdict"] in ("block", "pass")
        assert not Path(m["path"]).is_absolute() and (corpus / m["path"]).is_file()
        assert {"rules", "points", "tests", "error"} <= set(m["spamassassin"])
        assert {"refused", "parameter", "line", "action"} <= set(m["postfix"])
    for c in doc["categories"].values():
        assert {"n", "caught", "expected", "wrong"} <= set(c) and c["wrong"] == 0
    prov = doc["provenance"]
    assert prov["spamassassin"] not in ("", "absent") and prov["postfix"] not in ("", "absent")
    assert len(prov["inventory_sha256"]) == 64
    log = (tmp_path / "check.log").read_text().splitlines()
    assert log[0].startswith("# bouncegen check log")
    assert any(prov["inventory_sha256"] in line for line in log if line.startswith("#"))
    assert len([x for x in log if not x.startswith("#")]) == len(SAMPLES)

    flip = "ham/lunch.eml"
    bad = _labels_from_hand(corpus, flip=flip)
    junit = tmp_path / "check.xml"
    page = tmp_path / "check.html"
    status, out, err = run_cli(base + ["--manifest", str(bad), "--junit", str(junit), "--html", str(page)], capsys)
    assert status == 1
    # The page (report/page.py's builder): two charts, the wrong verdict named in its table.
    html = page.read_text()
    assert html.count("<svg") == 2 and "Wrong verdicts (1)" in html and flip in html
    assert "Wrong verdicts (1)" in out and flip in out and "FAILED" in out
    assert "Rule hit frequencies" in out and "Verdicts per category" in out

    # JUnit for a site's CI: one case per message named by its path; the flipped one fails with
    # expected vs verdict, the others pass; parsed by a real XML parser.
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == set(SAMPLES)
    assert suite.get("tests") == str(len(SAMPLES)) and suite.get("failures") == "1" and suite.get("errors") == "0"
    failure = cases[flip].find("failure")
    assert failure is not None and failure.get("message") == "expected block, got pass"
    assert "no Postfix table refused it" in failure.text
    assert all(c.find("failure") is None for name, c in cases.items() if name != flip)
    assert cases["backscatter/dsn/forged.eml"].get("classname") == "backscatter.dsn"
    assert "BG_" in cases["backscatter/dsn/forged.eml"].find("system-out").text


def test_exit_2_usage_and_inventory_errors(corpus, tmp_path, capsys):
    inv = str(corpus / "inventory.toml")
    bad_inv = tmp_path / "bad.toml"
    bad_inv.write_text("[site]\ndomains = []\n")
    assert run_cli(["check", "--inventory", str(bad_inv), "--corpus", str(corpus)], capsys)[0] == 2
    assert run_cli(["check", "--inventory", inv, "--corpus", str(tmp_path / "nope")], capsys)[0] == 2
    bad_manifest = tmp_path / "m.tsv"
    bad_manifest.write_text("path\tcategory\texpected\nham/lunch.eml\tham\tmaybe\nmissing.eml\tham\tpass\n")
    status, _, err = run_cli(["check", "--inventory", inv, "--corpus", str(corpus), "--manifest", str(bad_manifest)], capsys)
    assert status == 2 and "'maybe'" in err and "missing.eml" in err
    no_header = tmp_path / "n.tsv"
    no_header.write_text("ham/lunch.eml\tham\tpass\n")
    assert run_cli(["check", "--inventory", inv, "--corpus", str(corpus), "--manifest", str(no_header)], capsys)[0] == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(["check", "--inventory", inv, "--corpus", str(empty)], capsys)[0] == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["check", "--corpus", str(corpus)])
    assert exc.value.code == 2


def test_exit_3_engine_missing(corpus, capsys, monkeypatch):
    real = engines.which
    monkeypatch.setattr(engines, "which", lambda name: None if name == "spamd" else real(name))
    status, out, err = run_cli(["check", "--inventory", str(corpus / "inventory.toml"), "--corpus", str(corpus)], capsys)
    assert status == 3
    assert "spamd" in err and "apt-get install" in err and out == ""


def test_layout_labels(tmp_path):
    root = write_corpus(tmp_path / "c", SAMPLES, manifest=False)
    (root / "README.md").write_text("not a message")
    (root / "stray").mkdir()
    (root / "stray" / "x.eml").write_bytes(HAM)
    samples, notes = check.load_samples(root, None)
    got = {s.path: (s.category, s.expected) for s in samples}
    assert got == {rel: (c, e) for rel, (_, c, e) in SAMPLES.items()}
    assert any("stray" in n for n in notes)


def _group_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            st = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if st[st.rindex(")") + 2] != "Z":
            alive.append(pid)
    return alive


@pytest.fixture
def scratch():
    """A TMPDIR that spamd (nobody, when the tests run as root) can traverse, unlike tmp_path."""
    d = Path(tempfile.mkdtemp(prefix="bouncegen-test-scratch-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def _big_corpus(tmp_path: Path, n: int) -> Path:
    samples = {}
    for i in range(n):
        samples[f"ham/m{i:03d}.eml"] = (HAM.replace(b"Lunch", f"Lunch {i}".encode()), "ham", "pass")
        samples[f"backscatter/dsn/d{i:03d}.eml"] = (_dsn("Received: from x.example.net ([203.0.113.8])", f"t{i}"), "backscatter/dsn", "block")
    return write_corpus(tmp_path / "big", samples)


@pytest.mark.slow
def test_spamd_killed_mid_run_exits_3_and_leaves_nothing(tmp_path, scratch, monkeypatch, capsys):
    corpus = _big_corpus(tmp_path, 60)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    seen: dict = {}

    class DyingSpamd(Spamd):
        """The real spamd, whose parent process is killed (SIGKILL) after its 10th answer (not
        after a delay: the lean profile may finish the whole corpus before any delay is up)."""

        answered = 0
        lock = threading.Lock()

        def start(self):
            super().start()
            seen["pids"] = self.pids()
            seen["pid"] = self.pid
            return self

        def check(self, message):
            result = super().check(message)
            with self.lock:
                type(self).answered += 1
                if type(self).answered == 10:
                    self.kill(signal.SIGKILL)
            return result

    monkeypatch.setattr(check, "Spamd", DyingSpamd)
    status, out, err = run_cli(["check", "--inventory", str(corpus / "inventory.toml"), "--corpus", str(corpus),
                                "-j", "2", "--no-lint"], capsys)
    assert status == 3
    assert "spamd" in err and "stopped during the run" in err
    assert out == ""  # never a table that reads as a pass
    assert len(seen["pids"]) >= 2  # parent and children
    assert _group_alive(seen["pids"]) == []
    assert list(scratch.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_spamd_and_removes_temp(tmp_path, scratch, sig, status):
    # The full profile and 400 messages: still running 2 s after spamd starts (the lean profile
    # can finish a small corpus before the signal comes).
    corpus = _big_corpus(tmp_path, 200)
    env = dict(os.environ, TMPDIR=str(scratch))
    proc = subprocess.Popen([sys.executable, "-m", "bouncegen", "check", "--inventory", str(corpus / "inventory.toml"),
                             "--corpus", str(corpus), "-j", "2", "--no-lint", "--profile", "full"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    spamd_pids: list[int] = []
    port = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not spamd_pids:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    st = (entry / "stat").read_text()
                    cmd = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if int(st[st.rindex(")") + 2:].split()[1]) == proc.pid and b"spamd" in cmd:
                    spamd_pids.append(int(entry.name))
                    port = re.search(rb"--listen=127\.0\.0\.1:(\d+)", cmd).group(1).decode()
        time.sleep(0.2)
    assert spamd_pids, "spamd did not start"
    time.sleep(2.0)  # mid-run
    group = [p for p in Path("/proc").iterdir() if p.name.isdigit()]
    members = []
    for p in group:
        try:
            st = (p / "stat").read_text()
        except OSError:
            continue
        if int(st[st.rindex(")") + 2:].split()[2]) == spamd_pids[0]:
            members.append(int(p.name))
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert b"Verdicts per category" not in out
    assert _group_alive(spamd_pids + members) == []
    assert _engine_clients(scratch, port) == []  # no postmap (-c under scratch), no spamc (-p port)
    assert list(scratch.iterdir()) == []


def _engine_clients(scratch: Path, port: str) -> list[str]:
    """Live postmap processes working in ``scratch`` and spamc processes talking to ``port``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not _group_alive([int(entry.name)]):
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        name = Path(argv[0]).name
        if (name == "postmap" and any(a.startswith(str(scratch)) for a in argv)) or \
                (name == "spamc" and "-p" in argv and argv[argv.index("-p") + 1] == port):
            found.append(" ".join(argv))
    return found


@pytest.mark.slow
def test_malformed_input_gets_a_verdict_or_an_error(tmp_path, capsys):
    import random

    rnd = random.Random(4)
    samples = {
        "ham/junk.eml": (bytes(rnd.randrange(256) for _ in range(5000)), "ham", "pass"),
        "ham/empty.eml": (b"", "ham", "pass"),
        "ham/blank.eml": (b"\n\n\r\n", "ham", "pass"),
        "ham/no-header.eml": (b"just some text\nwithout any header at all\n", "ham", "pass"),
        "ham/big.eml": (b"Subject: big\nFrom: a@example.com\n\n" + (b"y" * 75 + b"\n") * 270_000, "ham", "pass"),
        "ham/lf.eml": (HAM, "ham", "pass"),
        "ham/crlf.eml": (HAM.replace(b"\n", b"\r\n"), "ham", "pass"),
        "ham/mbox.eml": (b"From bob@example.com Mon Mar  2 10:59:00 2026\n" + HAM, "ham", "pass"),
        "ham/only-from-line.eml": (b"From bob@example.com Mon Mar  2 10:59:00 2026\n", "ham", "pass"),
        "ham/nul.eml": (HAM.replace(b"Thursday", b"Thurs\0day"), "ham", "pass"),
    }
    corpus = write_corpus(tmp_path / "bad", samples)
    status, out, err = run_cli(["check", "--inventory", str(corpus / "inventory.toml"), "--corpus", str(corpus),
                                "--manifest", str(corpus / "manifest.tsv"), "--json", "-j", "2", "--no-lint"], capsys)
    assert status == 1, err  # the empty files are errors, so not every verdict is as labelled
    recs = {m["path"]: m for m in json.loads(out)["messages"]}
    assert set(recs) == set(samples)
    for rel in ("ham/empty.eml", "ham/blank.eml", "ham/only-from-line.eml"):
        assert recs[rel]["verdict"] == "error" and "empty" in recs[rel]["error"]
    for rel in ("ham/junk.eml", "ham/no-header.eml", "ham/big.eml", "ham/lf.eml", "ham/crlf.eml", "ham/mbox.eml", "ham/nul.eml"):
        assert recs[rel]["verdict"] in ("block", "pass"), (rel, recs[rel]["error"])
    assert recs["ham/big.eml"]["size"] > 20_000_000
    for rel in ("ham/crlf.eml", "ham/mbox.eml"):
        assert recs[rel]["verdict"] == recs["ham/lf.eml"]["verdict"]
        assert recs[rel]["spamassassin"]["tests"] == recs["ham/lf.eml"]["spamassassin"]["tests"]


def test_postfix_wiring_is_read_from_main_cf(tmp_path):
    """-m only when main.cf leaves MIME processing on; tables as postconf expands them."""
    from bouncegen.engines.postfix_tables import PostfixChecks

    inv_path = tmp_path / "inv.toml"
    inv_path.write_text(INVENTORY)
    rendered = tmp_path / "r"
    render.write_tree(render.render_files(inventory.load(inv_path)), rendered)
    conf = engines.postfix_config_dir(tmp_path / "pf", rendered / "postfix")
    pf = PostfixChecks(conf)
    assert [(q.parameter, q.flags) for q in pf.queries] == [("header_checks", "-hq"), ("body_checks", "-bq")]
    assert all(q.table.endswith(f"{conf}/bouncegen/{q.parameter}") for q in pf.queries)
    assert pf.check(FORGED_HELO_HEADER).refused.parameter == "header_checks"
    assert pf.check(FORGED_RELAY_BODY).refused is None  # the milter's ruleset judges a body's hops
    assert pf.check(HAM).refused is None

    main_cf = conf / "main.cf"
    main_cf.write_text(main_cf.read_text().replace("disable_mime_input_processing = yes",
                                                   "disable_mime_input_processing = no"))
    pf = PostfixChecks(conf)
    assert [(q.parameter, q.flags) for q in pf.queries] == [("header_checks", "-hmq"), ("body_checks", "-bmq")]


@pytest.mark.slow
def test_tag_policy_blocks_on_any_scored_verdict_rule(tmp_path):
    """policy.scores = "tag": 0.1-point labels; block = refused by Postfix or any scored BG_* rule fired."""
    corpus = write_corpus(tmp_path / "tag", SAMPLES)
    (corpus / "inventory.toml").write_text(example_site(site={"domains": ["example.org"]}, relay=ONE_RELAY, mx=None,
                                                          policy={"dsn": "spamassassin", "scores": "tag"}))
    result = check.run(check.Options(inventory=corpus / "inventory.toml", corpus=corpus,
                                     manifest=corpus / "manifest.tsv", jobs=2, lint=False, progress=False))
    assert result.rules and all(abs(v) < 1 for v in result.rules.values())
    for r in result.records:
        fired = [x for x in r.spamassassin["rules"] if result.rules.get(x, 1.0) != 0]
        assert r.verdict == ("block" if r.postfix["refused"] or fired else "pass"), r.path
    assert {r.path: r.verdict for r in result.records}["ham/lunch.eml"] == "pass"


def test_rescue_labels_never_make_a_verdict(tmp_path):
    """A rescued message names its evidence (BG_RESCUE_*, 0.001 points): the runner must judge it
    a pass under both score policies, never count the label as a verdict rule."""
    from bouncegen.engines.postfix_tables import PostfixResult
    from bouncegen.engines.spamd import SpamdResult
    from bouncegen.runner.check import Record, decide

    scores = {"BG_BOUNCE": 5.0, "BG_ANY_BOUNCE": 0.01}
    for policy in ("block", "tag"):
        rec = Record("x", "legit", "pass")
        decide(rec, PostfixResult(True), SpamdResult(True, ("BG_RESCUE_LEDGER", "BG_RESCUE_HOP")), scores, policy, tmp_path)
        assert rec.verdict == "pass" and rec.spamassassin["rules"] == [] and rec.spamassassin["points"] == 0, rec
        rec = Record("y", "backscatter", "block")
        decide(rec, PostfixResult(True), SpamdResult(True, ("BG_BOUNCE", "BG_ANY_BOUNCE")), scores, policy, tmp_path)
        assert rec.verdict == "block", rec
