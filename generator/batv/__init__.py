"""Bounce Address Tag Validation, the ``prvs`` scheme (draft-levine-smtp-batv-01, section 4.1),
as Exim implements it (``${prvs{ADDRESS}{SECRET}{K}}``, ``${prvscheck ...}``, expand.c)::

    prvs=KDDDSSSSSS=local@domain

- ``K``: the key number, one digit (0-9), so that keys can be rotated;
- ``DDD``: the day the tag expires, as the last three digits of the days since 1970-01-01 (UTC);
- ``SSSSSS``: the first three bytes, in lower-case hex, of HMAC-SHA1 keyed with the secret over
  ``K`` + ``DDD`` + the original address (Exim's ``hash_source``: key number, day stamp, address).

The secret is the key's text as written in the key file (64 hex characters, the ASCII string,
not the decoded bytes): Exim takes the secret as a string of at most 64 bytes, so
``${prvs{$return_path}{THAT_STRING}{K}}`` on an Exim relay signs tags bouncegen accepts.

Pure functions and the key file; no I/O except reading and writing that file. The Perl plugin
(``_batv_valid`` in the SpamAssassin plugin) implements the same check; change neither without
the other.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from .. import defaults
from ..errors import BatvError
from ..secretfile import read_ascii, write_new

DEFAULT_DAYS = defaults.BATV_DAYS
MAX_DAYS = defaults.BATV_MAX_DAYS
KEY_CHARS = 64     # 32 random bytes as hex: Exim's limit for a prvs secret is 64 bytes

# prvs=KDDDSSSSSS=local@domain; the tag is case-insensitive (some MTAs upper-case hex).
_TAGGED = re.compile(r"^prvs=([0-9])([0-9]{3})([0-9a-fA-F]{6})=(.+@[^@]+)$", re.IGNORECASE)
_KEY_LINE = re.compile(r"^([0-9])\s+([0-9a-f]{64})$")


@dataclass(frozen=True)
class Keys:
    """The keys of a key file in the order they were added: the last one signs, all verify."""

    keys: tuple[tuple[int, str], ...]  # (key number, secret text)

    @property
    def newest(self) -> tuple[int, str]:
        return self.keys[-1]

    def secret(self, number: int) -> str | None:
        for k, s in self.keys:
            if k == number:
                return s
        return None


def day(now: float | None = None) -> int:
    """Whole days since the Unix epoch (UTC)."""
    return int((time.time() if now is None else now) // 86400)


def _plain(address: str) -> str:
    """local@domain with the domain lower-cased (domains are case-insensitive, local parts not):
    what is hashed, so that a relay that lower-cases the domain on the way back changes nothing."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _mac(secret: str, k: int, ddd: str, address: str) -> str:
    source = f"{k}{ddd}{address}".encode("utf-8", "surrogateescape")
    return hmac.new(secret.encode("ascii"), source, hashlib.sha1).hexdigest()[:6]


def is_tagged(address: str) -> bool:
    """Does the address carry a prvs tag (valid or not)? Never sign such an address again."""
    return address[:5].lower() == "prvs=" and "@" in address


def sign(address: str, keys: Keys, days: int = DEFAULT_DAYS, now: float | None = None) -> str:
    """The prvs form of a plain address, with the newest key, expiring in ``days`` days."""
    k, secret = keys.newest
    ddd = f"{(day(now) + days) % 1000:03d}"
    plain = _plain(address)
    return f"prvs={k}{ddd}{_mac(secret, k, ddd, plain)}={plain}"


@dataclass(frozen=True)
class Check:
    """The result of checking a recipient: ``tagged`` False means a plain address (``plain`` is
    the address itself); for a tagged one ``valid`` says whether the tag holds and ``why`` what
    is wrong with it."""

    tagged: bool
    valid: bool
    plain: str
    why: str = ""


