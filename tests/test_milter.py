"""The milter's settings (rendered from the inventory), its exemptions, and its spamd client
against the real spamd. The SMTP dialogues through Postfix are in test_smtp.py."""

from __future__ import annotations

import pytest

from bouncegen import cli, engines, milter
from bouncegen.renderer import inventory, render
from bouncegen.engines.spamd import Spamd, free_port

SITE = """\
[site]
domains = ["example.org"]
[[relay]]
host = "smtp1.out.example.org"
addresses = ["192.0.2.25", "2001:db8:26::/48"]
[[relay]]
host = "mailout-?.example.net"
[policy]
scores = "{scores}"
[milter]
exempt_networks = ["10.0.0.0/8"]
"""


def settings(tmp_path, scores="block") -> milter.Settings:
    inv_path = tmp_path / "site.toml"
    inv_path.write_text(SITE.format(scores=scores))
    files = render.render_files(inventory.load(inv_path))
    conf = tmp_path / "bouncegen-milter.conf"
    conf.write_text(files["milter/bouncegen-milter.conf"])
    return milter.Settings.load(conf)


def test_settings_rendered_from_the_inventory(tmp_path):
    s = settings(tmp_path)
    assert s.socket == "inet:127.0.0.1:8893" and (s.spamd_host, s.spamd_port) == ("127.0.0.1", 10783)
    assert s.concurrency == 2  # [milter] concurrency = 0: as many as spamd_children (default 2)
    assert s.scan_limit == 512 * 1024
    assert s.threshold == 5.0 and s.scores["BG_BOUNCE"] >= 5.0
    assert all(name.startswith("BG_") for name in s.scores)
    assert "backscatter" in s.reject_text and "%" not in s.reject_text


@pytest.mark.parametrize("host,addr,exempt", [
    ("unknown", "192.0.2.25", True),           # our relay by address
    ("unknown", "2001:db8:26::7", True),        # inside a relay's IPv6 range
    ("unknown", "10.1.2.3", True),              # [milter] exempt_networks
    ("mailout-3.example.net", "203.0.113.9", True),   # relay known by (verified) name only
    ("unknown", "192.0.2.251", False),          # contains our address, is not it
    ("smtp1.out.example.org.relay.test", "203.0.113.5", False),  # look-alike name
    ("mailout-33.example.net", "203.0.113.9", False),  # ? is one character
    ("[192.0.2.25]", "203.0.113.9", False),     # an unverified name is never trusted
])
def test_exempt_clients(tmp_path, host, addr, exempt):
    assert settings(tmp_path).exempt_client(host, addr) is exempt


def test_verdict_counts_only_the_rulesets_points(tmp_path):
    s = settings(tmp_path)
    assert milter.verdict(("BG_BOUNCE", "ALL_TRUSTED", "BAYES_99"), s.scores) == (5.0, ["BG_BOUNCE"])
    assert milter.verdict(("HTML_MESSAGE", "__BG_DSN_REPORT"), s.scores)[0] == 0
    tag = settings(tmp_path, "tag")
    assert milter.verdict(tuple(tag.scores), tag.scores)[0] < tag.threshold or len(tag.scores) > 49


def test_bad_milter_table_is_an_inventory_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[site]\ndomains = ["example.org"]\n[[relay]]\nhost = "a.example.org"\n'
                   '[milter]\nsocket = "tcp:x"\nspamd = "nohost"\ntimeout = 0\nexempt_networks = ["x"]\nfoo = 1\n')
    assert cli.main(["render", str(bad), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[2] for line in err] == [
        "milter.foo", "milter.socket", "milter.spamd", "milter.timeout", "milter.exempt_networks[0]"]
    assert not (tmp_path / "out").exists()


def test_unreadable_settings_are_a_usage_error(tmp_path):
    p = tmp_path / "x.conf"
    p.write_text("[milter]\nsocket = 1\n")
    with pytest.raises(Exception) as exc:
        milter.Settings.load(p)
    assert "not a bouncegen milter settings file" in str(exc.value)


@pytest.mark.spamassassin
def test_spamd_client_against_the_real_spamd(tmp_path):
    if not engines.which("spamd"):
        pytest.fail("spamd missing") if __import__("os").environ.get("CI") else pytest.skip("spamd missing")
    inv_path = tmp_path / "site.toml"
    inv_path.write_text(SITE.format(scores="block"))
    render.write_tree(render.render_files(inventory.load(inv_path)), tmp_path / "out")
    from bouncegen.lab import mail as samples
    with Spamd(tmp_path / "out" / "spamassassin") as d:
        tests = milter.spamd_symbols(samples.forged_dsn(), "127.0.0.1", d.port, 60)
        assert "BG_BOUNCE" in tests
        assert "BG_BOUNCE" not in milter.spamd_symbols(samples.ordinary(), "127.0.0.1", d.port, 60)
    with pytest.raises(milter.SpamdError):  # stopped: an error, never an empty verdict
        milter.spamd_symbols(samples.forged_dsn(), "127.0.0.1", d.port, 5)
    with pytest.raises(milter.SpamdError):
        milter.spamd_symbols(samples.forged_dsn(), "127.0.0.1", free_port(), 5)
