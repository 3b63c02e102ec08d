"""The bouncegen command line: one module per subcommand's arguments and help, on top of every
room (renderer, runner, deploy, milter, ledger), which are plain libraries it calls.

argparse (standard library) rather than click: no extra dependency, and it already gives the
exit status 2 for usage errors that the rest of bouncegen uses for bad input.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import BouncegenError
from . import batv, channel, check, install, ledger, milter, render, report

TOP_EPILOG = """\
examples:
  bouncegen render site.toml -o build             # render and lint into build/
  bouncegen render site.toml --check              # exit 1 with a diff when build/ is out of date
  bouncegen install site.toml --dry-run           # what would change on this host, validated
  bouncegen install site.toml --reload            # install with backup and rollback, reload
  bouncegen channel site.toml -o channel/         # sa-update channel archive for many MX hosts
  bouncegen ledger import site.toml /var/log/mail.log   # record the Message-IDs our relays sent
  bouncegen report --since 2h --html storm.html   # the mail log: refusals, tempfails, sources, latency

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
    # The order of `bouncegen --help`.
    for command in (render, install, channel, ledger, batv, check, report, milter):
        command.add_subcommand(sub)
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
