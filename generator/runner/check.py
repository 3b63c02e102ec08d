"""``bouncegen check``: run a labelled corpus through the rendered rules on the real engines.

The inventory is rendered into a temporary directory; ONE private spamd (engines/spamd.py) is
started with the rendered .cf beside the stock .pre files; every message goes through ``spamc -x``
(a failing daemon is an error, never a silent pass) from N worker threads, while a second pool
runs the Postfix tables with ``postmap`` as the rendered main.cf wires them
(engines/postfix_tables.py), one postmap process per table for a batch of messages, so that
postmap costs little beside spamd's work.

Each message gets a verdict: ``block`` when a Postfix table refuses it, or when the ruleset's
verdict rules (``BG_*``, scores from the rendered ``score`` lines; SpamAssassin's default 1.0 for
an unscored one) add 5 points or more (policy.scores = "block"), or any BG_* rule with a non-zero
score fires (policy.scores = "tag"); ``pass`` otherwise; ``error`` when an engine could not judge
it. One record per message is kept (the log); every table is computed from the records.

Messages are prepared once, the same way for both engines, as a delivery would see them: a leading
mbox ``From `` line is removed, and CRLF line ends become LF (Postfix stores lines without their
CRLF; postmap would otherwise see a trailing CR on every line). An empty file is an error.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__, engines
from ..engines.postfix_tables import BATCH as PF_BATCH, PostfixChecks, PostfixResult
from ..engines.spamd import Spamd, SpamdResult
from ..errors import EngineError, UsageError
from ..facts import LEDGER_UNAVAIL_LOG, RESCUE_LABELS, THRESHOLD
from ..ledger import keys, open_store
from ..ledger.maillog import import_logs
from ..milter.settings import check_rendered
from ..renderer import inventory, lint, render
from ..renderer.rules import LEDGER_UNAVAIL, load_families, verdict_scores

EXPECTED = ("block", "pass")

# spamd never reports a __sub-rule, yet a decision must say which signals fired (the verdict's
# named sub-rules: RFC 3834 header, vendor fingerprint, reply shape, phrase, exclusion). The
# check's private spamd gets one mirror per sub-rule, BGS_<name>, scored 0.001 so that spamc -y
# lists it; the mirrors are never rendered into a site's ruleset and never counted as points.
SIGNAL_PREFIX = "BGS_"


def signal_mirrors(families) -> str:
    return "".join(f"meta {SIGNAL_PREFIX}{r.name[5:]} {r.name}\nscore {SIGNAL_PREFIX}{r.name[5:]} 0.001\n"
                   for f in families for r in f.rules if r.name.startswith("__BG_"))

BLOCK_POINTS = THRESHOLD  # what the "block" score policy promises per family by default


def block_points(scores: dict[str, float]) -> float:
    """The points one verdict adds under "block" (policy.points): the highest score of the
    policy, as verdict_scores gives every verdict rule the same."""
    return max(scores.values(), default=BLOCK_POINTS)


# The sent-mail ledger a corpus was written for: a maillog of our relays (docs/ledger.md).
LEDGER_FIXTURE = Path("ledger") / "maillog"

# Corpus layout without a manifest (README, "Corpus regression"): the first directory level says
# what is expected; the second, if any, names the category.
LAYOUT = {"backscatter": "block", "legit": "pass", "ham": "pass"}


@dataclass(frozen=True)
class Sample:
    path: str  # relative to the corpus directory, "/"-separated
    category: str
    expected: str


@dataclass
class Record:
    """One message's outcome: the per-message log line, and the source of every table."""
    path: str
    category: str
    expected: str
    verdict: str = "error"
    size: int = 0
    notes: list[str] = field(default_factory=list)
    postfix: dict | None = None
    spamassassin: dict | None = None
    error: str = ""

    @property
    def wrong(self) -> bool:
        return self.verdict != self.expected

    def as_dict(self) -> dict:
        return {"path": self.path, "category": self.category, "expected": self.expected,
                "verdict": self.verdict, "postfix": self.postfix, "spamassassin": self.spamassassin,
                "error": self.error or None, "notes": self.notes, "size": self.size}


