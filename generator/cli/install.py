"""``bouncegen install`` and ``bouncegen uninstall``: arguments, help and the calls into deploy/."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..deploy.install import install, uninstall
from ..deploy.layout import DEFAULT_POSTFIX_DIR, DEFAULT_SA_DIR, Target
from .common import add_command


def run(args: argparse.Namespace) -> int:
    target = Target.make(args.root, args.sa_dir, args.postfix_dir)
    install(args.source, target, dry_run=args.dry_run, reload=args.reload,
            replace_params=args.replace_params,
            backup_dir=Path(args.backup_dir) if args.backup_dir else None)
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
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


HELP = "install rendered files into SpamAssassin and Postfix, validated, with backup and rollback"
DESCRIPTION = ("Install the SpamAssassin files, Postfix maps and main.cf lines of SOURCE into\n"
    "this host (or --root): a diff first, validation with the real tools before anything\n"
    "takes effect, a backup, and rollback on any failure.")

UNINSTALL_HELP = "take bouncegen's files, units and main.cf lines out again; the host's lines back"
UNINSTALL_DESCRIPTION = ("Remove what bouncegen install put on this host (or --root): bouncegen's entry\n"
    "from smtpd_milters and its other main.cf lines (the host's earlier values written back),\n"
    "Postfix reloaded, bouncegen-milter and bouncegen-spamd stopped and disabled, and its files\n"
    "removed, with a backup.")


def add_subcommand(sub) -> None:
    p = add_command(sub, "install", help=HELP, description=DESCRIPTION, epilog=INSTALL_EPILOG)
    p.add_argument("source", nargs="?", default="build", metavar="SOURCE",
                   help="inventory (TOML) or rendered directory (default: build)")
    _target_arguments(p, "install")
    p.add_argument("-n", "--dry-run", action="store_true", help="show the diff and validate; write nothing")
    p.add_argument("--reload", action="store_true", help="reload postfix and spamd afterwards (only with --root /)")
    p.add_argument("--replace-params", action="store_true",
                   help="let bouncegen's main.cf values replace values the admin set")
    p.add_argument("--backup-dir", metavar="DIR", help=BACKUP_DIR_HELP)
    p.set_defaults(func=run)

    u = add_command(sub, "uninstall", help=UNINSTALL_HELP, description=UNINSTALL_DESCRIPTION, epilog=UNINSTALL_EPILOG)
    _target_arguments(u, "uninstall")
    u.add_argument("-n", "--dry-run", action="store_true", help="show what would change; change nothing")
    u.add_argument("--reload", action="store_true", help="reload postfix afterwards (only with --root /)")
    u.add_argument("--backup-dir", metavar="DIR", help=BACKUP_DIR_HELP)
    u.set_defaults(func=run_uninstall)
