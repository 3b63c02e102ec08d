"""The milter's settings (rendered from the inventory), its exemptions, and its spamd client
against the real spamd. The SMTP dialogues through Postfix are in test_smtp.py."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from bouncegen import cli, engines, milter
from bouncegen.engines.spamd import Spamd, free_port
from bouncegen.lab.site import example_site
from bouncegen.renderer import inventory, render


def site(scores: str = "block", **milter_table) -> str:
    """example.org only, no [mx]; our first relay with an IPv4 address and an IPv6 range."""
    relay = [{"host": "smtp1.out.example.org", "addresses": ["192.0.2.25", "2001:db8:26::/48"]},
             {"host": "mailout-?.example.net"}]
    return example_site(site={"domains": ["example.org"]}, relay=relay, mx=None, policy={"scores": scores},
                        milter={"exempt_networks": ["10.0.0.0/8"], **milter_table})


def settings(tmp_path, scores="block") -> milter.Settings:
    inv_path = tmp_path / "site.toml"
    inv_path.write_text(site(scores))
    files = render.render_files(inventory.load(inv_path))
    conf = tmp_path / "bouncegen-milter.conf"
    conf.write_text(files["milter/bouncegen-milter.conf"])
    return milter.Settings.load(conf)


def test_settings_rendered_from_the_inventory(tmp_path):
    s = settings(tmp_path)
    assert s.socket == "inet:127.0.0.1:8897" and (s.spamd_host, s.spamd_port) == ("127.0.0.1", 10783)
    assert s.concurrency == 2  # [milter] concurrency = 0: as many as spamd_children (default 2)
    assert s.scan_limit == 512 * 1024
    assert s.threshold == 5.0 and s.scores["BG_BOUNCE"] >= 5.0
    assert all(name.startswith("BG_") for name in s.scores)
    assert "backscatter" in s.reject_text and "%" not in s.reject_text


@pytest.mark.parametrize("host,addr,exempt", [
    ("unknown", "192.0.2.25", True),           # our relay by address
    ("unknown", "2001:db8:26::7", True),        # inside a relay's IPv6 range
    ("unknown", "10.1.2.3", True),              # [milter] exempt_networks
    ("mailout-3.example.net", "203.0.113.9", True),   # relay known by (verified) name only
    ("unknown", "192.0.2.251", False),          # contains our address, is not it
    ("smtp1.out.example.org.relay.test", "203.0.113.5", False),  # look-alike name
    ("mailout-33.example.net", "203.0.113.9", False),  # ? is one character
    ("[192.0.2.25]", "203.0.113.9", False),     # an unverified name is never trusted
])
def test_exempt_clients(tmp_path, host, addr, exempt):
    assert settings(tmp_path).exempt_client(host, addr) is exempt


def test_verdict_counts_only_the_rulesets_points(tmp_path):
    s = settings(tmp_path)
    assert milter.verdict(("BG_BOUNCE", "ALL_TRUSTED", "BAYES_99"), s.scores) == (5.0, ["BG_BOUNCE"])
    assert milter.verdict(("HTML_MESSAGE", "__BG_DSN_REPORT"), s.scores)[0] == 0
    tag = settings(tmp_path, "tag")
    assert milter.verdict(tuple(tag.scores), tag.scores)[0] < tag.threshold or len(tag.scores) > 49


def test_bad_milter_table_is_an_inventory_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[site]\ndomains = ["example.org"]\n[[relay]]\nhost = "a.example.org"\n'
                   '[milter]\nsocket = "tcp:x"\nspamd = "nohost"\ntimeout = 0\nexempt_networks = ["x"]\nfoo = 1\n')
    assert cli.main(["render", str(bad), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[2] for line in err] == [
        "milter.foo", "milter.socket", "milter.spamd", "milter.timeout", "milter.exempt_networks[0]"]
    assert not (tmp_path / "out").exists()


def test_unreadable_settings_are_a_usage_error(tmp_path):
    p = tmp_path / "x.conf"
    p.write_text("[milter]\nsocket = 1\n")
    with pytest.raises(Exception) as exc:
        milter.Settings.load(p)
    assert "not a bouncegen milter settings file" in str(exc.value)


@pytest.mark.spamassassin
def test_spamd_client_against_the_real_spamd(tmp_path):
    if not engines.which("spamd"):
        pytest.fail("spamd missing") if __import__("os").environ.get("CI") else pytest.skip("spamd missing")
    inv_path = tmp_path / "site.toml"
    inv_path.write_text(site())
    render.write_tree(render.render_files(inventory.load(inv_path)), tmp_path / "out")
    from bouncegen.lab import mail as samples
    with Spamd(tmp_path / "out" / "spamassassin") as d:
        tests = milter.spamd_symbols(samples.forged_dsn(), "127.0.0.1", d.port, 60)
        assert "BG_BOUNCE" in tests
        assert "BG_BOUNCE" not in milter.spamd_symbols(samples.ordinary(), "127.0.0.1", d.port, 60)
    with pytest.raises(milter.SpamdError):  # stopped: an error, never an empty verdict
        milter.spamd_symbols(samples.forged_dsn(), "127.0.0.1", d.port, 5)
    with pytest.raises(milter.SpamdError):
        milter.spamd_symbols(samples.forged_dsn(), "127.0.0.1", free_port(), 5)


# -- --check, the log format -------------------------------------------------------------------
def _conf(tmp_path, milter_port: int, spamd_port: int):
    """The rendered settings with the milter and spamd on the given loopback ports."""
    inv_path = tmp_path / "site.toml"
    inv_path.write_text(site(socket=f"inet:127.0.0.1:{milter_port}", spamd=f"127.0.0.1:{spamd_port}"))
    render.write_tree(render.render_files(inventory.load(inv_path)), tmp_path / "out")
    return tmp_path / "out"


def _need_pymilter():
    try:
        import Milter  # noqa: F401
    except ImportError:
        pytest.fail("pymilter missing") if os.environ.get("CI") else pytest.skip("pymilter missing")


def _start_milter(conf, *extra):
    return subprocess.Popen([sys.executable, "-m", "bouncegen", "milter", "--config", str(conf), *extra],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop(proc):
    proc.terminate()
    try:
        return proc.communicate(timeout=15)[0].decode()
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0].decode()


def test_check_names_what_failed(tmp_path, capsys):
    """One line each: the settings, spamd unreachable, nothing on the milter socket; exit != 0."""
    bad = tmp_path / "bad.conf"
    bad.write_text("[milter]\n")
    assert cli.main(["milter", "--config", str(bad), "--check"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: not a bouncegen milter settings file"), err
    out = _conf(tmp_path, free_port(), free_port())
    assert cli.main(["milter", "--config", str(out / "milter/bouncegen-milter.conf"), "--check", "--timeout", "2"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: spamd at 127.0.0.1:") and "refused" in err[0], err


@pytest.mark.spamassassin
def test_check_passes_with_spamd_and_the_milter_and_fails_on_a_wrong_listener(tmp_path, capsys):
    """--check against the real spamd and the real milter (a libmilter handshake on its socket);
    then against a socket where something that is not a milter listens."""
    if not engines.which("spamd"):
        pytest.fail("spamd missing") if os.environ.get("CI") else pytest.skip("spamd missing")
    _need_pymilter()
    port = free_port()
    with Spamd(_conf(tmp_path, port, 1) / "spamassassin") as d:
        conf = _conf(tmp_path, port, d.port) / "milter/bouncegen-milter.conf"
        assert cli.main(["milter", "--config", str(conf), "--check", "--timeout", "2"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: milter at inet:127.0.0.1:{port}: ") and "\n" not in err, err
        proc = _start_milter(conf, "--log", "stderr")
        try:
            from bouncegen.milter import health
            line = health.wait_ready(conf, 20, alive=lambda: proc.poll() is None)
            assert cli.main(["milter", "--config", str(conf), "--check"]) == 0
            out = capsys.readouterr().out.splitlines()
            assert len(out) == 1 and out[0].startswith(f"OK: {conf}: spamd 127.0.0.1:{d.port} answers PING, "
                                                       f"milter inet:127.0.0.1:{port} negotiated"), out
            assert line.startswith("OK: ")
        finally:
            log = _stop(proc)
        assert f"starting: listening on inet:127.0.0.1:{port}" in log
        # Something else on the port (an HTTP server, say): the handshake fails.
        with socket.socket() as srv:
            # The milter's own connections may leave the port in TIME_WAIT for a while.
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind(("127.0.0.1", port))
            srv.listen()
            srv.settimeout(5)

            def answer():
                with contextlib.suppress(OSError):
                    c, _ = srv.accept()
                    c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                    time.sleep(0.5)
                    c.close()
            t = threading.Thread(target=answer)
            t.start()
            assert cli.main(["milter", "--config", str(conf), "--check", "--timeout", "2"]) == 1
            t.join()
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: milter at inet:127.0.0.1:{port}: not a milter packet"), err


def test_port_taken_exits_1_with_one_line(tmp_path):
    _need_pymilter()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _start_milter(_conf(tmp_path, port, 783) / "milter/bouncegen-milter.conf", "--log", "stderr")
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 1, out
    assert f"error: cannot serve inet:127.0.0.1:{port}" in out


def test_log_line_format_and_syslog_facility(tmp_path):
    """The decision line as it reaches syslog: facility mail (2), info (6) -> <22>, warning -> <20>;
    tag bouncegen-milter[PID]; the queue ID first."""
    import os

    from bouncegen.milter import log
    path = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        logger = log.setup("syslog", path)
        logger.info(log.decision("4ZfK2L3xQmz9v", ("mx.foreign.test", "203.0.113.7"), "reject", points=5.0,
                                 rules=["BG_BOUNCE"], ms=212.4, tests=("BG_BOUNCE", "BG_DSN_REPORT")))
        logger.warning(log.decision("4ZfK2L3xQmz9w", ("unknown", "203.0.113.8"), "tempfail",
                                    reason="spamd at 127.0.0.1:783: Connection refused", ms=0.4))
        s.settimeout(5)
        first, second = s.recv(4096).decode(), s.recv(4096).decode()
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    assert first == (f"<22>bouncegen-milter[{os.getpid()}]: 4ZfK2L3xQmz9v: client=mx.foreign.test[203.0.113.7], "
                     "verdict=reject, points=5.0, rules=BG_BOUNCE, ms=212, tests=BG_BOUNCE,BG_DSN_REPORT\x00")
    assert second == (f"<20>bouncegen-milter[{os.getpid()}]: 4ZfK2L3xQmz9w: client=unknown[203.0.113.8], "
                      "verdict=tempfail, reason=spamd at 127.0.0.1:783: Connection refused, ms=0\x00")
    assert logging.getLogger("bouncegen.milter").propagate is False


def test_syslog_without_a_syslog_socket_falls_back_to_stderr(tmp_path, capsys):
    from bouncegen.milter import log
    logger = log.setup("syslog", str(tmp_path / "no-such-socket"))
    logger.info("4ZfK2L3xQmz9v: client=unknown[203.0.113.8], verdict=accept, reason=auth, ms=0")
    err = capsys.readouterr().err.splitlines()
    for h in list(logger.handlers):
        logger.removeHandler(h)
    assert err[0] == f"warning: {tmp_path / 'no-such-socket'}: no syslog socket; logging to stderr"
