"""Relay + MX + Redis on three booted Debian 12 hosts (generator/lab/hosts.py; issue 17 point 3),
driven only as an admin would: ``apt-get install ./bouncegen_*.deb``, ``bouncegen ledger init``,
``bouncegen install`` (``--role relay`` on the relay), ``systemctl``, SMTP on port 25.

- redis1 runs Debian's redis-server, bound to its lab address with a password: the site's ledger.
- relay1 (Postfix relaying for the lab network to the MX) runs bouncegen-relay, installed by
  ``bouncegen install site.toml --role relay``.
- mx1 (Postfix, Debian's spamd) runs bouncegen-spamd and bouncegen-milter, installed by
  ``bouncegen install site.toml --reload``.

Mail sent through the relay is recorded in Redis; a bounce of it arriving at the MX is accepted,
a forged bounce (an ID nobody sent) is refused with 550; with Redis stopped, the would-be refusals
(both bounces: neither can be proven) get 4xx, ordinary mail is still accepted, and the relay
still sends (unrecorded). One container image for the three hosts (cached by package list);
each host in a network namespace of its own on the lab's bridge, halted by its nspawn's PID.
"""

from __future__ import annotations

import smtplib
import subprocess
import time

import pytest

from bouncegen.lab import hosts
from bouncegen.lab.site import example_site
from support import ROOT, need_hosts, wait_for
from test_ledger_smtp import bounce

pytestmark = [pytest.mark.smtp, pytest.mark.slow]

# The MX host's packages, Debian's python3 packages the .deb depends on, and redis-server.
PACKAGES = (*hosts.MX_PACKAGES, "redis-server", "python3-jinja2", "python3-email-validator", "python3-matplotlib",
            "python3-redis", "python3-rich", "python3-milter")
SITE = "/etc/bouncegen/site.toml"
KEY = "/etc/bouncegen/ledger.key"
PASSWORD = "Lab7redis"
BOB = "bob@example.org"


def deliver(host, sender: str, rcpt: str, message: bytes) -> tuple[int, str]:
    """One SMTP session from the lab's namespace to HOST:25: the first reply that is not 250,
    or the reply to DATA."""
    def session() -> tuple[int, str]:
        with smtplib.SMTP(timeout=90) as s:
            code, text = s.connect(host.address, 25)
            if code != 220:
                return code, text.decode()
            s.ehlo("mx.remote.test")
            for step in (lambda: s.mail(sender), lambda: s.rcpt(rcpt)):
                code, text = step()
                if code != 250:
                    return code, text.decode()
            try:
                code, text = s.data(message)
            except smtplib.SMTPDataError as exc:
                return exc.smtp_code, exc.smtp_error.decode()
            return code, text.decode()
    try:
        return host.lab.call(session)
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code, exc.smtp_error.decode()


def ordinary(subject: str, message_id: str) -> bytes:
    return (f"From: Alice <alice@example.org>\r\nTo: {BOB}\r\nSubject: {subject}\r\n"
            f"Date: Wed, 02 Dec 2026 01:00:00 +0000\r\nMessage-ID: {message_id}\r\n\r\nhello\r\n").encode()


def delivered_ids(mx) -> str:
    """Everything in bob's mailbox on the MX (mbox, /var/mail/bob)."""
    return mx.run(["sh", "-c", "cat /var/mail/bob 2>/dev/null || true"]).stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need_hosts()
    t0 = time.monotonic()
    out = tmp_path_factory.mktemp("deb")
    subprocess.run([str(ROOT / "scripts/build-deb"), str(out)], check=True, capture_output=True, timeout=900)
    (deb,) = out.glob("bouncegen_*_all.deb")
    root = hosts.image(PACKAGES)
    timings = {"deb+image": time.monotonic() - t0}
    with hosts.Lab() as lab:
        t1 = time.monotonic()
        redis, relay, mx = lab.host("redis1", root), lab.host("relay1", root), lab.host("mx1", root)
        timings["boot"] = time.monotonic() - t1
        # The ledger's Redis, reachable from the relay and the MX only with the password.
        redis.run(["sh", "-c", f"printf 'bind {redis.address}\\nprotected-mode no\\nrequirepass {PASSWORD}\\n' "
                               ">> /etc/redis/redis.conf"])
        redis.run(["systemctl", "restart", "redis-server"])
        text = example_site(relay=[{"host": "relay1.example.org"}], mx={"hosts": ["mx1.example.org"]},
                            policy={"dsn": "spamassassin"}, milter={"bouncegen": "/usr/bin/bouncegen", "timeout": 10},
                            ledger={"store": f"redis://:{PASSWORD}@{redis.address}:6379/0", "key_file": KEY})
        for host, name in ((relay, "relay1"), (mx, "mx1")):
            host.put("/var/tmp/" + deb.name, deb.read_bytes())
            host.apt = host.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", f"/var/tmp/{deb.name}"],
                                check=False, env={"DEBIAN_FRONTEND": "noninteractive"})
            assert host.apt.returncode == 0, f"{name}: apt-get install ./{deb.name}: {host.apt.stdout}{host.apt.stderr}"
            host.run(["postconf", "-e", f"myhostname = {name}.example.org", "inet_interfaces = all",
                      "inet_protocols = ipv4", f"mynetworks = 127.0.0.0/8 {hosts.NET}.0/24"])
            host.put(SITE, text, mode=0o640, owner="root:bouncegen")
        relay.run(["postconf", "-e", "mydestination = localhost", f"relayhost = [{mx.address}]"])
        mx.run(["postconf", "-e", "mydestination = example.org, localhost"])
        for user in ("bob", "alice"):
            mx.run(["useradd", "-m", user])
        for host in (relay, mx):
            host.run(["systemctl", "restart", "postfix"])
        # One site key, made once and copied to every host (docs/ledger.md).
        mx.run(["bouncegen", "ledger", "init", SITE])
        relay.put(KEY, mx.read(KEY), mode=0o600)
        for host in (relay, mx):
            host.run(["chown", "bouncegen:bouncegen", KEY])
        t2 = time.monotonic()
        relay.install = relay.run(["bouncegen", "install", SITE, "--role", "relay"], check=False)
        mx.install = mx.run(["bouncegen", "install", SITE, "--reload"], check=False)
        timings["install"] = time.monotonic() - t2
        lab.timings = timings
        lab.redis, lab.relay, lab.mx = redis, relay, mx
        yield lab


