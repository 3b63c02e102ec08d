"""amavisd-new as Debian 12 ships it, in a chroot of Debian's own packages (lab/chroot.py), with
bouncegen's rendered ruleset, plugin and an SQLite ledger put in place the way docs/deploying.md
("amavisd-new hosts") tells an admin, and nothing else of amavis' configuration changed.

amavis runs in the foreground as user amavis (as Debian's amavis.service runs it: User=amavis,
``amavisd foreground``), in its own mount, network and UTS namespace: it listens on Debian's
127.0.0.1:10024 and forwards to Debian's 127.0.0.1:10025, both on the namespace's own loopback,
where Postfix's smtp-sink (the host's, joined to the namespace with nsenter) stores what amavis
passes on. The caller talks SMTP to 10024 from a thread inside the namespace (chroot.in_netns).

What the lab adds that an admin would not: the host name an installer writes (/etc/hostname,
/etc/hosts, /etc/mailname) and a log file instead of syslog (no syslog in a chroot), at
log level 3 so that amavis logs the SpamAssassin tests of every message (``spam_scan: ...
tests=[...]``). Neither changes what amavis does to a message.
"""

from __future__ import annotations

import os
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
from pathlib import Path

from .. import engines
from ..errors import EngineError
from . import chroot, daemon, debroot

SUITE = "bookworm"
PACKAGES = ("amavisd-new", "spamassassin", "libdbd-sqlite3-perl")
HOSTNAME = "mx1.example.org"
SA_DIR = "/etc/spamassassin"  # Debian's; /etc/mail/spamassassin is a symlink to it
CONF_D = "/etc/amavis/conf.d"
LOG = "/var/lib/amavis/lab.log"
PORT, FORWARD = 10024, 10025  # Debian's $inet_socket_port and $forward_method

LAB_CONF = f"""\
use strict;
# bouncegen lab only (not an admin's change): a log file instead of syslog, with the
# SpamAssassin tests of every message (log level 3).
$DO_SYSLOG = 0;
$LOGFILE = "{LOG}";
$log_level = 3;
1;
"""


def docs_block(text: str, heading: str, marker: str) -> str:
    """The fenced block of docs/deploying.md below ``heading`` whose first line contains
    ``marker``: the test applies exactly the lines the docs give an admin."""
    section = text.split(heading, 1)[1]
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", section, re.S | re.M):
        if marker in block.splitlines()[0]:
            return block
    raise EngineError(f"docs: no block with {marker!r} below {heading!r}")


