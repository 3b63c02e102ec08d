"""``bouncegen install --role relay`` and ``bouncegen uninstall --role relay``: the relay-role
milter (relay/ of a rendering: its settings, its unit, its main.cf lines; it records the
Message-IDs the relay sends in the ledger and, with [batv], signs envelope senders) put on an
outbound relay, the way install.py puts the MX layer on an MX, and taken out again.

Order of work, so that a relay's outbound mail never waits on a recorder that is not there, and
a failure leaves the relay as it was:

1. Stage a copy of the Postfix config directory with the recorder's entry merged into the host's
   ``smtpd_milters`` and ``non_smtpd_milters`` (maincf.merge: the host's milters keep their place
   and settings; ``default_action=accept``, so a recorder that cannot be reached never blocks
   mail, or ``tempfail`` with BATV, so that no mail leaves unsigned); validate it with ``postconf -n`` and ``postfix check`` (only new warnings count).
2. Show a unified diff (the settings file, which may carry a Redis password, only by name).
3. Back up and write the settings (/etc/bouncegen/bouncegen-relay.conf, 0640 root:bouncegen),
   the unit (/etc/systemd/system/bouncegen-relay.service) and the state beside Postfix's maps
   (POSTFIX_DIR/bouncegen-relay/: the lines installed, the host's values they replaced).
4. Services: the system user, daemon-reload, bouncegen-relay (re)started, and
   ``bouncegen milter --check`` on its settings must pass (ledger key and store, BATV keys, a
   milter handshake);
   else everything is rolled back and Postfix is never wired to it.
5. Only then main.cf, validated again; Postfix reloaded (or the commands printed).

Files of the MX role (install.py) and of this role never overlap, so one host can hold both.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import BouncegenError, EngineError, LintError, UsageError
from ..milter.health import CheckError
from . import files, maincf, services as svc
from .files import live_diff, read_or_none
from .layout import HOST_STATE, RELAY_CONF, RELAY_UNIT, STATE_FILE, Plan, Target
from .services import do_reload, reload_commands
from .source import parse_main_cf, source_dir
from .validate import pf_check, postfix_check_possible

RELAY_PARAMS = ("smtpd_milters", "non_smtpd_milters")  # all that relay/main.cf may set


def default_services(target: Target):
    """systemd on a live host where it runs; nothing for a staging --root."""
    if not target.live:
        return None
    if not svc.systemd_running():
        raise UsageError("systemd is not running on this host: bouncegen install --role relay starts "
                         f"{RELAY_UNIT} with systemctl; stage with --root DIR and start it yourself")
    return svc.Systemd()


def relay_dir(src: Path) -> Path:
    """SRC/relay/ with the three files of the relay role, or UsageError."""
    d = src / "relay"
    missing = [n for n in (RELAY_CONF, RELAY_UNIT, STATE_FILE) if not (d / n).is_file()]
    if missing:
        raise UsageError(f"{d}: no {', '.join(missing)}: the relay role records into the sent-mail ledger "
                         "or signs with BATV, so the inventory needs a [ledger] or a [batv] table (docs/ledger.md)")
    return d


def stage(rel: Path, target: Target, scratch: Path, *, replace_params: bool) -> Plan:
    """The relay role's plan: its files, its state, and main.cf staged with its lines merged."""
    params = parse_main_cf(rel.joinpath(STATE_FILE).read_text(encoding="utf-8"), str(rel / STATE_FILE))
    extra = [n for n, _ in params if n not in RELAY_PARAMS]
    if extra:
        raise UsageError(f"{rel / STATE_FILE}: sets {', '.join(extra)}: the relay role sets only "
                         f"{' and '.join(RELAY_PARAMS)}")
    plan = Plan(scratch / "sa", scratch / "postfix")
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
    previous_text = read_or_none(target.relay_state_dir / STATE_FILE)
    previous = dict(parse_main_cf(previous_text, STATE_FILE)) if previous_text else {}
    host = maincf.load_host_state(target.relay_state_dir / HOST_STATE)
    sets, removes, conflicts, notes, host = maincf.merge(params, current, previous, host, main_cf,
                                                         replace_params=replace_params)
    plan.notes += notes
    if conflicts and not replace_params:  # never for the two milter lists; kept for safety
        raise UsageError(["main.cf already sets parameters that bouncegen also sets, to other values:"] + conflicts)
    maincf.postconf_edit(plan.stage_pf, sets, removes)

    state = scratch / "state"
    state.mkdir()
    shutil.copyfile(rel / STATE_FILE, state / STATE_FILE)
    (state / HOST_STATE).write_text(maincf.dump_host_state(host), encoding="utf-8")

    def text_change(staged: Path, live: Path) -> None:
        old, new = read_or_none(live), staged.read_text(encoding="utf-8")
        if old != new:
            plan.writes.append((staged, live))
            plan.diff.extend(live_diff(old, new, live))

    text_change(rel / RELAY_CONF, target.relay_conf)
    text_change(rel / RELAY_UNIT, target.units_dir / RELAY_UNIT)
    text_change(state / STATE_FILE, target.relay_state_dir / STATE_FILE)
    text_change(state / HOST_STATE, target.relay_state_dir / HOST_STATE)
    plan.units = [RELAY_UNIT]
    old, new = read_or_none(main_cf), (plan.stage_pf / "main.cf").read_text(encoding="utf-8")
    if old != new:
        plan.main_cf = (plan.stage_pf / "main.cf", main_cf)
        plan.diff.extend(live_diff(old, new, main_cf))
    return plan


def _check(conf: Path) -> list[str]:
    return pf_check(conf, run_postfix_check=postfix_check_possible(conf))


