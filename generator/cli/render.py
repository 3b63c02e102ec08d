"""``bouncegen render``: arguments, help and the call into the renderer."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..milter.settings import check_rendered
from ..renderer import inventory, render
from .common import add_command

RENDER_EPILOG = """\
examples:
  bouncegen render inventory.toml                 # writes build/spamassassin, build/postfix
  bouncegen render site.toml -o /tmp/out          # another output directory
  bouncegen render site.toml --check              # CI: is the committed build/ up to date?

Exit status: 0 written (with --check: up to date); 1 the rendered files failed spamassassin --lint
or postmap (nothing written), or with --check: the output would change (a unified diff on
stdout, nothing written); 2 the inventory is invalid (one line per problem, nothing written).
"""


def run(args: argparse.Namespace) -> int:
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
    written, notes = render.render(inv, Path(args.output), require_tools=require, do_lint=not args.no_lint,
                                   checks=(check_rendered,))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for rel in written:
        print(Path(args.output) / rel)
    return 0


HELP = "render an inventory into SpamAssassin and Postfix files"
DESCRIPTION = ("Render INVENTORY into DIR/spamassassin/ and DIR/postfix/, lint the result with the "
    "real spamassassin and postmap, then move it into place.")


def add_subcommand(sub) -> None:
    p = add_command(sub, "render", help=HELP, description=DESCRIPTION, epilog=RENDER_EPILOG)
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
    p.set_defaults(func=run)
