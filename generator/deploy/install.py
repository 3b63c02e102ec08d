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
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as _dt
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import BouncegenError, EngineError, LintError, UsageError
from ..subcommand import add_command
from ..milter.health import CheckError
from ..renderer.rules import load_families, rule_names
from ..milter.settings import Settings
from . import amavis, files, maincf, services as svc
from .files import Backup, _atomic_copy, _read, _udiff  # noqa: F401 (re-exported for callers)
from .layout import (DEFAULT_POSTFIX_DIR, DEFAULT_SA_DIR, HOST_STATE, MAPS_SUBDIR, MILTER_CONF, STATE_FILE,  # noqa: F401
                     Plan, Target)
from .services import do_reload, reload_commands  # noqa: F401
from .source import parse_main_cf, source_dir
from .stage import installed_service_files, stage, unit_order
from .validate import _lint_site, _postfix_check_possible, _probe_maps, inactive_rules, pf_check, sa_lint, validate  # noqa: F401


def default_services(target: Target):
    """How this install starts services: systemd on a live host where it runs; nothing for a
    staging --root (the units are only written)."""
    if not target.live:
        return None
    if not svc.systemd_running():
        raise UsageError("systemd is not running on this host: bouncegen install starts bouncegen-spamd and "
                         "bouncegen-milter with systemctl; stage with --root DIR and start them yourself")
    return svc.Systemd()


def _backup(target: Target, backup_dir: Path | None) -> Backup:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return Backup((backup_dir or (target.root / "var/backups/bouncegen")) / stamp, target.root)


def _restore_services(services, units: list[str], was_active: dict[str, bool], say) -> None:
    """After a rollback of the files: the units that ran before run again on the old files,
    the others are stopped."""
    with contextlib.suppress(BouncegenError, OSError):
        services.prepare()
    for unit in reversed(units):
        with contextlib.suppress(BouncegenError, OSError):
            services.stop(unit, disable=not was_active.get(unit))
    for unit in units:
        if was_active.get(unit):
            try:
                services.restart(unit)
            except (BouncegenError, OSError) as exc:
                say(f"warning: {unit}: could not be restarted on the previous files: {exc}")


# ---------------------------------------------------------------------------------------------
# The commands.