def install(spec: str | Path, target: Target, *, dry_run: bool = False, reload: bool = False,
            replace_params: bool = False, backup_dir: Path | None = None,
            say: Callable[[str], None] = print, services="default", health_deadline: float = 30.0) -> bool:
    """Install the relay role of SPEC (inventory or rendered dir) into TARGET; True when files
    changed. SERVICES as in install.install: "default", None, or an object like services.Commands."""
    if reload and not target.live and services == "default":
        raise UsageError("--reload only makes sense with --root / (the services of this host)")
    if services == "default":
        services = default_services(target) if not dry_run else None
    with contextlib.ExitStack() as stack:
        rel = relay_dir(source_dir(spec, stack, do_lint=False))  # a relay needs no SpamAssassin
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bouncegen-relay-")))
        plan = stage(rel, target, scratch, replace_params=replace_params)
        for note in plan.notes:
            say(f"note: {note}")
        if plan.empty:
            say(f"nothing to change: {target.pf_dir} and {target.etc_dir} already hold this relay role")
            return False
        say("".join(plan.diff).rstrip("\n"))
        base = _check(target.pf_dir) if (target.pf_dir / "main.cf").is_file() else []
        problems = [w.replace(str(plan.stage_pf), str(target.pf_dir)) for w in _check(plan.stage_pf)]
        problems = [w for w in problems if w not in set(base)]
        if problems:
            raise LintError(["the new configuration failed validation; nothing was installed:"] + problems)
        say("validated: postconf -n" + (", postfix check" if postfix_check_possible(plan.stage_pf) else "")
            + ": no new warnings")
        if dry_run:
            say("dry run: nothing written")
            return False
        if isinstance(services, svc.Systemd):
            unit_files = [staged for staged, live in plan.writes if live.parent == target.units_dir]
            problems = svc.missing_executables(unit_files)
            if problems:
                raise UsageError(problems + ["nothing was installed"])

        backup = files.backup_for(target.root, backup_dir)
        units = plan.units if services is not None else []
        was_active = {u: services.active(u) for u in units}
        try:
            files.write(plan.writes, [], backup)
            if units:
                say(f"services: starting {', '.join(units)}")
                say(svc.bring_up(services, units, target.relay_conf, deadline=health_deadline))
            if plan.main_cf:
                files.write([plan.main_cf], [], backup)
            problems = [w for w in _check(target.pf_dir) if w not in set(base)]
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
                raise LintError(f"the relay recorder did not come up, Postfix was not wired to it, previous "
                                f"files restored: {exc.problems[0]}" + (f" (see {hint})" if hint else "")) from None
            if isinstance(exc, (LintError, EngineError)):
                raise
            if isinstance(exc, OSError):
                raise LintError(f"install failed, rolled back: {exc}") from exc
            raise
        n = len(plan.writes) + (1 if plan.main_cf else 0)
        say(f"installed: {n} file{'s' if n != 1 else ''} changed; previous files saved in {backup.dir}")
        if services is None:
            say(f"unit staged in {target.units_dir}; on the relay: systemctl daemon-reload && systemctl enable "
                f"--now {RELAY_UNIT}, then bouncegen milter --check --config /etc/bouncegen/{RELAY_CONF}, "
                "then postfix reload")
        if reload:
            do_reload(target, say)
        elif services is not None and plan.main_cf:
            svc.reload_postfix(target, say)  # wired to the recorder that just passed its check
        else:
            say("reload Postfix to use them:")
            say("  " + " ".join(reload_commands(target)[0]))
        return True


def uninstall(target: Target, *, dry_run: bool = False, reload: bool = False, backup_dir: Path | None = None,
              say: Callable[[str], None] = print, services="default") -> bool:
    """Take the relay role out of TARGET: the recorder's entries out of main.cf (the host's values
    back) and Postfix reloaded first, then bouncegen-relay stopped and disabled, then its files
    removed. The ledger and its key stay: they are the site's, shared with the MX hosts."""
    if reload and not target.live and services == "default":
        raise UsageError("--reload only makes sense with --root / (the services of this host)")
    if services == "default":
        services = default_services(target) if not dry_run else None
    main_cf = target.pf_dir / "main.cf"
    with tempfile.TemporaryDirectory(prefix="bouncegen-relay-uninstall-") as tmp:
        new_main = maincf.restored_main_cf(main_cf, target.relay_state_dir, Path(tmp), say)
        removes = [p for p in (target.relay_conf, target.units_dir / RELAY_UNIT) if p.is_file() and files.is_ours(p)]
        if target.relay_state_dir.is_dir():
            removes += [f for f in sorted(target.relay_state_dir.iterdir()) if f.is_file()]
        if new_main is None and not removes:
            say(f"nothing to remove: no relay role of bouncegen in {target.pf_dir} or {target.etc_dir}")
            return False
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
        if services is not None and (target.units_dir / RELAY_UNIT) in removes:
            with contextlib.suppress(BouncegenError, OSError):
                services.stop(RELAY_UNIT, disable=True)
        files.write([], removes, backup)
        for d in (target.relay_state_dir, target.etc_dir):
            with contextlib.suppress(OSError):
                d.rmdir()
        if services is not None:
            with contextlib.suppress(BouncegenError, OSError):
                services.prepare()
        if new_main is not None and services is None and not reload:
            say("reload Postfix to use it:")
            say("  " + " ".join(reload_commands(target)[0]))
        say(f"uninstalled: {len(removes) + (1 if new_main else 0)} files changed or removed; "
            f"previous files saved in {backup.dir}")
        return True
