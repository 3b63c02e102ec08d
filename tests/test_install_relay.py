"""bouncegen install --role relay / uninstall --role relay (issue 17): the relay-role recorder put
on an outbound relay the way the MX layer is (tests/test_install.py, tests/test_service.py):
staged under --root with the real postconf and postfix check, and on a private Postfix
(lab/postfix_lab.py) with the recorder started as a process (services.Commands, stopped by its
PID), a real redis-server as the ledger, the health gate and the rollback."""

from __future__ import annotations

import email
import shutil
import sys
import time
from pathlib import Path

import pytest

from bouncegen import engines
from bouncegen.deploy import relay, services as svc
from bouncegen.deploy.layout import RELAY_UNIT, Target
from bouncegen.engines.spamd import free_port
from bouncegen.errors import LintError
from bouncegen.lab.postfix_lab import PostfixLab
from bouncegen.lab.site import MX1, ONE_RELAY, example_site
from bouncegen.ledger import create_key_file, load_key, open_store
from bouncegen.renderer import inventory
from support import RedisServer, need, need_lab, run

RELAY_MAIN_CF = """\
# smtp1 -- hand-written, keep this comment
myhostname = smtp1.example.org
compatibility_level = 3.6
smtpd_milters = inet:127.0.0.1:8891
non_smtpd_milters = inet:127.0.0.1:8891
"""
ENTRY = "{ inet:127.0.0.1:8898, default_action=accept, connect_timeout=5s, command_timeout=5s, content_timeout=10s }"


def site(tmp: Path, **milter) -> Path:
    path = tmp / "site.toml"
    path.write_text(example_site(relay=ONE_RELAY, mx=MX1, milter=milter or None, ledger={
        "store": "redis://:Pw7xq9@127.0.0.1:6379/2", "key_file": "/etc/bouncegen/ledger.key"}))
    return path


@pytest.fixture
def root(tmp_path) -> Path:
    need("postconf", "postfix")
    r = tmp_path / "root"
    (r / "etc/postfix").mkdir(parents=True)
    (r / "etc/postfix/main.cf").write_text(RELAY_MAIN_CF + f"queue_directory = {r}/spool\n")
    (r / "spool").mkdir()
    if Path("/etc/postfix/master.cf").is_file():
        shutil.copy("/etc/postfix/master.cf", r / "etc/postfix/master.cf")
    return r


def tree(r: Path) -> dict[str, bytes]:
    return {str(p.relative_to(r)): p.read_bytes() for p in sorted((r / "etc").rglob("*")) if p.is_file()}


@pytest.mark.postfix
def test_staged_install_adds_the_recorder_to_both_lists_and_uninstall_gives_main_cf_back(root, tmp_path, capsys):
    before = tree(root)
    inv = site(tmp_path)
    status, out, err = run(capsys, "install", str(inv), "--role", "relay", "--root", str(root))
    assert status == 0, err
    assert "validated: postconf -n" in out and "installed: 5 files changed" in out, out
    assert "Pw7xq9" not in out, "the store URL's password is never shown in the diff"
    main = (root / "etc/postfix/main.cf").read_text()
    # The host's milter first, with its place and settings; ours after it, default_action=accept.
    assert f"\nsmtpd_milters = inet:127.0.0.1:8891, {ENTRY}\n" in main
    assert f"\nnon_smtpd_milters = inet:127.0.0.1:8891, {ENTRY}\n" in main
    assert main.startswith("# smtp1 -- hand-written, keep this comment\n")
    conf = root / "etc/bouncegen/bouncegen-relay.conf"
    assert 'role = "relay"' in conf.read_text() and conf.stat().st_mode & 0o777 == 0o640
    unit = (root / "etc/systemd/system" / RELAY_UNIT).read_text()
    assert "milter --config /etc/bouncegen/bouncegen-relay.conf" in unit
    assert not (root / "etc/mail").exists() and not (root / "etc/postfix/bouncegen").exists(), \
        "the relay role installs no SpamAssassin file and no map"

    installed = tree(root)
    status, out, err = run(capsys, "install", str(inv), "--role", "relay", "--root", str(root))
    assert status == 0 and out.startswith("nothing to change"), out + err
    assert tree(root) == installed

    status, out, err = run(capsys, "uninstall", "--role", "relay", "--root", str(root))
    assert status == 0, err
    assert tree(root) == before, "uninstall gives back main.cf byte for byte and removes every file"


