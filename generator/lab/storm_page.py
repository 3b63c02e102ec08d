"""The page of `make storm STORM_ARGS="--html FILE"`: per policy x profile run, refusals per
second stacked by family and deliveries per second (from the lab's own mail log, read by
`bouncegen report`'s reader at one-second resolution), SAV callout latency (each callout the
storm timed) beside the milter's latency percentiles, and the run's figures as a table. Built
with report/page.py, the builder of `bouncegen report --html`."""

from __future__ import annotations

from datetime import datetime

from ..report import page


def _ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def build(labs: list[dict], runs: list[dict], ceiling: dict) -> page.Page:
    p = page.Page("bouncegen storm", f"smtp-source -> smtp-sink ceiling on loopback: {ceiling['per_second']} msg/s "
                  f"({ceiling['messages']} messages, {ceiling['sessions']} sessions)")
    p.cards([(f"{r['policy']}/{r['profile']} {r['kind']}", f"{r['refused_per_s']}/s refused"
              if r["kind"] == "storm" else f"{r['delivered_per_s']}/s delivered",
              "bad" if r["backscatter_accepted"] or r["sav_refused"] or r["legit_delivered"] < r["legit_sent"] else "good")
             for r in runs])
    for lab in labs:
        name = f"dsn = {lab['policy']}, {lab['profile']} profile"
        d = lab.get("report")
        if d is None:
            continue
        tl = d["timeline"]
        times = [_ts(b["t"]) for b in tl]
        fams = list(d["refused"]["by_family"])
        p.chart(f"Refusals per second by family ({name})",
                page.stacked_bars(times, {f: [b["refused"].get(f, 0) for b in tl] for f in fams}, width_s=1,
                                  ylabel="refused per second"),
                f"{lab['backscatter_refused']} of {lab['backscatter_sent']} refused in {lab['storm_seconds']} s; "
                f"then the ham run.")
        p.chart(f"Deliveries per second ({name})",
                page.stacked_bars(times, {"delivered": [b["delivered"] for b in tl]}, width_s=1,
                                  ylabel="delivered per second"),
                "Legitimate trickle during the storm, then the ham run (Postfix status=sent).")
        sav = lab.get("sav_series") or []
        lat = [b for b in tl if b["latency_ms"]]
        series_t = [t for t, _, _ in sav]
        p.chart(f"SAV callout latency ({name})",
                page.lines(series_t, {"SAV callout (MAIL FROM:<>, RCPT, QUIT)": [ms for _, ms, _ in sav]},
                           ylabel="ms", width_s=1),
                f"{len(sav)} callouts during the storm, {sum(1 for *_, ok in sav if not ok)} refused.")
        p.chart(f"Milter latency per second ({name})",
                page.lines([_ts(b["t"]) for b in lat], {q: [b["latency_ms"][q] for b in lat] for q in ("p50", "p95", "p99")},
                           ylabel="ms", width_s=1),
                "spamd's answer as the milter logged it (ms=).")
    p.table("Runs", ["kind", "policy", "profile", "sent", "refused", "refused/s", "accepted backscatter",
                     "legit sent", "legit delivered", "SAV refused", "SAV median ms", "delivered/s"],
            [[r["kind"], r["policy"], r["profile"], r["sent"], r["refused"], r["refused_per_s"],
              r["backscatter_accepted"], r["legit_sent"], r["legit_delivered"], r["sav_refused"],
              r["sav_median_ms"] if r["sav_median_ms"] is not None else "-", r["delivered_per_s"]] for r in runs],
            bad={i for i, r in enumerate(runs) if r["backscatter_accepted"] or r["sav_refused"]
                 or r["legit_delivered"] < r["legit_sent"]}, wide=True)
    return p
