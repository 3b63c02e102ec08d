"""``bouncegen check``: arguments, help and the call into the corpus runner."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..report.page import require_charts
from ..runner import check, report
from .common import add_command

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


def run(args: argparse.Namespace) -> int:
    if args.html:
        require_charts()  # before the run, not after it
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
    if args.html:
        report.write_html(result, Path(args.html))
    if opts.json:
        report.write_json(result, sys.stdout)
    else:
        report.print_tables(result, sys.stdout)
    return result.exit_status


HELP = "run a labelled corpus through the rendered rules on the real spamd and postmap"
DESCRIPTION = ("Render INVENTORY into a temporary directory, start one private spamd, feed every message "
    "of the corpus through spamc -x and the Postfix tables through postmap, and compare each verdict "
    "with its label.")


def add_subcommand(sub) -> None:
    c = add_command(sub, "check", help=HELP, description=DESCRIPTION, epilog=CHECK_EPILOG)
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
    c.add_argument("--html", metavar="FILE",
                   help="write a page to FILE: per-category and per-rule hits as charts, the wrong verdicts")
    c.add_argument("--no-lint", action="store_true", help="skip spamassassin --lint / postmap lint of the rendered files")
    c.set_defaults(func=run)
