"""bouncegen's milter in the relay role: records the Message-ID of each message leaving our relays
in the sent-mail ledger (docs/design.md, "Proof of origin"; rspamd's ``replies`` module is the model).
This module holds its settings, its recorder and its decisions (sign, recordable), without
pymilter; its callbacks are relay_milter.py's RelayMilter.

Selected by the settings file (``role = "relay"`` in ``[milter]``, rendered as
relay/bouncegen-relay.conf when the inventory has a ``[ledger]``); wired into the relay's
``smtpd_milters`` and ``non_smtpd_milters`` with ``default_action=accept``.

Recording never refuses, delays or changes a message: any store failure (Redis down, SQLite
locked, key unreadable) is logged at most once a minute, with the count of messages left
unrecorded, while mail keeps flowing. Recording is best effort by design; an unrecorded
message's bounce falls back to the ruleset's other evidence.

With ``[batv]`` it also signs (docs/batv.md): the envelope sender of mail from a BATV domain is
rewritten to its ``prvs=`` form with smfi_chgfrom (once: a tagged sender is never signed again;
exempt senders and the null sender never), the ``From:`` header untouched; the addresses of
ours in ``Disposition-Notification-To:`` likewise (read receipts come back with the null sender
to that address). Signing is not best
effort: a message that cannot be signed (key file unreadable) is tempfailed, because the MX
would refuse its bounces; relay/main.cf then lists the milter with default_action=tempfail.

Which Message-ID: the one recipients see, the header as cleanup replays it to the milters, an ID
cleanup added included (measured with Postfix 3.7: docs/ledger.md). A message without one has
nothing to record, and no bounce can quote an ID it never had: that is logged (at most once a
minute).
"""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import Path

from .. import batv
from ..errors import BatvError, BouncegenError, UsageError
from ..ledger import keys, open_store
from .log import logger
from .ratelog import RateLog


@dataclass(frozen=True)
class Signer:
    """BATV signing on the relay ([batv] of the relay settings): which envelope senders get a tag."""

    domains: frozenset[str]
    exempt: frozenset[str]  # exempt senders: addresses or domains, never signed
    days: int
    keys: batv.KeyCache

    def signed(self, sender: str, now: float | None = None) -> str | None:
        """The prvs form of an envelope sender, or None when it is not signed: the null sender,
        another domain, an exempt sender, or an address already tagged (never signed twice).
        BatvError when the keys are unreadable."""
        sender = sender.strip().strip("<>")
        if (not sender or batv.is_tagged(sender) or batv.domain_of(sender) not in self.domains
                or batv.matches(sender, self.exempt)):
            return None
        return batv.sign(sender, self.keys.get(), self.days, now)

    def signed_header(self, value: str, now: float | None = None) -> str | None:
        """A Disposition-Notification-To value with each address of ours in its prvs form, or
        None when nothing changes. A read receipt (RFC 8098) comes back with the null sender to
        this address, not to the envelope sender: unsigned, the MX would refuse it at DATA."""
        new = value
        for _name, addr in getaddresses([value]):
            tagged = self.signed(addr, now) if addr else None
            if tagged is not None:
                new = new.replace(addr, tagged)
        return None if new == value else new


@dataclass(frozen=True)
class RelaySettings:
    socket: str
    store: str | None     # store URL (may carry a Redis password: the file is mode 0640, root:bouncegen)
    key_file: str | None
    days: int
    timeout: float  # seconds for a store operation
    signer: Signer | None = None  # BATV: sign the envelope senders of our domains

    @property
    def records(self) -> bool:
        return self.store is not None

    @classmethod
    def load(cls, path: str | Path) -> "RelaySettings":
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            m, led, b = data["milter"], data.get("ledger"), data.get("batv")
            if m.get("role") != "relay":
                raise ValueError("[milter] role must be \"relay\"")
            if led is None and b is None:
                raise ValueError("neither [ledger] nor [batv]")
            signer = None if b is None else Signer(
                domains=frozenset(d.lower() for d in b["domains"]),
                exempt=frozenset(a.lower() for a in b.get("exempt_senders", [])),
                days=int(b["days"]), keys=batv.KeyCache(b["key_file"]))
            return cls(socket=m["socket"], store=led["store"] if led else None,
                       key_file=led["key_file"] if led else None, days=int(led["days"]) if led else 0,
                       timeout=float(m.get("timeout", 2)), signer=signer)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
            raise UsageError(f"{path}: not a bouncegen relay milter settings file: {exc}") from None