def install(spec: str | Path, target: Target, *, dry_run: bool = False, reload: bool = False,
            replace_params: bool = False, backup_dir: Path | None = None,
            say: Callable[[str], None] = print, services="default", health_deadline: float = 30.0) -> bool:
    """Install SPEC (inventory or rendered dir) into TARGET. Returns True when files changed.

    SERVICES starts and stops bouncegen's units: "default" (systemd on a live host, nothing for
    a staging --root), None (nothing started), or an object like services.Commands."""
    if reload and not target.live and services == "default":
        raise UsageError("--reload only makes sense with --root / (the services of this host)")
    if services == "default":
        services = default_services(target) if not dry_run else None
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
            sa_base = pool.submit(_lint_site, target.sa_dir, scratch / "lint-base") if target.sa_dir.is_dir() else None
            sa_new = pool.submit(_lint_site, plan.stage_sa, scratch / "lint-stage")
            base = []
            if (target.pf_dir / "main.cf").is_file():
                base += pf_check(target.pf_dir, run_postfix_check=_postfix_check_possible(target.pf_dir))
            new = pf_check(plan.stage_pf, run_postfix_check=_postfix_check_possible(plan.stage_pf))
            new += _probe_maps(plan.stage_pf, types)
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
            + (", postfix check" if _postfix_check_possible(plan.stage_pf) else "")
            + ", postmap: no new warnings")
        _amavis(src, target, say)
        if dry_run:
            say("dry run: nothing written")
            return False

        backup = _backup(target, backup_dir)
        units = plan.units if services is not None else []
        was_active = {u: services.active(u) for u in units}
        try:
            files.write(plan.writes, plan.removes, backup)
            if units:
                say(f"services: starting {', '.join(units)}")
                say(svc.bring_up(services, units, target.milter_conf, deadline=health_deadline))
            if plan.main_cf:
                files.write([plan.main_cf], [], backup)
            problems = validate(target.sa_dir, target.pf_dir, types, scratch / "verify", baseline=base)
            if problems:
                raise LintError(["the installed configuration failed validation; rolled back:"] + problems)
        except BaseException as exc:
            left = backup.rollback()
            if units:
                _restore_services(services, units, was_active, say)
            if left:
                raise LintError([str(exc)] + left + [f"backup kept in {backup.dir}"]) from exc
            if isinstance(exc, CheckError):
                hint = services.log_hint(units[-1]) if units else ""
                raise LintError(f"the milter did not come up, Postfix was not wired to it, previous files "
                                f"restored: {exc.problems[0]}" + (f" (see {hint})" if hint else "")) from None
            if isinstance(exc, (LintError, EngineError)):
                raise
            if isinstance(exc, OSError):
                raise LintError(f"install failed, rolled back: {exc}") from exc
            raise
        n = len(plan.writes) + len(plan.removes) + (1 if plan.main_cf else 0)
        say(f"installed: {n} file{'s' if n != 1 else ''} changed; previous files saved in {backup.dir}")
        if plan.units and services is None:
            say("units staged in " + str(target.units_dir) + "; on the host: systemctl daemon-reload && "
                "systemctl enable --now " + " ".join(plan.units) + ", then bouncegen milter --check --config "
                "/etc/bouncegen/bouncegen-milter.conf, then postfix reload")
        if reload:
            do_reload(target, say)
        elif services is not None and plan.main_cf:
            svc.reload_postfix(target, say)  # wired to the milter that just passed its check
        else:
            say("reload the running services to use them:")
            for cmd in reload_commands(target):
                say("  " + " ".join(cmd))
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
    if reload and not target.live and services == "default":
        raise UsageError("--reload only makes sense with --root / (the services of this host)")
    if services == "default":
        services = default_services(target) if not dry_run else None
    previous_text = _read(target.maps_dir / STATE_FILE)
    main_cf = target.pf_dir / "main.cf"
    with tempfile.TemporaryDirectory(prefix="bouncegen-uninstall-") as tmp:
        scratch = Path(tmp)
        new_main = None
        if previous_text and main_cf.is_file():
            previous = dict(parse_main_cf(previous_text, str(target.maps_dir / STATE_FILE)))
            host = maincf.load_host_state(target.maps_dir / HOST_STATE)
            shutil.copy2(main_cf, scratch / "main.cf")
            (scratch / "master.cf").touch()
            current = maincf.postconf_n(scratch)
            sets, removes, notes = maincf.unmerge(previous, current, host, main_cf)
            for note in notes:
                say(f"note: {note}")
            maincf.postconf_edit(scratch, sets, removes)
            if _read(scratch / "main.cf") != _read(main_cf):
                new_main = scratch / "main.cf"
        removes = []
        if target.sa_dir.is_dir():
            removes += [f for f in sorted(target.sa_dir.iterdir()) if f.is_file() and files._is_ours(f)]
        if target.maps_dir.is_dir():
            removes += [f for f in sorted(target.maps_dir.iterdir()) if f.is_file()]
        ours = installed_service_files(target)
        removes += ours
        units = unit_order([f.name for f in ours if f.parent == target.units_dir])
        if new_main is None and not removes:
            say(f"nothing to remove: no bouncegen files in {target.sa_dir}, {target.pf_dir} or {target.etc_dir}")
            return False
        diff = _udiff(_read(main_cf), _read(new_main), main_cf) if new_main else []
        for f in removes:
            diff += [f"remove {f}\n"]
        say("".join(diff).rstrip("\n"))
        if dry_run:
            say("dry run: nothing changed")
            return False
        backup = _backup(target, backup_dir)
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
        for d in (target.maps_dir, target.etc_dir / "spamd", target.etc_dir):
            with contextlib.suppress(OSError):
                for sub in sorted((p for p in d.rglob("*") if p.is_dir()), reverse=True):
                    sub.rmdir()
                d.rmdir()
        if services is not None and units:
            with contextlib.suppress(BouncegenError, OSError):
                services.prepare()
        say(f"uninstalled: {len(removes) + (1 if new_main else 0)} files changed or removed; "
            f"previous files saved in {backup.dir}")
        return True


# ---------------------------------------------------------------------------------------------
# The subcommands (added to the bouncegen parser by cli.py).


def _run(args: argparse.Namespace) -> int:
    target = Target.make(args.root, args.sa_dir, args.postfix_dir)
    install(args.source, target, dry_run=args.dry_run, reload=args.reload,
            replace_params=args.replace_params,
            backup_dir=Path(args.backup_dir) if args.backup_dir else None)
    return 0


def _run_uninstall(args: argparse.Namespace) -> int:
    target = Target.make(args.root, args.sa_dir, args.postfix_dir)
    uninstall(target, dry_run=args.dry_run, reload=args.reload,
              backup_dir=Path(args.backup_dir) if args.backup_dir else None)
    return 0


