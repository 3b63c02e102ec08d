"""``bouncegen ledger init|import|stats|check``: the sent-mail ledger from the command line.

- ``init INVENTORY`` creates the site key (``[ledger] key_file``: 32 random bytes as 64 hex
  characters, mode 0600, never replaced) and the store (``[ledger] store``).
- ``import INVENTORY MAILLOG...`` records the Message-IDs Postfix's cleanup logged on our relays.
  The line it reads (Postfix ``src/cleanup/cleanup_message.c``, ``cleanup_header_callback``)::

      postfix/cleanup[4711]: 4Qk2Xy1zS9z9tZ: message-id=<20261130.1@example.org>

  with any syslog_name (``postfix-out/cleanup``, ``postfix/submission/cleanup``), behind a
  syslog (``Nov 30 06:09:31 host``, also with fractions of a second), journald
  (``journalctl -o short``, ``-o short-iso``, ``-o short-precise``) or RFC 5424
  (``<22>1 2026-11-30T06:09:31.003Z host postfix/cleanup 4711 - - ...``) prefix, in plain or
  gzip-compressed files (``-`` reads standard input). Each ID is recorded with the day of its
  log line (a syslog time without year is taken in the local zone, in the last twelve months);
  a line whose time does not parse is recorded as today. IDs older than the ledger's ``days``
  are skipped, as are empty ones.
- ``stats INVENTORY`` prints the live entries, the oldest recorded day and the store's size.
- ``check INVENTORY [--user USER]`` tests the store's rights as each reader's user (access.py).

Import the maillogs of the *relays* (the outbound instance), not the MX's: cleanup logs the
Message-ID of every message it receives, and a received ID in the ledger would let anyone who
mails us first have a bounce about that ID accepted later.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import re
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

from ..errors import LedgerError, UsageError
from ..subcommand import add_command
from . import keys
from .store import Store, open_store

BATCH = 5000

# SYSLOG_NAME[/service...]/cleanup (postfix, postfix-out, postfix/submission), then "[PID]:" (syslog, journald) or " PID MSGID SD "
# (RFC 5424: "- -" or a structured-data element), then "QUEUEID: message-id=VALUE".
_CLEANUP = re.compile(
    r"\s[\w.-]+(?:/[\w.-]+)*/cleanup"
    r"(?:\[\d+\]:|\s+(?:\d+|-)\s+\S+\s+(?:-|\[[^\]]*\])+)"
    r"\s+(?P<qid>[0-9A-Za-z]+):\s+message-id=(?P<id>.*?)\s*$")
_PRI = re.compile(r"^<\d{1,3}>(?:1\s)?")
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?\s")
_BSD = re.compile(r"^([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?\s")
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


@dataclass
class ImportCounts:
    recorded: int = 0
    expired: int = 0       # older than the ledger's days
    empty: int = 0         # message-id= without an ID
    undated: int = 0       # recorded as today: the line's time did not parse
    lines: int = 0

    @property
    def skipped(self) -> int:
        return self.expired + self.empty


def line_day(line: str, now: float | None = None) -> int | None:
    """The day (days since the epoch, UTC) of a log line's time stamp, None when it has none."""
    now = time.time() if now is None else now
    line = _PRI.sub("", line, count=1)
    m = _ISO.match(line)
    if m:
        date, clock, _frac, zone = m.groups()
        text = f"{date}T{clock}"
        if zone:
            text += "+00:00" if zone == "Z" else zone
        try:
            stamp = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        if stamp.tzinfo is None:
            return keys.today(time.mktime(stamp.timetuple()))
        return keys.today(stamp.timestamp())
    m = _BSD.match(line)
    if m and m.group(1) in _MONTHS:
        mon, day, hh, mm, ss = _MONTHS[m.group(1)], int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5))
        year = time.localtime(now).tm_year
        for y in (year, year - 1):  # no year in the stamp: the last twelve months
            try:
                t = time.mktime((y, mon, day, hh, mm, ss, 0, 0, -1))
            except (OverflowError, ValueError):
                return None
            if t <= now + 86400:
                return keys.today(t)
        return None
    return None


def parse_line(line: str, now: float | None = None) -> tuple[str, int | None] | None:
    """(Message-ID value, day or None) of a cleanup message-id line; None for any other line."""
    if "message-id=" not in line or "cleanup" not in line:
        return None
    m = _CLEANUP.search(line)
    if not m:
        return None
    return m.group("id"), line_day(line, now)


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    f = open(path, "rb")
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f)  # type: ignore[return-value]
    f.seek(0)
    return f