class AmavisLab:
    """``lab = AmavisLab(scratch); lab.put(...); lab.start(); lab.send(...); lab.stop()``."""

    def __init__(self, scratch: Path, log=lambda s: None):
        self.root = debroot.build(SUITE, PACKAGES, "chroot", log)
        self.session = chroot.Session(self.root, scratch)
        self.scratch = Path(scratch)
        self.proc: subprocess.Popen | None = None
        self.sink: subprocess.Popen | None = None
        self.spool: Path | None = None
        for name, text in (("/etc/hostname", HOSTNAME + "\n"), ("/etc/mailname", HOSTNAME + "\n"),
                           ("/etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {HOSTNAME} mx1\n")):
            self.session.write(name, text)
        self.session.write(f"{CONF_D}/99-bouncegen-lab", LAB_CONF)

    # -- setting up, as an admin would -------------------------------------------------------------
    def conf(self, name: str) -> str:
        return self.session.read(f"{CONF_D}/{name}")

    def put_conf(self, name: str, text: str) -> None:
        self.session.write(f"{CONF_D}/{name}", text)

    def install_sa(self, rendered_sa: Path) -> list[str]:
        """Copy the rendered spamassassin/ files into Debian's SpamAssassin directory (README:
        "copy into /etc/mail/spamassassin/"). The ledger settings: 0640 root:bouncegen."""
        names = []
        for f in sorted(Path(rendered_sa).iterdir()):
            secret = f.name.endswith("_ledger.cf")
            p = self.session.write(f"{SA_DIR}/{f.name}", f.read_bytes(), mode=0o640 if secret else 0o644)
            if secret:
                os.chown(p, 0, self._gid("bouncegen"))
            names.append(f.name)
        return names

    def _gid(self, group: str) -> int:
        for line in self.session.read("/etc/group").splitlines():
            f = line.split(":")
            if f[0] == group:
                return int(f[2])
        raise EngineError(f"no group {group} in the root's /etc/group")

    def sh(self, script: str, timeout: float = 300) -> str:
        """A shell script run as root inside the root (each run sees the files of the ones before)."""
        proc = self.session.run(["sh", "-ec", script], timeout=timeout)
        if proc.returncode != 0:
            raise EngineError(f"in the {SUITE} root: {script!r}: exit {proc.returncode}: "
                              f"{(proc.stdout + proc.stderr).decode(errors='replace')[-2000:]}")
        return proc.stdout.decode(errors="replace")

    # -- running ---------------------------------------------------------------------------------
    def start(self, seconds: float = 180) -> None:
        """amavisd in the foreground as user amavis, then the sink it forwards to."""
        script = ("hostname " + HOSTNAME + " && install -d -o amavis -g amavis /run/amavis && "
                  "exec setpriv --reuid=amavis --regid=amavis --init-groups /usr/sbin/amavisd foreground")
        self.proc = self.session.start(["sh", "-c", script], stdout=subprocess.DEVNULL,
                                       stderr=open(self.scratch / "amavisd.stderr", "wb"))
        self._wait(lambda: chroot.in_netns(self.pid, lambda: _probe(PORT)), "amavisd", seconds)
        # smtp-sink drops to nobody: its directory below /tmp, where nobody reaches it.
        self.spool = Path(tempfile.mkdtemp(prefix="bouncegen-amavis-sink-", dir="/tmp"))
        os.chmod(self.spool, 0o777)
        self.sink = subprocess.Popen(
            ["nsenter", f"--net=/proc/{self.pid}/ns/net", engines.require("smtp-sink"), "-u", "nobody",
             "-d", f"{self.spool}/%H%M%S.", f"127.0.0.1:{FORWARD}", "16"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait(lambda: chroot.in_netns(self.pid, lambda: _probe(FORWARD)), "smtp-sink", 20, self.sink)

    def _wait(self, probe, what: str, seconds: float, proc: subprocess.Popen | None = None) -> None:
        proc = proc or self.proc
        assert proc is not None
        # Each probe enters the namespace (nsenter): not more often than this.
        daemon.wait_listening(proc, probe, what, self.log_tail, seconds, interval=0.3)

    def send(self, message: bytes, sender: str, rcpt: str) -> str:
        """One SMTP transaction with amavis (as Postfix's content_filter makes it); its reply."""
        def talk() -> str:
            with smtplib.SMTP("127.0.0.1", PORT, local_hostname="localhost", timeout=120) as smtp:
                smtp.ehlo()
                smtp.mail(sender)
                code, text = smtp.rcpt(rcpt)
                if code != 250:
                    return f"{code} {text.decode(errors='replace')}"
                code, text = smtp.data(message)
                return f"{code} {text.decode(errors='replace')}"
        return chroot.in_netns(self.pid, talk)

    def delivered(self) -> list[bytes]:
        """What amavis passed on, as smtp-sink stored it (one file per transaction)."""
        if self.spool is None:
            return []
        return [p.read_bytes() for p in sorted(self.spool.iterdir()) if p.is_file()]

    @property
    def pid(self) -> int:
        """amavisd's PID: its network namespace is the one the lab talks in."""
        if self.proc is None:
            raise EngineError("amavisd is not running")
        return self.proc.pid

    def log(self) -> str:
        p = self.session.path(LOG)
        return p.read_text(errors="replace") if p.exists() else ""

    def log_tail(self) -> str:
        err = self.scratch / "amavisd.stderr"
        return (self.log()[-3000:] + (err.read_text(errors="replace")[-2000:] if err.exists() else ""))

    def amavis_uids(self) -> set[int]:
        """Real and effective uids of amavis' processes (the parent and its children)."""
        uids: set[int] = set()
        for pid in [self.pid, *_children(self.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("Uid:"):
                        uids.update(int(x) for x in line.split()[1:3])
            except OSError:
                pass
        return uids

    def stop(self) -> None:
        """Stop the sink and amavis by their PIDs (process groups); the namespace, its overlay
        and its mounts go with amavis' last process."""
        daemon.stop(self.sink)
        daemon.stop(self.proc, timeout=30)
        if self.spool is not None:
            shutil.rmtree(self.spool, ignore_errors=True)


def _probe(port: int) -> None:
    socket.create_connection(("127.0.0.1", port), timeout=1).close()


def _children(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        out += [int(k) for k in kids]
        todo += [int(k) for k in kids]
    return out

