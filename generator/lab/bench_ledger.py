"""``make bench-ledger``: the sent-mail ledger with 1,000,000 recorded Message-IDs, in SQLite and in
a private redis-server. A benchmark to read, not a timed test.

Printed per store: bytes per entry (SQLite: the database files; Redis: ``used_memory`` grown by
the load), records per second (``Store.record`` in batches, as ``bouncegen ledger import`` does),
lookups per second and the latency of one message's lookup, p50 and p99. A message's lookup is
what the BouncegenRescue plugin does in spamd, measured in Perl with the plugin's own query: one
``SELECT 1 FROM sent WHERE h IN (?,?,?) AND day >= ? LIMIT 1`` through DBI + DBD::SQLite on a
cached handle, or one ``EXISTS k1 k2 k3`` through SpamAssassin's TinyRedis, for the three IDs a
reply typically names (In-Reply-To and two References), half of the messages with a recorded ID.
The Python lookup (``Store.lookup``, as the tests use it) is printed beside it. The target: the
lookup adds < 1 ms p99 per message.

Everything lives in a temporary directory; the redis-server is started on 127.0.0.1 and stopped
by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import defaults, engines
from ..engines.spamd import free_port
from ..ledger import entry_key, open_store
from . import daemon

PERL_SQLITE = r'''
use strict; use warnings; use DBI; use Time::HiRes qw(time);
my ($path, $since) = @ARGV;
my $dbh = DBI->connect("dbi:SQLite:dbname=$path", "", "", {RaiseError => 1, AutoCommit => 1});
$dbh->sqlite_busy_timeout(1000);
my @lat; my $hits = 0;
while (my $line = <STDIN>) {
  chomp $line; my @h = split / /, $line;
  my $t0 = time;
  my $sql = 'SELECT 1 FROM sent WHERE h IN (' . join(',', ('?') x @h) . ') AND day >= ? LIMIT 1';
  my $row = $dbh->selectrow_arrayref($sql, undef, @h, $since);
  push @lat, time - $t0; $hits++ if $row;
}
print join(" ", $hits, @lat), "\n";
'''

PERL_REDIS = r'''
use strict; use warnings; use Time::HiRes qw(time);
use Mail::SpamAssassin::Util::TinyRedis;
my ($server, $prefix) = @ARGV;
my $r = Mail::SpamAssassin::Util::TinyRedis->new(server => $server) or die "connect: $!";
my @lat; my $hits = 0;
while (my $line = <STDIN>) {
  chomp $line; my @h = split / /, $line;
  my $t0 = time;
  my $n = $r->call('EXISTS', map { "$prefix$_" } @h);
  push @lat, time - $t0; $hits++ if $n > 0;
}
print join(" ", $hits, @lat), "\n";
'''


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class _Redis:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> "_Redis":
        exe = engines.require("redis-server")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            daemon.wait_listening(self.proc, daemon.tcp(self.port), "redis-server", error=RuntimeError)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        p, self.proc = self.proc, None
        daemon.stop(p, timeout=20, group=False)


def _messages(key: bytes, recorded: list[str], n: int) -> tuple[list[list[str]], list[list[str]]]:
    """n messages of three IDs each (half naming one recorded ID): as Message-IDs and as entries."""
    ids: list[list[str]] = []
    entries: list[list[str]] = []
    for i in range(n):
        refs = [f"<{secrets.token_hex(8)}@foreign.test>", f"<{secrets.token_hex(8)}@example.org>"]
        refs.append(recorded[(i * 7919) % len(recorded)] if i % 2 == 0 else f"<{secrets.token_hex(8)}@example.net>")
        ids.append(refs)
        entries.append([e for r in refs if (e := entry_key(key, r)) is not None])
    return ids, entries


def _perl_lookups(script: str, args: list[str], entries: list[list[str]]) -> tuple[int, list[float]]:
    proc = subprocess.run([engines.require("perl"), "-e", script, *args], input="\n".join(" ".join(e) for e in entries) + "\n",
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"perl lookup: {proc.stderr.strip()[-500:]}")
    fields = proc.stdout.split()
    return int(fields[0]), [float(x) for x in fields[1:]]


def bench_store(kind: str, url: str, key: bytes, n: int, lookups: int, batch: int, redis_port: int | None,
                db_path: Path | None) -> dict:
    recorded = [f"<{i:08d}.{secrets.token_hex(6)}@example.org>" for i in range(n)]
    import redis as redis_client  # only for INFO used_memory

    before = 0
    if kind == "redis":
        assert redis_port is not None
        before = redis_client.Redis(port=redis_port).info("memory")["used_memory"]
    with open_store(url, key, 30, timeout=30) as store:
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            store.record(recorded[i:i + batch])
        rec_s = time.perf_counter() - t0
        ids, entries = _messages(key, recorded, lookups)
        lat_py = []
        t0 = time.perf_counter()
        hits_py = 0
        for refs in ids:
            t1 = time.perf_counter()
            hits_py += store.lookup(refs)
            lat_py.append(time.perf_counter() - t1)
        py_s = time.perf_counter() - t0
    if kind == "redis":
        assert redis_port is not None
        size = redis_client.Redis(port=redis_port).info("memory")["used_memory"] - before
        hits, lat = _perl_lookups(PERL_REDIS, [f"127.0.0.1:{redis_port}", defaults.REDIS_PREFIX], entries)
    else:
        assert db_path is not None
        size = sum(p.stat().st_size for p in db_path.parent.glob(db_path.name + "*"))
        since = int(time.time() // 86400) - 30
        hits, lat = _perl_lookups(PERL_SQLITE, [str(db_path), str(since)], entries)
    return {
        "store": kind, "entries": n, "bytes_per_entry": round(size / n, 1), "bytes": size,
        "records_per_s": round(n / rec_s), "record_seconds": round(rec_s, 1),
        "lookup_messages": lookups, "ids_per_message": 3,
        "perl_hits": hits, "perl_lookups_per_s": round(len(lat) / sum(lat)),
        "perl_p50_ms": round(_pct(lat, 50) * 1000, 3), "perl_p99_ms": round(_pct(lat, 99) * 1000, 3),
        "python_hits": hits_py, "python_lookups_per_s": round(lookups / py_s),
        "python_p50_ms": round(_pct(lat_py, 50) * 1000, 3), "python_p99_ms": round(_pct(lat_py, 99) * 1000, 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bouncegen.lab.bench_ledger", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--entries", type=int, default=1_000_000, help="recorded IDs (default 1,000,000)")
    ap.add_argument("--lookups", type=int, default=20_000, help="messages looked up (default 20,000)")
    ap.add_argument("--batch", type=int, default=10_000, help="IDs per record call (default 10,000)")
    ap.add_argument("--stores", default="sqlite,redis", help="sqlite, redis or both (default)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    key = secrets.token_bytes(32)
    tmp = Path(tempfile.mkdtemp(prefix="bouncegen-bench-ledger-"))
    results = []
    try:
        for kind in args.stores.split(","):
            if kind == "sqlite":
                db = tmp / "ledger.db"
                results.append(bench_store("sqlite", f"sqlite:{db}", key, args.entries, args.lookups, args.batch, None, db))
            elif kind == "redis":
                server = _Redis(tmp / "redis").start()
                try:
                    results.append(bench_store("redis", f"redis://127.0.0.1:{server.port}/0", key, args.entries,
                                               args.lookups, args.batch, server.port, None))
                finally:
                    server.stop()
            else:
                print(f"error: --stores: unknown store {kind!r}", file=sys.stderr)
                return 2
            r = results[-1]
            print(f"{r['store']:6s} {r['entries']:>9,d} entries  {r['bytes_per_entry']:7.1f} B/entry  "
                  f"record {r['records_per_s']:>8,d}/s  "
                  f"lookup (Perl, plugin path) {r['perl_lookups_per_s']:>7,d} msg/s  p50 {r['perl_p50_ms']:.3f} ms  "
                  f"p99 {r['perl_p99_ms']:.3f} ms  hits {r['perl_hits']}/{r['lookup_messages']}  |  "
                  f"Python {r['python_lookups_per_s']:>7,d} msg/s  p50 {r['python_p50_ms']:.3f} ms  p99 {r['python_p99_ms']:.3f} ms",
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpus": os.cpu_count(), "runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
