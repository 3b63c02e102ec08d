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
from .layout import HOST_STATE, INDEXED, MILTER_UNIT, RELAY_FILES, STATE_FILE, Plan, Target
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
    """bouncegen's files under /etc/bouncegen and its units in /etc/systemd/system (by MARKER),
    those of the relay role (RELAY_FILES: relay.py installs and removes them) excepted."""
    found = []
    if target.etc_dir.is_dir():
        found += [f for f in sorted(target.etc_dir.rglob("*")) if f.is_file() and is_ours(f)]
    if target.units_dir.is_dir():
        found += [f for f in sorted(target.units_dir.glob("bouncegen*")) if f.is_file() and is_ours(f)]
    return [f for f in found if not (f.name in RELAY_FILES and f.parent in (target.etc_dir, target.units_dir))]


def unit_order(names: list[str]) -> list[str]:
    """The units to start, the milter last (it needs spamd; Postfix needs it)."""
    units = sorted(n for n in names if n.endswith(".service"))
    return sorted(units, key=lambda n: n == MILTER_UNIT)


def stage_main_cf(params: list[tuple[str, str]], target: Target, plan: Plan, state_dir: Path, *,
                  replace_params: bool):
    """Copy the host's main.cf (a new empty one on a staging --root without it) and master.cf (for
    postconf and postfix check only) into PLAN's Postfix stage, and decide how PARAMS merge with
    them (maincf.merge): which current values are ours, from STATE_DIR's record of the previous
    install of this role, and which the admin set. The merge's notes go to the plan; the caller
    refuses or accepts the conflicts and applies the edits. Returns (main.cf, its current
    values, (sets, removes, conflicts, host values))."""
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

    current = {} if fresh else maincf.postconf_n(plan.stage_pf)
    previous_text = read_or_none(state_dir / STATE_FILE)
    previous = dict(parse_main_cf(previous_text, STATE_FILE)) if previous_text else {}
    host = maincf.load_host_state(state_dir / HOST_STATE)
    sets, removes, conflicts, notes, host = maincf.merge(params, current, previous, host, main_cf,
                                                         replace_params=replace_params)
    plan.notes += notes
    return main_cf, current, (sets, removes, conflicts, host)


def text_change(plan: Plan, staged: Path, live: Path) -> bool:
    """STAGED is to replace the text file LIVE unless the two are the same; True when it is."""
    old, new = read_or_none(live), staged.read_text(encoding="utf-8")
    if old == new:
        return False
    plan.writes.append((staged, live))
    plan.diff += live_diff(old, new, live)
    return True


def main_cf_change(plan: Plan, main_cf: Path) -> None:
    """The staged main.cf is to replace MAIN_CF (last, once the services are up) unless the same."""
    old, new = read_or_none(main_cf), (plan.stage_pf / "main.cf").read_text(encoding="utf-8")
    if old != new:
        plan.main_cf = (plan.stage_pf / "main.cf", main_cf)
        plan.diff += live_diff(old, new, main_cf)


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
    main_cf, current, (sets, removes, conflicts, host) = stage_main_cf(params, target, plan, target.maps_dir,
                                                                       replace_params=replace_params)
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
    changed_sources = {f.name for f in sorted(maps.iterdir())
                       if f.suffix not in INDEXED.values() and text_change(plan, f, target.maps_dir / f.name)}
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
        text_change(plan, plan.stage_sa / name, target.sa_dir / name)

    # The milter's settings, the spamd profile, the units; stale ones of an earlier install go.
    services = service_files(src, target)
    for staged, live in services:
        text_change(plan, staged, live)
    new_live = {live for _, live in services}
    plan.removes += [f for f in installed_service_files(target) if f not in new_live]
    plan.units = unit_order([live.name for _, live in services if live.parent == target.units_dir])

    for f in plan.removes:
        plan.diff += live_diff(read_or_none(f), None, f) if f.suffix not in INDEXED.values() else [f"remove {f}\n"]
    main_cf_change(plan, main_cf)
    return plan, types