def read_lines(paths: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(path, line) of every file, plain or gzip; any read error is a UsageError naming the file."""
    for path in paths:
        try:
            with _open(path) as raw:
                for bline in raw:
                    yield path, bline.decode("utf-8", "surrogateescape").rstrip("\r\n")
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise UsageError(f"{path}: is a directory, not a maillog") from None
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise UsageError(f"{path}: cannot read the maillog: {getattr(exc, 'strerror', None) or exc}") from None


def import_logs(store: Store, paths: Iterable[str], *, now: float | None = None,
                as_today: bool = False) -> ImportCounts:
    """Record every cleanup message-id line of the maillogs into the store; ``as_today`` records
    every ID as sent today whatever its line says (a fixture replayed, as ``bouncegen check``
    does with a corpus's ledger/maillog).

    Every file is read to its end before the first record: a file that cannot be read (missing,
    a broken .gz) is a UsageError and nothing is recorded."""
    now = time.time() if now is None else now
    today = keys.today(now)
    horizon = today - store.days
    counts = ImportCounts()
    by_day: dict[int, list[str]] = {}
    for _path, line in read_lines(paths):
        counts.lines += 1
        hit = parse_line(line, now)
        if hit is None:
            continue
        value, day = hit
        if as_today:
            day = today
        if keys.normalise(value) is None:
            counts.empty += 1
            continue
        if day is None:
            counts.undated += 1
            day = today
        day = min(day, today)
        if day < horizon:
            counts.expired += 1
            continue
        by_day.setdefault(day, []).append(value)
    for day in sorted(by_day):
        ids = by_day.pop(day)
        for i in range(0, len(ids), BATCH):
            counts.recorded += store.record(ids[i:i + BATCH], day=day)
    return counts


# -- the subcommands --------------------------------------------------------------------------

def _settings(path: str):
    from ..renderer import inventory

    inv = inventory.load(path)
    if inv.ledger is None:
        raise UsageError(f"{path}: no [ledger] table: add store and key_file (see docs/ledger.md)")
    return inv.ledger


def _open_store(led) -> Store:
    key = keys.load_key(led.key_file)
    return open_store(led.store, key, led.days)


def _day_text(day: int | None) -> str:
    if day is None:
        return "-"
    return f"{dt.date(1970, 1, 1) + dt.timedelta(days=day)} (day {day})"


def _init(args: argparse.Namespace) -> int:
    led = _settings(args.inventory)
    key_path = Path(led.key_file)
    if not key_path.parent.is_dir():
        raise UsageError(f"{args.inventory}: ledger.key_file: directory {key_path.parent} does not exist")
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
    from . import access

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


def add_subcommand(sub) -> None:
    p = add_command(sub, "ledger",
        help="the sent-mail ledger: create, import maillogs, statistics",
        description="The sent-mail ledger: keyed hashes of the Message-IDs our relays sent, looked up on "
        "the MX to tell a bounce of our own mail from backscatter.",
        epilog=LEDGER_EPILOG)
    lsub = p.add_subparsers(dest="ledger_command", metavar="SUBCOMMAND", required=True)
    i = add_command(lsub, "init", help="create the key file (never replaced) and the store",
                          description="Create [ledger] key_file (32 random bytes, mode 0600; an existing "
                          "key is kept, never replaced) and the store [ledger] store.",
                          epilog="example:\n  bouncegen ledger init site.toml && chown bouncegen: /etc/bouncegen/ledger.key\n")
    i.add_argument("inventory", metavar="INVENTORY", help="the site inventory (TOML) with a [ledger] table")
    i.set_defaults(func=_init)
    m = add_command(lsub, "import", help="record the Message-IDs of Postfix maillogs",
                          description="Record the Message-IDs of Postfix cleanup lines "
                          "('postfix/cleanup[PID]: QUEUEID: message-id=<ID>', any instance; syslog, "
                          "journald or RFC 5424 prefixes; plain or .gz) with the day of their line.",
                          epilog="examples:\n  bouncegen ledger import site.toml /var/log/mail.log*\n"
                          "  journalctl -t postfix/cleanup -o short --since -30d | bouncegen ledger import site.toml -\n")
    m.add_argument("inventory", metavar="INVENTORY", help="the site inventory (TOML) with a [ledger] table")
    m.add_argument("maillog", metavar="MAILLOG", nargs="+", help="maillog files (plain or .gz; - for stdin)")
    m.set_defaults(func=_import)
    s = add_command(lsub, "stats", help="entries, oldest day and size of the store",
                          description="Print the live entries, the oldest recorded day and the size of the store.",
                          epilog="example:\n  bouncegen ledger stats site.toml\n")
    s.add_argument("inventory", metavar="INVENTORY", help="the site inventory (TOML) with a [ledger] table")
    s.set_defaults(func=_stats)
    c = add_command(lsub, "check", help="can each reader (spamd, amavis) open the ledger as its own user?",
                          description="Test, as the user of bouncegen's spamd (bouncegen, or --user) and as the "
                          "host's debian-spamd and amavis where they exist, what a lookup does: read the key, "
                          "open the store (SQLite: read-write, its -wal/-shm beside it) and look up an entry; "
                          "and whether the installed bouncegen-spamd.service's sandbox lets spamd reach an "
                          "SQLite ledger's directory. One line per problem with the command that fixes it. "
                          "Run as root.",
                          epilog="examples:\n  bouncegen ledger check site.toml\n"
                          "  bouncegen ledger check site.toml --user spamd-lean\n\n"
                          "Exit status: 0 every reader can; 1 a problem (one line each on stderr); 2 bad input.\n")
    c.add_argument("inventory", metavar="INVENTORY", help="the site inventory (TOML) with a [ledger] table")
    c.add_argument("--user", metavar="USER", help="the user bouncegen's spamd runs as (default: bouncegen)")
    c.set_defaults(func=_check)


__all__ = ["ImportCounts", "LedgerError", "add_subcommand", "import_logs", "line_day", "parse_line"]
