"""One self-contained HTML page of charts and tables: `bouncegen report --html`, `make storm
STORM_ARGS=--html FILE` and `bouncegen check --html FILE` all build theirs with this.

Charts are static SVG drawn by matplotlib and inlined in the page: no script, no font, no file
and no network is needed to view it (an admin opens it from a mail attachment or an air-gapped
jump host), it prints, and it is Debian's python3-matplotlib on a host that installs the
package (recommended, not required: only --html needs it). Why matplotlib rather than an embedded Vega-Lite or Plotly spec: those need their
JavaScript runtime (0.5-3 MB) inlined in every page, and a page that draws itself in the
browser cannot be checked without a browser; matplotlib is the well-kept reference plotting
library of Python, and its SVG backend writes glyphs as paths (svg.fonttype = "path"), so
the page looks the same everywhere. Its Figure API is used directly (no pyplot state), the
backend is Agg-free SVG, and the SVG ids are salted deterministically (svg.hashsalt).
"""

from __future__ import annotations

import html
import io
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path

from ..errors import UsageError

# Colours of the families and stages, one each, stable across charts (Okabe-Ito palette:
# distinguishable with the common colour-vision deficiencies).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#999999")
FIXED = {"dsn": PALETTE[0], "autoreply": PALETTE[1], "challenge": PALETTE[2], "virus": PALETTE[3],
         "any": PALETTE[4], "forged-received": PALETTE[5], "multi-recipient-bounce": PALETTE[6],
         "batv": PALETTE[7], "other": PALETTE[8]}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#1b1b1b;
