"""Regex escaping, one filter per dialect, so that no inventory value can ever widen a pattern.

The inventory is validated first (hostnames, globs and addresses only), but these filters do not
rely on it: whatever string they get, the result matches exactly that string (or, for the glob
filters, only host-name characters where the glob has ``*``/``?``).

Dialects:
- Perl (SpamAssassin rules) and PCRE (Postfix ``pcre:`` tables): a backslash before every
  non-alphanumeric ASCII character is always a literal (perlre, pcre2pattern "Backslash");
  anything else, controls and non-ASCII included, becomes ``\\x{HH}``.
- POSIX ERE (Postfix ``regexp:`` tables, regcomp with REG_EXTENDED): the special characters are
  backslash-escaped (POSIX.1 9.4.2); ``/``, the table's delimiter, is escaped with a backslash
  (Postfix's own escape; glibc's regcomp reads it as ``/``). ERE has no escape for bytes, so a control or
  non-ASCII character is refused rather than passed through.
"""

from __future__ import annotations

import re
import string

_WORD = frozenset(string.ascii_letters + string.digits + "_")
_PRINTABLE_ASCII = frozenset(chr(c) for c in range(0x21, 0x7F))
_ERE_SPECIAL = frozenset(".[\\()*+?{}|^$")

# What a glob's wildcard may stand for: host-name characters only, so a glob can never reach
# across a space, a bracket or a parenthesis of a Received: line.
HOST_CHARS = "-A-Za-z0-9_."
_GLOB_MAP = {"*": f"[{HOST_CHARS}]*", "?": f"[{HOST_CHARS}]"}


def _perl_char(ch: str) -> str:
    if ch in _WORD:
        return ch
    if ch in _PRINTABLE_ASCII:
        return "\\" + ch
    return "".join(f"\\x{{{b:02x}}}" for b in ch.encode("utf-8"))


def perl_re(value: str) -> str:
    """Escape a literal for a Perl regular expression (SpamAssassin rules)."""
    return "".join(_perl_char(ch) for ch in str(value))


def pcre(value: str) -> str:
    """Escape a literal for PCRE (Postfix pcre: tables); same rules as Perl."""
    return perl_re(value)


def _ere_char(ch: str) -> str:
    if ch == "/":
        # Postfix finds the closing delimiter before regcomp() sees the pattern, brackets or
        # not; only a backslash hides it, and glibc's regcomp reads "\/" as "/".
        return "\\/"
    if ch in _ERE_SPECIAL:
        return "\\" + ch
    if ch in _PRINTABLE_ASCII or ch == " ":
        return ch
    raise ValueError(f"cannot express {ch!r} in a POSIX ERE pattern")


def ere(value: str) -> str:
    """Escape a literal for POSIX ERE (Postfix regexp: tables)."""
    return "".join(_ere_char(ch) for ch in str(value))


def _glob(value: str, literal) -> str:
    return "".join(_GLOB_MAP.get(ch) or literal(ch) for ch in str(value))


def perl_glob(value: str) -> str:
    """A VBounce-style host glob (``*``, ``?``) as a Perl regex; everything else literal."""
    return _glob(value, _perl_char)


def pcre_glob(value: str) -> str:
    return _glob(value, _perl_char)


def ere_glob(value: str) -> str:
    return _glob(value, _ere_char)


_SA_WORD = re.compile(r"[A-Za-z0-9._:/*?-]+")


def sa_word(value: str) -> str:
    """One word of a SpamAssassin setting (a host, glob, domain or CIDR range): refused unless it
    is made of host-name and address characters only, so it can never split into more words,
    start a comment or carry a regex."""
    value = str(value)
    if not _SA_WORD.fullmatch(value):
        raise ValueError(f"cannot write {value!r} as one word of a SpamAssassin setting")
    return value


_SA_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def sa_base64(value: str) -> str:
    """One base64 word of a SpamAssassin setting (a DKIM public key's p=): nothing but the
    base64 alphabet, so it can never split into more words or start a comment."""
    value = str(value)
    if not _SA_BASE64.fullmatch(value):
        raise ValueError(f"cannot write {value!r} as one base64 word of a SpamAssassin setting")
    return value


# Filters by dialect name, so that a template written for one map type can ask for the escaping
# of the type it is being rendered as: {{ value | re(map_type) }}.
_BY_DIALECT = {"perl": (perl_re, perl_glob), "pcre": (pcre, pcre_glob), "regexp": (ere, ere_glob)}


def re_for(value: str, dialect: str) -> str:
    return _BY_DIALECT[dialect][0](value)


def glob_for(value: str, dialect: str) -> str:
    return _BY_DIALECT[dialect][1](value)


# The filters the templates use, and only those: perl_re for SpamAssassin's Perl regexes, re and
# glob by dialect for the Postfix tables (pcre or regexp), sa_word for a SpamAssassin setting.
FILTERS = {
    "perl_re": perl_re,
    "re": re_for,
    "glob": glob_for,
    "sa_word": sa_word,
    "sa_base64": sa_base64,
}
