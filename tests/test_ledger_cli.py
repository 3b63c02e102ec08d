"""`bouncegen ledger init|import|stats` on SQLite and on a real redis-server, the maillog line
forms import reads, and what `bouncegen render` writes for the relays.

Table-driven where the input is a line: one row per log format, each naming itself."""

from __future__ import annotations

import gzip
import json
import stat
import time

import pytest

from bouncegen import defaults
from bouncegen.lab.site import MX1, ONE_RELAY, example_site
from bouncegen.ledger import keys, load_key, maillog, open_store
from bouncegen.renderer import inventory, render
from support import run

SITE = example_site(site={"domains": ["example.org"]}, relay=ONE_RELAY, mx=MX1)

NOW = time.mktime((2026, 11, 30, 12, 0, 0, 0, 0, -1))  # local time, as syslog stamps are
TODAY = keys.today(NOW)


def site(tmp_path, store: str | None = None, days: int = 30) -> str:
    store = store or f"sqlite:{tmp_path / 'ledger.db'}"
    path = tmp_path / "site.toml"
    path.write_text(SITE + f'[ledger]\nstore = {json.dumps(store)}\nkey_file = "{tmp_path / "ledger.key"}"\ndays = {days}\n')
    return str(path)


# -- maillog lines --------------------------------------------------------------------------------

LINES = [
    # name, line, (ID, day offset from TODAY) or None
    ("syslog", "Nov 29 06:09:31 relay1 postfix/cleanup[2211]: 4ABC1: message-id=<a1@example.org>", ("<a1@example.org>", -1)),
    ("syslog-precise", "Nov 29 06:09:31.123456 relay1 postfix/cleanup[2211]: 4ABC1: message-id=<a2@example.org>", ("<a2@example.org>", -1)),
    ("journald-short", "Nov 28 23:59:59 relay1 postfix/cleanup[17]: 4Qk2Xy1zS9z9tZ: message-id=<a3@example.org>", ("<a3@example.org>", -2)),
    ("journald-short-iso", "2026-11-29T10:00:00+0100 relay1 postfix/cleanup[17]: 4Qk2Xy1zS9z9tZ: message-id=<a4@example.org>", ("<a4@example.org>", -1)),
    ("rfc3339-rsyslog", "2026-11-27T10:00:00.123456+00:00 relay1 postfix/cleanup[17]: 4Qk2: message-id=<a5@example.org>", ("<a5@example.org>", -3)),
    ("rfc5424", "<22>1 2026-11-29T10:00:00.003Z relay1 postfix/cleanup 4711 - - 4Qk2: message-id=<a6@example.org>", ("<a6@example.org>", -1)),
    ("instance", "Nov 29 06:09:31 relay1 postfix-out/cleanup[2211]: 4ABC1: message-id=<a7@example.org>", ("<a7@example.org>", -1)),
    ("instance-service", "Nov 29 06:09:31 relay1 postfix/submission/cleanup[2211]: 4ABC1: message-id=<a8@example.org>", ("<a8@example.org>", -1)),
    ("no-brackets", "Nov 29 06:09:31 relay1 postfix/cleanup[2211]: 4ABC1: message-id=a9@example.org", ("a9@example.org", -1)),
    ("no-stamp", "relay1 postfix/cleanup[2211]: 4ABC1: message-id=<a10@example.org>", ("<a10@example.org>", None)),
    ("resent", "Nov 29 06:09:31 relay1 postfix/cleanup[2211]: 4ABC1: resent-message-id=<r@example.org>", None),
    ("smtp", "Nov 29 06:09:31 relay1 postfix/smtp[2212]: 4ABC1: to=<x@example.net>, status=sent", None),
    ("other-program", "Nov 29 06:09:31 relay1 cleanupd[2]: 4ABC1: message-id=<x@example.org>", None),
]


@pytest.mark.parametrize("name,line,expected", LINES, ids=[r[0] for r in LINES])
def test_parse_line(name, line, expected):
    got = maillog.parse_line(line, now=NOW)
    if expected is None:
        assert got is None
    else:
        value, offset = expected
        assert got == (value, None if offset is None else TODAY + offset)


def test_syslog_stamp_without_year_is_in_the_last_twelve_months():
    assert maillog.line_day("Dec 31 23:00:00 h postfix/cleanup[1]: X: message-id=<a@b>", now=NOW) < TODAY
    assert TODAY - maillog.line_day("Dec  1 00:00:00 h x", now=NOW) <= 365


# -- init -----------------------------------------------------------------------------------------

