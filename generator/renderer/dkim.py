"""[dkim]: the site's DKIM signing keys, whose signature in a returned original is proof of origin.

The inventory names each key by domain, selector and a public key file, written either as PEM
(``-----BEGIN PUBLIC KEY-----``, what ``openssl rsa -pubout`` writes) or as the DNS TXT record
(``v=DKIM1; k=rsa; p=...``, what ``opendkim-genkey`` writes to ``SELECTOR.txt``, quoted and split
into strings as in a zone file). Both carry the same thing, the base64 of the key's DER
SubjectPublicKeyInfo, and that is what is rendered (the ``p=`` value) for the rescue plugin
(sa_plugin/Mail/SpamAssassin/Plugin/BouncegenDKIM.pm), which loads it with Mail::DKIM when SpamAssassin reads its
configuration (so ``spamassassin --lint`` refuses a key Mail::DKIM cannot use). Here the file
is checked for shape: readable, one key, RSA (Mail::DKIM on Debian 12 has no Ed25519 without
CryptX), at least 1024 bits (RFC 8301).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from .. import defaults

DEFAULT_MAX_AGE_DAYS = defaults.DKIM_MAX_AGE_DAYS
MAX_AGE_DAYS = defaults.DKIM_MAX_MAX_AGE_DAYS
MIN_RSA_BITS = 1024  # RFC 8301: verifiers must not accept shorter keys
MAX_KEY_FILE = 64 * 1024

# DER prefix of an RSA SubjectPublicKeyInfo's algorithm: SEQUENCE { OID 1.2.840.113549.1.1.1, NULL }
_RSA_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101010500")
_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END PUBLIC KEY-----")


@dataclass(frozen=True)
class DkimKey:
    domain: str     # d=, ASCII, lower case
    selector: str   # s=, lower case
    public_key: str  # the p= value: base64 of the DER SubjectPublicKeyInfo, no white space
    bits: int


@dataclass(frozen=True)
class DkimSettings:
    keys: tuple[DkimKey, ...]  # sorted by (domain, selector)
    max_age_days: int = DEFAULT_MAX_AGE_DAYS


def _der_length(data: bytes, i: int) -> tuple[int, int]:
    """(length, index after the length octets) of the DER element whose length starts at i."""
    first = data[i]
    if first < 0x80:
        return first, i + 1
    n = first & 0x7F
    if not 1 <= n <= 4 or i + 1 + n > len(data):
        raise ValueError("malformed DER length")
    return int.from_bytes(data[i + 1:i + 1 + n], "big"), i + 1 + n


def _rsa_bits(der: bytes) -> int:
    """The modulus size of a DER RSA SubjectPublicKeyInfo; ValueError if it is not one."""
    try:
        if der[0] != 0x30:
            raise ValueError("not a DER sequence")
        length, i = _der_length(der, 1)
        if i + length != len(der):
            raise ValueError("trailing or missing bytes")
        if not der.startswith(_RSA_ALGORITHM, i):
            raise ValueError("not an RSA key (Ed25519 and other types are not supported)")
        i += len(_RSA_ALGORITHM)
        if der[i] != 0x03:  # BIT STRING holding RSAPublicKey
            raise ValueError("no key bits")
        _, i = _der_length(der, i + 1)
        i += 1  # unused-bits octet
        if der[i] != 0x30:
            raise ValueError("not an RSAPublicKey")
        _, i = _der_length(der, i + 1)
        if der[i] != 0x02:  # INTEGER modulus
            raise ValueError("no modulus")
        mlen, i = _der_length(der, i + 1)
        modulus = der[i:i + mlen]
        if len(modulus) != mlen:
            raise ValueError("truncated modulus")
        return int.from_bytes(modulus, "big").bit_length()
    except IndexError:
        raise ValueError("truncated key") from None


def parse_public_key(text: str) -> tuple[str, int]:
    """(p= value, RSA bits) of a PEM public key or a DKIM DNS TXT record; ValueError saying why not."""
    pem = _PEM.findall(text)
    if len(pem) > 1:
        raise ValueError("holds more than one PEM public key")
    if pem:
        b64 = pem[0]
    elif "-----BEGIN" in text:
        raise ValueError("is PEM but not a '-----BEGIN PUBLIC KEY-----' block (a private key, or PKCS#1: "
                         "write it with 'openssl rsa -pubout')")
    else:
        # A zone-file record: the quoted strings joined (opendkim-genkey's SELECTOR.txt), or the
        # bare record text.
        strings = re.findall(r'"((?:[^"\\]|\\.)*)"', text)
        record = "".join(strings) if strings else text
        tags = {}
        for part in record.split(";"):
            name, eq, value = part.partition("=")
            if eq:
                tags[name.strip().lower()] = re.sub(r"\s+", "", value)
        if "p" not in tags:
            raise ValueError("is neither a PEM public key nor a DKIM record with p=")
        if tags.get("v", "DKIM1") != "DKIM1":
            raise ValueError(f"has v={tags['v']}, expected DKIM1")
        if tags.get("k", "rsa").lower() != "rsa":
            raise ValueError(f"has k={tags['k']}: only RSA keys are supported")
        if tags["p"] == "":
            raise ValueError("has an empty p= (a revoked key)")
        b64 = tags["p"]
    b64 = re.sub(r"\s+", "", b64)
    try:
        der = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    try:
        bits = _rsa_bits(der)
    except ValueError as exc:
        raise ValueError(f"is not a usable RSA public key: {exc}") from None
    if bits < MIN_RSA_BITS:
        raise ValueError(f"is a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required (RFC 8301)")
    return base64.b64encode(der).decode("ascii"), bits