INSTALL_EPILOG = """\
SOURCE is an inventory (rendered and linted on the fly into a temporary directory) or a
directory written by 'bouncegen render' (default: build).

What it does, in this order (nothing takes effect before every check passed):
  1. stages a copy of the SpamAssassin site directory and the Postfix config directory with the
     new files, merges the main.cf lines with 'postconf -c STAGE -e', runs postmap for hash maps;
  2. validates the staged copy: spamassassin --lint, postconf -n, postfix check (as root),
     postmap probes; warnings the current configuration already gives are not counted;
  3. prints a unified diff (same input twice: "nothing to change", nothing written);
  4. backs up every file it changes (ROOT/var/backups/bouncegen/<time>/) and writes each file
     with a rename: maps, rules, /etc/bouncegen/, units -- everything but main.cf;
  5. on this host (--root /, systemd running): creates the system user bouncegen if missing,
     systemctl daemon-reload, (re)starts bouncegen-spamd then bouncegen-milter, and waits for
     'bouncegen milter --check' (settings, spamd PING, a milter handshake) to pass; if it does
     not, every file is restored, Postfix is never wired to the milter, exit 1;
  6. only then writes main.cf (bouncegen's entry added to smtpd_milters), validates again and
     rolls back on any failure; reloads Postfix (with --reload also the host's spamd), or
     prints the reload commands (--root DIR: nothing is started).
Files: SA_DIR/72_bouncegen.cf (and any other file of SOURCE/spamassassin/),
POSTFIX_DIR/bouncegen/{header_checks,body_checks,null_sender(.db),main.cf,host-params.json},
/etc/bouncegen/bouncegen-milter.conf, /etc/bouncegen/spamd/ (SOURCE/spamd/, when rendered),
/etc/systemd/system/ (every unit of SOURCE/systemd/). main.cf: bouncegen's entry is added to the
host's smtpd_milters (the host's milters keep their order and settings; no global milter_*
parameter, no non_smtpd_milters). Another main.cf parameter that the admin set to another value
is refused unless --replace-params (merge it by hand, bouncegen's tables first). With a --root
other than / and no main.cf there, a new main.cf holding only bouncegen's lines is started.

examples:
  bouncegen install site.toml --dry-run           # the diff and the checks, nothing written
  bouncegen install site.toml --reload            # install on this host, reload postfix and spamd
  bouncegen install build/ --root /srv/mx1-image  # into a staged tree (or: make install DESTDIR=...)
  bouncegen install site.toml --sa-dir /etc/spamassassin   # Debian's own name (it also has the
                                                  # /etc/mail/spamassassin symlink)

Exit status: 0 installed or nothing to change; 1 validation failed (nothing installed, or rolled
back); 2 bad input (inventory, SOURCE, conflicting main.cf parameter, --reload with --root);
3 a required engine (spamassassin, postconf, postmap, postfix) is missing or failed.
"""


UNINSTALL_EPILOG = """\
examples:
  bouncegen uninstall --dry-run                   # what would be removed and restored
  bouncegen uninstall                             # on this host: Postfix unwired first, then the rest
  bouncegen uninstall --root /srv/mx1-image       # from a staged tree

The system user bouncegen is left in place (as Debian leaves the users of removed packages).
Exit status: 0 removed or nothing to remove; 2 bad input; 3 postconf/postfix missing or failed.
"""


BACKUP_DIR_HELP = "where backups go (default: ROOT/var/backups/bouncegen)"


def _target_arguments(p: argparse.ArgumentParser, verb: str) -> None:
    """--root, --sa-dir and --postfix-dir: the host (or a tree below ROOT) install and uninstall act on."""
    p.add_argument("--root", default="/", metavar="DIR", help=f"{verb} below DIR (default: /)")
    p.add_argument("--sa-dir", default=DEFAULT_SA_DIR, metavar="PATH",
                   help="SpamAssassin site directory, under ROOT (default: /etc/mail/spamassassin)")
    p.add_argument("--postfix-dir", default=DEFAULT_POSTFIX_DIR, metavar="PATH",
                   help="Postfix config directory, under ROOT (default: /etc/postfix)")


def add_subcommand(sub) -> None:
    p = add_command(sub, "install",
        help="install rendered files into SpamAssassin and Postfix, validated, with backup and rollback",
        description="Install the SpamAssassin files, Postfix maps and main.cf lines of SOURCE into\n"
        "this host (or --root): a diff first, validation with the real tools before anything\n"
        "takes effect, a backup, and rollback on any failure.",
        epilog=INSTALL_EPILOG)
    p.add_argument("source", nargs="?", default="build", metavar="SOURCE",
                   help="inventory (TOML) or rendered directory (default: build)")
    _target_arguments(p, "install")
    p.add_argument("-n", "--dry-run", action="store_true", help="show the diff and validate; write nothing")
    p.add_argument("--reload", action="store_true", help="reload postfix and spamd afterwards (only with --root /)")
    p.add_argument("--replace-params", action="store_true",
                   help="let bouncegen's main.cf values replace values the admin set")
    p.add_argument("--backup-dir", metavar="DIR", help=BACKUP_DIR_HELP)
    p.set_defaults(func=_run)

    u = add_command(sub, "uninstall",
        help="take bouncegen's files, units and main.cf lines out again; the host's lines back",
        description="Remove what bouncegen install put on this host (or --root): bouncegen's entry\n"
        "from smtpd_milters and its other main.cf lines (the host's earlier values written back),\n"
        "Postfix reloaded, bouncegen-milter and bouncegen-spamd stopped and disabled, and its files\n"
        "removed, with a backup.",
        epilog=UNINSTALL_EPILOG)
    _target_arguments(u, "uninstall")
    u.add_argument("-n", "--dry-run", action="store_true", help="show what would change; change nothing")
    u.add_argument("--reload", action="store_true", help="reload postfix afterwards (only with --root /)")
    u.add_argument("--backup-dir", metavar="DIR", help=BACKUP_DIR_HELP)
    u.set_defaults(func=_run_uninstall)