@dataclass
class Options:
    inventory: Path
    corpus: Path
    manifest: Path | None = None
    jobs: int = 0
    log: Path | None = None
    json: bool = False
    lint: bool = True
    progress: bool | None = None  # None: when stderr is a terminal
    # "lean": the rendered lean scanning profile (spamd/), what bouncegen's milter asks in the
    # SMTP session (same verdicts, faster); "full": the ruleset beside the whole stock rule set.
    profile: str = "lean"


@dataclass
class Result:
    records: list[Record]
    provenance: dict
    rules: dict[str, float]  # BG_* verdict rules and their scores
    seconds_setup: float
    seconds_run: float
    # Messages that spamd could not judge with the inventory's ledger (BG_LEDGER_UNAVAIL hit:
    # the verdict was cancelled), and the one line that says why (ledger_problem).
    ledger_unavail: int = 0
    ledger_problem: str = ""

    @property
    def exit_status(self) -> int:
        if self.ledger_unavail:
            return 2  # the inventory's ledger is broken for spamd: no verdict of this run is a finding
        return 1 if any(r.wrong for r in self.records) else 0


# The error text, classified: DBI/DBD::SQLite and TinyRedis messages, and the plugin's own.
_CAUSES = (
    ("key", re.compile(r"key file|bouncegen_ledger_key|64 hex", re.I),
     "spamd's user must be able to read the key file (mode 0640, group of spamd's user)"),
    ("permission", re.compile(r"unable to open database|readonly database|permission denied|"
                              r"attempt to write|disk I/O error|authentication|NOAUTH|WRONGPASS", re.I),
     "spamd's user must be able to read and write the SQLite file and its directory (WAL: -wal/-shm "
     "files beside it), or to log in to Redis"),
    ("store unreachable", re.compile(r"cannot connect|connection refused|no answer within|timed out|"
                                     r"no such file|not found|network|unreachable|busy|locked", re.I),
     "start the store (redis-server) or create the database where [ledger] store says"),
)


def ledger_cause(log_text: str) -> tuple[str, str, str]:
    """(cause, store, error) from the plugin's warnings in spamd's log; cause is "key",
    "permission", "store unreachable" or "unknown" ("" when the log has no such line)."""
    for line in reversed(log_text.splitlines()):
        m = LEDGER_UNAVAIL_LOG.search(line)
        if m:
            store = m.group(1)
            err = re.sub(r"\s+at \S+ line \d+\.?", "", m.group(2)).strip()  # Perl's "at FILE line N."
            for cause, rx, _ in _CAUSES:
                if rx.search(err):
                    return cause, store, err
            return "unknown", store, err
    return "", "", ""


def ledger_problem(unavail: int, total: int, log_text: str, store_shown: str, user: str) -> str:
    """One line for a run in which spamd could not use the ledger for some messages."""
    cause, store, err = ledger_cause(log_text)
    fix = {c: f for c, _, f in _CAUSES}.get(cause, "see spamd's log")
    what = f"{cause}: {err}" if cause else "spamd's log names no cause"
    return (f"error: the ledger {store or store_shown} could not be used by spamd (user {user}) for {unavail} of "
            f"{total} messages (BG_LEDGER_UNAVAIL cancelled their verdicts): {what}; {fix}")


def default_jobs() -> int:
    # spamd is CPU-bound Perl: one child per core keeps every core busy; a second one per core
    # covers the time each spends waiting on spamc's socket (measured: README, "Performance").
    return 2 * (os.cpu_count() or 1)


# -- corpus -------------------------------------------------------------------------------------

def _relative(corpus: Path, rel: str, where: str) -> str:
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or not rel:
        raise UsageError(f"{where}: path {rel!r} must be relative to the corpus directory, without '..'")
    return p.as_posix()


def load_manifest(corpus: Path, manifest: Path) -> list[Sample]:
    try:
        text = manifest.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{manifest}: cannot read: {exc}") from None
    rows = csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(rows, None)
    need = ("path", "category", "expected")
    if header is None or any(c not in header for c in need):
        raise UsageError(f"{manifest}: line 1: a header with the columns path, category, expected is needed "
                         f"(tab-separated; got {header!r})")
    col = {c: header.index(c) for c in need}
    samples, problems, seen = [], [], set()
    for lineno, row in enumerate(rows, start=2):
        if not row or not any(row):
            continue
        if len(row) < len(header):
            row = row + [""] * (len(header) - len(row))
        where = f"{manifest}: line {lineno}"
        path, category, expected = (row[col[c]].strip() for c in need)
        try:
            path = _relative(corpus, path, where)
        except UsageError as exc:
            problems += exc.problems
            continue
        if expected not in EXPECTED:
            problems.append(f"{where}: expected {expected!r} is not 'block' or 'pass'")
        elif not category:
            problems.append(f"{where}: empty category")
        elif path in seen:
            problems.append(f"{where}: {path} is listed twice")
        elif not (corpus / path).is_file():
            problems.append(f"{where}: {corpus / path}: no such file")
        else:
            seen.add(path)
            samples.append(Sample(path, category, expected))
    if problems:
        raise UsageError(problems)
    return samples


