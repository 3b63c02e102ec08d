"""``bouncegen install`` and ``bouncegen uninstall``: put the rendered output on a host (or under a
staging --root) the way a careful mail admin would, and take it out again.

Order of work, so that a broken rule set never reaches a running MX, Postfix is never wired to a
milter that does not answer, and a failure leaves the old configuration working:

1. Stage (stage.py): a copy of the SpamAssassin site directory and the Postfix config directory
   with the new files, main.cf merged (maincf.py: bouncegen's entry added to the host's
   smtpd_milters, its other lines), the maps built; the milter settings, spamd profile and
   systemd units planned.
2. Validate the staged copy with the real tools (validate.py); only new warnings count.
3. Show a unified diff. Same input twice: nothing to change.
4. Back up and write every file except main.cf (files.py): maps, rules, /etc/bouncegen/,
   the units.
5. Services (services.py), when this install manages them (systemd on this host, or the start
   commands a caller passes): the system user, daemon-reload, spamd then the milter
   (re)started, and ``bouncegen milter --check`` must pass: settings, spamd PING, a milter
   handshake on the socket. If it does not, everything is rolled back and Postfix is never
   wired to the milter.
6. Only then main.cf, validated again; then Postfix reloaded (--reload), or the commands printed.

With a staging --root nothing is started: the units are written to ROOT/etc/systemd/system.
Steps 4 to 6, and the order of an uninstall, are apply.py's, shared with the relay role (relay.py).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import LintError
from ..milter.settings import Settings
from ..renderer.rules import load_families, rule_names
from . import amavis, files, maincf
from .apply import Role, apply, choose_services, remove
from .layout import MILTER_CONF, Target
from .source import source_dir
from .stage import installed_service_files, stage, unit_order
from .validate import inactive_rules, lint_site, pf_check, postfix_check_possible, probe_maps, validate

ROLE = Role(starts="bouncegen install starts bouncegen-spamd and bouncegen-milter", them="them", service="milter",
            units_word="units", host_word="host", reload_what="the running services", all_reloads=True,
            uninstall_reload_hint=False)


# ---------------------------------------------------------------------------------------------
# The commands.

def install(spec: str | Path, target: Target, *, dry_run: bool = False, reload: bool = False,
            replace_params: bool = False, backup_dir: Path | None = None,
            say: Callable[[str], None] = print, services="default", health_deadline: float = 30.0) -> bool:
    """Install SPEC (inventory or rendered dir) into TARGET. Returns True when files changed.

    SERVICES starts and stops bouncegen's units: "default" (systemd on a live host, nothing for
    a staging --root), None (nothing started), or an object like services.Commands."""
    services = choose_services(target, services, ROLE, reload=reload, dry_run=dry_run)
    with contextlib.ExitStack() as stack:
        src = source_dir(spec, stack, do_lint=False)  # the staged copy is linted below, in context
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bouncegen-install-")))
        plan, types = stage(src, target, scratch, replace_params=replace_params)
        for note in plan.notes:
            say(f"note: {note}")
        if plan.empty:
            say(f"nothing to change: {target.sa_dir}, {target.pf_dir} and {target.etc_dir} already hold this rendering")
            _amavis(src, target, say)
            return False
        say("".join(plan.diff).rstrip("\n"))

        # The current configuration's warnings and the staged copy's. The two spamassassin
        # --lint runs (seconds each) go side by side; postfix check creates missing queue
        # directories, so two of them must not run at once.
        rename = {plan.stage_sa: target.sa_dir, plan.stage_pf: target.pf_dir}
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            sa_base = pool.submit(lint_site, target.sa_dir, scratch / "lint-base") if target.sa_dir.is_dir() else None
            sa_new = pool.submit(lint_site, plan.stage_sa, scratch / "lint-stage")
            base = []
            if (target.pf_dir / "main.cf").is_file():
                base += pf_check(target.pf_dir, run_postfix_check=postfix_check_possible(target.pf_dir))
            new = pf_check(plan.stage_pf, run_postfix_check=postfix_check_possible(plan.stage_pf))
            new += probe_maps(plan.stage_pf, types)
            base += sa_base.result() if sa_base else []
            new += sa_new.result()
        # The scored rules are enough to tell whether SpamAssassin loads the ruleset at all.
        scored = [n for n in rule_names(load_families()) if not n.startswith("__")]
        inactive = inactive_rules(plan.stage_sa, scored, scratch / "rules")
        if inactive:
            say(f"warning: SpamAssassin with {target.sa_dir} as it is does not define these rules, so "
                f"bouncegen's rules will not fire: {', '.join(inactive)} (is the VBounce plugin loaded by a "
                ".pre file, as v320.pre does: loadplugin Mail::SpamAssassin::Plugin::VBounce?)")
        for old, repl in rename.items():
            new = [w.replace(str(old), str(repl)) for w in new]
        problems = [w for w in new if w not in set(base)]
        if problems:
            raise LintError(["the new configuration failed validation; nothing was installed:"] + problems)
        say("validated: spamassassin --lint, postconf -n"
            + (", postfix check" if postfix_check_possible(plan.stage_pf) else "")
            + ", postmap: no new warnings")
        _amavis(src, target, say)
        if dry_run:
            say("dry run: nothing written")
            return False
        apply(plan, target, services, ROLE, target.milter_conf,
              lambda: validate(target.sa_dir, target.pf_dir, types, scratch / "verify", baseline=base),
              reload=reload, backup_dir=backup_dir, health_deadline=health_deadline, say=say)
        return True


def _amavis(src: Path, target: Target, say: Callable[[str], None]) -> None:
    """On a host with amavisd-new: its spam levels, and whether one verdict reaches them."""
    found = amavis.detect(target)
    if found is None:
        return
    # The points of one verdict as rendered (policy.points): the milter's settings list them.
    scores = Settings.load(src / "milter" / MILTER_CONF).scores
    for line in amavis.report(found, max(scores.values())):
        say(line)


def uninstall(target: Target, *, dry_run: bool = False, reload: bool = False, backup_dir: Path | None = None,
              say: Callable[[str], None] = print, services="default") -> bool:
    """Take every file bouncegen installed out of TARGET and put the host's main.cf lines back:
    Postfix first (unwired from the milter and reloaded), then the services stopped, then the
    files removed. The system user stays (Debian leaves system users of removed packages)."""
    services = choose_services(target, services, ROLE, reload=reload, dry_run=dry_run)
    main_cf = target.pf_dir / "main.cf"
    with tempfile.TemporaryDirectory(prefix="bouncegen-uninstall-") as tmp:
        new_main = maincf.restored_main_cf(main_cf, target.maps_dir, Path(tmp), say)
        removes = []
        if target.sa_dir.is_dir():
            removes += [f for f in sorted(target.sa_dir.iterdir()) if f.is_file() and files.is_ours(f)]
        if target.maps_dir.is_dir():
            removes += [f for f in sorted(target.maps_dir.iterdir()) if f.is_file()]
        ours = installed_service_files(target)
        removes += ours
        units = unit_order([f.name for f in ours if f.parent == target.units_dir])
        if new_main is None and not removes:
            say(f"nothing to remove: no bouncegen files in {target.sa_dir}, {target.pf_dir} or {target.etc_dir}")
            return False
        return remove(target, services, ROLE, main_cf, new_main, removes, units,
                      (target.maps_dir, target.etc_dir / "spamd", target.etc_dir),
                      dry_run=dry_run, reload=reload, backup_dir=backup_dir, say=say)
