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

    from . import channel, install  # their own subcommands: options, help and examples

    install.add_subcommand(sub)
    channel.add_subcommand(sub)
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
