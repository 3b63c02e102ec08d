"""Postfix's content checks, run by the real ``postmap`` exactly as a main.cf wires them.

The wiring is read from the private config directory with ``postconf -x`` (so that
``$config_directory`` and ``mime_header_checks = $header_checks`` are expanded by Postfix itself),
never assumed:

- ``disable_mime_input_processing = yes`` (what bouncegen renders): header_checks see the message's
  own header block only, and every line below it goes to body_checks:
  ``postmap -hq - TYPE:header_checks`` and ``postmap -bq - TYPE:body_checks``, without ``-m``.
- MIME processing on: ``-hmq`` for a table that is also named by mime_header_checks or
  nested_header_checks (postmap then feeds it the MIME and attached-message headers too), and
  ``-bmq`` for body_checks. postmap cannot tell those header classes apart, so distinct tables per
  class are approximated by querying each with all of them.

Like the cleanup server, body_checks only see the lines that start within the first
``body_checks_size_limit`` bytes of the body, and a message refused by its headers never reaches
body_checks. Actions: REJECT, DISCARD, DEFER* and ``4NN``/``5NN`` texts refuse the message; DUNNO,
WARN, INFO and the rest do not (they are still reported).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .. import engines
from ..errors import EngineError

_PARAMS = ("header_checks", "mime_header_checks", "nested_header_checks", "body_checks",
           "disable_mime_input_processing", "body_checks_size_limit")

REFUSING = re.compile(r"^(REJECT|DISCARD|DEFER|DEFER_IF_PERMIT|DEFER_IF_REJECT|[45]\d\d)(\s|$)", re.I)
_HEADER_START = re.compile(rb"^[!-9;-~]+:")  # a header field name (printable ASCII but ':') and ':'


@dataclass(frozen=True)
class Query:
    parameter: str  # header_checks, body_checks, ...
    table: str      # TYPE:/path as postconf -x expands it
    flags: str      # -hq, -hmq, -bq, -bmq

    @property
    def stage(self) -> str:
        return "body" if "b" in self.flags else "header"


@dataclass
class Hit:
    parameter: str
    table: str
    line: str
    action: str

    @property
    def refuses(self) -> bool:
        return bool(REFUSING.match(self.action))

    def as_dict(self, confdir: Path | None = None) -> dict:
        table = self.table
        if confdir is not None:
            table = table.replace(f"{confdir}/", "$config_directory/")
        return {"parameter": self.parameter, "table": table, "line": self.line, "action": self.action}


@dataclass
class PostfixResult:
    ok: bool
    hits: list[Hit] = field(default_factory=list)  # every non-DUNNO action, in query order
    refused: Hit | None = None
    error: str = ""


def _tables(value: str) -> list[str]:
    return [t for t in re.split(r"[\s,]+", value.strip()) if t]


class PostfixChecks:
    """The content checks of the main.cf in ``confdir`` (see engines.postfix_config_dir)."""

    def __init__(self, confdir: Path):
        self.confdir = Path(confdir)
        self.postmap = engines.require("postmap")
        postconf = engines.require("postconf")
        proc = engines.run([postconf, "-c", str(self.confdir), "-x", *_PARAMS])
        if proc.returncode != 0:
            raise EngineError(f"postconf -c {self.confdir}: {proc.stderr.strip() or proc.returncode}")
        values = {}
        for line in proc.stdout.splitlines():
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
        self.params = values
        self.mime = values.get("disable_mime_input_processing", "no").lower() not in ("yes", "true", "1")
        self.body_limit = int(values.get("body_checks_size_limit") or 0)
        self.queries = self._queries(values)

    def _queries(self, v: dict[str, str]) -> list[Query]:
        queries: list[Query] = []
        if self.mime:
            mime_tables = set(_tables(v.get("mime_header_checks", ""))) | set(_tables(v.get("nested_header_checks", "")))
            header = _tables(v.get("header_checks", ""))
            for t in header:
                queries.append(Query("header_checks", t, "-hmq" if t in mime_tables else "-hq"))
            for param in ("mime_header_checks", "nested_header_checks"):
                for t in _tables(v.get(param, "")):
                    if t not in header and all(q.table != t for q in queries):
                        queries.append(Query(param, t, "-hmq"))
            queries += [Query("body_checks", t, "-bmq") for t in _tables(v.get("body_checks", ""))]
        else:
            queries += [Query("header_checks", t, "-hq") for t in _tables(v.get("header_checks", ""))]
            queries += [Query("body_checks", t, "-bq") for t in _tables(v.get("body_checks", ""))]
        return queries

    def describe(self) -> str:
        """The queries as a reader can repeat them (the temporary directory as $config_directory)."""
        return "; ".join(f"postmap {q.flags} - {q.table.replace(f'{self.confdir}/', '$config_directory/')}"
                         for q in self.queries)

    def _limit_body(self, message: bytes) -> bytes:
        """Drop body lines that start beyond body_checks_size_limit (cleanup's ``offset < limit``)."""
        if not self.body_limit or len(message) <= self.body_limit:
            return message
        start = 0
        if _HEADER_START.match(message):
            end = message.find(b"\n\n")
            start = len(message) if end < 0 else end + 2
        cut = message.find(b"\n", start + self.body_limit)
        return message if cut < 0 else message[:cut + 1]

    def check(self, message: bytes, timeout: float = 120) -> PostfixResult:
        """Run every table on ``message`` (LF line ends); the first refusing action wins."""
        result = PostfixResult(ok=True)
        limited = None
        for q in self.queries:
            data = message
            if q.stage == "body":
                if result.refused:  # refused at the headers: cleanup never reads the body
                    break
                if limited is None:
                    limited = self._limit_body(message)
                data = limited
            try:
                proc = subprocess.run([self.postmap, "-c", str(self.confdir), q.flags, "-", q.table],
                                      input=data, capture_output=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                return PostfixResult(ok=False, hits=result.hits, error=f"postmap {q.flags} {q.parameter}: no answer within {timeout:.0f} s")
            except OSError as exc:
                return PostfixResult(ok=False, hits=result.hits, error=f"postmap: {exc}")
            if proc.returncode not in (0, 1):  # 0: some line matched, 1: none did
                err = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
                return PostfixResult(ok=False, hits=result.hits, error=f"postmap {q.flags} {q.parameter}: {err}")
            for key, action in _records(proc.stdout, header=q.stage == "header"):
                if action.upper() == "DUNNO" or action.upper().startswith("DUNNO "):
                    continue
                hit = Hit(q.parameter, q.table, key, action)
                result.hits.append(hit)
                if hit.refuses and result.refused is None:
                    result.refused = hit
        return result


def _records(out: bytes, *, header: bool) -> list[tuple[str, str]]:
    """postmap -q - prints ``KEY<TAB>VALUE`` per matching key. A folded header is one key that
    spans several lines, its continuation lines starting with white space (a header never does);
    a body line is always one key on one line. The value follows the record's last tab."""
    text = out.decode("utf-8", errors="backslashreplace")
    records: list[list[str]] = []
    for line in text.split("\n"):
        if header and records and line[:1] in (" ", "\t"):
            records[-1].append(line)
        elif line:
            records.append([line])
    pairs = []
    for rec in records:
        key, sep, action = "\n".join(rec).rpartition("\t")
        if sep:
            pairs.append((key, action.strip()))
    return pairs
