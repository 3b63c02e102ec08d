"""bouncegen's ruleset post-queue under the real amavisd-new of Debian 12 (issue 22).

amavisd-new, SpamAssassin and DBD::SQLite come from Debian's packages, in an mmdebstrap root
cached in /var/cache/bouncegen-lab (lab/debroot.py, lab/chroot.py); amavis is configured as Debian ships it plus
exactly the blocks docs/deploying.md ("amavisd-new hosts") gives an admin, read from the docs
here. It runs in the foreground as user amavis, in namespaces of its own (its loopback only):
the test speaks SMTP to its port 10024 as Postfix's content_filter would, and Postfix's
smtp-sink on 10025 stores what amavis passes on.

- a backscatter bounce gets amavis' spam treatment (Debian's D_PASS: delivered with
  X-Spam-Flag: YES) from one bouncegen verdict at policy.points = 6.31;
- a bounce of our own mail, proven only by the SQLite ledger, and an ordinary message pass
  without the flag; the plugin reads the ledger inside amavis' processes, as user amavis, and
  BG_LEDGER_UNAVAIL never fires while the ledger can be read;
- install's reading of the levels agrees with Debian's real conf.d;
- during a ledger outage (the SQLite file unreadable for amavis) the forged bounce, which the
  bounce and the auto-reply family both judge, scores one verdict and BG_LEDGER_UNAVAIL cancels
  it: even with D_DISCARD it is passed on unmarked, never quarantined.
Every process is stopped by its PID; the mounts live in the namespace and go with it.
"""

from __future__ import annotations

import gzip
import os
import re

import pytest

from bouncegen.deploy import amavis as amavis_deploy
from bouncegen.deploy.layout import Target
from bouncegen.lab import amavis, debroot, mail
from bouncegen.lab.site import example_site
from bouncegen.ledger import create_key_file, open_store
from bouncegen.renderer import inventory, render
from support import ROOT, need, need_chroot

pytestmark = [pytest.mark.spamassassin, pytest.mark.slow]

DOCS = ROOT / "docs" / "deploying.md"
HEADING = "## amavisd-new hosts"
LEDGER = {"store": "sqlite:/var/lib/bouncegen/ledger.db", "key_file": "/etc/bouncegen/ledger.key"}
# What the test exposes: the ledger sub-rule as a rule of its own in amavis' log (test only).
PROBE_CF = "meta  BGTEST_LEDGER_HIT __BG_LEDGER_HIT\nscore BGTEST_LEDGER_HIT 0.001\n"


