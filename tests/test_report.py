"""`bouncegen report` on hand-made logs: every line shape of report/shapes.py, one row each (the
milter's lines written by milter/log.py's own decision(), Postfix's copied from the lab's
maillog_file), damaged input counted and never a traceback, .gz and standard input, --since and
--until, the terminal within 100 columns, JSON and the HTML page's structure. Pure Python, no
engine: the real logs of the lab are test_report_lab.py's."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import sys
import time

import pytest

from bouncegen import report
from bouncegen.milter.log import decision
from bouncegen.report import html, reader, shapes, terminal
from bouncegen.report.figures import Histogram
from support import run

T0 = time.mktime((2026, 11, 30, 14, 0, 5, 0, 0, -1))
NOW = T0 + 86400


def stamp(ts: float) -> str:
    return time.strftime("%b %d %H:%M:%S", time.localtime(ts))


def line(ts: float, prog: str, msg: str, host: str = "mx1") -> str:
    return f"{stamp(ts)} {host} {prog}[123]: {msg}"


FOREIGN = ("mx.foreign.test", "203.0.113.7")
SPAMMERS = ("[198.51.100.9]", "198.51.100.9")
PF_DSN = ("0A1B2C3D4E: reject: header Content-Type: multipart/report; report-type=delivery-status;??boundary=\"B0\" "
          "from unknown[192.0.2.77]; from=<> to=<bob@example.org> proto=ESMTP helo=<x.test>: 5.7.1 Delivery status "
          "notification refused: our addresses were forged by a spammer; the message it reports on did not come "
          "from us (backscatter)")
PF_FORGED = ("0A1B2C3D4F: reject: body Received: from example.org (x [192.0.2.1]) from relay.test[192.0.2.78]; "
             "from=<> to=<bob@example.org> proto=ESMTP helo=<relay.test>: 5.7.1 Forged Received: header: HELO as "
             "our domain (backscatter)")
PF_MULTI = ("B188420DBC8: reject: DATA from multi.test[192.0.2.79]: 550 5.5.3 <>: Sender address rejected: "
            "Multi-recipient bounce; from=<> proto=ESMTP helo=<multi.test>")
PF_MILTER = ("5B6C7D8E9F: milter-reject: END-OF-MESSAGE from unknown[127.0.0.1]: 5.7.1 Refused as backscatter: "
             "this bounce, auto-reply or notice answers mail that did not come from our servers; a spammer forged "
             "our address. Do not send it again. (BG_ANY_BOUNCE BG_AUTOREPLY); from=<> to=<bob@example.org> "
             "proto=SMTP helo=<autoreply.bouncer.test>")
PF_BATV_RCPT = ("NOQUEUE: milter-reject: RCPT from b.test[192.0.2.80]: 550 5.7.1 Invalid or expired bounce address "
                "tag (BATV): this address was never used as a sender by us; from=<> to=<prvs=1234abcd56=bob@example.org> "
                "proto=ESMTP helo=<b.test>")
PF_OTHER_MILTER = ("6B6C7D8E9F: milter-reject: END-OF-MESSAGE from x.test[192.0.2.81]: 5.7.1 rejected by DMARC policy "
                   "for example.com; from=<a@example.com> to=<bob@example.org> proto=ESMTP helo=<x.test>")
PF_TEMPFAIL = ("7B6C7D8E9F: milter-reject: END-OF-MESSAGE from x.test[192.0.2.81]: 4.7.1 Content check temporarily "
               "unavailable; please try again later; from=<> to=<bob@example.org> proto=ESMTP helo=<x.test>")
PF_UNREACHABLE = "warning: milter inet:127.0.0.1:8893: can't read SMFIC_DATA reply packet header: Connection reset by peer"
PF_SERVICE_UNAVAILABLE = ("NOQUEUE: milter-reject: MAIL from mx.friend4.test[192.0.2.203]: 451 4.7.1 Service "
                          "unavailable - try again later; from=<grace@foreign.test> proto=ESMTP helo=<mx.friend4.test>")
SAV_OK = "disconnect from sav.foreign.test[203.0.113.20] ehlo=2 mail=1 rcpt=1 quit=1 commands=4"
SAV_REFUSED = "disconnect from sav.foreign.test[203.0.113.21] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"
SESSION_DATA = "disconnect from mx.foreign.test[203.0.113.7] ehlo=2 mail=1 rcpt=1 data=1 quit=1 commands=6"
DELIVERED = ("1A2B3C4D5E: to=<alice@example.org>, relay=virtual, delay=0.42, delays=0.39/0.01/0/0.02, dsn=2.0.0, "
             "status=sent (delivered to maildir)")


def sample_log() -> list[str]:
    """One of every shape, at known times; the figures are asserted in test_figures."""
    M = "bouncegen-milter"
    t = T0
    return [
        # Content verdicts: 2 refused (dsn, autoreply), 2 accepted, latencies 100..400 ms
        line(t, M, decision("AAA1", SPAMMERS, "reject", points=10.0, rules=["BG_ANY_BOUNCE", "BG_BOUNCE"], ms=100,
                            tests=("BG_ANY_BOUNCE", "BG_BOUNCE"))),
        line(t + 1, M, decision("AAA2", SPAMMERS, "reject", points=5.0, rules=["BG_ANY_BOUNCE", "BG_AUTOREPLY"], ms=200)),
        line(t + 2, M, decision("AAA3", FOREIGN, "accept", points=0.0, rules=[], ms=300)),
        line(t + 61, M, decision("AAA4", FOREIGN, "accept", points=0.0, rules=[], ms=400,
                                 reason="judged on the first 1024 of 4096 bytes (scan_limit 1024)")),
        # Tempfails: spamd down, ledger down (with points), Postfix could not reach the milter
        line(t + 62, M, "warning: " + decision("AAA5", FOREIGN, "tempfail", reason="spamd at 127.0.0.1:783: Connection refused", ms=3)),
        line(t + 63, M, decision("AAA6", FOREIGN, "tempfail", points=5.0, rules=["BG_BOUNCE"], ms=50, reason="ledger unavailable")),
        line(t + 64, "postfix/cleanup", "AAA7: " + PF_UNREACHABLE),
        line(t + 64, "postfix/smtpd", PF_SERVICE_UNAVAILABLE),
        line(t + 64, "postfix/smtpd", PF_SERVICE_UNAVAILABLE.replace("MAIL from", "EHLO from")),  # not a message
        line(t + 64, "postfix/cleanup", PF_TEMPFAIL),
        # Not judged, rescued by BATV, refused by BATV at RCPT and at DATA
        line(t + 65, M, decision("AAA8", ("smtp1.out.example.org", "192.0.2.25"), "accept", reason="exempt")),
        line(t + 66, M, decision("AAA9", ("client.test", "192.0.2.90"), "accept", reason="auth")),
        line(t + 67, M, decision("AAB1", FOREIGN, "accept", reason="batv: valid tag <prvs=1234abcd56=bob@example.org>")),
        line(t + 68, M, decision("", ("b.test", "192.0.2.80"), "reject", reason="batv: <prvs=0000=bob@example.org>: bad tag")),
        line(t + 69, M, decision("AAB2", ("c.test", "192.0.2.82"), "reject", reason="batv: null sender to unsigned address(es) at DATA")),
        # Postfix maps: header_checks (dsn), body_checks (forged), DATA (multi-recipient)
        line(t + 120, "postfix/cleanup", PF_DSN),
        line(t + 121, "postfix/cleanup", PF_FORGED),
        line(t + 122, "postfix/smtpd", PF_MULTI),
        # Postfix's view of the milter (not added to the milter's own lines), another milter's reject
        line(t + 123, "postfix/cleanup", PF_MILTER),
        line(t + 123, "postfix/smtpd", PF_BATV_RCPT),
        line(t + 124, "postfix/cleanup", PF_OTHER_MILTER),
        # Sessions: a SAV callout answered, one refused, a session with DATA (not a callout)
        line(t + 125, "postfix/smtpd", SAV_OK),
        line(t + 126, "postfix/smtpd", SAV_REFUSED),
        line(t + 127, "postfix/smtpd", SESSION_DATA),
        line(t + 128, "postfix/virtual", DELIVERED),
        # The relay recorder
        line(t + 129, M, "1C2D3E4F5A: ledger: recorded message-id=<x@example.org>", host="smtp1"),
        line(t + 130, M, "warning: ledger: not recorded: 1C2D3E4F5B: store down (3 more since the last report)", host="smtp1"),
        # Lines of no interest
        line(t + 131, "postfix/qmgr", "1A2B3C4D5E: removed"),
        line(t + 131, "postfix/smtpd", "connect from mx.foreign.test[203.0.113.7]"),
        line(t + 131, "dovecot", "imap-login: Login: user=<alice>"),
    ]


def run_on(lines: list[str], tmp_path, **kw) -> dict:
    p = tmp_path / "mail.log"
    p.write_text("\n".join(lines) + "\n")
    return report.as_json(report.run([str(p)], clock=reader.Clock(now=NOW), **kw))


def test_every_shape_has_a_sample():
    text = "\n".join(sample_log())
    for shape in shapes.SHAPES:
        if shape.name == "relay-batv-signed":
            continue  # the relay's BATV signing: below, test_relay_batv_signed
        assert any(shape.rx.match(l.split("]: ", 1)[1]) for l in text.splitlines()), shape.name


def test_figures(tmp_path):
    d = run_on(sample_log(), tmp_path)
    assert d["lines"] == {"total": 30, "used": 27, "other": 3, "unparsable": 0, "truncated": 0, "interleaved": 0,
                          "out_of_range": 0}
    assert d["messages_judged"] == 5  # 4 content verdicts + the tempfail that had points
    assert d["accepted"] == 2
    assert d["refused"]["by_stage"] == {"milter (SpamAssassin)": 2, "body_checks": 1, "header_checks": 1,
                                        "milter DATA (BATV)": 1, "milter RCPT (BATV)": 1, "null_sender": 1}
    assert d["refused"]["by_family"] == {"batv": 2, "dsn": 2, "autoreply": 1, "forged-received": 1,
                                         "multi-recipient-bounce": 1}
    assert d["refused"]["total"] == 7
    assert d["tempfailed"]["by_reason"] == {"ledger unavailable": 1, "milter unreachable or timed out (Postfix)": 1,
                                            "spamd unreachable": 1}
    assert d["postfix_milter_warnings"] == {"inet:127.0.0.1:8893: milter unreachable": 1}
    assert d["rescued"] == {"total": 1, "by_evidence": {"batv": 1}}
    assert d["not_judged"]["by_reason"] == {"auth": 1, "exempt": 1}
    assert d["latency_ms"] == {"n": 5, "p50": 200.0, "p95": 400.0, "p99": 400.0, "max": 400.0}
    assert d["sav_callouts"] == {"answered": 1, "refused": 1}
    assert d["delivered"] == 1
    assert d["postfix_milter_rejects"] == {"bouncegen": 2, "other_milters": {"5xx": 1}}
    assert d["relay"] == {"recorded": 1, "not_recorded": 4, "batv_signed": 0}
    assert d["top_networks"][:3] == [{"network": "192.0.2.0/24", "messages": 5, "refused": 5},
                                     {"network": "198.51.100.0/24", "messages": 2, "refused": 2},
                                     {"network": "203.0.113.0/24", "messages": 2, "refused": 0}]
    assert {"host": "unknown[198.51.100.9]", "messages": 2, "refused": 2} in d["top_hosts"]
    assert [h["refused"] for h in d["per_hour"]] == [7]
    minutes = {b["t"][11:16]: b for b in d["timeline"]}
    assert minutes["14:00"]["refused"] == {"autoreply": 1, "dsn": 1}
    assert minutes["14:00"]["latency_ms"]["n"] == 3
    assert minutes["14:02"]["refused"] == {"dsn": 1, "forged-received": 1, "multi-recipient-bounce": 1}
    assert json.loads(json.dumps(d)) == d


# Captured from test_report_lab.py's run (rsyslogd's file): an auto-reply to a message whose
# Message-ID our relay recorded in the SQLite ledger; spamd's rescue label names the evidence.
LEDGER_RESCUE = ("2026-12-02T02:33:19.366456+00:00 vm bouncegen-milter[16448]: 561B020C343: client=rescue.test"
                 "[198.18.0.10], verdict=accept, points=0.0, rules=BG_RESCUE_LEDGER, ms=12, tests=BG_RESCUE_LEDGER")


def test_rescue_label_counted_by_evidence(tmp_path):
    d = run_on([LEDGER_RESCUE], tmp_path)
    assert d["lines"]["used"] == 1 and d["lines"]["unparsable"] == 0
    assert d["rescued"] == {"total": 1, "by_evidence": {"ledger": 1}}
    assert d["accepted"] == 1 and d["refused"]["total"] == 0
    # rules= alone counts (a milter without tests=), and a message with two kinds of evidence
    # counts once, under the strongest; an ordinary accept is no rescue.
    hop_and_dkim = LEDGER_RESCUE.replace("rules=BG_RESCUE_LEDGER", "rules=BG_RESCUE_DKIM,BG_RESCUE_HOP") \
        .replace(", tests=BG_RESCUE_LEDGER", "")
    hop = LEDGER_RESCUE.replace("BG_RESCUE_LEDGER", "BG_RESCUE_HOP")
    plain = LEDGER_RESCUE.replace("rules=BG_RESCUE_LEDGER", "rules=-").replace("tests=BG_RESCUE_LEDGER", "tests=BG_ANY")
    d = run_on([hop_and_dkim, hop, plain], tmp_path)
    assert d["rescued"] == {"total": 2, "by_evidence": {"dkim": 1, "relay-hop": 1}}
    assert d["accepted"] == 3


def test_milter_names_rescue_labels_but_never_counts_them():
    from bouncegen.facts import RESCUE_LABELS
    from bouncegen.milter.settings import verdict

    scores = {"BG_BOUNCE": 5.0, "BG_ANY_BOUNCE": 0.01}
    assert verdict(("BG_RESCUE_LEDGER", "BG_RESCUE_HOP", "OTHER"), scores) == (0.0, ["BG_RESCUE_HOP", "BG_RESCUE_LEDGER"])
    # even a ruleset that scored one (it renders 0.001) would add no points
    assert verdict(("BG_RESCUE_BATV",), {**scores, "BG_RESCUE_BATV": 9.0}) == (0.0, ["BG_RESCUE_BATV"])
    assert set(RESCUE_LABELS.values()) <= {label for _, label in shapes.RESCUE_TESTS}
    assert all(any(re.match(rx, name) and label == RESCUE_LABELS[name] for rx, label in shapes.RESCUE_TESTS)
               for name in RESCUE_LABELS)


def test_relay_batv_signed(tmp_path):
    d = run_on([line(T0, "bouncegen-milter", "1C2D: batv: signed from=<a@example.org> as <prvs=1=a@example.org>")],
               tmp_path)
    assert d["relay"]["batv_signed"] == 1


def test_postfix_alone_counts_the_milter_refusals(tmp_path):
    """A host whose milter logs elsewhere: Postfix's milter-reject lines stand in, once."""
    lines = [l for l in sample_log() if "bouncegen-milter" not in l]
    d = run_on(lines, tmp_path)
    assert d["refused"]["by_stage"]["milter (SpamAssassin)"] == 1
    assert d["refused"]["by_stage"]["milter RCPT (BATV)"] == 1
    assert d["refused"]["by_family"]["autoreply"] == 1
    assert d["tempfailed"]["by_reason"] == {"milter tempfail": 1, "milter unreachable or timed out (Postfix)": 1}
    assert any("milter-reject" in n for n in d["notes"])


