"""The report as rich tables for a terminal, at most 100 columns wide (docs/report.md shows one).

Printed from the JSON dict (report.as_json), so that the terminal, --json and the HTML page
always show the same figures.
"""

from __future__ import annotations

from typing import IO

WIDTH = 100


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def _ms(v) -> str:
    return "-" if v is None else f"{v:g}"


def print_report(d: dict, out: IO[str]) -> None:
    from rich import box
    from rich.columns import Columns
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=WIDTH, highlight=False, soft_wrap=False)

    def table(title: str, *cols: str) -> Table:
        # Two tables side by side fill the 100 columns; a title never wraps.
        t = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", title_style="bold", pad_edge=False,
                  min_width=max(len(title) + 2, 40))
        for i, c in enumerate(cols):
            t.add_column(c, justify="left" if i == 0 else "right", no_wrap=i == 0, overflow="ellipsis",
                         max_width=34 if i == 0 else None)
        return t

    ln = d["lines"]
    span = f"{(d['first'] or '-')[:19].replace('T', ' ')} .. {(d['last'] or '-')[:19].replace('T', ' ')}"
    console.print(f"[bold]bouncegen report[/]: {len(d['sources'])} log(s), {ln['total']:,} lines "
                  f"({ln['used']:,} used), {span}")
    skipped = {k: ln[k] for k in ("unparsable", "truncated", "interleaved", "out_of_range") if ln.get(k)}
    if skipped:
        console.print("skipped: " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in skipped.items()))
    for note in d["notes"]:
        console.print(f"note: {note}")

    ref, tf, res = d["refused"], d["tempfailed"], d["rescued"]
    lat = d["latency_ms"]
    s = table("Summary", "", "messages", "of decided")
    seen = d["accepted"] + ref["total"] + tf["total"]  # disjoint: each message ends one way
    s.add_row("judged by the milter (spamd asked)", f"{d['messages_judged']:,}", "")
    s.add_row("refused, all stages", f"{ref['total']:,}", _pct(ref["total"], seen), style="bold")
    s.add_row("accepted after judgement", f"{d['accepted']:,}", _pct(d["accepted"], seen))
    s.add_row("tempfailed (4xx, sender retries)", f"{tf['total']:,}", _pct(tf["total"], seen),
              style="yellow" if tf["total"] else None)
    s.add_row("rescued by evidence of origin", f"{res['total']:,}", "")
    s.add_row("not judged (relay, auth, local...)", f"{d['not_judged']['total']:,}", "")
    s.add_row("delivered (Postfix status=sent)", f"{d['delivered']:,}", "")
    sav = d["sav_callouts"]
    s.add_row("SAV callouts answered / refused", f"{sav['answered']:,} / {sav['refused']:,}", "",
              style="red" if sav["refused"] else None)
    s.add_row("milter latency p50 / p95 / p99 ms", f"{_ms(lat['p50'])} / {_ms(lat['p95'])} / {_ms(lat['p99'])}",
              f"n={lat['n']:,}")
    console.print(s)

    fam = table("Refused by family", "family", "refused", "share")
    for k, v in ref["by_family"].items():
        fam.add_row(k, f"{v:,}", _pct(v, ref["total"]))
    stage = table("Refused by stage", "stage", "refused", "share")
    for k, v in ref["by_stage"].items():
        stage.add_row(k, f"{v:,}", _pct(v, ref["total"]))

    why = table("Tempfailed, why", "reason", "n")
    for k, v in tf["by_reason"].items():
        why.add_row(k, f"{v:,}")
    ev = table("Rescued, by evidence", "evidence", "n")
    for k, v in res["by_evidence"].items():
        ev.add_row(k, f"{v:,}")

    nets = table("Top client networks", "network", "msgs", "refused")
    for r in d["top_networks"]:
        nets.add_row(r["network"], f"{r['messages']:,}", f"{r['refused']:,}")
    hosts = table("Top sending hosts", "host", "msgs", "refused")
    for r in d["top_hosts"]:
        hosts.add_row(r["host"], f"{r['messages']:,}", f"{r['refused']:,}")

    hours = table("Per hour", "hour", "judged", "refused", "accepted", "tempfailed", "delivered", "SAV")
    for h in d["per_hour"][-24:]:
        hours.add_row(h["hour"][:16].replace("T", " "), *(f"{h[k]:,}" for k in
                      ("judged", "refused", "accepted", "tempfailed", "delivered", "sav")))
    if len(d["per_hour"]) > 24:
        hours.caption = f"the last 24 of {len(d['per_hour'])} hours (--json has all)"
    for t in (fam, stage, why, ev, nets, hosts, hours):
        if not t.row_count:
            t.add_row("(none)", *([""] * (len(t.columns) - 1)))
    for pair in ((fam, stage), (why, ev), (nets, hosts)):
        console.print(Columns(pair, padding=(0, 4)))
    console.print(hours)
