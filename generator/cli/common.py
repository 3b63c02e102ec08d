"""What every subcommand module of the command line shares: how a subcommand is declared."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..renderer import inventory


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


def add_group(sub, name: str, *, help: str, description: str, epilog: str):
    """A subcommand NAME of ``sub`` that has subcommands of its own (``bouncegen ledger init``...):
    the object to add them to."""
    p = add_command(sub, name, help=help, description=description, epilog=epilog)
    return p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)


def inventory_table(path: str, table: str, needs: str) -> Any:
    """The settings of the inventory's [TABLE] table, or UsageError: what the table NEEDS."""
    settings = getattr(inventory.load(path), table)
    if settings is None:
        raise UsageError(f"{path}: no [{table}] table: {needs}")
    return settings


def key_file_path(path: str, table: str, key_file: str) -> Path:
    """[TABLE] key_file as a path whose directory exists, or UsageError (no directory is created:
    its owner and mode are the admin's choice)."""
    key_path = Path(key_file)
    if not key_path.parent.is_dir():
        raise UsageError(f"{path}: {table}.key_file: directory {key_path.parent} does not exist")
    return key_path
