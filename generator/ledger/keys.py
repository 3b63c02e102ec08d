"""Message-ID normalisation, entry keys and the site key file of the sent-mail ledger.

The same rules are implemented in Perl by the BouncegenRescue plugin's ledger client
(sa_plugin/Mail/SpamAssassin/Plugin/BouncegenRescue/Ledger.pm: ``normalise``, ``entry``, ``_key``);
change neither without the other.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from pathlib import Path

from ..errors import LedgerError
from ..secretfile import read_ascii, write_new

KEY_BYTES = 32   # random bytes of a site key
ENTRY_BYTES = 16  # bytes of the HMAC kept as an entry key (32 hex characters)

_WS = re.compile(r"[ \t\r\n\f\v]+")  # ASCII white space only (Perl: [ \t\r\n\f\x0b])
_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def normalise(value: str | None) -> str | None:
    """The normalised form of one Message-ID header value, or None when it holds no ID.

    The text between the first ``<`` and the next ``>`` (without a pair of brackets: the first
    white-space separated token of the stripped value), with every white-space character removed
    (folded IDs) and the part after the last ``@`` lower-cased (domains are case-insensitive,
    local parts are not). White space and case are ASCII only (space, tab, CR, LF, FF, VT;
    A-Z): the same in Perl whether the plugin's text is bytes or characters, and independent of
    Unicode case and space tables (Python's ``str.lower``/``\\s`` and Perl's ``lc``/``\\s`` differ)."""
    if value is None:
        return None
    start = value.find("<")
    end = value.find(">", start + 1) if start >= 0 else -1
    if start >= 0 and end >= 0:
        text = value[start + 1:end]
    else:
        tokens = _WS.split(value.strip(" \t\r\n\f\v"))
        text = tokens[0]
    text = _WS.sub("", text)
    if not text:
        return None
    at = text.rfind("@")
    if at >= 0:
        text = text[:at + 1] + text[at + 1:].translate(_UPPER)
    return text


def entry_key(site_key: bytes, message_id: str | None) -> str | None:
    """The ledger entry of a Message-ID (normalised here): the first 16 bytes of
    HMAC-SHA256(site_key, ID as UTF-8) as 32 lower-case hex characters; None for no ID."""
    norm = normalise(message_id)
    if norm is None:
        return None
    digest = hmac.new(site_key, norm.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
    return digest[:ENTRY_BYTES].hex()


def today(now: float | None = None) -> int:
    """Whole days since the Unix epoch (UTC) at ``now`` (default: the current time)."""
    return int((time.time() if now is None else now) // 86400)


def load_key(path: str | Path) -> bytes:
    """Read a key file: white space stripped, hex-decoded, exactly 32 bytes; LedgerError else."""
    path = Path(path)
    text = read_ascii(path, LedgerError, "the ledger key")
    try:
        key = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise LedgerError(f"{path}: not a ledger key: expected {2 * KEY_BYTES} hex characters") from None
    if len(key) != KEY_BYTES:
        raise LedgerError(f"{path}: not a ledger key: expected {2 * KEY_BYTES} hex characters, got {2 * len(key)}")
    return key


def create_key_file(path: str | Path) -> bytes:
    """Create a new site key file (mode 0600) and return the key.

    Never replaces an existing file: the key of a running ledger is its identity (every entry
    recorded under it would stop matching), so an existing path is a LedgerError."""
    path = Path(path)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        write_new(path, (key.hex() + "\n").encode("ascii"))
    except FileExistsError:
        raise LedgerError(f"{path}: a ledger key exists already; it is never replaced "
                          "(remove it by hand only to start a new, empty ledger)") from None
    except OSError as exc:
        raise LedgerError(f"{path}: cannot create the ledger key: {exc.strerror or exc}") from None
    return key
