"""BATV (docs/batv.md), the fast lane: the prvs scheme, the key file, the [batv] inventory table,
the MX milter's decisions (batv_gate), the relay's signer, the rendered files, and the Perl
plugin's check agreeing with Python's (real perl with Mail::SpamAssassin loaded)."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import subprocess
from pathlib import Path

import pytest

from bouncegen import batv
from bouncegen.errors import BatvError
from bouncegen.lab.site import example_site
from bouncegen.milter.batv_gate import Gate, Kind, rescued
from bouncegen.milter.relay import Signer
from bouncegen.renderer import inventory, render
from support import need, run

REPO = Path(__file__).resolve().parent.parent
NOW = 1_796_000_000.0  # 2026-11-29, a fixed clock
DAY = 86400


@pytest.fixture
def keys(tmp_path) -> Path:
    path = tmp_path / "batv.keys"
    batv.create_key_file(path)
    return path


def test_tag_shape_and_hash_as_exim_computes_it(keys):
    """prvs=KDDDSSSSSS=local@domain: K the key number, DDD the expiry day mod 1000, SSSSSS the
    first 3 bytes of HMAC-SHA1(key text, K + DDD + address), as Exim's prvs_hmac_sha1."""
    ks = batv.load_keys(keys)
    tag = batv.sign("alice@Example.ORG", ks, 7, NOW)
    k, secret = ks.newest
    ddd = f"{(int(NOW // DAY) + 7) % 1000:03d}"
    mac = hmac.new(secret.encode(), f"{k}{ddd}alice@example.org".encode(), hashlib.sha1).hexdigest()[:6]
    assert tag == f"prvs={k}{ddd}{mac}=alice@example.org"
    c = batv.check(tag, ks, 7, NOW)
    assert (c.tagged, c.valid, c.plain) == (True, True, "alice@example.org")
    assert batv.check(tag.upper().replace("PRVS=", "prvs=").replace("ALICE", "alice"), ks, 7, NOW).valid  # hex case


@pytest.mark.parametrize("mangle, why", [
    (lambda t: t[:9] + ("0" if t[9] != "0" else "1") + t[10:], "bad signature"),    # tampered hash
    (lambda t: t.replace("=alice@", "=mallory@"), "bad signature"),                   # other address
    (lambda t: "prvs=9" + t[6:], "unknown key 9"),                                    # foreign key number
])
def test_tampered_tags_are_invalid(keys, mangle, why):
    ks = batv.load_keys(keys)
    c = batv.check(mangle(batv.sign("alice@example.org", ks, 7, NOW)), ks, 7, NOW)
    assert c.tagged and not c.valid and c.why == why


