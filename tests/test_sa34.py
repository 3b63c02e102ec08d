"""The rendered spamassassin/ output under SpamAssassin 3.4 (Debian 11's package), issue 17 point 4.

An mmdebstrap root of Debian 11 with its spamassassin and DBD::SQLite (lab/debroot.py, cached) gets
the rendered ruleset, .pre and plugin copied into /etc/spamassassin as README says, with an SQLite
ledger built from the corpus's maillog fixture (as bouncegen check builds one). Then:
- ``spamassassin --lint`` inside the root passes;
- every message of corpus/ is judged by SpamAssassin 3.4 there and by the host's SpamAssassin 4
  with the same rendering, through the same batch script (lab/sa_batch.py): the bouncegen rules
  each message hits, and so its verdict, are the same under both.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bouncegen import engines
from bouncegen.lab import chroot, debroot, sa_batch
from bouncegen.ledger import create_key_file, open_store
from bouncegen.ledger.maillog import import_logs
from bouncegen.renderer import inventory, render
from bouncegen.renderer.rules import load_families, verdict_scores
from bouncegen.runner import check
from support import ROOT, need, need_chroot

pytestmark = [pytest.mark.spamassassin, pytest.mark.slow]

SUITE = "bullseye"
PACKAGES = ("spamassassin", "libdbd-sqlite3-perl")
CORPUS = ROOT / "corpus"


def _ledger(inv, db: Path, key_file: Path, maillog: Path) -> None:
    key_file.parent.mkdir(parents=True, exist_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    key = create_key_file(key_file)
    with open_store(f"sqlite:{db}", key, inv.ledger.days) as store:
        import_logs(store, [str(maillog)], as_today=True)


@pytest.fixture(scope="module")
def corpus_messages(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The corpus prepared as the runner prepares it, one file per message (flat names)."""
    out = tmp_path_factory.mktemp("corpus")
    samples, _ = check.load_samples(CORPUS, None)
    names = {}
    for i, s in enumerate(samples):
        data, _ = check.prepare((CORPUS / s.path).read_bytes())
        name = f"{i:04d}"
        (out / name).write_bytes(data)
        names[name] = s.path
    assert len(names) > 100
    return out, names


def _bg(tests: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t for t in tests if t.startswith("BG_"))


def test_sa34_lints_and_judges_the_corpus_as_sa4(tmp_path, corpus_messages):
    need_chroot("SpamAssassin 3.4 lab")
    need("spamassassin")
    messages, names = corpus_messages
    inv = inventory.load(CORPUS / "inventory.toml")
    assert inv.ledger is not None
    scores = verdict_scores(load_families(), inv.policy.scores, ledger=True, points=inv.policy.points)

    # SpamAssassin 4 on the host: a private site directory (stock .pre + rendering), a ledger in tmp.
    here = tmp_path / "here"
    led = dataclasses.replace(inv.ledger, store=f"sqlite:{here / 'ledger/ledger.db'}",
                              key_file=str(here / "ledger/ledger.key"))
    here_inv = dataclasses.replace(inv, ledger=led)
    _ledger(here_inv, here / "ledger/ledger.db", here / "ledger/ledger.key", CORPUS / check.LEDGER_FIXTURE)
    render.write_tree(render.render_files(here_inv), here / "rendered")
    site = engines.sa_site_dir(here / "site", here / "rendered/spamassassin")
    # The host's run goes beside the root's (two Perl processes, one per core).
    pool = ThreadPoolExecutor(max_workers=1)
    sa4 = pool.submit(sa_batch.judge_here, messages, site)

    # SpamAssassin 3.4 in Debian 11: the corpus inventory's own paths, inside the root.
    root = debroot.build(SUITE, PACKAGES, "chroot", print)
    s = chroot.Session(root, tmp_path / "bullseye")
    _ledger(inv, s.path(inv.ledger.store[len("sqlite:"):]), s.path(inv.ledger.key_file), CORPUS / check.LEDGER_FIXTURE)
    out = tmp_path / "rendered34"
    render.write_tree(render.render_files(inv), out)
    for f in sorted((out / "spamassassin").iterdir()):
        s.write(f"/etc/spamassassin/{f.name}", f.read_bytes())
    for f in sorted(messages.iterdir()):
        s.write(f"/srv/corpus/{f.name}", f.read_bytes())
    s.write("/srv/sa_batch.pl", sa_batch.SCRIPT)

    lint = s.run(["spamassassin", "--lint"], timeout=300)
    assert lint.returncode == 0 and lint.stderr == b"", lint.stderr.decode(errors="replace")
    proc = s.run(["perl", "/srv/sa_batch.pl", "/srv/corpus"], timeout=1800)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    v34, hits34 = sa_batch.parse(proc.stdout.decode())
    v4, hits4 = sa4.result()
    pool.shutdown()
    assert not debroot.mounts_below(tmp_path)

    assert v34.startswith("3.4.") and v4.startswith("4."), (v34, v4)
    assert set(hits34) == set(hits4) == set(names)
    differ = {names[n]: (_bg(hits4[n]), _bg(hits34[n])) for n in sorted(names) if _bg(hits4[n]) != _bg(hits34[n])}
    assert not differ, f"bouncegen rules hit differently under SpamAssassin {v34} and {v4}: {differ}"
    caught = [n for n in names if sum(scores.get(t, 0) for t in _bg(hits34[n])) >= check.block_points(scores)]
    assert len(caught) > 50  # the comparison is not vacuous: most backscatter is caught by the rules
    assert "BG_LEDGER_UNAVAIL" not in {t for h in hits34.values() for t in h}
