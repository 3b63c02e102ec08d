"""Staging: the new configuration built in a scratch directory, and the plan of what changes.

The current SpamAssassin site directory and Postfix config directory are copied, our files put
into the copy, the main.cf lines merged with ``postconf -c STAGE`` (maincf.merge) and the indexed
maps built with ``postmap``; the milter's settings, the spamd profile and the systemd units
(whatever the rendering has under milter/, spamd/ and systemd/) are planned beside them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import engines
from ..errors import LintError, UsageError
from ..facts import MAPS_SUBDIR
from . import maincf
from .files import is_ours, live_diff, read_or_none
from .layout import HOST_STATE, INDEXED, MILTER_UNIT, STATE_FILE, Plan, Target
from .source import map_types, parse_main_cf
from .validate import stderr_lines, strip_prog


def service_files(src: Path, target: Target) -> list[tuple[Path, Path]]:
    """(rendered file, live file) for the milter's settings, every file of the spamd profile and
    every systemd unit that the rendering has; in that order."""
    out = []
    if (src / "milter").is_dir():
        out += [(f, target.etc_dir / f.name) for f in sorted((src / "milter").iterdir()) if f.is_file()]
    if (src / "spamd").is_dir():
        out += [(f, target.etc_dir / "spamd" / f.relative_to(src / "spamd"))
                for f in sorted((src / "spamd").rglob("*")) if f.is_file()]
    if (src / "systemd").is_dir():
        out += [(f, target.units_dir / f.name) for f in sorted((src / "systemd").iterdir()) if f.is_file()]
    return out


def installed_service_files(target: Target) -> list[Path]:
    """bouncegen's files under /etc/bouncegen and its units in /etc/systemd/system (by MARKER)."""
    found = []
    if target.etc_dir.is_dir():
        found += [f for f in sorted(target.etc_dir.rglob("*")) if f.is_file() and is_ours(f)]
    if target.units_dir.is_dir():
        found += [f for f in sorted(target.units_dir.glob("bouncegen*")) if f.is_file() and is_ours(f)]
    return found


def unit_order(names: list[str]) -> list[str]:
    """The units to start, the milter last (it needs spamd; Postfix needs it)."""
    units = sorted(n for n in names if n.endswith(".service"))
    return sorted(units, key=lambda n: n == MILTER_UNIT)


