"""The sent-mail ledger: keyed hashes of the Message-IDs our relays sent, with the day they were
recorded (docs/design.md, "Proof of origin").

The outbound side (a relay: the milter in its relay role, or ``bouncegen ledger import`` of the
relays' maillogs) records; the inbound side (the BouncegenRescue SpamAssassin plugin on the MX)
looks up the Message-IDs a bounce, notice or auto-reply refers to. A Message-ID is never stored
in clear: an entry is HMAC-SHA256(site key, normalised ID), so the store tells nobody who wrote
to whom, and an entry cannot be forged without the key. The format is fixed; the Perl reader in
sa_plugin/Mail/SpamAssassin/Plugin/BouncegenRescue/Ledger.pm implements the same normalisation and key:

- normalised Message-ID (:func:`keys.normalise`): the text between the first ``<`` and the next
  ``>`` (without brackets: the first token of the stripped value), all white space removed, the
  part after the last ``@`` lower-cased; white space and case are ASCII only; empty means no ID;
- entry key (:func:`keys.entry_key`): the first 16 bytes of HMAC-SHA256(key, ID as UTF-8), as 32
  lower-case hex characters;
- key file (:func:`keys.create_key_file`, :func:`keys.load_key`): 32 random bytes as 64 hex
  characters and a newline, mode 0600, never overwritten;
- day (:func:`keys.today`): whole days since the Unix epoch, UTC;
- stores (:func:`store.open_store`): ``sqlite:/abs/path.db`` (table ``sent(h, day)``) and
  ``redis://[:password@]host[:port][/db]`` (``bouncegen:sent:<hex>`` = day, with a TTL).
"""

from .keys import KEY_BYTES, create_key_file, entry_key, load_key, normalise, today
from .store import (
    LedgerError,
    RedisStore,
    SqliteStore,
    Stats,
    Store,
    StoreURL,
    open_store,
    parse_store_url,
)

__all__ = [
    "KEY_BYTES", "entry_key", "create_key_file", "load_key", "normalise", "today",
    "LedgerError", "RedisStore", "SqliteStore", "Stats", "Store", "StoreURL", "open_store",
    "parse_store_url",
]
