"""``bouncegen milter``: arguments, help and the start of the MX or relay milter."""

from __future__ import annotations

import argparse

from ..errors import EngineError
from ..milter import health, log, relay
from ..milter.settings import Settings
from .common import add_command

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


def run(args: argparse.Namespace) -> int:
    if args.check:
        print(health.check(args.config, timeout=args.timeout))
        return 0
    # Here, not at the top: mx and relay_milter import pymilter, the optional [milter] extra,
    # which no other command needs (tests/test_layers.py lists these imports and why).
    try:
        if relay.role(args.config) == "relay":  # settings file with role = "relay": record, never refuse
            relay_settings = relay.RelaySettings.load(args.config)
            log.setup(args.log, args.syslog_socket)
            from ..milter import relay_milter

            return relay_milter.run(relay_settings)
        settings = Settings.load(args.config)  # a bad file: one line, exit 2, before any socket
        log.setup(args.log, args.syslog_socket)
        from ..milter import mx

        return mx.run(settings)
    except ImportError as exc:
        if exc.name != "Milter":
            raise
        raise EngineError("bouncegen milter needs pymilter: apt install python3-milter, "
                          "or pip install 'bouncegen[milter]'") from None


HELP = "run the SMTP-time milter (SpamAssassin verdict of the ruleset at end of DATA)"
DESCRIPTION = ("Serve Postfix's smtpd_milters: ask spamd for the ruleset's verdict and refuse "
    "backscatter with 550 5.7.1; tempfail (4xx) on any error. Runs in the foreground until "
    "SIGTERM.")


def add_subcommand(sub) -> None:
    m = add_command(sub, "milter", help=HELP, description=DESCRIPTION, epilog=MILTER_EPILOG)
    m.add_argument("--config", required=True, metavar="FILE", help="the rendered milter/bouncegen-milter.conf")
    m.add_argument("--check", action="store_true",
                   help="do not serve: check the settings, spamd (PING) and a milter handshake on the "
                   "socket; one line, exit 0 when all pass")
    m.add_argument("--log", choices=("syslog", "stderr"), default="syslog",
                   help="where decisions go: syslog facility mail (default), or stderr")
    m.add_argument("--syslog-socket", default="/dev/log", metavar="PATH", help=argparse.SUPPRESS)
    m.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="with --check: how long spamd and the milter may take to answer (default: 5)")
    m.set_defaults(func=run)
