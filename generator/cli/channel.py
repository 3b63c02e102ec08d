"""``bouncegen channel``: arguments, help and the call into deploy/channel.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..deploy.channel import build, report
from .common import add_command


def run(args: argparse.Namespace) -> int:
    res = build(args.source, Path(args.output), version=args.version, gpg_key=args.gpg_key)
    report(res, args.channel, gpg_key=args.gpg_key)
    return 0


CHANNEL_EPILOG = """\
SOURCE is an inventory (rendered and linted on the fly) or a directory written by
'bouncegen render' (default: build). The archive carries the rule files (*.cf) of
SOURCE/spamassassin/, never the relay-rescue plugin (72_bouncegen.pre, BouncegenRescue.pm):
sa-update will not activate plugin code from a channel, so install the plugin once on each host
with 'bouncegen install'; the channel then keeps the rules current.

The archive is deterministic: the same files give the same bytes.

Without --version: the newest N.tar.gz in DIR if it holds the same files, else the next number
(1000001 in an empty directory). A version that exists with other content, or one below the
newest in DIR, is refused: hosts that have the newer one would never take it.

examples:
  bouncegen channel site.toml -o channel/                    # channel/1000001.tar.gz{,.sha256,.sha512}
  bouncegen channel build/ -o channel/ --gpg-key 0xABCD1234  # also .asc (gpg --detach-sign)
  # on each MX host:
  sa-update --nogpg --channel bouncegen --install 1000001.tar.gz && systemctl reload spamd

Exit status: 0 written or up to date; 1 the rendered files failed lint; 2 bad input or an existing
version with other content; 3 gpg missing or failed.
"""


HELP = "build an sa-update channel archive of the SpamAssassin files"
DESCRIPTION = ("Write DIR/N.tar.gz with N.tar.gz.sha256 and .sha512 (and .asc with --gpg-key):\n"
    "an sa-update channel update of the SpamAssassin files of SOURCE, for many MX hosts.")


def add_subcommand(sub) -> None:
    p = add_command(sub, "channel", help=HELP, description=DESCRIPTION, epilog=CHANNEL_EPILOG)
    p.add_argument("source", nargs="?", default="build", metavar="SOURCE",
                   help="inventory (TOML) or rendered directory (default: build)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="channel directory")
    p.add_argument("--version", type=int, metavar="N", help="version number (at least 3 digits)")
    p.add_argument("--gpg-key", metavar="KEYID", help="sign with this gpg key (writes N.tar.gz.asc)")
    p.add_argument("--channel", default="bouncegen", metavar="NAME",
                   help="channel name shown in the sa-update command (default: bouncegen)")
    p.set_defaults(func=run)
