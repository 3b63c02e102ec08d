"""What the MX role (install.py) and the relay role (relay.py) do alike once a plan is staged:
choose how services start, write with a backup, bring the role's services up and health-check
them, main.cf last and validated again, everything rolled back on any failure; and on
uninstall, main.cf unwired and Postfix reloaded before the services stop and the files go.
A ``Role`` holds the little that differs: the words of the messages and which reload to print.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import BouncegenError, EngineError, LintError, UsageError
from ..milter.health import CheckError
from . import files, services as svc
from .files import live_diff, read_or_none
from .layout import ETC_DIR, Plan, Target
from .services import do_reload, reload_commands


@dataclass(frozen=True)
class Role:
    starts: str  # "bouncegen install starts ...": what needs systemd, for the message when it is not there
    them: str  # "them" or "it": the units of that message
    service: str  # what must come up before Postfix is wired to it ("milter", "relay recorder")
    units_word: str  # "units" or "unit", staged with a --root
    host_word: str  # "host" or "relay": where the staged units are to be started
    reload_what: str  # what to reload by hand after an install: "the running services", "Postfix"
    all_reloads: bool  # print every reload command (Postfix and spamd) or Postfix's only
    uninstall_reload_hint: bool  # print Postfix's reload command after an uninstall without services


def choose_services(target: Target, services, role: Role, *, reload: bool, dry_run: bool):
    """SERVICES as the caller passed it, or for "default": systemd on a live host where it runs,
    nothing for a staging --root or a dry run."""
    if reload and not target.live and services == "default":
        raise UsageError("--reload only makes sense with --root / (the services of this host)")
    if services != "default":
        return services
    if dry_run or not target.live:
        return None
    if not svc.systemd_running():
        raise UsageError(f"systemd is not running on this host: {role.starts} with systemctl; stage with "
                         f"--root DIR and start {role.them} yourself")
    return svc.Systemd()


def apply(plan: Plan, target: Target, services, role: Role, conf: Path, verify: Callable[[], list[str]], *,
          reload: bool, backup_dir: Path | None, health_deadline: float, say: Callable[[str], None]) -> None:
    """Write PLAN (validated, not a dry run) into TARGET: its files with a backup, the role's
    units up until ``bouncegen milter --check`` passes on CONF, then main.cf; VERIFY gives the
    installed configuration's new warnings. Any failure rolls everything back; then Postfix
    reloaded, or the commands to run printed."""
    if isinstance(services, svc.Systemd):
        unit_files = [staged for staged, live in plan.writes if live.parent == target.units_dir]
        problems = svc.missing_executables(unit_files)
        if problems:
            raise UsageError(problems + ["nothing was installed"])

    backup = files.backup_for(target.root, backup_dir)
    units = plan.units if services is not None else []
    was_active = {u: services.active(u) for u in units}
    try:
        files.write(plan.writes, plan.removes, backup)
        if units:
            say(f"services: starting {', '.join(units)}")
            say(svc.bring_up(services, units, conf, deadline=health_deadline))
        if plan.main_cf:
            files.write([plan.main_cf], [], backup)
        problems = verify()
        if problems:
            raise LintError(["the installed configuration failed validation; rolled back:"] + problems)
    except BaseException as exc:
        left = backup.rollback()
        if units:
            svc.restore(services, units, was_active, say)
        if left:
            raise LintError([str(exc)] + left + [f"backup kept in {backup.dir}"]) from exc
        if isinstance(exc, CheckError):
            hint = services.log_hint(units[-1]) if units else ""
            raise LintError(f"the {role.service} did not come up, Postfix was not wired to it, previous files "
                            f"restored: {exc.problems[0]}" + (f" (see {hint})" if hint else "")) from None
        if isinstance(exc, (LintError, EngineError)):
            raise
        if isinstance(exc, OSError):
            raise LintError(f"install failed, rolled back: {exc}") from exc
        raise
    n = len(plan.writes) + len(plan.removes) + (1 if plan.main_cf else 0)
    say(f"installed: {n} file{'s' if n != 1 else ''} changed; previous files saved in {backup.dir}")
    if plan.units and services is None:
        say(f"{role.units_word} staged in {target.units_dir}; on the {role.host_word}: systemctl daemon-reload && "
            f"systemctl enable --now {' '.join(plan.units)}, then bouncegen milter --check --config "
            f"{ETC_DIR}/{conf.name}, then postfix reload")
    if reload:
        do_reload(target, say)
    elif services is not None and plan.main_cf:
        svc.reload_postfix(target, say)  # wired to the service that just passed its check
    else:
        say(f"reload {role.reload_what} to use them:")
        for cmd in reload_commands(target)[:None if role.all_reloads else 1]:
            say("  " + " ".join(cmd))


def remove(target: Target, services, role: Role, main_cf: Path, new_main: Path | None, removes: list[Path],
           units: list[str], dirs: tuple[Path, ...], *, dry_run: bool, reload: bool, backup_dir: Path | None,
           say: Callable[[str], None]) -> bool:
    """Uninstall a role: NEW_MAIN (main.cf with the role's lines taken out, if it changes) first
    and Postfix reloaded, then UNITS stopped and disabled, then REMOVES deleted and DIRS removed
    where empty. True when anything changed."""
    diff = live_diff(read_or_none(main_cf), read_or_none(new_main), main_cf) if new_main else []
    diff += [f"remove {f}\n" for f in removes]
    say("".join(diff).rstrip("\n"))
    if dry_run:
        say("dry run: nothing changed")
        return False
    backup = files.backup_for(target.root, backup_dir)
    try:
        if new_main:
            files.write([(new_main, main_cf)], [], backup)
            if reload or services is not None:
                svc.reload_postfix(target, say)
    except BaseException:
        backup.rollback()
        raise
    for unit in reversed(units if services is not None else []):
        with contextlib.suppress(BouncegenError, OSError):
            services.stop(unit, disable=True)
    files.write([], removes, backup)
    for d in dirs:
        with contextlib.suppress(OSError):
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), reverse=True):
                sub.rmdir()
            d.rmdir()
    if services is not None and units:
        with contextlib.suppress(BouncegenError, OSError):
            services.prepare()
    if role.uninstall_reload_hint and new_main is not None and services is None and not reload:
        say("reload Postfix to use it:")
        say("  " + " ".join(reload_commands(target)[0]))
    say(f"uninstalled: {len(removes) + (1 if new_main else 0)} files changed or removed; "
        f"previous files saved in {backup.dir}")
    return True
