"""The MX milter's callbacks: pymilter's Milter.Base at module level, one instance per SMTP
connection. What it decides is :func:`service.decide` (no pymilter there); this module only
collects what the session says, asks spamd and answers. Imported only to serve (``bouncegen
milter``) and by its tests: pymilter is the optional [milter] extra, so nothing else imports it.
"""

from __future__ import annotations

import threading
import time
from email.utils import formatdate

import Milter  # pymilter: the binding of Sendmail's libmilter

from ..errors import BatvError
from . import batv_gate, log
from .log import decision, logger
from .ratelog import RateLog
from .service import ENVELOPE_HEADER, NO_VERDICT, decide, is_local, pymilter_socket
from .settings import Settings
from .spamc import SpamdError, spamd_symbols


class Shared:
    """What every connection of one milter process shares: the settings, at most
    cfg.concurrency scans in flight (spamd's children; a message beyond them waits here, inside
    its own deadline, not in spamd's listen queue where no one sees it waiting), and a ledger
    outage logged once a minute, not per message."""

    def __init__(self, cfg: Settings):
        self.cfg = cfg
        self.slots = threading.BoundedSemaphore(cfg.concurrency)
        self.ledger_down = RateLog(log=logger.warning)


class BouncegenMilter(Milter.Base):
    """One SMTP connection: exempt clients are accepted at MAIL FROM; otherwise the message
    (up to cfg.scan_limit bytes) goes to spamd at end of message and :func:`service.decide`
    answers. Any failure is a 4xx."""

    def __init__(self, shared: Shared):
        self.shared = shared
        self.cfg = shared.cfg
        self.exempt = ""  # why this client is never judged ("" = it is)
        self.client = ("", "")
        self.helo = ""
        self._reset()

    def _reset(self):
        self.sender = b""
        self.headers: list[bytes] = []
        self.chunks: list[bytes] = []
        self.kept = 0      # bytes of headers and body kept for spamd (at most cfg.scan_limit)
        self.size = 0      # bytes of the whole message, as it came
        self.broken = ""   # a failure in a no-reply step (header, body): 4xx at eom
        self.rcpts: list[batv_gate.Rcpt] = []  # BATV: each accepted recipient, classified

    def _keep(self, data: bytes) -> bytes:
        """The part of DATA that still fits under the scan limit; the rest is only counted,
        so a 30 MB message costs no more memory or spamd time than the limit."""
        self.size += len(data)
        room = self.cfg.scan_limit - self.kept
        if room <= 0:
            return b""
        data = data[:room]
        self.kept += len(data)
        return data

    def _tempfail(self, why: str, ms: float = 0):
        qid = ""
        try:
            qid = self.getsymval("i") or ""
        except Exception:  # noqa: BLE001 - no context any more: log without the queue ID
            pass
        logger.warning(decision(qid, self.client, "tempfail", reason=why, ms=ms))
        self.setreply("451", "4.7.1", self.cfg.tempfail_text)
        return Milter.TEMPFAIL

    # The macros it uses, asked for in the negotiation (not through the host's global
    # milter_*_macros, which belong to every milter).
    @Milter.symlist("j")
    def connect(self, hostname, family, hostaddr):
        try:
            addr = hostaddr[0] if isinstance(hostaddr, tuple) and hostaddr else None
            self.client = (hostname or "unknown", addr or "")
            if is_local(hostname, addr):
                self.exempt = "local"
            elif self.cfg.exempt_client(hostname, addr):
                self.exempt = "exempt"  # our relay, or [milter] exempt_networks
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

    @Milter.symlist("i", "{auth_authen}")
    @Milter.decode("bytes")
    def envfrom(self, mailfrom, *params):
        self._reset()
        try:
            self.sender = mailfrom if isinstance(mailfrom, bytes) else str(mailfrom).encode("utf-8", "surrogateescape")
            why = self.exempt or ("auth" if self.getsymval("{auth_authen}") else "")
            if why:
                # Decided before the content: one line, and Postfix sends nothing more.
                logger.info(decision(self.getsymval("i") or "", self.client, "accept", reason=why))
                return Milter.ACCEPT
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
            if self.kept + len(line) <= self.cfg.scan_limit:  # a header is kept whole or not at all
                self.kept += len(line)
                self.headers.append(line)
            else:
                self.kept = self.cfg.scan_limit  # nothing after a dropped header is kept either
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

    def message(self, qid: str) -> bytes:
        """The message as spamd is asked about it: what a delivery agent would add (the envelope
        sender, and the hop from the client as Postfix writes it), so SpamAssassin judges it as
        it would after delivery (the client is an untrusted relay, never ALL_TRUSTED)."""
        myname = self.getsymval("j") or "localhost"
        sender = self.sender.strip(b"<>")
        received = ("Received: from %s (%s [%s])\r\n\tby %s (Postfix) with ESMTP id %s;\r\n\t%s\r\n" % (
            self.helo or "unknown", self.client[0], self.client[1], myname, qid, formatdate(localtime=False)))
        return b"".join([ENVELOPE_HEADER + b": <" + sender + b">\r\n", received.encode("utf-8", "replace"),
                         *self.headers, b"\r\n", *self.chunks])

    @Milter.symlist("i")
    def eom(self):
        cfg = self.cfg
        try:
            if self.broken:
                return self._tempfail(self.broken)
            qid = self.getsymval("i") or "unknown"
            if batv_gate.rescued(self.rcpts):  # BATV: proof of origin, no content scan
                return self._batv_rescue(qid)
            msg = self.message(qid)
            t0 = time.monotonic()
            if not self.shared.slots.acquire(timeout=cfg.timeout):
                return self._tempfail(f"{qid}: no spamd slot free within {cfg.timeout:g} s")
            try:
                tests = spamd_symbols(msg, cfg.spamd_host, cfg.spamd_port, max(0.1, cfg.timeout - (time.monotonic() - t0)))
            except SpamdError as exc:
                return self._tempfail(str(exc), (time.monotonic() - t0) * 1000)
            finally:
                self.shared.slots.release()
            ms = (time.monotonic() - t0) * 1000
            d = decide(tests, cfg)
            if d.reason == NO_VERDICT:
                return self._tempfail(f"{qid}: {d.reason}")
            if d.action == "tempfail":
                self.shared.ledger_down(decision(qid, self.client, "tempfail", points=d.points, rules=d.rules, ms=ms,
                                                 reason=d.reason))
                assert d.reply is not None
                self.setreply(*d.reply)
                return Milter.TEMPFAIL
            prefix = ""
            if self.size > self.kept:  # never judged on a prefix without saying so
                prefix = f"judged on the first {self.kept} of {self.size} bytes (scan_limit {cfg.scan_limit})"
            logger.info(decision(qid, self.client, d.action, points=d.points, rules=d.rules, ms=ms, reason=prefix, tests=tests))
            if d.action == "reject":
                assert d.reply is not None
                self.setreply(*d.reply)
                return Milter.REJECT
            return Milter.ACCEPT
        except Exception as exc:  # noqa: BLE001
            return self._tempfail(f"eom: {exc!r}")
        finally:
            self._reset()

    def _batv_rescue(self, qid: str):
        """A valid tag: accepted without asking spamd. The recipient is not edited here:
        Postfix's recipient_canonical_maps (postfix/batv_recipients) delivers to the plain
        address and keeps the tagged one as the original recipient (X-Original-To), where
        a post-queue SpamAssassin finds the same proof; a milter delrcpt/addrcpt would make
        the plain address the original and lose it (measured in tests/test_batv_smtp.py)."""
        tags = " ".join(f"<{r.address}>" for r in self.rcpts if r.kind is batv_gate.Kind.VALID)
        logger.info(decision(qid, self.client, "accept", reason=f"batv: valid tag {tags}"))
        return Milter.ACCEPT

    def abort(self):
        self._reset()
        return Milter.CONTINUE

    def close(self):
        return Milter.CONTINUE


