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
from .subcommand import add_command


def _render(args: argparse.Namespace) -> int:
    from .renderer import inventory, render

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


def _milter(args: argparse.Namespace) -> int:
    from . import milter
    from .milter import health, log, relay

    if args.check:
        print(health.check(args.config, timeout=args.timeout))
        return 0
    if relay.role(args.config) == "relay":  # settings file with role = "relay": record, never refuse
        settings = relay.RelaySettings.load(args.config)
        log.setup(args.log, args.syslog_socket)
        return relay.run(settings)
    settings = milter.Settings.load(args.config)  # a bad file: one line, exit 2, before any socket
    log.setup(args.log, args.syslog_socket)
    return milter.run(settings)


RENDER_EPILOG = """\
examples:
  bouncegen render inventory.toml                 # writes build/spamassassin, build/postfix
  bouncegen render site.toml -o /tmp/out          # another output directory
  bouncegen render site.toml --check              # CI: is the committed build/ up to date?

Exit status: 0 written (with --check: up to date); 1 the rendered files failed spamassassin --lint
or postmap (nothing written), or with --check: the output would change (a unified diff on
stdout, nothing written); 2 the inventory is invalid (one line per problem, nothing written).
"""


TOP_EPILOG = """\
examples:
  bouncegen render site.toml -o build             # render and lint into build/
  bouncegen render site.toml --check              # exit 1 with a diff when build/ is out of date
  bouncegen install site.toml --dry-run           # what would change on this host, validated
  bouncegen install site.toml --reload            # install with backup and rollback, reload
  bouncegen channel site.toml -o channel/         # sa-update channel archive for many MX hosts
  bouncegen ledger import site.toml /var/log/mail.log   # record the Message-IDs our relays sent

Run 'bouncegen COMMAND --help' for a command's options, examples and exit status.
"""


def _check(args: argparse.Namespace) -> int:
    from .runner import check, report

    opts = check.Options(inventory=Path(args.inventory), corpus=Path(args.corpus),
                         manifest=Path(args.manifest) if args.manifest else None, jobs=args.jobs,
                         log=Path(args.log) if args.log else None, json=args.json, lint=not args.no_lint,
                         profile=args.profile)
    try:
        result = check.run(opts)
    except check.Terminated:
        print("error: terminated (SIGTERM); spamd stopped, temporary files removed", file=sys.stderr)
        return 143
    if opts.log:
        report.write_log(result, opts.log)
    if args.junit:
        report.write_junit(result, Path(args.junit))
    if opts.json:
        report.write_json(result, sys.stdout)
    else:
        report.print_tables(result, sys.stdout)
    return result.exit_status


CHECK_EPILOG = """\
examples:
  bouncegen check --inventory corpus/inventory.toml --corpus corpus
  bouncegen check --inventory site.toml --corpus mails --manifest mails/labels.tsv -j 4 --log check.log
  bouncegen check --inventory site.toml --corpus corpus --json > check.json
  bouncegen check --inventory site.toml --corpus corpus --junit check.xml   # a CI page per sample

Labels: without --manifest, corpus/backscatter/<cat>/*.eml must be blocked (category
"backscatter/<cat>"), corpus/legit/<cat>/*.eml and corpus/ham/*.eml must pass. A manifest is a
TSV file with a header and the columns path (relative to DIR), category, expected (block|pass).

A message is blocked when a Postfix table refuses it (postmap, wired as the rendered main.cf
says) or when the BG_* verdict rules add >= 5 points in spamd (policy.scores = "tag": when any
scored BG_* rule fires).

Exit status: 0 every verdict as labelled; 1 some verdict differs (or a message could not be
judged); 2 usage, manifest or inventory error, or spamd could not use the inventory's [ledger] for
some message (BG_LEDGER_UNAVAIL cancelled its verdict; one line on stderr names the cause: store
unreachable, permission or key); 3 an engine is missing or failed (e.g. spamd died during the run:
no table is printed then).
"""


