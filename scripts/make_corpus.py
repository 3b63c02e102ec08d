#!/usr/bin/env python3
"""Write bouncegen's own labelled corpus (corpus/) from the sample definitions in corpus_lib/.

    python3 scripts/make_corpus.py            # rewrites corpus/{backscatter,legit,ham}/**/*.eml

The samples were written for this project: MTA shapes from general knowledge of what Postfix,
Sendmail, Exim, Exchange & co. print; names, addresses, IDs and texts are our own. Output is
deterministic (fixed random seed), so a re-run only changes what the definitions changed.
Files marked crlf are written with CRLF line endings, the rest with LF.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus_lib import samples_autoreply, samples_challenge, samples_dsn, samples_ham, samples_virus  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent / "corpus"


def main() -> int:
    items = []
    for mod in (samples_dsn, samples_challenge, samples_autoreply, samples_virus, samples_ham):
        items += mod.samples()
    seen = set()
    for rel, _, _ in items:
        if rel in seen:
            raise SystemExit(f"duplicate sample name: {rel}")
        seen.add(rel)
    for top in ("backscatter", "legit", "ham"):
        for old in (ROOT / top).rglob("*.eml") if (ROOT / top).exists() else []:
            old.unlink()
    for rel, text, crlf in items:
        path = ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.replace("\r\n", "\n")
        if crlf:
            data = data.replace("\n", "\r\n")
        path.write_bytes(data.encode("utf-8"))
    counts: dict[str, int] = {}
    for rel, _, _ in items:
        cat = rel.rsplit("/", 1)[0]
        counts[cat] = counts.get(cat, 0) + 1
    for cat in sorted(counts):
        print(f"{counts[cat]:4d}  {cat}")
    print(f"{len(items):4d}  total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
