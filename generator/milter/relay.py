"""bouncegen's milter in the relay role: records the Message-ID of each message leaving our relays
in the sent-mail ledger (docs/design.md, "Proof of origin"; rspamd's ``replies`` module is the model).

Selected by the settings file (``role = "relay"`` in ``[milter]``, rendered as
relay/bouncegen-relay.conf when the inventory has a ``[ledger]``); wired into the relay's
``smtpd_milters`` and ``non_smtpd_milters`` with ``default_action=accept``.

It never refuses, delays or changes a message: every callback answers CONTINUE/ACCEPT, and any
store failure (Redis down, SQLite locked, key unreadable) is logged at most once a minute, with
the count of messages left unrecorded, while mail keeps flowing. Recording is best effort by
design; an unrecorded message's bounce falls back to the ruleset's other evidence.

Which Message-ID: the one recipients see, the header as cleanup replays it to the milters, an ID
cleanup added included (measured with Postfix 3.7: docs/ledger.md). A message without one has
nothing to record, and no bounce can quote an ID it never had: that is logged (at most once a
minute).
"""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import BouncegenError, UsageError
from ..ledger import keys, open_store
from ..ledger.store import mask_url
from .log import logger
from .ratelog import RateLog
from .service import pymilter_socket


@dataclass(frozen=True)
class RelaySettings:
    socket: str
    store: str      # store URL (may carry a Redis password: the file is mode 0640, root:bouncegen)
    key_file: str
    days: int
    timeout: float  # seconds for a store operation

    @classmethod
    def load(cls, path: str | Path) -> "RelaySettings":
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            m, led = data["milter"], data["ledger"]
            if m.get("role") != "relay":
                raise ValueError("[milter] role must be \"relay\"")
            return cls(socket=m["socket"], store=led["store"], key_file=led["key_file"],
                       days=int(led["days"]), timeout=float(m.get("timeout", 2)))
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


def run(settings: RelaySettings) -> int:
    """Serve the relay's milter connections until SIGTERM/SIGINT."""
    import Milter  # pymilter: the optional [milter] extra

    recorder = Recorder(settings)
    no_id = RateLog()

    class RelayMilter(Milter.Base):
        def __init__(self):
            self.message_id: str | None = None

        def envfrom(self, mailfrom, *params):
            self.message_id = None
            return Milter.CONTINUE

        def header(self, name, value):
            try:
                if self.message_id is None and str(name).lower() == "message-id":
                    self.message_id = value if isinstance(value, str) else bytes(value).decode("utf-8", "surrogateescape")
            except Exception:  # noqa: BLE001
                pass
            return Milter.CONTINUE

        def eom(self):
            try:
                qid = self.getsymval("i") or "unknown"
                if self.message_id is None or keys.normalise(self.message_id) is None:
                    no_id(f"ledger: {qid}: no Message-ID at end of message: nothing to record")
                elif recorder.record(self.message_id, qid):
                    logger.info(f"{qid}: ledger: recorded message-id={self.message_id.strip()}")
            except Exception as exc:  # noqa: BLE001 - recording never stops mail
                recorder.failures(f"ledger: eom: {exc!r}")
            finally:
                self.message_id = None
            return Milter.ACCEPT

        def abort(self):
            self.message_id = None
            return Milter.CONTINUE

    Milter.factory = RelayMilter
    Milter.set_flags(0)  # changes nothing in the message
    sock = pymilter_socket(settings.socket)
    logger.info(f"bouncegen milter (relay): listening on {settings.socket}, ledger {mask_url(settings.store)}")
    Milter.runmilter("bouncegen-relay", sock, timeout=60)
    logger.info("bouncegen milter (relay): stopped")
    return 0


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