MILTER_EPILOG = """\
examples:
  bouncegen milter --config /etc/bouncegen/bouncegen-milter.conf            # as the unit runs it
  bouncegen milter --config build/milter/bouncegen-milter.conf --log stderr # in the foreground
  bouncegen milter --config /etc/bouncegen/bouncegen-milter.conf --check    # for install and monitoring
  bouncegen milter --config build/relay/bouncegen-relay.conf                # relay: record Message-IDs

Log: one line per decision, at syslog facility mail (mail.log), the queue ID first:
  QUEUEID: client=NAME[ADDR], verdict=accept|reject|tempfail, points=P, rules=R,..., ms=N, tests=...
Exempt mail (our relays, exempt networks, SMTP AUTH, local submission) is accepted at MAIL FROM
with reason=exempt|auth|local; tempfails (spamd down or slow) are at warning level with reason=.

Exit status: 0 stopped by SIGTERM/SIGINT (--check: every check passed, one OK line); 1 the socket
could not be opened (--check: spamd or the milter socket failed); 2 the settings file is bad.
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

    p = add_command(sub, "render",
        help="render an inventory into SpamAssassin and Postfix files",
        description="Render INVENTORY into DIR/spamassassin/ and DIR/postfix/, lint the result with the "
        "real spamassassin and postmap, then move it into place.",
        epilog=RENDER_EPILOG)
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

    from .deploy import channel
    from .deploy import install  # their own subcommands: options, help and examples

    from .ledger import commands as ledger_commands
    from .batv import commands as batv_commands

    install.add_subcommand(sub)
    channel.add_subcommand(sub)
    ledger_commands.add_subcommand(sub)
    batv_commands.add_subcommand(sub)
    c = add_command(sub, "check",
        help="run a labelled corpus through the rendered rules on the real spamd and postmap",
        description="Render INVENTORY into a temporary directory, start one private spamd, feed every message "
        "of the corpus through spamc -x and the Postfix tables through postmap, and compare each verdict "
        "with its label.",
        epilog=CHECK_EPILOG)
    c.add_argument("--inventory", required=True, metavar="INV", help="the site inventory (TOML)")
    c.add_argument("--corpus", required=True, metavar="DIR", help="the directory of sample mails")
    c.add_argument("--manifest", metavar="FILE.tsv", help="labels: TSV with columns path, category, expected")
    c.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                   help="spamc workers and spamd children (default: 2 x CPU cores)")
    c.add_argument("--profile", choices=("lean", "full"), default="lean",
                   help="spamd's rules: lean = the rendered lean profile the milter's spamd runs (default; same "
                   "verdicts, faster), full = the ruleset beside the whole stock rule set")
    c.add_argument("--json", action="store_true", help="print JSON (every message's record) instead of tables")
    c.add_argument("--log", metavar="FILE", help="write the per-message log (mass-check style) to FILE")
    c.add_argument("--junit", metavar="FILE",
                   help="write JUnit XML to FILE for a CI page: one test case per message, named by its path")
    c.add_argument("--no-lint", action="store_true", help="skip spamassassin --lint / postmap lint of the rendered files")
    c.set_defaults(func=_check)
    m = add_command(sub, "milter",
        help="run the SMTP-time milter (SpamAssassin verdict of the ruleset at end of DATA)",
        description="Serve Postfix's smtpd_milters: ask spamd for the ruleset's verdict and refuse "
        "backscatter with 550 5.7.1; tempfail (4xx) on any error. Runs in the foreground until "
        "SIGTERM.",
        epilog=MILTER_EPILOG)
    m.add_argument("--config", required=True, metavar="FILE", help="the rendered milter/bouncegen-milter.conf")
    m.add_argument("--check", action="store_true",
                   help="do not serve: check the settings, spamd (PING) and a milter handshake on the "
                   "socket; one line, exit 0 when all pass")
    m.add_argument("--log", choices=("syslog", "stderr"), default="syslog",
                   help="where decisions go: syslog facility mail (default), or stderr")
    m.add_argument("--syslog-socket", default="/dev/log", metavar="PATH", help=argparse.SUPPRESS)
    m.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="with --check: how long spamd and the milter may take to answer (default: 5)")
    m.set_defaults(func=_milter)
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
