"""The relay milter's callbacks: pymilter's Milter.Base at module level, one instance per SMTP
connection, as mx.py is for the MX. What it decides is relay.py's (sign, recordable: no
pymilter there); this module only collects the envelope sender and the headers, and answers.
Imported only to serve (``bouncegen milter`` with a relay settings file) and by its tests:
pymilter is the optional [milter] extra, so nothing else imports it.
"""

from __future__ import annotations

import Milter  # pymilter: the binding of Sendmail's libmilter

from ..ledger.store import mask_url
from .log import logger
from .ratelog import RateLog
from .relay import Recorder, RelaySettings, recordable, sign
from .service import pymilter_socket


def _text(value) -> str:
    return value if isinstance(value, str) else bytes(value).decode("utf-8", "surrogateescape")


class Shared:
    """What every connection of one relay milter process shares: the settings, the recorder
    (one store per thread) and the rate-limited logs of its outages."""

    def __init__(self, settings: RelaySettings):
        self.settings = settings
        self.recorder = Recorder(settings)
        self.no_id = RateLog()
        self.batv_down = RateLog(log=logger.warning)


class RelayMilter(Milter.Base):
    """One SMTP connection of the relay: at end of each message, with [batv] the envelope sender
    (and the Disposition-Notification-To addresses) signed or a 4xx, then with [ledger] its
    Message-ID recorded; recording never refuses or delays a message."""

    def __init__(self, shared: Shared):
        self.shared = shared
        self.settings = shared.settings
        self.message_id: str | None = None
        self.sender = ""
        self.dnt: list[str] = []

    def envfrom(self, mailfrom, *params):
        self.message_id = None
        self.dnt = []  # Disposition-Notification-To values, in order (BATV)
        self.sender = _text(mailfrom)
        return Milter.CONTINUE

    def header(self, name, value):
        try:
            if self.settings.signer is not None and str(name).lower() == "disposition-notification-to":
                self.dnt.append(_text(value))
        except Exception:  # noqa: BLE001
            pass
        try:
            if self.message_id is None and str(name).lower() == "message-id":
                self.message_id = _text(value)
        except Exception:  # noqa: BLE001
            pass
        return Milter.CONTINUE

    def _sign(self, qid: str):
        """BATV (relay.sign): smfi_chgfrom and chgheader as it decides; its 4xx, or None to go on."""
        assert self.settings.signer is not None  # eom signs only with a signer
        signing = sign(self.settings.signer, self.sender, self.dnt)
        if signing.reply is not None:
            self.shared.batv_down(f"batv: {qid}: not signed, tempfail: {signing.problem}")
            self.setreply(*signing.reply)
            return Milter.TEMPFAIL
        if signing.sender is not None:
            self.chgfrom(f"<{signing.sender}>")
            logger.info(f"{qid}: batv: signed from=<{self.sender.strip('<>')}> as <{signing.sender}>")
        for i, tagged in signing.headers:
            self.chgheader("Disposition-Notification-To", i, tagged)
            logger.info(f"{qid}: batv: signed Disposition-Notification-To")
        return None

    def eom(self):
        if self.settings.signer is not None:
            try:
                answer = self._sign(self.getsymval("i") or "unknown")
            except Exception as exc:  # noqa: BLE001 - a fault never lets mail out unsigned
                self.shared.batv_down(f"batv: eom: {exc!r}")
                answer = Milter.TEMPFAIL
            if answer is not None:
                self.message_id = None
                return answer
        if not self.settings.records:
            return Milter.ACCEPT
        try:
            qid = self.getsymval("i") or "unknown"
            if self.message_id is None or not recordable(self.message_id):
                self.shared.no_id(f"ledger: {qid}: no Message-ID at end of message: nothing to record")
            elif self.shared.recorder.record(self.message_id, qid):
                logger.info(f"{qid}: ledger: recorded message-id={self.message_id.strip()}")
        except Exception as exc:  # noqa: BLE001 - recording never stops mail
            self.shared.recorder.failures(f"ledger: eom: {exc!r}")
        finally:
            self.message_id = None
        return Milter.ACCEPT

    def abort(self):
        self.message_id = None
        return Milter.CONTINUE


def run(settings: RelaySettings) -> int:
    """Serve the relay's milter connections until SIGTERM/SIGINT."""
    shared = Shared(settings)
    Milter.factory = lambda: RelayMilter(shared)
    # Changes nothing in the message, except the envelope sender with BATV (CHGFROM)
    # and the Disposition-Notification-To header (CHGHDRS).
    Milter.set_flags(Milter.CHGFROM | Milter.CHGHDRS if settings.signer is not None else 0)
    sock = pymilter_socket(settings.socket)
    what = [f"ledger {mask_url(settings.store)}"] if settings.store else []
    what += [f"batv signing {' '.join(sorted(settings.signer.domains))}"] if settings.signer else []
    logger.info(f"bouncegen milter (relay): listening on {settings.socket}, {', '.join(what)}")
    Milter.runmilter("bouncegen-relay", sock, timeout=60)
    logger.info("bouncegen milter (relay): stopped")
    return 0