def test_init_creates_key_0600_and_store_and_never_overwrites(tmp_path, capsys):
    inv = site(tmp_path)
    status, out, _ = run(capsys, "ledger", "init", inv)
    assert status == 0
    key_file = tmp_path / "ledger.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    text = key_file.read_text()
    assert len(text) == 65 and text.endswith("\n") and len(load_key(key_file)) == 32
    assert "chown bouncegen" in out
    assert (tmp_path / "ledger.db").exists()
    status, out, _ = run(capsys, "ledger", "init", inv)
    assert status == 0 and "never replaced" in out
    assert key_file.read_text() == text


def test_init_refuses_a_broken_key_file(tmp_path, capsys):
    inv = site(tmp_path)
    (tmp_path / "ledger.key").write_text("not a key\n")
    status, _, err = run(capsys, "ledger", "init", inv)
    assert status != 0 and err.count("\n") == 1 and "ledger.key" in err
    assert (tmp_path / "ledger.key").read_text() == "not a key\n"


def test_init_missing_key_directory(tmp_path, capsys):
    inv = tmp_path / "site.toml"
    inv.write_text(SITE + f'[ledger]\nstore = "sqlite:{tmp_path}/l.db"\nkey_file = "{tmp_path}/nodir/k"\n')
    status, _, err = run(capsys, "ledger", "init", str(inv))
    assert status == 2 and err.count("\n") == 1 and "ledger.key_file" in err
    assert not (tmp_path / "l.db").exists()


@pytest.mark.parametrize("store", ["sqlite:relative.db", "redis://", "redis://h:99999", "mysql://h/db",
                                   "redis://user:pw@h"])
def test_bad_store_url_is_exit_2_one_line(tmp_path, capsys, store):
    status, out, err = run(capsys, "ledger", "init", site(tmp_path, store=store))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "ledger.store" in err and "Traceback" not in err
    assert ":pw@" not in err
    assert not (tmp_path / "ledger.key").exists()


def test_no_ledger_table(tmp_path, capsys):
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    status, _, err = run(capsys, "ledger", "stats", str(path))
    assert status == 2 and "[ledger]" in err


# -- import and stats -----------------------------------------------------------------------------

def maillog_lines(today_stamp: str) -> str:
    return (f"{today_stamp} relay1 postfix/cleanup[1]: 4A1: message-id=<one@example.org>\n"
            f"{today_stamp} relay1 postfix/qmgr[2]: 4A1: from=<alice@example.org>, size=1, nrcpt=1\n"
            f"{today_stamp} relay1 postfix-out/cleanup[1]: 4A2: message-id=<two@Example.ORG>\n"
            f"{today_stamp} relay1 postfix/cleanup[1]: 4A3: message-id=<>\n"
            "Jan  1 00:00:00 relay1 postfix/cleanup[1]: 4A4: message-id=<ancient@example.org>\n")


def test_import_plain_gz_journald_and_stats(tmp_path, capsys):
    inv = site(tmp_path, days=30)
    assert run(capsys, "ledger", "init", inv)[0] == 0
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime(time.time() - 3600))
    plain = tmp_path / "mail.log"
    plain.write_text(maillog_lines(stamp))
    gz = tmp_path / "mail.log.2.gz"
    with gzip.open(gz, "wt") as f:
        f.write(f"{stamp} relay1 postfix/cleanup[9]: 4B1: message-id=<three@example.org>\n")
    journal = tmp_path / "journal.txt"  # journalctl -o short-iso
    iso = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() - 7200))
    journal.write_text(f"{iso} relay1 postfix/cleanup[9]: 4C1: message-id=<four@example.org>\n")
    status, out, err = run(capsys, "ledger", "import", inv, str(plain), str(gz), str(journal))
    assert status == 0, err
    old = 1 if time.localtime().tm_yday > 31 else 0  # "Jan 1" is older than 30 days except in January
    assert f"recorded 4 message-ids, skipped {1 + old}" in out
    status, out, _ = run(capsys, "ledger", "stats", inv)
    assert status == 0
    # the oldest entry is the journal line of two hours ago (yesterday, just after midnight UTC)
    assert "entries: 4" in out and f"(day {keys.today(time.time() - 7200)})" in out and "bytes" in out
    key = load_key(tmp_path / "ledger.key")
    with open_store(f"sqlite:{tmp_path / 'ledger.db'}", key) as store:
        assert store.lookup(["<two@example.org>"])  # the domain is case-insensitive
        assert store.lookup(["<three@example.org>"]) and store.lookup(["<four@example.org>"])
        assert not store.lookup(["<ancient@example.org>"]) or not old


