"""Where bouncegen's files go on a host (or under a staging --root), and the plan of an install.

Postfix: POSTFIX_DIR/bouncegen/ holds the maps, the main.cf lines of the last install (STATE_FILE)
and the host's own values of the parameters bouncegen set (HOST_STATE), so that uninstall can
put them back. SpamAssassin: SA_DIR/72_bouncegen.* beside the site's files. The milter's settings
and the spamd profile: /etc/bouncegen/. Units: /etc/systemd/system/ (the admin's directory, as
a package would not use; bouncegen is not a package).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..facts import MAPS_SUBDIR

DEFAULT_SA_DIR = "/etc/mail/spamassassin"  # Debian: a symlink to /etc/spamassassin
DEFAULT_POSTFIX_DIR = "/etc/postfix"
STATE_FILE = "main.cf"  # copy of the installed main.cf lines, in the maps directory

# Postfix table types that postmap turns into an indexed file (postconf -m); the others are read
# as text by the daemons themselves.
INDEXED = {"hash": ".db", "btree": ".db", "cdb": ".cdb", "dbm": ".dir", "lmdb": ".lmdb", "sdbm": ".dir"}
MAP_REF = re.compile(r"\b([a-z]+):\$(?:config_directory|\{config_directory\})/" + MAPS_SUBDIR + r"/([A-Za-z0-9_.-]+)")
PARAM_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
HOST_STATE = "host-params.json"  # the host's values before bouncegen set them, in the maps directory
ETC_DIR = "/etc/bouncegen"  # the milter's settings (milter/), the spamd profile (spamd/)
UNITS_DIR = "/etc/systemd/system"
MILTER_CONF = "bouncegen-milter.conf"
MILTER_UNIT = "bouncegen-milter.service"
SERVICE_USER = SERVICE_GROUP = "bouncegen"  # the units' user and group: never root, never postfix


@dataclass
class Target:
    root: Path
    sa_dir: Path  # absolute, inside root
    pf_dir: Path  # absolute, inside root

    @classmethod
    def make(cls, root: str | Path = "/", sa_dir: str = DEFAULT_SA_DIR, postfix_dir: str = DEFAULT_POSTFIX_DIR) -> "Target":
        root = Path(root).absolute()
        return cls(root, root / sa_dir.lstrip("/"), root / postfix_dir.lstrip("/"))

    @property
    def live(self) -> bool:
        return self.root == Path("/")

    @property
    def maps_dir(self) -> Path:
        return self.pf_dir / MAPS_SUBDIR

    @property
    def etc_dir(self) -> Path:
        return self.root / ETC_DIR.lstrip("/")

    @property
    def units_dir(self) -> Path:
        return self.root / UNITS_DIR.lstrip("/")

    @property
    def milter_conf(self) -> Path:
        return self.etc_dir / MILTER_CONF


@dataclass
class Plan:
    """What the staged copy says must change, as (staged file, live file) pairs."""

    stage_sa: Path
    stage_pf: Path
    writes: list[tuple[Path, Path]] = field(default_factory=list)  # in the order they are applied
    removes: list[Path] = field(default_factory=list)
    main_cf: tuple[Path, Path] | None = None  # written last, once the services are up
    units: list[str] = field(default_factory=list)  # systemd units of the rendering, spamd first
    diff: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.writes and not self.removes and self.main_cf is None
