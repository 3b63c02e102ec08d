"""``bouncegen milter --check``: is the milter ready to take Postfix's mail? The config test that
an install gates on and a monitor can run (as ``opendkim -n`` is opendkim's).

The relay role (a settings file with ``role = "relay"``) is checked by relay_check: its settings;
with a ledger its key and its store (a Redis store must answer a lookup; an SQLite store's
directory must exist: the check, often run as root, never creates the database the service user
writes); with BATV its keys; and the milter handshake on its socket. The MX role: four checks,
in order, each failure one line naming what failed:

1. settings: the file parses (Settings.load); with ``[batv]``, the key file reads (an
   unreadable one would make every tagged recipient and every refusal at DATA a 4xx);
2. spamd: answers PING (SPAMC/1.5, its own protocol) at the address the settings name;
3. ledger (when the ruleset has one: BG_LEDGER_UNAVAIL is among the settings' scores): spamd
   judges a probe that refers to a Message-ID, so the plugin must look it up in the store from
   inside the running spamd (its user, its unit's sandbox); BG_LEDGER_UNAVAIL in the answer means
   the store cannot be opened there, and every refusal in the session would become a 4xx. The
   cause is taken from spamd's own warning in the journal where there is one;
4. milter: something listens on the milter socket and completes a milter handshake — the
   SMFIC_OPTNEG negotiation Postfix opens every connection with, by hand: a packet is a 4-byte
   big-endian length, a command byte and its data; OPTNEG carries the protocol version, the
   actions and the protocol steps offered, and libmilter answers with its own OPTNEG.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

from .. import engines
from ..errors import BouncegenError
from ..facts import LEDGER_UNAVAIL, LEDGER_UNAVAIL_LOG
from ..ledger import keys, open_store
from ..ledger.store import mask_url, parse_store_url
from .relay import RelaySettings, role
from .settings import Settings
from .spamc import SpamdError, spamd_symbols

SMFIC_OPTNEG = b"O"
SMFIC_QUIT = b"Q"
MILTER_VERSION = 6          # the version Postfix speaks by default (milter_protocol = 6)
SMFIF_ALL = 0x1FF           # every action up to version 6 (add/change headers, ..., SETSYMLIST)
SMFIP_ALL = 0x1FFFFF        # every protocol step flag up to version 6


class CheckError(BouncegenError):
    """A failed readiness check (exit status 1): spamd or the milter socket."""


def spamd_ping(host: str, port: int, timeout: float) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING SPAMC/1.5\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            answer = s.recv(200)
    except OSError as exc:
        raise CheckError(f"spamd at {host}:{port}: {exc.strerror or exc}") from None
    first = answer.split(b"\r\n", 1)[0]
    if not (first.startswith(b"SPAMD/") and first.endswith(b" PONG")):
        raise CheckError(f"spamd at {host}:{port}: answered {first[:80]!r} to PING")


# A message the plugin must look up (In-Reply-To:) and that nothing records: the answer says
# whether the lookup could be made, never whether it hit.
PROBE = (b"From: bouncegen health check <postmaster@bouncegen.invalid>\r\n"
         b"To: postmaster@bouncegen.invalid\r\nSubject: bouncegen ledger probe\r\n"
         b"Message-ID: <probe.reply@bouncegen.invalid>\r\n"
         b"In-Reply-To: <probe.original@bouncegen.invalid>\r\n\r\nledger probe\r\n")


def ledger_probe(host: str, port: int, timeout: float, *, unit: str = "bouncegen-spamd.service") -> None:
    """spamd at HOST:PORT looks a probe up in the ledger; CheckError when it cannot (the cause
    from UNIT's journal where systemd runs)."""
    try:
        tests = spamd_symbols(PROBE, host, port, timeout)
    except SpamdError as exc:
        raise CheckError(f"ledger: spamd at {host}:{port} did not judge the probe: {exc}") from None
    if LEDGER_UNAVAIL not in tests:
        return
    cause = _journal_cause(unit)
    raise CheckError(f"ledger: spamd at {host}:{port} cannot open the sent-mail ledger ({LEDGER_UNAVAIL} on a probe): "
                     + (cause or "see spamd's log; bouncegen ledger check INVENTORY tests the store's rights"))


def _journal_cause(unit: str) -> str:
    """The newest 'ledger ... unavailable: CAUSE' line UNIT logged, or ''."""
    journalctl = engines.which("journalctl")
    if not journalctl or not Path("/run/systemd/system").is_dir():
        return ""
    proc = engines.run([journalctl, "--no-pager", "-q", "-o", "cat", "-u", unit, "-n", "200", "--since", "-10min"])
    for line in reversed(proc.stdout.splitlines()):
        m = LEDGER_UNAVAIL_LOG.search(line)
        if m:
            return f"{m.group(1)}: {m.group(2)} (in {unit})"
    return ""


def _connect(address: str, timeout: float) -> socket.socket:
    """A connection to a milter address in Postfix's form: inet:HOST:PORT or unix:/PATH."""
    if address.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(address[5:])
        return s
    host, _, port = address[5:].rpartition(":")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)


