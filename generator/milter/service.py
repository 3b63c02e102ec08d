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

import sys
import threading
import time
from email.utils import formatdate

from .settings import Settings, verdict
from .spamc import SpamdError, spamd_symbols

ENVELOPE_HEADER = b"X-Envelope-From"


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(settings: Settings) -> int:
    """Serve milter connections until SIGTERM/SIGINT (libmilter stops cleanly on both)."""
    import Milter  # pymilter; imported here so that rendering never needs it

    cfg = settings
    # At most cfg.concurrency scans in flight (spamd's children): a message beyond them waits
    # here, inside its own deadline, not in spamd's listen queue where no one sees it waiting.
    slots = threading.BoundedSemaphore(cfg.concurrency)

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
            self.kept = 0      # bytes of headers and body kept for spamd (at most cfg.scan_limit)
            self.size = 0      # bytes of the whole message, as it came
            self.tx_exempt = False
            self.broken = ""   # a failure in a no-reply step (header, body): 4xx at eom

        def _keep(self, data: bytes) -> bytes:
            """The part of DATA that still fits under the scan limit; the rest is only counted,
            so a 30 MB message costs no more memory or spamd time than the limit."""
            self.size += len(data)
            room = cfg.scan_limit - self.kept
            if room <= 0:
                return b""
            data = data[:room]
            self.kept += len(data)
            return data

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

        # hello, header and body never refuse: @noreply lets Postfix send the next step without
        # waiting for an answer to each (SMFIP_NR_*), a round trip saved per header line. A
        # failure inside them is remembered and answered with 4xx at end of message.
        @Milter.noreply
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

        @Milter.noreply
        @Milter.decode("bytes")
        def header(self, name, value):
            try:
                self._header(name, value)
            except Exception as exc:  # noqa: BLE001 - answered with 4xx at eom
                self.broken = self.broken or f"header: {exc!r}"
            return Milter.CONTINUE

        def _header(self, name, value):
            if not isinstance(value, bytes):
                value = str(value).encode("utf-8", "surrogateescape")
            if not isinstance(name, bytes):
                name = str(name).encode("ascii", "replace")
            # A sender must not choose the envelope sender SpamAssassin sees: drop its copy.
            if name.lower() != ENVELOPE_HEADER.lower():
                line = name + b": " + value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n"
                if self.kept + len(line) <= cfg.scan_limit:  # a header is kept whole or not at all
                    self.kept += len(line)
                    self.headers.append(line)
                else:
                    self.kept = cfg.scan_limit  # nothing after a dropped header is kept either
                self.size += len(line)

        @Milter.noreply
        def body(self, chunk):
            try:
                kept = self._keep(chunk)
                if kept:
                    self.chunks.append(kept)
            except Exception as exc:  # noqa: BLE001 - answered with 4xx at eom
                self.broken = self.broken or f"body: {exc!r}"
            return Milter.CONTINUE

        def eom(self):
            try:
                if self.exempt or self.tx_exempt:
                    _log(f"accept: {self.client[1]}: exempt client")
                    return Milter.ACCEPT
                if self.broken:
                    return self._tempfail(self.broken)
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
                if not slots.acquire(timeout=cfg.timeout):
                    return self._tempfail(f"{qid}: no spamd slot free within {cfg.timeout:g} s")
                try:
                    tests = spamd_symbols(msg, cfg.spamd_host, cfg.spamd_port, max(0.1, cfg.timeout - (time.monotonic() - t0)))
                except SpamdError as exc:
                    return self._tempfail(f"{qid}: {exc}")
                finally:
                    slots.release()
                ms = (time.monotonic() - t0) * 1000
                if "TIME_LIMIT_EXCEEDED" in tests:  # spamd's time_limit cut the scan short
                    return self._tempfail(f"{qid}: spamd stopped the scan at its time_limit: no verdict")
                prefix = ""
                if self.size > self.kept:  # never judged on a prefix without saying so
                    prefix = f" judged on the first {self.kept} of {self.size} bytes (scan_limit {cfg.scan_limit})"
                points, hit = verdict(tests, cfg.scores)
                if points >= cfg.threshold:
                    _log(f"reject: {self.client[1]}: {qid}: {points:.1f} points: {' '.join(hit)} spamd={ms:.0f}ms{prefix} tests={','.join(tests)}")
                    self.setreply("550", "5.7.1", f"{cfg.reject_text} ({' '.join(hit)})")
                    return Milter.REJECT
                _log(f"accept: {self.client[1]}: {qid}: {points:.1f} points: {' '.join(hit) or '-'} spamd={ms:.0f}ms{prefix} tests={','.join(tests)}")
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
    _log(f"bouncegen milter: listening on {cfg.socket}, spamd {cfg.spamd_host}:{cfg.spamd_port}, "
         f"{cfg.concurrency} scans at once, scan limit {cfg.scan_limit} bytes")
    Milter.runmilter("bouncegen", sock, timeout=max(60, int(cfg.timeout) * 3))
    _log("bouncegen milter: stopped")
    return 0
