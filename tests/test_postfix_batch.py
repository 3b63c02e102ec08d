"""PostfixChecks.check_many: one postmap process per table for a batch of messages gives, message
for message, the very results of one postmap process per message (PostfixChecks.check), on the
corpus and on the shapes where Postfix's MIME reader decides where headers end; a postmap that
fails is an error for its messages, never a pass; close() leaves no postmap running. Real postmap."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from bouncegen import engines
from bouncegen.engines.postfix_tables import PostfixChecks
from bouncegen.renderer import inventory, render
from bouncegen.runner import check

pytestmark = [pytest.mark.postfix]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


@pytest.fixture(autouse=True)
def _engines():
    missing = [e for e in ("postmap", "postconf") if not engines.which(e)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"engines missing under CI=true: {', '.join(missing)} (run scripts/install-engines)")
        pytest.skip(f"engines missing: {', '.join(missing)}")


def _checks(tmp_path: Path, map_type: str = "pcre") -> PostfixChecks:
    inv = inventory.load(CORPUS / "inventory.toml")
    if map_type != inv.policy.map_type:
        text = (CORPUS / "inventory.toml").read_text().replace('map_type = "pcre"', f'map_type = "{map_type}"')
        (tmp_path / "inv.toml").write_text(text)
        inv = inventory.load(tmp_path / "inv.toml")
    render.write_tree(render.render_files(inv), tmp_path / "r")
    conf = engines.postfix_config_dir(tmp_path / "pf", tmp_path / "r" / "postfix")
    # The rendered body_checks refuses nothing (templates/postfix/body_checks.j2): answers of every
    # kind for the comparison, from lines of this test's own after the rendered ones.
    with open(conf / "bouncegen" / "body_checks", "a") as f:
        f.write("/^[> ]*Received: from smtp1\\.out\\.example\\.org \\(unknown/ REJECT 5.7.1 test: forged hop\n"
                "/^-- *$/ WARN test: a signature\n/^$/ INFO test: an empty line\n/^hello$/ DUNNO\n")
    return PostfixChecks(conf)


# corpus/inventory.toml's relay at an address not its own: header_checks and body_checks refuse it.
FORGED = b"Received: from smtp1.out.example.org (unknown [203.0.113.66])\n\tby mx.example.net; Mon, 2 Mar 2026\n"
# Where headers end, and what becomes a key: the cases of global/mime_state.c and is_header.c.
SHAPES = [
    b"Subject: folded\n\tsecond line\n  third line\nFrom: a@example.com\n\nbody\n",
    b"no header at all\nSubject: not a header here\n\n",
    b"\tstarts with a blank\nSubject: x\n\nbody\n",
    b"\nSubject: after an empty first line\n",
    b"Subject : name space colon\nFrom\t: tab\n\nbody line\n",
    b"Subject: headers only, no body",
    b"Subject: headers only\nFrom: b@example.com\n",
    b"Subject: no empty line\ngarbage line ends the headers\nbody\n",
    b"Subject: no final newline\n\nlast body line",
    b"Subject: nul\0in a header\nX-A\0b: name with nul\n\nbody\0line\n",
    b"Subject: cr\r\nX-8bit: \xe9t\xe9\n\n\xff\xfe body\n",
    b"X-Bouncegen-Mark-0123: 0\nSubject: looks like a marker, has no token\n\nX-Bouncegen-Mark-0123: 1\n",
    b"Subject: " + b"long " * 30000 + b"\n\tcontinued past header_size_limit\n\nbody\n",
    b"Subject: big body\n\n" + b"y" * 75 + b"\n" + (b"x" * 75 + b"\n") * 20000,
    FORGED + b"Subject: refused at the headers\n\n" + FORGED,
    b"Subject: refused in the body\n\n" + FORGED,
    b"Subject: quoted\n\n> " + FORGED + b"\n\n",
    b"Subject: folded\nReceived: from smtp1.out.example.org\n  (unknown [203.0.113.66]) by mx.example.net\n\nbody\n",
    b"",
    b"\n",
]


def _corpus_messages() -> list[bytes]:
    samples, _ = check.load_samples(CORPUS, None)
    return [check.prepare((CORPUS / s.path).read_bytes())[0] for s in samples]


def _counted(pf: PostfixChecks) -> list[list[str]]:
    """Record the argv of every postmap the checks start (the real postmap still runs)."""
    calls: list[list[str]] = []
    run = pf.children.run

    def counting(argv, data, timeout):
        calls.append(argv)
        return run(argv, data, timeout)

    pf.children.run = counting  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize("map_type", ["pcre", "regexp"])
def test_batch_gives_the_results_of_one_process_per_message(tmp_path, map_type):
    pf = _checks(tmp_path, map_type)
    messages = (_corpus_messages() if map_type == "pcre" else []) + SHAPES
    one_by_one = [pf.check(m) for m in messages]
    calls = _counted(pf)
    batched = pf.check_many(messages)
    assert batched == one_by_one
    # one process per table, not per message (no fall-back to one process per message)
    assert len(calls) == len(pf.queries), [c[3] for c in calls]
    assert any(r.refused and r.refused.parameter == "header_checks" for r in batched)
    assert any(r.refused and r.refused.parameter == "body_checks" for r in batched)
    assert any(not r.refused and any(h.action.startswith("INFO") for h in r.hits) for r in batched)
    assert sum(1 for r in batched if r.hits) >= len(SHAPES) // 2  # the comparison had answers to compare


def test_a_failing_postmap_is_an_error_for_its_messages(tmp_path):
    pf = _checks(tmp_path)
    (pf.confdir / "bouncegen" / "body_checks").unlink()  # postmap: fatal: open ...: exit status 1
    results = pf.check_many([b"Subject: a\n\nbody\n", b"Subject: b\n\nbody\n"])
    assert [r.ok for r in results] == [False, False]
    assert all("fatal" in r.error and "body_checks" in r.error for r in results)
    assert not pf.check(b"Subject: c\n\nbody\n").ok  # one at a time too: never read as "no match"


def _alive(pid: int) -> bool:
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return st[st.rindex(")") + 2] != "Z"


def test_close_stops_postmap_mid_batch_and_starts_no_more(tmp_path):
    pf = _checks(tmp_path)
    messages = [b"Subject: big\n\n" + (b"z" * 99 + b"\n") * 40_000] * 40  # a 160 MB body stream
    out: list = []
    worker = threading.Thread(target=lambda: out.append(pf.check_many(messages)))
    worker.start()
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while not seen and time.monotonic() < deadline and worker.is_alive():
        seen = [p for p in pf.children.pids() if b"-bq" in Path(f"/proc/{p}/cmdline").read_bytes()]
        time.sleep(0.001)
    assert seen, "the body_checks postmap was not seen running"
    pf.close()
    worker.join(60)
    assert not worker.is_alive()
    assert not any(_alive(p) for p in seen)
    assert pf.children.pids() == []
    results = out[0]
    assert len(results) == len(messages) and not any(r.ok for r in results)  # errors, never a pass
    assert all("stopping" in r.error for r in results)
