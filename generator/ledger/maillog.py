"""Postfix maillogs read for the sent-mail ledger: the Message-IDs our relays' cleanup logged.

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

Import the maillogs of the *relays* (the outbound instance), not the MX's: cleanup logs the
Message-ID of every message it receives, and a received ID in the ledger would let anyone who
mails us first have a bounce about that ID accepted later.
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
import sys
import time
import zlib
from dataclasses import dataclass
from typing import IO, Iterable, Iterator

from ..errors import UsageError
from . import keys
from .store import Store

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


__all__ = ["BATCH", "ImportCounts", "import_logs", "line_day", "parse_line", "read_lines"]
