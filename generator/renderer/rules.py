"""Load the rule families of rules/*.toml: detection knowledge as data.

Each file is one family (bounces, challenge-response, auto-replies, virus notices, ...): a
``[family]`` table and ``[[rule]]`` entries in SpamAssassin's terms. The loader checks what
SpamAssassin would only half-check (name length, describe length, sub-rules never scored, every
rule carrying a source note and its own ok/fail strings) and names file and rule in each error.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import RuleDataError
from ..facts import LEDGER_UNAVAIL, THRESHOLD
from ..resources import data_dir
from .leadclass import lead_class_problems

RULE_TYPES = ("header", "body", "rawbody", "full", "uri", "meta", "mimeheader")
_NAME = re.compile(r"^(__)?[A-Z][A-Z0-9_]*$")
MAX_NAME = 22
MAX_DESCRIBE = 50
# Names a meta rule may use without a family defining them: only what bouncegen's own templates
# define (72_bouncegen.cf.j2: the rescue contract, __BG_RESCUE for bounces/notices/challenges and
# __BG_RESCUE_REPLY for auto-replies, and __BG_FROM_OURS). Never a stock sub-rule
# (__MY_SERVERS_FOUND, __AUTOREPLY_*, __CRBOUNCE_*, anything of 20_vbounce.cf): the lean scanning
# profile (spamd/) loads no stock rule file, so a meta that leans on one would silently lose that
# term there and judge differently from the full profile. Write our own __BG_ equivalent instead.
EXTERNAL_NAMES = frozenset({"__BG_RESCUE", "__BG_RESCUE_REPLY", "__BG_FROM_OURS"})
# eval: functions a rule may call: those of the plugins the lean profile loads (Check,
# MIMEHeader, VBounce; spamd/site/00_bouncegen_lean.pre) and of bouncegen's rescue plugin.
EVAL_FUNCTIONS = frozenset({"bouncegen_rescue", "bouncegen_reply_msgid", "have_any_bounce_relays",
                            "check_whitelist_bounce_relays", "check_welcomelist_bounce_relays"})
_EVAL = re.compile(r"^eval:\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_META_NAME = re.compile(r"\b_*[A-Z][A-Z0-9_]*\b")


@dataclass(frozen=True)
class Rule:
    name: str
    type: str
    test: str  # the rule text after the type keyword, as SpamAssassin reads it
    source: str
    describe: str = ""
    tflags: str = ""
    ok: tuple[str, ...] = ()
    fail: tuple[str, ...] = ()
    scores: tuple[tuple[str, float], ...] = ()  # (policy.scores value, points) for scored rules

    @property
    def is_sub(self) -> bool:
        return self.name.startswith("__")

    def score(self, policy: str) -> float | None:
        return dict(self.scores).get(policy)


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    order: int
    note: str
    rules: tuple[Rule, ...]
    path: Path


_RULE_KEYS = {"name", "type", "test", "source", "describe", "tflags", "ok", "fail", "score"}
_FAMILY_KEYS = {"name", "title", "order", "note"}


def _load_family(path: Path) -> Family:
    label = path.name
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleDataError(f"{label}: {exc}") from None
    problems: list[str] = []
    fam = data.get("family", {})
    for k in sorted(set(data) - {"family", "rule"}):
        problems.append(f"{label}: {k}: unknown key")
    for k in sorted(set(fam) - _FAMILY_KEYS):
        problems.append(f"{label}: family.{k}: unknown key")
    rules = []
    for i, r in enumerate(data.get("rule", [])):
        name = r.get("name", f"rule[{i}]")
        where = f"{label}: {name}"
        for k in sorted(set(r) - _RULE_KEYS):
            problems.append(f"{where}: {k}: unknown key")
        if not _NAME.match(str(name)) or len(name) > MAX_NAME:
            problems.append(f"{where}: name must be upper-case, at most {MAX_NAME} characters")
        elif not str(name).startswith(("BG_", "__BG_")):
            problems.append(f"{where}: name must start with BG_ (scored verdict) or __BG_ (sub-rule)")
        if "#" in str(r.get("test", "")).replace("\\#", ""):
            problems.append(f"{where}: test contains an unescaped '#' (SpamAssassin reads it as a comment): write \\#")
        if r.get("type") not in RULE_TYPES:
            problems.append(f"{where}: type must be one of {', '.join(RULE_TYPES)}")
        if not r.get("test"):
            problems.append(f"{where}: test is missing")
        problems += [f"{where}: test: {p}" for p in lead_class_problems(str(r.get("test", "")))]
        if not r.get("source"):
            problems.append(f"{where}: source is missing: say where the matched text comes from")
        describe = r.get("describe", "")
        if len(describe) > MAX_DESCRIBE:
            problems.append(f"{where}: describe is longer than {MAX_DESCRIBE} characters")
        score = r.get("score", {})
        if str(name).startswith("__"):
            if score or describe:
                problems.append(f"{where}: a __sub-rule has no score and no describe")
        elif not describe:
            problems.append(f"{where}: a scored rule needs a describe")
        if r.get("type") != "meta" and not r.get("ok") and not str(name).startswith("__BG_RELAY"):
            problems.append(f"{where}: needs ok strings (text the rule must hit)")
        rules.append(
            Rule(
                name=str(name),
                type=str(r.get("type")),
                test=str(r.get("test", "")).strip(),
                source=str(r.get("source", "")),
                describe=describe,
                tflags=str(r.get("tflags", "")),
                ok=tuple(r.get("ok", ())),
                fail=tuple(r.get("fail", ())),
                scores=tuple(sorted((str(k), float(v)) for k, v in score.items())),
            )
        )
    if problems:
        raise RuleDataError(problems)
    return Family(
        name=str(fam.get("name", path.stem)),
        title=str(fam.get("title", path.stem)),
        order=int(fam.get("order", 50)),
        note=str(fam.get("note", "")).strip(),
        rules=tuple(rules),
        path=path,
    )


def load_families(directory: Path | None = None) -> tuple[Family, ...]:
    """All families, in their declared order; rule names must be unique across families."""
    directory = directory or data_dir("rules")
    families = sorted((_load_family(p) for p in sorted(directory.glob("*.toml"))), key=lambda f: (f.order, f.name))
    seen: dict[str, str] = {}
    problems = []
    for fam in families:
        for rule in fam.rules:
            if rule.name in seen:
                problems.append(f"{fam.path.name}: {rule.name}: also defined in {seen[rule.name]}")
            seen[rule.name] = fam.path.name
    for fam in families:
        for rule in fam.rules:
            ev = _EVAL.match(rule.test)
            if ev and ev.group(1) not in EVAL_FUNCTIONS:
                problems.append(f"{fam.path.name}: {rule.name}: eval:{ev.group(1)}() is no function of the plugins "
                                "the lean profile loads (spamd/site/00_bouncegen_lean.pre)")
            if rule.type != "meta":
                continue
            for ref in _META_NAME.findall(rule.test):
                if ref not in seen and ref not in EXTERNAL_NAMES:
                    problems.append(f"{fam.path.name}: {rule.name}: meta uses {ref}, which neither a family nor "
                                    "bouncegen's templates define (stock sub-rules are not loaded in the lean "
                                    "profile: write a __BG_ rule of our own)")
    if problems:
        raise RuleDataError(problems)
    problems = _precedence_problems(families)
    if problems:
        raise RuleDataError(problems)
    return tuple(families)


def _conjuncts(test: str) -> list[str]:
    """The top-level terms of a meta test joined by ``&&`` (not those inside parentheses)."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(test):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and test.startswith("&&", i):
            terms.append(test[start:i].strip())
            start = i + 2
    terms.append(test[start:].strip())
    return terms


