"""Stores of the sent-mail ledger: an existing engine, never a protocol of our own.

``open_store(url, key, days)`` opens

- ``sqlite:/abs/path.db``: the embedded default for one host. Table
  ``sent (h TEXT PRIMARY KEY, day INTEGER NOT NULL) WITHOUT ROWID`` in WAL mode (readers on the
  MX never wait for the writer); a lookup hits an entry with ``day >= today - days``; expired
  rows are deleted by the first ``record`` of a day.
- ``redis://[:password@]host[:port][/db]``: where relays and MX hosts are several machines.
  ``SET bouncegen:sent:<hex> <day> EX <days*86400>`` (Redis expires entries itself); a lookup is
  one ``EXISTS k1 k2 ...``.

Both take Message-IDs as they appear in mail (normalised and keyed here, see :mod:`.keys`).
Every failure is a :class:`LedgerError` whose message shows the URL with its password as
``***``.
"""

from __future__ import annotations

import re
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .. import defaults
from ..errors import LedgerError
from . import keys

DEFAULT_DAYS = defaults.LEDGER_DAYS
MAX_DAYS = defaults.LEDGER_MAX_DAYS
REDIS_PREFIX = defaults.REDIS_PREFIX
REDIS_DEFAULT_PORT = defaults.REDIS_PORT
DEFAULT_TIMEOUT = defaults.LEDGER_TIMEOUT  # seconds: connect and each command

