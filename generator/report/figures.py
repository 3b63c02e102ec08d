"""The figures of `bouncegen report`, accumulated line by line in bounded memory.

Each method named by a shape (shapes.py, ``event``) takes (time, groups, facts, syslog host).
Nothing keeps a line or a message: counters, per-bucket counters (bounded by the time span the
log covers, not its size), latency histograms with about 1 % resolution (so percentiles need no
list of samples), and top-N tables pruned to the heaviest keys past a cap (exact below it).

Where the milter's refusals come from: its own decision lines when the log has any (they carry
the rules, points and latency); else Postfix's milter-reject lines with bouncegen's reply texts
(a host whose milter logs elsewhere). Both are never added up.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from datetime import datetime

from . import shapes

TOP_CAP = 20000  # keys a top-N table holds before the lightest half is dropped


class Histogram:
    """Milliseconds in bins: exact below 200 ms, then 2 % wide."""

    __slots__ = ("bins", "n", "max")

    def __init__(self) -> None:
        self.bins: Counter[int] = Counter()
        self.n = 0
        self.max = 0.0

    @staticmethod
    def _bin(ms: float) -> int:
        return int(ms) if ms < 200 else 200 + int(math.log(ms / 200) / math.log(1.02))

    @staticmethod
    def _value(b: int) -> float:
        return float(b) if b < 200 else 200 * 1.02 ** (b - 200)

    def add(self, ms: float) -> None:
        self.bins[self._bin(ms)] += 1
        self.n += 1
        self.max = max(self.max, ms)

    def merge(self, other: "Histogram") -> None:
        self.bins.update(other.bins)
        self.n += other.n
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float | None:
        if not self.n:
            return None
        rank = max(1, math.ceil(q / 100 * self.n))
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen >= rank:
                return round(min(self._value(b), self.max), 1)
        return round(self.max, 1)

    def summary(self) -> dict:
        return {"n": self.n, "p50": self.percentile(50), "p95": self.percentile(95), "p99": self.percentile(99),
                "max": round(self.max, 1) if self.n else None}


class Top:
    """Counts per key (messages, refused); approximate past TOP_CAP keys (lightest half dropped)."""

    def __init__(self, cap: int = TOP_CAP):
        self.rows: dict[str, list[int]] = {}
        self.cap = cap
        self.pruned = False

    def add(self, key: str, refused: bool) -> None:
        row = self.rows.get(key)
        if row is None:
            if len(self.rows) >= self.cap:
                keep = sorted(self.rows.items(), key=lambda kv: -kv[1][0])[: self.cap // 2]
                self.rows, self.pruned = dict(keep), True
            row = self.rows[key] = [0, 0]
        row[0] += 1
        row[1] += refused

    def top(self, n: int) -> list[tuple[str, int, int]]:
        rows = sorted(self.rows.items(), key=lambda kv: (-kv[1][0], kv[0]))[:n]
        return [(k, v[0], v[1]) for k, v in rows]


class Refusals:
    """Refusals by family and stage, per time bucket, and who sent them."""

    def __init__(self) -> None:
        self.family: Counter[str] = Counter()
        self.stage: Counter[str] = Counter()
        self.buckets: dict[int, Counter[str]] = {}
        self.hours: Counter[int] = Counter()
        self.total = 0

    def add(self, bucket: int, hour: int, stage: str, family: str) -> None:
        self.total += 1
        self.family[family] += 1
        self.stage[stage] += 1
        self.buckets.setdefault(bucket, Counter())[family] += 1
        self.hours[hour] += 1

    def merge(self, other: "Refusals") -> None:
        self.total += other.total
        self.family.update(other.family)
        self.stage.update(other.stage)
        self.hours.update(other.hours)
        for b, c in other.buckets.items():
            self.buckets.setdefault(b, Counter()).update(c)


_V4 = re.compile(r"(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}")


def network(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) a client address belongs to."""
    m = _V4.fullmatch(ip)
    if m:  # the common case, without ipaddress's object (a third of the report's time otherwise)
        return m.group(1) + ".0/24"
    try:
        addr = ipaddress.ip_address(ip.removeprefix("IPv6:"))
    except ValueError:
        return ip or "unknown"
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def _compile(table, attr):
    return [(re.compile(getattr(e, attr) if attr else e[0]), e) for e in table]


def _first_label(compiled, text: str) -> str:
    """The label of the first (pattern, label) entry of COMPILED (by _compile) whose pattern TEXT
    matches; "other" when none does."""
    return next((label for rx, (_, label) in compiled if rx.search(text)), "other")