def check(address: str, keys: Keys, days: int = DEFAULT_DAYS, now: float | None = None) -> Check:
    """Check an address: a prvs tag is valid when its key number is one of ours, its day is not
    past and at most ``days`` ahead (days are modulo 1000: the distance is taken modulo 1000 too),
    and its hash matches (compared in constant time)."""
    m = _TAGGED.match(address)
    if not m:
        return Check(False, False, address)
    k, ddd, mac, plain = int(m.group(1)), m.group(2), m.group(3).lower(), _plain(m.group(4))
    ahead = (int(ddd) - day(now)) % 1000
    if ahead > days:
        return Check(True, False, plain, f"expired (day {ddd})")
    secret = keys.secret(k)
    if secret is None:
        return Check(True, False, plain, f"unknown key {k}")
    if not hmac.compare_digest(mac, _mac(secret, k, ddd, plain)):
        return Check(True, False, plain, "bad signature")
    return Check(True, True, plain)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


def matches(address: str, entries: frozenset[str]) -> bool:
    """Is a plain address listed in an exemption list, as itself or by its domain? Exact
    matches only (case-insensitive): an entry never widens to other addresses or subdomains."""
    return address.lower() in entries or domain_of(address) in entries


# -- the key file -------------------------------------------------------------------------------
# One key a line, "K HEX" (key number, 64 hex characters), oldest first; comments (#) and blank
# lines are ignored. Mode 0600, owner bouncegen; the same file on every relay and MX host.

def load_keys(path: str | Path) -> Keys:
    """Read a key file; BatvError (one line naming the file) when unreadable or malformed."""
    path = Path(path)
    text = read_ascii(path, BatvError, "the BATV keys")
    keys: list[tuple[int, str]] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _KEY_LINE.match(line)
        if not m:
            raise BatvError(f"{path}: line {n}: not a BATV key: expected 'K HEX' (a key number 0-9 and "
                            f"{KEY_CHARS} lower-case hex characters)")
        keys.append((int(m.group(1)), m.group(2)))
    if not keys:
        raise BatvError(f"{path}: no BATV key in the file")
    if len({k for k, _ in keys}) != len(keys):
        raise BatvError(f"{path}: a key number appears twice")
    return Keys(tuple(keys))


def _text(keys: list[tuple[int, str]]) -> bytes:
    head = "# bouncegen BATV keys: K HEX, oldest first; the last one signs, all verify\n"
    return (head + "".join(f"{k} {s}\n" for k, s in keys)).encode("ascii")


def create_key_file(path: str | Path) -> Keys:
    """A new key file (mode 0600) with one key, number 1. Never replaces an existing file."""
    path = Path(path)
    keys = [(1, secrets.token_hex(KEY_CHARS // 2))]
    try:
        write_new(path, _text(keys))
    except FileExistsError:
        raise BatvError(f"{path}: a BATV key file exists already; add a key with 'bouncegen batv rotate'") from None
    except OSError as exc:
        raise BatvError(f"{path}: cannot create the BATV key file: {exc.strerror or exc}") from None
    return Keys(tuple(keys))


def rotate_key_file(path: str | Path) -> Keys:
    """Add a new key (the next key number, 0-9 round) that signs from now on; older keys keep
    verifying. The key that had the new number before is dropped (ten rotations ago: its tags
    expired long since). The file is replaced atomically, mode 0600, owner kept."""
    path = Path(path)
    old = load_keys(path)
    k = (old.newest[0] + 1) % 10
    keys = [(n, s) for n, s in old.keys if n != k] + [(k, secrets.token_hex(KEY_CHARS // 2))]
    tmp = path.with_name(f".{path.name}.new")
    try:
        if tmp.exists():
            tmp.unlink()
        write_new(tmp, _text(keys))
        st = path.stat()
        os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BatvError(f"{path}: cannot write the BATV key file: {exc.strerror or exc}") from None
    return Keys(tuple(keys))


class KeyCache:
    """The key file as a daemon reads it: loaded again when its mtime or size changes (so that
    ``bouncegen batv rotate`` takes effect without a restart); BatvError when unreadable."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._stamp: tuple | None = None
        self._keys: Keys | None = None

    def get(self) -> Keys:
        try:
            st = self.path.stat()
        except OSError as exc:
            raise BatvError(f"{self.path}: cannot read the BATV keys: {exc.strerror or exc}") from None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp or self._keys is None:
            self._keys = load_keys(self.path)
            self._stamp = stamp
        return self._keys