def _verdicts(families) -> dict[str, tuple[Family, Rule]]:
    """The family verdicts: scored meta rules that score a whole refusal (THRESHOLD) under "block"."""
    return {r.name: (f, r) for f in families for r in f.rules
            if not r.is_sub and r.type == "meta" and (r.score("block") or 0.0) >= THRESHOLD}


def _excluded(rule: Rule, verdicts) -> set[str]:
    return {t[1:].strip() for t in _conjuncts(rule.test) if t.startswith("!") and t[1:].strip() in verdicts}


def verdict_precedence(families: tuple[Family, ...]) -> tuple[str, ...]:
    """The family verdicts, highest precedence first: each excludes (``&& !BG_X``) every verdict
    above it in the rules data, so at most one verdict fires per message (load_families checks it)."""
    verdicts = _verdicts(families)
    return tuple(sorted(verdicts, key=lambda n: (len(_excluded(verdicts[n][1], verdicts)), n)))


def _precedence_problems(families) -> list[str]:
    """At most one verdict per message, by construction: a message is counted under one family,
    and BG_LEDGER_UNAVAIL, which scores minus one verdict, cancels whatever the ruleset says about
    it post-queue. Two verdicts that may fire together would score twice and leave a ledger
    outage marking the message as spam."""
    verdicts = _verdicts(families)
    excl = {n: _excluded(r, verdicts) for n, (_, r) in verdicts.items()}
    problems = []
    names = sorted(verdicts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            where = f"{verdicts[a][0].path.name}: {a} and {verdicts[b][0].path.name}: {b}"
            if b not in excl[a] and a not in excl[b]:
                problems.append(f"{where}: at most one verdict may fire per message, and these two can fire "
                                f"together: the lower one's test must exclude the higher (&& !{a} or && !{b})")
            elif b in excl[a] and a in excl[b]:
                problems.append(f"{where}: at most one verdict may fire per message, and each excludes the other: "
                                "only the lower one may exclude the higher")
    if problems:
        return problems
    order = verdict_precedence(families)
    for i, name in enumerate(order):
        if excl[name] != set(order[:i]):  # a cycle: A excludes B, B excludes C, C excludes A
            problems.append(f"{verdicts[name][0].path.name}: {name}: at most one verdict may fire per message: "
                            f"the exclusions (&& !BG_X) form no single order ({' > '.join(order)})")
    return problems


def rule_names(families: tuple[Family, ...]) -> list[str]:
    """Every rule the families define (verdicts and sub-rules), sorted."""
    return sorted(r.name for f in families for r in f.rules)


def verdict_scores(families: tuple[Family, ...], policy: str, *, ledger: bool = False,
                   points: float | None = None) -> dict[str, float]:
    """The scored rules and their points under a score policy: what the ruleset renders, what the
    milter adds up and what the runner judges with (never re-read from rendered text).

    ``points`` (policy.points) replaces the score of every verdict rule under "block" (the rules
    whose data scores THRESHOLD or more); BG_ANY_BOUNCE's label and the "tag" labels keep theirs."""
    scores = {r.name: s for f in families for r in f.rules if (s := r.score(policy)) is not None}
    if points is not None and policy == "block":
        scores = {n: (points if s >= THRESHOLD else s) for n, s in scores.items()}
    if ledger:
        # Scored by the rescue plugin, not by a family (templates/spamassassin/_rescue.j2): the
        # ledger could not answer for a message with references. Post-queue its negative score
        # cancels the verdict (at most one fires per message: verdict_precedence; an outage never
        # blocks); in the session the milter never counts it as points but turns a verdict
        # together with it into a 4xx.
        scores[LEDGER_UNAVAIL] = -max(scores.values())
    return scores



_RESCUE_TERM = re.compile(r"\s*&&\s*!__BG_RESCUE(?:_REPLY)?\b")


def cancelled_verdicts(families: tuple[Family, ...]) -> list[tuple[str, str]]:
    """Each family verdict that a rescue can cancel, as a sub-rule without its rescue term
    (``__BG_BOUNCE_NR``: the verdict would have fired but for the evidence): what the rescue labels
    of templates/spamassassin/_rescue.j2 require, so that a label names only a cancelled verdict."""
    out = []
    for f in families:
        for r in f.rules:
            if r.is_sub or r.type != "meta":
                continue
            test, n = _RESCUE_TERM.subn("", r.test)
            if n == 1:
                out.append((f"__{r.name}_NR", test))
            elif n > 1:
                raise RuleDataError(f"{f.name}: {r.name}: more than one rescue term")
    return out
