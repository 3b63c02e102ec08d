"""An sa-update channel archive of the rendered SpamAssassin files, for fleets of MX hosts.

sa-update (4.0.1, read from its source) installs an update archive like this:
- the version is the last run of 3 or more digits in the archive's file name (`1000001.tar.gz`);
  with --install, the checksum files are `<archive>.sha512`/`.sha256` and the signature `.asc`;
- every member is extracted flat into `<updatedir>/<channel>/` (member names may only use
  `-.,/a-zA-Z0-9_`; there is no directory handling, so the archive holds files only);
- then `<updatedir>/<channel>.cf` includes every `*.cf` and `<channel>.pre` every `*.pre`, sorted;
  any other file (a plugin `.pm`) is extracted but not included: a `.pre` must load it;
- in `.cf` and `.pre` files, `loadplugin`/`tryplugin` lines are commented out unless sa-update
  runs with --allowplugins, and `@@NAME@@` macros are replaced;
- the update is linted (`lint_check_dir`) before it replaces the previous version.

The channel carries the rules (`*.cf`) only. sa-update comments out `loadplugin` lines unless it
runs with --allowplugins, and 4.0.1 refuses that switch without --reallyallowplugins ("there should
never be need to use this option"): a channel must not be a way to run code on every MX. So the
relay-rescue plugin (`72_bouncegen.pre` and `BouncegenRescue.pm`) is installed once per host with
`bouncegen install` (or your configuration management), and the channel updates the rules.

The archive is deterministic: members sorted, mode 0644, uid/gid 0, no user names, mtime 0, ustar
format, gzip header without name or time. The same rendered files give the same bytes, so a fleet
sees a new version only when the rules changed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import engines
from ..errors import EngineError, UsageError
from ..renderer.render import SITE_SECRETS
from .source import source_dir

FIRST_VERSION = 1000001  # sa-update wants at least 3 digits; the stock channel uses SVN revisions
_MEMBER = re.compile(r"^[-.,a-zA-Z0-9_]+$")  # what sa-update's extractor accepts
_ARCHIVE = re.compile(r"^(\d{3,})\.tar\.gz$")


def channel_files(sa_dir: Path) -> list[Path]:
    """The files a channel carries: the rule files, never plugin code (see the module's doc)."""
    return sorted(f for f in sa_dir.iterdir() if f.is_file() and f.suffix == ".cf" and f.name not in SITE_SECRETS)


def plugin_files(sa_dir: Path) -> list[Path]:
    return sorted(f for f in sa_dir.iterdir() if f.is_file() and f.suffix != ".cf")


def secret_files(sa_dir: Path) -> list[Path]:
    """Rendered files with site secrets (the ledger's URL and key file): each MX host gets them
    from ``bouncegen install``, never from a channel."""
    return sorted(f for f in sa_dir.iterdir() if f.is_file() and f.name in SITE_SECRETS)


def archive_bytes(sa_dir: Path) -> bytes:
    """A deterministic .tar.gz of the rule files of SA_DIR (flat, sorted)."""
    files = channel_files(sa_dir)
    if not files:
        raise UsageError(f"{sa_dir}: no files for the channel")
    bad = [f.name for f in files if not _MEMBER.match(f.name)]
    if bad:
        raise UsageError([f"{sa_dir / n}: sa-update extracts only names of -.,a-zA-Z0-9_" for n in bad])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for f in files:
            data = f.read_bytes()
            info = tarfile.TarInfo(f.name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def existing_versions(out_dir: Path) -> list[int]:
    if not out_dir.is_dir():
        return []
    return sorted(int(m.group(1)) for f in out_dir.iterdir() if (m := _ARCHIVE.match(f.name)))


@dataclass
class Result:
    archive: Path
    version: int
    written: list[Path]
    up_to_date: bool
    members: list[str]
    plugin_files: list[str]
    secret_files: list[str]


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def sign(archive: Path, key: str) -> Path:
    """A detached ASCII-armoured signature, archive.asc, with gpg's default keyring."""
    gpg = engines.which("gpg")
    if not gpg:
        raise EngineError("gpg: not found; install it: apt-get install gnupg")
    asc = archive.with_name(archive.name + ".asc")
    proc = engines.run([gpg, "--batch", "--yes", "--local-user", key, "--armor", "--detach-sign",
                        "--output", str(asc), str(archive)])
    if proc.returncode != 0:
        raise EngineError(f"gpg --detach-sign with key {key}: {proc.stderr.strip() or proc.returncode}")
    return asc


def build(spec: str | Path, out_dir: Path, *, version: int | None = None, gpg_key: str | None = None) -> Result:
    """Write <version>.tar.gz, .sha256, .sha512 (and .asc) into OUT_DIR.

    Without VERSION: the newest archive in OUT_DIR when its content is the same, else the next
    version number after it (FIRST_VERSION in an empty directory)."""
    with contextlib.ExitStack() as stack:
        src = source_dir(spec, stack)
        sa = src / "spamassassin"
        data = archive_bytes(sa)
        members = [f.name for f in channel_files(sa)]
        plugins = [f.name for f in plugin_files(sa)]
        secrets = [f.name for f in secret_files(sa)]
    have = existing_versions(out_dir)
    if version is None:
        version = have[-1] if have else FIRST_VERSION
        if have and (out_dir / f"{version}.tar.gz").read_bytes() != data:
            version += 1
    elif version < 100:
        raise UsageError(f"--version {version}: sa-update needs a version of at least 3 digits (e.g. {FIRST_VERSION})")
    archive = out_dir / f"{version}.tar.gz"
    if have and version < have[-1] and not archive.exists():
        raise UsageError(f"--version {version}: below the newest version in {out_dir} ({have[-1]}); hosts that "
                         f"installed that one would never take this one")
    if archive.exists() and archive.read_bytes() != data:
        raise UsageError(
            f"{archive}: exists with other content; hosts that installed version {version} would never "
            f"take this one: use a higher --version (newest here: {have[-1]})"
        )
    up_to_date = archive.exists() and all(
        archive.with_name(archive.name + ext).exists() for ext in (".sha256", ".sha512"))
    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    if not up_to_date:
        _write(archive, data)
        written.append(archive)
        for ext, algo in ((".sha256", hashlib.sha256), (".sha512", hashlib.sha512)):
            path = archive.with_name(archive.name + ext)
            _write(path, f"{algo(data).hexdigest()}  {archive.name}\n".encode())
            written.append(path)
    if gpg_key and (not up_to_date or not archive.with_name(archive.name + ".asc").exists()):
        written.append(sign(archive, gpg_key))
    return Result(archive, version, written, up_to_date and not written, members, plugins, secrets)


def report(res: Result, channel: str, say: Callable[[str], None] = print, gpg_key: str | None = None) -> None:
    if res.up_to_date:
        say(f"up to date: {res.archive} already holds these files (version {res.version})")
    for path in res.written:
        say(str(path))
    say(f"members: {', '.join(res.members)}")
    if res.plugin_files:
        say(f"note: not in the channel: {', '.join(res.plugin_files)} (plugin code; sa-update will not "
            "activate plugins from a channel): install them once on each host with `bouncegen install`")
    if res.secret_files:
        say(f"note: not in the channel: {', '.join(res.secret_files)} (the ledger's address and key file, "
            "site secrets): each host gets it from `bouncegen install`")
    asc = res.archive.with_name(res.archive.name + ".asc").exists()
    verify = f"--gpgkey {gpg_key or 'KEYID'}" if asc else "--nogpg"
    say("install on each MX host (then reload spamd):")
    say(f"  sa-update {verify} --channel {channel} --install {res.archive.name}")
    say("or publish the directory over HTTP(S) as a channel: see README.md, 'A channel for many MX hosts'")
