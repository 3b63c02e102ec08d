"""The sent-mail ledger's format and stores (bouncegen.ledger): SQLite from the standard library
and a real redis-server (support.RedisServer); the Perl reader of the BouncegenRescue plugin is
checked against the Python writer on the same IDs. No mocks."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import textwrap

import pytest

from bouncegen.errors import BouncegenError, InventoryError
from bouncegen.ledger import LedgerError, create_key_file, entry_key, load_key, normalise, open_store, parse_store_url, today
from bouncegen.renderer import inventory
from support import ROOT, need

KEY = bytes(range(32))

NORMALISE = [
    ("<abc.1@example.org>", "abc.1@example.org"),
    ("  <Abc.1@EXAMPLE.Org>  ", "Abc.1@example.org"),
    ("<a@b@Example.ORG>", "a@b@example.org"),           # the last @ starts the domain
    ("<folded\n\t.id@example.org>", "folded.id@example.org"),
    ("text <first@x.test> <second@y.test>", "first@x.test"),
    ("bare@Example.Org trailing", "bare@example.org"),
    ("NoDomain", "NoDomain"),
    ("<>", None),
    ("   ", None),
    ("<\t>", None),
    ("<ünï@Bücher.Example>", "ünï@bücher.example"),
    # white space and case are ASCII only: identical in Perl for bytes and characters
    ("<x.1@ÜBER.Example>", "x.1@Über.example"),
    ("<nb\u00a0sp@Example.Org>", "nb\u00a0sp@example.org"),
    ("bare\u00a0id@Example.Org tail", "bare\u00a0id@example.org"),
    ("sep\x1cid@Example.Org", "sep\x1cid@example.org"),
    ("<\u0130d@\u0130.Example>", "\u0130d@\u0130.example"),
    ("<ΑΣ@ΣΑΣ.Example>", "ΑΣ@ΣΑΣ.example"),
    ("\x0b<vt.1@X.Test>", "vt.1@x.test"),
    ("\x0bvt.2@X.Test\x0bx", "vt.2@x.test"),
]


@pytest.mark.parametrize("value,expected", NORMALISE, ids=[repr(v) for v, _ in NORMALISE])
def test_normalise(value, expected):
    assert normalise(value) == expected


def test_entry_key_format():
    k = entry_key(KEY, "<lunch.77@EXAMPLE.org>")
    assert k == entry_key(KEY, "lunch.77@example.org")
    assert len(k) == 32 and k == k.lower() and int(k, 16) >= 0
    # pinned: HMAC-SHA256(bytes 0..31, "lunch.77@example.org")[:16]
    import hashlib
    import hmac
    assert k == hmac.new(KEY, b"lunch.77@example.org", hashlib.sha256).hexdigest()[:32]
    assert entry_key(KEY, "<>") is None
    assert entry_key(KEY, "<Lunch.77@example.org>") != k   # local parts keep their case


@pytest.mark.spamassassin
def test_perl_reader_agrees_with_python_writer(tmp_path, rendered):
    """The plugin's ledger client (BouncegenRescue::Ledger, bundled into the rendered plugin)
    normalises and keys Message-IDs as keys.py does."""
    need("perl", "spamassassin")
    ids = [v for v, _ in NORMALISE]
    script = tmp_path / "t.pl"
    script.write_text(textwrap.dedent("""\
        use strict; use warnings;
        require Mail::SpamAssassin::Plugin::BouncegenRescue if 0;
        do $ARGV[0] or die "load: $@ $!";
        my $key = pack('H*', $ARGV[1]);
        local $/ = "\\0";
        while (my $id = <STDIN>) {
          chomp $id;
          utf8::decode($id) if $ARGV[2];   # characters; else bytes, as SpamAssassin's text
          my $n = Mail::SpamAssassin::Plugin::BouncegenRescue::Ledger::normalise($id);
          print defined $n ? Mail::SpamAssassin::Plugin::BouncegenRescue::Ledger::entry($key, $n) : '-', "\\n";
        }
        """))
    plugin = rendered(ROOT / "inventory.example.toml") / "spamassassin" / "BouncegenRescue.pm"
    for chars in ("1", "0"):
        proc = subprocess.run(["perl", str(script), str(plugin), KEY.hex(),
                               chars], input="\0".join(ids).encode() + b"\0", capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()
        got = proc.stdout.decode().splitlines()
        assert got == [entry_key(KEY, i) or "-" for i in ids], chars


def test_key_file(tmp_path):
    path = tmp_path / "ledger.key"
    old = os.umask(0)
    try:
        key = create_key_file(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert len(text) == 65 and text.endswith("\n") and bytes.fromhex(text.strip()) == key
    assert load_key(path) == key
    with pytest.raises(LedgerError, match="never replaced"):
        create_key_file(path)
    assert load_key(path) == key  # untouched
    path.write_text("  " + key.hex().upper() + "  \n\n")
    assert load_key(path) == key  # white space stripped, either case
    path.write_text("abcd\n")
    with pytest.raises(LedgerError, match="64 hex characters"):
        load_key(path)
    with pytest.raises(LedgerError, match="cannot read"):
        load_key(tmp_path / "missing.key")
    assert issubclass(LedgerError, BouncegenError)


BAD_URLS = [
    ("sqlite:relative.db", "absolute"),
    ("sqlite://host/x.db", "one slash"),
    ("sqlite:/var/lib/../x.db", "absolute"),
    ("sqlite:/var/lib/", "absolute"),
    ("sqlite:/var/lib/a b.db", "not a ledger store URL"),
    ("sqlite:/var/lib/a#b.db", "only letters"),
    ("redis://", "not a Redis host"),
    ("redis://host:0", "port"),
    ("redis://host:65536", "port"),
    ("redis://host:x", "port"),
    ("redis://host/db", "database"),
    ("redis://host/1/2", "database"),
    ("redis://user:pw@host", "user names"),
    ("redis://host?db=1", "no query"),
    ("http://host", "not a ledger store URL"),
    ("", "not a ledger store URL"),
]


@pytest.mark.parametrize("url,fragment", BAD_URLS, ids=[u or "empty" for u, _ in BAD_URLS])
def test_bad_store_urls(url, fragment):
    with pytest.raises(LedgerError, match=fragment):
        parse_store_url(url)


def test_store_url_password_never_shown():
    u = parse_store_url("redis://:s3cr%40t@mem.example.org:6380/3")
    assert (u.host, u.port, u.db, u.password) == ("mem.example.org", 6380, 3, "s3cr@t")
    assert "s3cr" not in u.shown and "s3cr" not in repr(u) and u.shown.startswith("redis://:***@")
    with pytest.raises(LedgerError) as exc:
        parse_store_url("redis://:hunter2@mem.example.org:99999")
    assert "hunter2" not in str(exc.value) and ":***@" in str(exc.value)


# -- SQLite ---------------------------------------------------------------------------------------

def test_sqlite_store(tmp_path):
    url = f"sqlite:{tmp_path}/ledger.db"
    with open_store(url, KEY, days=30) as s:
        assert s.record(["<a.1@Example.org>", "<>", "<b.2@example.org>"]) == 2
        assert s.lookup(["<a.1@example.ORG>"]) and s.lookup(["<x@y>", "b.2@example.org"])
        assert not s.lookup(["<A.1@example.org>"]) and not s.lookup([]) and not s.lookup(["<>"])
        st = s.stats()
        assert st.entries == 2 and st.oldest_day == today() and st.size_bytes > 0
        # an old entry moves forward when it is recorded again (upsert)
        s.record(["<old@example.org>"], day=today() - 31)
        assert not s.lookup(["<old@example.org>"])
        s.record(["<old@example.org>"], day=today() - 30)
        assert s.lookup(["<old@example.org>"])
        s.record(["<gone@example.org>"], day=today() - 40)
        assert s.expire() == 1  # gone (old was moved to today - 30: still counts)
    db = sqlite3.connect(f"{tmp_path}/ledger.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = dict(db.execute("SELECT h, day FROM sent"))
    assert rows[entry_key(KEY, "a.1@example.org")] == today()
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name='sent'").fetchone()[0]
    assert "WITHOUT ROWID" in sql and "h TEXT PRIMARY KEY" in sql
    db.close()


def test_sqlite_record_expires_once_a_day(tmp_path):
    with open_store(f"sqlite:{tmp_path}/l.db", KEY, days=5) as s:
        s.record(["<old@x.test>"], day=today() - 9)  # first record of the day: expires, then writes
        s.record(["<new@x.test>"])
        assert s.stats().entries == 1  # the old one does not count (and is gone on the next day)
    with open_store(f"sqlite:{tmp_path}/l.db", KEY, days=5) as s:
        s.record(["<new2@x.test>"])   # a new store object expires again
        db = sqlite3.connect(f"{tmp_path}/l.db")
        assert db.execute("SELECT COUNT(*) FROM sent").fetchone()[0] == 2
        db.close()


def test_sqlite_locked_is_a_ledger_error(tmp_path):
    path = tmp_path / "l.db"
    with open_store(f"sqlite:{path}", KEY) as s:
        s.record(["<a@x.test>"])
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO sent VALUES ('held', 1)")
    try:
        with pytest.raises(LedgerError, match="locked"):
            with open_store(f"sqlite:{path}", KEY, timeout=0.2) as s:
                s.lookup(["<a@x.test>"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_sqlite_unwritable_directory(tmp_path):
    with pytest.raises(LedgerError, match="cannot open"):
        open_store(f"sqlite:{tmp_path}/missing/dir/l.db", KEY)


# -- Redis ----------------------------------------------------------------------------------------

@pytest.mark.redis
def test_redis_store(redis_server):
    import redis

    with open_store(redis_server.url(db=2), KEY, days=7) as s:
        assert s.record(["<a.1@Example.org>", "<b.2@example.org>", ""]) == 2
        assert s.lookup(["<zzz@x>", "<a.1@example.org>"]) and not s.lookup(["<zzz@x>"])
        s.record(["<old@example.org>"], day=today() - 6)   # one day left of its 7
        s.record(["<gone@example.org>"], day=today() - 7)  # past its horizon: not written
        assert s.lookup(["<old@example.org>"]) and not s.lookup(["<gone@example.org>"])
        st = s.stats()
        assert st.entries == 3 and st.oldest_day == today() - 6 and st.size_bytes > 0
        assert s.expire() == 0
    r = redis.Redis(host="127.0.0.1", port=redis_server.port, db=2)
    k = "bouncegen:sent:" + entry_key(KEY, "a.1@example.org")
    assert r.get(k) == str(today()).encode()
    assert 7 * 86400 - 60 < r.ttl(k) <= 7 * 86400
    assert 0 < r.ttl("bouncegen:sent:" + entry_key(KEY, "old@example.org")) <= 86400
    assert redis.Redis(host="127.0.0.1", port=redis_server.port, db=0).dbsize() == 0  # /2 honoured
    r.close()


@pytest.mark.redis
def test_redis_password(tmp_path):
    from support import RedisServer

    server = RedisServer(tmp_path / "r", password="pa55-w0rd").start()
    try:
        with open_store(server.url(), KEY) as s:
            s.record(["<a@x.test>"])
            assert s.lookup(["<a@x.test>"])
        wrong = server.url().replace("pa55-w0rd", "wrong-pw")
        with pytest.raises(LedgerError) as exc:
            with open_store(wrong, KEY) as s:
                s.lookup(["<a@x.test>"])
        assert "wrong-pw" not in str(exc.value) and ":***@" in str(exc.value)
    finally:
        server.stop()


@pytest.mark.redis
def test_redis_down_is_a_ledger_error(redis_server):
    url = redis_server.url()
    s = open_store(url, KEY, timeout=0.5)
    s.record(["<a@x.test>"])
    redis_server.stop()
    with pytest.raises(LedgerError, match="cannot look up"):
        s.lookup(["<a@x.test>"])
    s.close()


# -- inventory [ledger] ----------------------------------------------------------------------------

BASE = '[site]\ndomains = ["example.org"]\n[[relay]]\nhost = "smtp1.out.example.org"\n'
# A valid [ledger] table; each bad case below sets one of its keys to a bad TOML value (None: leaves
# the key out) and names the start of the one error line it must give.
LEDGER = {"store": '"sqlite:/var/l.db"', "key_file": '"/etc/k"'}
LEDGER_BAD = {
    "relative": ("store", '"sqlite:ledger.db"', "ledger.store: 'sqlite:ledger.db': the SQLite path must be an absolute"),
    "bad-port": ("store", '"redis://:pw@h.example:70000"', "ledger.store: 'redis://:***@h.example:70000': the Redis port"),
    "bad-db": ("store", '"redis://h.example/x"', "ledger.store: 'redis://h.example/x': the Redis database"),
    "bad-scheme": ("store", '"mysql://h"', "ledger.store: 'mysql://h' is not a ledger store URL"),
    "store-type": ("store", "5", "ledger.store: expected a string"),
    "missing-store": ("store", None, "ledger.store: missing"),
    "missing-key": ("key_file", None, "ledger.key_file: missing"),
    "relative-key": ("key_file", '"k"', "ledger.key_file: 'k' is not an absolute file path"),
    "days-zero": ("days", "0", "ledger.days: expected a whole number of days from 1 to 365, got 0"),
    "days-big": ("days", "366", "ledger.days: expected a whole number"),
    "days-str": ("days", '"30"', "ledger.days: expected a whole number"),
    "unknown": ("ttl", "3", "ledger.ttl: unknown key"),
}


def assert_one_error(path, fragment: str) -> None:
    """Loading PATH fails with exit status 2 and a line "PATH: FRAGMENT..." (no password shown)."""
    with pytest.raises(InventoryError) as exc:
        inventory.load(path)
    assert exc.value.exit_status == 2
    assert any(line == f"{path}: {fragment}" or line.startswith(f"{path}: {fragment}") for line in exc.value.problems), exc.value.problems
    assert "pw@" not in str(exc.value)


@pytest.mark.parametrize("name", LEDGER_BAD)
def test_inventory_ledger_errors(name, write_inventory):
    key, value, fragment = LEDGER_BAD[name]
    table = {**LEDGER, key: value}
    path = write_inventory(BASE + "[ledger]\n" + "".join(f"{k} = {v}\n" for k, v in table.items() if v is not None))
    assert_one_error(path, fragment)


@pytest.mark.parametrize("table", ["ledger", "batv", "dkim", "milter"])
def test_inventory_optional_table_not_a_table(table, write_inventory):
    # a top-level key must come before the first table; the one problem is said once, without a
    # "missing" line for each key the table would have needed
    path = write_inventory(f'{table} = "sqlite:/var/l.db"\n' + BASE)
    assert_one_error(path, f"{table}: expected a table")
    with pytest.raises(InventoryError) as exc:
        inventory.load(path)
    assert len(exc.value.problems) == 1, exc.value.problems


def test_inventory_ledger_good(write_inventory):
    inv = inventory.load(write_inventory(BASE))
    assert inv.ledger is None
    inv = inventory.load(write_inventory(BASE + '[ledger]\nstore = "redis://:pw@mem.example.org/1"\nkey_file = "/etc/bouncegen/ledger.key"\n'))
    assert inv.ledger.days == 30 and inv.ledger.key_file == "/etc/bouncegen/ledger.key"
    assert inv.ledger.store_shown == "redis://:***@mem.example.org/1" and "pw" not in repr(inv.ledger.store_shown)
    inv = inventory.load(write_inventory(BASE + '[ledger]\nstore = "sqlite:/var/lib/bouncegen/ledger.db"\nkey_file = "/k"\ndays = 365\n'))
    assert inv.ledger.days == 365 and inv.ledger.store_word == "sqlite:/var/lib/bouncegen/ledger.db"
