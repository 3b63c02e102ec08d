"""The lab's shared pieces: the example site is the one of inventory.example.toml."""

from __future__ import annotations

import tomllib

from bouncegen.lab.site import EXAMPLE, example_site
from bouncegen.renderer import inventory
from support import ROOT


def test_example_site_is_the_example_inventory():
    shipped = tomllib.loads((ROOT / "inventory.example.toml").read_text())
    for table in ("site", "relay", "mx"):
        assert shipped[table] == EXAMPLE[table], table


def test_example_site_overrides(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(example_site(policy={"dsn": "spamassassin"}, mx=None,
                                 relay=[{"host": "out.example.org", "addresses": ["192.0.2.9"]}]))
    inv = inventory.load(path)
    assert inv.policy.dsn == "spamassassin"
    assert [r.host for r in inv.relays] == ["out.example.org"]
    assert sorted(inv.domains) == ["example.net", "example.org"]
    assert "[mx]" not in path.read_text()