_PATH = re.compile(r"/[A-Za-z0-9._/-]+")
_REDIS_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$")


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL. ``shown`` is the URL as it may be printed (password as ``***``)."""

    scheme: str                # "sqlite" or "redis"
    path: Path | None = None   # sqlite
    host: str = ""             # redis (IPv6 without brackets)
    port: int = REDIS_DEFAULT_PORT
    db: int = 0
    password: str | None = field(default=None, repr=False)  # never printed
    shown: str = ""


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    return re.sub(r"^(redis://)[^@/?#]*@", r"\1:***@", url, flags=re.I)


def parse_store_url(url: str) -> StoreURL:
    """Parse and check ``sqlite:/absolute/path`` or ``redis://[:password@]host[:port][/db]``.

    Raises LedgerError naming what is expected (the password is never shown)."""
    shown = mask_url(url) if isinstance(url, str) else repr(url)
    expected = "expected 'sqlite:/absolute/path.db' or 'redis://[:password@]host[:port][/db]'"
    if not isinstance(url, str) or not url or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise LedgerError(f"{shown!r} is not a ledger store URL: {expected}")
    if url.startswith("sqlite:"):
        raw = url[len("sqlite:"):]
        if raw.startswith("//"):
            raise LedgerError(f"{shown!r}: write sqlite:/absolute/path.db (one slash, no host)")
        path = Path(raw)
        if not path.is_absolute() or raw.endswith("/") or ".." in path.parts:
            raise LedgerError(f"{shown!r}: the SQLite path must be an absolute file path without '..'")
        if not _PATH.fullmatch(raw):
            # it is written into SpamAssassin's configuration and a DBI data source as one word
            raise LedgerError(f"{shown!r}: the SQLite path may hold only letters, digits and . _ / -")
        return StoreURL("sqlite", path=path, shown=shown)
    if url.startswith("redis://"):
        parts = urllib.parse.urlsplit(url)
        if parts.query or parts.fragment:
            raise LedgerError(f"{shown!r}: no query or fragment allowed: {expected}")
        if parts.username:
            raise LedgerError(f"{shown!r}: user names are not supported: write redis://:PASSWORD@host")
        netloc = parts.netloc.rsplit("@", 1)[-1]
        m = re.match(r"^(\[[^\]]*\]|[^:]*)(?::([^:]*))?$", netloc)
        host = m.group(1) if m else ""
        if m is None or not host or not _REDIS_HOST.match(host):
            raise LedgerError(f"{shown!r}: not a Redis host: {expected}")
        port = REDIS_DEFAULT_PORT
        if m.group(2) is not None:
            if not m.group(2).isdigit() or not 0 < int(m.group(2)) < 65536:
                raise LedgerError(f"{shown!r}: the Redis port must be a number from 1 to 65535")
            port = int(m.group(2))
        db = 0
        db_path = parts.path
        if db_path not in ("", "/"):
            if not re.fullmatch(r"/[0-9]{1,5}", db_path) or int(db_path[1:]) > 65535:
                raise LedgerError(f"{shown!r}: the Redis database must be a number, as in redis://host:6379/0")
            db = int(db_path[1:])
        password = urllib.parse.unquote(parts.password) if parts.password else None
        return StoreURL("redis", host=host.strip("[]"), port=port, db=db, password=password, shown=shown)
    raise LedgerError(f"{shown!r} is not a ledger store URL: {expected}")


@dataclass(frozen=True)
class Stats:
    """What a store holds: live entries, the oldest recorded day (None when empty) and the
    bytes it takes (SQLite: the database files; Redis: the entries' MEMORY USAGE)."""

    entries: int
    oldest_day: int | None
    size_bytes: int


class Store:
    """A ledger store. ``key`` is the site key (:func:`keys.load_key`), ``days`` how long an
    entry counts (1..365). Use as a context manager or call :meth:`close`."""

    def __init__(self, url: StoreURL, key: bytes, days: int = DEFAULT_DAYS):
        if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise LedgerError(f"ledger days: expected a whole number from 1 to {MAX_DAYS}, got {days!r}")
        if len(key) != keys.KEY_BYTES:
            raise LedgerError(f"ledger key: expected {keys.KEY_BYTES} bytes")
        self.url = url
        self.key = key
        self.days = days

    def _entries(self, ids: Iterable[str]) -> list[str]:
        return sorted({e for i in ids if (e := keys.entry_key(self.key, i)) is not None})

    def record(self, ids: Iterable[str], day: int | None = None) -> int:
        """Record Message-IDs as sent on ``day`` (default today); returns how many entries were
        written (IDs that normalise to nothing are skipped; a repeated ID moves to ``day``)."""
        raise NotImplementedError

    def lookup(self, ids: Iterable[str]) -> bool:
        """True when any of the Message-IDs is recorded and not expired."""
        entries = self._entries(ids)
        return bool(entries) and self._run("cannot look up", lambda: self._any_recorded(entries))

    def _run(self, what: str, fn):
        raise NotImplementedError

    def _any_recorded(self, entries: list[str]) -> bool:
        raise NotImplementedError

    def stats(self) -> Stats:
        raise NotImplementedError

    def expire(self, day: int | None = None) -> int:
        """Delete entries older than ``day - days`` (default today); returns how many."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SqliteStore(Store):
    """The SQLite ledger (``sqlite:/abs/path.db``); the file is created on first open."""

    def __init__(self, url: StoreURL, key: bytes, days: int = DEFAULT_DAYS, *, timeout: float = DEFAULT_TIMEOUT):
        super().__init__(url, key, days)
        assert url.path is not None  # parse_store_url gives every sqlite: URL a path
        self.path: Path = url.path
        self._expired_on: int | None = None
        try:
            self.db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS sent (h TEXT PRIMARY KEY, day INTEGER NOT NULL) WITHOUT ROWID")
        except sqlite3.Error as exc:
            raise LedgerError(f"{url.shown}: cannot open the ledger: {exc}") from None

    def _run(self, what: str, fn):
        try:
            return fn()
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.url.shown}: {what}: {exc}") from None

    def record(self, ids: Iterable[str], day: int | None = None) -> int:
        day = keys.today() if day is None else day
        entries = self._entries(ids)

        def write():
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(
                    "INSERT INTO sent (h, day) VALUES (?, ?) ON CONFLICT(h) DO UPDATE SET day=excluded.day",
                    [(h, day) for h in entries])
                today = keys.today()
                if self._expired_on != today:  # cheap: once a day per store object
                    self.db.execute("DELETE FROM sent WHERE day < ?", (today - self.days,))
                    self._expired_on = today
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            return len(entries)

        return self._run("cannot record", write)

    def _any_recorded(self, entries: list[str]) -> bool:
        marks = ",".join("?" * len(entries))
        return self.db.execute(f"SELECT 1 FROM sent WHERE h IN ({marks}) AND day >= ? LIMIT 1",
                               (*entries, keys.today() - self.days)).fetchone() is not None

    def stats(self) -> Stats:
        count, oldest = self._run("cannot read", lambda: self.db.execute(
            "SELECT COUNT(*), MIN(day) FROM sent WHERE day >= ?", (keys.today() - self.days,)).fetchone())
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
                   if p.exists())
        return Stats(entries=count, oldest_day=oldest, size_bytes=size)

    def expire(self, day: int | None = None) -> int:
        day = keys.today() if day is None else day
        cur = self._run("cannot expire", lambda: self.db.execute("DELETE FROM sent WHERE day < ?", (day - self.days,)))
        return cur.rowcount

    def close(self) -> None:
        self.db.close()


class RedisStore(Store):
    """The Redis ledger (``redis://[:password@]host[:port][/db]``), through the ``redis`` client."""

    def __init__(self, url: StoreURL, key: bytes, days: int = DEFAULT_DAYS, *, timeout: float = DEFAULT_TIMEOUT):
        super().__init__(url, key, days)
        import redis  # the well-kept client: no protocol of our own

        self._errors = (redis.RedisError, OSError)
        self.client = redis.Redis(host=url.host, port=url.port, db=url.db, password=url.password,
                                  socket_timeout=timeout, socket_connect_timeout=timeout)

    def _run(self, what: str, fn):
        try:
            return fn()
        except self._errors as exc:
            text = str(exc)
            if self.url.password:
                text = text.replace(self.url.password, "***")
            raise LedgerError(f"{self.url.shown}: {what}: {text}") from None

    def record(self, ids: Iterable[str], day: int | None = None) -> int:
        today = keys.today()
        day = today if day is None else day
        # An entry lives `days` days from the day it was sent (an import of older logs keeps
        # the same horizon as SQLite's `day >= today - days`).
        ttl = (self.days - (today - day)) * 86400
        entries = self._entries(ids)
        if ttl <= 0 or not entries:
            return 0

        def write():
            pipe = self.client.pipeline(transaction=False)
            for h in entries:
                pipe.set(REDIS_PREFIX + h, day, ex=ttl)
            pipe.execute()
            return len(entries)

        return self._run("cannot record", write)

    def _any_recorded(self, entries: list[str]) -> bool:
        return self.client.exists(*(REDIS_PREFIX + h for h in entries)) > 0

    def stats(self) -> Stats:
        def scan():
            count, size = 0, 0
            oldest: int | None = None
            batch: list[bytes] = []

            def flush():
                nonlocal oldest, size
                pipe = self.client.pipeline(transaction=False)
                for k in batch:
                    pipe.get(k)
                    pipe.memory_usage(k)
                res = pipe.execute()
                for value, usage in zip(res[::2], res[1::2], strict=False):
                    if value is not None and value.isdigit():
                        oldest = int(value) if oldest is None else min(oldest, int(value))
                    size += usage or 0
                batch.clear()

            for k in self.client.scan_iter(match=REDIS_PREFIX + "*", count=1000):
                count += 1
                batch.append(k)
                if len(batch) >= 1000:
                    flush()
            if batch:
                flush()
            return Stats(entries=count, oldest_day=oldest, size_bytes=size)

        return self._run("cannot read", scan)

    def expire(self, day: int | None = None) -> int:
        """Nothing to do: Redis expires entries by their TTL."""
        return 0

    def close(self) -> None:
        self.client.close()


def open_store(url: str | StoreURL, key: bytes, days: int = DEFAULT_DAYS, *,
               timeout: float = DEFAULT_TIMEOUT) -> Store:
    """Open the store a URL names (see :func:`parse_store_url`) with the site key."""
    parsed = url if isinstance(url, StoreURL) else parse_store_url(url)
    cls = SqliteStore if parsed.scheme == "sqlite" else RedisStore
    return cls(parsed, key, days, timeout=timeout)
