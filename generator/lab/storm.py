"""`make storm`: a bounce storm against the private Postfix lab, for both dsn policies and both
spamd profiles side by side (lean: the rendered spamd/ profile of bouncegen-spamd.service; full:
the ruleset beside the stock rules), each followed by a ham run (ordinary mail through the same
milter: the MX's everyday load).

A benchmark, not a timed test. Postfix's own smtp-source sends backscatter (RFC 3464 bounces,
plain-text bounces, auto-replies, virus notices; one SMTP session per message, --sessions in
parallel, to bob@) while a thread trickles legitimate mail to alice@ through XCLIENT (foreign
MXs, and our own relay) and another times SAV callouts (MAIL FROM:<>, RCPT TO:, QUIT). Then:
SAV callouts after the storm, the queue left, and smtp-source -> smtp-sink as the loopback
ceiling. Counts come from Postfix's own log (maillog_file) and the Maildirs.

Exit status 1 if any backscatter was accepted, any legitimate mail lost, or any SAV callout
refused; 0 otherwise. Figures are printed as a table; --json FILE writes one record per run
(docs/measurements.md: {"ceiling_per_s", "runs": [{"kind", "policy", "profile", "sent", ...}]}).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .. import batv as batv_scheme, engines, report
from ..engines.spamd import free_port
from ..errors import UsageError
from ..renderer import inventory
from ..report.page import require_charts
from . import mail as samples, storm_page
from .postfix_lab import PostfixLab
from .site import EXAMPLE, FOREIGN, MX1, OUR_RELAY, example_site

BACKSCATTER_RCPT = "bob@example.org"
LEGIT_RCPT = "alice@example.org"


# The BATV run (policy "batv"): dsn = "spamassassin" with [batv] on example.org, lean spamd.
BATV_POLICY = "batv"


def legit_mix(policy: str) -> list[tuple[str, bytes, str, tuple[str, str]]]:
    """(kind, message, envelope sender, client) of the legitimate trickle under a policy."""
    mix = [
        ("ordinary", samples.ordinary(1), "grace@foreign.test", FOREIGN),
        ("read-receipt", samples.read_receipt(1), "", FOREIGN),
        ("forwarded-dsn", samples.forwarded_dsn(1), "frank@foreign.test", FOREIGN),
    ]
    if policy in ("spamassassin", BATV_POLICY):  # policy "reject" refuses these by design
        mix += [("bounce-of-our-mail", samples.dsn([samples.hop_submission()], n=1), "", FOREIGN),
                ("bounce-from-our-relay", samples.relay_bounce(1), "", OUR_RELAY)]
    return mix


def _cpu_seconds(sids: set[int]) -> float:
    """CPU time (user+system, reaped children included) of every process in these sessions."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) in sids:  # fields after ")": state ppid pgrp session ...
            total += sum(int(x) for x in fields[11:15])
    return total / tick


def _sid(pid: int | None) -> int | None:
    try:
        return os.getsid(pid) if pid else None
    except OSError:
        return None


