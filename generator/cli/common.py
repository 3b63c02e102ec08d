"""What every subcommand module of the command line shares: how a subcommand is declared."""

from __future__ import annotations

import argparse


def add_command(sub, name: str, *, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A subparser NAME of ``sub`` whose description and epilog keep their line breaks."""
    return sub.add_parser(name, help=help, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