def test_damaged_lines_are_counted_never_raised(tmp_path):
    good = sample_log()
    cut = good[0][: good[0].index("verdict=") + 12]  # truncated mid-field
    glued = good[1][:90] + good[2]                      # two writers in one line
    garbage = "\x00\x01 binary \ufffd junk"
    d = run_on([cut, glued, garbage, "", "Dec 99 99:99:99 mx1 bouncegen-milter[1]: " + good[3].split("]: ", 1)[1]],
               tmp_path)
    assert d["lines"]["truncated"] == 1
    assert d["lines"]["interleaved"] == 1
    assert d["lines"]["unparsable"] == 3  # garbage, the empty line, the impossible timestamp
    assert d["refused"]["total"] == 0


def test_random_bytes_never_raise(tmp_path):
    rnd = random.Random(20)
    lines = sample_log()
    data = bytearray("\n".join(lines).encode())
    for _ in range(150):  # flip, cut and splice bytes all over a real log
        i = rnd.randrange(len(data))
        data[i:i + rnd.randrange(1, 40)] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(8)))
    p = tmp_path / "bad.log"
    p.write_bytes(bytes(data))
    d = report.as_json(report.run([str(p)], clock=reader.Clock(now=NOW)))
    assert d["lines"]["total"] > 0


def test_gzip_stdin_and_damaged_gzip(tmp_path, monkeypatch):
    text = ("\n".join(sample_log()) + "\n").encode()
    gz = tmp_path / "mail.log.1.gz"
    gz.write_bytes(gzip.compress(text))
    cut = tmp_path / "mail.log.2.gz"
    cut.write_bytes(gzip.compress(text)[:-30])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    rep = report.run([str(gz), "-", str(cut)], clock=reader.Clock(now=NOW))
    d = report.as_json(rep)
    assert d["refused"]["total"] >= 2 * 7
    assert any("mail.log.2.gz: read only in part" in n for n in d["notes"])