def load_layout(corpus: Path) -> tuple[list[Sample], list[str]]:
    """Samples from corpus/backscatter/<cat>/*.eml (block), corpus/legit/<cat>/*.eml and
    corpus/ham/*.eml (pass). Returns (samples, notes about files left out)."""
    samples, notes = [], []
    for top in sorted(p for p in corpus.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in top.rglob("*.eml") if f.is_file())
        if top.name not in LAYOUT:
            if files:
                notes.append(f"{top}/: {len(files)} .eml files left out: not under "
                             f"{', '.join(d + '/' for d in LAYOUT)} (label them with --manifest)")
            continue
        for f in files:
            rel = f.relative_to(corpus)
            sub = rel.parts[1] if len(rel.parts) > 2 else ""
            category = f"{top.name}/{sub}" if sub else top.name
            samples.append(Sample(rel.as_posix(), category, LAYOUT[top.name]))
    return samples, notes


def load_samples(corpus: Path, manifest: Path | None) -> tuple[list[Sample], list[str]]:
    if not corpus.is_dir():
        raise UsageError(f"{corpus}: not a directory")
    if manifest is not None:
        samples, notes = load_manifest(corpus, manifest), list[str]()
    else:
        samples, notes = load_layout(corpus)
    if not samples:
        how = f"in {manifest}" if manifest else f"under {corpus}/{{backscatter,legit,ham}}/ (*.eml)"
        raise UsageError(f"{corpus}: no messages found {how}")
    return sorted(samples, key=lambda s: s.path), notes


# -- messages and verdicts ----------------------------------------------------------------------

def prepare(raw: bytes) -> tuple[bytes, list[str]]:
    """The message as delivery would hand it on; the notes say what was changed."""
    notes = []
    if raw.startswith(b"From "):
        nl = raw.find(b"\n")
        raw = b"" if nl < 0 else raw[nl + 1:]
        notes.append("mbox 'From ' line removed")
    if b"\r\n" in raw:
        raw = raw.replace(b"\r\n", b"\n")
        notes.append("CRLF line ends read as LF")
    return raw, notes


def decide(rec: Record, pf: PostfixResult | None, sa: SpamdResult | None, scores: dict[str, float],
           policy: str, confdir: Path) -> None:
    if pf is not None:
        rec.postfix = {
            "refused": pf.refused is not None,
            **(pf.refused.as_dict(confdir) if pf.refused else {"parameter": None, "table": None, "line": None, "action": None}),
            "hits": [h.as_dict(confdir) for h in pf.hits],
            "error": pf.error or None,
        }
    if sa is not None:
        # The rescue labels (facts.RESCUE_LABELS) say why a message passed: never a verdict's rule
        # (an unscored BG_ name would count 1.0 here, and under "tag" policy any would block).
        fired = sorted(t for t in sa.tests if (t in scores or t.startswith("BG_")) and t not in RESCUE_LABELS)
        points = round(sum(scores.get(t, 1.0) for t in fired), 3)
        signals = sorted("__BG_" + t[len(SIGNAL_PREFIX):] for t in sa.tests if t.startswith(SIGNAL_PREFIX))
        rec.spamassassin = {"rules": fired, "points": points, "signals": signals,
                            "tests": [t for t in sa.tests if not t.startswith(SIGNAL_PREFIX)], "error": sa.error or None}
    if pf is not None and pf.refused is not None:
        rec.verdict = "block"  # refused at SMTP time: SpamAssassin never sees it
        return
    errors = [e for e in ((pf.error if pf else "postfix: not run"), (sa.error if sa else "spamassassin: not run")) if e]
    if errors:
        rec.verdict = "error"
        rec.error = "; ".join(errors)
        return
    sa_d = rec.spamassassin
    assert sa_d is not None  # no error: spamd answered
    if policy == "tag":
        caught = any(scores.get(t, 1.0) != 0 for t in sa_d["rules"])
    else:
        caught = sa_d["points"] >= block_points(scores)
    rec.verdict = "block" if caught else "pass"


