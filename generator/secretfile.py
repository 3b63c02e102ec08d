"""Site secrets on disk (the ledger key, the BATV keys): read as ASCII, written once with mode
0600. One place for what a key file must be, whatever the key is for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def read_ascii(path: Path, error: Callable[[str], Exception], what: str) -> str:
    """The file's text; ERROR("PATH: cannot read WHAT: why") when it cannot be read as ASCII."""
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what}: {reason(exc)}") from None


def reason(exc: BaseException) -> str:
    """What went wrong reading or writing a key file, in a few words."""
    return getattr(exc, "strerror", None) or str(exc)


def write_new(path: Path, data: bytes) -> None:
    """Create PATH with DATA, mode 0600 whatever the umask, synced; FileExistsError when it
    exists (a key file is never replaced by accident)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
