"""``bouncegen batv init|rotate``: the BATV key file from the command line.

- ``init INVENTORY`` creates ``[batv] key_file`` (mode 0600) with one key; an existing file is
  kept and checked, never replaced.
- ``rotate INVENTORY`` adds a new key that signs from now on; the older keys keep verifying, so
  the tags of mail sent before the rotation stay valid until they expire. Copy the file to every
  relay and MX host (relays first would leave the MX unable to verify the new key's tags for a
  moment: copy to the MX hosts first).
"""

from __future__ import annotations

import argparse

from ..batv import create_key_file, load_keys, rotate_key_file
from ..renderer.inventory import BatvSettings
from .common import add_group, add_inventory_command, inventory_table, key_file_path


def _settings(path: str) -> BatvSettings:
    return inventory_table(path, "batv", "add domains and key_file (see docs/batv.md)")


def _init(args: argparse.Namespace) -> int:
    path = key_file_path(args.inventory, "batv", _settings(args.inventory).key_file)
    if path.exists():
        keys = load_keys(path)  # an existing file must at least hold keys
        print(f"{path}: kept ({len(keys.keys)} key(s), key {keys.newest[0]} signs); add one with: bouncegen batv rotate")
    else:
        create_key_file(path)
        print(f"{path}: new BATV key file, mode 0600, key 1 signs; give it to the service user: chown bouncegen: {path}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    b = _settings(args.inventory)
    keys = rotate_key_file(b.key_file)
    print(f"{b.key_file}: key {keys.newest[0]} signs from now on; {len(keys.keys)} key(s) verify")
    return 0


BATV_EPILOG = """\
examples:
  bouncegen batv init site.toml && chown bouncegen: /etc/bouncegen/batv.keys
  bouncegen batv rotate site.toml        # then copy the file to every MX host, then the relays

The inventory's [batv] table names the signing domains, the key file, the days a tag is valid
and the exempt senders and recipients (docs/batv.md). The key file must be readable by the
service users only (mode 0600, owner bouncegen) and the same on every relay and MX host.

Exit status: 0 done; 1 the key file is unreadable or malformed; 2 bad input (inventory, [batv]).
"""


HELP = "BATV (signed envelope senders): create or rotate the key file"
DESCRIPTION = ("Bounce Address Tag Validation: our relays sign the envelope sender "
    "(prvs=KDDDSSSSSS=user@domain); the MX accepts bounces only to valid tags.")


def add_subcommand(sub) -> None:
    bsub = add_group(sub, "batv", help=HELP, description=DESCRIPTION, epilog=BATV_EPILOG)
    add_inventory_command(bsub, "init", _init, "batv", help="create the key file (never replaced)",
                          description="Create [batv] key_file with one key (mode 0600); an existing file is kept.",
                          epilog="example:\n  bouncegen batv init site.toml\n")
    add_inventory_command(bsub, "rotate", _rotate, "batv", help="add a new signing key; older keys keep verifying",
                          description="Add a key with the next key number (0-9, round); it signs from now on, "
                          "every older key still verifies (the one ten rotations old is dropped).",
                          epilog="example:\n  bouncegen batv rotate site.toml\n")
