"""The one error hierarchy of bouncegen.

Every error the user can cause or meet derives from BouncegenError and carries the exit status
the CLI returns for it; the CLI prints ``error: <file>: <what>`` lines and never a traceback.
"""

from __future__ import annotations


class BouncegenError(Exception):
    """Base class. ``problems`` holds one line per problem, already naming file and key."""

    exit_status = 1

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class UsageError(BouncegenError):
    """Bad command-line use or bad input data (exit 2)."""

    exit_status = 2


class InventoryError(UsageError):
    """The inventory is unreadable or invalid; every problem is reported at once (exit 2)."""


class RuleDataError(BouncegenError):
    """A rule-family file under rules/ is malformed: a bug of the package, not of the user (exit 1)."""


class TemplateError(BouncegenError):
    """A template failed to render (missing name, syntax error): a bug of the package (exit 1)."""


class LintError(BouncegenError):
    """The rendered output was refused by the real spamassassin or postmap (exit 1)."""


class CheckFailed(BouncegenError):
    """Some corpus verdicts differ from their labels (exit 1)."""


class LedgerError(BouncegenError):
    """The sent-mail ledger failed: unreadable key file, bad store URL, store unreachable or
    refusing (exit 1). Messages never contain a store's password."""


class BatvError(BouncegenError):
    """BATV keys unreadable or malformed (exit 1). In the SMTP session this is a 4xx, never a
    5xx and never an unchecked accept."""


class EngineError(BouncegenError):
    """A required engine (spamd, spamc, postmap, postfix) is missing or failed (exit 3)."""

    exit_status = 3
