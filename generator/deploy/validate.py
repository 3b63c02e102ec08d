"""Validation with the real tools: spamassassin --lint, postconf -n, postfix check, postmap probes,
and which of our rules SpamAssassin would not define (a plugin not loaded)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Sequence

from .. import engines
from ..facts import MAPS_SUBDIR
from .layout import INDEXED


def stderr_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def strip_prog(line: str) -> str:
    # "/usr/sbin/postconf: warning: ..." and "postconf: warning: ..." are the same warning
    return re.sub(r"^\S*/(\w[\w-]*:)", r"\1", line)


def sa_lint(site: Path, scratch: Path) -> list[str]:
    """spamassassin --lint with SITE as the site config directory: its warnings (empty = clean)."""
    exe = engines.require("spamassassin")
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    proc = engines.run(
        [exe, "--lint", f"--siteconfigpath={site}", "--prefspath=/dev/null"],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C"},
    )
    # "Nov 27 13:08:37.412 [16560] warn: ..." -> "warn: ...": comparable with the baseline's
    out = [re.sub(r"^\w{3} +\d+ [\d:.]+ \[\d+\] ", "", w) for w in stderr_lines(proc.stderr)]
    if proc.returncode != 0 and not out:
        out.append(f"exit status {proc.returncode}")
    return [f"spamassassin --lint: {w}" for w in out]


def pf_check(conf: Path, *, run_postfix_check: bool) -> list[str]:
    """postconf -n (and, as root with a master.cf, postfix check) on CONF: their warnings."""
    out = []
    proc = engines.run([engines.require("postconf"), "-c", str(conf), "-n"])
    warnings = stderr_lines(proc.stderr)
    if not (conf / "master.cf").exists():
        # A --root without master.cf (a staged tree): main.cf is all there is to check.
        warnings = [w for w in warnings if not re.search(r"open \S*/master\.cf: No such file", w)]
    out += [f"postconf -n: {strip_prog(w)}" for w in warnings]
    if proc.returncode != 0 and not proc.stderr.strip():
        out.append(f"postconf -n: exit status {proc.returncode}")
    if run_postfix_check:
        proc = engines.run([engines.require("postfix"), "-c", str(conf), "check"])
        out += [f"postfix check: {strip_prog(w)}" for w in stderr_lines(proc.stderr)]
        if proc.returncode != 0 and not proc.stderr.strip():
            out.append(f"postfix check: exit status {proc.returncode}")
    return out


def probe_maps(conf: Path, types: dict[str, str]) -> list[str]:
    """Every regexp/pcre map must load without a warning and must not match a probe string (a
    catch-all pattern would refuse all mail); indexed maps must answer a query."""
    postmap = engines.require("postmap")
    problems = []
    for name, typ in sorted(types.items()):
        path = conf / MAPS_SUBDIR / name
        probe = "<>" if typ in INDEXED else "bouncegen-install-probe"
        proc = engines.run([postmap, "-c", str(conf), "-q", probe, f"{typ}:{path}"])
        problems += [f"postmap {name}: {strip_prog(w)}" for w in stderr_lines(proc.stderr)]
        if proc.returncode not in (0, 1):
            problems.append(f"postmap {name}: exit status {proc.returncode}")
        elif proc.returncode == 0 and typ not in INDEXED:
            problems.append(f"postmap {name}: the probe string {probe!r} matched: a catch-all pattern")
    return problems


def postfix_check_possible(conf: Path) -> bool:
    # postfix check needs root and a master.cf to check the services against.
    return os.geteuid() == 0 and (conf / "master.cf").is_file() and engines.which("postfix") is not None


def lint_site(site: Path, scratch: Path) -> list[str]:
    """Lint a site directory as SpamAssassin would read it. A directory without any .pre file
    (a fresh --root) is linted beside the host's stock .pre files, which load the plugins
    (VBounce) our rules are written for; without them the rules inside ifplugin would go unlinted."""
    if any(site.glob("*.pre")):
        return sa_lint(site, scratch)
    lint_copy = scratch / "sa-lint"
    shutil.rmtree(lint_copy, ignore_errors=True)
    engines.sa_site_dir(lint_copy, site) if site.is_dir() else lint_copy.mkdir(parents=True)
    return [w.replace(str(lint_copy), str(site)) for w in sa_lint(lint_copy, scratch)]


# Asks SpamAssassin itself which of the named rules it defines with this site directory (and the
# default rules directory): a rule inside `ifplugin` whose plugin is not loaded, or a meta rule's
# sub-rule from stock rules that are not there, is no lint warning but a rule that never fires.
_DEFINED_RULES_PL = r"""
use Mail::SpamAssassin;
my $site = shift @ARGV;
my $sa = Mail::SpamAssassin->new({site_rules_filename => $site, userprefs_filename => '/dev/null',
                                  dont_copy_prefs => 1, local_tests_only => 1});
$sa->init(0);
print "$_\n" for grep { !exists $sa->{conf}->{test_types}->{$_} } @ARGV;
"""


def inactive_rules(site: Path, names: list[str], scratch: Path) -> list[str]:
    """Those of NAMES that SpamAssassin does not define with SITE as its site directory."""
    if not names:
        return []
    if not any(site.glob("*.pre")):  # as lint_site: a fresh --root, beside the stock .pre files
        lint_copy = scratch / "sa-rules"
        shutil.rmtree(lint_copy, ignore_errors=True)
        site = engines.sa_site_dir(lint_copy, site)
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    proc = engines.run(["perl", "-e", _DEFINED_RULES_PL, str(site), *names],
                       env={"HOME": str(home), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C"})
    if proc.returncode != 0:
        return []  # the lint reports a broken configuration; this check only adds to it
    return proc.stdout.split()


def validate(sa_site: Path, pf_conf: Path, types: dict[str, str], scratch: Path, *,
             baseline: Sequence[str] = (), rename: dict[Path, Path] | None = None) -> list[str]:
    """New problems of this SpamAssassin site dir + Postfix config dir (those in BASELINE, the
    warnings the current configuration already gives, are not counted)."""
    found = lint_site(sa_site, scratch / "sa")
    found += pf_check(pf_conf, run_postfix_check=postfix_check_possible(pf_conf))
    found += probe_maps(pf_conf, types)
    for old, new in (rename or {}).items():
        found = [w.replace(str(old), str(new)) for w in found]
    base = set(baseline)
    return [w for w in found if w not in base]
