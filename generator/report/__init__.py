"""`bouncegen report`: what the mail log says about a bounce storm (DESIGN.md, "Seeing it").

Rooms: shapes.py (the lines, as data), reader.py (streams the logs), figures.py (accumulates),
this module (the figures as one JSON-ready dict, docs/report.md describes every key),
terminal.py (rich tables), page.py (the self-contained HTML page builder that the storm and
``bouncegen check --html`` share) and html.py (the report's page).

Layering: below the lab and the runner (which use page.py), beside the milter; imports only
the renderer's rule families (to name a rule's family) and errors.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from ..renderer.rules import load_families
from .figures import Figures, iso
from .reader import DEFAULT_LOG, Clock, parse_time, read

FORMAT = "bouncegen-report/1"
TOP_N = 10


def rule_families() -> dict[str, tuple[int, str]]:
    """Scored rule name -> (family order, family name), from rules/*.toml."""
    return {r.name: (f.order, f.name) for f in load_families() for r in f.rules if not r.is_sub}


@dataclass
class Report:
    figures: Figures
    lines: dict[str, int]
    sources: list[str]
    since: float | None = None
    until: float | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run(sources: list[str], *, since: float | None = None, until: float | None = None,
        resolution: int = 60, clock: Clock | None = None) -> Report:
    t0 = time.monotonic()
    fig = Figures(rule_families(), resolution=resolution)
    notes: list[str] = []
    lines = read(sources, fig, since=since, until=until, clock=clock, notes=notes)
    notes += fig.finish()
    return Report(fig, lines, list(sources), since, until, notes, time.monotonic() - t0)


def _sorted(c) -> dict:
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def as_json(rep: Report) -> dict:
    f = rep.figures
    hours = sorted(f.hours)
    buckets = sorted(set(f.refused.buckets) | set(f.lat_buckets) | set(f.buckets))
    none: Counter[str] = Counter()
    return {
        "format": FORMAT,
        "sources": rep.sources,
        "since": iso(rep.since), "until": iso(rep.until),
        "first": iso(f.first), "last": iso(f.last),
        "lines": rep.lines,
        "notes": rep.notes,
        "messages_judged": f.judged,
        "accepted": f.accepted,
        "refused": {"total": f.refused.total, "by_family": _sorted(f.refused.family),
                    "by_stage": _sorted(f.refused.stage)},
        "tempfailed": {"total": sum(f.tempfail.values()), "by_reason": _sorted(f.tempfail)},
        "rescued": {"total": sum(f.rescued.values()), "by_evidence": _sorted(f.rescued)},
        "not_judged": {"total": sum(f.unjudged.values()), "by_reason": _sorted(f.unjudged)},
        "latency_ms": f.latency.summary(),
        "sav_callouts": {"answered": f.sav["answered"], "refused": f.sav["refused"]},
        "delivered": f.delivered,
        "postfix_milter_rejects": {"bouncegen": f.pf_milter.total, "other_milters": _sorted(f.other_milters)},
        "postfix_milter_warnings": _sorted(f.milter_warnings),
        "relay": {"recorded": f.relay["recorded"], "not_recorded": f.relay["not_recorded"],
                  "batv_signed": f.relay["batv_signed"]},
        "top_networks": [{"network": k, "messages": n, "refused": r} for k, n, r in f.networks.top(TOP_N)],
        "top_hosts": [{"host": k, "messages": n, "refused": r} for k, n, r in f.hosts.top(TOP_N)],
        "per_hour": [{"hour": iso(h), **{k: f.hours[h][k] for k in
                      ("judged", "accepted", "refused", "tempfailed", "rescued", "delivered", "sav")}} for h in hours],
        "resolution_s": f.resolution,
        "timeline": [{"t": iso(b), "refused": dict(sorted(f.refused.buckets.get(b, {}).items())),
                      "tempfailed": f.buckets.get(b, none)["tempfailed"],
                      "delivered": f.buckets.get(b, none)["delivered"],
                      "sav": f.buckets.get(b, none)["sav"],
                      "latency_ms": f.lat_buckets[b].summary() if b in f.lat_buckets else None} for b in buckets],
        "seconds": round(rep.seconds, 3),
        "lines_per_second": round(rep.lines["total"] / rep.seconds) if rep.seconds else None,
    }


__all__ = ["DEFAULT_LOG", "FORMAT", "Report", "as_json", "parse_time", "run"]