def _smtp_source(argv_tail: list[str], port: int) -> subprocess.Popen:
    exe = engines.require("smtp-source")
    return subprocess.Popen([exe, *argv_tail, f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


class Timer(threading.Thread):
    """Repeats fn every `every` seconds until stopped; records (seconds, ok) per call."""

    def __init__(self, fn, every: float):
        super().__init__(daemon=True)
        self.fn, self.every = fn, every
        self.results: list[tuple[float, bool, str]] = []
        self.started: list[float] = []  # wall-clock time of each call (the page's time axis)
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.started.append(time.time())
            t0 = time.monotonic()
            try:
                ok, note = self.fn()
            except Exception as exc:  # noqa: BLE001 - a failure is a result here
                ok, note = False, repr(exc)
            self.results.append((time.monotonic() - t0, ok, note))
            self.halt.wait(self.every)


def sav_callout(lab) -> tuple[bool, str]:
    with smtplib.SMTP("127.0.0.1", lab.port, local_hostname="sav.foreign.test", timeout=60) as s:
        s.ehlo()
        s.docmd("XCLIENT", "ADDR=203.0.113.20 NAME=sav.foreign.test HELO=sav.foreign.test")
        s.ehlo("sav.foreign.test")
        m, r = s.mail("")[0], s.rcpt(LEGIT_RCPT)[0]
        return (m == 250 and r == 250), f"{m}/{r}"


def run_policy(policy: str, *, count: int, sessions: int, tmp: Path, in_flow_delay: str | None,
               spamd_children: int, kinds: tuple = samples.BACKSCATTER, profile: str = "lean",
               ham_count: int = 0, concurrency: int = 0, html: bool = False) -> dict:
    inv_path = tmp / f"storm-{policy}.toml"
    key_file = tmp / "batv.keys"
    tables: dict = {}
    if policy == BATV_POLICY:
        # BATV on: null-sender mail to an unsigned address of example.org is refused at the DATA
        # command, before the body and without spamd; everything else as dsn = "spamassassin".
        if not key_file.exists():
            batv_scheme.create_key_file(key_file)
        tables["batv"] = {"domains": ["example.org"], "key_file": str(key_file)}
    inv_path.write_text(example_site(relay=EXAMPLE["relay"][:2], mx=MX1,
                                     policy={"dsn": "spamassassin" if policy == BATV_POLICY else policy}, **tables))
    inv = inventory.load(inv_path)
    extra = {"in_flow_delay": in_flow_delay} if in_flow_delay is not None else {}
    per_kind = -(-count // len(kinds))
    per_kind_sessions = max(1, sessions // len(kinds))
    files = {}
    for name, build in kinds:
        path = tmp / f"{name}.eml"
        path.write_bytes(build(0).replace(b"\r\n", b"\n"))
        files[name] = path
    out: dict = {"policy": policy, "profile": profile, "kinds": [k for k, _ in kinds],
                 "backscatter_sent": per_kind * len(kinds),
                 "sessions": per_kind_sessions * len(kinds), "in_flow_delay": in_flow_delay or "(rendered)"}
    # syslog: the milter's lines reach a timestamped file (lab/syslog.py), so that the storm's
    # page shows the milter's latency over time from the same log lines `bouncegen report` reads.
    with PostfixLab(inv, spamd_children=spamd_children, extra_params=extra, profile=profile,
                    concurrency=concurrency, syslog=html) as lab:
        out["in_flow_delay_effective"] = engines.run(
            [lab.postconf, "-c", str(lab.conf), "-h", "in_flow_delay"]).stdout.strip()
        assert lab.spamd is not None and lab.spamd.proc is not None and lab.milter_proc is not None
        parts = {"postfix": _sid(lab.master_pid), "spamd": _sid(lab.spamd.proc.pid), "milter": _sid(lab.milter_proc.pid)}
        sids = {s for s in parts.values() if s}
        part_cpu0 = {k: _cpu_seconds({v}) for k, v in parts.items() if v}
        legit = legit_mix(policy)
        legit_sent: list[str] = []

        def one_legit():
            kind, msg, sender, (addr, name) = legit[len(legit_sent) % len(legit)]
            rcpt = LEGIT_RCPT
            if inv.batv is not None and not sender:
                # With BATV our relays sign the envelope sender (and a bounce or auto-reply goes
                # back to it) and Disposition-Notification-To (where a read receipt goes): the
                # null-sender answers to our mail arrive at a tagged address.
                rcpt = batv_scheme.sign(LEGIT_RCPT, batv_scheme.load_keys(inv.batv.key_file), inv.batv.days)
            with smtplib.SMTP("127.0.0.1", lab.port, local_hostname=name, timeout=120) as s:
                s.ehlo()
                s.docmd("XCLIENT", f"ADDR={addr} NAME={name} HELO={name}")
                s.ehlo(name)
                s.mail(sender)
                s.rcpt(rcpt)
                code, text = s.data(msg)
            legit_sent.append(kind)
            return code == 250, f"{kind}: {code} {text[:60]!r}"

        sav = Timer(lambda: sav_callout(lab), 0.2)
        trickle = Timer(one_legit, 0.5)
        cpu0, t0 = _cpu_seconds(sids), time.monotonic()
        sav.start()
        trickle.start()
        procs = [_smtp_source(["-A", "-s", str(per_kind_sessions), "-m", str(per_kind), "-f", "", "-M",
                               f"{name}.bouncer.test", "-t", BACKSCATTER_RCPT, "-F", str(files[name])], lab.port)
                 for name, _ in kinds]
        errors = []
        for p in procs:
            _, err = p.communicate(timeout=3600)
            if p.returncode not in (0,):
                errors.append(err.decode(errors="replace")[-300:])
        storm_s = time.monotonic() - t0
        sav.halt.set()
        trickle.halt.set()
        sav.join()
        trickle.join()
        cpu = _cpu_seconds(sids) - cpu0
        out["cpu_by_part"] = {k: round(_cpu_seconds({v}) - c, 1) for k, c in part_cpu0.items() if (v := parts[k])}
        # After the storm: SAV callouts on a quiet server.
        after = []
        for _ in range(20):
            t = time.monotonic()
            ok, note = sav_callout(lab)
            after.append((time.monotonic() - t, ok, note))
        queue_left = lab.wait_queue_empty(timeout=30)
        time.sleep(0.5)
        log = lab.maillog()
        out.update({
            "storm_seconds": round(storm_s, 2),
            "smtp_source_errors": errors,
            "rejected_by_tables": len(re.findall(r"\breject: (?:header|body) ", log)),
            "rejected_at_data": len(re.findall(r"NOQUEUE: reject: DATA ", log)),
            "rejected_by_spamassassin": len(re.findall(r"milter-reject: END-OF-MESSAGE .*: 5\.7\.1 Refused as backscatter", log)),
            # BATV: the milter's 550 to the DATA command (null sender, unsigned recipients).
            "rejected_by_batv": len(re.findall(r"milter-reject: DATA from .*?: 550 5\.7\.1 ", log)),
            "tempfailed": len(re.findall(r"milter-reject: END-OF-MESSAGE .*: 4\.7\.1 ", log)),
            "backscatter_accepted": len(lab.delivered(BACKSCATTER_RCPT)),
            "legit_sent": len(trickle.results),
            "legit_refused": [r[2] for r in trickle.results if not r[1]],
            "legit_delivered": len(lab.delivered(LEGIT_RCPT)),
            "legit_kinds": sorted(set(legit_sent)),
            "queue_left": queue_left,
            "cpu_seconds": round(cpu, 1),
        })
        lat = [r[0] * 1000 for r in sav.results]
        lat_after = [r[0] * 1000 for r in after]
        out["sav_during"] = {"n": len(lat), "refused": [r[2] for r in sav.results if not r[1]],
                             "median_ms": round(statistics.median(lat), 1) if lat else None,
                             "max_ms": round(max(lat), 1) if lat else None}
        out["sav_after"] = {"n": len(lat_after), "refused": [r[2] for r in after if not r[1]],
                            "median_ms": round(statistics.median(lat_after), 1),
                            "max_ms": round(max(lat_after), 1)}
        refused = (out["rejected_by_tables"] + out["rejected_at_data"] + out["rejected_by_spamassassin"]
                   + out["rejected_by_batv"])
        out["backscatter_refused"] = refused
        out["rejects_per_second"] = round(refused / storm_s, 1)
        out["handled_per_second"] = round(out["backscatter_sent"] / storm_s, 1)
        out["share_tables"] = round((out["rejected_by_tables"] + out["rejected_at_data"]) / refused, 3) if refused else 0
        out["share_spamassassin"] = round(out["rejected_by_spamassassin"] / refused, 3) if refused else 0
        out["share_batv"] = round(out["rejected_by_batv"] / refused, 3) if refused else 0
        out["legit_lost"] = out["legit_sent"] - out["legit_delivered"]
        out["ham"] = run_ham(lab, ham_count, sessions, tmp) if ham_count else None
        if html:  # the lab's own log, read as `bouncegen report` reads a host's, per second
            out["report"] = report.as_json(report.run([str(p) for p in lab.logs()], resolution=1))
            out["sav_series"] = [(t, r[0] * 1000, r[1]) for t, r in zip(sav.started, sav.results, strict=False)]
    return out


def run_ham(lab, count: int, sessions: int, tmp: Path) -> dict:
    """The MX's everyday load: ordinary mail (no backscatter) from smtp-source to alice@ through
    the same milter and spamd, SAV callouts timed meanwhile; delivered per second counts from
    the first message sent to the last one delivered."""
    msg = tmp / "ham.eml"
    msg.write_bytes(samples.ordinary(0).replace(b"\r\n", b"\n"))
    rejects = r"milter-reject: (?:END-OF-MESSAGE|DATA) |NOQUEUE: reject: |\breject: (?:header|body) "
    log0 = len(re.findall(rejects, lab.maillog()))
    before = len(lab.delivered(LEGIT_RCPT))
    sav = Timer(lambda: sav_callout(lab), 0.2)
    t0 = time.monotonic()
    sav.start()
    p = _smtp_source(["-A", "-s", str(sessions), "-m", str(count), "-f", "grace@foreign.test", "-M",
                      "mx.foreign.test", "-t", LEGIT_RCPT, "-F", str(msg)], lab.port)
    _, err = p.communicate(timeout=3600)
    sent_s = time.monotonic() - t0
    deadline = time.monotonic() + 120
    while len(lab.delivered(LEGIT_RCPT)) - before < count and time.monotonic() < deadline:
        time.sleep(0.02)
    total_s = time.monotonic() - t0
    sav.halt.set()
    sav.join()
    delivered = len(lab.delivered(LEGIT_RCPT)) - before
    refused = len(re.findall(rejects, lab.maillog())) - log0
    lat = [r[0] * 1000 for r in sav.results]
    return {"sent": count, "refused": refused, "delivered": delivered, "seconds_sent": round(sent_s, 2),
            "seconds": round(total_s, 2), "delivered_per_s": round(delivered / total_s, 1),
            "smtp_source_errors": [err.decode(errors="replace")[-300:]] if p.returncode else [],
            "sav_refused": [r[2] for r in sav.results if not r[1]],
            "sav_median_ms": round(statistics.median(lat), 1) if lat else None}


def runs_of(r: dict) -> list[dict]:
    """The JSON records (docs/measurements.md: exactly these keys) of one policy x profile lab."""
    sd = r["sav_during"]
    storm = {"kind": "storm", "policy": r["policy"], "profile": r["profile"], "sent": r["backscatter_sent"],
             "refused": r["backscatter_refused"], "refused_per_s": r["rejects_per_second"],
             "backscatter_accepted": r["backscatter_accepted"], "legit_sent": r["legit_sent"],
             "legit_delivered": r["legit_delivered"], "sav_refused": len(sd["refused"]) + len(r["sav_after"]["refused"]),
             "sav_median_ms": sd["median_ms"],
             "delivered_per_s": round(r["legit_delivered"] / r["storm_seconds"], 1) if r["storm_seconds"] else 0.0}
    out = [storm]
    h = r.get("ham")
    if h:
        out.append({"kind": "ham", "policy": r["policy"], "profile": r["profile"], "sent": h["sent"],
                    "refused": h["refused"], "refused_per_s": round(h["refused"] / h["seconds"], 1),
                    "backscatter_accepted": 0, "legit_sent": h["sent"], "legit_delivered": h["delivered"],
                    "sav_refused": len(h["sav_refused"]), "sav_median_ms": h["sav_median_ms"],
                    "delivered_per_s": h["delivered_per_s"]})
    return out


def sink_ceiling(count: int, sessions: int, tmp: Path) -> dict:
    """smtp-source -> smtp-sink on loopback with the same message and sessions: the ceiling."""
    port = free_port()
    sink = subprocess.Popen([engines.require("smtp-sink"), "-u", "nobody", f"127.0.0.1:{port}", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(0.5)
        msg = tmp / "sink.eml"
        msg.write_bytes(samples.forged_dsn(0).replace(b"\r\n", b"\n"))
        t0 = time.monotonic()
        src = _smtp_source(["-s", str(sessions), "-m", str(count), "-f", "", "-t", BACKSCATTER_RCPT,
                            "-F", str(msg)], port)
        src.communicate(timeout=600)
        secs = time.monotonic() - t0
    finally:
        os.killpg(sink.pid, signal.SIGTERM)
        sink.wait(timeout=10)
    return {"messages": count, "sessions": sessions, "seconds": round(secs, 2), "per_second": round(count / secs, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bouncegen.storm", description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=2000, help="backscatter messages per run (default 2000)")
    ap.add_argument("--ham", type=int, default=1000, metavar="N",
                    help="ordinary messages of the ham run after each storm (default 1000; 0: none)")
    ap.add_argument("--sessions", type=int, default=20, help="parallel smtp-source sessions (default 20)")
    ap.add_argument("--policy", choices=["reject", "spamassassin", BATV_POLICY], action="append",
                    help="run only this policy (repeatable; default all three; batv = dsn 'spamassassin' "
                    "with BATV on, lean profile only)")
    ap.add_argument("--profile", choices=["lean", "full"], action="append",
                    help="run only this spamd profile (repeatable; default both, side by side)")
    ap.add_argument("--in-flow-delay", help="override the rendered in_flow_delay (e.g. 1s) to measure it")
    cores = os.cpu_count() or 1
    # One per core: a lean scan is pure CPU; more children only contend (README, "Bounce storm").
    ap.add_argument("--spamd-children", type=int, default=cores,
                    help=f"spamd children (default: one per CPU core = {cores})")
    ap.add_argument("--concurrency", type=int, default=0,
                    help="the milter's scans in flight (default 0: as many as spamd children)")
    names = [k for k, _ in samples.BACKSCATTER]
    optional = [k for k, _ in samples.OPTIONAL_BACKSCATTER]
    ap.add_argument("--kinds", default=",".join(names),
                    help=f"comma-separated backscatter kinds of the mix (default: all of {','.join(names)}; "
                    f"also: {','.join(optional)})")
    ap.add_argument("--json", metavar="FILE", help='write {"ceiling_per_s", "runs": [...]} to FILE')
    ap.add_argument("--html", metavar="FILE", help="write a page with charts per run (refusals/s by family, SAV and "
                    "milter latency, deliveries over time) to FILE")
    args = ap.parse_args(argv)
    if args.html:
        try:
            require_charts()  # before the storm, not after it
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    wanted = args.kinds.split(",")
    if not wanted or set(wanted) - set(names + optional):
        ap.error(f"--kinds: choose from {','.join(names + optional)}")
    kinds = tuple(k for k in samples.BACKSCATTER + samples.OPTIONAL_BACKSCATTER if k[0] in wanted)
    labs = []
    with tempfile.TemporaryDirectory(prefix="bouncegen-storm-") as t:
        tmp = Path(t)
        os.chmod(tmp, 0o755)
        for policy in args.policy or ["reject", "spamassassin", BATV_POLICY]:
            # BATV refuses before any scan: one profile (the lean one the milter asks) is enough.
            for profile in (["lean"] if policy == BATV_POLICY else args.profile or ["lean", "full"]):
                print(f"storm: policy {policy}, profile {profile}: {args.count} backscatter mails, then {args.ham} "
                      f"ordinary ones, {args.sessions} sessions, {args.spamd_children} spamd children ...",
                      file=sys.stderr, flush=True)
                labs.append(run_policy(policy, count=args.count, sessions=args.sessions, tmp=tmp,
                                       in_flow_delay=args.in_flow_delay, spamd_children=args.spamd_children,
                                       kinds=kinds, profile=profile, ham_count=args.ham,
                                       concurrency=args.concurrency, html=bool(args.html)))
        ceiling = sink_ceiling(args.count, args.sessions, tmp)
    runs = [run for r in labs for run in runs_of(r)]
    failed = []
    for r in labs:
        name = f"{r['policy']}/{r['profile']}"
        if r["backscatter_accepted"]:
            failed.append(f"{name}: {r['backscatter_accepted']} backscatter mails accepted")
        if r["legit_lost"] or r["legit_refused"]:
            failed.append(f"{name}: legitimate mail lost: {r['legit_lost']} {r['legit_refused'][:3]}")
        if r["sav_during"]["refused"] or r["sav_after"]["refused"]:
            failed.append(f"{name}: SAV callouts refused: {(r['sav_during']['refused'] + r['sav_after']['refused'])[:3]}")
        if r["queue_left"]:
            failed.append(f"{name}: {r['queue_left']} messages left in the queue")
        h = r.get("ham")
        if h and (h["refused"] or h["delivered"] != h["sent"] or h["sav_refused"]):
            failed.append(f"{name}: ham: {h['refused']} refused, {h['delivered']} of {h['sent']} delivered, "
                          f"SAV refused {h['sav_refused'][:3]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"ceiling_per_s": ceiling["per_second"], "runs": runs}, indent=2) + "\n")
    if args.html:
        storm_page.build(labs, runs, ceiling).write(args.html)
    print(f"smtp-source -> smtp-sink ceiling: {ceiling['per_second']} msg/s ({ceiling['messages']} in "
          f"{ceiling['seconds']} s, {ceiling['sessions']} sessions)")
    for r in labs:
        print(f"\npolicy dsn = {r['policy']!r}, spamd profile {r['profile']}  (in_flow_delay = "
              f"{r['in_flow_delay_effective']}; mix: {', '.join(r['kinds'])})")
        print(f"  backscatter sent          {r['backscatter_sent']} in {r['sessions']} parallel sessions, {r['storm_seconds']} s "
              f"({r['handled_per_second']}/s answered)")
        print(f"  refused                   {r['backscatter_refused']}  ({r['rejects_per_second']}/s, "
              f"{r['rejects_per_second'] / ceiling['per_second']:.3f}x the smtp-sink ceiling)")
        print(f"    by Postfix tables       {r['rejected_by_tables']} + {r['rejected_at_data']} at DATA "
              f"({r['share_tables']:.1%})")
        print(f"    by SpamAssassin (milter) {r['rejected_by_spamassassin']} ({r['share_spamassassin']:.1%})")
        if r["rejected_by_batv"]:
            print(f"    by BATV at DATA (milter) {r['rejected_by_batv']} ({r['share_batv']:.1%})")
        print(f"  backscatter accepted      {r['backscatter_accepted']}   tempfailed {r['tempfailed']}")
        print(f"  legitimate sent/delivered {r['legit_sent']}/{r['legit_delivered']}  ({', '.join(r['legit_kinds'])})")
        sd, sa = r["sav_during"], r["sav_after"]
        print(f"  SAV during storm          {sd['n']} callouts, median {sd['median_ms']} ms, max {sd['max_ms']} ms, refused {len(sd['refused'])}")
        print(f"  SAV after storm           {sa['n']} callouts, median {sa['median_ms']} ms, max {sa['max_ms']} ms, refused {len(sa['refused'])}")
        print(f"  CPU (Postfix+spamd+milter) {r['cpu_seconds']} s "
              f"({', '.join(f'{k} {v}' for k, v in r['cpu_by_part'].items())})  queue left {r['queue_left']}")
        h = r.get("ham")
        if h:
            print(f"  ham through the milter    {h['delivered']}/{h['sent']} delivered in {h['seconds']} s: "
                  f"{h['delivered_per_s']}/s; refused {h['refused']}; SAV median {h['sav_median_ms']} ms")
        for e in r["smtp_source_errors"] + (h["smtp_source_errors"] if h else []):
            print(f"  smtp-source: {e.strip()}")
    by = {(x["kind"], x["policy"], x["profile"]): x for x in runs}
    for policy in args.policy or ["reject", "spamassassin"]:
        lean, full = by.get(("storm", policy, "lean")), by.get(("storm", policy, "full"))
        if lean and full and full["refused_per_s"]:
            line = f"\nlean / full, dsn = {policy!r}: storm refused {lean['refused_per_s']}/s vs {full['refused_per_s']}/s = " \
                   f"{lean['refused_per_s'] / full['refused_per_s']:.2f}x"
            hl, hf = by.get(("ham", policy, "lean")), by.get(("ham", policy, "full"))
            if hl and hf and hf["delivered_per_s"]:
                line += f"; ham delivered {hl['delivered_per_s']}/s vs {hf['delivered_per_s']}/s = " \
                        f"{hl['delivered_per_s'] / hf['delivered_per_s']:.2f}x"
            print(line)
    b, lean = by.get(("storm", BATV_POLICY, "lean")), by.get(("storm", "spamassassin", "lean"))
    if b and lean and lean["refused_per_s"]:
        print(f"\nBATV / lean spamd, dsn = 'spamassassin': storm refused {b['refused_per_s']}/s vs "
              f"{lean['refused_per_s']}/s = {b['refused_per_s'] / lean['refused_per_s']:.2f}x")
    for f in failed:
        print(f"FAILED: {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
