"""`make bench-report`: `bouncegen report` over a large mail log, for lines per second and memory.

The log is written first (default 1 GiB, in a temporary directory): a storm's mix per message,
as the lab's Postfix and milter write them (connect, client=, message-id, the reject or the
verdict, qmgr, delivery, disconnect, SAV callouts), clients spread over 65,536 addresses, one
second per ~50 messages, with a damaged line (truncated, interleaved) now and then. Then the
report reads it, once plain and (with --gzip) once compressed; printed: lines, seconds, lines/s
and the peak resident memory of the reading process (getrusage), which must not grow with the
log's size (run with --size-mb 100 and 1024 to see it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..milter.log import decision

RULES = (["BG_ANY_BOUNCE", "BG_BOUNCE"], ["BG_ANY_BOUNCE", "BG_AUTOREPLY"], ["BG_ANY_BOUNCE", "BG_VIRUS"])


def _lines(i: int, ts: float) -> list[str]:
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(ts))
    qid = f"{0x4A0000000 + i:X}"
    ip = f"198.{18 + (i >> 16) % 2}.{(i >> 8) & 255}.{i & 255}"
    host = f"bouncer{i % 5000}.test"
    pf = f"{stamp} mx1 postfix/"
    kind = i % 10
    out = [f"{pf}smtpd[{1000 + i % 90}]: connect from {host}[{ip}]",
           f"{pf}smtpd[{1000 + i % 90}]: {qid}: client={host}[{ip}]",
           f"{pf}cleanup[{2000 + i % 7}]: {qid}: message-id=<m{i}.{ts:.0f}@{host}>"]
    if kind < 3:  # header_checks refuses an RFC 3464 report
        out.append(f"{pf}cleanup[{2000 + i % 7}]: {qid}: reject: header Content-Type: multipart/report; "
                   f"report-type=delivery-status;??boundary=\"B{i}\" from {host}[{ip}]; from=<> to=<bob@example.org> "
                   f"proto=ESMTP helo=<{host}>: 5.7.1 Delivery status notification refused: our addresses were forged "
                   f"by a spammer; the message it reports on did not come from us (backscatter)")
    elif kind < 8:  # the milter refuses
        rules = RULES[i % 3]
        out.append(f"{stamp} mx1 bouncegen-milter[777]: " + decision(qid, (host, ip), "reject", points=5.0, rules=rules,
                                                                  ms=40 + i % 300, tests=tuple(rules)))
        out.append(f"{pf}cleanup[{2000 + i % 7}]: {qid}: milter-reject: END-OF-MESSAGE from {host}[{ip}]: 5.7.1 "
                   f"Refused as backscatter: this bounce, auto-reply or notice answers mail that did not come from "
                   f"our servers; a spammer forged our address. Do not send it again. ({' '.join(rules)}); from=<> "
                   f"to=<bob@example.org> proto=ESMTP helo=<{host}>")
    else:  # accepted and delivered
        out.append(f"{stamp} mx1 bouncegen-milter[777]: " + decision(qid, (host, ip), "accept", points=0.0, rules=[],
                                                                  ms=30 + i % 200))
        out.append(f"{pf}qmgr[99]: {qid}: from=<grace@foreign.test>, size=1234, nrcpt=1 (queue active)")
        out.append(f"{pf}virtual[3001]: {qid}: to=<alice@example.org>, relay=virtual, delay=0.1, "
                   f"delays=0.1/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)")
        out.append(f"{pf}qmgr[99]: {qid}: removed")
    data = "data=0/1" if kind < 8 else "data=1"
    out.append(f"{pf}smtpd[{1000 + i % 90}]: disconnect from {host}[{ip}] ehlo=1 mail=1 rcpt=1 {data} quit=1 commands=5")
    if i % 25 == 0:
        out.append(f"{pf}smtpd[1099]: disconnect from sav.test[203.0.113.20] ehlo=1 mail=1 rcpt=1 quit=1 commands=4")
    if i % 10007 == 0:  # damage: a line cut short, two lines in one
        out.append(out[3][: len(out[3]) // 2])
        out.append(out[1][:60] + out[2])
    return out


def write_log(path: Path, size_mb: int, start: float) -> int:
    limit = size_mb * 1024 * 1024
    written = n = i = 0
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as f:
        while written < limit:
            block = "\n".join(_lines(i, start + i / 50)) + "\n"
            f.write(block)
            written += len(block)
            n += block.count("\n")
            i += 1
    return n


def measure(path: Path) -> dict:
    """The report in a child process, so that its peak memory is its own."""
    code = ("import json,resource,sys,time;from bouncegen import report;t=time.monotonic();"
            "c=time.process_time();d=report.as_json(report.run([sys.argv[1]]));s=time.monotonic()-t;c=time.process_time()-c;"
            "print(json.dumps({'lines':d['lines']['total'],'seconds':round(s,1),'lines_per_s':round(d['lines']['total']/s),"
            "'cpu_seconds':round(c,1),'lines_per_cpu_s':round(d['lines']['total']/c),"
            "'max_rss_mb':round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024),"
            "'refused':d['refused']['total'],'judged':d['messages_judged'],'damaged':d['lines']['truncated']+d['lines']['interleaved']}))")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bouncegen.lab.bench_report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="size of the log to write (default 1024)")
    ap.add_argument("--gzip", action="store_true", help="also measure the same log gzip-compressed")
    ap.add_argument("--json", metavar="FILE", help="write the figures to FILE")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bouncegen-bench-report-"))
    try:
        path = tmp / "mail.log"
        t0 = time.monotonic()
        lines = write_log(path, args.size_mb, time.time() - 86400)
        print(f"wrote {path.stat().st_size / 2**20:.0f} MiB, {lines:,} lines in {time.monotonic() - t0:.0f} s",
              file=sys.stderr)
        out: dict[str, Any] = {"size_mb": round(path.stat().st_size / 2**20), "plain": measure(path)}
        if args.gzip:
            gz = tmp / "mail.log.gz"
            with open(path, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            out["gzip"] = measure(gz)
        for kind in ("plain", "gzip"):
            if kind in out:
                r = out[kind]
                print(f"{kind:5}: {r['lines']:,} lines in {r['seconds']} s = {r['lines_per_s']:,} lines/s "
                      f"({r['cpu_seconds']} s CPU: {r['lines_per_cpu_s']:,} lines per CPU second), "
                      f"peak RSS {r['max_rss_mb']} MiB ({r['refused']:,} refused, {r['judged']:,} judged, "
                      f"{r['damaged']} damaged lines skipped)")
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
