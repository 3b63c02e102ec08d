"""Where the milter's lines go: syslog facility mail (beside Postfix's lines in mail.log), or stderr.

One line per decision, Postfix's queue ID first, as opendkim and opendmarc write theirs, so that
``grep QUEUEID /var/log/mail.log`` shows Postfix's lines and bouncegen's verdict together::

    4ZfK2L3xQmz9v: client=mx.foreign.test[203.0.113.7], verdict=reject, points=5.0, rules=BG_BOUNCE, ms=212

``verdict`` is accept, reject or tempfail; ``rules`` the ruleset's verdict rules that the message
hit (``-`` for none), and on an accept the rescue labels that name the evidence of origin which
cancelled a verdict (BG_RESCUE_LEDGER, _DKIM, _BATV, _HOP; facts.RESCUE_LABELS, never points); ``ms`` the time spamd took (0 when spamd was not asked); ``reason`` says
why a message was not judged (relay, network, auth, local) or why it was tempfailed. Errors and
tempfails are at warning level, decisions at info.

Syslog by default, written by the milter itself to /dev/log (Python's SysLogHandler, facility
mail, tag ``bouncegen-milter[PID]``): the same path on a systemd host (journald owns /dev/log
and forwards to rsyslog), under runit or in a container, and the facility is right without any
unit setting. ``--log stderr`` is for the foreground and the tests; under systemd the unit's
SyslogIdentifier/SyslogFacility put those lines (and any traceback) in the journal as well.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import stat
import sys

IDENT = "bouncegen-milter"
logger = logging.getLogger("bouncegen.milter")


class _StderrFormatter(logging.Formatter):
    """Postfix's own convention on stderr: ``warning: `` before a warning, nothing before info."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.ERROR:
            return f"error: {msg}"
        if record.levelno >= logging.WARNING:
            return f"warning: {msg}"
        return msg


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def setup(where: str = "syslog", address: str = "/dev/log") -> logging.Logger:
    """Send the milter's lines to syslog (facility mail, at ADDRESS) or to stderr."""
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    if where == "syslog" and not _is_socket(address):
        # No syslog daemon here (a container, a chroot): stderr, and say so once.
        where = "stderr"
        print(f"warning: {address}: no syslog socket; logging to stderr", file=sys.stderr, flush=True)
    if where == "syslog":
        syslog = logging.handlers.SysLogHandler(address=address, facility=logging.handlers.SysLogHandler.LOG_MAIL)
        syslog.ident = f"{IDENT}[{os.getpid()}]: "
        syslog.setFormatter(logging.Formatter("%(message)s"))
        handler: logging.Handler = syslog
    elif where == "stderr":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_StderrFormatter())
    else:
        raise ValueError(f"--log: {where!r}: expected syslog or stderr")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def decision(qid: str, client: tuple[str, str], verdict: str, *, points: float | None = None,
             rules: list[str] | None = None, ms: float = 0, reason: str = "", tests: tuple[str, ...] = ()) -> str:
    """The one line of a decision (see the module docstring)."""
    parts = [f"{qid or 'NOQUEUE'}: client={client[0] or 'unknown'}[{client[1]}]", f"verdict={verdict}"]
    if points is not None:
        parts.append(f"points={points:.1f}")
    if rules is not None:
        parts.append(f"rules={','.join(rules) or '-'}")
    if reason:
        parts.append(f"reason={reason}")
    parts.append(f"ms={ms:.0f}")
    if tests:
        parts.append(f"tests={','.join(tests)}")
    return ", ".join(parts)
