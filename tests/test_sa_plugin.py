"""The SpamAssassin plugins' sources (sa_plugin/): perlcritic --gentle is clean on them (`make
lint` runs it too where perlcritic is installed; CI's lint runs before scripts/install-engines)."""

from __future__ import annotations

import subprocess

import pytest

from support import ROOT, need


@pytest.mark.engine
def test_plugin_sources_pass_perlcritic_gentle():
    need("perlcritic")
    proc = subprocess.run(["perlcritic", "--gentle", "--quiet", str(ROOT / "sa_plugin")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # a violation planted in a copy is found: the check can fail
    bad = subprocess.run(["perlcritic", "--gentle", "--quiet", "-"], input="package X; my $x = eval 'time'; 1;\n",
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0, bad.stdout