class Figures:
    """The sink of reader.read: one method per shape event."""

    def __init__(self, rule_families: dict[str, tuple[int, str]] | None = None, resolution: int = 60):
        self.rule_families = rule_families or {}
        self.resolution = resolution  # seconds per time bucket (60 for the report, 1 for the storm)
        self.verdicts: Counter[str] = Counter()
        self.judged = 0
        self.accepted = 0
        self.refused = Refusals()        # Postfix maps + the milter's own decision lines
        self.pf_milter = Refusals()      # the milter's refusals as Postfix logged them
        self.tempfail: Counter[str] = Counter()
        self.pf_tempfail: Counter[str] = Counter()
        self.milter_warnings: Counter[str] = Counter()  # Postfix's warnings, per milter address
        self.rescued: Counter[str] = Counter()
        self.unjudged: Counter[str] = Counter()
        self.latency = Histogram()
        self.lat_buckets: dict[int, Histogram] = {}
        self.hours: dict[int, Counter[str]] = {}
        self.buckets: dict[int, Counter[str]] = {}  # tempfailed, delivered, sav per bucket
        self.networks = Top()
        self.hosts = Top()
        self.sav: Counter[str] = Counter()
        self.relay: Counter[str] = Counter()
        self.other_milters: Counter[str] = Counter()
        self.delivered = 0
        self.first: float | None = None
        self.last: float | None = None
        self.syslog_hosts: Counter[str] = Counter()
        self._reasons = _compile(shapes.REASONS, "pattern")
        self._tempfail_rx = _compile(shapes.TEMPFAIL_REASONS, None)
        self._map_rx = _compile(shapes.MAP_FAMILIES, None)
        self._replies = _compile(shapes.MILTER_REPLIES, "pattern")
        self._rescue_tests = _compile(shapes.RESCUE_TESTS, None)
        self._net_cache: dict[str, str] = {}

    # -- helpers --------------------------------------------------------------------------------
    def _tick(self, ts: float, host: str) -> tuple[int, int]:
        if self.first is None or ts < self.first:
            self.first = ts
        if self.last is None or ts > self.last:
            self.last = ts
        self.syslog_hosts[host] += 1
        return int(ts // self.resolution) * self.resolution, int(ts // 3600) * 3600

    def _hour(self, hour: int, what: str) -> None:
        self.hours.setdefault(hour, Counter())[what] += 1

    def _bucket(self, bucket: int, what: str, n: int = 1) -> None:
        self.buckets.setdefault(bucket, Counter())[what] += n

    def _source(self, host: str, ip: str, refused: bool) -> None:
        net = self._net_cache.get(ip)
        if net is None:
            if len(self._net_cache) > TOP_CAP:
                self._net_cache.clear()
            net = self._net_cache[ip] = network(ip)
        self.networks.add(net, refused)
        self.hosts.add(host if host and host != "unknown" and not host.startswith("[") else f"unknown[{ip}]", refused)

    def family_of(self, rules: list[str]) -> str:
        known = [self.rule_families[r] for r in rules if r in self.rule_families]
        if known:
            return min(known)[1]
        return rules[0].removeprefix("BG_").lower() if rules else "other"

    # -- events (shapes.py) ---------------------------------------------------------------------
    def decision(self, ts: float, g: dict, facts: dict, host: str) -> None:
        bucket, hour = self._tick(ts, host)
        verdict, reason = g["verdict"], g["reason"] or ""
        self.verdicts[verdict] += 1
        for rx, r in self._reasons:
            if r.verdict == verdict and (m := rx.search(reason)):
                label = r.label or m.groupdict().get("label") or "other"
                if r.kind == "refused":
                    self.refused.add(bucket, hour, r.stage, label)
                    self._hour(hour, "refused")
                    self._source(g["host"], g["ip"], True)
                elif r.kind == "rescued":
                    self.rescued[label] += 1
                    self._hour(hour, "rescued")
                else:
                    self.unjudged[label] += 1
                return
        # A content verdict (spamd was asked), or a tempfail.
        ms = float(g["ms"])
        if verdict == "tempfail":
            self.tempfail[_first_label(self._tempfail_rx, reason)] += 1
            self._hour(hour, "tempfailed")
            self._bucket(bucket, "tempfailed")
            if g["points"] is None:
                return
        if g["points"] is not None or ms > 0:
            self.latency.add(ms)
            self.lat_buckets.setdefault(bucket, Histogram()).add(ms)
        self.judged += 1
        self._hour(hour, "judged")
        if verdict == "reject":
            rules = (g["rules"] or "").split(",")
            self.refused.add(bucket, hour, "milter (SpamAssassin)", self.family_of([r for r in rules if r != "-"]))
            self._hour(hour, "refused")
            self._source(g["host"], g["ip"], True)
        elif verdict == "accept":
            self.accepted += 1
            self._hour(hour, "accepted")
            self._source(g["host"], g["ip"], False)
            # The milter names the ruleset's rescue labels in rules= (and spamd's whole list in
            # tests=): one count per message, its strongest evidence (shapes.RESCUE_TESTS' order).
            names = set((g["rules"] or "").split(",")) | set((g["tests"] or "").split(","))
            for rx, (_, label) in self._rescue_tests:
                if any(rx.match(name) for name in names):
                    self.rescued[label] += 1
                    self._hour(hour, "rescued")
                    break

    def recorder(self, ts: float, g: dict, facts: dict, host: str) -> None:
        self._tick(ts, host)
        n = 1 + int(g.get("more") or 0)
        self.relay[facts["what"]] += n

    def map_reject(self, ts: float, g: dict, facts: dict, host: str) -> None:
        bucket, hour = self._tick(ts, host)
        self.refused.add(bucket, hour, f"{g['where']}_checks", _first_label(self._map_rx, g["text"]))
        self._hour(hour, "refused")
        self._source(g["host"], g["ip"], True)

    def data_reject(self, ts: float, g: dict, facts: dict, host: str) -> None:
        family = _first_label(self._map_rx, g["text"])
        if family == "other":  # another site's smtpd_data_restrictions: not bouncegen's
            return
        bucket, hour = self._tick(ts, host)
        self.refused.add(bucket, hour, facts["stage"], family)
        self._hour(hour, "refused")
        self._source(g["host"], g["ip"], True)

    def postfix_milter_reject(self, ts: float, g: dict, facts: dict, host: str) -> None:
        for rx, reply in self._replies:
            m = rx.search(g["text"])
            if m is None:
                continue
            bucket, hour = self._tick(ts, host)
            if reply.kind == "tempfailed":
                if g["step"] in ("CONNECT", "EHLO", "HELO", "XCLIENT", "STARTTLS"):
                    return  # before a transaction: Postfix says it again at MAIL, count it there
                self.pf_tempfail[reply.label] += 1
            else:
                rules = (m.groupdict().get("rules") or "").split()
                self.pf_milter.add(bucket, hour, reply.stage, reply.family or self.family_of(rules))
            return
        self.other_milters[g["dsn"][0] + "xx"] += 1

    def milter_warning(self, ts: float, g: dict, facts: dict, host: str) -> None:
        self._tick(ts, host)
        self.milter_warnings[f"{g['milter']}: {_first_label(self._tempfail_rx, g['why'])}"] += 1

    def session(self, ts: float, g: dict, facts: dict, host: str) -> None:
        counts = dict(kv.split("=", 1) for kv in g["counts"].split())
        if "mail" not in counts or "rcpt" not in counts or "data" in counts or "bdat" in counts:
            return
        bucket, hour = self._tick(ts, host)
        ok, _, total = counts["rcpt"].partition("/")
        answered = not total or ok == total
        self.sav["answered" if answered else "refused"] += 1
        self._bucket(bucket, "sav")
        self._hour(hour, "sav")

    def delivery(self, ts: float, g: dict, facts: dict, host: str) -> None:
        bucket, hour = self._tick(ts, host)
        self.delivered += 1
        self._bucket(bucket, "delivered")
        self._hour(hour, "delivered")

    # -- results --------------------------------------------------------------------------------
    def finish(self) -> list[str]:
        """Settle where the milter's figures come from; notes for the reader."""
        notes = []
        if not self.verdicts and self.pf_milter.total:
            self.refused.merge(self.pf_milter)
            for h, n in self.pf_milter.hours.items():
                self.hours.setdefault(h, Counter())["refused"] += n
            notes.append("no milter decision lines: the milter's refusals are counted from Postfix's "
                         "milter-reject lines (no latency, no accepted count)")
        if not self.verdicts:
            self.tempfail.update(self.pf_tempfail)
        else:
            # Postfix's own word on a milter it could not reach (no milter line exists for it).
            for label, n in self.pf_tempfail.items():
                if label != "milter tempfail":
                    self.tempfail[label] += n
        if self.networks.pruned:
            notes.append(f"more than {TOP_CAP} client networks: the top tables are approximate")
        return notes


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")
