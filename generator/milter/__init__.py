"""bouncegen's milter: the ruleset's SpamAssassin verdict inside the SMTP session (see service.py)."""

from .service import ENVELOPE_HEADER, run
from .settings import Settings, verdict
from .spamc import SpamdError, spamd_symbols

__all__ = ["ENVELOPE_HEADER", "Settings", "SpamdError", "run", "spamd_symbols", "verdict"]