@pytest.mark.postfix
def test_non_smtpd_milters_naming_smtpd_milters_gets_no_second_entry(root, tmp_path, capsys):
    (root / "etc/postfix/main.cf").write_text(RELAY_MAIN_CF.replace(
        "non_smtpd_milters = inet:127.0.0.1:8891", "non_smtpd_milters = $smtpd_milters") + f"queue_directory = {root}/spool\n")
    status, out, err = run(capsys, "install", str(site(tmp_path)), "--role", "relay", "--root", str(root))
    assert status == 0, err
    main = (root / "etc/postfix/main.cf").read_text()
    assert "\nnon_smtpd_milters = $smtpd_milters\n" in main and main.count("8898") == 1, main
    assert "serves locally submitted mail too" in out


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_mx_and_relay_roles_on_one_host_keep_to_their_own_files(root, tmp_path, capsys):
    """A small site's one Postfix is relay and MX: each role's install and uninstall leaves the
    other's files and main.cf entry alone."""
    need("spamassassin", "postmap")
    sa = root / "etc/mail/spamassassin"
    sa.mkdir(parents=True)
    for pre in engines.stock_pre_files():  # SpamAssassin as Debian installs it, for the MX role
        shutil.copy(pre, sa / pre.name)
    inv = site(tmp_path)
    assert run(capsys, "install", str(inv), "--role", "relay", "--root", str(root))[0] == 0
    status, out, err = run(capsys, "install", str(inv), "--root", str(root))
    assert status == 0, err
    main = (root / "etc/postfix/main.cf").read_text()
    assert "inet:127.0.0.1:8897, default_action=tempfail" in main and ENTRY in main
    assert (root / "etc/bouncegen/bouncegen-relay.conf").is_file()
    assert (root / "etc/systemd/system" / RELAY_UNIT).is_file()
    assert run(capsys, "uninstall", "--root", str(root))[0] == 0
    main = (root / "etc/postfix/main.cf").read_text()
    assert "8897" not in main and ENTRY in main
    assert (root / "etc/bouncegen/bouncegen-relay.conf").is_file(), "the MX uninstall kept the relay's files"
    assert run(capsys, "uninstall", "--role", "relay", "--root", str(root))[0] == 0
    assert "8898" not in (root / "etc/postfix/main.cf").read_text()
    assert not (root / "etc/bouncegen").exists()


def test_inventory_without_ledger_is_refused(root, tmp_path, capsys):
    inv = tmp_path / "site.toml"
    inv.write_text(example_site(relay=ONE_RELAY, mx=MX1, ledger=None))
    before = tree(root)
    status, out, err = run(capsys, "install", str(inv), "--role", "relay", "--root", str(root))
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "needs a [ledger] or a [batv] table" in lines[0], err
    assert tree(root) == before


@pytest.mark.parametrize("milter, key, says", [
    ({"relay_socket": "tcp:127.0.0.1:8898"}, "milter.relay_socket", "is not a milter address"),
    ({"relay_socket": "inet:127.0.0.1:8897"}, "milter.relay_socket", "must differ"),
    ({"socket": "inet:127.0.0.1:8898"}, "milter.socket", "must differ"),
])
def test_relay_socket_is_validated(tmp_path, capsys, milter, key, says):
    inv = site(tmp_path, **milter)
    status, out, err = run(capsys, "render", str(inv), "-o", str(tmp_path / "out"), "--no-lint")
    assert status == 2 and not (tmp_path / "out").exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f": {key}: " in lines[0] and says in lines[0], err


def test_relay_socket_unix_in_the_queue_directory(tmp_path, capsys):
    inv = site(tmp_path, relay_socket="unix:/var/spool/postfix/bouncegen-relay/milter.sock")
    assert run(capsys, "render", str(inv), "-o", str(tmp_path / "out"), "--no-lint")[0] == 0
    main = (tmp_path / "out/relay/main.cf").read_text()
    assert "smtpd_milters = { unix:bouncegen-relay/milter.sock, default_action=accept" in main
    unit = (tmp_path / "out/relay/bouncegen-relay.service").read_text()
    assert "\nReadWritePaths=/var/spool/postfix/bouncegen-relay\n" in unit
    assert 'socket = "unix:/var/spool/postfix/bouncegen-relay/milter.sock"' in (tmp_path / "out/relay/bouncegen-relay.conf").read_text()