def test_package_installed_with_apt_puts_bouncegen_on_path(site):
    for host in (site.relay, site.mx):
        assert host.apt.returncode == 0, host.apt.stdout + host.apt.stderr
        assert host.run(["sh", "-c", "command -v bouncegen"]).stdout.strip() == "/usr/bin/bouncegen"
        assert host.run(["stat", "-c", "%a %U:%G", "/var/lib/bouncegen"]).stdout.strip() == "2770 root:bouncegen"


def test_relay_and_mx_installed_and_running(site):
    relay, mx = site.relay, site.mx
    assert relay.install.returncode == 0, relay.install.stdout + relay.install.stderr
    assert mx.install.returncode == 0, mx.install.stdout + mx.install.stderr
    assert relay.run(["systemctl", "is-active", "bouncegen-relay"], check=False).stdout.strip() == "active"
    for unit in ("bouncegen-milter", "bouncegen-spamd"):  # the MX role's units are not the relay's
        assert relay.run(["systemctl", "is-enabled", unit], check=False).stdout.strip() == "disabled", unit
    main = relay.run(["postconf", "-h", "smtpd_milters", "non_smtpd_milters"]).stdout
    assert main.count("inet:127.0.0.1:8898, default_action=accept") == 2, main
    ok = relay.run(["bouncegen", "milter", "--check", "--config", "/etc/bouncegen/bouncegen-relay.conf"], check=False)
    assert ok.returncode == 0 and f"ledger redis://:***@{site.redis.address}:6379/0 reachable" in ok.stdout, ok


def test_sent_through_the_relay_recorded_bounce_passes_forged_refused(site):
    relay, mx = site.relay, site.mx
    sent = f"<order.{time.time_ns()}@example.org>"
    assert deliver(relay, "alice@example.org", BOB, ordinary("order", sent))[0] == 250
    assert wait_for(lambda: sent in delivered_ids(mx), 60, 0.5), mx.journal("postfix@-")[-3000:]
    assert "recorded message-id=" + sent in relay.journal("bouncegen-relay")
    code, text = deliver(mx, "", "alice@example.org", bounce(sent, 1))
    assert code == 250, text
    code, text = deliver(mx, "", "alice@example.org", bounce(f"<forged.{time.time_ns()}@example.org>", 2))
    assert code == 550, text


def test_redis_stopped_4xx_for_would_be_refusals_only(site):
    relay, mx, redis = site.relay, site.mx, site.redis
    sent = f"<order.{time.time_ns()}@example.org>"
    assert deliver(relay, "alice@example.org", BOB, ordinary("before", sent))[0] == 250
    assert wait_for(lambda: sent in delivered_ids(mx), 60, 0.5)
    redis.run(["systemctl", "stop", "redis-server"])
    try:
        for n, mid in ((3, sent), (4, f"<forged.{time.time_ns()}@example.org>")):
            code, text = deliver(mx, "", "alice@example.org", bounce(mid, n))
            assert 400 <= code < 500, (code, text)
        assert deliver(mx, "carol@remote.test", "alice@example.org",
                       ordinary("lunch", f"<lunch.{time.time_ns()}@remote.test>").replace(
                           b"From: Alice <alice@example.org>", b"From: Carol <carol@remote.test>"))[0] == 250
        unrecorded = f"<during.{time.time_ns()}@example.org>"
        assert deliver(relay, "alice@example.org", BOB, ordinary("during", unrecorded))[0] == 250
        assert wait_for(lambda: unrecorded in delivered_ids(mx), 60, 0.5), "the relay still sends, unrecorded"
    finally:
        redis.run(["systemctl", "start", "redis-server"])


def test_uninstall_relay_role_gives_main_cf_back(site):
    relay = site.relay
    before = relay.run(["postconf", "-h", "smtpd_milters"]).stdout
    assert "8898" in before
    proc = relay.run(["bouncegen", "uninstall", "--role", "relay"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert relay.run(["postconf", "-h", "smtpd_milters", "non_smtpd_milters"]).stdout.strip() == ""
    assert relay.run(["systemctl", "is-active", "bouncegen-relay"], check=False).stdout.strip() != "active"
    print(f"\nthree-host lab timings: {site.timings}")
