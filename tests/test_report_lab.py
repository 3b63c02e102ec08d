"""`bouncegen report` on the real logs of the lab: the private Postfix (maillog_file) and the
milter logging through a private rsyslogd (lab/syslog.py), as on a host. The test sends a known
mix from known clients (XCLIENT) and asserts the report's counts against what it sent; then the
report's HTML page is opened in a real headless Chromium (Debian's package), its screenshot
checked for drawn charts (colour variance, the family colours) and its DOM for the inline SVGs.
About 40 s."""

from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
import subprocess
from pathlib import Path

import pytest

from bouncegen import batv, report
from bouncegen.lab import mail as samples
from bouncegen.lab.postfix_lab import PostfixLab
from bouncegen.lab.site import EXAMPLE, MX1, example_site
from bouncegen.ledger import create_key_file, load_key, open_store
from bouncegen.renderer import inventory
from support import auto_reply, give_to_spamd, need, need_lab, run, spamd_dir

pytestmark = [pytest.mark.smtp, pytest.mark.slow]

BOB, ALICE, BOB_NET = "bob@example.org", "alice@example.org", "bob@example.net"
# (kind, builder, client address, client name, sender, expected stage, expected family)
BACKSCATTER = [
    ("rfc3464", samples.forged_dsn, "198.51.100.110", "bouncer1.test", "", "header_checks", "dsn"),
    ("rfc3464", samples.forged_dsn, "198.51.100.111", "bouncer2.test", "", "header_checks", "dsn"),
    ("plain-bounce", samples.plain_bounce, "198.51.100.112", "bouncer3.test", "", "milter (SpamAssassin)", "dsn"),
    ("autoreply", samples.autoreply, "203.0.113.50", "ooo.test", "", "milter (SpamAssassin)", "autoreply"),
    ("autoreply", samples.autoreply, "203.0.113.51", "ooo2.test", "", "milter (SpamAssassin)", "autoreply"),
    ("virus", samples.virus_notice, "203.0.113.52", "av.test", "", "milter (SpamAssassin)", "virus"),
]
LEGIT = [(samples.ordinary, "192.0.2.200", "mx.friend.test", "grace@foreign.test"),
         (samples.read_receipt, "192.0.2.201", "mx.friend2.test", "")]
SAV = 3
# An auto-reply to a message our relays sent (its Message-ID in the SQLite ledger): spamd's rescue
# label BG_RESCUE_LEDGER names it in the milter's line, the report counts it rescued by "ledger".
LEDGER_CLIENT = ("198.18.0.10", "rescue.test")
SENT_ID = "<sent.report-lab.1@example.org>"
# Our relay smtp2.out.example.org (198.51.100.0/28 in the example site): never judged.
FROM_RELAY = ("198.51.100.5", "smtp2.out.example.org")


def session(lab, addr: str, name: str):
    s = lab.smtp()
    s.ehlo()
    assert s.docmd("XCLIENT", f"ADDR={addr} NAME={name} HELO={name}")[0] == 220
    s.ehlo(name)
    return s


def send(lab, message: bytes, addr: str, name: str, sender: str, rcpts=(BOB,)) -> int:
    s = session(lab, addr, name)
    try:
        s.mail(sender)
        for r in rcpts:
            s.rcpt(r)
        code, _ = s.data(message)
        return code
    except smtplib.SMTPResponseException as exc:  # smtplib raises on a refused DATA
        return exc.smtp_code
    finally:
        s.close()


@pytest.fixture(scope="module")
def lab_logs(tmp_path_factory):
    need_lab("rsyslogd")
    tmp = tmp_path_factory.mktemp("report-lab")
    os.chmod(tmp, 0o755)
    inv_path = tmp / "inv.toml"
    # BATV for example.net only: example.org's backscatter reaches the maps and spamd.
    key_file = tmp / "batv.keys"
    keys = batv.create_key_file(key_file)
    ledger_dir = spamd_dir("bouncegen-report-ledger-")
    try:
        yield from _lab_logs(tmp, inv_path, key_file, keys, ledger_dir)
    finally:
        shutil.rmtree(ledger_dir, ignore_errors=True)


