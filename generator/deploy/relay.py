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
Steps 3 to 5, and the order of an uninstall, are apply.py's, shared with the MX role.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import LintError, UsageError
from . import files, maincf
from .apply import Role, apply, choose_services, remove
from .layout import HOST_STATE, RELAY_CONF, RELAY_UNIT, STATE_FILE, Plan, Target
from .source import parse_main_cf, source_dir
from .stage import main_cf_change, stage_main_cf, text_change
from .validate import pf_check, postfix_check_possible

RELAY_PARAMS = ("smtpd_milters", "non_smtpd_milters")  # all that relay/main.cf may set

ROLE = Role(starts=f"bouncegen install --role relay starts {RELAY_UNIT}", them="it", service="relay recorder",
            units_word="unit", host_word="relay", reload_what="Postfix", all_reloads=False,
            uninstall_reload_hint=True)


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
    main_cf, _, (sets, removes, conflicts, host) = stage_main_cf(params, target, plan, target.relay_state_dir,
                                                                 replace_params=replace_params)
    if conflicts and not replace_params:  # never for the two milter lists; kept for safety
        raise UsageError(["main.cf already sets parameters that bouncegen also sets, to other values:"] + conflicts)
    maincf.postconf_edit(plan.stage_pf, sets, removes)

    state = scratch / "state"
    state.mkdir()
    shutil.copyfile(rel / STATE_FILE, state / STATE_FILE)
    (state / HOST_STATE).write_text(maincf.dump_host_state(host), encoding="utf-8")

    for staged, live in ((rel / RELAY_CONF, target.relay_conf), (rel / RELAY_UNIT, target.units_dir / RELAY_UNIT),
                         (state / STATE_FILE, target.relay_state_dir / STATE_FILE),
                         (state / HOST_STATE, target.relay_state_dir / HOST_STATE)):
        text_change(plan, staged, live)
    plan.units = [RELAY_UNIT]
    main_cf_change(plan, main_cf)
    return plan


def _check(conf: Path) -> list[str]:
    return pf_check(conf, run_postfix_check=postfix_check_possible(conf))


def install(spec: str | Path, target: Target, *, dry_run: bool = False, reload: bool = False,
            replace_params: bool = False, backup_dir: Path | None = None,
            say: Callable[[str], None] = print, services="default", health_deadline: float = 30.0) -> bool:
    """Install the relay role of SPEC (inventory or rendered dir) into TARGET; True when files
    changed. SERVICES as in install.install: "default", None, or an object like services.Commands."""
    services = choose_services(target, services, ROLE, reload=reload, dry_run=dry_run)
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
        apply(plan, target, services, ROLE, target.relay_conf,
              lambda: [w for w in _check(target.pf_dir) if w not in set(base)],
              reload=reload, backup_dir=backup_dir, health_deadline=health_deadline, say=say)
        return True


def uninstall(target: Target, *, dry_run: bool = False, reload: bool = False, backup_dir: Path | None = None,
              say: Callable[[str], None] = print, services="default") -> bool:
    """Take the relay role out of TARGET: the recorder's entries out of main.cf (the host's values
    back) and Postfix reloaded first, then bouncegen-relay stopped and disabled, then its files
    removed. The ledger and its key stay: they are the site's, shared with the MX hosts."""
    services = choose_services(target, services, ROLE, reload=reload, dry_run=dry_run)
    main_cf = target.pf_dir / "main.cf"
    with tempfile.TemporaryDirectory(prefix="bouncegen-relay-uninstall-") as tmp:
        new_main = maincf.restored_main_cf(main_cf, target.relay_state_dir, Path(tmp), say)
        removes = [p for p in (target.relay_conf, target.units_dir / RELAY_UNIT) if p.is_file() and files.is_ours(p)]
        if target.relay_state_dir.is_dir():
            removes += [f for f in sorted(target.relay_state_dir.iterdir()) if f.is_file()]
        if new_main is None and not removes:
            say(f"nothing to remove: no relay role of bouncegen in {target.pf_dir} or {target.etc_dir}")
            return False
        units = [RELAY_UNIT] if target.units_dir / RELAY_UNIT in removes else []
        return remove(target, services, ROLE, main_cf, new_main, removes, units,
                      (target.relay_state_dir, target.etc_dir),
                      dry_run=dry_run, reload=reload, backup_dir=backup_dir, say=say)