class BatvMilter(BouncegenMilter):
    """With [batv] (batv_gate.py): RCPT of a tag, the null sender at DATA. A class of its own so
    that without BATV the milter asks Postfix for no RCPT or DATA events (pymilter negotiates
    the callbacks a class overrides): not a round trip more."""

    @Milter.decode("bytes")
    def envrcpt(self, to, *params):
        gate = self.cfg.batv
        assert gate is not None
        try:
            to = to if isinstance(to, str) else bytes(to).decode("utf-8", "surrogateescape")
            r = gate.rcpt(to)
            if r.kind is batv_gate.Kind.INVALID:
                logger.info(decision(self.getsymval("i") or "", self.client, "reject",
                                     reason=f"batv: <{r.address}>: {r.why}"))
                self.setreply("550", "5.7.1", batv_gate.REJECT_RCPT_TEXT)
                return Milter.REJECT  # this recipient only
            self.rcpts.append(r)
            return Milter.CONTINUE
        except BatvError as exc:
            return self._tempfail(f"batv: {exc.problems[0]}")
        except Exception as exc:  # noqa: BLE001
            return self._tempfail(f"envrcpt: {exc!r}")

    def data(self):
        gate = self.cfg.batv
        assert gate is not None
        try:
            sender = self.sender.decode("utf-8", "surrogateescape")
            if gate.refuse_at_data(sender, self.rcpts):
                logger.info(decision(self.getsymval("i") or "", self.client, "reject",
                                     reason="batv: null sender to unsigned address(es) at DATA"))
                self.setreply("550", "5.7.1", batv_gate.REJECT_DATA_TEXT)
                return Milter.REJECT
            return Milter.CONTINUE
        except BatvError as exc:
            return self._tempfail(f"batv: {exc.problems[0]}")
        except Exception as exc:  # noqa: BLE001
            return self._tempfail(f"data: {exc!r}")


# pymilter caches a class's negotiated protocol on the class the first time it is asked
# (Base.protocol_mask sets klass._protocol_mask), and a subclass asked later would find its
# parent's: the subclass first, so that each keeps its own (RCPT and DATA only with BATV).
BatvMilter.protocol_mask()
BouncegenMilter.protocol_mask()


def run(settings: Settings) -> int:
    """Serve milter connections until SIGTERM/SIGINT (libmilter stops cleanly on both)."""
    cfg = settings
    if not logger.handlers:  # called without `bouncegen milter --log`: stderr
        log.setup("stderr")
    shared = Shared(cfg)
    kind = BatvMilter if cfg.batv is not None else BouncegenMilter
    Milter.factory = lambda: kind(shared)
    # The milter changes nothing in the message, it only answers; SETSYMLIST: it names the
    # macros it needs itself (@Milter.symlist above).
    Milter.set_flags(Milter.SETSYMLIST)
    sock = pymilter_socket(cfg.socket)
    logger.info(f"starting: listening on {cfg.socket}, spamd {cfg.spamd_host}:{cfg.spamd_port}, "
                f"{cfg.concurrency} scans at once, scan limit {cfg.scan_limit} bytes")
    try:
        Milter.runmilter("bouncegen", sock, timeout=max(60, int(cfg.timeout) * 3))
    except Milter.error as exc:  # the socket could not be opened (port taken, no permission)
        logger.error(f"cannot serve {cfg.socket}: {exc}")
        return 1
    logger.info("stopped")
    return 0
