"""bouncegen channel: a deterministic sa-update archive, installed with the real sa-update and
then used by the real spamassassin."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from bouncegen import engines
from bouncegen.deploy import channel
from bouncegen.renderer import render
from bouncegen.renderer.inventory import load
from support import need, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "inventory.example.toml"
STOCK_RULES = Path("/usr/share/spamassassin")

# A bounce of mail our relays never sent (no Received: of theirs quoted): BG_BOUNCE must fire.
DSN = b"""\
From: Mail Delivery System <MAILER-DAEMON@mx.far-away.example>
To: alice@example.org
Subject: Undelivered Mail Returned to Sender
Message-ID: <20261127.ABC@mx.far-away.example>
Date: Fri, 27 Nov 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.far-away.example

Final-Recipient: rfc822; nobody@far-away.example
Action: failed
Status: 5.1.1

--b1
Content-Type: text/rfc822-headers

Received: from spammer.example.com (spammer.example.com [203.0.113.9])
\tby mx.far-away.example with SMTP; Fri, 27 Nov 2026 09:59:00 +0000
From: alice@example.org
Subject: cheap pills

--b1--
"""




def sa_env(tmp_path: Path) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C"}


def sa_update(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([engines.require("sa-update"), "-v", *args], capture_output=True, text=True,
                          timeout=300, env=sa_env(tmp_path))


def site_dir(tmp_path: Path) -> Path:
    """A site directory with only the stock .pre files (plugin loading, VBounce included)."""
    site = tmp_path / "site"
    site.mkdir()
    for pre in engines.stock_pre_files():
        shutil.copy(pre, site / pre.name)
    return site


def install_stock_channel(tmp_path: Path, updatedir: Path) -> None:
    """What `sa-update` leaves on a real host: the stock rules as the updates.spamassassin.org
    channel. (An update dir holding only our channel would hide /usr/share/spamassassin, VBounce's
    rules included; see README.md.) Built from the packaged rules, installed by the real sa-update."""
    stock = tmp_path / "stock-src"
    stock.mkdir()
    for f in sorted(STOCK_RULES.glob("*.cf")) + sorted(STOCK_RULES.glob("*.pre")):
        shutil.copy(f, stock / f.name)
    archive = tmp_path / "stock" / "1000000.tar.gz"
    archive.parent.mkdir()
    data = channel.archive_bytes(stock)
    archive.write_bytes(data)
    archive.with_name(archive.name + ".sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    proc = sa_update(tmp_path, "--nogpg", "--channel", "updates.spamassassin.org",
                     "--install", str(archive), "--updatedir", str(updatedir))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.spamassassin
def test_archive_is_deterministic(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(capsys, "channel", str(EXAMPLE), "-o", str(a))[0] == 0
    assert run(capsys, "channel", str(EXAMPLE), "-o", str(b))[0] == 0
    data = (a / "1000001.tar.gz").read_bytes()
    assert data == (b / "1000001.tar.gz").read_bytes()
    assert data[4:8] == b"\0\0\0\0", "gzip header mtime must be 0"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["72_bouncegen.cf"]  # rules only, never plugin code
    assert all((m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname, m.isfile()) == (0o644, 0, 0, 0, "", "", True)
               for m in members)
    assert (a / "1000001.tar.gz.sha256").read_text() == f"{hashlib.sha256(data).hexdigest()}  1000001.tar.gz\n"
    assert (a / "1000001.tar.gz.sha512").read_text() == f"{hashlib.sha512(data).hexdigest()}  1000001.tar.gz\n"
    rendered = render.render_files(load(EXAMPLE))["spamassassin/72_bouncegen.cf"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.extractfile("72_bouncegen.cf").read().decode() == rendered


@pytest.mark.spamassassin
def test_versions(tmp_path, capsys):
    out = tmp_path / "channel"
    assert run(capsys, "channel", str(EXAMPLE), "-o", str(out))[0] == 0
    status, text, _ = run(capsys, "channel", str(EXAMPLE), "-o", str(out))
    assert status == 0 and text.startswith("up to date:")

    build = tmp_path / "build"
    render.write_tree(render.render_files(load(EXAMPLE)), build)
    cf = build / "spamassassin/72_bouncegen.cf"
    cf.write_text(cf.read_text().replace("score    BG_BOUNCE 5.0", "score    BG_BOUNCE 6.0"))
    status, text, err = run(capsys, "channel", str(build), "-o", str(out))
    assert status == 0, err
    assert f"{out}/1000002.tar.gz" in text
    assert channel.existing_versions(out) == [1000001, 1000002]
    # A version that exists with other content would never reach hosts that installed it.
    status, _, err = run(capsys, "channel", str(EXAMPLE), "-o", str(out), "--version", "1000002")
    assert status == 2 and "exists with other content" in err
    status, _, err = run(capsys, "channel", str(EXAMPLE), "-o", str(out), "--version", "1000000")
    assert status == 2 and "below the newest version" in err
    status, _, err = run(capsys, "channel", str(EXAMPLE), "-o", str(out), "--version", "7")
    assert status == 2 and "3 digits" in err


@pytest.mark.spamassassin
@pytest.mark.slow
def test_sa_update_installs_the_archive_then_lint_and_rule_fires(tmp_path, capsys):
    need("sa-update", "spamassassin")
    out = tmp_path / "channel"
    assert run(capsys, "channel", str(EXAMPLE), "-o", str(out))[0] == 0
    updatedir = tmp_path / "var-lib-spamassassin"
    install_stock_channel(tmp_path, updatedir)

    proc = sa_update(tmp_path, "--nogpg", "--channel", "bouncegen", "--install",
                     str(out / "1000001.tar.gz"), "--updatedir", str(updatedir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (updatedir / "bouncegen.cf").read_text() == "# UPDATE version 1000001\ninclude bouncegen/72_bouncegen.cf\n"
    assert (updatedir / "bouncegen/72_bouncegen.cf").read_bytes() == \
        render.render_files(load(EXAMPLE))["spamassassin/72_bouncegen.cf"].encode()

    site = site_dir(tmp_path)
    # The relay-rescue plugin is not in the channel: the host has it from `bouncegen install`.
    for name, text in render.render_files(load(EXAMPLE)).items():
        if name.startswith("spamassassin/") and not name.endswith(".cf"):
            (site / Path(name).name).write_text(text)
    sa = engines.require("spamassassin")
    args = [sa, "-C", str(updatedir), f"--siteconfigpath={site}", "--prefspath=/dev/null"]
    lint = subprocess.run(args + ["--lint"], capture_output=True, text=True, env=sa_env(tmp_path), timeout=300)
    assert (lint.returncode, lint.stderr) == (0, "")
    # A meta rule whose sub-rule is missing is only a debug message, not a lint warning: check it.
    debug = subprocess.run(args + ["--lint", "-D", "rules"], capture_output=True, text=True,
                           env=sa_env(tmp_path), timeout=300)
    ours = [line for line in debug.stderr.splitlines() if "undefined dependency" in line and " BG_" in line]
    assert ours == []

    scan = subprocess.run(args + ["-L", "-t"], input=DSN, capture_output=True, env=sa_env(tmp_path), timeout=300)
    assert b"BG_BOUNCE" in scan.stdout, scan.stdout.decode(errors="replace")[-2000:]


def rules_only_channel(capsys, tmp_path: Path, source: Path) -> tuple[str, Path]:
    """bouncegen channel of SOURCE, which must carry 72_bouncegen.cf alone: the report and the archive."""
    out = tmp_path / "channel"
    status, text, err = run(capsys, "channel", str(source), "-o", str(out), "--version", "1000001")
    assert status == 0, err
    assert "members: 72_bouncegen.cf\n" in text
    return text, out / "1000001.tar.gz"


@pytest.mark.spamassassin
def test_plugin_code_stays_out_of_the_channel(tmp_path, capsys):
    """sa-update will not activate plugins from a channel (4.0.1 wants --reallyallowplugins), so
    the relay-rescue plugin is installed per host and the channel carries the rules only."""
    text, archive = rules_only_channel(capsys, tmp_path, EXAMPLE)
    assert "not in the channel: 72_bouncegen.pre, BouncegenRescue.pm" in text
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["72_bouncegen.cf"]


@pytest.mark.spamassassin
def test_ledger_secrets_stay_out_of_the_channel(tmp_path, capsys):
    """A Redis password in the ledger's URL stays on the hosts: the ledger's settings are a file
    of their own that `bouncegen install` puts on each host and no archive carries."""
    site = tmp_path / "site.toml"
    site.write_text(EXAMPLE.read_text() + '[ledger]\nstore = "redis://:s3cret-pw@127.0.0.1:6390/2"\n'
                    'key_file = "/etc/bouncegen/ledger.key"\n')
    text, archive = rules_only_channel(capsys, tmp_path, site)
    assert "not in the channel: 72_bouncegen_ledger.cf (the ledger's address and key file" in text
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["72_bouncegen.cf"]
        cf = tar.extractfile("72_bouncegen.cf").read()
    assert b"__BG_LEDGER_HIT" in cf and b"s3cret-pw" not in cf and b"bouncegen_ledger " not in cf
    assert b"s3cret-pw" not in archive.read_bytes()


@pytest.mark.spamassassin
@pytest.mark.slow
def test_signed_archive(tmp_path, capsys, monkeypatch):
    need("sa-update", "spamassassin", "gpg", "gpgconf")
    gnupg = tmp_path / "gnupg"
    gnupg.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(gnupg))
    gpg = engines.require("gpg")
    sa_keys = tmp_path / "sa-keys"
    try:
        _signed_archive(tmp_path, capsys, monkeypatch, gpg, sa_keys)
    finally:
        # gpg starts a gpg-agent per home directory that outlives the test: stop each one.
        for home in (gnupg, sa_keys):
            if home.is_dir():
                subprocess.run([engines.require("gpgconf"), "--homedir", str(home), "--kill", "all"],
                               capture_output=True, timeout=30)


def _signed_archive(tmp_path, capsys, monkeypatch, gpg, sa_keys):
    subprocess.run([gpg, "--batch", "--passphrase", "", "--quick-gen-key", "bouncegen test <t@example.org>",
                    "ed25519", "sign", "never"], check=True, capture_output=True, timeout=120)
    fpr = next(line.split(":")[9] for line in subprocess.run(
        [gpg, "--list-keys", "--with-colons"], check=True, capture_output=True, text=True).stdout.splitlines()
        if line.startswith("fpr:"))
    out = tmp_path / "channel"
    status, text, err = run(capsys, "channel", str(EXAMPLE), "-o", str(out), "--gpg-key", fpr)
    assert status == 0, err
    assert (out / "1000001.tar.gz.asc").read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    assert f"sa-update --gpgkey {fpr} --channel bouncegen" in text

    pub = tmp_path / "pub.asc"
    pub.write_bytes(subprocess.run([gpg, "--armor", "--export", fpr], check=True, capture_output=True).stdout)
    monkeypatch.delenv("GNUPGHOME")
    sa_keys.mkdir(mode=0o700)
    proc = sa_update(tmp_path, "--gpghomedir", str(sa_keys), "--import", str(pub))
    assert proc.returncode == 0, proc.stderr
    updatedir = tmp_path / "upd"
    proc = sa_update(tmp_path, "--gpghomedir", str(sa_keys), "--gpgkey", fpr, "--channel", "bouncegen",
                     "--install", str(out / "1000001.tar.gz"), "--updatedir", str(updatedir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (updatedir / "bouncegen/72_bouncegen.cf").is_file()
