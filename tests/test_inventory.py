"""Inventory validation: one test per kind of bad input, each naming file and key, exit status 2,
no traceback, nothing written; and the tricky valid inventories that must load."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bouncegen import cli
from bouncegen.errors import InventoryError
from bouncegen.renderer import inventory

GOOD_SITE = '[site]\ndomains = ["example.org"]\n'
GOOD_RELAY = '[[relay]]\nhost = "smtp1.out.example.org"\naddresses = ["192.0.2.25"]\n'

# (case id, inventory text, expected fragment of the error line, including the key path)
BAD = [
    ("toml-syntax", 'site = [', "invalid TOML"),
    ("not-utf8", None, "not UTF-8"),
    ("missing-site", GOOD_RELAY, "site: missing table"),
    ("missing-domains", "[site]\n" + GOOD_RELAY, "site.domains: missing"),
    ("domains-not-list", '[site]\ndomains = "example.org"\n' + GOOD_RELAY, "site.domains: expected a list of strings"),
    ("domains-empty", '[site]\ndomains = []\n' + GOOD_RELAY, "site.domains: must list at least one entry"),
    ("domain-number", '[site]\ndomains = [42]\n' + GOOD_RELAY, "site.domains[0]: expected a string, got int"),
    ("domain-invalid", '[site]\ndomains = ["exa mple.org"]\n' + GOOD_RELAY, "site.domains[0]: 'exa mple.org' is not a mail domain"),
    ("domain-single-label", '[site]\ndomains = ["localhost"]\n' + GOOD_RELAY, "site.domains[0]: 'localhost' is not a mail domain"),
    ("domain-control-char", '[site]\ndomains = ["example.org\\n/.*/ OK"]\n' + GOOD_RELAY, "site.domains[0]: 'example.org\\n/.*/ OK' contains a control character"),
    ("domain-regex", '[site]\ndomains = ["exam.*ple.org"]\n' + GOOD_RELAY, "site.domains[0]: 'exam.*ple.org' is not a mail domain"),
    ("unknown-top-key", GOOD_SITE + GOOD_RELAY + 'relays = []\n', "relays: unknown key"),
    ("unknown-site-key", '[site]\ndomains = ["example.org"]\ndomain = "x"\n' + GOOD_RELAY, "site.domain: unknown key"),
    ("missing-relay", GOOD_SITE, "relay: missing"),
    ("relay-not-array", GOOD_SITE + '[relay]\nhost = "smtp1.example.org"\n', "relay: expected an array of tables"),
    ("relay-missing-host", GOOD_SITE + '[[relay]]\naddresses = ["192.0.2.25"]\n', "relay[0].host: missing"),
    ("relay-unknown-key", GOOD_SITE + '[[relay]]\nhost = "smtp1.example.org"\nip = "192.0.2.1"\n', "relay[0].ip: unknown key"),
    ("relay-host-type", GOOD_SITE + '[[relay]]\nhost = ["smtp1.example.org"]\n', "relay[0].host: expected a string, got list"),
    ("glob-star", GOOD_SITE + '[[relay]]\nhost = "*"\n', "relay[0].host: '*' is too broad"),
    ("glob-star-dot-star", GOOD_SITE + '[[relay]]\nhost = "*.*"\n', "relay[0].host: '*.*' is too broad"),
    ("glob-tld", GOOD_SITE + '[[relay]]\nhost = "*.org"\n', "relay[0].host: '*.org' is too broad"),
    ("glob-in-domain-part", GOOD_SITE + '[[relay]]\nhost = "smtp.*.org"\n', "relay[0].host: 'smtp.*.org' is too broad"),
    ("glob-regex-chars", GOOD_SITE + '[[relay]]\nhost = "smtp[0-9].example.org"\n', "relay[0].host: 'smtp[0-9].example.org' is not a host name (label 'smtp[0-9]')"),
    ("host-regex-alternation", GOOD_SITE + '[[relay]]\nhost = "a|b.example.org"\n', "relay[0].host: 'a|b.example.org' is not a host name"),
    ("host-leading-hyphen", GOOD_SITE + '[[relay]]\nhost = "-smtp.example.org"\n', "relay[0].host: '-smtp.example.org' is not a host name"),
    ("address-invalid", GOOD_SITE + '[[relay]]\nhost = "smtp1.example.org"\naddresses = ["192.0.2.300"]\n', "relay[0].addresses[0]: '192.0.2.300' is not an IP address or CIDR range"),
    ("address-all-v4", GOOD_SITE + '[[relay]]\nhost = "smtp1.example.org"\naddresses = ["0.0.0.0/0"]\n', "relay[0].addresses[0]: '0.0.0.0/0' is too broad"),
    ("address-all-v6", GOOD_SITE + '[[relay]]\nhost = "smtp1.example.org"\naddresses = ["::/0"]\n', "relay[0].addresses[0]: '::/0' is too broad"),
    ("address-wide-v4", GOOD_SITE + '[[relay]]\nhost = "smtp1.example.org"\naddresses = ["192.0.0.0/8"]\n', "/16 or narrower"),
    ("address-host-bits", GOOD_SITE + '[[relay]]\nhost = "smtp1.example.org"\naddresses = ["192.0.2.25/24"]\n', "has host bits set (did you mean '192.0.2.0/24'?)"),
    ("address-private", GOOD_SITE + '[[relay]]\nhost = "smtp1.example.org"\naddresses = ["10.0.0.25"]\n', "'10.0.0.25' is not a public address"),
    ("address-loopback-v6", GOOD_SITE + '[[relay]]\nhost = "smtp1.example.org"\naddresses = ["::1"]\n', "'::1' is not a public address"),
    ("addresses-not-list", GOOD_SITE + '[[relay]]\nhost = "smtp1.example.org"\naddresses = "192.0.2.25"\n', "relay[0].addresses: expected a list of strings"),
    ("mx-glob", GOOD_SITE + GOOD_RELAY + '[mx]\nhosts = ["mx*.example.org"]\n', "mx.hosts[0]: 'mx*.example.org': wildcards are not allowed here"),
    ("mx-unknown-key", GOOD_SITE + GOOD_RELAY + '[mx]\nhost = ["mx.example.org"]\n', "mx.host: unknown key"),
    ("policy-dsn", GOOD_SITE + GOOD_RELAY + '[policy]\ndsn = "drop"\n', "policy.dsn: 'drop' is not one of: 'reject', 'spamassassin'"),
    ("policy-map-type", GOOD_SITE + GOOD_RELAY + '[policy]\nmap_type = "hash"\n', "policy.map_type: 'hash' is not one of: 'pcre', 'regexp'"),
    ("policy-scores", GOOD_SITE + GOOD_RELAY + '[policy]\nscores = 5\n', "policy.scores: 5 is not one of"),
    ("policy-unknown", GOOD_SITE + GOOD_RELAY + '[policy]\nreject_all = true\n', "policy.reject_all: unknown key"),
    ("points-string", GOOD_SITE + GOOD_RELAY + '[policy]\npoints = "6.31"\n', "policy.points: '6.31': expected a number of points from 1 to 100"),
    ("points-bool", GOOD_SITE + GOOD_RELAY + '[policy]\npoints = true\n', "policy.points: True: expected a number of points"),
    ("points-low", GOOD_SITE + GOOD_RELAY + '[policy]\npoints = 0.5\n', "policy.points: 0.5: expected a number of points from 1 to 100"),
    ("points-high", GOOD_SITE + GOOD_RELAY + '[policy]\npoints = 1e9\n', "policy.points: 1000000000.0: expected a number"),
    ("points-nan", GOOD_SITE + GOOD_RELAY + '[policy]\npoints = nan\n', "policy.points: nan: expected a number"),
    ("points-decimals", GOOD_SITE + GOOD_RELAY + '[policy]\npoints = 6.305\n', "policy.points: 6.305: at most two decimals"),
    ("points-with-tag", GOOD_SITE + GOOD_RELAY + '[policy]\nscores = "tag"\npoints = 6.31\n', 'policy.points: only with scores = "block"'),
    ("spamd-children-zero", GOOD_SITE + GOOD_RELAY + '[milter]\nspamd_children = 0\n', "milter.spamd_children: expected a whole number of spamd children from 1 to 64, got 0"),
    ("spamd-children-string", GOOD_SITE + GOOD_RELAY + '[milter]\nspamd_children = "4"\n', "milter.spamd_children: expected a whole number"),
    ("spamd-children-bool", GOOD_SITE + GOOD_RELAY + '[milter]\nspamd_children = true\n', "milter.spamd_children: expected a whole number"),
    ("concurrency-negative", GOOD_SITE + GOOD_RELAY + '[milter]\nconcurrency = -1\n', "milter.concurrency: expected a whole number of scans in flight"),
    ("scan-limit-small", GOOD_SITE + GOOD_RELAY + '[milter]\nscan_limit_kb = 10\n', "milter.scan_limit_kb: expected a whole number of KB from 64 to 51200, got 10"),
    ("concurrency-too-many", GOOD_SITE + GOOD_RELAY + '[milter]\nconcurrency = 1000\n', "milter.concurrency: expected a whole number"),
]


@pytest.mark.parametrize("case,text,expected", BAD, ids=[c[0] for c in BAD])
def test_bad_inventory(case, text, expected, tmp_path, capsys):
    path = tmp_path / "site.toml"
    if text is None:
        path.write_bytes(b"[site]\ndomains = [\"caf\xe9.example\"]\n")
    else:
        path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    status = cli.main(["render", str(path), "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert f"error: {path}: " in err
    assert expected in err, err
    assert "Traceback" not in err
    assert not out.exists(), "nothing may be written for an invalid inventory"


def test_all_problems_reported_at_once(write_inventory):
    path = write_inventory(
        '[site]\ndomains = ["bad domain", "example.org"]\n'
        '[[relay]]\nhost = "*"\naddresses = ["192.0.2.300", "0.0.0.0/0"]\n'
        '[policy]\ndsn = "maybe"\n'
    )
    with pytest.raises(InventoryError) as exc:
        inventory.load(path)
    keys = [line.split(": ")[1] for line in exc.value.problems]
    assert keys == ["site.domains[0]", "relay[0].host", "relay[0].addresses[0]", "relay[0].addresses[1]", "policy.dsn"]


def test_missing_file(tmp_path, capsys):
    assert cli.main(["render", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "out")]) == 2
    assert "nope.toml: cannot read" in capsys.readouterr().err


def test_cli_subprocess_exit_status_and_no_traceback(write_inventory, tmp_path):
    """The installed console script, as a user runs it."""
    path = write_inventory(GOOD_SITE + '[[relay]]\nhost = "*.*"\n')
    proc = subprocess.run([sys.executable, "-m", "bouncegen", "render", str(path), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: {path}: relay[0].host: '*.*' is too broad: a glob must keep the last two labels literal (e.g. 'smtp*.example.org')"]
    assert not (tmp_path / "o").exists()


def test_tricky_valid_inventory(write_inventory):
    path = write_inventory(
        '[site]\ndomains = ["Bücher.example", "EXAMPLE.net", "example.net"]\n'
        '[[relay]]\nhost = "mailout-?.Bücher.example."\n'
        '[[relay]]\nhost = "smtp*.out.example.net"\naddresses = ["2001:db8:25::/48", "198.51.100.0/28", "2001:DB8::25"]\n'
        '[mx]\nhosts = ["mx1.example.net"]\n'
        '[policy]\ndsn = "spamassassin"\nmap_type = "regexp"\nscores = "tag"\n'
    )
    inv = inventory.load(path)
    assert inv.domains == ("example.net", "xn--bcher-kva.example")
    assert inv.relay_hosts == ("mailout-?.xn--bcher-kva.example", "smtp*.out.example.net")
    assert [str(n) for n in inv.relays[1].addresses] == ["198.51.100.0/28", "2001:db8::25/128", "2001:db8:25::/48"]
    assert inv.policy == inventory.Policy(dsn="spamassassin", map_type="regexp", scores="tag")


def test_points_for_the_hosts_level(write_inventory):
    """policy.points: the host's level (amavisd-new as Debian 12 ships it), an integer too."""
    inv = inventory.load(write_inventory(GOOD_SITE + GOOD_RELAY + '[policy]\npoints = 6.31\n'))
    assert inv.policy.points == 6.31
    assert inventory.load(write_inventory(GOOD_SITE + GOOD_RELAY + '[policy]\npoints = 8\n')).policy.points == 8.0


def test_defaults(write_inventory):
    inv = inventory.load(write_inventory(GOOD_SITE + GOOD_RELAY))
    assert inv.policy == inventory.Policy(dsn="reject", map_type="pcre", scores="block", points=5.0)
    assert inv.mx_hosts == ()
    # bouncegen's own spamd, not the host's on 783; one child per core of a 2-core MX, fixed so
    # that rendering does not depend on the machine; the milter's concurrency follows it.
    assert inv.milter.spamd == "127.0.0.1:10783" and inv.milter.spamd_children == 2
    assert inv.milter.concurrency == 0 and inv.milter.milter_concurrency == 2
