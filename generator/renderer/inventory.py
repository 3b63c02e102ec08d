"""Load and validate the site inventory (TOML).

The inventory is the only user input that reaches a pattern, so it is checked strictly: every
problem is collected (one line each, naming the file and the key path, e.g.
``relay[1].addresses[0]``) and reported at once; nothing is rendered from an invalid inventory.

Libraries, not hand-written parsers: ``tomllib`` reads the file, ``email_validator`` checks and
IDNA-normalises mail domains, ``idna`` host names, ``ipaddress`` addresses and CIDR ranges.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import email_validator
import idna

from .. import batv as batv_scheme, defaults
from ..defaults import LEDGER_DAYS as LEDGER_DEFAULT_DAYS, LEDGER_MAX_DAYS
from ..errors import InventoryError, LedgerError
from ..ledger.store import parse_store_url
from . import dkim as dkim_keys

DSN_POLICIES = ("reject", "spamassassin")
MAP_TYPES = ("pcre", "regexp")
SCORE_POLICIES = ("block", "tag")

POLICY_DEFAULTS = defaults.POLICY
# Above 100 a verdict would drown every negative score a host gives (and no host's level is that
# high); two decimals, as the ruleset writes its scores, so the points are never rounded below
# the level they were set to reach.
POINTS_RANGE = (1.0, 100.0)

# Ranges wider than these are configuration mistakes, not relays: they would rescue bounces from
# a large part of the Internet.
MIN_PREFIX = {4: 16, 6: 32}

# Documentation ranges (RFC 5737, RFC 3849) are not globally routable, but they are what examples
# and tests are written with; every other non-global address is refused (see _address).
_DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]

_LDH_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_GLOB_LABEL = re.compile(r"^[a-z0-9*?-]{1,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Relay:
    host: str  # ASCII, lower case; may contain * and ?
    addresses: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @property
    def is_glob(self) -> bool:
        return "*" in self.host or "?" in self.host


@dataclass(frozen=True)
class Policy:
    dsn: str = POLICY_DEFAULTS["dsn"]
    map_type: str = POLICY_DEFAULTS["map_type"]
    scores: str = POLICY_DEFAULTS["scores"]
    points: float = POLICY_DEFAULTS["points"]


# [milter] (optional): the SMTP-time SpamAssassin verdict of policy.dsn = "spamassassin".
MILTER_DEFAULTS = defaults.MILTER
_MILTER_SOCKET = re.compile(r"^(?:inet:(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}|unix:/[!-~]+)$")
_EXECUTABLE = re.compile(r"^/[A-Za-z0-9._+/-]+$")  # absolute, nothing systemd would expand or split
_HOST_PORT = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")


@dataclass(frozen=True)
class MilterSettings:
    socket: str = MILTER_DEFAULTS["socket"]
    relay_socket: str = MILTER_DEFAULTS["relay_socket"]
    spamd: str = MILTER_DEFAULTS["spamd"]
    timeout: int = MILTER_DEFAULTS["timeout"]
    exempt_networks: tuple = ()
    bouncegen: str = MILTER_DEFAULTS["bouncegen"]
    spamd_children: int = MILTER_DEFAULTS["spamd_children"]
    concurrency: int = MILTER_DEFAULTS["concurrency"]
    scan_limit_kb: int = MILTER_DEFAULTS["scan_limit_kb"]

    @property
    def spamd_port(self) -> int:
        return int(self.spamd.rpartition(":")[2])

    @property
    def milter_concurrency(self) -> int:
        """Scans in flight at once: ``concurrency``, or spamd's children when it is 0."""
        return self.concurrency or self.spamd_children


# [ledger] (optional): the sent-mail ledger (docs/ledger.md); see bouncegen.ledger.
LEDGER_KEYS = {"store", "key_file", "days"}


