"""Tables, JSON and the per-message log of ``bouncegen check``, all computed from the records.

The log follows mass-check: a provenance header of ``# `` lines (versions, inventory hash,
options), then one tab-separated line per message. The hit-frequency table follows
masses/hit-frequencies: per rule, the share of the block set and of the pass set it hits, and
S/O = BLOCK% / (BLOCK% + PASS%), 1.0 for a rule that only ever hits what it should.
"""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO

from ..report.page import Page, hbars
from .check import Record, Result, reason

PF_ROWS = ("postfix:header_checks", "postfix:body_checks")


def categories(records: list[Record]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in records:
        c = out.setdefault(r.category, {"n": 0, "caught": 0, "expected": 0, "wrong": 0, "errors": 0})
        c["n"] += 1
        c["caught"] += r.verdict == "block"
        c["expected"] += r.expected == "block"
        c["wrong"] += r.wrong
        c["errors"] += r.verdict == "error"
    return dict(sorted(out.items()))


def _fired(r: Record) -> set[str]:
    names = set((r.spamassassin or {}).get("rules") or []) | set((r.spamassassin or {}).get("signals") or [])
    pf = r.postfix or {}
    if pf.get("refused"):
        names.add(f"postfix:{pf['parameter']}")
    return names


def hit_frequencies(records: list[Record], scores: dict[str, float]) -> list[dict]:
    """One row per BG_* rule (every one the .cf defines, hit or not) and per Postfix table."""
    n_block = sum(r.expected == "block" for r in records)
    n_pass = sum(r.expected == "pass" for r in records)
    names = set(scores) | set(PF_ROWS)
    for r in records:
        names |= _fired(r)
    rows: list[dict] = []
    for name in names:
        hb = sum(1 for r in records if r.expected == "block" and name in _fired(r))
        hp = sum(1 for r in records if r.expected == "pass" and name in _fired(r))
        bp = 100.0 * hb / n_block if n_block else 0.0
        pp = 100.0 * hp / n_pass if n_pass else 0.0
        so = bp / (bp + pp) if bp + pp else 0.0
        rows.append({"name": name, "block": hb, "pass": hp, "block_pct": round(bp, 2), "pass_pct": round(pp, 2),
                     "s_o": round(so, 3), "score": scores.get(name)})
    rows.sort(key=lambda row: (-(row["block"] + row["pass"]), row["name"]))
    return rows


def summary(result: Result) -> dict:
    recs = result.records
    n = len(recs)
    return {"messages": n, "wrong": sum(r.wrong for r in recs), "errors": sum(r.verdict == "error" for r in recs),
            "blocked": sum(r.verdict == "block" for r in recs), "seconds_setup": round(result.seconds_setup, 2),
            "seconds_run": round(result.seconds_run, 2),
            "messages_per_second": round(n / result.seconds_run, 2) if result.seconds_run else None,
            "ledger_unavail": result.ledger_unavail, "ledger_problem": result.ledger_problem or None,
            "exit_status": result.exit_status}


def as_json(result: Result) -> dict:
    return {
        "provenance": result.provenance,
        "summary": summary(result),
        "categories": categories(result.records),
        "rules": hit_frequencies(result.records, result.rules),
        "wrong": [{"path": r.path, "category": r.category, "expected": r.expected, "verdict": r.verdict,
                   "reason": reason(r)} for r in result.records if r.wrong],
        "messages": [r.as_dict() for r in result.records],
    }


def write_json(result: Result, out: IO[str]) -> None:
    json.dump(as_json(result), out, indent=2, ensure_ascii=False)
    out.write("\n")


def _clean(text: str | None) -> str:
    return (text or "").replace("\t", " ").replace("\n", " ")


def write_log(result: Result, path: Path) -> None:
    """mass-check style: provenance header, then one line per message (TAB-separated)."""
    p = result.provenance
    lines = [
        f"# bouncegen check log: {p['tool']}",
        f"# SpamAssassin {p['spamassassin']}; Postfix {p['postfix']}; Python {p['python']}",
        f"# inventory {p['inventory']} sha256 {p['inventory_sha256']} policy {json.dumps(p['policy'], sort_keys=True)}",
        f"# corpus {p['corpus']} manifest {p['manifest'] or '-'}",
        f"# options {json.dumps(p['options'], sort_keys=True)}",
        f"# started {p['started']}",
        "# result\tverdict\texpected\tcategory\tpath\tpostfix\tsa_points\tsa_rules\ttests\tnotes\tsignals",
    ]
    for r in result.records:
        pf = r.postfix or {}
        sa = r.spamassassin or {}
        mark = "E" if r.verdict == "error" else ("!" if r.wrong else ".")
        pf_col = f"{pf['parameter']}:{_clean(pf['action'])}" if pf.get("refused") else "-"
        if r.error:
            pf_col = f"error:{_clean(r.error)}"
        lines.append("\t".join([
            mark, r.verdict, r.expected, r.category, r.path, pf_col,
            f"{sa['points']:g}" if sa.get("points") is not None else "-",
            ",".join(sa.get("rules") or []) or "-", ",".join(sa.get("tests") or []) or "-",
            _clean("; ".join(r.notes)) or "-", ",".join(sa.get("signals") or []) or "-",
        ]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def print_tables(result: Result, out: IO[str]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=None if out.isatty() else 160, highlight=False, soft_wrap=False)
    s = summary(result)
    p = result.provenance
    console.print(f"bouncegen check: {s['messages']} messages in {s['seconds_run']:.1f} s "
                  f"({s['messages_per_second'] or 0:.1f} msg/s, set-up {s['seconds_setup']:.1f} s)")
    console.print(f"SpamAssassin {p['spamassassin']}, Postfix {p['postfix']}, bouncegen {p['bouncegen']}; "
                  f"inventory {p['inventory']} (sha256 {p['inventory_sha256'][:12]}), policy.scores = "
                  f"{p['policy']['scores']}, -j {p['options']['jobs']}, profile {p['options'].get('profile', 'full')}")

    t = Table(box=box.SIMPLE_HEAD, title="Verdicts per category", title_justify="left")
    for col in ("category", "n", "caught", "expected", "wrong"):
        t.add_column(col, justify="left" if col == "category" else "right")
    cats = categories(result.records)
    tot = {"n": 0, "caught": 0, "expected": 0, "wrong": 0}
    for name, c in cats.items():
        style = "bold red" if c["wrong"] else None
        t.add_row(name, str(c["n"]), str(c["caught"]), str(c["expected"]), str(c["wrong"]), style=style)
        for k in tot:
            tot[k] += c[k]
    t.add_section()
    t.add_row("total", *(str(tot[k]) for k in ("n", "caught", "expected", "wrong")), style="bold")
    console.print(t)

    wrong = [r for r in result.records if r.wrong]
    if wrong:
        w = Table(box=box.SIMPLE_HEAD, title=f"Wrong verdicts ({len(wrong)})", title_justify="left")
        w.add_column("path", no_wrap=True)
        w.add_column("expected")
        w.add_column("got")
        w.add_column("reason", overflow="fold")
        for r in wrong:
            w.add_row(r.path, r.expected, r.verdict, reason(r), style="red")
        console.print(w)

    h = Table(box=box.SIMPLE_HEAD, title="Rule hit frequencies (block set / pass set, by expected verdict)",
              title_justify="left")
    for col in ("BLOCK%", "PASS%", "S/O", "block", "pass", "SCORE", "NAME"):
        h.add_column(col, justify="left" if col == "NAME" else "right")
    for row in hit_frequencies(result.records, result.rules):
        h.add_row(f"{row['block_pct']:.2f}", f"{row['pass_pct']:.2f}", f"{row['s_o']:.3f}", str(row["block"]),
                  str(row["pass"]), "-" if row["score"] is None else f"{row['score']:g}", row["name"],
                  style="red" if row["pass"] else None)
    console.print(h)
    if s["wrong"]:
        console.print(f"[bold red]FAILED[/]: {s['wrong']} of {s['messages']} verdicts differ from their labels"
                      + (f" ({s['errors']} errors)" if s["errors"] else ""))
    else:
        console.print(f"[bold green]OK[/]: all {s['messages']} verdicts as expected")


def write_junit(result: Result, path: Path) -> None:
    """JUnit XML for a site's CI (GitLab, Jenkins, GitHub): one test case per message, named by
    its path and grouped by category, so that the CI page names the sample that regressed.

    A wrong verdict is a <failure> (expected vs verdict and the rules that decided); a message no
    engine could judge is an <error>. xml.etree (standard library) does the escaping: a path or
    a rule text never breaks the XML. Written to a temporary file and renamed into place."""
    records = result.records
    suite = ET.Element("testsuite", {
        "name": "bouncegen check", "tests": str(len(records)),
        "failures": str(sum(r.wrong and r.verdict != "error" for r in records)),
        "errors": str(sum(r.verdict == "error" for r in records)),
        "time": f"{result.seconds_run:.3f}",
    })
    props = ET.SubElement(suite, "properties")
    for key, value in sorted(result.provenance.items()):
        ET.SubElement(props, "property", {"name": str(key), "value": str(value)})
    for r in sorted(records, key=lambda rec: rec.path):
        case = ET.SubElement(suite, "testcase", {"classname": r.category.replace("/", "."), "name": r.path})
        if r.verdict == "error":
            ET.SubElement(case, "error", {"message": f"expected {r.expected}, not judged"}).text = r.error
        elif r.wrong:
            ET.SubElement(case, "failure", {"message": f"expected {r.expected}, got {r.verdict}"}).text = reason(r)
        else:
            ET.SubElement(case, "system-out").text = reason(r)
    tree = ET.ElementTree(ET.Element("testsuites"))
    tree.getroot().append(suite)
    ET.indent(tree)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as f:
            tree.write(f, encoding="utf-8", xml_declaration=True)
            f.write(b"\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_html(result: Result, path: Path) -> None:
    """`bouncegen check --html FILE`: the corpus run as a page (report/page.py, the builder of
    `bouncegen report --html`): per category the messages caught against those expected, per
    rule its hits in the block and the pass set, the wrong verdicts and the tables."""
    s = summary(result)
    p = result.provenance
    cats = categories(result.records)
    rules = [r for r in hit_frequencies(result.records, result.rules) if r["block"] or r["pass"]]
    page = Page("bouncegen check", f"{s['messages']} messages of {p['corpus']} with inventory {p['inventory']}, "
                f"profile {p['options'].get('profile', 'full')}, SpamAssassin {p['spamassassin']}, "
                f"Postfix {p['postfix']}, bouncegen {p['bouncegen']}")
    page.cards([("messages", f"{s['messages']:,}", ""), ("blocked", f"{s['blocked']:,}", ""),
                ("wrong verdicts", f"{s['wrong']:,}", "bad" if s["wrong"] else "good"),
                ("not judged (errors)", f"{s['errors']:,}", "bad" if s["errors"] else "good"),
                ("messages/s", f"{s['messages_per_second'] or 0:g}", "")])
    names = list(cats)
    page.chart("Per category: caught, expected to be caught, wrong",
               hbars(names, {"caught": [cats[c]["caught"] for c in names],
                             "expected": [cats[c]["expected"] for c in names],
                             "wrong": [cats[c]["wrong"] for c in names]}, xlabel="messages"))
    page.chart("Per rule: hits in the block set and in the pass set",
               hbars([r["name"] for r in rules], {"block set": [r["block"] for r in rules],
                                                  "pass set": [r["pass"] for r in rules]}, xlabel="messages"),
               "A hit in the pass set is a false positive of that rule (or a rescued message's sub-rule).")
    wrong = [r for r in result.records if r.wrong]
    page.table(f"Wrong verdicts ({len(wrong)})", ["path", "expected", "got", "reason"],
               [[r.path, r.expected, r.verdict, reason(r)] for r in wrong], bad=set(range(len(wrong))), wide=True)
    page.table("Verdicts per category", ["category", "n", "caught", "expected", "wrong"],
               [[c, v["n"], v["caught"], v["expected"], v["wrong"]] for c, v in cats.items()],
               bad={i for i, v in enumerate(cats.values()) if v["wrong"]})
    page.table("Rule hit frequencies", ["rule", "BLOCK%", "PASS%", "S/O", "block", "pass", "score"],
               [[r["name"], r["block_pct"], r["pass_pct"], r["s_o"], r["block"], r["pass"],
                 "-" if r["score"] is None else r["score"]] for r in hit_frequencies(result.records, result.rules)],
               bad={i for i, r in enumerate(hit_frequencies(result.records, result.rules)) if r["pass"]})
    page.write(path)