def stage(src: Path, target: Target, scratch: Path, *, replace_params: bool) -> tuple[Plan, dict[str, str]]:
    """Build the new configuration in SCRATCH; return the plan and the maps' table types."""
    src_sa, src_pf = src / "spamassassin", src / "postfix"
    main_lines = (src_pf / "main.cf").read_text(encoding="utf-8")
    params = parse_main_cf(main_lines, str(src_pf / "main.cf"))
    types = map_types(params)
    missing = [n for n in types if not (src_pf / n).is_file()]
    if missing:
        raise UsageError([f"{src_pf / n}: named in main.cf but missing" for n in missing])
    plan = Plan(scratch / "sa", scratch / "postfix")

    # SpamAssassin: the current site directory, our files replaced, our stale files removed.
    new_sa = {f.name: f for f in sorted(src_sa.iterdir()) if f.is_file()}
    if not new_sa:
        raise UsageError(f"{src_sa}: no files to install")
    plan.stage_sa.mkdir(parents=True)
    if target.sa_dir.is_dir():
        for f in sorted(target.sa_dir.iterdir()):
            if f.is_file() and (f.name in new_sa or not is_ours(f)):
                shutil.copy2(f, plan.stage_sa / f.name)
            elif f.is_file():
                plan.removes.append(f)  # a file of ours that this rendering no longer has
    for name, f in new_sa.items():
        shutil.copyfile(f, plan.stage_sa / name)

    # Postfix: main.cf (+ master.cf for postfix check), our maps in bouncegen/.
    main_cf = target.pf_dir / "main.cf"
    fresh = not main_cf.is_file()
    if fresh and target.live:
        raise UsageError(f"{main_cf}: not found: install and configure Postfix first")
    plan.stage_pf.mkdir(parents=True)
    if fresh:
        (plan.stage_pf / "main.cf").touch()
        plan.notes.append(f"{main_cf} does not exist: starting a new one with bouncegen's lines only")
    else:
        shutil.copy2(main_cf, plan.stage_pf / "main.cf")
    if (target.pf_dir / "master.cf").is_file():
        shutil.copy2(target.pf_dir / "master.cf", plan.stage_pf / "master.cf")
    else:
        (plan.stage_pf / "master.cf").touch()  # for postconf only; never installed

    # Which current values are ours (from the previous install) and which the admin set.
    current = {} if fresh else maincf.postconf_n(plan.stage_pf)
    previous_text = read_or_none(target.maps_dir / STATE_FILE)
    previous = dict(parse_main_cf(previous_text, STATE_FILE)) if previous_text else {}
    host = maincf.load_host_state(target.maps_dir / HOST_STATE)
    sets, removes, conflicts, notes, host = maincf.merge(params, current, previous, host, main_cf,
                                                         replace_params=replace_params)
    plan.notes += notes
    if "smtpd_milters" in dict(sets) and current.get("non_smtpd_milters", "").strip() in ("$smtpd_milters", "${smtpd_milters}", "$(smtpd_milters)"):
        plan.notes.append(f"{main_cf}: non_smtpd_milters = $smtpd_milters: locally submitted mail also passes "
                          "bouncegen's milter, which accepts it unjudged (reason=local); kept as it is")
    if dict(params).get("disable_mime_input_processing") == "yes" and current.get("disable_mime_input_processing") != "yes":
        # The site's own checks of attachment headers (file names, nested messages) stop working.
        for name in ("nested_header_checks", "mime_header_checks"):
            if name in current and "bouncegen/" not in current[name] and current[name] != "$header_checks":
                plan.notes.append(f"{main_cf}: {name} = {current[name]}: with disable_mime_input_processing = yes "
                                  "it no longer sees the headers of attachments and attached messages")
    if conflicts and not replace_params:
        raise UsageError(
            ["main.cf already sets parameters that bouncegen also sets, to other values:"]
            + conflicts
            + ["merge them by hand (bouncegen's tables first) and run again, or install with "
               "--replace-params to let bouncegen's values replace them"]
        )
    for c in conflicts:
        plan.notes.append("replacing " + c.split(": ", 1)[1].replace("\n   ", ";"))
    maincf.postconf_edit(plan.stage_pf, sets, removes)

    maps = plan.stage_pf / MAPS_SUBDIR
    maps.mkdir()
    for f in sorted(src_pf.iterdir()):
        if f.is_file() and f.name != "main.cf":
            shutil.copyfile(f, maps / f.name)
    shutil.copyfile(src_pf / "main.cf", maps / STATE_FILE)
    (maps / HOST_STATE).write_text(maincf.dump_host_state(host), encoding="utf-8")
    postmap = engines.require("postmap")
    for name, typ in sorted(types.items()):
        if typ in INDEXED:
            proc = engines.run([postmap, "-c", str(plan.stage_pf), f"{typ}:{maps / name}"])
            if proc.returncode != 0 or proc.stderr.strip():
                raise LintError([f"postmap {typ}:{name}: {strip_prog(w)}" for w in stderr_lines(proc.stderr)]
                                or [f"postmap {name}: exit status {proc.returncode}"])

    # The plan: maps (sources, then indexed files), SpamAssassin files, main.cf last.
    def text_change(staged: Path, live: Path) -> None:
        old = read_or_none(live)
        new = staged.read_text(encoding="utf-8")
        if old != new:
            plan.writes.append((staged, live))
            plan.diff += live_diff(old, new, live)

    changed_sources = set()
    for f in sorted(maps.iterdir()):
        if f.suffix not in INDEXED.values():
            before = len(plan.writes)
            text_change(f, target.maps_dir / f.name)
            if len(plan.writes) > before:
                changed_sources.add(f.name)
    for name, typ in sorted(types.items()):
        if typ in INDEXED:
            db = maps / (name + INDEXED[typ])
            live_db = target.maps_dir / db.name
            if name in changed_sources or not live_db.exists():
                plan.writes.append((db, live_db))
                plan.diff.append(f"postmap {typ}:{target.maps_dir / name} -> {live_db}\n")
    keep = {f.name for f in maps.iterdir()}
    if target.maps_dir.is_dir():
        for f in sorted(target.maps_dir.iterdir()):
            if f.name not in keep:
                plan.removes.append(f)
    for name in sorted(new_sa):
        text_change(plan.stage_sa / name, target.sa_dir / name)

    # The milter's settings, the spamd profile, the units; stale ones of an earlier install go.
    services = service_files(src, target)
    for staged, live in services:
        text_change(staged, live)
    new_live = {live for _, live in services}
    plan.removes += [f for f in installed_service_files(target) if f not in new_live]
    plan.units = unit_order([live.name for _, live in services if live.parent == target.units_dir])

    for f in plan.removes:
        plan.diff += live_diff(read_or_none(f), None, f) if f.suffix not in INDEXED.values() else [f"remove {f}\n"]
    old, new = read_or_none(main_cf), (plan.stage_pf / "main.cf").read_text(encoding="utf-8")
    if old != new:
        plan.main_cf = (plan.stage_pf / "main.cf", main_cf)
        plan.diff += live_diff(old, new, main_cf)
    return plan, types
