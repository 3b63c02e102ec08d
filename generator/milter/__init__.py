"""bouncegen's milter: the ruleset's SpamAssassin verdict inside the SMTP session (service.py
decides, mx.py holds the pymilter callbacks and is imported only to serve)."""

from .service import ENVELOPE_HEADER, Decision, decide
from .settings import Settings, verdict
from .spamc import SpamdError, spamd_symbols

__all__ = ["ENVELOPE_HEADER", "Decision", "Settings", "SpamdError", "decide", "spamd_symbols", "verdict"]