class Recorder:
    """Records Message-IDs in the store; one store per thread (SQLite connections are per
    thread), reopened after a failure; never raises."""

    def __init__(self, settings: RelaySettings, log=logger.warning):
        self.settings = settings
        self.local = threading.local()
        self.failures = RateLog(log=log)
        self.log = log

    def _store(self):
        store = getattr(self.local, "store", None)
        if store is None:
            # only called when the settings record (settings.records: a [ledger] with both)
            assert self.settings.key_file is not None and self.settings.store is not None
            key = keys.load_key(self.settings.key_file)
            store = open_store(self.settings.store, key, self.settings.days, timeout=self.settings.timeout)
            self.local.store = store
        return store

    def record(self, message_id: str, qid: str = "") -> bool:
        try:
            self._store().record([message_id])
            return True
        except BouncegenError as exc:
            self._drop()
            self.failures(f"ledger: not recorded: {qid}: {exc.problems[0]}")
        except Exception as exc:  # noqa: BLE001 - recording never stops mail
            self._drop()
            self.failures(f"ledger: not recorded: {qid}: {exc!r}")
        return False

    def _drop(self) -> None:
        store = getattr(self.local, "store", None)
        self.local.store = None
        if store is not None:
            try:
                store.close()
            except Exception:  # noqa: BLE001
                pass


SIGNING_TEMPFAIL = ("451", "4.7.1", "Sender signing (BATV) temporarily unavailable; please try again later")


@dataclass(frozen=True)
class Signing:
    """What BATV signing does to one message at end of message (sign)."""

    sender: str | None = None  # the envelope sender's prvs form for smfi_chgfrom; None: unchanged
    headers: tuple[tuple[int, str], ...] = ()  # (index, new value) of Disposition-Notification-To
    reply: tuple[str, str, str] | None = None  # a 4xx: the keys are unreadable
    problem: str = ""  # why, for the log


def sign(signer: Signer, sender: str, dnt: list[str]) -> Signing:
    """The relay's BATV decision for a message from SENDER whose Disposition-Notification-To
    headers are DNT, in order. The envelope sender in its prvs form (the From: header is never
    touched); keys unreadable: a tempfail, so that no mail leaves unsigned whose bounces the MX
    would then refuse. A receipt address the keys cannot sign (they answered a moment ago) goes
    unsigned rather than holding the message."""
    try:
        new = signer.signed(sender)
    except BatvError as exc:
        return Signing(reply=SIGNING_TEMPFAIL, problem=exc.problems[0])
    headers = []
    for i, value in enumerate(dnt, 1):
        try:
            tagged = signer.signed_header(value)
        except BatvError:
            tagged = None
        if tagged is not None:
            headers.append((i, tagged))
    return Signing(sender=new, headers=tuple(headers))


def recordable(message_id: str | None) -> bool:
    """Whether a message's Message-ID header gives a ledger entry (keys.normalise)."""
    return message_id is not None and keys.normalise(message_id) is not None


def role(path: str | Path) -> str:
    """The role a milter settings file names: "relay", or "mx" (the default)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not a bouncegen milter settings file: {exc}") from None
    r = data.get("milter", {}).get("role", "mx") if isinstance(data.get("milter"), dict) else "mx"
    if r not in ("mx", "relay"):
        raise UsageError(f"{path}: milter.role: expected \"mx\" or \"relay\", got {r!r}")
    return r
