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

Many messages, few processes (``check_many``): ``postmap -hq -`` reads one message and stops at the
end of its headers, and postmap prints its answers only when it exits, so one process per table
answers a whole batch: each message's header block (as Postfix's MIME reader delimits it, with
MIME processing off) follows a marker header, and its body lines follow a marker line; a second,
private table after the site's one answers every marker, so that the output splits back into
messages. Each message gets exactly the keys, hence the answers, that its own postmap process
would print. A batch whose process fails, or whose markers do not all come back, is checked again
one process per message, so that one bad message fails alone.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import engines
from ..errors import EngineError

_PARAMS = ("header_checks", "mime_header_checks", "nested_header_checks", "body_checks",
           "disable_mime_input_processing", "body_checks_size_limit")

REFUSING = re.compile(r"^(REJECT|DISCARD|DEFER|DEFER_IF_PERMIT|DEFER_IF_REJECT|[45]\d\d)(\s|$)", re.I)
_HEADER_START = re.compile(rb"^[!-9;-~]+:")  # a header field name (printable ASCII but ':') and ':'
# Postfix's is_header_buf(): a name of printable ASCII but ':', optional blanks, then ':'.
_IS_HEADER = re.compile(rb"[!-9;-~]+[ \t]*:")
# Table types whose patterns see the key as a string (the marker table is written in the same type).
_PATTERN_TYPES = ("pcre", "regexp")
_FATAL = re.compile(rb"^postmap: (fatal|panic): ", re.M)
BATCH = 32  # messages per postmap process in check_many (2 ms of start-up each, shared 32 ways)


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
        self.children = engines.Children()
        # The marker's token is new for each instance: no message can carry it. The tables that
        # answer it are written once, here, in a directory of this instance's own (never in the
        # Postfix configuration it reads), so no batch can read one half-written.
        self._mark = f"X-Bouncegen-Mark-{secrets.token_hex(16)}: ".encode()
        self._mark_dir = tempfile.TemporaryDirectory(prefix="bouncegen-postmap-")
        self._mark_tables: dict[str, str] = {}
        try:
            for kind in _PATTERN_TYPES:
                path = Path(self._mark_dir.name) / f"batch-mark.{kind}"
                # The marker holds letters, digits, '-', ':' and a space: literal in pcre and regexp alike.
                path.write_text(f"/^{self._mark.decode()}[0-9]+$/ DUNNO\n")
                self._mark_tables[kind] = f"{kind}:{path}"
        except OSError as exc:
            self._mark_dir.cleanup()
            raise EngineError(f"postmap batches: cannot write the marker table: {exc}") from None

    def close(self) -> None:
        """Stop every postmap still running (the run ends early) and start no more."""
        self.children.stop()
        self._mark_dir.cleanup()

    def __enter__(self) -> "PostfixChecks":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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
                proc = self.children.run([self.postmap, "-c", str(self.confdir), q.flags, "-", q.table], data, timeout)
            except subprocess.TimeoutExpired:
                return PostfixResult(ok=False, hits=result.hits, error=f"postmap {q.flags} {q.parameter}: no answer within {timeout:.0f} s")
            except OSError as exc:
                return PostfixResult(ok=False, hits=result.hits, error=f"postmap: {exc}")
            # 0: some line matched, 1: none did, or a fatal error (a table it cannot open), which
            # postmap reports on stderr with the same status 1: never a silent "no match".
            if proc.returncode not in (0, 1) or _FATAL.search(proc.stderr):
                err = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
                return PostfixResult(ok=False, hits=result.hits, error=f"postmap {q.flags} {q.parameter}: {err}")
            _add_hits(result, q, _records(proc.stdout, header=q.stage == "header"))
        return result


    # -- many messages, one postmap process per table --------------------------------------------
    def check_many(self, messages: list[bytes], timeout: float = 120) -> list[PostfixResult]:
        """``[self.check(m) for m in messages]``, with one postmap process per table for the lot
        (see the module's docstring); the same results, byte for byte."""
        batchable = not self.mime and all(q.table.partition(":")[0] in _PATTERN_TYPES for q in self.queries)
        if batchable and len(messages) > 1:
            try:
                return self._check_batch(messages, timeout)
            except _BatchFailed:
                pass  # one process per message: a message that breaks postmap fails alone
        return [self.check(m, timeout) for m in messages]

    def _query_batch(self, q: Query, keys: list[list[bytes]], timeout: float) -> list[list[tuple[str, str]]]:
        """Each message's (key, action) records from one postmap process: ``keys[i]`` are the
        input lines that message i's own process would turn into keys."""
        stream = [b""] if q.stage == "body" else []  # ends the (empty) header block: all that follows is body
        for i, lines in enumerate(keys):
            stream.append(self._mark + str(i).encode())
            stream += lines
        data = b"\n".join(stream) + b"\n"
        argv = [self.postmap, "-c", str(self.confdir), q.flags, "-", q.table, self._mark_tables[q.table.partition(":")[0]]]
        try:
            proc = self.children.run(argv, data, timeout)
        except (subprocess.TimeoutExpired, OSError):
            raise _BatchFailed() from None
        if proc.returncode != 0:  # every marker is found: 0, unless postmap failed
            raise _BatchFailed()
        chunks: list[list[bytes]] = []
        for line in proc.stdout.split(b"\n")[:-1]:
            if line.startswith(self._mark):
                if line[len(self._mark):].partition(b"\t")[0] != str(len(chunks)).encode():
                    raise _BatchFailed()
                chunks.append([])
            elif chunks:  # before the first marker: the body stream's leading empty key
                chunks[-1].append(line + b"\n")
        if len(chunks) != len(keys) or not proc.stdout.endswith(b"\n"):
            raise _BatchFailed()
        return [_records(b"".join(c), header=q.stage == "header") for c in chunks]

    def _check_batch(self, messages: list[bytes], timeout: float) -> list[PostfixResult]:
        results = [PostfixResult(ok=True) for _ in messages]
        heads = [_header_block(_lines(m))[0] for m in messages]
        for q in self.queries:
            if q.stage == "header":
                for result, records in zip(results, self._query_batch(q, heads, timeout), strict=True):
                    _add_hits(result, q, records)
        # A message refused at its headers never reaches body_checks (cleanup stops reading it).
        todo = [i for i, r in enumerate(results) if r.refused is None]
        bodies = [_header_block(_lines(self._limit_body(messages[i])))[1] for i in todo]
        for q in self.queries:
            if q.stage == "body" and todo:
                for i, records in zip(todo, self._query_batch(q, bodies, timeout), strict=True):
                    _add_hits(results[i], q, records)
        return results


class _BatchFailed(Exception):
    """A batch's postmap failed or answered out of step: check its messages one by one."""


def _add_hits(result: PostfixResult, q: Query, records: list[tuple[str, str]]) -> None:
    for key, action in records:
        if action.upper() == "DUNNO" or action.upper().startswith("DUNNO "):
            continue
        hit = Hit(q.parameter, q.table, key, action)
        result.hits.append(hit)
        if hit.refuses and result.refused is None:
            result.refused = hit


def _lines(data: bytes) -> list[bytes]:
    """The lines postmap reads (vstring_get_nonl): split at LF, a last line without LF kept."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def _header_block(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(header lines, body keys) as Postfix's MIME reader sees one message with MIME processing
    off (global/mime_state.c): the headers run while each line is a header (is_header_buf) or,
    after the first, a continuation (starts with a blank). The line that ends them makes the body
    start with an empty key, and is itself a body key unless it is empty."""
    end = 0
    while end < len(lines) and (_IS_HEADER.match(lines[end]) or (end > 0 and lines[end][:1] in (b" ", b"\t"))):
        end += 1
    if end == len(lines):
        return lines, []
    return lines[:end], [b""] + lines[end + (lines[end] == b""):]


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