def _lab_logs(tmp, inv_path, key_file, keys, ledger_dir):
    ledger_key = ledger_dir / "ledger.key"
    create_key_file(ledger_key)
    store = f"sqlite:{ledger_dir / 'ledger.db'}"
    with open_store(store, load_key(ledger_key)) as ledger:  # what our relay recorded
        ledger.record([SENT_ID])
    give_to_spamd(ledger_key, *ledger_dir.glob("ledger.db*"))
    inv_path.write_text(example_site(relay=EXAMPLE["relay"][:2], mx=MX1, policy={"dsn": "reject"},
                                     batv={"domains": ["example.net"], "key_file": str(key_file)},
                                     ledger={"store": store, "key_file": str(ledger_key), "days": 30}))
    with PostfixLab(inventory.load(inv_path), syslog=True) as lab:
        codes = [send(lab, build(i), addr, name, sender) for i, (_, build, addr, name, sender, _, _) in enumerate(BACKSCATTER)]
        assert all(c == 550 for c in codes), codes
        for i, (build, addr, name, sender) in enumerate(LEGIT):
            assert send(lab, build(i), addr, name, sender, rcpts=(ALICE,)) == 250
        assert send(lab, samples.ordinary(5), *FROM_RELAY, "alice@example.org", rcpts=(ALICE,)) == 250
        assert send(lab, auto_reply(SENT_ID, 11), *LEDGER_CLIENT, "", rcpts=(ALICE,)) == 250
        # A null-sender message for two recipients: refused at DATA by the null_sender map.
        s = session(lab, "198.51.100.113", "multi.test")
        s.mail("")
        s.rcpt(ALICE), s.rcpt(BOB)
        assert s.docmd("DATA")[0] == 550
        s.close()
        for i in range(SAV):  # sender address verification callouts: MAIL FROM:<>, RCPT TO:, QUIT
            s = session(lab, f"203.0.113.{90 + i}", f"sav{i}.test")
            assert s.mail("")[0] == 250 and s.rcpt(ALICE)[0] == 250
            s.quit()
        # BATV: a bounce to an unsigned address (refused at DATA), a bad tag (refused at RCPT; the
        # session then looks like a refused callout), a valid tag (rescued, delivered).
        assert send(lab, samples.plain_bounce(7), "203.0.113.60", "bb1.test", "", rcpts=(BOB_NET,)) == 550
        s = session(lab, "203.0.113.61", "bb2.test")
        s.mail("")
        assert s.rcpt("prvs=0123456789=bob@example.net")[0] == 550
        s.quit()
        tagged = batv.sign(BOB_NET, keys)
        assert send(lab, samples.plain_bounce(8), "203.0.113.62", "bb3.test", "", rcpts=(tagged,)) == 250
        # spamd gone: the milter tempfails (its reason says why), nothing is accepted unchecked.
        lab.stop_spamd()
        assert send(lab, samples.ordinary(9), "192.0.2.202", "mx.friend3.test", "grace@foreign.test",
                    rcpts=(ALICE,)) == 451
        # The milter gone: Postfix itself tempfails (default_action=tempfail) and says why.
        lab.stop_milter()
        s = session(lab, "192.0.2.203", "mx.friend4.test")
        code = s.mail("grace@foreign.test")[0]
        if code == 250:
            code = s.rcpt(ALICE)[0]
        if code == 250:
            code = s.data(samples.ordinary(10))[0]
        s.close()
        assert code // 100 == 4, code
        lab.wait_queue_empty(timeout=20)
        logs = [tmp / "maillog", tmp / "milter-syslog"]
        for src, dst in zip(lab.logs(), logs, strict=True):
            shutil.copy(src, dst)
            if os.environ.get("BOUNCEGEN_REPORT_KEEP"):  # for a look by hand (docs/report.md's sample)
                shutil.copy(src, Path(os.environ["BOUNCEGEN_REPORT_KEEP"]) / dst.name)
    yield logs