background:#fafafa;max-width:1280px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 8px}.sub{color:#555;margin:0 0 16px;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 18px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:130px}
.card .v{font-size:22px;font-weight:600}.card .k{font-size:12px;color:#555}
.card.bad .v{color:#b00020}.card.good .v{color:#0a7d32}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:14px;margin:0 0 18px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 14px;overflow-x:auto}
section.wide{grid-column:1/-1}
section svg{width:100%;height:auto}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{padding:3px 8px;border-bottom:1px solid #eee}
th{text-align:left;background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{color:#b00020}.note{font-size:12px;color:#555;margin:6px 0 0}
"""


MIN_BUCKETS = 20  # a time axis spans at least this many buckets

# matplotlib is optional (pip: the [html] extra; the Debian package recommends python3-matplotlib):
# an MX that never draws a page need not carry it. Without it --html fails in one line.
MISSING_MATPLOTLIB = ("--html: the charts need matplotlib, which is not installed: "
                      "apt install python3-matplotlib, or pip install 'bouncegen[html]'")


def require_charts() -> None:
    """Exit 2 in one line when matplotlib is missing: called by --html before a corpus run, a
    storm or a long log is read, not after."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(MISSING_MATPLOTLIB) from None


def _legend(ax, n: int) -> None:
    # Above the plot, never over the bars; constrained layout makes room for it.
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8, frameon=False, ncols=min(5, n),
              borderaxespad=0.2)


def color(name: str, i: int = 0) -> str:
    return FIXED.get(name, PALETTE[i % len(PALETTE)])


def _figure(width: float = 7.2, height: float = 3.0):
    require_charts()
    import matplotlib
    from matplotlib.figure import Figure

    matplotlib.rcParams["svg.hashsalt"] = "bouncegen"
    matplotlib.rcParams["svg.fonttype"] = "path"
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF boilerplate
    return text[text.index("<svg"):]  # no XML declaration or DOCTYPE inside HTML


def _times(ts: list[float]) -> list[datetime]:
    return [datetime.fromtimestamp(t) for t in ts]


def _time_axis(ax, times: list[float], width_s: float) -> None:
    """Dates on x; a short run is shown over at least MIN_BUCKETS buckets, not stretched."""
    import matplotlib.dates as mdates

    if times:
        lo, hi = min(times), max(times) + width_s
        if hi - lo < MIN_BUCKETS * width_s:
            pad = (MIN_BUCKETS * width_s - (hi - lo)) / 2
            lo, hi = lo - pad, hi + pad
        ax.set_xlim(datetime.fromtimestamp(lo), datetime.fromtimestamp(hi))

    loc = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.grid(axis="y", color="#e5e5e5")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def stacked_bars(times: list[float], series: dict[str, list[float]], *, width_s: float, ylabel: str) -> str:
    """Bars over time, one colour per series, stacked (refusals per minute by family)."""
    fig, ax = _figure()
    x = _times(times)
    bottom = [0.0] * len(times)
    for i, (name, ys) in enumerate(series.items()):
        ax.bar(x, ys, width=width_s / 86400, bottom=bottom, label=name, color=color(name, i), align="edge",
               linewidth=0)
        bottom = [b + y for b, y in zip(bottom, ys, strict=False)]
    ax.set_ylabel(ylabel)
    _time_axis(ax, times, width_s)
    if series:
        _legend(ax, len(series))
    return _svg(fig)


def lines(times: list[float], series: dict[str, list[float | None]], *, ylabel: str, width_s: float = 60,
          log: bool = False) -> str:
    """Lines over time (latency percentiles); None leaves a gap."""
    fig, ax = _figure()
    x = [datetime.fromtimestamp(t + width_s / 2) for t in times]  # a bucket's point in its middle
    for i, (name, ys) in enumerate(series.items()):
        ax.plot(x, [float("nan") if y is None else y for y in ys], label=name, color=PALETTE[i % len(PALETTE)],
                marker="o" if len(x) < 30 else None, markersize=3, linewidth=1.6)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.set_ylim(bottom=0) if not log else None
    _time_axis(ax, times, width_s)
    if series:
        _legend(ax, len(series))
    return _svg(fig)


def hbars(labels: list[str], series: dict[str, list[float]], *, xlabel: str) -> str:
    """Horizontal bars, largest on top (top sources); several series side by side."""
    n = max(1, len(labels))
    fig, ax = _figure(height=max(1.6, 0.32 * n * max(1, len(series)) ** 0.5 + 0.8))
    k = max(1, len(series))
    h = 0.8 / k
    for i, (name, xs) in enumerate(series.items()):
        ys = [n - 1 - j + (k - 1 - i) * h - 0.4 + h / 2 for j in range(len(labels))]
        ax.barh(ys, xs, height=h, label=name, color=PALETTE[i % len(PALETTE)] if k > 1 else PALETTE[0])
    ax.set_yticks(range(n), list(reversed(labels)) if labels else [""], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#e5e5e5")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if k > 1:
        _legend(ax, k)
    return _svg(fig)


class Page:
    """``Page(title, subtitle).cards(...).chart(...).table(...).write(path)``"""

    def __init__(self, title: str, subtitle: str = ""):
        self.title, self.subtitle = title, subtitle
        self.parts: list[str] = []
        self._grid: list[str] = []

    def cards(self, items: list[tuple[str, str, str]]) -> "Page":
        """(label, value, mood) boxes of the headline figures; mood "", "bad" or "good"."""
        self._flush()
        self.parts.append('<div class="cards">' + "".join(
            f'<div class="card {html.escape(mood)}"><div class="v">{html.escape(value)}</div>'
            f'<div class="k">{html.escape(label)}</div></div>' for label, value, mood in items) + "</div>")
        return self

    def chart(self, title: str, svg: str, note: str = "") -> "Page":
        note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
        self._grid.append(f'<section class="chart"><h2>{html.escape(title)}</h2>{svg}{note_html}</section>')
        return self

    def table(self, title: str, headers: list[str], rows: list[list], *, bad: set[int] | None = None,
              note: str = "", wide: bool = False) -> "Page":
        """A table; numbers right-aligned; rows whose index is in BAD are marked; WIDE spans the page."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = []
        for i, row in enumerate(rows or [["(none)"] + [""] * (len(headers) - 1)]):
            cells = "".join(
                f'<td class="n">{v:,}</td>' if isinstance(v, int) and not isinstance(v, bool) else
                f'<td class="n">{v:g}</td>' if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
                for v in row)
            body.append(f'<tr class="{"bad" if bad and i in bad else ""}">{cells}</tr>')
        note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
        cls = ' class="wide"' if wide else ""
        self._grid.append(f"<section{cls}><h2>{html.escape(title)}</h2><table><tr>{head}</tr>{''.join(body)}</table>"
                          f"{note_html}</section>")
        return self

    def _flush(self) -> None:
        if self._grid:
            self.parts.append('<div class="grid">' + "".join(self._grid) + "</div>")
            self._grid = []

    def html(self) -> str:
        self._flush()
        sub = f'<p class="sub">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width\"><title>{html.escape(self.title)}</title>"
                f"<style>{CSS}</style></head><body><h1>{html.escape(self.title)}</h1>{sub}"
                + "".join(self.parts) + "</body></html>\n")

    def write(self, path: str | Path) -> Path:
        """Written to a temporary file beside PATH and renamed into place."""
        path = Path(path)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
        except OSError as exc:
            raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.html())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        return path
