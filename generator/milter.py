"""bouncegen's milter: the ruleset's SpamAssassin verdict inside the SMTP session.

Why not Debian's spamass-milter: measured with Postfix 3.7 and spamass-milter 0.4.0, it accepts a
message with 250 when spamd is down (it ignores spamc's exit status, with or without spamc -x),
so a spamd outage silently switches the filter off; and it rejects on the total score of all
rules, not on the ruleset's verdict. This milter fails closed: every error is a 4xx.

Built on pymilter (the Python binding of Sendmail's libmilter, the reference implementation of
the protocol, Debian's python3-milter); spamd is asked with its own protocol (SPAMC/1.5
SYMBOLS) over TCP, with one deadline for the whole exchange. Settings: the rendered
milter/bouncegen-milter.conf (TOML), see templates/milter/.

Verdict: the points of the ruleset's verdict rules ([scores]) that the message hits, summed; at
or above the threshold the message is refused with 550 5.7.1 and a text a remote postmaster
understands. Other stock SpamAssassin rules do not count: this milter stops backscatter, it is
not a spam filter. Mail from our relays (by address, or by verified client name), from exempt
networks and from authenticated clients is accepted without asking spamd.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
import sys
import time
import tomllib
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from .errors import UsageError

ENVELOPE_HEADER = b"X-Envelope-From"


@dataclass(frozen=True)
class Settings:
    socket: str
    spamd_host: str
    spamd_port: int
    timeout: float
    threshold: float
    reject_text: str
    tempfail_text: str
    exempt_networks: tuple
    exempt_hosts: tuple[str, ...]
    scores: dict

    @classmethod
    def load(cls, path: str | Path) -> "Settings":
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            m, ex, sc = data["milter"], data.get("exempt", {}), data.get("scores", {})
            host, _, port = m["spamd"].rpartition(":")
            return cls(
                socket=m["socket"], spamd_host=host.strip("[]"), spamd_port=int(port),
                timeout=float(m["timeout"]), threshold=float(m["threshold"]),
                reject_text=m["reject_text"], tempfail_text=m["tempfail_text"],
                exempt_networks=tuple(ipaddress.ip_network(n) for n in ex.get("networks", [])),
                exempt_hosts=tuple(h.lower() for h in ex.get("hosts", [])),
                scores={str(k): float(v) for k, v in sc.items()},
            )
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
            raise UsageError(f"{path}: not a bouncegen milter settings file: {exc}") from None

    def exempt_client(self, hostname: str, addr: str | None) -> bool:
        if addr:
            try:
                ip = ipaddress.ip_address(addr.split("%")[0])
            except ValueError:
                ip = None
            if ip is not None and any(ip.version == n.version and ip in n for n in self.exempt_networks):
                return True
        # Postfix passes the client name only when its forward and reverse DNS agree ("unknown"
        # or "[addr]" otherwise), so a relay name here is not a claim the client made itself.
        name = (hostname or "").lower().rstrip(".")
        return bool(name) and not name.startswith("[") and any(fnmatch.fnmatchcase(name, h) for h in self.exempt_hosts)


class SpamdError(Exception):
    pass


def spamd_symbols(message: bytes, host: str, port: int, timeout: float) -> tuple[str, ...]:
    """The names of the rules a message hits, from spamd (SPAMC/1.5 SYMBOLS). Any failure -- no
    connection, time-out, an error status, a malformed answer -- raises SpamdError."""
    deadline = time.monotonic() + timeout
    req = b"SYMBOLS SPAMC/1.5\r\nContent-length: %d\r\nUser: bouncegen\r\n\r\n" % len(message) + message
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(req)
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SpamdError(f"spamd did not answer within {timeout:g} s")
                s.settimeout(left)
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except socket.timeout:
        raise SpamdError(f"spamd did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise SpamdError(f"spamd at {host}:{port}: {exc.strerror or exc}") from None
    raw = b"".join(chunks)
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = lines[0].split(None, 2)
    if not sep or len(status) < 2 or not status[0].startswith(b"SPAMD/") or status[1] != b"0":
        raise SpamdError(f"spamd answered {lines[0][:100]!r}")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower()] = v.strip()
    if b"spam" not in headers:  # a SYMBOLS answer always carries "Spam: True ; 7.0 / 5.0"
        raise SpamdError("spamd's answer has no Spam: header")
    if b"content-length" in headers and int(headers[b"content-length"]) != len(body):
        raise SpamdError("spamd's answer was cut short")
    return tuple(t for t in body.decode("ascii", "replace").strip().split(",") if t)


def verdict(tests: tuple[str, ...], scores: dict[str, float]) -> tuple[float, list[str]]:
    hit = sorted(t for t in tests if t in scores)
    return sum(scores[t] for t in hit), hit


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(settings: Settings) -> int:
    """Serve milter connections until SIGTERM/SIGINT (libmilter stops cleanly on both)."""
    import Milter  # pymilter; imported here so that rendering never needs it

    cfg = settings

    class BouncegenMilter(Milter.Base):
        def __init__(self):
            self.exempt = False
            self.client = ("", "")
            self.helo = ""
            self._reset()

        def _reset(self):
            self.sender = b""
            self.headers: list[bytes] = []
            self.chunks: list[bytes] = []
            self.tx_exempt = False

        def _tempfail(self, why: str):
            _log(f"tempfail: {self.client[1]}: {why}")
            self.setreply("451", "4.7.1", cfg.tempfail_text)
            return Milter.TEMPFAIL

        def connect(self, hostname, family, hostaddr):
            try:
                addr = hostaddr[0] if isinstance(hostaddr, tuple) and hostaddr else None
                self.client = (hostname or "unknown", addr or "")
                self.exempt = cfg.exempt_client(hostname, addr)
                return Milter.CONTINUE
            except Exception as exc:  # noqa: BLE001 - any failure is a tempfail
                return self._tempfail(f"connect: {exc!r}")

        def hello(self, heloname):
            self.helo = heloname or ""
            return Milter.CONTINUE

        @Milter.decode("bytes")
        def envfrom(self, mailfrom, *params):
            self._reset()
            try:
                self.sender = mailfrom if isinstance(mailfrom, bytes) else str(mailfrom).encode("utf-8", "surrogateescape")
                self.tx_exempt = bool(self.getsymval("{auth_authen}"))
                return Milter.CONTINUE
            except Exception as exc:  # noqa: BLE001
                return self._tempfail(f"envfrom: {exc!r}")

        @Milter.decode("bytes")
        def header(self, name, value):
            if not isinstance(value, bytes):
                value = str(value).encode("utf-8", "surrogateescape")
            if not isinstance(name, bytes):
                name = str(name).encode("ascii", "replace")
            # A sender must not choose the envelope sender SpamAssassin sees: drop its copy.
            if name.lower() != ENVELOPE_HEADER.lower():
                self.headers.append(name + b": " + value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n")
            return Milter.CONTINUE

        def body(self, chunk):
            self.chunks.append(chunk)
            return Milter.CONTINUE

        def eom(self):
            try:
                if self.exempt or self.tx_exempt:
                    _log(f"accept: {self.client[1]}: exempt client")
                    return Milter.ACCEPT
                qid = self.getsymval("i") or "unknown"
                myname = self.getsymval("j") or "localhost"
                sender = self.sender.strip(b"<>")
                # What a delivery agent would add: the envelope sender, and the hop from the
                # client as Postfix writes it, so SpamAssassin judges the message as it would
                # after delivery (the client is an untrusted relay, never ALL_TRUSTED).
                received = ("Received: from %s (%s [%s])\r\n\tby %s (Postfix) with ESMTP id %s;\r\n\t%s\r\n" % (
                    self.helo or "unknown", self.client[0], self.client[1], myname, qid, formatdate(localtime=False)))
                msg = b"".join([ENVELOPE_HEADER + b": <" + sender + b">\r\n", received.encode("utf-8", "replace"),
                                *self.headers, b"\r\n", *self.chunks])
                t0 = time.monotonic()
                try:
                    tests = spamd_symbols(msg, cfg.spamd_host, cfg.spamd_port, cfg.timeout)
                except SpamdError as exc:
                    return self._tempfail(str(exc))
                ms = (time.monotonic() - t0) * 1000
                points, hit = verdict(tests, cfg.scores)
                if points >= cfg.threshold:
                    _log(f"reject: {self.client[1]}: {qid}: {points:.1f} points: {' '.join(hit)} spamd={ms:.0f}ms tests={','.join(tests)}")
                    self.setreply("550", "5.7.1", f"{cfg.reject_text} ({' '.join(hit)})")
                    return Milter.REJECT
                _log(f"accept: {self.client[1]}: {qid}: {points:.1f} points: {' '.join(hit) or '-'} spamd={ms:.0f}ms tests={','.join(tests)}")
                return Milter.ACCEPT
            except Exception as exc:  # noqa: BLE001
                return self._tempfail(f"eom: {exc!r}")
            finally:
                self._reset()

        def abort(self):
            self._reset()
            return Milter.CONTINUE

        def close(self):
            return Milter.CONTINUE

    Milter.factory = BouncegenMilter
    Milter.set_flags(0)  # the milter changes nothing in the message, it only answers
    sock = cfg.socket
    if sock.startswith("unix:"):
        sock = "local:" + sock[5:]
    elif sock.startswith("inet:"):
        host, _, port = sock[5:].rpartition(":")
        sock = f"inet:{port}@{host.strip('[]')}"
    _log(f"bouncegen milter: listening on {cfg.socket}, spamd {cfg.spamd_host}:{cfg.spamd_port}")
    Milter.runmilter("bouncegen", sock, timeout=max(60, int(cfg.timeout) * 3))
    _log("bouncegen milter: stopped")
    return 0
