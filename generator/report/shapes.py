"""The lines `bouncegen report` reads, as data: one entry per line shape.

A new kind of line (a BATV refusal, a DKIM rescue) is one more entry here, with the event it
feeds (a method name of figures.Figures) and the fixed facts it carries (stage, family); the
reader (reader.py) has no knowledge of any line. Each entry names where its text comes from,
in the manner of sisimai: the program that writes it and the code or template that words it.

Every regular expression is anchored and matched against the message part of a syslog line
(after ``PROGRAM[PID]: ``); ``needle`` is a literal that the message must contain before the
expression is tried at all (most of a busy mail.log is other lines: connect, qmgr, delivery).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Postfix's client notation, "name[address]"; the name may itself be "[address]" (the milter
# writes an unverified client as "[127.0.0.1][127.0.0.1]") or "unknown".
_CLIENT = r"(?P<host>\S*?)\[(?P<ip>[0-9A-Fa-f.:]*|IPv6:[0-9A-Fa-f:.]*)\]"
# The end of Postfix's reject lines: "from=<S> to=<R> proto=P helo=<H>" (before MAIL FROM no
# from=, with several recipients no to=, at CONNECT no helo=).
_ENVELOPE = r"(?:from=<(?P<sender>[^>]*)> )?(?:to=<(?P<rcpt>[^>]*)> )?proto=\S+(?: helo=<(?P<helo>[^>]*)>)?"


@dataclass(frozen=True)
class Shape:
    name: str             # names the shape in docs/report.md and in the tests
    programs: tuple[str, ...]  # the syslog program (after the last "/" of the tag: postfix/smtpd -> smtpd)
    needle: str           # a literal the message contains; the cheap filter before the expression
    pattern: str          # anchored expression with named groups
    event: str            # the figures.Figures method fed with (time, groups, facts)
    facts: dict = field(default_factory=dict)  # fixed facts of the shape: stage, family, ...
    source: str = ""      # who writes the line, and where its wording lives

    @property
    def rx(self) -> re.Pattern:
        return _compiled(self.pattern)

    @property
    def open_tail(self) -> bool:
        """Whether a second line glued to this one could still match (the pattern does not pin
        the end of the line): the reader then looks for a second syslog prefix in it."""
        return not self.pattern.endswith("$") or self.pattern.endswith(".*)$")


_CACHE: dict[str, re.Pattern] = {}


def _compiled(pattern: str) -> re.Pattern:
    rx = _CACHE.get(pattern)
    if rx is None:
        rx = _CACHE[pattern] = re.compile(pattern)
    return rx


MILTER = ("bouncegen-milter",)

SHAPES: tuple[Shape, ...] = (
    # ---- bouncegen's milter (MX role): one line per decision ---------------------------------
    Shape("milter-decision", MILTER, ", verdict=",
          r"^(?:warning: )?(?P<qid>[^\s:]+): client=" + _CLIENT + r", verdict=(?P<verdict>accept|reject|tempfail)"
          r"(?:, points=(?P<points>-?\d+(?:\.\d+)?))?(?:, rules=(?P<rules>[A-Z0-9_,-]+))?"
          r"(?:, reason=(?P<reason>.*?))?, ms=(?P<ms>\d+)(?:, tests=(?P<tests>\S*))?$",
          "decision", {},
          "milter/log.py decision(): QID: client=H[IP], verdict=V[, points=P][, rules=R][, reason=W], ms=N[, tests=T]"),
    # ---- the relay recorder (milter, relay role) ---------------------------------------------
    Shape("relay-recorded", MILTER, ": ledger: recorded ",
          r"^(?P<qid>[^\s:]+): ledger: recorded message-id=(?P<msgid>\S+)$", "recorder", {"what": "recorded"},
          "milter/relay_milter.py RelayMilter.eom"),
    Shape("relay-not-recorded", MILTER, "ledger: not recorded: ",
          r"^(?:warning: )?ledger: not recorded: (?P<qid>[^\s:]*): (?P<why>.*?)(?: \((?P<more>\d+) more since the last report\))?$",
          "recorder", {"what": "not_recorded"}, "milter/relay.py Recorder.record (at most once a minute, with a count)"),
    Shape("relay-batv-signed", MILTER, ": batv: signed ",
          r"^(?P<qid>[^\s:]+): batv: signed from=<(?P<sender>[^>]*)> as <(?P<signed>[^>]*)>$", "recorder",
          {"what": "batv_signed"}, "milter/relay_milter.py (BATV signing of outbound envelope senders)"),
    # ---- Postfix: bouncegen's maps ------------------------------------------------------------
    Shape("postfix-map-reject", ("cleanup",), ": reject: ",
          r"^(?P<qid>[0-9A-Za-z]+): reject: (?P<where>header|body) .*? from " + _CLIENT + r"; " + _ENVELOPE +
          r": (?P<dsn>[45]\.\d{1,3}\.\d{1,3}) (?P<text>.*)$",
          "map_reject", {}, "Postfix cleanup(8) for header_checks/body_checks REJECT (templates/postfix/)"),
    Shape("postfix-data-reject", ("smtpd",), ": reject: DATA from ",
          r"^(?P<qid>[0-9A-Za-z]+): reject: DATA from " + _CLIENT + r": (?P<code>\d{3}) (?P<dsn>[45]\.\d{1,3}\.\d{1,3}) "
          r"(?P<text>.*?); " + _ENVELOPE + r"$",
          "data_reject", {"stage": "null_sender"},
          "Postfix smtpd(8), smtpd_data_restrictions = check_sender_access null_sender (templates/postfix/null_sender.j2)"),
    Shape("postfix-milter-reject", ("cleanup", "smtpd"), "milter-reject: ",
          r"^(?P<qid>[0-9A-Za-z]+): milter-reject: (?P<step>[A-Z-]+) from " + _CLIENT + r": (?:\d{3} )?(?P<dsn>[45]\.\d{1,3}\.\d{1,3}) "
          r"(?P<text>.*?); " + _ENVELOPE + r"$",
          "postfix_milter_reject", {},
          "Postfix cleanup(8)/smtpd(8): the reply of a milter (bouncegen's texts: templates/milter/)"),
    Shape("postfix-milter-warning", ("smtpd", "cleanup"), "ilter",
          r"^(?:(?P<qid>[0-9A-Za-z]+): )?warning: (?:connect to Milter service|milter) "
          r"(?P<milter>(?:inet|unix|local):\S+): (?P<why>.*)$",
          "milter_warning", {}, "Postfix milter8.c: a milter could not be reached, or failed mid-message "
          "(per connection; the tempfail itself is the milter-reject 451 line)"),
    # ---- Postfix: the session (SAV callouts) and delivery -------------------------------------
    Shape("postfix-disconnect", ("smtpd",), "disconnect from ",
          r"^disconnect from " + _CLIENT + r"(?P<counts>(?: [a-z]+=\d+(?:/\d+)?)*)$",
          "session", {}, "Postfix smtpd(8) session summary (3.x): command=ok[/total] counts"),
    Shape("postfix-delivered", ("virtual", "local", "lmtp", "pipe", "smtp", "relay"), "status=sent",
          r"^(?P<qid>[0-9A-Za-z]+): to=<(?P<rcpt>[^>]*)>,.*? status=sent ", "delivery", {},
          "Postfix delivery agents: a recipient delivered (or relayed)"),
)

# Postfix map refusals: which family the reply text (templates/postfix/) names. First match wins.
MAP_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"^Delivery status notification refused", "dsn"),
    (r"^Forged Received: header", "forged-received"),
    (r"Multi-recipient bounce", "multi-recipient-bounce"),
)

# Milter decisions that are not a content verdict, by what their reason says (first match wins):
# refused (at a stage and in a family of their own), rescued (by the evidence named), unjudged
# (spamd never asked: our relays, exempt networks, authenticated or local submissions). A
# decision no entry matches is a content verdict: SpamAssassin's, family from its rules.
@dataclass(frozen=True)
class Reason:
    verdict: str
    pattern: str
    kind: str        # refused | rescued | unjudged
    label: str = ""  # family (refused) or evidence (rescued); "" = the pattern's (?P<label>)
    stage: str = ""  # refused only


REASONS: tuple[Reason, ...] = (
    Reason("reject", r"^batv: null sender to unsigned", "refused", "batv", "milter DATA (BATV)"),
    Reason("reject", r"^batv: <", "refused", "batv", "milter RCPT (BATV)"),
    Reason("accept", r"^batv: valid tag", "rescued", "batv"),
    Reason("accept", r"^(?:rescued?|evidence)[:=] ?(?P<label>[\w-]+)", "rescued"),
    Reason("accept", r"^(?P<label>local|exempt|auth|relay|network)$", "unjudged"),
)

# Why a message was tempfailed: the milter's reason, or Postfix's milter warning (first match).
TEMPFAIL_REASONS: tuple[tuple[str, str], ...] = (
    (r"ledger unavailable", "ledger unavailable"),
    (r"no spamd slot free", "all spamd slots busy"),
    (r"time_limit", "spamd time_limit"),
    (r"spamd did not answer within", "spamd timeout"),
    (r"^spamd at .*?:", "spamd unreachable"),
    (r"^spamd", "spamd error"),
    (r"^batv", "BATV key or store"),
    (r"(?i)timeout|timed out", "milter timed out"),
    (r"(?i)connect|refused|can't read|read error|unreachable|no such file", "milter unreachable"),
    (r".", "other"),
)

# Evidence that proves a bounce answers our mail, when an accepted decision's `rules=` (or its
# `tests=`) names one of the ruleset's rescue labels (facts.RESCUE_LABELS, 0.001-point meta rules
# of templates/spamassassin/_rescue.j2: the evidence AND a family verdict it cancelled). Name
# pattern -> evidence label. A message that carries several counts once, under the first match
# of this order (the evidence a spammer is least able to come by first).
RESCUE_TESTS: tuple[tuple[str, str], ...] = (
    (r"^BG_(?:RESCUE_)?LEDGER(?:_HIT)?$", "ledger"),
    (r"^BG_(?:RESCUE_)?DKIM(?:_OURS)?$", "dkim"),
    (r"^BG_(?:RESCUE_)?BATV(?:_HIT)?$", "batv"),
    (r"^BG_(?:RESCUE_)?HOP$", "relay-hop"),
)


def by_program() -> dict[str, tuple[Shape, ...]]:
    out: dict[str, list[Shape]] = {}
    for shape in SHAPES:
        for prog in shape.programs:
            out.setdefault(prog, []).append(shape)
    return {k: tuple(v) for k, v in out.items()}

# Postfix's milter-reject lines that carry bouncegen's replies (templates/milter/, the milter's
# BATV texts), told apart from other milters' (OpenDKIM, rspamd). First match wins; a refusal's
# family comes from the rule names in parentheses when there are any.
@dataclass(frozen=True)
class MilterReply:
    pattern: str   # on the reply text after the enhanced status code
    kind: str      # refused | tempfailed
    stage: str = ""
    family: str = ""
    label: str = ""  # tempfailed: the reason


MILTER_REPLIES: tuple[MilterReply, ...] = (
    MilterReply(r"^Refused as backscatter\b.*\((?P<rules>BG_[A-Z0-9_]+(?: BG_[A-Z0-9_]+)*)\)$", "refused",
                "milter (SpamAssassin)"),
    # milter/batv_gate.py REJECT_DATA_TEXT and REJECT_RCPT_TEXT
    MilterReply(r"^Refused as backscatter: a bounce or notice to an address we never sent from", "refused",
                "milter DATA (BATV)", "batv"),
    MilterReply(r"^Invalid or expired bounce address tag \(BATV\)", "refused", "milter RCPT (BATV)", "batv"),
    MilterReply(r"^Content check temporarily unavailable", "tempfailed", label="milter tempfail"),
    # Postfix's own text for default_action=tempfail: a milter it could not reach or that timed
    # out (any milter of smtpd_milters: the reply does not say which; the warning lines do).
    MilterReply(r"^Service unavailable - try again later$", "tempfailed",
                label="milter unreachable or timed out (Postfix)"),
)
