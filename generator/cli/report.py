"""``bouncegen report``: arguments, help and the call into the report (generator/report/)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .. import report
from ..report import html, page, terminal
from .common import add_command

REPORT_EPILOG = """\
examples:
  bouncegen report                                   # /var/log/mail.log
  bouncegen report /var/log/mail.log.1 /var/log/mail.log.2.gz --since 2026-12-01T18:00
  journalctl -o short-iso -t bouncegen-milter -t postfix/cleanup -t postfix/smtpd | bouncegen report -
  bouncegen report --since 2h --html /tmp/storm.html  # the last two hours, as a page with charts
  bouncegen report --json | jq .refused.by_family      # for a monitoring system

Reads bouncegen's milter lines, Postfix's reject lines caused by bouncegen's maps, Postfix's
milter-reject lines, the relay recorder's lines and the SMTP session summaries (SAV callouts);
plain or gzip files, "-" for standard input. Damaged lines (truncated, interleaved, not syslog)
are counted and skipped. docs/report.md describes every figure and the JSON keys.

Exit status: 0 a report was printed; 2 a log cannot be read, a time is malformed or --html lacks
matplotlib (python3-matplotlib, or the [html] extra).
"""


def run(args: argparse.Namespace) -> int:
    if args.html:
        page.require_charts()
    since = report.parse_time(args.since) if args.since else None
    until = report.parse_time(args.until) if args.until else None
    data = report.as_json(report.run(args.maillog or [report.DEFAULT_LOG], since=since, until=until))
    if args.html:
        html.write(data, args.html)
        print(f"{args.html}: written", file=sys.stderr)
    try:
        if args.json:
            json.dump(data, sys.stdout, indent=1, ensure_ascii=False)
            sys.stdout.write("\n")
        else:
            terminal.print_report(data, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # `bouncegen report | head`: the reader has what it wanted; no traceback, and none at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def add_subcommand(sub) -> None:
    r = add_command(sub, "report",
        help="summarise the mail log: refusals by family and stage, tempfails, rescues, sources, latency",
        description="Read mail logs (default /var/log/mail.log) and summarise what bouncegen did: messages "
        "judged, refused by family and stage, tempfailed and why, rescued and by what evidence, top "
        "client networks and sending hosts, volume per hour, milter latency, SAV callouts answered.",
        epilog=REPORT_EPILOG)
    r.add_argument("maillog", nargs="*", metavar="MAILLOG", help="mail log files (plain or .gz; - = standard input)")
    r.add_argument("--since", metavar="T", help="only lines at or after T (ISO 8601, or an age: 90m, 2h, 3d)")
    r.add_argument("--until", metavar="T", help="only lines before T (ISO 8601, or an age)")
    r.add_argument("--json", action="store_true", help="print the figures as JSON instead of tables")
    r.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page with charts to FILE")
    r.set_defaults(func=run)