@dataclass(frozen=True)
class LedgerSettings:
    store: str            # "sqlite:/abs/path.db" or "redis://[:password@]host[:port][/db]"
    key_file: str         # absolute path of the site key (64 hex characters)
    days: int = LEDGER_DEFAULT_DAYS  # how long a recorded Message-ID counts, 1..365

    @property
    def store_word(self) -> str:
        """The store URL as one word of a SpamAssassin setting (the plugin reads it; a Redis
        password is in it, percent-encoded where needed). ValueError if it is not one word."""
        if not re.fullmatch(r"[!-~]+", self.store) or "#" in self.store:
            raise ValueError(f"cannot write the ledger store {self.store_shown!r} as one word of a SpamAssassin setting")
        return self.store

    @property
    def store_shown(self) -> str:
        """The store URL as it may be printed: a Redis password as ***."""
        return parse_store_url(self.store).shown


# [batv] (optional): Bounce Address Tag Validation (docs/batv.md); see bouncegen.batv.
BATV_KEYS = {"domains", "key_file", "days", "exempt_senders", "exempt_recipients", "enforce"}


@dataclass(frozen=True)
class BatvSettings:
    domains: tuple[str, ...]              # a subset of [site] domains: their senders are signed
    key_file: str                         # absolute path of the key file (bouncegen batv init)
    days: int = batv_scheme.DEFAULT_DAYS  # how long a tag is valid
    exempt_senders: tuple[str, ...] = ()     # addresses or domains never signed
    exempt_recipients: tuple[str, ...] = ()  # addresses or domains never required to be signed
    # Refuse null-sender mail to unsigned addresses at DATA; false during a roll-out (the relays
    # sign, the MX accepts tags, and bounces of mail sent before that still arrive unsigned).
    enforce: bool = True

    @property
    def unsigned_recipients(self) -> tuple[str, ...]:
        """Recipients a bounce may reach unsigned: the exempt recipients, and the exempt senders
        too (their mail leaves unsigned, so their bounces come back unsigned)."""
        return tuple(sorted(set(self.exempt_recipients) | set(self.exempt_senders)))


@dataclass(frozen=True)
class Inventory:
    path: Path
    sha256: str
    domains: tuple[str, ...]
    relays: tuple[Relay, ...]
    mx_hosts: tuple[str, ...] = ()
    policy: Policy = field(default_factory=Policy)
    milter: MilterSettings = field(default_factory=MilterSettings)
    ledger: LedgerSettings | None = None  # None: no [ledger] table, no ledger
    batv: BatvSettings | None = None      # None: no [batv] table, no BATV
    dkim: dkim_keys.DkimSettings | None = None  # None: no [dkim] table, no DKIM evidence

    @property
    def relay_hosts(self) -> tuple[str, ...]:
        return tuple(r.host for r in self.relays)

    @property
    def relay_networks(self) -> tuple:
        """All relay addresses and ranges, IPv4 first, each sorted."""
        nets = {n for r in self.relays for n in r.addresses}
        return tuple(sorted(nets, key=lambda n: (n.version, n.network_address, n.prefixlen)))


class _Problems:
    """Collects one line per problem, each naming the file and the key path."""

    def __init__(self, label: str):
        self.label = label
        self.lines: list[str] = []

    def add(self, key: str, what: str) -> None:
        self.lines.append(f"{self.label}: {key}: {what}" if key else f"{self.label}: {what}")


def _show(value: Any) -> str:
    """A value as the user would recognise it, with control characters made visible."""
    return repr(value) if isinstance(value, str) else repr(value)


def _string(value: Any, key: str, problems: _Problems) -> str | None:
    if not isinstance(value, str):
        problems.add(key, f"expected a string, got {type(value).__name__} {_show(value)}")
        return None
    if _CONTROL.search(value):
        problems.add(key, f"{_show(value)} contains a control character")
        return None
    if value != value.strip() or not value:
        problems.add(key, f"{_show(value)} is empty or has surrounding white space")
        return None
    return value


def _whole_number(table: dict, name: str, key: str, low: int, high: int, unit: str, problems: _Problems,
                  default: int) -> int:
    """TABLE[NAME], a whole number from LOW to HIGH (not a bool: TOML's true is no count); DEFAULT
    when it is absent or (with a problem naming KEY and the UNIT counted) anything else."""
    if name not in table:
        return default
    n = table[name]
    if not isinstance(n, int) or isinstance(n, bool) or not low <= n <= high:
        problems.add(key, f"expected a whole number of {unit} from {low} to {high}, got {_show(n)}")
        return default
    return n


