"""First-character lookahead classes in rule regexes, checked against what follows them.

The long body alternations of rules/*.toml are written as ``(?=[first characters])(?:alt1|alt2|...)``
(and ``(?=[\\x80-\\xff])(?:...)`` for their non-ASCII group) so that Perl gets a start class
instead of trying every branch at every byte (docs/measurements.md). The class is kept by hand:
a phrase added later with a first character outside it would silently never match. This module
computes the bytes each position after such a lookahead can start with and names those the class
leaves out.

SpamAssassin matches body rules against bytes (UTF-8 text is not decoded: normalize_charset 0),
so the pattern is read as bytes: a literal "Э" starts with its lead byte \\xd0, which is what the
class must hold. Python's own regex parser (``re._parser``, the sre parser in 3.11) reads the
Perl subset these rules use; a pattern it cannot read is reported, not guessed at.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

# The standard library's regex parser and its opcodes (no type stubs: private modules of re).
P: Any = importlib.import_module("re._parser")
C: Any = importlib.import_module("re._constants")

_ALL = frozenset(range(256))
_CATEGORY = {C.CATEGORY_DIGIT: rb"\d", C.CATEGORY_NOT_DIGIT: rb"\D", C.CATEGORY_SPACE: rb"\s",
             C.CATEGORY_NOT_SPACE: rb"\S", C.CATEGORY_WORD: rb"\w", C.CATEGORY_NOT_WORD: rb"\W"}
# The regex of a rule's test: `/.../flags` (body, rawbody, full, uri) or `Name =~ /.../flags`.
_REGEX = re.compile(r"/(.*)/([a-z]*)", re.S)


class _Unreadable(Exception):
    pass


def _class_bytes(items: list[tuple[Any, Any]]) -> frozenset[int]:
    out: set[int] = set()
    negate = False
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            out.add(av)
        elif op is C.RANGE:
            out.update(range(av[0], av[1] + 1))
        elif op is C.CATEGORY and av in _CATEGORY:
            cat = re.compile(b"[" + _CATEGORY[av] + b"]")
            out.update(b for b in range(256) if cat.match(bytes([b])))
        else:
            raise _Unreadable(str(op))
    return _ALL - out if negate else frozenset(out)


def _first(seq: Any) -> tuple[frozenset[int], bool]:
    """The bytes a sequence can start with, and whether it can match the empty string."""
    out: set[int] = set()
    for op, av in seq:
        first, nullable = _item_first(op, av)
        out |= first
        if not nullable:
            return frozenset(out), False
    return frozenset(out), True


def _item_first(op: Any, av: Any) -> tuple[frozenset[int], bool]:
    if op is C.LITERAL:
        return frozenset({av}), False
    if op is C.NOT_LITERAL:
        return _ALL - {av}, False
    if op is C.IN:
        return _class_bytes(av), False
    if op is C.ANY:
        return _ALL, False
    if op in (C.AT, C.ASSERT, C.ASSERT_NOT):  # zero width: the next item decides
        return frozenset(), True
    if op is C.SUBPATTERN:
        return _first(av[3])
    if op is C.ATOMIC_GROUP:
        return _first(av)
    if op is C.BRANCH:
        firsts = [_first(b) for b in av[1]]
        return frozenset().union(*(f for f, _ in firsts)), any(n for _, n in firsts)
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        first, nullable = _first(av[2])
        return first, nullable or av[0] == 0
    raise _Unreadable(str(op))


def _lead_class(op: Any, av: Any) -> frozenset[int] | None:
    """The bytes of a positive lookahead of one character class, else None ([A] is parsed as A)."""
    if op is C.ASSERT and av[0] == 1 and len(av[1]) == 1 and av[1][0][0] in (C.IN, C.LITERAL, C.NOT_LITERAL):
        return _item_first(*av[1][0])[0]
    return None


def _children(op: Any, av: Any) -> list[Any]:
    if op is C.SUBPATTERN:
        return [av[3]]
    if op is C.ATOMIC_GROUP:
        return [av]
    if op is C.BRANCH:
        return list(av[1])
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        return [av[2]]
    if op in (C.ASSERT, C.ASSERT_NOT):
        return [av[1]]
    return []


def _show(byte: int) -> str:
    return chr(byte) if 0x21 <= byte < 0x7F else f"\\x{byte:02x}"


def _walk(seq: Any, folds: bool, problems: list[str]) -> None:
    items = list(seq)
    for i, (op, av) in enumerate(items):
        lead = _lead_class(op, av)
        if lead is not None and i + 1 < len(items):
            first, nullable = _first(items[i + 1:])
            if folds:  # /i: the class matches either case of an ASCII letter, as in Perl
                lead = lead | {b ^ 0x20 for b in lead if chr(b).isascii() and chr(b).isalpha()}
            missing = sorted(first - lead)
            if nullable:
                problems.append("is followed by a pattern that can match the empty string")
            elif missing:
                problems.append("does not cover " + "".join(_show(b) for b in missing))
        for child in _children(op, av):
            _walk(child, folds, problems)


def lead_class_problems(test: str) -> list[str]:
    """What is wrong with the first-character lookahead classes of a rule's test, one line each
    (empty when it has none or each covers the first bytes of what follows it)."""
    if "(?=[" not in test:
        return []
    m = _REGEX.search(test)
    if not m:
        return ["a (?=[...]) first-character class outside a /regex/: cannot check it"]
    pattern, flags = m.group(1).encode("utf-8"), m.group(2)
    try:
        tree = P.parse(pattern, re.I if "i" in flags else 0)
        problems: list[str] = []
        _walk(tree, "i" in flags, problems)
    except (re.error, _Unreadable) as exc:
        return [f"cannot read the regex to check its (?=[...]) first-character class: {exc}"]
    return [f"(?=[...]) first-character class {p}: a branch starting there never matches" for p in problems]
