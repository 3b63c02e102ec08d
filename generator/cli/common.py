"""What every subcommand module of the command line shares: how a subcommand is declared."""

from __future__ import annotations

import argparse


def add_command(sub, name: str, *, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A subparser NAME of ``sub`` whose description and epilog keep their line breaks."""
    return sub.add_parser(name, help=help, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_inventory_command(sub, name: str, run, table: str, *, help: str, description: str,
                          epilog: str) -> argparse.ArgumentParser:
    """A subcommand NAME of ``sub`` whose first argument is an inventory with a [TABLE] table
    (``bouncegen ledger init``, ``bouncegen batv rotate``...), run by RUN."""
    p = add_command(sub, name, help=help, description=description, epilog=epilog)
    p.add_argument("inventory", metavar="INVENTORY", help=f"the site inventory (TOML) with a [{table}] table")
    p.set_defaults(func=run)
    return p