# ---------------------------------------------------------------------------------------------
# On a private Postfix, with the recorder as a process and a real Redis.

@pytest.mark.smtp
@pytest.mark.slow
def test_relay_install_health_gate_records_through_postfix_and_uninstall(tmp_path):
    need_lab("redis-server", "sendmail", what="relay install tests")
    key_file = tmp_path / "ledger.key"
    create_key_file(key_file)
    port = free_port()
    exe = shutil.which("bouncegen") or str(Path(sys.executable).parent / "bouncegen")

    def inventory_for(store: str) -> Path:
        path = tmp_path / "site.toml"
        path.write_text(example_site(relay=ONE_RELAY, mx=MX1, milter={"relay_socket": f"inet:127.0.0.1:{port}", "bouncegen": exe},
                                     ledger={"store": store, "key_file": str(key_file)}))
        return path

    lab = PostfixLab(inventory.load(inventory_for("redis://127.0.0.1:1/0")), bouncegen=False,
                     config_subdir="etc/postfix", smtpd_processes=5)
    redis = RedisServer(tmp_path / "redis", password="lab-secret")
    target = Target.make(lab.tmp, "/etc/spamassassin", "/etc/postfix")
    services = svc.Commands({RELAY_UNIT: [sys.executable, "-m", "bouncegen", "milter", "--config",
                                          str(target.relay_conf), "--log", "stderr"]}, tmp_path / "services")
    said: list[str] = []
    try:
        lab.start()
        host_main = (target.pf_dir / "main.cf").read_text()

        # The store does not answer: the health gate fails, nothing stays, Postfix never wired.
        with pytest.raises(LintError, match="relay recorder did not come up.*ledger"):
            relay.install(inventory_for(f"redis://:lab-secret@127.0.0.1:{free_port()}/0"), target,
                          services=services, say=said.append, backup_dir=tmp_path / "b", health_deadline=5)
        assert (target.pf_dir / "main.cf").read_text() == host_main
        assert not target.relay_conf.exists() and not (target.units_dir / RELAY_UNIT).exists()
        assert services.pid(RELAY_UNIT) is None, "the recorder that failed its check was stopped"

        redis.start()
        store = redis.url()
        assert relay.install(inventory_for(store), target, services=services, say=said.append,
                             backup_dir=tmp_path / "b", health_deadline=30)
        assert any(s.startswith("OK: ") and "relay milter, ledger" in s for s in said), said
        assert services.pid(RELAY_UNIT) is not None
        main = (target.pf_dir / "main.cf").read_text()
        assert f"non_smtpd_milters = {{ inet:127.0.0.1:{port}, default_action=accept" in main

        # Mail leaving the relay (sendmail -> pickup -> cleanup -> non_smtpd_milters) is recorded.
        msg = b"From: alice@example.org\nTo: bob@example.org\nSubject: relay-install\n\nhello\n"
        assert lab.sendmail(msg, "alice@example.org", "bob@example.org").returncode == 0
        deadline = time.monotonic() + 60
        message_id = None
        while message_id is None and time.monotonic() < deadline:
            for f in lab.delivered("bob@example.org"):
                m = email.message_from_bytes(f.read_bytes())
                if m["Subject"] == "relay-install":
                    message_id = m["Message-ID"].strip()
            time.sleep(0.2)
        assert message_id, lab.maillog()[-2000:]
        with open_store(store, load_key(key_file)) as ledger:
            deadline = time.monotonic() + 10
            while not ledger.lookup([message_id]) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert ledger.lookup([message_id]), services.log_hint(RELAY_UNIT)
            assert not ledger.lookup(["<never-sent@example.org>"])

        assert relay.uninstall(target, services=services, say=said.append, backup_dir=tmp_path / "b")
        assert (target.pf_dir / "main.cf").read_text() == host_main
        assert services.pid(RELAY_UNIT) is None
        assert not target.relay_conf.exists() and not target.relay_state_dir.exists()
    finally:
        services.stop_all()
        lab.stop()
        redis.stop()
