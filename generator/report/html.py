"""The report's HTML page (`bouncegen report --html FILE`), drawn from the JSON dict so that it
shows exactly the figures of the terminal and of --json (docs/report.md, "The page")."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from . import page

MAX_POINTS = 240  # time buckets per chart; finer buckets are summed (refusals) or merged (latency)
WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400, 604800)


def _ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def _coarsen(timeline: list[dict], resolution: int) -> tuple[list[dict], int]:
    """Fewer, wider buckets when the log spans more than MAX_POINTS of them. Latency percentiles
    of a merged bucket are the worst of its parts (a chart of peaks, said in the note)."""
    if not timeline:
        return timeline, resolution
    span = _ts(timeline[-1]["t"]) - _ts(timeline[0]["t"]) + resolution
    width = next((w for w in WIDTHS if w >= resolution and w % resolution == 0 and span / w <= MAX_POINTS), WIDTHS[-1])
    if width == resolution:
        return timeline, resolution
    out: dict[int, dict] = {}
    for b in timeline:
        key = int(_ts(b["t"]) // width * width)
        o = out.setdefault(key, {"t": datetime.fromtimestamp(key).astimezone().isoformat(), "refused": {},
                                 "tempfailed": 0, "delivered": 0, "sav": 0, "latency_ms": None})
        for fam, n in b["refused"].items():
            o["refused"][fam] = o["refused"].get(fam, 0) + n
        for k in ("tempfailed", "delivered", "sav"):
            o[k] += b[k]
        if b["latency_ms"]:
            prev = o["latency_ms"] or {"n": 0, "p50": 0, "p95": 0, "p99": 0}
            o["latency_ms"] = {"n": prev["n"] + b["latency_ms"]["n"],
                               **{p: max(prev[p] or 0, b["latency_ms"][p] or 0) for p in ("p50", "p95", "p99")}}
    return [out[k] for k in sorted(out)], width


def _per(width: int) -> str:
    return {1: "second", 60: "minute", 3600: "hour"}.get(width, f"{width} s")


def build(d: dict) -> page.Page:
    ref, lat = d["refused"], d["latency_ms"]
    span = f"{(d['first'] or '-')[:19].replace('T', ' ')} to {(d['last'] or '-')[:19].replace('T', ' ')}"
    ln = d["lines"]
    p = page.Page("bouncegen report", f"{', '.join(d['sources'])}: {ln['total']:,} lines ({ln['used']:,} used; "
                  f"{ln['unparsable'] + ln['truncated'] + ln['interleaved']:,} skipped as damaged), {span}")
    tf, sav = d["tempfailed"]["total"], d["sav_callouts"]
    p.cards([
        ("refused", f"{ref['total']:,}", ""),
        ("judged by the milter", f"{d['messages_judged']:,}", ""),
        ("accepted after judgement", f"{d['accepted']:,}", ""),
        ("tempfailed", f"{tf:,}", "bad" if tf else "good"),
        ("rescued by evidence", f"{d['rescued']['total']:,}", ""),
        ("SAV callouts answered", f"{sav['answered']:,}", "good" if not sav["refused"] else "bad"),
        ("milter latency p50 / p99", f"{lat['p50'] if lat['p50'] is not None else '-'} / "
                                     f"{lat['p99'] if lat['p99'] is not None else '-'} ms", ""),
    ])

    timeline, width = _coarsen(d["timeline"], d["resolution_s"])
    times = [_ts(b["t"]) for b in timeline]
    fams = list(ref["by_family"])
    p.chart(f"Refusals per {_per(width)}, by family",
            page.stacked_bars(times, {f: [b["refused"].get(f, 0) for b in timeline] for f in fams},
                              width_s=width, ylabel=f"refused per {_per(width)}"),
            "Postfix map and milter refusals together; the stage of each is in the table below.")
    lat_tl = [b for b in timeline if b["latency_ms"]]
    p.chart(f"Milter latency per {_per(width)} (spamd's answer)",
            page.lines([_ts(b["t"]) for b in lat_tl],
                       {q: [b["latency_ms"][q] for b in lat_tl] for q in ("p50", "p95", "p99")}, ylabel="ms",
                       width_s=width),
            ("no milter decision lines in the log (the milter logs elsewhere?)" if not lat_tl else
             "Per bucket percentiles of the milter's ms=; wider buckets show the worst of their parts."
             if width != d["resolution_s"] else "Per bucket percentiles of the milter's ms= figure."))
    nets = d["top_networks"]
    p.chart("Top client networks",
            page.hbars([n["network"] for n in nets], {"messages": [n["messages"] for n in nets],
                                                      "refused": [n["refused"] for n in nets]}, xlabel="messages"))
    hosts = d["top_hosts"]
    p.chart("Top sending hosts",
            page.hbars([h["host"] for h in hosts], {"messages": [h["messages"] for h in hosts],
                                                    "refused": [h["refused"] for h in hosts]}, xlabel="messages"))

    p.table("Refused by family", ["family", "refused"], [[k, v] for k, v in ref["by_family"].items()])
    p.table("Refused by stage", ["stage", "refused"], [[k, v] for k, v in ref["by_stage"].items()])
    p.table("Tempfailed, why", ["reason", "messages"], [[k, v] for k, v in d["tempfailed"]["by_reason"].items()])
    p.table("Rescued, by evidence", ["evidence", "messages"],
            [[k, v] for k, v in d["rescued"]["by_evidence"].items()])
    p.table("Latency of the milter (ms)", ["n", "p50", "p95", "p99", "max"],
            [[lat["n"], *("-" if lat[k] is None else lat[k] for k in ("p50", "p95", "p99", "max"))]])
    p.table("Per hour", ["hour", "judged", "refused", "accepted", "tempfailed", "delivered", "SAV"],
            [[h["hour"][:16].replace("T", " "), h["judged"], h["refused"], h["accepted"], h["tempfailed"],
              h["delivered"], h["sav"]] for h in d["per_hour"]])
    p.table("Lines", ["kind", "lines"], [[k.replace("_", " "), v] for k, v in d["lines"].items()],
            note="; ".join(d["notes"]))
    return p


def write(d: dict, path: str | Path) -> Path:
    return build(d).write(path)
