"""A private Postfix on 127.0.0.1, loaded with the rendered files, for the SMTP tests and the storm.

Everything lives in one temporary directory: config_directory (the rendered main.cf lines plus
the lab's own parameters, a master.cf with only the services needed), queue_directory,
data_directory, the mailboxes and the log. The inventory's domains are virtual mailbox domains
with a few users (and postmaster); the virtual(8) agent delivers to Maildirs in the temp dir.
Nothing can leave the machine: every transport but virtual is error:, there is no relayhost, and
smtpd listens on 127.0.0.1 only. A private spamd (generator/spamd.Spamd) and bouncegen's milter
(`python -m bouncegen milter`) are started with the rendered settings.

The lab grants XCLIENT to 127.0.0.1, so a test can play any client (a foreign MX, our relay)
without leaving loopback. Postfix is started with `postfix -c DIR start` and stopped with
`postfix -c DIR stop`; the master's PID is then checked to be gone (SIGKILL as a last resort).
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from .. import engines
from ..engines.spamd import Spamd, free_port
from ..errors import EngineError
from ..renderer import render
from ..renderer.inventory import Inventory
from . import daemon
from .syslog import Rsyslog

USERS = ("alice", "bob")
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

# Only the services a receiving MX needs (and pickup, for sendmail(1) submissions of the ledger
# tests); no smtp/lmtp client, so nothing can be sent out.
MASTER_CF = """\
# bouncegen lab: smtpd on loopback only; no service that delivers off this machine
127.0.0.1:{port} inet n - {chroot} - {procs} smtpd
cleanup   unix n - n - 0 cleanup
pickup    unix n - n 60 1 pickup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
showq     unix n - n - - showq
error     unix - - n - - error
pickup    unix n - n 60 1 pickup
retry     unix - - n - - error
discard   unix - - n - - discard
virtual   unix - n n - - virtual
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def _lab_params(tmp: Path, inv: Inventory, mail_owner: str, vuid: int, vgid: int) -> dict[str, str]:
    return {
        "compatibility_level": "3.6",
        "queue_directory": str(tmp / "spool"),
        "data_directory": str(tmp / "data"),
        "mail_owner": mail_owner,
        "maillog_file": str(tmp / "maillog"),
        "maillog_file_prefixes": str(tmp),
        "syslog_name": "bouncegen-lab",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "myhostname": (inv.mx_hosts or ("mx.lab.invalid",))[0],
        "mydomain": inv.domains[0],
        "myorigin": "$mydomain",
        "mydestination": "",
        "mynetworks": "127.0.0.0/8",
        "local_recipient_maps": "",
        "alias_maps": "",
        "alias_database": "",
        "relayhost": "",
        # Nothing leaves the machine: every non-local destination is an immediate error.
        "default_transport": "error:bouncegen lab: no mail leaves this machine",
        "relay_transport": "error:bouncegen lab: no mail leaves this machine",
        "local_transport": "error:bouncegen lab: no local delivery",
        "smtp_host_lookup": "native",
        "virtual_mailbox_domains": " ".join(inv.domains),
        "virtual_mailbox_maps": f"texthash:{tmp / 'etc' / 'vmailbox'}",
        "virtual_mailbox_base": str(tmp / "mail"),
        "virtual_uid_maps": f"static:{vuid}",
        "virtual_gid_maps": f"static:{vgid}",
        "virtual_transport": "virtual",
        "smtpd_relay_restrictions": "reject_unauth_destination",
        # The tests play foreign MXs and our own relays from 127.0.0.1.
        "smtpd_authorized_xclient_hosts": "127.0.0.1",
        "smtpd_peername_lookup": "no",
        "smtpd_client_connection_count_limit": "0",
        "smtpd_client_connection_rate_limit": "0",
        "smtpd_client_message_rate_limit": "0",
        "smtpd_error_sleep_time": "0",
        "smtpd_soft_error_limit": "1000",
        "smtpd_hard_error_limit": "1000",
        "smtpd_junk_command_limit": "100000",
        "notify_classes": "",
        "biff": "no",
        "append_dot_mydomain": "no",
        "smtputf8_enable": "no",
    }


