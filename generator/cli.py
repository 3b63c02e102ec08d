"""The bouncegen command line.

argparse (standard library) rather than click: no extra dependency, and it already gives the
exit status 2 for usage errors that the rest of bouncegen uses for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .errors import BouncegenError


def _render(args: argparse.Namespace) -> int:
    from . import inventory, render

    inv = inventory.load(args.inventory)
    if args.check:
        # For pipelines that keep the rendered output under version control: nothing is written.
        lines = render.diff(inv, Path(args.output))
        if lines:
            sys.stdout.write("".join(lines))
            print(f"{args.output}: out of date; run: bouncegen render {args.inventory} -o {args.output}", file=sys.stderr)
            return 1
        print(f"{args.output}: up to date", file=sys.stderr)
        return 0
    require = bool(os.environ.get("CI")) or args.require_lint
    written, notes = render.render(inv, Path(args.output), require_tools=require, do_lint=not args.no_lint)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for rel in written:
        print(Path(args.output) / rel)
    return 0


RENDER_EPILOG = """\
examples:
  bouncegen render inventory.toml                 # writes build/spamassassin, build/postfix
  bouncegen render site.toml -o /tmp/out          # another output directory
  bouncegen render site.toml --check              # CI: is the committed build/ up to date?

Exit status: 0 written (with --check: up to date); 1 the rendered files failed spamassassin --lint
or postmap (nothing written), or with --check: the output would change (a unified diff on
stdout, nothing written); 2 the inventory is invalid (one line per problem, nothing written).
"""


def _install(args: argparse.Namespace) -> int:
    from . import install

    target = install.Target.make(args.root, args.sa_dir, args.postfix_dir)
    install.install(args.source, target, dry_run=args.dry_run, reload=args.reload,
                    replace_params=args.replace_params,
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
  4. backs up every file it changes (ROOT/var/backups/bouncegen/<time>/), writes each file with a
     rename (maps first, main.cf last), validates again and rolls back on any failure;
  5. prints the reload commands, or runs them with --reload.
Files: SA_DIR/72_bouncegen.cf (and any other file of SOURCE/spamassassin/), and
POSTFIX_DIR/bouncegen/{header_checks,body_checks,null_sender(.db),main.cf}; main.cf gets the
parameter lines. A main.cf parameter that the admin set to another value is refused unless
--replace-params (merge it by hand, bouncegen's tables first). With a --root other than / and no
main.cf there, a new main.cf holding only bouncegen's lines is started.

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


def _channel(args: argparse.Namespace) -> int:
    from . import channel

    res = channel.build(args.source, Path(args.output), version=args.version, gpg_key=args.gpg_key)
    channel.report(res, args.channel, gpg_key=args.gpg_key)
    return 0


CHANNEL_EPILOG = """\
SOURCE is an inventory (rendered and linted on the fly) or a directory written by
'bouncegen render' (default: build). Every file of SOURCE/spamassassin/ goes into the archive:
sa-update includes its *.cf and *.pre files; loadplugin lines stay commented out unless the hosts
run sa-update --allowplugins. The archive is deterministic: the same files give the same bytes.

Without --version: the newest N.tar.gz in DIR if it holds the same files, else the next number
(1000001 in an empty directory). A version that exists with other content is refused.

examples:
  bouncegen channel site.toml -o channel/                    # channel/1000001.tar.gz{,.sha256,.sha512}
  bouncegen channel build/ -o channel/ --gpg-key 0xABCD1234  # also .asc (gpg --detach-sign)
  # on each MX host:
  sa-update --nogpg --channel bouncegen --install 1000001.tar.gz && systemctl reload spamd

Exit status: 0 written or up to date; 1 the rendered files failed lint; 2 bad input or an existing
version with other content; 3 gpg missing or failed.
"""


TOP_EPILOG = """\
examples:
  bouncegen render site.toml -o build             # render and lint into build/
  bouncegen render site.toml --check              # exit 1 with a diff when build/ is out of date
  bouncegen install site.toml --dry-run           # what would change on this host, validated
  bouncegen install site.toml --reload            # install with backup and rollback, reload
  bouncegen channel site.toml -o channel/         # sa-update channel archive for many MX hosts

Run 'bouncegen COMMAND --help' for a command's options, examples and exit status.
"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="bouncegen",
        description="Render Postfix and SpamAssassin anti-backscatter configuration from one site inventory.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=TOP_EPILOG,
    )
    top.add_argument("--version", action="version", version=f"bouncegen {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "render",
        help="render an inventory into SpamAssassin and Postfix files",
        description="Render INVENTORY into DIR/spamassassin/ and DIR/postfix/, lint the result with the "
        "real spamassassin and postmap, then move it into place.",
        epilog=RENDER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inventory", metavar="INVENTORY", help="the site inventory (TOML)")
    p.add_argument("-o", "--output", default="build", metavar="DIR", help="output directory (default: build)")
    p.add_argument("--no-lint", action="store_true", help="skip the lint with spamassassin and postmap")
    p.add_argument(
        "--require-lint",
        action="store_true",
        help="fail when spamassassin or postmap is missing instead of skipping their lint (default under CI=true)",
    )
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 with a unified diff when DIR is not up to date")
    p.set_defaults(func=_render)

    p = sub.add_parser(
        "install",
        help="install rendered files into SpamAssassin and Postfix, validated, with backup and rollback",
        description="Install the SpamAssassin files, Postfix maps and main.cf lines of SOURCE into\n"
        "this host (or --root): a diff first, validation with the real tools before anything\n"
        "takes effect, a backup, and rollback on any failure.",
        epilog=INSTALL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", nargs="?", default="build", metavar="SOURCE",
                   help="inventory (TOML) or rendered directory (default: build)")
    p.add_argument("--root", default="/", metavar="DIR", help="install below DIR (default: /)")
    p.add_argument("--sa-dir", default="/etc/mail/spamassassin", metavar="PATH",
                   help="SpamAssassin site directory, under ROOT (default: /etc/mail/spamassassin)")
    p.add_argument("--postfix-dir", default="/etc/postfix", metavar="PATH",
                   help="Postfix config directory, under ROOT (default: /etc/postfix)")
    p.add_argument("-n", "--dry-run", action="store_true", help="show the diff and validate; write nothing")
    p.add_argument("--reload", action="store_true", help="reload postfix and spamd afterwards (only with --root /)")
    p.add_argument("--replace-params", action="store_true",
                   help="let bouncegen's main.cf values replace values the admin set")
    p.add_argument("--backup-dir", metavar="DIR", help="where backups go (default: ROOT/var/backups/bouncegen)")
    p.set_defaults(func=_install)

    p = sub.add_parser(
        "channel",
        help="build an sa-update channel archive of the SpamAssassin files",
        description="Write DIR/N.tar.gz with N.tar.gz.sha256 and .sha512 (and .asc with --gpg-key):\n"
        "an sa-update channel update of the SpamAssassin files of SOURCE, for many MX hosts.",
        epilog=CHANNEL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", nargs="?", default="build", metavar="SOURCE",
                   help="inventory (TOML) or rendered directory (default: build)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="channel directory")
    p.add_argument("--version", type=int, metavar="N", help="version number (at least 3 digits)")
    p.add_argument("--gpg-key", metavar="KEYID", help="sign with this gpg key (writes N.tar.gz.asc)")
    p.add_argument("--channel", default="bouncegen", metavar="NAME",
                   help="channel name shown in the sa-update command (default: bouncegen)")
    p.set_defaults(func=_channel)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except BouncegenError as exc:
        for line in exc.problems:
            print(f"error: {line}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
