"""``bouncegen ledger init|import|stats|check``: the sent-mail ledger from the command line.

- ``init INVENTORY`` creates the site key (``[ledger] key_file``: 32 random bytes as 64 hex
  characters, mode 0600, never replaced) and the store (``[ledger] store``).
- ``import INVENTORY MAILLOG...`` records the Message-IDs Postfix's cleanup logged on our relays
  (ledger/maillog.py says which lines and prefixes).
- ``stats INVENTORY`` prints the live entries, the oldest recorded day and the store's size.
- ``check INVENTORY [--user USER]`` tests the store's rights as each reader's user (ledger/access.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ..errors import UsageError
from ..ledger import access, keys
from ..ledger.maillog import import_logs
from ..ledger.store import Store, open_store
from ..renderer.inventory import LedgerSettings
from .common import add_group, add_inventory_command, inventory_table, key_file_path


def _settings(path: str) -> LedgerSettings:
    return inventory_table(path, "ledger", "add store and key_file (see docs/ledger.md)")


def _open_store(led: LedgerSettings) -> Store:
    key = keys.load_key(led.key_file)
    return open_store(led.store, key, led.days)


def _day_text(day: int | None) -> str:
    if day is None:
        return "-"
    return f"{dt.date(1970, 1, 1) + dt.timedelta(days=day)} (day {day})"


def _init(args: argparse.Namespace) -> int:
    led = _settings(args.inventory)
    key_path = key_file_path(args.inventory, "ledger", led.key_file)
    if key_path.exists():
        keys.load_key(key_path)  # an existing key must at least be a key
        print(f"{key_path}: key exists, kept (a ledger key is never replaced)")
    else:
        keys.create_key_file(key_path)
        print(f"{key_path}: new ledger key, mode 0600; give it to the service user: "
              f"chown bouncegen: {key_path}")
    with _open_store(led) as store:
        st = store.stats()
    print(f"{led.store_shown}: ready, {st.entries} entries, {led.days} days")
    return 0


def _import(args: argparse.Namespace) -> int:
    led = _settings(args.inventory)
    for path in args.maillog:
        if path != "-" and not Path(path).is_file():
            raise UsageError(f"{path}: no such file" if not Path(path).exists() else f"{path}: not a file")
    with _open_store(led) as store:
        counts = import_logs(store, args.maillog)
    print(f"recorded {counts.recorded} message-ids, skipped {counts.skipped} "
          f"({counts.expired} older than {led.days} days, {counts.empty} without an ID); "
          f"{counts.undated} without a time stamp recorded as today; "
          f"{counts.lines} lines read from {len(args.maillog)} file(s)")
    return 0


def _stats(args: argparse.Namespace) -> int:
    led = _settings(args.inventory)
    with _open_store(led) as store:
        st = store.stats()
    per = f" ({st.size_bytes / st.entries:.1f} bytes per entry)" if st.entries else ""
    print(f"store: {led.store_shown}")
    print(f"entries: {st.entries}")
    print(f"oldest day: {_day_text(st.oldest_day)}")
    print(f"size: {st.size_bytes} bytes{per}")
    print(f"days: {led.days}")
    return 0


def _check(args: argparse.Namespace) -> int:
    led = _settings(args.inventory)
    ok, problems = access.check(led.store, led.key_file, user=args.user)
    for line in ok:
        print(f"ok: {line}")
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    return 1 if problems else 0


LEDGER_EPILOG = """\
examples:
  bouncegen ledger init site.toml                       # key (mode 0600) and store
  bouncegen ledger import site.toml /var/log/mail.log /var/log/mail.log.1 /var/log/mail.log.2.gz
  journalctl -u postfix@- -o short | bouncegen ledger import site.toml -
  bouncegen ledger stats site.toml
  bouncegen ledger check site.toml                      # can every reader open it? (as root)

The inventory's [ledger] table names the store (sqlite:/abs/path.db or
redis://[:password@]host[:port][/db]), the key file and how many days an entry counts. The key
file must be readable by the service users only: chown bouncegen: KEY_FILE (mode 0600), and the
same key on every relay and MX host of the site (docs/ledger.md).

Exit status: 0 done; 1 the store or key failed (unreachable, refused, unreadable); 2 bad input
(inventory, [ledger] table, unreadable maillog).
"""


HELP = "the sent-mail ledger: create, import maillogs, statistics"
DESCRIPTION = ("The sent-mail ledger: keyed hashes of the Message-IDs our relays sent, looked up on "
    "the MX to tell a bounce of our own mail from backscatter.")


def add_subcommand(sub) -> None:
    lsub = add_group(sub, "ledger", help=HELP, description=DESCRIPTION, epilog=LEDGER_EPILOG)
    add_inventory_command(lsub, "init", _init, "ledger", help="create the key file (never replaced) and the store",
                          description="Create [ledger] key_file (32 random bytes, mode 0600; an existing "
                          "key is kept, never replaced) and the store [ledger] store.",
                          epilog="example:\n  bouncegen ledger init site.toml && chown bouncegen: /etc/bouncegen/ledger.key\n")
    m = add_inventory_command(lsub, "import", _import, "ledger", help="record the Message-IDs of Postfix maillogs",
                              description="Record the Message-IDs of Postfix cleanup lines "
                              "('postfix/cleanup[PID]: QUEUEID: message-id=<ID>', any instance; syslog, "
                              "journald or RFC 5424 prefixes; plain or .gz) with the day of their line.",
                              epilog="examples:\n  bouncegen ledger import site.toml /var/log/mail.log*\n"
                              "  journalctl -t postfix/cleanup -o short --since -30d | bouncegen ledger import site.toml -\n")
    m.add_argument("maillog", metavar="MAILLOG", nargs="+", help="maillog files (plain or .gz; - for stdin)")
    add_inventory_command(lsub, "stats", _stats, "ledger", help="entries, oldest day and size of the store",
                          description="Print the live entries, the oldest recorded day and the size of the store.",
                          epilog="example:\n  bouncegen ledger stats site.toml\n")
    c = add_inventory_command(lsub, "check", _check, "ledger",
                              help="can each reader (spamd, amavis) open the ledger as its own user?",
                              description="Test, as the user of bouncegen's spamd (bouncegen, or --user) and as "
                              "the host's debian-spamd and amavis where they exist, what a lookup does: read the "
                              "key, open the store (SQLite: read-write, its -wal/-shm beside it) and look up an "
                              "entry; and whether bouncegen-spamd.service's sandbox lets spamd reach an SQLite "
                              "ledger's directory. One line per problem with the command that fixes it. Run as root.",
                              epilog="examples:\n  bouncegen ledger check site.toml\n"
                              "  bouncegen ledger check site.toml --user spamd-lean\n\n"
                              "Exit status: 0 every reader can; 1 a problem (one line each on stderr); 2 bad input.\n")
    c.add_argument("--user", metavar="USER", help="the user bouncegen's spamd runs as (default: bouncegen)")