class PostfixLab:
    """``with PostfixLab(inv) as lab: lab.smtp()...``; spamd + milter + Postfix, all private."""

    def __init__(self, inv: Inventory, *, smtpd_processes: int = 100, spamd_children: int = 2,
                 extra_params: dict[str, str] | None = None, workdir: Path | None = None,
                 bouncegen: bool = True, config_subdir: str = "etc", milter_unix_socket: bool = False,
                 chroot_smtpd: bool = False, profile: str = "lean", concurrency: int = 0,
                 syslog: bool = False, relay_milter: str | None = None):
        """bouncegen=False: a host as it is before `bouncegen install` (spamd runs, but neither
        bouncegen's main.cf lines nor its milter), its config in TMP/CONFIG_SUBDIR.
        relay_milter="accept" or "tempfail": the relay-role milter (start_relay_milter()) wired
        into non_smtpd_milters on a port of its own (relay_port), with that default_action."""
        self.inv = inv
        self.bouncegen = bouncegen
        # The milter on a unix socket in the queue directory, smtpd chrooted there (Debian's way).
        self.milter_unix_socket = milter_unix_socket
        self.chroot_smtpd = chroot_smtpd
        self.config_subdir = config_subdir
        self.smtpd_processes = smtpd_processes
        self.spamd_children = spamd_children
        # "lean": the spamd of bouncegen-spamd.service (rendered spamd/), what the milter asks in
        # production; "full": the ruleset beside the stock rules (engines/spamd.py).
        self.profile = profile
        self.concurrency = concurrency  # the milter's scans in flight; 0 = spamd_children
        # The milter logs through a private rsyslogd (lab/syslog.py) into a timestamped file, as
        # on a host, instead of to stderr (milter.log keeps its stderr all the same).
        self.syslog = syslog
        self.rsyslog: Rsyslog | None = None
        self.extra_params = dict(extra_params or {})
        self.relay_port = 0
        if relay_milter:
            self.relay_port = free_port()
            self.extra_params.setdefault("non_smtpd_milters", (
                f"{{ inet:127.0.0.1:{self.relay_port}, default_action={relay_milter}, "
                "connect_timeout=5s, command_timeout=5s, content_timeout=10s }"))
        self.tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="bouncegen-lab-"))
        self._own_tmp = workdir is None
        self.port = 0
        self.milter_port = 0
        self.spamd: Spamd | None = None
        self.milter_proc: subprocess.Popen | None = None
        self.relay_proc: subprocess.Popen | None = None
        self.master_pid: int | None = None
        self.postfix = engines.require("postfix")
        self.postconf = engines.require("postconf")
        self.postmap = engines.require("postmap")

    # -- paths ---------------------------------------------------------------------------------
    @property
    def conf(self) -> Path:
        return self.tmp / self.config_subdir

    @property
    def spool(self) -> Path:
        return self.tmp / "spool"

    @property
    def rendered(self) -> Path:
        return self.tmp / "rendered"

    @property
    def milter_conf(self) -> Path:
        return self.rendered / "milter" / "bouncegen-milter.conf"

    @property
    def milter_address(self) -> str:
        if self.milter_unix_socket:
            return f"unix:{self.spool}/bouncegen/milter.sock"
        return f"inet:127.0.0.1:{self.milter_port}"

    def maillog(self) -> str:
        try:
            return (self.tmp / "maillog").read_text(errors="replace")
        except OSError:
            return ""

    def logs(self) -> list[Path]:
        """The lab's mail logs as `bouncegen report` reads them: Postfix's maillog_file and, with
        syslog=True, the milter's syslog file (flushed first)."""
        out = [self.tmp / "maillog"]
        if self.rsyslog is not None:
            self.rsyslog.flush()
            out.append(self.rsyslog.file)
        return out

    def milter_log(self) -> str:
        try:
            return (self.tmp / "milter.log").read_text(errors="replace")
        except OSError:
            return ""

    # -- life cycle ----------------------------------------------------------------------------
    def _render(self, spamd_port: int) -> None:
        inv = dataclasses.replace(self.inv, milter=dataclasses.replace(
            self.inv.milter, socket=self.milter_address, spamd=f"127.0.0.1:{spamd_port}",
            spamd_children=self.spamd_children, concurrency=self.concurrency))
        files = render.render_files(inv)
        if self.rendered.exists():
            shutil.rmtree(self.rendered)
        render.write_tree(files, self.rendered)

    def start(self) -> "PostfixLab":
        if os.geteuid() != 0:
            raise EngineError("postfix lab: starting a Postfix master needs root")
        try:
            owner = pwd.getpwnam("postfix")
        except KeyError:
            raise EngineError("postfix lab: no 'postfix' user; apt-get install postfix") from None
        nobody = pwd.getpwnam("nobody")
        try:
            os.chmod(self.tmp, 0o755)
            self.milter_port = free_port()
            self._render(spamd_port=1)
            self.spamd = Spamd(self.rendered / "spamassassin", children=self.spamd_children, profile=self.profile).start()
            self._render(spamd_port=self.spamd.port)
            self._configure(owner.pw_name, nobody.pw_uid, nobody.pw_gid)
            if self.bouncegen:
                self.start_milter()
            self._start_postfix()
        except BaseException:
            self.stop()
            raise
        return self

    def _configure(self, mail_owner: str, vuid: int, vgid: int) -> None:
        if self.bouncegen:
            engines.postfix_config_dir(self.conf, self.rendered / "postfix")
        else:
            self.conf.mkdir(parents=True, exist_ok=True)
            (self.conf / "main.cf").write_text("")
        for d in ("data", "mail"):
            (self.tmp / d).mkdir(exist_ok=True)
        shutil.chown(self.tmp / "mail", vuid, vgid)
        shutil.chown(self.tmp / "data", mail_owner, mail_owner)
        lines = []
        for dom in self.inv.domains:
            for user in USERS + ("postmaster",):
                lines.append(f"{user}@{dom} {dom}/{user}/\n")
        (self.conf / "vmailbox").write_text("".join(lines))
        self.vmailbox = self.conf / "vmailbox"
        self.port = free_port()
        (self.conf / "master.cf").write_text(MASTER_CF.format(port=self.port, procs=self.smtpd_processes,
                                                                    chroot="y" if self.chroot_smtpd else "n"))
        params = _lab_params(self.tmp, self.inv, mail_owner, vuid, vgid) | self.extra_params
        params["virtual_mailbox_maps"] = f"texthash:{self.conf / 'vmailbox'}"
        engines.run([self.postconf, "-c", str(self.conf), "-e"] + [f"{k}={v}" for k, v in params.items()], timeout=30)
        if not self.bouncegen:
            return
        proc = engines.run([self.postmap, "-c", str(self.conf), f"hash:{self.conf / 'bouncegen' / 'null_sender'}"])
        if proc.returncode != 0:
            raise EngineError(f"postmap null_sender: {proc.stderr.strip()}")

    def check(self) -> str:
        """`postfix -c DIR check` output (warnings); empty when the configuration is clean."""
        proc = engines.run([self.postfix, "-c", str(self.conf), "check"], timeout=60)
        return (proc.stdout + proc.stderr).strip()

    def _start_postfix(self) -> None:
        # The queue directory is created here; `postfix start` runs post-install create-missing,
        # which makes its subdirectories with the ownership and modes of postfix-files.
        self.spool.mkdir(exist_ok=True)
        os.chmod(self.spool, 0o755)
        proc = engines.run([self.postfix, "-c", str(self.conf), "start"], timeout=60)
        if proc.returncode != 0:
            raise EngineError(f"postfix start: {proc.stderr.strip()}\n{self.maillog()[-2000:]}")
        pidfile = self.spool / "pid" / "master.pid"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.master_pid = int(pidfile.read_text().split()[0])
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(100).startswith(b"220"):
                        return
            except (OSError, ValueError, IndexError):
                time.sleep(0.1)
        raise EngineError(f"postfix: smtpd did not answer on 127.0.0.1:{self.port}\n{self.maillog()[-2000:]}")

    def start_milter(self) -> None:
        umask = 0o022
        if self.milter_unix_socket:
            # As the unit does it: the socket's directory group postfix and setgid, the socket
            # mode 0770, so that Postfix (smtpd as user postfix) connects.
            sock_dir = self.spool / "bouncegen"
            sock_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.spool, 0o755)
            shutil.chown(sock_dir, "root", "postfix")
            os.chmod(sock_dir, 0o2750)
            umask = 0o007
        where = ["--log", "stderr"]
        if self.syslog:
            if self.rsyslog is None:
                self.rsyslog = Rsyslog(self.tmp).start()
            where = ["--log", "syslog", "--syslog-socket", str(self.rsyslog.socket)]
        log = open(self.tmp / "milter.log", "ab")
        self.milter_proc = subprocess.Popen(
            [sys.executable, "-m", "bouncegen", "milter", "--config", str(self.milter_conf), *where],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, umask=umask)
        log.close()
        daemon.wait_listening(self.milter_proc, self._unix_probe if self.milter_unix_socket else daemon.tcp(self.milter_port),
                              "bouncegen milter", self.milter_log)

    def _unix_probe(self) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.milter_address[5:])

    def start_relay_milter(self, conf: Path | None = None, umask: int = -1) -> None:
        """bouncegen's milter in the relay role: CONF, a relay/bouncegen-relay.conf whose socket
        the caller wired into smtpd_milters/non_smtpd_milters through extra_params, or by default
        the rendered one with its socket moved to relay_port (see relay_milter). ``umask``: e.g. 0
        so that the SQLite -wal/-shm files it creates stay writable for spamd's user."""
        if conf is None:
            conf = self.rendered / "relay" / "bouncegen-relay.conf"
            text = conf.read_text()
            wired = f"inet:127.0.0.1:{self.relay_port}"
            text = text.replace(f'socket = "{tomllib.loads(text)["milter"]["socket"]}"', f'socket = "{wired}"')
            if not self.relay_port or tomllib.loads(text)["milter"]["socket"] != wired:
                raise EngineError(f"postfix lab: the relay milter of {conf} is not on relay_port (relay_milter=...?)")
            conf.write_text(text)
        sock = tomllib.loads(Path(conf).read_text())["milter"]["socket"]
        port = int(sock.rpartition(":")[2])
        log = open(self.tmp / "relay-milter.log", "ab")
        self.relay_proc = subprocess.Popen(
            [sys.executable, "-m", "bouncegen", "milter", "--config", str(conf), "--log", "stderr"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, umask=umask)
        log.close()
        daemon.wait_listening(self.relay_proc, daemon.tcp(port), "bouncegen milter (relay)", self.relay_milter_log)

    def stop_relay_milter(self) -> None:
        p, self.relay_proc = self.relay_proc, None
        daemon.stop(p)

    def relay_milter_log(self) -> str:
        try:
            return (self.tmp / "relay-milter.log").read_text(errors="replace")
        except OSError:
            return ""

    def sendmail(self, message: bytes, sender: str, *rcpts: str) -> subprocess.CompletedProcess:
        """Submit locally with Postfix's sendmail(1) (pickup: the non_smtpd_milters path)."""
        return subprocess.run([str(Path(self.postfix).with_name("sendmail")), "-C", str(self.conf), "-f", sender,
                               "--", *rcpts], input=message, capture_output=True, timeout=60)

    def stop_milter(self) -> None:
        p, self.milter_proc = self.milter_proc, None
        daemon.stop(p)

    def stop_spamd(self) -> None:
        if self.spamd is not None:
            self.spamd.stop()
            self.spamd = None

    def restart_spamd(self) -> None:
        """A new spamd (new port): the milter settings are rendered again and the milter restarted."""
        self.stop_spamd()
        self.stop_milter()
        self.spamd = Spamd(self.rendered / "spamassassin", children=self.spamd_children, profile=self.profile).start()
        self._render(spamd_port=self.spamd.port)
        self.start_milter()

    def _stop_postfix(self) -> None:
        if not (self.conf / "main.cf").exists():
            return
        pid = self.master_pid
        engines.run([self.postfix, "-c", str(self.conf), "stop"], timeout=60)
        if pid is None:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                self.master_pid = None
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)  # master is a session leader: its children follow it
        self.master_pid = None

    def stop(self) -> None:
        try:
            self._stop_postfix()
        finally:
            self.stop_milter()
            self.stop_relay_milter()
            self.stop_spamd()
            if self.rsyslog is not None:
                self.rsyslog.stop()
                self.rsyslog = None
            if self._own_tmp and not os.environ.get("BOUNCEGEN_KEEP_LAB"):
                shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "PostfixLab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- observations --------------------------------------------------------------------------
    def smtp(self, timeout: float = 60) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.lab.invalid", timeout=timeout)

    def delivered(self, address: str | None = None) -> list[Path]:
        """Files in the Maildirs (all, or one address's)."""
        base = self.tmp / "mail"
        if address:
            user, dom = address.split("@")
            base = base / dom / user
        return sorted(p for p in base.rglob("*") if p.is_file() and p.parent.name in ("new", "cur"))

    def queued(self) -> int:
        return sum(1 for q in QUEUES for p in (self.spool / q).rglob("*") if p.is_file())

    def wait_queue_empty(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = self.queued()
            if n == 0:
                return 0
            time.sleep(0.1)
        return self.queued()
