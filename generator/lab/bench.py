"""``make bench``: how fast ``bouncegen check`` is, against the ways one could do without it.

On the same messages, in one run (so that the machine's load is the same for all):

- runner: ``bouncegen check`` (spamc -x with N workers + postmap, verdicts, records), counted from
  the first message fed to the last verdict (set-up: render and spamd start, reported apart);
- raw spamc: the same rendered files in the same private spamd with N children, fed by
  ``xargs -P N`` running ``spamc -x -y < msg`` with nothing around it (rounds alternate with the
  runner's, raw first and last; the mean is the reference);
- naive: ``spamassassin -L -t`` once per message with the same site config, on an evenly spread
  subset (it loads every rule for each message, so it is slow);
- postmap alone: the two postmap calls per message of the runner, by ``xargs -P N``.

This is a benchmark to read, not a timed test: machines differ.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..runner import check
from .. import engines
from ..renderer import inventory, render
from ..engines.postfix_tables import PostfixChecks
from ..engines.spamd import _PRIVATE_CF, Spamd


def _xargs(files: list[Path], jobs: int, command: str) -> float:
    """Run ``command`` (a shell snippet reading the file "$1") per file, jobs at a time."""
    t = time.monotonic()
    proc = subprocess.run(["xargs", "-0", "-P", str(jobs), "-n", "1", "sh", "-c", command, "_"],
                          input=b"\0".join(str(f).encode() for f in files), stdout=subprocess.DEVNULL)
    dt = time.monotonic() - t
    if proc.returncode != 0:
        print(f"warning: xargs exit status {proc.returncode} ({command})", file=sys.stderr)
    return dt


def raw_spamc(rendered: Path, files: list[Path], jobs: int) -> float:
    with Spamd(rendered / "spamassassin", children=jobs) as d:
        cmd = " ".join(shlex.quote(a) for a in d.spamc_argv()) + ' < "$1" > /dev/null'
        return _xargs(files, jobs, cmd)


def postmap_alone(pf: PostfixChecks, files: list[Path], jobs: int) -> float:
    cmd = "; ".join(f"{shlex.quote(pf.postmap)} -c {shlex.quote(str(pf.confdir))} {q.flags} - {shlex.quote(q.table)}"
                    ' < "$1" > /dev/null' for q in pf.queries) + "; true"
    return _xargs(files, jobs, cmd)


def naive(rendered: Path, files: list[Path], scratch: Path) -> float:
    exe = engines.require("spamassassin")
    site = engines.sa_site_dir(scratch / "naive-site", rendered / "spamassassin")
    (site / "01_bouncegen_private.cf").write_text(_PRIVATE_CF)
    home = scratch / "naive-home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"}
    t = time.monotonic()
    for f in files:
        with open(f, "rb") as fh:
            subprocess.run([exe, "-L", "-t", f"--siteconfigpath={site}", "--prefspath=/dev/null"], stdin=fh,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.monotonic() - t


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
    args = ap.parse_args(argv)

    jobs = args.jobs or check.default_jobs()
    corpus = Path(args.corpus)
    samples, _ = check.load_samples(corpus, Path(args.manifest) if args.manifest else None)
    files = [corpus / s.path for s in samples]
    n = len(files)
    step = max(1, n // max(1, args.naive))
    subset = files[::step][: args.naive]
    inv = inventory.load(args.inventory)
    print(f"bench: {n} messages, {os.cpu_count()} CPU cores, -j {jobs}; SpamAssassin {engines.sa_version()}, "
          f"Postfix {engines.postfix_version()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bouncegen-bench-") as tmp:
        scratch = Path(tmp)
        os.chmod(scratch, 0o755)
        rendered = scratch / "rendered"
        render.write_tree(render.render_files(inv), rendered)
        pf = PostfixChecks(engines.postfix_config_dir(scratch / "postfix", rendered / "postfix"))

        # Raw and runner alternate (raw, runner, raw, ..., raw) so that a change in the machine's
        # load during the bench touches both alike; each ratio is taken against the mean raw rate.
        opts = check.Options(inventory=Path(args.inventory), corpus=corpus,
                             manifest=Path(args.manifest) if args.manifest else None, jobs=jobs, lint=False,
                             progress=False)
        raw_s, runner_s = [], []
        for r in range(args.rounds):
            raw_s.append(raw_spamc(rendered, files, jobs))
            print(f"  round {r + 1}: raw spamc {n / raw_s[-1]:.1f} msg/s", flush=True)
            result = check.run(opts)
            runner_s.append(result.seconds_run)
            print(f"  round {r + 1}: runner {n / runner_s[-1]:.1f} msg/s (set-up {result.seconds_setup:.1f} s)",
                  flush=True)
        raw_s.append(raw_spamc(rendered, files, jobs))
        print(f"  raw spamc (last) {n / raw_s[-1]:.1f} msg/s", flush=True)
        pm_s = postmap_alone(pf, files, jobs)
        naive_s = naive(rendered, subset, scratch)

    raw = sum(n / x for x in raw_s) / len(raw_s)
    runner = sum(n / x for x in runner_s) / len(runner_s)
    naive_rate = len(subset) / naive_s
    rows = [(f"bouncegen check (runner), mean of {len(runner_s)}", n, sum(runner_s) / len(runner_s), runner),
            (f"raw spamc -> spamd, mean of {len(raw_s)}", n, sum(raw_s) / len(raw_s), raw),
            ("postmap alone (-hq + -bq)", n, pm_s, n / pm_s),
            ("naive spamassassin -L -t", len(subset), naive_s, naive_rate)]
    print()
    print(f"{'method':40} {'msgs':>6} {'seconds':>8} {'msg/s':>8}")
    for name, m, sec, rate in rows:
        print(f"{name:40} {m:6d} {sec:8.1f} {rate:8.1f}")
    print()
    print("runner rounds (msg/s): " + ", ".join(f"{n / x:.1f}" for x in runner_s)
          + "; raw rounds: " + ", ".join(f"{n / x:.1f}" for x in raw_s))
    print(f"runner / naive spamassassin -t : {runner / naive_rate:6.1f} x   (goal >= 15 x)")
    print(f"runner / raw spamc (mean)      : {100 * runner / raw:6.1f} %   (goal >= 80 %)")
    print(f"postmap alone / runner         : {(n / pm_s) / runner:6.1f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