def _string_list(value: Any, key: str, problems: _Problems, *, required: bool) -> list[tuple[str, str]]:
    """[(key path, string)] for a list of strings; problems for anything else."""
    if not isinstance(value, list):
        problems.add(key, f"expected a list of strings, got {type(value).__name__} {_show(value)}")
        return []
    if required and not value:
        problems.add(key, "must list at least one entry")
    out = []
    for i, item in enumerate(value):
        s = _string(item, f"{key}[{i}]", problems)
        if s is not None:
            out.append((f"{key}[{i}]", s))
    return out


def _table(value: Any, key: str, allowed: set[str], problems: _Problems) -> dict:
    if not isinstance(value, dict):
        problems.add(key, f"expected a table, got {type(value).__name__} {_show(value)}")
        return {}
    for k in sorted(set(value) - allowed):
        problems.add(f"{key}.{k}", f"unknown key (expected one of: {', '.join(sorted(allowed))})")
    return value


def _optional_table(value: Any, key: str, allowed: set[str], problems: _Problems) -> dict | None:
    """An optional table [KEY] (as _table), or None when the inventory has none or KEY is not a
    table: then the one problem says so, without a "missing" line for each of its keys."""
    if value is None:
        return None
    table = _table(value, key, allowed, problems)
    return table if isinstance(value, dict) else None