def test_counts_match_what_the_lab_sent(lab_logs):
    d = report.as_json(report.run([str(p) for p in lab_logs]))
    assert d["lines"]["unparsable"] == 0 and d["lines"]["truncated"] == 0 and d["lines"]["interleaved"] == 0
    stages: dict[str, int] = {}
    families: dict[str, int] = {}
    for *_, stage, fam in BACKSCATTER:
        stages[stage] = stages.get(stage, 0) + 1
        families[fam] = families.get(fam, 0) + 1
    stages["null_sender"] = 1
    families["multi-recipient-bounce"] = 1
    stages["milter DATA (BATV)"] = stages["milter RCPT (BATV)"] = 1
    families["batv"] = 2
    assert d["refused"]["by_stage"] == dict(sorted(stages.items(), key=lambda kv: (-kv[1], kv[0])))
    assert d["refused"]["by_family"] == dict(sorted(families.items(), key=lambda kv: (-kv[1], kv[0])))
    assert d["refused"]["total"] == len(BACKSCATTER) + 3
    # BATV's rescue is the milter's own (reason=batv: valid tag); the ledger's is spamd's label
    # BG_RESCUE_LEDGER in the decision line's rules=.
    assert d["rescued"] == {"total": 2, "by_evidence": {"batv": 1, "ledger": 1}}
    milter_refused = stages["milter (SpamAssassin)"]
    # Judged: what reached end of DATA past the maps, spamd up (refused + legit) and the tempfail
    # (it has no points: spamd never answered, so it is a tempfail, not a judgement).
    assert d["messages_judged"] == milter_refused + len(LEGIT) + 1  # and the ledger's auto-reply
    assert d["accepted"] == len(LEGIT) + 1
    assert d["tempfailed"] == {"total": 2, "by_reason": {"milter unreachable or timed out (Postfix)": 1,
                                                         "spamd unreachable": 1}}
    assert list(d["postfix_milter_warnings"].values()) and all(
        k.endswith("milter unreachable") for k in d["postfix_milter_warnings"])
    # Postfix agrees with the milter (its milter-reject lines, BATV's two included)
    assert d["postfix_milter_rejects"]["bouncegen"] == milter_refused + 2
    assert d["delivered"] == len(LEGIT) + 3  # and the one from our relay, and the two rescues
    assert d["not_judged"] == {"total": 1, "by_reason": {"exempt": 1}}
    assert d["sav_callouts"] == {"answered": SAV, "refused": 1}  # the bad tag's session
    assert d["latency_ms"]["n"] == milter_refused + len(LEGIT) + 1
    assert 0 < d["latency_ms"]["p50"] <= d["latency_ms"]["p95"] <= d["latency_ms"]["p99"] <= d["latency_ms"]["max"]
    nets = {n["network"]: (n["messages"], n["refused"]) for n in d["top_networks"]}
    assert nets["198.51.100.0/24"] == (4, 4)  # three bounces and the multi-recipient bounce (not the relay)
    assert nets["203.0.113.0/24"] == (5, 5)  # auto-replies, the virus notice, BATV's two refusals
    assert nets["192.0.2.0/24"] == (2, 0)
    hosts = {h["host"]: h["refused"] for h in d["top_hosts"]}
    assert hosts["ooo.test"] == 1 and hosts["bouncer1.test"] == 1
    assert sum(b["refused"].get("dsn", 0) for b in d["timeline"]) == families["dsn"]
    assert sum(h["refused"] for h in d["per_hour"]) == d["refused"]["total"]


def chromium_run(argv: list[str]) -> tuple[bytes, bytes]:
    """Chromium in its own process group, stopped by that group's PID whatever it left running
    (its zygote and helpers), also on a timeout."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        return proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _png_pixels(path: Path):
    import matplotlib.image

    img = matplotlib.image.imread(str(path))  # float RGBA in [0, 1]
    return img[:, :, :3]


def test_page_in_headless_chromium(lab_logs, tmp_path, capsys):
    need("chromium")
    page = tmp_path / "report.html"
    status, out, _ = run(capsys, "report", *map(str, lab_logs), "--html", str(page))
    assert status == 0 and "Refused by family" in out
    profile = tmp_path / "chromium-profile"  # new and empty; under the session guard's eye
    profile.mkdir()
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]
    chromium = shutil.which("chromium")
    err = chromium_run([chromium, *flags, f"--screenshot={shot}", "--window-size=1280,1400", page.as_uri()])[1]
    assert shot.exists(), err.decode(errors="replace")[-2000:]
    dom = chromium_run([chromium, *flags, "--dump-dom", page.as_uri()])[0]
    html = dom.decode()
    # The DOM as Chromium built it: four charts, each an inline SVG with drawn bars and lines.
    assert html.count("<svg") == 4, html[:500]
    assert len(re.findall(r'<g id="patch_\d+"', html)) > 20  # bars (matplotlib's patches)
    assert "Refusals per minute, by family" in html and "Top client networks" in html
    px = _png_pixels(shot)
    assert px.std() > 0.05, "blank screenshot"
    # The family colours of the stacked bars (page.FIXED: dsn #0072B2, autoreply #E69F00) are drawn.
    for rgb in ((0x00, 0x72, 0xB2), (0xE6, 0x9F, 0x00)):
        target = [c / 255 for c in rgb]
        close = ((abs(px - target) < 0.03).all(axis=2)).sum()
        assert close > 200, (rgb, close)
    if os.environ.get("BOUNCEGEN_REPORT_SHOT"):  # the README's picture is taken from here
        shutil.copy(shot, os.environ["BOUNCEGEN_REPORT_SHOT"])
