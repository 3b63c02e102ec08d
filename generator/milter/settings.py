"""The milter's settings: the rendered milter/bouncegen-milter.conf (TOML), see templates/milter/.

Loaded once at start; a file that does not parse is a UsageError naming it, so that
``bouncegen milter --check`` and the install's health gate report it in one line.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..defaults import MILTER as DEFAULTS
from ..errors import BouncegenError, UsageError
from ..facts import LEDGER_UNAVAIL, RESCUE_LABELS
from .batv_gate import Gate

# For a settings file that lacks them (rendered by an older bouncegen): what the inventory's
# defaults render.
CONCURRENCY = DEFAULTS["concurrency"] or DEFAULTS["spamd_children"]
SCAN_LIMIT = DEFAULTS["scan_limit_kb"] * 1024


@dataclass(frozen=True)
class Settings:
    socket: str
    spamd_host: str
    spamd_port: int
    timeout: float
    threshold: float
    reject_text: str
    tempfail_text: str
    exempt_networks: tuple
    exempt_hosts: tuple[str, ...]
    scores: dict
    concurrency: int = CONCURRENCY  # scans in flight at once
    scan_limit: int = SCAN_LIMIT    # bytes of a message that spamd judges
    batv: Gate | None = None  # [batv] of the settings: BATV checks at RCPT and DATA

    @classmethod
    def load(cls, path: str | Path) -> "Settings":
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            m, ex, sc = data["milter"], data.get("exempt", {}), data.get("scores", {})
            host, _, port = m["spamd"].rpartition(":")
            return cls(
                socket=m["socket"], spamd_host=host.strip("[]"), spamd_port=int(port),
                timeout=float(m["timeout"]), threshold=float(m["threshold"]),
                reject_text=m["reject_text"], tempfail_text=m["tempfail_text"],
                exempt_networks=tuple(ipaddress.ip_network(n) for n in ex.get("networks", [])),
                exempt_hosts=tuple(h.lower() for h in ex.get("hosts", [])),
                scores={str(k): float(v) for k, v in sc.items()},
                concurrency=max(1, int(m.get("concurrency", CONCURRENCY))),
                scan_limit=max(1024, int(m.get("scan_limit", SCAN_LIMIT))),
                batv=Gate.from_table(data["batv"]) if "batv" in data else None,
            )
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
            raise UsageError(f"{path}: not a bouncegen milter settings file: {exc}") from None

    def exempt_client(self, hostname: str, addr: str | None) -> bool:
        if addr:
            try:
                ip = ipaddress.ip_address(addr.split("%")[0])
            except ValueError:
                ip = None
            if ip is not None and any(ip.version == n.version and ip in n for n in self.exempt_networks):
                return True
        # Postfix passes the client name only when its forward and reverse DNS agree ("unknown"
        # or "[addr]" otherwise), so a relay name here is not a claim the client made itself.
        name = (hostname or "").lower().rstrip(".")
        return bool(name) and not name.startswith("[") and any(fnmatch.fnmatchcase(name, h) for h in self.exempt_hosts)


def check_rendered(rendered: Path) -> list[str]:
    """A lint for the renderer (renderer.lint.lint's ``checks``): the milter can read the settings
    file rendered for it (RENDERED/milter/bouncegen-milter.conf, when there is one)."""
    conf = rendered / "milter" / "bouncegen-milter.conf"
    if not conf.exists():
        return []
    try:
        Settings.load(conf)
    except BouncegenError as exc:
        return [f"milter settings: {p}" for p in exc.problems]
    return []


def verdict(tests: tuple[str, ...], scores: dict[str, float]) -> tuple[float, list[str]]:
    # LEDGER_UNAVAIL never counts as points here (see renderer/rules.py): the milter turns a
    # verdict together with it into a 4xx.
    # The rescue labels (facts.RESCUE_LABELS) are named in the decision line, so that `bouncegen
    # report` can say by what evidence a bounce was accepted, but never count as points either.
    hit = sorted(t for t in tests if (t in scores and t != LEDGER_UNAVAIL) or t in RESCUE_LABELS)
    return sum(scores[t] for t in hit if t in scores and t not in RESCUE_LABELS), hit