def test_expiry_counts_days_modulo_1000(keys):
    ks = batv.load_keys(keys)
    tag = batv.sign("alice@example.org", ks, 7, NOW)
    assert batv.check(tag, ks, 7, NOW + 7 * DAY).valid          # the last day
    assert not batv.check(tag, ks, 7, NOW + 8 * DAY).valid      # expired
    assert "expired" in batv.check(tag, ks, 7, NOW + 8 * DAY).why
    # a day stamp across the wrap of 999 -> 000
    wrap = (999 - int(NOW // DAY) % 1000) * DAY + NOW
    tag = batv.sign("alice@example.org", ks, 7, wrap)
    assert tag[6:9] == "006" and batv.check(tag, ks, 7, wrap + 3 * DAY).valid


def test_plain_and_look_alike_addresses_are_not_tagged(keys):
    ks = batv.load_keys(keys)
    assert not batv.check("alice@example.org", ks).tagged
    assert not batv.check("prvs=hello@example.org", ks).tagged
    assert batv.is_tagged("PRVS=1234abcdef=a@example.org")


def test_key_file_mode_never_replaced_and_rotation_keeps_old_tags(keys):
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o600
    with pytest.raises(BatvError, match="exists already"):
        batv.create_key_file(keys)
    yesterday = batv.sign("alice@example.org", batv.load_keys(keys), 7, NOW - DAY)
    rotated = batv.rotate_key_file(keys)
    assert [k for k, _ in rotated.keys] == [1, 2] and rotated.newest[0] == 2
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o600
    assert batv.check(yesterday, rotated, 7, NOW).valid               # accepted with every key
    assert batv.sign("alice@example.org", rotated, 7, NOW).startswith("prvs=2")  # signed with the newest
    for _ in range(9):
        rotated = batv.rotate_key_file(keys)
    assert len(rotated.keys) == 10 and rotated.newest[0] == 1  # ten numbers: the oldest is replaced


def test_bad_key_files(tmp_path):
    p = tmp_path / "k"
    with pytest.raises(BatvError, match="cannot read"):
        batv.load_keys(p)
    p.write_text("1 abc\n")
    with pytest.raises(BatvError, match="line 1: not a BATV key"):
        batv.load_keys(p)
    p.write_text("# nothing\n")
    with pytest.raises(BatvError, match="no BATV key"):
        batv.load_keys(p)


def test_inventory_batv_table(write_inventory):
    inv = inventory.load(write_inventory(example_site(batv={
        "domains": ["example.org"], "key_file": "/etc/bouncegen/batv.keys",
        "exempt_senders": ["Lists@Example.org"], "exempt_recipients": ["example.net"]})))
    assert inv.batv.domains == ("example.org",) and inv.batv.days == batv.DEFAULT_DAYS
    assert inv.batv.unsigned_recipients == ("example.net", "lists@example.org")


def test_inventory_batv_errors_one_line_each_naming_the_key(write_inventory, capsys, tmp_path):
    path = write_inventory(example_site(batv={
        "domains": ["example.org", "other.test"], "key_file": "keys", "days": 0,
        "exempt_senders": ["*.example.org"], "exempt_recipients": ["bad@@x"], "color": "red", "enforce": "yes"}))
    out_dir = tmp_path / "out"
    status, _, err = run(capsys, "render", str(path), "-o", str(out_dir), "--no-lint")
    assert status == 2 and not out_dir.exists() and "Traceback" not in err
    lines = err.strip().splitlines()
    for key in ("batv.color", "batv.domains[1]", "batv.key_file", "batv.days", "batv.exempt_senders[0]",
                "batv.exempt_recipients[0]", "batv.enforce"):
        assert sum(f": {key}: " in line for line in lines) == 1, (key, err)
    assert len(lines) == 7


def test_cli_init_and_rotate(write_inventory, capsys, tmp_path):
    path = write_inventory(example_site(batv={"domains": ["example.org"], "key_file": str(tmp_path / "b.keys")}))
    status, out, _ = run(capsys, "batv", "init", str(path))
    assert status == 0 and "mode 0600" in out
    assert stat.S_IMODE(os.stat(tmp_path / "b.keys").st_mode) == 0o600
    status, out, _ = run(capsys, "batv", "init", str(path))
    assert status == 0 and "kept" in out
    status, out, _ = run(capsys, "batv", "rotate", str(path))
    assert status == 0 and "key 2 signs" in out
    status, _, err = run(capsys, "batv", "init", str(write_inventory(example_site(), "plain.toml")))
    assert status == 2 and "no [batv] table" in err


def _gate(keys: Path) -> Gate:
    return Gate.from_table({"domains": ["example.org"], "key_file": str(keys), "days": 7,
                            "unsigned_recipients": ["lists@example.org", "forward.example.org"]})


def test_gate_rcpt_and_data_decisions(keys):
    gate = _gate(keys)
    good = batv.sign("alice@example.org", batv.load_keys(keys), 7)
    assert gate.rcpt(f"<{good}>").kind is Kind.VALID and gate.rcpt(good).plain == "alice@example.org"
    assert gate.rcpt("<" + good[:9] + "000000" + good[15:] + ">").kind is Kind.INVALID
    old = batv.sign("alice@example.org", batv.load_keys(keys), 7, NOW - 400 * DAY)
    assert gate.rcpt(old).kind is Kind.INVALID
    assert gate.rcpt("<bob@example.org>").kind is Kind.UNSIGNED
    assert gate.rcpt("<lists@example.org>").kind is Kind.OTHER      # exempt
    assert gate.rcpt("<bob@example.net>").kind is Kind.OTHER        # not a BATV domain
    unsigned = [gate.rcpt("<bob@example.org>"), gate.rcpt("<alice@example.org>")]
    assert gate.refuse_at_data("<>", unsigned)
    assert not gate.refuse_at_data("<grace@foreign.test>", unsigned)        # not a bounce
    assert not gate.refuse_at_data("<>", unsigned + [gate.rcpt("<bob@example.net>")])  # another domain too
    assert not gate.refuse_at_data("<>", [gate.rcpt(good)]) and rescued([gate.rcpt(good)])
    assert not gate.refuse_at_data("<>", [])
    rollout = Gate.from_table({"domains": ["example.org"], "key_file": str(keys), "days": 7, "enforce": False})
    assert not rollout.refuse_at_data("<>", [rollout.rcpt("<bob@example.org>")])
    assert rollout.rcpt("<" + good[:9] + "000000" + good[15:] + ">").kind is Kind.INVALID  # tags still checked


def test_gate_unreadable_keys_raise_never_decide(keys):
    gate = _gate(keys)
    good = batv.sign("alice@example.org", batv.load_keys(keys), 7)
    unsigned = [gate.rcpt("<bob@example.org>")]
    os.unlink(keys)
    with pytest.raises(BatvError):
        gate.rcpt(good)
    with pytest.raises(BatvError):
        gate.refuse_at_data("<>", unsigned)  # no 5xx while the site's keys are broken
    assert gate.rcpt("<bob@example.org>").kind is Kind.UNSIGNED  # a plain address needs no key


def test_relay_signer(keys):
    s = Signer(domains=frozenset({"example.org"}), exempt=frozenset({"lists@example.org"}), days=7,
               keys=batv.KeyCache(keys))
    tag = s.signed("<alice@example.org>")
    assert batv.check(tag, batv.load_keys(keys)).valid
    assert s.signed(tag) is None                      # never signed twice
    assert s.signed("<>") is None and s.signed("") is None
    assert s.signed("<lists@example.org>") is None    # exempt
    assert s.signed("<grace@foreign.test>") is None   # not ours
    dnt = s.signed_header('"Alice" <alice@example.org>, grace@foreign.test')
    assert dnt.startswith('"Alice" <prvs=') and dnt.endswith("=alice@example.org>, grace@foreign.test")
    assert s.signed_header("grace@foreign.test") is None and s.signed_header("lists@example.org") is None
    keys.write_text("junk\n")
    with pytest.raises(BatvError):
        s.signed("<alice@example.org>")


def test_rendered_files(write_inventory):
    inv = inventory.load(write_inventory(example_site(batv={"domains": ["example.org"], "key_file": "/etc/b.keys"})))
    files = render.render_files(inv)
    assert "relay/bouncegen-relay.conf" in files and "[ledger]" not in files["relay/bouncegen-relay.conf"]
    assert "default_action=tempfail" in files["relay/main.cf"]
    assert "recipient_canonical_maps = pcre:$config_directory/bouncegen/batv_recipients" in files["postfix/main.cf"]
    assert "example\\.org" in files["postfix/batv_recipients"] and "example\\.net" not in files["postfix/batv_recipients"]
    assert "__BG_BATV_HIT" in files["spamassassin/72_bouncegen.cf"]
    assert "bouncegen_batv_keys   /etc/b.keys" in files["spamassassin/72_bouncegen_batv.cf"]
    assert "72_bouncegen_batv.cf" in render.SITE_SECRETS
    plain = render.render_files(inventory.load(write_inventory(example_site(), "plain.toml")))
    assert not any("batv" in name for name in plain) and "relay/main.cf" not in plain


@pytest.mark.postfix
def test_postfix_map_rewrites_only_our_tags(write_inventory, tmp_path):
    need("postmap")
    from bouncegen import engines

    inv = inventory.load(write_inventory(example_site(batv={"domains": ["example.org"], "key_file": "/etc/b.keys"})))
    render.write_tree(render.render_files(inv), tmp_path / "out")
    conf = engines.postfix_config_dir(tmp_path / "pf", tmp_path / "out" / "postfix")
    q = lambda key: subprocess.run([engines.require("postmap"), "-c", str(conf), "-q", key,
                                    f"pcre:{conf / 'bouncegen' / 'batv_recipients'}"],
                                   capture_output=True, text=True).stdout.strip()
    assert q("prvs=1234abcdef=alice@example.org") == "alice@example.org"
    assert q("PRVS=1234ABCDEF=alice@EXAMPLE.org") == "alice@EXAMPLE.org"
    assert q("prvs=1234abcdef=alice@example.net") == ""
    assert q("prvs=1234abcdef=alice@example.org.evil.test") == ""
    assert q("alice@example.org") == ""


@pytest.mark.spamassassin
def test_perl_plugin_agrees_with_python(keys, rendered):
    need("perl", "spamassassin")
    ks = batv.load_keys(keys)
    cases = {batv.sign("alice@example.org", ks, 7): 1,
             batv.sign("alice@example.org", ks, 7, NOW - 400 * DAY): 0,
             batv.sign("alice@example.org", ks, 7)[:9] + "ffffff" + batv.sign("alice@example.org", ks, 7)[15:]: 0,
             batv.sign("bob@example.org", ks, 7).upper().replace("PRVS", "prvs").replace("BOB@EXAMPLE.ORG", "bob@Example.Org"): 1,
             "bob@example.org": 0}
    batv.rotate_key_file(keys)
    plugin = rendered(REPO / "inventory.example.toml") / "spamassassin" / "BouncegenRescue.pm"
    script = (
        f'do "{plugin}" or die "load: $@ $!";'
        'my $p = bless {}, "Mail::SpamAssassin::Plugin::BouncegenRescue";'
        f'my $k = $p->_batv_keys("{keys}");'
        'while (my $a = <STDIN>) { chomp $a; print Mail::SpamAssassin::Plugin::BouncegenRescue::_batv_valid('
        '$k, {"example.org" => 1}, 7, $a), "\\n"; }')
    proc = subprocess.run(["perl", "-e", script], input="\n".join(cases) + "\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [int(x) for x in proc.stdout.split()] == list(cases.values())


@pytest.mark.spamassassin
@pytest.mark.slow
def test_staged_install_with_batv(tmp_path, capsys):
    """bouncegen install --root with [batv]: the map beside the others, recipient_canonical_maps
    and protocol=6 in main.cf, the plugin's BATV settings 0640 (they name the key file), and
    postfix check / spamassassin --lint pass on the staged tree (the install validates)."""
    from test_install import root as _root_fixture  # the staged system root of test_install

    root = _root_fixture.__wrapped__(tmp_path)
    site = tmp_path / "site.toml"
    site.write_text((REPO / "inventory.example.toml").read_text()
                    + '[batv]\ndomains = ["example.org"]\nkey_file = "/etc/bouncegen/batv.keys"\n')
    status, out, err = run(capsys, "install", str(site), "--root", str(root))
    assert status == 0, err
    assert (root / "etc/postfix/bouncegen/batv_recipients").is_file()
    main = (root / "etc/postfix/main.cf").read_text()
    assert "recipient_canonical_maps = pcre:$config_directory/bouncegen/batv_recipients" in main
    assert "protocol=6 }" in main
    for secret in ("etc/mail/spamassassin/72_bouncegen_batv.cf", "etc/bouncegen/spamd/rules/72_bouncegen_batv.cf"):
        assert (root / secret).stat().st_mode & 0o777 == 0o640, secret
