"""``bouncegen ledger check`` (ledger/access.py) on this machine: each reader of an SQLite ledger
tested as its own user (a child that became it), one line per problem with the command that fixes
it; the spamd unit's sandbox read from the unit file. The booted-host lab
(tests/test_hosts_mx.py) runs the same check under systemd, drop-ins included."""

from __future__ import annotations

import grp
import os
import tempfile
from pathlib import Path

import pytest

from bouncegen import cli
from bouncegen.errors import UsageError
from bouncegen.ledger import access, create_key_file, load_key, open_store
from support import IN_CI


@pytest.fixture
def ledger():
    if os.geteuid() != 0:
        (pytest.fail if IN_CI else pytest.skip)("ledger check tests readers as their users: needs root")
    d = Path(tempfile.mkdtemp(prefix="bouncegen-access-", dir="/tmp"))
    os.chmod(d, 0o755)
    (d / "lib").mkdir()
    key = d / "ledger.key"
    create_key_file(key)
    store = f"sqlite:{d / 'lib' / 'ledger.db'}"
    with open_store(store, load_key(key)):
        pass
    yield d, store, str(key)
    for p in sorted(d.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    d.rmdir()


def _mine(lines: list[str], user: str) -> list[str]:
    return [ln for ln in lines if ln.startswith(f"{user}: ")]


def test_each_problem_names_the_path_and_the_fix(ledger):
    d, store, key = ledger
    ok, problems = access.check(store, key, user="nobody")
    mine = _mine(problems, "nobody")
    assert mine == [
        f"nobody: cannot read the key file {key} (0600 root:root: chgrp bouncegen {key} && chmod g+r {key} "
        "&& adduser nobody bouncegen)",
        f"nobody: cannot create files in the ledger's directory (SQLite creates -wal and -shm there) {d}/lib "
        f"(0755 root:root: chgrp bouncegen {d}/lib && chmod g+wxs {d}/lib && adduser nobody bouncegen)",
        f"nobody: cannot read and write the ledger database {d}/lib/ledger.db (0644 root:root: "
        f"chgrp bouncegen {d}/lib/ledger.db && chmod g+rw {d}/lib/ledger.db && adduser nobody bouncegen)",
    ], mine
    assert not [ln for ln in ok if ln.startswith("nobody")]


def test_the_documented_rights_pass(ledger):
    """The layout of docs/ledger.md with nobody's own group standing in for bouncegen."""
    d, store, key = ledger
    gid = grp.getgrnam("nogroup").gr_gid
    for path, mode in ((d / "lib", 0o2770), (d / "lib" / "ledger.db", 0o660), (Path(key), 0o640)):
        os.chown(path, 0, gid)
        os.chmod(path, mode)
    ok, problems = access.check(store, key, user="nobody")
    assert "nobody: reads the key and looks up the ledger" in ok and not _mine(problems, "nobody"), problems
    # the lookup itself ran as nobody: SQLite made its -shm beside the database, with its mode
    assert not (d / "lib" / "ledger.db-shm").exists() or (d / "lib" / "ledger.db-shm").stat().st_gid == gid


def test_missing_store_and_unknown_user(ledger, capsys):
    d, store, key = ledger
    (d / "lib" / "ledger.db").unlink()
    ok, problems = access.check(store, key, user="nobody")
    assert problems == [f"{d}/lib/ledger.db: the ledger database does not exist: bouncegen ledger init INVENTORY"]
    with pytest.raises(UsageError, match="no such user: no-such-reader"):
        access.check(store, key, user="no-such-reader")


def test_cli_exit_status_and_one_line_per_problem(ledger, tmp_path, capsys):
    d, store, key = ledger
    inv = tmp_path / "site.toml"
    inv.write_text(f'[site]\ndomains = ["example.org"]\n[[relay]]\nhost = "smtp1.example.org"\n'
                   f'[ledger]\nstore = "{store}"\nkey_file = "{key}"\n')
    assert cli.main(["ledger", "check", str(inv), "--user", "nobody"]) == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(_mine([ln.removeprefix("error: ") for ln in lines], "nobody")) == 3
    assert all(ln.startswith("error: ") for ln in lines), lines


@pytest.mark.parametrize("rw, store, problem", [
    ("/var/lib/bouncegen-spamd", "sqlite:/var/lib/bouncegen/ledger.db", True),
    ("/var/lib/bouncegen-spamd /var/lib/bouncegen", "sqlite:/var/lib/bouncegen/ledger.db", False),
    ("/var/lib", "sqlite:/var/lib/bouncegen/ledger.db", False),
    ("/var/lib/bouncegen-spamd", "redis://127.0.0.1:6379/0", False),
])
def test_unit_sandbox(tmp_path, rw, store, problem):
    unit = tmp_path / "bouncegen-spamd-test.service"
    unit.write_text(f"[Service]\nProtectSystem=strict\nReadWritePaths={rw}\n")
    line = access.unit_sandbox_problem(store, unit)
    assert (line is not None) == problem, line
    if problem:
        assert "ReadWritePaths= does not name /var/lib/bouncegen" in line
    unit.write_text(f"[Service]\nProtectSystem=full\nReadWritePaths={rw}\n")
    assert access.unit_sandbox_problem(store, unit) is None  # /var stays writable under "full"