def _domain(value: str, key: str, problems: _Problems) -> str | None:
    """A mail domain, checked by email-validator and returned in its ASCII (IDNA) form."""
    try:
        result = email_validator.validate_email(
            f"postmaster@{value}", check_deliverability=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:
        problems.add(key, f"{_show(value)} is not a mail domain: {exc}")
        return None
    return result.ascii_domain.lower().rstrip(".")


def _hostname(value: str, key: str, problems: _Problems, *, glob: bool) -> str | None:
    """A host name (IDN accepted, returned as ASCII), or with glob=True a VBounce-style glob."""
    name = value.lower().rstrip(".")
    labels = name.split(".")
    wild = [i for i, label in enumerate(labels) if "*" in label or "?" in label]
    if wild and not glob:
        problems.add(key, f"{_show(value)}: wildcards are not allowed here")
        return None
    if wild:
        # The last two labels must be literal: `*`, `*.*`, `*.org` would match half the Internet.
        if len(labels) < 3 or max(wild) >= len(labels) - 2:
            problems.add(
                key,
                f"{_show(value)} is too broad: a glob must keep the last two labels literal "
                "(e.g. 'smtp*.example.org')",
            )
            return None
    out = []
    for label in labels:
        if "*" in label or "?" in label:
            if not _GLOB_LABEL.match(label):
                problems.add(key, f"{_show(value)} is not a host name or glob (label {label!r})")
                return None
            out.append(label)
            continue
        try:
            ascii_label = idna.encode(label, uts46=True).decode("ascii") if label else ""
        except idna.IDNAError:
            ascii_label = ""
        if not _LDH_LABEL.match(ascii_label):
            problems.add(key, f"{_show(value)} is not a host name (label {label!r})")
            return None
        out.append(ascii_label)
    if len(out) < 2:
        problems.add(key, f"{_show(value)} is not a fully qualified host name")
        return None
    host = ".".join(out)
    if len(host) > 253:
        problems.add(key, f"{_show(value)} is longer than 253 characters")
        return None
    return host


def _address(value: str, key: str, problems: _Problems):
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            loose = ipaddress.ip_network(value, strict=False)
            problems.add(key, f"{_show(value)} has host bits set (did you mean '{loose}'?)")
        else:
            problems.add(key, f"{_show(value)} is not an IP address or CIDR range")
        return None
    if net.prefixlen < MIN_PREFIX[net.version]:
        problems.add(
            key,
            f"{_show(value)} is too broad: IPv{net.version} ranges must be /{MIN_PREFIX[net.version]} or narrower",
        )
        return None
    documentation = any(net.subnet_of(d) for d in _DOC_NETS if d.version == net.version)  # type: ignore[arg-type]
    if not net.is_global and not documentation:
        # Private, loopback, link-local...: every site's internal hops use these, so a quoted
        # Received: line with one proves nothing about our relays.
        problems.add(
            key,
            f"{_show(value)} is not a public address; list the address your relay uses on the Internet",
        )
        return None
    return net


def _load_toml(path: Path, label: str) -> tuple[dict, bytes]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InventoryError(f"{label}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{label}: invalid TOML: {exc}") from None
    return data, raw


def load(path: str | Path) -> Inventory:
    """Read and validate an inventory; raise InventoryError listing every problem."""
    path = Path(path)
    label = str(path)
    data, raw = _load_toml(path, label)
    p = _Problems(label)

    _table(data, "", {"site", "relay", "mx", "policy", "milter", "ledger", "batv", "dkim"}, p)
    if p.lines:  # unknown top-level keys print as ".name": say it plainly
        p.lines = [line.replace(f"{label}: .", f"{label}: ", 1) for line in p.lines]

    # [site]
    domains: list[str] = []
    if "site" not in data:
        p.add("site", "missing table [site] with domains = [...]")
    else:
        site = _table(data["site"], "site", {"domains"}, p)
        if isinstance(site, dict):
            if "domains" not in site:
                p.add("site.domains", "missing: list the mail domains your users send from")
            else:
                for key, value in _string_list(site["domains"], "site.domains", p, required=True):
                    d = _domain(value, key, p)
                    if d is not None:
                        domains.append(d)

    # [[relay]]
    relays: list[Relay] = []
    if "relay" not in data:
        p.add("relay", "missing: declare at least one [[relay]] with host = \"...\"")
    elif not isinstance(data["relay"], list) or not all(isinstance(r, dict) for r in data["relay"]):
        p.add("relay", "expected an array of tables: write each relay as [[relay]]")
    elif not data["relay"]:
        p.add("relay", "must declare at least one [[relay]]")
    else:
        for i, r in enumerate(data["relay"]):
            key = f"relay[{i}]"
            _table(r, key, {"host", "addresses"}, p)
            host = None
            if "host" not in r:
                p.add(f"{key}.host", "missing: the relay's host name (or a glob with * and ?)")
            else:
                s = _string(r["host"], f"{key}.host", p)
                if s is not None:
                    host = _hostname(s, f"{key}.host", p, glob=True)
            nets = []
            for akey, value in _string_list(r.get("addresses", []), f"{key}.addresses", p, required=False):
                net = _address(value, akey, p)
                if net is not None:
                    nets.append(net)
            if host is not None:
                nets = sorted(set(nets), key=lambda n: (n.version, n.network_address, n.prefixlen))
                relays.append(Relay(host=host, addresses=tuple(nets)))

    # [mx]
    mx_hosts: list[str] = []
    if "mx" in data:
        mx = _table(data["mx"], "mx", {"hosts"}, p)
        if isinstance(mx, dict) and "hosts" in mx:
            for key, value in _string_list(mx["hosts"], "mx.hosts", p, required=False):
                h = _hostname(value, key, p, glob=False)
                if h is not None:
                    mx_hosts.append(h)

    # [policy]
    policy_values = dict(POLICY_DEFAULTS)
    if "policy" in data:
        pol = _table(data["policy"], "policy", set(POLICY_DEFAULTS), p)
        choices = {"dsn": DSN_POLICIES, "map_type": MAP_TYPES, "scores": SCORE_POLICIES}
        for name, allowed in choices.items():
            if isinstance(pol, dict) and name in pol:
                value = pol[name]
                if value not in allowed:
                    p.add(f"policy.{name}", f"{_show(value)} is not one of: {', '.join(map(repr, allowed))}")
                else:
                    policy_values[name] = value
        if isinstance(pol, dict) and "points" in pol:
            points = _points(pol["points"], policy_values["scores"], p)
            if points is not None:
                policy_values["points"] = points

    milter = _milter(data.get("milter"), p)
    ledger = _ledger(data.get("ledger"), p)
    batv = _batv(data.get("batv"), set(domains), p)
    dkim = _dkim(data.get("dkim"), p, domains, path.parent)

    if p.lines:
        raise InventoryError(p.lines)

    # Order has no meaning in the inventory: sort, so that output depends on content only.
    relays_by_host: dict[str, Relay] = {}
    for r in relays:
        prev = relays_by_host.get(r.host)
        merged = tuple(sorted(set((prev.addresses if prev else ()) + r.addresses),
                              key=lambda n: (n.version, n.network_address, n.prefixlen)))
        relays_by_host[r.host] = Relay(r.host, merged)
    return Inventory(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        domains=tuple(sorted(set(domains))),
        relays=tuple(relays_by_host[h] for h in sorted(relays_by_host)),
        mx_hosts=tuple(sorted(set(mx_hosts))),
        policy=Policy(**policy_values),
        milter=milter,
        ledger=ledger,
        batv=batv,
        dkim=dkim,
    )


def _points(value: Any, scores: str, p: _Problems) -> float | None:
    lo, hi = POINTS_RANGE
    if scores != "block":
        p.add("policy.points", f'only with scores = "block" (scores = {scores!r} gives 0.1-point labels)')
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        p.add("policy.points", f"{_show(value)}: expected a number of points from {lo:g} to {hi:g} "
              "(the host's spam level, e.g. 6.31 for amavisd-new as Debian ships it)")
    elif round(float(value), 2) != float(value):
        p.add("policy.points", f"{value!r}: at most two decimals (the ruleset writes scores as 6.31), "
              "so that the points are never rounded below the level they must reach")
    else:
        return float(value)
    return None


def _milter(value: Any, p: _Problems) -> MilterSettings:
    """The optional [milter] table; unknown keys and wrong types are problems like elsewhere."""
    m = _optional_table(value, "milter", set(MILTER_DEFAULTS), p)
    if m is None:
        return MilterSettings()
    out: dict[str, Any] = {}
    for name in ("socket", "relay_socket"):
        if name in m:
            s = _string(m[name], f"milter.{name}", p)
            if s is not None and not _MILTER_SOCKET.match(s):
                p.add(f"milter.{name}", f"{_show(s)} is not a milter address: 'inet:HOST:PORT' or 'unix:/PATH'")
            elif s is not None:
                out[name] = s
    if out.get("socket", MILTER_DEFAULTS["socket"]) == out.get("relay_socket", MILTER_DEFAULTS["relay_socket"]):
        # A host that is relay and MX at once runs both milters: one address cannot serve two.
        p.add("milter.relay_socket" if "relay_socket" in m else "milter.socket",
              f"{_show(out.get('socket', MILTER_DEFAULTS['socket']))} is the address of both milters: "
              "socket (the MX milter) and relay_socket (the relay recorder) must differ")
    if "spamd" in m:
        s = _string(m["spamd"], "milter.spamd", p)
        hp = _HOST_PORT.match(s) if s is not None else None
        if s is not None and (not hp or not 0 < int(hp.group(1)) < 65536):
            p.add("milter.spamd", f"{_show(s)} is not spamd's address as HOST:PORT")
        elif s is not None:
            out["spamd"] = s
    for name, low, high, what in (("timeout", 1, 250, "seconds"), ("spamd_children", 1, 64, "spamd children"),
                                  ("concurrency", 0, 256, "scans in flight (0 = as many as spamd_children)"),
                                  ("scan_limit_kb", 64, 51200, "KB")):
        out[name] = _whole_number(m, name, f"milter.{name}", low, high, what, p, MILTER_DEFAULTS[name])
    if "exempt_networks" in m:
        nets = []
        for key, s in _string_list(m["exempt_networks"], "milter.exempt_networks", p, required=False):
            try:
                nets.append(ipaddress.ip_network(s, strict=True))
            except ValueError:
                p.add(key, f"{_show(s)} is not an IP address or CIDR range")
        out["exempt_networks"] = tuple(sorted(set(nets), key=lambda n: (n.version, n.network_address, n.prefixlen)))
    if "bouncegen" in m:
        s = _string(m["bouncegen"], "milter.bouncegen", p)
        if s is not None and (not _EXECUTABLE.match(s) or "/../" in s + "/" or s.endswith("/")):
            p.add("milter.bouncegen", f"{_show(s)} is not an absolute path of the bouncegen executable "
                  "(e.g. /usr/bin/bouncegen)")
        elif s is not None:
            out["bouncegen"] = s
    return MilterSettings(**out)


def _key_path(value: Any, key: str, p: _Problems) -> str | None:
    """An absolute file path that may be written into a SpamAssassin setting and a TOML file."""
    s = _string(value, key, p)
    if s is not None and (not s.startswith("/") or s.endswith("/") or ".." in s.split("/")):
        p.add(key, f"{_show(s)} is not an absolute file path")
    elif s is not None and not re.fullmatch(r"/[A-Za-z0-9._/-]+", s):
        p.add(key, f"{_show(s)}: the path may hold only letters, digits and . _ / -")
    elif s is not None:
        return s
    return None


def _key_file(t: dict, table: str, what: str, p: _Problems) -> str | None:
    """[TABLE] key_file, required: WHAT it is says what to write when it is missing."""
    if "key_file" not in t:
        p.add(f"{table}.key_file", f"missing: {what}")
        return None
    return _key_path(t["key_file"], f"{table}.key_file", p)


def _batv(value: Any, site_domains: set[str], p: _Problems) -> BatvSettings | None:
    """The optional [batv] table: domains (a subset of [site] domains) and key_file are required,
    days defaults to 7; exemptions are addresses (local@domain) or domains, matched exactly."""
    t = _optional_table(value, "batv", BATV_KEYS, p)
    if t is None:
        return None
    before = len(p.lines)
    domains: list[str] = []
    if "domains" not in t:
        p.add("batv.domains", "missing: the site domains whose envelope senders are signed")
    else:
        for key, v in _string_list(t["domains"], "batv.domains", p, required=True):
            d = _domain(v, key, p)
            if d is not None and d not in site_domains:
                p.add(key, f"{_show(v)} is not one of [site] domains")
            elif d is not None:
                domains.append(d)
    key_file = _key_file(t, "batv", "the absolute path of the BATV key file (bouncegen batv init creates it)", p)
    days = _whole_number(t, "days", "batv.days", 1, batv_scheme.MAX_DAYS, "days", p, batv_scheme.DEFAULT_DAYS)
    enforce = True
    if "enforce" in t:
        if not isinstance(t["enforce"], bool):
            p.add("batv.enforce", f"expected true or false, got {_show(t['enforce'])}")
        else:
            enforce = t["enforce"]
    exempt: dict[str, list[str]] = {}
    for name in ("exempt_senders", "exempt_recipients"):
        out = exempt.setdefault(name, [])
        for key, v in _string_list(t.get(name, []), f"batv.{name}", p, required=False):
            if "@" in v:
                try:
                    r = email_validator.validate_email(v, check_deliverability=False, allow_smtputf8=False)
                except email_validator.EmailNotValidError as exc:
                    p.add(key, f"{_show(v)} is not a mail address or domain: {exc}")
                    continue
                out.append(f"{r.local_part}@{r.ascii_domain}".lower())
            elif "*" in v or "?" in v:
                p.add(key, f"{_show(v)}: wildcards are not allowed; list an address or a domain")
            else:
                dom = _domain(v, key, p)
                if dom is not None:
                    out.append(dom)
    if len(p.lines) > before or key_file is None:
        return None
    return BatvSettings(domains=tuple(sorted(set(domains))), key_file=key_file, days=days,
                        exempt_senders=tuple(sorted(set(exempt["exempt_senders"]))),
                        exempt_recipients=tuple(sorted(set(exempt["exempt_recipients"]))), enforce=enforce)


def _ledger(value: Any, p: _Problems) -> LedgerSettings | None:
    """The optional [ledger] table: store and key_file are required, days defaults to 30."""
    t = _optional_table(value, "ledger", LEDGER_KEYS, p)
    if t is None:
        return None
    before = len(p.lines)
    store = None
    if "store" not in t:
        p.add("ledger.store", "missing: 'sqlite:/absolute/path.db' or 'redis://[:password@]host[:port][/db]'")
    elif not isinstance(t["store"], str):
        p.add("ledger.store", f"expected a string, got {type(t['store']).__name__}")
    else:
        try:
            store = parse_store_url(t["store"]).shown and t["store"]
        except LedgerError as exc:  # its message shows the URL with the password masked
            p.add("ledger.store", str(exc))
    key_file = _key_file(t, "ledger", "the absolute path of the ledger key (bouncegen ledger init creates it)", p)
    days = _whole_number(t, "days", "ledger.days", 1, LEDGER_MAX_DAYS, "days", p, LEDGER_DEFAULT_DAYS)
    if len(p.lines) > before or store is None or key_file is None:
        return None
    return LedgerSettings(store=store, key_file=key_file, days=days)


# -- [dkim] (optional): our own DKIM signature in a returned original (docs/rescue.md) ----------
DKIM_KEYS = {"key", "max_age_days"}
DKIM_KEY_KEYS = {"domain", "selector", "public_key_file"}
_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$")


def _dkim(value: Any, p: _Problems, domains: list[str], base: Path) -> dkim_keys.DkimSettings | None:
    """The optional [dkim] table: one [[dkim.key]] or more (domain, selector, public_key_file,
    read now: a relative path is relative to the inventory's directory), max_age_days."""
    t = _optional_table(value, "dkim", DKIM_KEYS, p)
    if t is None:
        return None
    before = len(p.lines)
    max_age = _whole_number(t, "max_age_days", "dkim.max_age_days", 1, dkim_keys.MAX_AGE_DAYS, "days", p,
                            dkim_keys.DEFAULT_MAX_AGE_DAYS)
    entries = t.get("key")
    if entries is None:
        p.add("dkim.key", "missing: declare at least one [[dkim.key]] with domain, selector and public_key_file")
        return None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        p.add("dkim.key", "expected an array of tables: write each key as [[dkim.key]]")
        return None
    keys: dict[tuple[str, str], dkim_keys.DkimKey] = {}
    for i, e in enumerate(entries):
        key = f"dkim.key[{i}]"
        _table(e, key, DKIM_KEY_KEYS, p)
        for name in sorted(DKIM_KEY_KEYS - set(e)):
            p.add(f"{key}.{name}", "missing")
        domain = selector = public = None
        bits = 0
        if "domain" in e and (s := _string(e["domain"], f"{key}.domain", p)) is not None:
            d = _domain(s, f"{key}.domain", p)
            if d is not None and not any(d == own or d.endswith("." + own) for own in domains):
                p.add(f"{key}.domain", f"{_show(s)} is not one of site.domains nor a subdomain of one")
            elif d is not None:
                domain = d
        if "selector" in e and (s := _string(e["selector"], f"{key}.selector", p)) is not None:
            if not _SELECTOR.fullmatch(s.lower()):
                p.add(f"{key}.selector", f"{_show(s)} is not a DKIM selector (DNS labels: letters, digits, - and _)")
            else:
                selector = s.lower()
        if "public_key_file" in e and (s := _string(e["public_key_file"], f"{key}.public_key_file", p)) is not None:
            file = base / s
            try:
                with open(file, "rb") as fh:
                    raw = fh.read(dkim_keys.MAX_KEY_FILE + 1)
                if len(raw) > dkim_keys.MAX_KEY_FILE:
                    raise ValueError(f"is larger than {dkim_keys.MAX_KEY_FILE} bytes: not a public key")
                public, bits = dkim_keys.parse_public_key(raw.decode("ascii"))
            except OSError as exc:
                p.add(f"{key}.public_key_file", f"{_show(s)}: cannot read: {exc.strerror or exc}")
            except UnicodeDecodeError:
                p.add(f"{key}.public_key_file", f"{_show(s)}: not ASCII text (PEM or a DNS TXT record expected)")
            except ValueError as exc:
                p.add(f"{key}.public_key_file", f"{_show(s)} {exc}")
        if domain and selector and public:
            if (domain, selector) in keys:
                p.add(key, f"selector {selector!r} of {domain!r} is declared twice")
            keys[(domain, selector)] = dkim_keys.DkimKey(domain, selector, public, bits)
    if len(p.lines) > before:
        return None
    return dkim_keys.DkimSettings(keys=tuple(keys[k] for k in sorted(keys)), max_age_days=max_age)
