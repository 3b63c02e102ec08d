"""amavisd-new on the host: where its spam levels are, and whether a bouncegen verdict reaches them.

amavisd-new runs SpamAssassin in its own process with the host's /etc/spamassassin, so the ruleset
bouncegen installs there is what amavis scores with; but amavis acts on its own levels, not on
SpamAssassin's required_score: Debian 12 ships ``$sa_tag2_level_deflt = 6.31`` (X-Spam-Flag: YES)
and ``$sa_kill_level_deflt = 6.31`` (the spam action, $final_spam_destiny) in
/etc/amavis/conf.d/20-debian_defaults. A verdict of 5 points stays below them and amavis lets
backscatter through unmarked; policy.points chooses the points to reach them.

bouncegen never edits amavis' configuration (lowering amavis' levels would change the verdict on
every message the host receives; raising the points of bouncegen's verdicts changes only
backscatter). Install reads the levels and says what it found.

The configuration is Perl, read by amavis in file-name order (Debian: every file in conf.d); it
is read here conservatively, not evaluated: the last uncommented assignment of a plain number to
the variable counts, and any other assignment (an expression, a variable) makes the level unknown
rather than guessed. Policy banks can set other levels per client: they are named, not followed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .layout import Target

CONF_D = "/etc/amavis/conf.d"
LEVELS = ("sa_tag2_level_deflt", "sa_kill_level_deflt")
# Debian's amavisd-new reads every file of conf.d except editor and dpkg leftovers.
_SKIP = re.compile(r"(~|\.dpkg-[a-z]+|\.ucf-[a-z]+|\.bak|\.orig|\.swp)$")
_ASSIGN = re.compile(r"^\s*\$(?P<var>\w+)\s*=\s*(?P<value>[^;#]*?)\s*;")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)")
_DESTINY = re.compile(r"^\s*\$final_spam_destiny\s*=\s*(D_[A-Z]+)\s*;")
_BANK = re.compile(r"^\s*\$policy_bank\{")
_BYPASS = re.compile(r"^\s*@bypass_spam_checks_maps\s*=")


@dataclass
class Amavis:
    conf_d: Path
    levels: dict[str, float | None] = field(default_factory=dict)  # None: set, but not a plain number
    where: dict[str, str] = field(default_factory=dict)  # variable -> file name that set it last
    destiny: str | None = None
    policy_banks: list[str] = field(default_factory=list)
    bypass_set: bool = False

    @property
    def kill_level(self) -> float | None:
        return self.levels.get("sa_kill_level_deflt")


def detect(target: Target) -> Amavis | None:
    """The amavis configuration under the target's root, or None without /etc/amavis/conf.d."""
    conf_d = target.root / CONF_D.lstrip("/")
    if not conf_d.is_dir():
        return None
    found = Amavis(conf_d)
    for path in sorted(p for p in conf_d.iterdir() if p.is_file() and not _SKIP.search(p.name)):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            m = _ASSIGN.match(line)
            if m and m.group("var") in LEVELS:
                value = m.group("value")
                found.levels[m.group("var")] = float(value) if _NUMBER.fullmatch(value) else None
                found.where[m.group("var")] = path.name
            if d := _DESTINY.match(line):
                found.destiny = d.group(1)
            if _BANK.match(line) and path.name not in found.policy_banks:
                found.policy_banks.append(path.name)
            if _BYPASS.match(line):
                found.bypass_set = True
    return found


def report(found: Amavis, points: float) -> list[str]:
    """What install says about amavis: the levels it read, and whether one verdict reaches them."""
    lines = []
    shown = ", ".join(
        f"${v} = {'(not a plain number)' if found.levels[v] is None else f'{found.levels[v]:g}'} ({found.where[v]})"
        for v in LEVELS if v in found.levels) or "no spam levels set (amavis' built-in defaults)"
    lines.append(f"amavisd-new: {found.conf_d}: {shown}"
                 + (f", $final_spam_destiny = {found.destiny}" if found.destiny else "")
                 + "; bouncegen changed nothing in amavis' configuration")
    kill = found.kill_level
    tag2 = found.levels.get("sa_tag2_level_deflt")
    if kill is None or (tag2 is None and "sa_tag2_level_deflt" in found.levels):
        why = ("is not a plain number" if "sa_kill_level_deflt" in found.levels
               else "is not set in conf.d (amavis' built-in default applies)")
        lines.append(f"warning: amavisd-new: $sa_kill_level_deflt {why}; check by hand that one verdict's "
                     f"{points:g} points (policy.points) reach it")
    else:
        reach = max(kill, tag2 if tag2 is not None else kill)
        if points >= reach:
            lines.append(f"amavisd-new: one bouncegen verdict adds {points:g} points: it reaches the kill level "
                         f"{kill:g}, so amavis marks backscatter as spam (X-Spam-Flag: YES) and applies "
                         "$final_spam_destiny")
        else:
            lines.append(f"warning: amavisd-new: one bouncegen verdict adds {points:g} points, below the kill level "
                         f"{reach:g}: amavis would let backscatter through unmarked. Set [policy] points = "
                         f"{reach:g} in the inventory, render and install again (docs/deploying.md, amavisd-new)")
    if not found.bypass_set:
        lines.append("note: amavisd-new: @bypass_spam_checks_maps is not set in conf.d: Debian's amavis skips "
                     "spam checks until 15-content_filter_mode's lines are uncommented (docs/deploying.md)")
    if found.policy_banks:
        lines.append(f"note: amavisd-new: policy banks in {', '.join(found.policy_banks)} may set other levels "
                     "for some clients: check them against policy.points")
    lines.append("amavisd-new loads SpamAssassin's rules when it starts: systemctl restart amavis")
    return lines
