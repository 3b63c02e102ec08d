"""The SpamAssassin plugins' sources (sa_plugin/): perlcritic --gentle is clean on them (`make
lint` runs it too where perlcritic is installed; CI's lint runs before scripts/install-engines)."""

from __future__ import annotations

import subprocess

import pytest

from bouncegen import __version__
from bouncegen.renderer import inventory, render
from bouncegen.renderer.rules import load_families
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


@pytest.mark.spamassassin
def test_both_rendered_plugins_load_together_once(tmp_path):
    """The modules both plugin files bundle (Common, Defaults) are compiled once: loading both
    files under perl -w warns about nothing (no sub redefined), and each plugin's $VERSION is
    bouncegen's version, rendered from the one table of defaults."""
    need("perl", "spamassassin")
    inv = inventory.load(ROOT / "inventory.example.toml")
    env, ctx = render.environment(), render.context(inv, load_families())
    paths = []
    for name in ("BouncegenRescue.pm", "BouncegenDKIM.pm"):
        path = tmp_path / name
        path.write_text(env.get_template(f"spamassassin/{name}.j2").render(ctx, output_path=f"spamassassin/{name}"))
        paths.append(path)
    script = ('local $SIG{__WARN__} = sub { die "warning: @_" };'
              'for my $f (@ARGV) { do $f or die "load $f: $@ $!" }'
              'print join(" ", map { $_->VERSION } map { "Mail::SpamAssassin::Plugin::$_" } qw(BouncegenRescue BouncegenDKIM)), "\\n";')
    proc = subprocess.run(["perl", "-w", "-e", script, *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [__version__, __version__]
    assert proc.stderr == ""
