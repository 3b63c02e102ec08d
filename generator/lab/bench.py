"""``make bench``: how fast ``bouncegen check`` is, against the ways one could do without it.

On the same messages, in one run (so that the machine's load is the same for all):

- runner: ``bouncegen check`` (spamc -x with N workers + postmap, verdicts, records), counted from
  the first message fed to the last verdict (set-up: render and spamd start, reported apart),
  once with each spamd profile: ``lean`` (the rendered spamd/ profile, what the milter's spamd
  loads) and ``full`` (the ruleset beside the whole stock rule set);
- raw spamc: the same rendered files in the same private spamd (each profile) with N children,
  fed by ``xargs -P N`` running ``spamc -x -y < msg`` with nothing around it (rounds alternate
  with the runner's and between the profiles; the mean is the reference);
- naive: ``spamassassin -L -t`` once per message with the same site config, on an evenly spread
  subset (it loads every rule for each message, so it is slow);
- postmap alone: two postmap processes per message (``-hq``, ``-bq``), by ``xargs -P N``: what
  the runner's Postfix checks cost before they ran one process per table for a batch.

``--only runner|raw`` (with ``--profile`` and ``--repeat``) runs one of the first two alone, set-up
included, for an outside timer of the whole process (user + system CPU as well as wall):
``farm-bench --vs "python -m bouncegen.lab.bench ... --only raw" -- python -m bouncegen.lab.bench ...
--only runner``; ``--runner-spamd`` gives raw spamc a spamd configured as the runner's (ledger
fixture, signal mirrors), so that only the runner's own work differs (docs/measurements.md).

This is a benchmark to read, not a timed test: machines differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import engines
from ..engines.postfix_tables import PostfixChecks
from ..engines.spamd import PRIVATE_CF, PROFILES, Spamd
from ..renderer import inventory, render
from ..renderer.rules import load_families
from ..runner import check


def _xargs(files: list[Path], jobs: int, command: str) -> float:
    """Run ``command`` (a shell snippet reading the file "$1") per file, jobs at a time."""
    t = time.monotonic()
    proc = subprocess.run(["xargs", "-0", "-P", str(jobs), "-n", "1", "sh", "-c", command, "_"],
                          input=b"\0".join(str(f).encode() for f in files), stdout=subprocess.DEVNULL)
    dt = time.monotonic() - t
    if proc.returncode != 0:
        print(f"warning: xargs exit status {proc.returncode} ({command})", file=sys.stderr)
    return dt


def raw_spamc(rendered: Path, files: list[Path], jobs: int, profile: str = "full", extra_cf: str = "") -> float:
    with Spamd(rendered / "spamassassin", children=jobs, profile=profile, extra_cf=extra_cf) as d:
        cmd = " ".join(shlex.quote(a) for a in d.spamc_argv()) + ' < "$1" > /dev/null'
        return _xargs(files, jobs, cmd)


def postmap_alone(pf: PostfixChecks, files: list[Path], jobs: int) -> float:
    cmd = "; ".join(f"{shlex.quote(pf.postmap)} -c {shlex.quote(str(pf.confdir))} {q.flags} - {shlex.quote(q.table)}"
                    ' < "$1" > /dev/null' for q in pf.queries) + "; true"
    return _xargs(files, jobs, cmd)


def naive(rendered: Path, files: list[Path], scratch: Path) -> float:
    exe = engines.require("spamassassin")
    site = engines.sa_site_dir(scratch / "naive-site", rendered / "spamassassin")
    (site / "01_bouncegen_private.cf").write_text(PRIVATE_CF)
    home = scratch / "naive-home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"}
    t = time.monotonic()
    for f in files:
        with open(f, "rb") as fh:
            subprocess.run([exe, "-L", "-t", f"--siteconfigpath={site}", "--prefspath=/dev/null"], stdin=fh,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.monotonic() - t


def repeated_corpus(corpus: Path, samples: list, times: int, where: Path) -> Path:
    """A manifest naming every sample ``times`` over (links c0/ ... c<times-1>/ to the corpus; the
    ledger fixture and inventory beside them), so that feeding outweighs set-up."""
    for i in range(times):
        (where / f"c{i}").symlink_to(corpus.resolve())
    if (corpus / check.LEDGER_FIXTURE).is_file():
        (where / check.LEDGER_FIXTURE.parts[0]).symlink_to((corpus / check.LEDGER_FIXTURE.parts[0]).resolve())
    rows = ["path\tcategory\texpected"] + [f"c{i}/{s.path}\t{s.category}\t{s.expected}"
                                           for i in range(times) for s in samples]
    (where / "manifest.tsv").write_text("\n".join(rows) + "\n")
    return where / "manifest.tsv"


def only(args, inv, corpus: Path, samples: list, jobs: int) -> int:
    """One method alone (``--only``), for an outside timer such as farm-bench."""
    with tempfile.TemporaryDirectory(prefix="bouncegen-bench-") as tmp:
        scratch = Path(tmp)
        os.chmod(scratch, 0o755)
        manifest = Path(args.manifest) if args.manifest else None
        if args.repeat > 1:
            (scratch / "corpus").mkdir()
            manifest = repeated_corpus(corpus, samples, args.repeat, scratch / "corpus")
            corpus = scratch / "corpus"
            samples, _ = check.load_samples(corpus, manifest)
        n = len(samples)
        if args.only == "raw":
            extra_cf = ""
            if args.runner_spamd:  # the spamd work of the runner's: its ledger fixture and signal mirrors
                if inv.ledger is not None and (corpus / check.LEDGER_FIXTURE).is_file():
                    inv, _ = check.fixture_ledger(inv, corpus / check.LEDGER_FIXTURE, scratch / "ledger")
                extra_cf = check.signal_mirrors(load_families())
            rendered = scratch / "rendered"
            render.write_tree(render.render_files(inv), rendered)
            seconds = raw_spamc(rendered, [corpus / s.path for s in samples], jobs, args.profile, extra_cf)
        else:
            result = check.run(check.Options(inventory=Path(args.inventory), corpus=corpus, manifest=manifest,
                                             jobs=jobs, lint=False, progress=False, profile=args.profile))
            seconds = result.seconds_run
        print(f"{args.only} {args.profile}: {n} messages in {seconds:.2f} s, {n / seconds:.1f} msg/s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bouncegen.lab.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inventory", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--manifest")
    ap.add_argument("-j", "--jobs", type=int, default=0, help="workers (default: as bouncegen check)")
    ap.add_argument("--naive", type=int, default=30, metavar="N", help="messages for the naive run (default 30)")
    ap.add_argument("--rounds", type=int, default=2, metavar="N",
                    help="runner rounds, alternating with raw spamc rounds (default 2)")
    ap.add_argument("--only", choices=("runner", "raw"), help="run this one method alone (set-up included)")
    ap.add_argument("--profile", choices=PROFILES, default="lean", help="with --only: spamd's profile (default lean)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N", help="with --only: every message N times")
    ap.add_argument("--runner-spamd", action="store_true",
                    help="with --only raw: spamd as the runner configures it (the corpus's ledger fixture, "
                         "the BGS_ signal mirrors), so that only the runner's own work differs")
    args = ap.parse_args(argv)

    jobs = args.jobs or check.default_jobs()
    corpus = Path(args.corpus)
    samples, _ = check.load_samples(corpus, Path(args.manifest) if args.manifest else None)
    files = [corpus / s.path for s in samples]
    n = len(files)
    step = max(1, n // max(1, args.naive))
    subset = files[::step][: args.naive]
    inv = inventory.load(args.inventory)
    if args.only:
        return only(args, inv, corpus, samples, jobs)
    print(f"bench: {n} messages, {os.cpu_count()} CPU cores, -j {jobs}; SpamAssassin {engines.sa_version()}, "
          f"Postfix {engines.postfix_version()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bouncegen-bench-") as tmp:
        scratch = Path(tmp)
        os.chmod(scratch, 0o755)
        rendered = scratch / "rendered"
        render.write_tree(render.render_files(inv), rendered)

        # Raw and runner alternate, and so do the profiles, so that a change in the machine's load
        # during the bench touches all alike; each figure is the mean of its rounds.
        opts = check.Options(inventory=Path(args.inventory), corpus=corpus,
                             manifest=Path(args.manifest) if args.manifest else None, jobs=jobs, lint=False,
                             progress=False)
        raw_s: dict[str, list[float]] = {p: [] for p in PROFILES}
        runner_s: dict[str, list[float]] = {p: [] for p in PROFILES}
        for r in range(args.rounds):
            for profile in PROFILES:
                raw_s[profile].append(raw_spamc(rendered, files, jobs, profile))
                result = check.run(dataclasses.replace(opts, profile=profile))
                runner_s[profile].append(result.seconds_run)
                print(f"  round {r + 1}, {profile:4}: raw spamc {n / raw_s[profile][-1]:.1f} msg/s, runner "
                      f"{n / runner_s[profile][-1]:.1f} msg/s (set-up {result.seconds_setup:.1f} s)", flush=True)
        with PostfixChecks(engines.postfix_config_dir(scratch / "postfix", rendered / "postfix")) as pf:
            pm_s = postmap_alone(pf, files, jobs)
        naive_s = naive(rendered, subset, scratch)

    rate = lambda xs: sum(n / x for x in xs) / len(xs)
    raw = {p: rate(raw_s[p]) for p in PROFILES}
    runner = {p: rate(runner_s[p]) for p in PROFILES}
    naive_rate = len(subset) / naive_s
    rows = []
    for p in PROFILES:
        rows.append((f"bouncegen check --profile {p}, mean of {len(runner_s[p])}", n,
                     sum(runner_s[p]) / len(runner_s[p]), runner[p]))
        rows.append((f"raw spamc -> spamd ({p}), mean of {len(raw_s[p])}", n, sum(raw_s[p]) / len(raw_s[p]), raw[p]))
    rows += [("postmap alone (-hq + -bq)", n, pm_s, n / pm_s),
             ("naive spamassassin -L -t (full)", len(subset), naive_s, naive_rate)]
    print()
    print(f"{'method':46} {'msgs':>6} {'seconds':>8} {'msg/s':>8}")
    for name, m, sec, r in rows:
        print(f"{name:46} {m:6d} {sec:8.1f} {r:8.1f}")
    print()
    print(f"runner lean / runner full          : {runner['lean'] / runner['full']:6.2f} x")
    print(f"raw spamc lean / raw spamc full    : {raw['lean'] / raw['full']:6.2f} x")
    print(f"runner lean / naive spamassassin -t: {runner['lean'] / naive_rate:6.1f} x")
    print(f"runner full / naive spamassassin -t: {runner['full'] / naive_rate:6.1f} x   (goal >= 15 x)")
    for p in PROFILES:
        print(f"runner / raw spamc ({p:4})         : {100 * runner[p] / raw[p]:6.1f} %   (goal >= 90 %, #19)")
    print(f"postmap alone / runner lean        : {(n / pm_s) / runner['lean']:6.1f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
