"""spamd's own protocol (SPAMC/1.5 SYMBOLS) over TCP, with one deadline for the whole exchange.

Not the spamc binary: a milter thread must never wait on a child process, and every failure
(no connection, time-out, an error status, a malformed or truncated answer) must surface as one
exception that the milter turns into a 4xx.
"""

from __future__ import annotations

import socket
import time


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