def test_since_until(tmp_path):
    d = run_on(sample_log(), tmp_path, since=T0 + 120, until=T0 + 122)
    assert d["refused"]["by_stage"] == {"body_checks": 1, "header_checks": 1}
    assert d["lines"]["out_of_range"] == 25
    assert reader.parse_time("2h", now=1000000) == 1000000 - 7200
    assert reader.parse_time("2026-11-30T14:00:05") == T0


def test_iso_timestamps_and_year_turn(tmp_path):
    iso = time.strftime("%Y-%m-%dT%H:%M:%S.123456+00:00", time.gmtime(T0))
    p = tmp_path / "iso.log"
    p.write_text(f"{iso} mx1 bouncegen-milter[9]: " + decision("Q1", FOREIGN, "accept", points=0.0, rules=[], ms=5) + "\n")
    d = report.as_json(report.run([str(p)]))
    assert d["messages_judged"] == 1 and d["first"] is not None
    assert abs(datetime_of(d["first"]) - T0) < 1
    # "Dec 31" read on January 1st belongs to the year before
    clock = reader.Clock(now=time.mktime((2027, 1, 1, 0, 10, 0, 0, 0, -1)))
    m = reader._PREFIX.match("Dec 31 23:59:00 mx1 postfix/smtpd[1]: x")
    assert time.localtime(clock(m)).tm_year == 2026


