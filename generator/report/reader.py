"""Streams mail logs line by line (plain, .gz, standard input) and hands each line that has a
shape (shapes.py) to the figures, with its time; memory does not grow with the log.

A line is one of: used (a shape matched); other (a syslog line of no interest: most of
mail.log); unparsable (no syslog prefix at all: a binary splice, a line cut at its start);
truncated (a line of a program and kind we read, its needle present, that the shape no longer
matches: cut short by a full disk or a rotating writer); interleaved (a second syslog prefix
inside the line: two writers without O_APPEND). None of them is ever a traceback.

Timestamps: the traditional syslog form ("Dec  2 00:52:29", also Postfix's maillog_file form
"Dec 02 00:52:29", optionally with microseconds) in the local time zone, the year being the
latest one that does not put the line in the future; and RFC 3339 ("2026-12-02T00:52:29.123+00:00",
rsyslog's default on Debian 12).
"""

from __future__ import annotations

import gzip
import re
import sys
import time
import zlib
from datetime import datetime
from pathlib import Path
from typing import IO, Iterable, Iterator

from ..errors import UsageError
from . import shapes

DEFAULT_LOG = "/var/log/mail.log"

_PREFIX = re.compile(
    r"(?:(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)(?:\.\d+)?"
    r"|(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?))"
    r" (?P<host>\S+) (?P<tag>[^\s\[:]+)(?:\[\d+\])?: ")
# A second prefix inside a line: two lines written into one.
_INNER = re.compile(r"(?:[A-Z][a-z]{2} {1,2}\d{1,2} |\d{4}-\d\d-\d\dT)\d\d:\d\d:\d\d(?:\.\d+)? \S+ [^\s\[:]+\[\d+\]: ")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                        "Nov", "Dec"), 1)}


class Clock:
    """Turns a prefix's timestamp into epoch seconds; the same second twice is looked up once."""

    def __init__(self, now: float | None = None):
        self.now = time.time() if now is None else now
        self.year = time.localtime(self.now).tm_year
        self._last: tuple[str, float | None] = ("", None)

    def __call__(self, m: re.Match) -> float | None:
        key = m.group("iso") or f"{m.group('mon')} {m.group('day')} {m.group('hms')}"
        if key == self._last[0]:
            return self._last[1]
        ts: float | None
        try:
            if m.group("iso"):
                ts = datetime.fromisoformat(key.replace("Z", "+00:00")).timestamp()
            else:
                mon = _MONTHS[m.group("mon")]
                h, mi, s = (int(x) for x in m.group("hms").split(":"))
                if not (1 <= int(m.group("day")) <= 31 and h < 24 and mi < 60 and s < 61):
                    raise ValueError("no such time")  # mktime would carry it into another day
                ts = time.mktime((self.year, mon, int(m.group("day")), h, mi, s, 0, 0, -1))
                if ts > self.now + 86400:  # "Dec 31" read in January: last year's line
                    ts = time.mktime((self.year - 1, mon, int(m.group("day")), h, mi, s, 0, 0, -1))
        except (KeyError, ValueError, OverflowError):
            ts = None
        self._last = (key, ts)
        return ts


def open_source(name: str) -> IO[bytes]:
    """A log as a binary stream: "-" is standard input; .gz (or gzip magic) is decompressed."""
    if name == "-":
        return sys.stdin.buffer
    path = Path(name)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise UsageError(f"{name}: cannot read: {exc.strerror or exc}") from None
    magic = f.peek(2)[:2] if hasattr(f, "peek") else b""
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    return f


def lines_of(names: Iterable[str], notes: list[str]) -> Iterator[str]:
    """Every line of every source, decoded (undecodable bytes replaced); a damaged .gz ends its
    file early and is counted, never raised."""
    for name in names:
        stream = open_source(name)
        try:
            for raw in stream:
                yield raw.decode("utf-8", "replace").rstrip("\r\n")
        except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
            notes.append(f"{name}: read only in part: {exc}")
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()


def read(names: Iterable[str], sink, *, since: float | None = None, until: float | None = None,
         clock: Clock | None = None, notes: list[str] | None = None) -> dict[str, int]:
    """Feed every shaped line of NAMES to SINK (an object with the shapes' event methods);
    returns the line counts; a damaged file is a line in NOTES."""
    clock = clock or Clock()
    table = shapes.by_program()
    notes = [] if notes is None else notes
    counts = {"total": 0, "used": 0, "other": 0, "unparsable": 0, "truncated": 0, "interleaved": 0,
                    "out_of_range": 0}
    match_prefix = _PREFIX.match
    for line in lines_of(names, notes):
        counts["total"] += 1
        m = match_prefix(line)
        if m is None:
            counts["unparsable"] += 1
            continue
        tag = m.group("tag")
        cands = table.get(tag.rpartition("/")[2])
        if cands is None:
            counts["other"] += 1
            continue
        msg = line[m.end():]
        hit = None
        needled = False
        for shape in cands:
            if shape.needle in msg:
                needled = True
                g = shape.rx.match(msg)
                if g is not None:
                    hit = (shape, g)
                    break
        if hit is None:
            if needled and _INNER.search(msg):
                counts["interleaved"] += 1
            elif needled:
                counts["truncated"] += 1
            else:
                counts["other"] += 1
            continue
        ts = clock(m)
        if ts is None:
            counts["unparsable"] += 1
            continue
        if (since is not None and ts < since) or (until is not None and ts >= until):
            counts["out_of_range"] += 1
            continue
        shape, g = hit
        if shape.open_tail and _INNER.search(msg):  # a shape can match the head of two lines in one
            counts["interleaved"] += 1
            continue
        counts["used"] += 1
        getattr(sink, shape.event)(ts, g.groupdict(), shape.facts, m.group("host"))
    return counts


def parse_time(text: str, *, now: float | None = None) -> float:
    """--since/--until: ISO 8601 ("2026-12-02", "2026-12-02T00:50", with an offset or local), or
    an age ("90m", "2h", "3d": that long before now)."""
    now = time.time() if now is None else now
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if m:
        return now - int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise UsageError(f"{text!r}: not a time: expected ISO 8601 (2026-12-02T00:50) or an age (90m, 2h, 3d)") from None


