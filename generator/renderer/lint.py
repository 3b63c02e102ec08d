"""Lint rendered output with the real tools before it is moved into place (mkrules' "LINT
FAILED, suppressing output"): ``spamassassin --lint`` with our files beside the stock .pre files,
``postconf`` on the main.cf lines, ``postmap`` on every map of its declared type. Any warning is
a failure: a warning from postmap means a pattern Postfix skips, i.e. a rule silently lost."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Sequence

from .. import engines
from ..errors import LintError
from ..facts import MAPS_SUBDIR

_PROBE = "bouncegen-lint-probe"


def _warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def lint_spamassassin(rendered: Path, scratch: Path) -> list[str]:
    exe = engines.require("spamassassin")
    site = engines.sa_site_dir(scratch / "sa-site", rendered / "spamassassin")
    home = scratch / "home"
    home.mkdir(exist_ok=True)
    proc = engines.run(
        [exe, "--lint", f"--siteconfigpath={site}", "--prefspath=/dev/null"],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C"},
    )
    problems = [f"spamassassin --lint: {w}" for w in _warnings(proc.stderr)]
    if proc.returncode != 0 and not problems:
        problems.append(f"spamassassin --lint: exit status {proc.returncode}")
    return problems


def lint_lean_profile(rendered: Path, scratch: Path) -> list[str]:
    """The lean scanning profile (spamd/) alone: its rules/ as the only config path, its site/
    as the site config, no stock file: a rule that needs something the profile lacks (a stock
    sub-rule, a plugin's eval) fails here."""
    exe = engines.require("spamassassin")
    home = scratch / "lean-home"
    home.mkdir(exist_ok=True)
    lean = rendered / "spamd"
    proc = engines.run(
        [exe, "--lint", f"--configpath={lean / 'rules'}", f"--siteconfigpath={lean / 'site'}", "--prefspath=/dev/null"],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C"},
    )
    problems = [f"spamassassin --lint (lean profile, spamd/): {w}" for w in _warnings(proc.stderr)]
    if proc.returncode != 0 and not problems:
        problems.append(f"spamassassin --lint (lean profile, spamd/): exit status {proc.returncode}")
    return problems


def lint_postfix(rendered: Path, scratch: Path, map_types: dict[str, str]) -> list[str]:
    postmap = engines.require("postmap")
    postconf = engines.require("postconf")
    conf = engines.postfix_config_dir(scratch / "postfix", rendered / "postfix")
    problems = []
    proc = engines.run([postconf, "-c", str(conf), "-n"])
    problems += [f"postconf (main.cf): {w}" for w in _warnings(proc.stderr)]
    for name, map_type in sorted(map_types.items()):
        path = conf / MAPS_SUBDIR / name
        if map_type == "hash":
            proc = engines.run([postmap, "-c", str(conf), f"hash:{path}"])
            probe = engines.run([postmap, "-c", str(conf), "-q", "<>", f"hash:{path}"])
            problems += [f"postmap {name}: {w}" for w in _warnings(proc.stderr + probe.stderr)]
            if proc.returncode != 0:
                problems.append(f"postmap {name}: exit status {proc.returncode}")
        else:
            proc = engines.run([postmap, "-c", str(conf), "-q", _PROBE, f"{map_type}:{path}"])
            problems += [f"postmap {name}: {w}" for w in _warnings(proc.stderr)]
            if proc.returncode not in (0, 1):  # 1 = probe not found, the expected answer
                problems.append(f"postmap {name}: exit status {proc.returncode}")
            elif proc.returncode == 0:
                problems.append(f"postmap {name}: the probe string {_PROBE!r} matched: a catch-all pattern")
    return problems


def lint(rendered: Path, map_types: dict[str, str], *, require_tools: bool,
         checks: Sequence[Callable[[Path], list[str]]] = ()) -> list[str]:
    """Lint everything; returns notes about skipped tools, raises LintError on any problem.

    Without require_tools a missing engine only skips its lint (and says so). ``checks``: more
    linters from the rooms above the renderer, each given the rendered directory and returning
    its problems (the milter reads its settings file: milter.settings.check_rendered)."""
    notes, problems = [], []
    with tempfile.TemporaryDirectory(prefix="bouncegen-lint-") as tmp:
        scratch = Path(tmp)
        if require_tools or engines.which("spamassassin"):
            problems += lint_spamassassin(rendered, scratch)
            if (rendered / "spamd").is_dir():
                problems += lint_lean_profile(rendered, scratch)
        else:
            notes.append("spamassassin not found: SpamAssassin lint skipped")
        if require_tools or (engines.which("postmap") and engines.which("postconf")):
            problems += lint_postfix(rendered, scratch, map_types)
        else:
            notes.append("postmap not found: Postfix lint skipped")
    for check in checks:
        problems += check(rendered)
    if problems:
        raise LintError(problems)
    return notes