def datetime_of(s: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(s).timestamp()


def test_histogram_percentiles():
    h = Histogram()
    for ms in range(1, 1001):
        h.add(ms)
    s = h.summary()
    assert s["p50"] == pytest.approx(500, rel=0.02) and s["p99"] == pytest.approx(990, rel=0.02)
    assert s["max"] == 1000


def test_terminal_fits_100_columns(tmp_path):
    d = run_on(sample_log(), tmp_path)
    out = io.StringIO()
    terminal.print_report(d, out)
    text = out.getvalue()
    assert max(len(l) for l in text.splitlines()) <= 100
    for heading in ("Summary", "Refused by family", "Refused by stage", "Tempfailed, why", "Rescued, by evidence",
                    "Top client networks", "Top sending hosts", "Per hour"):
        assert heading in text
    assert re.search(r"SAV callouts answered / refused\s+1 / 1", text)


def test_cli_json_html_and_errors(tmp_path, capsys):
    p = tmp_path / "mail.log"
    p.write_text("\n".join(sample_log()) + "\n")
    page = tmp_path / "r.html"
    status, out, err = run(capsys, "report", str(p), "--json", "--html", str(page))
    assert status == 0
    d = json.loads(out)
    assert d["format"] == report.FORMAT and d["refused"]["total"] == 7
    text = page.read_text()
    # Self-contained: four inline charts, nothing fetched at view time (only in-page #references).
    assert text.count("<svg") == 4
    assert not re.findall(r"""(?:src|href)\s*=\s*["'](?!#)""", text)
    assert "<script" not in text and not re.findall(r"url\((?!#)", text) and "@import" not in text
    status, out, err = run(capsys, "report", str(tmp_path / "missing.log"))
    assert status == 2 and err.startswith("error: ") and "missing.log" in err and "Traceback" not in err
    status, out, err = run(capsys, "report", str(p), "--html", str(tmp_path / "no" / "such" / "dir.html"))
    assert status == 2 and "cannot write" in err and "Traceback" not in err
    status, out, err = run(capsys, "report", str(tmp_path))  # a directory
    assert status == 2 and "cannot read" in err
    status, out, err = run(capsys, "report", str(p), "--since", "yesterday-ish")
    assert status == 2 and "--since" not in err and "not a time" in err


def test_html_page_structure(tmp_path):
    d = run_on(sample_log(), tmp_path)
    text = html.build(d).html()
    for title in ("Refusals per minute, by family", "Milter latency per minute", "Top client networks",
                  "Top sending hosts", "Refused by stage", "Tempfailed, why", "Rescued, by evidence", "Per hour"):
        assert title in text, title
    assert os.linesep not in "" and text.startswith("<!DOCTYPE html>")