def docs_admin_changes(lab: amavis.AmavisLab) -> None:
    """Apply the docs' blocks 1 and 2 to Debian's files."""
    text = DOCS.read_text()
    bypass = amavis.docs_block(text, HEADING, "@bypass_spam_checks_maps")
    shipped = lab.conf("15-content_filter_mode")
    commented = "".join("#" + line + "\n" for line in bypass.splitlines())
    assert commented in shipped, "Debian's 15-content_filter_mode no longer has the lines the docs uncomment"
    lab.put_conf("15-content_filter_mode", shipped.replace(commented, bypass))
    local = amavis.docs_block(text, HEADING, "@local_domains_acl")
    user = lab.conf("50-user")
    assert user.rstrip().endswith("1;  # ensure a defined return")
    lab.put_conf("50-user", user.replace("\n1;  # ensure a defined return", "\n" + local + "\n1;  # ensure a defined return"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    need("smtp-sink", "spamassassin")
    need_chroot("amavis lab")
    scratch = tmp_path_factory.mktemp("amavis")
    lab = amavis.AmavisLab(scratch / "lab", log=print)
    # Debian's shipped levels, read the way install reads them.
    shipped = amavis_deploy.detect(Target.make(lab.root))
    assert shipped.levels == {"sa_tag2_level_deflt": 6.31, "sa_kill_level_deflt": 6.31}
    assert shipped.destiny == "D_PASS" and not shipped.bypass_set

    # The group the package creates, and the docs' block 3, done in the root as root.
    lab.sh("addgroup --system bouncegen >/dev/null && adduser amavis bouncegen >/dev/null")
    docs_admin_changes(lab)
    inv_path = scratch / "site.toml"
    inv_path.write_text(example_site(policy={"points": 6.31}, ledger=LEDGER))
    inv = inventory.load(inv_path)
    out = scratch / "rendered"
    render.write_tree(render.render_files(inv), out)
    lab.install_sa(out / "spamassassin")
    lab.session.write(f"{amavis.SA_DIR}/99_bgtest_probe.cf", PROBE_CF)

    # The ledger as bouncegen ledger init makes it, then readable by group bouncegen (docs).
    gid = lab._gid("bouncegen")
    uid = lab.session.ids("root")[0]
    key_path = lab.session.path(LEDGER["key_file"])
    key_path.parent.mkdir(parents=True)
    key = create_key_file(key_path)
    os.chown(key_path, uid, gid)
    os.chmod(key_path, 0o640)
    db_dir = lab.session.path("/var/lib/bouncegen")
    db_dir.mkdir(parents=True)
    with open_store(f"sqlite:{db_dir / 'ledger.db'}", key, inv.ledger.days) as store:
        store.record(["<orig2.20261123@example.org>"])
    for p in (db_dir, *db_dir.iterdir()):
        os.chown(p, 0, gid)
        os.chmod(p, 0o2770 if p.is_dir() else 0o660)
    lint = lab.sh("spamassassin --lint 2>&1; echo lint-ok")
    assert lint.strip().endswith("lint-ok") and "error" not in lint.lower(), lint

    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        assert not debroot.mounts_below(scratch), debroot.mounts_below(scratch)


def _verdict(lab, message: bytes, sender: str, tag: str) -> tuple[bytes, str]:
    before = len(lab.delivered())
    reply = lab.send(message.replace(b"\r\nSubject: ", f"\r\nX-Lab-Tag: {tag}\r\nSubject: ".encode(), 1),
                     sender, "alice@example.org")
    assert reply.startswith("250"), (reply, lab.log_tail())
    got = [m for m in lab.delivered() if f"X-Lab-Tag: {tag}".encode() in m]
    assert len(lab.delivered()) == before + 1 and len(got) == 1, lab.log_tail()
    scans = [line for line in lab.log().splitlines() if "spam_scan: score=" in line]
    return got[0], scans[-1] if scans else ""


def test_backscatter_is_marked_as_spam(lab):
    msg, scan = _verdict(lab, mail.forged_dsn(n=1), "", "backscatter")
    head = msg.split(b"\r\n\r\n", 1)[0]
    assert b"\nX-Spam-Flag: YES" in head, (head.decode(errors="replace"), scan)
    assert "BG_BOUNCE=6.31" in scan and "BG_LEDGER_UNAVAIL" not in scan, scan
    assert "BG_AUTOREPLY" not in scan, scan  # one verdict per message (docs/rules.md)


def test_own_domain_id_without_proof_is_marked(lab):
    """A Message-ID in our domain that the ledger never saw: joe-job spammers mint those."""
    msg, scan = _verdict(lab, mail.dsn([], n=3), "", "minted")
    assert b"\nX-Spam-Flag: YES" in msg.split(b"\r\n\r\n", 1)[0], scan
    assert "BG_BOUNCE" in scan and "BGTEST_LEDGER_HIT" not in scan and "BG_LEDGER_UNAVAIL" not in scan, scan


def test_bounce_of_our_own_mail_passes_by_the_ledger(lab):
    msg, scan = _verdict(lab, mail.dsn([], n=2), "", "ours")
    assert b"X-Spam-Flag: YES" not in msg.split(b"\r\n\r\n", 1)[0], scan
    assert "BGTEST_LEDGER_HIT" in scan and "BG_BOUNCE" not in scan and "BG_LEDGER_UNAVAIL" not in scan, scan
    # The plugin read the ledger in amavis' processes, which run as amavis only.
    amavis_uid = lab.session.ids("amavis")[0]
    assert lab.amavis_uids() == {amavis_uid}
    shm = lab.session.path("/var/lib/bouncegen/ledger.db-shm")
    assert not shm.exists() or shm.stat().st_uid in (0, amavis_uid)


def test_ordinary_mail_passes(lab):
    msg, scan = _verdict(lab, mail.ordinary(n=4), "grace@foreign.test", "ordinary")
    assert b"X-Spam-Flag: YES" not in msg.split(b"\r\n\r\n", 1)[0], scan
    assert not re.search(r"\bBG_", scan), scan


def test_discarded_when_the_site_chose_it(lab):
    """The other treatment docs/deploying.md names: $final_spam_destiny = D_DISCARD in 50-user
    (amavis restarted, as after any change of its configuration): the backscatter bounce is
    accepted and quarantined, never passed on; an ordinary message still is."""
    line = "$final_spam_destiny = D_DISCARD;"
    assert f"`{line[:-1]}` (in `50-user`)" in DOCS.read_text()
    lab.stop()
    user = lab.conf("50-user")
    lab.put_conf("50-user", user.replace("\n1;  # ensure a defined return", f"\n{line}\n1;  # ensure a defined return"))
    lab.start()
    before = len(lab.delivered())
    reply = lab.send(mail.forged_dsn(n=5), "", "alice@example.org")
    assert reply.startswith("250"), reply
    assert len(lab.delivered()) == before, "discarded backscatter was passed on"
    assert re.search(r"Blocked SPAM .*quarantine: \S+", lab.log()), lab.log_tail()
    quarantined = [p for p in lab.session.path("/var/lib/amavis/virusmails").rglob("*") if p.is_file()]
    assert any(b"<dsn5.20261123091405@mx.foreign.test>" in gzip.decompress(p.read_bytes()) for p in quarantined)
    msg, scan = _verdict(lab, mail.ordinary(n=6), "grace@foreign.test", "ordinary-after")
    assert b"X-Spam-Flag: YES" not in msg.split(b"\r\n\r\n", 1)[0], scan


def test_ledger_outage_never_discards(lab):
    """The ledger unreadable for amavis (mode 000; amavis restarted so that no process keeps it
    open) under D_DISCARD (the test above; set again when this test runs alone): the forged bounce
    gets BG_LEDGER_UNAVAIL, its one verdict is cancelled, and it is delivered unmarked. Before the
    verdict precedence it scored BG_BOUNCE and BG_AUTOREPLY, 6.31 points were left, and amavis
    quarantined it: a store outage refused mail for good."""
    line = "$final_spam_destiny = D_DISCARD;"
    db = lab.session.path("/var/lib/bouncegen/ledger.db")
    mode = db.stat().st_mode & 0o7777
    lab.stop()
    user = lab.conf("50-user")
    if line not in user:
        lab.put_conf("50-user", user.replace("\n1;  # ensure a defined return", f"\n{line}\n1;  # ensure a defined return"))
    os.chmod(db, 0)
    try:
        lab.start()
        msg, scan = _verdict(lab, mail.forged_dsn(n=7), "", "outage")
        assert b"X-Spam-Flag: YES" not in msg.split(b"\r\n\r\n", 1)[0], scan
        assert "BG_LEDGER_UNAVAIL=-6.31" in scan and "BG_BOUNCE=6.31" in scan and "BG_AUTOREPLY" not in scan, scan
    finally:
        os.chmod(db, mode)