def _read_packet(s: socket.socket) -> tuple[bytes, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise ConnectionError("connection closed during the handshake")
            data += chunk
        return data

    (length,) = struct.unpack("!I", exactly(4))
    if not 1 <= length <= 65536:
        raise ConnectionError(f"not a milter packet (length {length})")
    body = exactly(length)
    return body[:1], body[1:]


def milter_handshake(address: str, timeout: float) -> tuple[int, int, int]:
    """Negotiate with the milter at ADDRESS as Postfix does; returns its (version, actions,
    protocol); any failure raises CheckError."""
    try:
        with _connect(address, timeout) as s:
            s.settimeout(timeout)
            data = struct.pack("!III", MILTER_VERSION, SMFIF_ALL, SMFIP_ALL)
            s.sendall(struct.pack("!I", 1 + len(data)) + SMFIC_OPTNEG + data)
            cmd, reply = _read_packet(s)
            if cmd != SMFIC_OPTNEG or len(reply) < 12:
                raise ConnectionError(f"answered {cmd!r} instead of an OPTNEG")
            version, actions, protocol = struct.unpack("!III", reply[:12])
            s.sendall(struct.pack("!I", 1) + SMFIC_QUIT)
    except (OSError, ValueError, struct.error) as exc:
        raise CheckError(f"milter at {address}: {getattr(exc, 'strerror', None) or exc}") from None
    return version, actions, protocol


def relay_check(config: str | Path, *, timeout: float = 5.0) -> str:
    """The relay recorder's checks; the one OK line, or UsageError (settings) / CheckError."""
    t0 = time.monotonic()
    cfg = RelaySettings.load(config)
    done = []
    if cfg.store is not None and cfg.key_file is not None:  # a ledger to record into
        try:
            key = keys.load_key(cfg.key_file)
            url = parse_store_url(cfg.store)
            if url.scheme != "sqlite":
                with open_store(url, key, cfg.days, timeout=timeout) as store:
                    store.lookup(["<bouncegen-check@invalid>"])
        except BouncegenError as exc:
            raise CheckError(f"ledger: {exc.problems[0]}") from None
        db_dir = Path(url.path).parent if url.scheme == "sqlite" and url.path is not None else None
        if db_dir is not None and not db_dir.is_dir():
            raise CheckError(f"ledger {url.shown}: no directory {db_dir}")
        done.append(f"ledger {mask_url(cfg.store)} reachable")
    if cfg.signer is not None:
        try:
            cfg.signer.keys.get()  # unsigned mail must not leave: the MX would refuse its bounces
        except BouncegenError as exc:
            raise CheckError(f"BATV: {exc.problems[0]}") from None
        done.append("BATV keys read")
    version, _, _ = milter_handshake(cfg.socket, timeout)
    ms = (time.monotonic() - t0) * 1000
    return (f"OK: {config}: relay milter, {', '.join(done)}, "
            f"milter {cfg.socket} negotiated (protocol version {version}), {ms:.0f} ms")


def check(config: str | Path, *, timeout: float = 5.0) -> str:
    """All four checks (relay_check for a relay-role settings file); the one OK line, or an
    exception naming what failed (UsageError for the settings, CheckError for spamd and the
    milter socket)."""
    if role(config) == "relay":
        return relay_check(config, timeout=timeout)
    t0 = time.monotonic()
    cfg = Settings.load(config)
    batv = f", BATV keys {len(cfg.batv.keys.get().keys)}" if cfg.batv is not None else ""  # BatvError: exit 1
    spamd_ping(cfg.spamd_host, cfg.spamd_port, timeout)
    ledger = LEDGER_UNAVAIL in cfg.scores
    if ledger:
        ledger_probe(cfg.spamd_host, cfg.spamd_port, max(timeout, cfg.timeout))
    version, _, _ = milter_handshake(cfg.socket, timeout)
    ms = (time.monotonic() - t0) * 1000
    return (f"OK: {config}: spamd {cfg.spamd_host}:{cfg.spamd_port} answers PING"
            + (", looks up the ledger" if ledger else "")
            + f", milter {cfg.socket} negotiated (protocol version {version}){batv}, {ms:.0f} ms")


def wait_ready(config: str | Path, deadline_s: float, *, alive=lambda: True) -> str:
    """check() until it passes or DEADLINE_S seconds have gone (a service just started needs a
    moment to listen); ALIVE() returning False (the process ended) stops early. The last
    failure is raised."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            return check(config, timeout=min(5.0, max(0.5, end - time.monotonic())))
        except CheckError:
            if time.monotonic() >= end or not alive():
                raise
            time.sleep(0.2)
