"""Files: reading, diffs, atomic writes, and the backup that makes every change undoable."""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import tempfile
from pathlib import Path

from ..facts import MARKER
from ..renderer.render import SITE_SECRETS, file_diff
from .layout import SERVICE_GROUP


def is_ours(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return MARKER in f.readline()
    except OSError:
        return False


def read_or_none(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None


def live_diff(old: str | None, new: str | None, live: Path) -> list[str]:
    return file_diff(old, new, str(live), str(live))


class Backup:
    """Copies of every file about to change (by its path under root), and a list of the files
    that did not exist before, so that rollback can restore the previous state exactly."""

    def __init__(self, directory: Path, root: Path):
        self.dir = directory
        self.root = root
        self.saved: list[Path] = []
        self.created: list[Path] = []
        self.dirs_created: list[Path] = []

    def _copy_path(self, live: Path) -> Path:
        return self.dir / live.relative_to(self.root)

    def save(self, live: Path) -> None:
        if live in self.saved or live in self.created:
            return
        if live.exists():
            dest = self._copy_path(live)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(live, dest)
            self.saved.append(live)
        else:
            self.created.append(live)

    def write_manifest(self) -> None:
        """backup-dir/MANIFEST: the files saved here (replaced or removed) and those created."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lines = [f"saved {p}\n" for p in self.saved] + [f"created {p}\n" for p in self.created]
        (self.dir / "MANIFEST").write_text("".join(lines), encoding="utf-8")

    def rollback(self) -> list[str]:
        problems = []
        for live in self.saved:
            try:
                live.parent.mkdir(parents=True, exist_ok=True)  # a directory uninstall removed
                atomic_copy(self._copy_path(live), live)
            except OSError as exc:
                problems.append(f"rollback: {live}: {exc}")
        for live in self.created:
            with contextlib.suppress(FileNotFoundError):
                live.unlink()
        for d in reversed(self.dirs_created):
            with contextlib.suppress(OSError):
                d.rmdir()
        return problems


def atomic_copy(src: Path, dest: Path) -> None:
    """Copy SRC over DEST with a rename in DEST's directory, keeping DEST's owner and mode when
    it exists, so that a reader (Postfix, spamd) sees the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        if dest.exists():
            st = dest.stat()
            os.chmod(tmp, st.st_mode & 0o7777)
            with contextlib.suppress(PermissionError):
                os.chown(tmp, st.st_uid, st.st_gid)
        elif dest.name in SITE_SECRETS:
            # The ledger's URL may carry a Redis password: root and the service group only (the
            # milter's spamd runs as bouncegen; add amavis or debian-spamd to that group for
            # post-queue lookups).
            os.chmod(tmp, 0o640)
            with contextlib.suppress(KeyError, PermissionError):
                os.chown(tmp, 0, grp.getgrnam(SERVICE_GROUP).gr_gid)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _mkdirs(path: Path, backup: Backup) -> None:
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
        backup.dirs_created.append(d)


def write(writes: list[tuple[Path, Path]], removes: list[Path], backup: Backup) -> None:
    """Save what is about to change into BACKUP, then copy each staged file into place and remove
    the stale ones. No rollback here: the caller rolls back the whole install on any failure."""
    for _, live in writes:
        backup.save(live)
    for live in removes:
        backup.save(live)
    backup.write_manifest()
    for staged, live in writes:
        _mkdirs(live.parent, backup)
        atomic_copy(staged, live)
    for live in removes:
        with contextlib.suppress(FileNotFoundError):
            live.unlink()
