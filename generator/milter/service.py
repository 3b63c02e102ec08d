"""bouncegen's milter: the ruleset's SpamAssassin verdict inside the SMTP session. This module
holds what needs no pymilter: the decision (:func:`decide`, a pure function of spamd's answer
and the settings) and the facts about a client; mx.py holds the callbacks and ``run``.

This milter fails closed: every error is a 4xx (why not Debian's spamass-milter, measured: it
accepts when spamd is down; docs/smtp-time.md).

Built on pymilter (the Python binding of Sendmail's libmilter, the reference implementation of
the protocol, Debian's python3-milter); spamd is asked with its own protocol (SPAMC/1.5
SYMBOLS) over TCP, with one deadline for the whole exchange. Settings: the rendered
milter/bouncegen-milter.conf (TOML), see templates/milter/.

Verdict: the points of the ruleset's verdict rules ([scores]) that the message hits, summed; at
or above the threshold the message is refused with 550 5.7.1 and a text a remote postmaster
understands. Other stock SpamAssassin rules do not count: this milter stops backscatter, it is
not a spam filter. Mail from our relays (by address, or by verified client name), from exempt
networks and from authenticated clients is accepted without asking spamd.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..facts import LEDGER_UNAVAIL
from .settings import Settings, verdict

# spamd's own rule when its time_limit cut a scan short: the verdict is not complete.
SPAMD_TIME_LIMIT = "TIME_LIMIT_EXCEEDED"
NO_VERDICT = "spamd stopped the scan at its time_limit: no verdict"


def pymilter_socket(spec: str) -> str:
    """Postfix's milter socket spec (unix:PATH, inet:HOST:PORT) as Milter.runmilter takes it
    (local:PATH, inet:PORT@HOST)."""
    if spec.startswith("unix:"):
        return "local:" + spec[5:]
    if spec.startswith("inet:"):
        host, _, port = spec[5:].rpartition(":")
        return f"inet:{port}@{host.strip('[]')}"
    return spec


ENVELOPE_HEADER = b"X-Envelope-From"


def is_local(hostname: str, addr: str | None) -> bool:
    """Mail that did not come over SMTP from outside: Postfix hands non-SMTP mail (sendmail(1),
    pickup, its own notices; non_smtpd_milters, e.g. a host's "non_smtpd_milters =
    $smtpd_milters") to a milter as a connection from localhost [127.0.0.1]; an SMTP client on
    loopback whose name verifies as localhost is the same machine. Neither is ever judged."""
    try:
        loopback = addr is not None and ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        loopback = False
    return loopback and (hostname or "").lower().rstrip(".") == "localhost"


@dataclass(frozen=True)
class Decision:
    """What the milter answers at end of message, and what it logs."""
    action: str                    # "accept", "reject" or "tempfail"
    points: float = 0.0
    rules: list[str] = field(default_factory=list)   # the verdict rules that counted, sorted
    reason: str = ""
    reply: tuple[str, str, str] | None = None        # (SMTP code, enhanced code, text); None: accept

    @property
    def refused(self) -> bool:
        return self.action != "accept"


def decide(tests: tuple[str, ...], cfg: Settings) -> Decision:
    """The decision on the rules spamd reported for a message (``tests``): the points of the
    ruleset's verdict rules against the threshold. A verdict together with BG_LEDGER_UNAVAIL (the
    ledger that might prove the mail ours did not answer) and a scan spamd cut short are 4xx:
    neither a 5xx nor an unchecked accept; the sender retries."""
    if SPAMD_TIME_LIMIT in tests:
        return Decision("tempfail", reason=NO_VERDICT,
                        reply=("451", "4.7.1", cfg.tempfail_text))
    points, hit = verdict(tests, cfg.scores)
    if points >= cfg.threshold and LEDGER_UNAVAIL in tests:
        return Decision("tempfail", points, hit, "ledger unavailable", ("451", "4.7.1", cfg.tempfail_text))
    if points >= cfg.threshold:
        return Decision("reject", points, hit, reply=("550", "5.7.1", f"{cfg.reject_text} ({' '.join(hit)})"))
    return Decision("accept", points, hit)