def reason(rec: Record) -> str:
    """Why a message got its verdict, in one line."""
    if rec.verdict == "error":
        return f"error: {rec.error}"
    parts = []
    pf = rec.postfix or {}
    if pf.get("refused"):
        line = pf["line"].replace("\n", " ")
        if len(line) > 90:
            line = line[:87] + "..."
        parts.append(f"Postfix {pf['parameter']} refused {line!r}: {pf['action'][:60]}")
    sa = rec.spamassassin or {}
    if sa.get("rules"):
        parts.append(f"SpamAssassin {' '.join(sa['rules'])} (+{sa['points']:g} points)")
    if sa.get("signals") and (sa.get("rules") or rec.wrong):
        parts.append(f"signals {' '.join(sa['signals'])}")
    if not parts:
        parts.append("no Postfix table refused it and no BG_* rule fired")
    return "; ".join(parts)


# -- the run ------------------------------------------------------------------------------------

class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that every clean-up (spamd, temp dir) runs."""


def _on_sigterm(signum, frame):
    raise Terminated()


def fixture_ledger(inv, maillog: Path, where: Path):
    """A temporary ledger built from a corpus's maillog fixture: a fresh key and SQLite store in
    WHERE, every Message-ID of the fixture recorded as sent today (the fixture stands for recent
    mail, whenever the check runs). Returns the inventory with its [ledger] pointed there and a
    note for the log; a run on a fresh clone needs no state outside the corpus."""
    where.mkdir(mode=0o755)
    key_file, db = where / "ledger.key", where / "ledger.db"
    key = keys.create_key_file(key_file)
    url = f"sqlite:{db}"
    with open_store(url, key, inv.ledger.days) as store:
        counts = import_logs(store, [str(maillog)], as_today=True)
    if os.geteuid() == 0:  # spamd runs as nobody and opens the store read-write (WAL)
        nobody = pwd.getpwnam("nobody")
        for p in (where, key_file, *where.iterdir()):
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
    led = dataclasses.replace(inv.ledger, store=url, key_file=str(key_file))
    note = (f"ledger: temporary SQLite ledger from {maillog} ({counts.recorded} message-ids recorded "
            f"as today) in place of {inv.ledger.store_shown}")
    return dataclasses.replace(inv, ledger=led), note


def provenance(opts: Options, inv, jobs: int, pf: PostfixChecks | None, ledger_note: str | None = None) -> dict:
    return {
        "tool": f"bouncegen {__version__}",
        "bouncegen": __version__,
        "spamassassin": engines.sa_version(),
        "postfix": engines.postfix_version(),
        "python": sys.version.split()[0],
        "inventory": str(opts.inventory),
        "inventory_sha256": inv.sha256,
        "policy": {"dsn": inv.policy.dsn, "map_type": inv.policy.map_type, "scores": inv.policy.scores},
        "corpus": str(opts.corpus),
        "ledger": ledger_note or (inv.ledger.store_shown if inv.ledger else None),
        "manifest": str(opts.manifest) if opts.manifest else None,
        "options": {"jobs": jobs, "spamd_children": jobs, "lint": opts.lint, "profile": opts.profile,
                    "spamd": ("spamd -L -x, lean profile (rendered spamd/rules + spamd/site, no stock file)"
                              if opts.profile == "lean" else
                              "spamd -L -x, full profile (stock .pre + stock rules + rendered spamassassin/)")
                    + ", Bayes/AWL/TxRep off",
                    "spamc": "spamc -x -y", "postfix": pf.describe() if pf else None},
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _lint(rendered: Path, inv) -> None:
    lint.lint(rendered, render.map_types(inv), require_tools=True, checks=(check_rendered,))


def _require_engines() -> None:
    for name in ("spamd", "spamc", "spamassassin", "postmap", "postconf"):
        engines.require(name)


def _require_map_type(confdir: Path, map_type: str) -> None:
    proc = engines.run([engines.require("postconf"), "-c", str(confdir), "-m"])
    if map_type not in proc.stdout.split():
        raise EngineError(f"postmap: no {map_type}: table support; install it: apt-get install postfix-{map_type}")


def run(opts: Options, *, on_spamd=None) -> Result:
    """Run the corpus; raises UsageError/InventoryError (2), LintError (1), EngineError (3).

    ``on_spamd(spamd, samples)`` is called once the daemon answers (tests use it to kill it)."""
    t0 = time.monotonic()
    inv = inventory.load(opts.inventory)
    samples, notes = load_samples(opts.corpus, opts.manifest)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    _require_engines()
    jobs = opts.jobs or default_jobs()
    if jobs < 1:
        raise UsageError(f"-j {jobs}: needs at least one worker")

    old_term = signal.signal(signal.SIGTERM, _on_sigterm) if threading.current_thread() is threading.main_thread() else None
    tmp = Path(tempfile.mkdtemp(prefix="bouncegen-check-"))
    spamd = None
    pf = None
    try:
        os.chmod(tmp, 0o755)  # spamd drops to nobody when started as root: it must reach its dir
        ledger_note = None
        if inv.ledger is not None and (opts.corpus / LEDGER_FIXTURE).is_file():
            inv, ledger_note = fixture_ledger(inv, opts.corpus / LEDGER_FIXTURE, tmp / "ledger")
            print(f"note: {ledger_note}", file=sys.stderr)
        rendered = tmp / "rendered"
        files = render.render_files(inv)
        render.write_tree(files, rendered)
        confdir = engines.postfix_config_dir(tmp / "postfix", rendered / "postfix")
        _require_map_type(confdir, inv.policy.map_type)
        pf = PostfixChecks(confdir)
        families = load_families()
        scores = verdict_scores(families, inv.policy.scores, ledger=inv.ledger is not None,
                                points=inv.policy.points)
        # The lint and the version probes each start a Perl SpamAssassin: run them while spamd
        # starts, and wait for both before the first message (a lint failure ends the run).
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="setup") as setup:
            lint_job = setup.submit(_lint, rendered, inv) if opts.lint else None
            prov_job = setup.submit(provenance, opts, inv, jobs, pf, ledger_note)
            spamd = Spamd(rendered / "spamassassin", children=jobs, workdir=tmp / "spamd", profile=opts.profile,
                          extra_cf=signal_mirrors(families))
            spamd.start()
            if lint_job is not None:
                lint_job.result()
            prov = prov_job.result()
        if on_spamd is not None:
            on_spamd(spamd, samples)
        t1 = time.monotonic()
        records = _feed(samples, opts, spamd, pf, scores, inv.policy.scores, confdir, jobs)
        t2 = time.monotonic()
        result = Result(records, prov, scores, t1 - t0, t2 - t1)
        unavail = sum(1 for r in records if LEDGER_UNAVAIL in ((r.spamassassin or {}).get("tests") or ()))
        if unavail:
            result.ledger_unavail = unavail
            shown = inv.ledger.store_shown if inv.ledger is not None else ""
            result.ledger_problem = ledger_problem(unavail, len(records), spamd.log_text(), shown, spamd.user)
            print(result.ledger_problem, file=sys.stderr)
        return result
    finally:
        if pf is not None:
            pf.close()  # postmap processes still at work (an error, a signal) are stopped by PID
        if spamd is not None:
            spamd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _read(corpus: Path, sample: Sample) -> tuple[bytes | None, int, list[str], str]:
    try:
        raw = (corpus / sample.path).read_bytes()
    except OSError as exc:
        return None, 0, [], f"cannot read: {exc.strerror or exc}"
    data, notes = prepare(raw)
    if not data.strip():
        return None, len(raw), notes, "empty message: nothing to check"
    return data, len(raw), notes, ""


def _sa_job(spamd: Spamd, data: bytes) -> SpamdResult:
    try:
        return spamd.check(data)
    except subprocess.TimeoutExpired:
        return SpamdResult(ok=False, error="spamc: no answer within 180 s")
    except OSError as exc:
        return SpamdResult(ok=False, error=f"spamc: {exc}")


def _pf_job(pf: PostfixChecks, batch: list[bytes]) -> list[PostfixResult]:
    return pf.check_many(batch)


def _spamd_dead(spamd: Spamd, done: int, total: int) -> EngineError:
    status = spamd.proc.returncode if spamd.proc is not None else None
    return EngineError(
        f"spamd (pid {spamd.pid}) stopped during the run (exit status {status}) after {done} of {total} "
        "messages: no verdicts are reported. The end of its log:\n" + spamd.log_tail())


# spamc clients per spamd child: a second client waits in spamd's listen queue, so that a child
# starts its next message at once instead of waiting for this process's thread to be scheduled.
SPAMC_PER_CHILD = 2


def _feed(samples: list[Sample], opts: Options, spamd: Spamd, pf: PostfixChecks, scores: dict[str, float],
          policy: str, confdir: Path, jobs: int) -> list[Record]:
    """Feed the messages to both pools, a bounded window at a time (memory stays flat on big
    corpora, and each wait() looks at a few futures, not thousands): each message to spamc on its
    own, and batches of them to postmap (PostfixChecks.check_many)."""
    corpus = opts.corpus
    total = len(samples)
    progress = _progress(opts, total)
    sa_pool = ThreadPoolExecutor(max_workers=SPAMC_PER_CHILD * jobs, thread_name_prefix="spamc")
    pf_pool = ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 1) // 2), thread_name_prefix="postmap")
    # Messages read and not yet decided: spamd always has a backlog while a postmap batch fills.
    window = max(4 * jobs, 2 * PF_BATCH)
    records: list[Record] = []
    inflight: dict[Future, tuple[list[Record], str]] = {}
    partial: dict[int, dict] = {}
    batch: list[tuple[Record, bytes]] = []
    finished = 0
    todo = iter(samples)
    exhausted = False
    try:
        while True:
            while not exhausted and len(partial) < window:
                s = next(todo, None)
                if s is None:
                    exhausted = True
                    break
                rec = Record(s.path, s.category, s.expected)
                records.append(rec)
                data, rec.size, rec.notes, err = _read(corpus, s)
                if data is None:
                    rec.verdict, rec.error = "error", err
                    finished += 1
                    if progress:
                        progress.advance(1)
                    continue
                partial[id(rec)] = {}
                inflight[sa_pool.submit(_sa_job, spamd, data)] = ([rec], "sa")
                batch.append((rec, data))
                if len(batch) >= PF_BATCH:
                    break
            # A full batch goes at once; a short one at the end of the corpus, or when every message
            # in the window waits for it (nothing else could be decided to make room).
            if batch and (len(batch) >= PF_BATCH or exhausted or len(batch) == len(partial)):
                inflight[pf_pool.submit(_pf_job, pf, [d for _, d in batch])] = ([r for r, _ in batch], "pf")
                batch = []
            if not inflight:
                break
            done, _ = wait(inflight, timeout=1.0, return_when=FIRST_COMPLETED)
            if not spamd.alive():
                raise _spamd_dead(spamd, finished, total)
            for fut in done:
                recs, kind = inflight.pop(fut)
                answers = fut.result() if kind == "pf" else [fut.result()]
                for rec, answer in zip(recs, answers, strict=True):
                    got = partial[id(rec)]
                    got[kind] = answer
                    if len(got) == 2:
                        del partial[id(rec)]
                        decide(rec, got["pf"], got["sa"], scores, policy, confdir)
                        finished += 1
                        if progress:
                            progress.advance(1)
        if not spamd.alive():  # answers from orphaned children of a dead parent are not trusted
            raise _spamd_dead(spamd, finished, total)
    finally:
        for pool in (sa_pool, pf_pool):
            pool.shutdown(wait=False, cancel_futures=True)
        if progress:
            progress.close()
    return records


class _Progress:
    """rich progress bar with messages/s, on stderr, only when stderr is a terminal."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.start = time.monotonic()
        self.done = 0
        self.p = Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"),
                          TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.task = self.p.add_task("check", total=total, rate="")
        self.p.start()

    def advance(self, n: int) -> None:
        self.done += n
        rate = self.done / max(time.monotonic() - self.start, 1e-6)
        self.p.update(self.task, advance=n, rate=f"{rate:.1f} msg/s")

    def close(self) -> None:
        self.p.stop()


def _progress(opts: Options, total: int) -> _Progress | None:
    show = sys.stderr.isatty() if opts.progress is None else opts.progress
    return _Progress(total) if show else None
