"""`python -m bouncegen.storm` end to end, tiny: both profiles side by side for one policy, the
BATV run beside them, a ham run each, and the --json FILE record shape of docs/measurements.md (exactly
these keys). Real Postfix,
spamd and milter; the figures themselves are the benchmark's business, not this test's."""

from __future__ import annotations

import json
import os

import pytest

from bouncegen.lab import storm
from support import need

pytestmark = [pytest.mark.smtp, pytest.mark.slow]

KEYS = {"kind", "policy", "profile", "sent", "refused", "refused_per_s", "backscatter_accepted", "legit_sent",
        "legit_delivered", "sav_refused", "sav_median_ms", "delivered_per_s"}


def test_storm_side_by_side_json(tmp_path):
    need("postfix", "postconf", "postmap", "spamd", "spamc", "smtp-source", "smtp-sink", "rsyslogd")
    if os.environ.get("CI"):
        __import__("Milter")
    else:
        pytest.importorskip("Milter")
    if os.geteuid() != 0:
        pytest.skip("a Postfix master runs as root")
    out = tmp_path / "storm.json"
    page = tmp_path / "storm.html"
    status = storm.main(["--count", "40", "--ham", "20", "--sessions", "4", "--policy", "spamassassin",
                         "--policy", "batv", "--json", str(out), "--html", str(page)])
    data = json.loads(out.read_text())
    assert set(data) == {"ceiling_per_s", "runs"} and data["ceiling_per_s"] > 0
    assert [(r["kind"], r["policy"], r["profile"]) for r in data["runs"]] == [
        ("storm", "spamassassin", "lean"), ("ham", "spamassassin", "lean"),
        ("storm", "spamassassin", "full"), ("ham", "spamassassin", "full"),
        ("storm", "batv", "lean"), ("ham", "batv", "lean")]  # BATV on: refused at DATA, lean only
    for r in data["runs"]:
        assert set(r) == KEYS, r
        assert r["backscatter_accepted"] == 0 and r["sav_refused"] == 0
        assert r["legit_delivered"] == r["legit_sent"]
        if r["kind"] == "storm":
            assert r["sent"] == r["refused"] == 40
        else:
            assert r["sent"] == r["legit_sent"] == 20 and r["refused"] == 0
    assert status == 0
    # The page (report/page.py's builder): four charts per lab, the runs' table; the refusals it
    # read from each lab's log are the storm's own count.
    html = page.read_text()
    assert html.count("<svg") == 4 * 3 and "Refusals per second by family" in html and "SAV callout latency" in html
    assert html.count("40 of 40 refused") == 3