def test_import_unreadable_maillog_is_exit_2_nothing_recorded(tmp_path, capsys):
    inv = site(tmp_path)
    run(capsys, "ledger", "init", inv)
    good = tmp_path / "good.log"
    good.write_text("Nov 29 06:09:31 r postfix/cleanup[1]: 4A: message-id=<x@example.org>\n")
    status, out, err = run(capsys, "ledger", "import", inv, str(good), str(tmp_path / "missing.log"))
    assert status == 2 and err.count("\n") == 1 and "missing.log" in err
    bad = tmp_path / "broken.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    status, out, err = run(capsys, "ledger", "import", inv, str(good), str(bad))
    assert status == 2 and err.count("\n") == 1 and "broken.gz" in err and "Traceback" not in err
    assert "entries: 0" in run(capsys, "ledger", "stats", inv)[1]


def test_import_without_key_is_one_line(tmp_path, capsys):
    inv = site(tmp_path)
    log = tmp_path / "m.log"
    log.write_text("")
    status, _, err = run(capsys, "ledger", "import", inv, str(log))
    assert status == 1 and err.count("\n") == 1 and "ledger.key" in err


# -- Redis ----------------------------------------------------------------------------------------

@pytest.mark.redis
def test_redis_init_import_stats_never_print_the_password(tmp_path, capsys):
    from support import RedisServer

    secret = "s3cr3t-Pa55"
    server = RedisServer(tmp_path / "redis", password=secret).start()
    try:
        inv = site(tmp_path, store=server.url(db=2))
        status, out, err = run(capsys, "ledger", "init", inv)
        assert status == 0, err
        log = tmp_path / "m.log"
        stamp = time.strftime("%b %e %H:%M:%S")
        log.write_text("".join(f"{stamp} r postfix/cleanup[1]: 4A{i}: message-id=<m{i}@example.org>\n" for i in range(50)))
        status, out2, err2 = run(capsys, "ledger", "import", inv, str(log))
        assert status == 0 and "recorded 50" in out2
        status, out3, err3 = run(capsys, "ledger", "stats", inv)
        assert status == 0 and "entries: 50" in out3 and "redis://:***@" in out3
        # the store down: one line, no password
        server.stop()
        status, out4, err4 = run(capsys, "ledger", "stats", inv)
        assert status == 1 and err4.count("\n") == 1 and "redis://:***@" in err4
        for text in (out, err, out2, err2, out3, err3, out4, err4):
            assert secret not in text
        wrong = site(tmp_path, store=f"redis://:wrong-pass@127.0.0.1:{server.port}/0")
        status, _, err5 = run(capsys, "ledger", "stats", wrong)
        assert status == 1 and "wrong-pass" not in err5
    finally:
        server.stop()


# -- render -----------------------------------------------------------------------------------

@pytest.mark.spamassassin
def test_render_writes_relay_files_only_with_a_ledger(tmp_path):
    plain = tmp_path / "plain.toml"
    plain.write_text(SITE)
    assert not any(p.startswith("relay/") for p in render.render_files(inventory.load(plain)))
    inv = inventory.load(site(tmp_path, store="redis://:pa\"ss@ledger.example.org:6380/1"))
    files = render.render_files(inv)
    assert files == render.render_files(inv)  # byte-identical
    main, conf = files["relay/main.cf"], files["relay/bouncegen-relay.conf"]
    for text, name in ((main, "relay/main.cf"), (conf, "relay/bouncegen-relay.conf")):
        assert text.startswith(f"# {name}: generated by bouncegen")
    sock = defaults.RELAY_MILTER_SOCKET
    assert f"smtpd_milters = {{ {sock}, default_action=accept," in main
    assert f"non_smtpd_milters = {{ {sock}, default_action=accept," in main
    assert "pa\"ss" not in main  # the password stays in the 0640 settings file
    import tomllib

    from bouncegen.milter import relay

    data = tomllib.loads(conf)
    assert data["milter"] == {"role": "relay", "socket": sock, "timeout": 2}
    assert data["ledger"]["store"] == "redis://:pa\"ss@ledger.example.org:6380/1"
    path = tmp_path / "relay.conf"
    path.write_text(conf)
    assert relay.role(path) == "relay"
    assert relay.RelaySettings.load(path).days == 30


def test_ratelog_once_a_minute():
    from bouncegen.milter.ratelog import RateLog

    lines, now = [], [0.0]
    log = RateLog(every=60, log=lines.append, clock=lambda: now[0])
    for t in (0, 1, 2, 30, 61, 62):
        now[0] = t
        log("ledger down")
    assert lines == ["ledger down", "ledger down (3 more since the last report)"]


def test_verdict_never_counts_the_ledger_outage():
    from bouncegen.facts import LEDGER_UNAVAIL
    from bouncegen.milter.settings import verdict

    assert verdict(("BG_BOUNCE", LEDGER_UNAVAIL), {"BG_BOUNCE": 5.0, LEDGER_UNAVAIL: -5.0}) == (5.0, ["BG_BOUNCE"])
