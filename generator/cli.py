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
    require = bool(os.environ.get("CI")) or args.require_lint
    written, notes = render.render(inv, Path(args.output), require_tools=require, do_lint=not args.no_lint)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for rel in written:
        print(Path(args.output) / rel)
    return 0


def _milter(args: argparse.Namespace) -> int:
    from . import milter

    return milter.run(milter.Settings.load(args.config))


RENDER_EPILOG = """\
examples:
  bouncegen render inventory.toml                 # writes build/spamassassin, build/postfix
  bouncegen render site.toml -o /tmp/out          # another output directory

Exit status: 0 written; 1 the rendered files failed spamassassin --lint or postmap (nothing
written); 2 the inventory is invalid (one line per problem, nothing written).
"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="bouncegen",
        description="Render Postfix and SpamAssassin anti-backscatter configuration from one site inventory.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'bouncegen COMMAND --help' for a command's options and examples.",
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
    p.set_defaults(func=_render)

    m = sub.add_parser(
        "milter",
        help="run the SMTP-time milter (SpamAssassin verdict of the ruleset at end of DATA)",
        description="Serve Postfix's smtpd_milters: ask spamd for the ruleset's verdict and refuse "
        "backscatter with 550 5.7.1; tempfail (4xx) on any error. Runs in the foreground until "
        "SIGTERM.",
        epilog="example:\n  bouncegen milter --config build/milter/bouncegen-milter.conf\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("--config", required=True, metavar="FILE", help="the rendered milter/bouncegen-milter.conf")
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
