"""The MX milter in-process: its decision (service.decide, a pure function) row by row, and its
pymilter callbacks driven by pymilter's own test context (Milter.testctx.TestCtx, which calls
them in libmilter's order), against a spamd stand-in on loopback that answers SPAMC/1.5 SYMBOLS
with the rules a row names. No Postfix, no engine: seconds (make test-fast). The same milter
through a private Postfix and the real spamd is test_smtp.py."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import threading

import pytest

from bouncegen.facts import LEDGER_UNAVAIL
from bouncegen.lab.site import example_site
from bouncegen.milter import Settings, decide
from bouncegen.milter.service import NO_VERDICT, SPAMD_TIME_LIMIT
from bouncegen.renderer import inventory, render

try:
    import Milter
    from Milter.testctx import TestCtx as MilterContext

    from bouncegen.milter import mx
except ImportError:  # pymilter is the optional [milter] extra; make .venv/.test-deps installs it
    if os.environ.get("CI"):
        raise
    pytest.skip("pymilter missing", allow_module_level=True)

OURS = "192.0.2.25"        # our relay (example_site's first relay address)
FOREIGN = "198.51.100.7"   # a bouncer somewhere


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> Settings:
    tmp = tmp_path_factory.mktemp("mx")
    inv_path = tmp / "site.toml"
    inv_path.write_text(example_site(site={"domains": ["example.org"]}, mx=None,
                                     relay=[{"host": "smtp1.out.example.org", "addresses": [OURS]}],
                                     milter={"exempt_networks": ["10.0.0.0/8"]}))
    files = render.render_files(inventory.load(inv_path))
    conf = tmp / "bouncegen-milter.conf"
    conf.write_text(files["milter/bouncegen-milter.conf"])
    return Settings.load(conf)


# -- the decision ----------------------------------------------------------------------------------

def test_decide_rows(cfg):
    verdict_rule = max(cfg.scores, key=lambda r: cfg.scores[r])
    big = cfg.scores[verdict_rule]
    assert big >= cfg.threshold  # the "block" policy: one verdict refuses
    rows = [
        # (rules spamd reported, action, SMTP code)
        ((), "accept", None),
        (("BAYES_99", "URIBL_BLACK"), "accept", None),            # stock rules never count here
        ((verdict_rule,), "reject", "550"),
        ((verdict_rule, "BAYES_00"), "reject", "550"),
        ((LEDGER_UNAVAIL,), "accept", None),                      # an outage alone refuses nothing
        ((verdict_rule, LEDGER_UNAVAIL), "tempfail", "451"),      # a verdict without the proof: retry
        ((verdict_rule, SPAMD_TIME_LIMIT), "tempfail", "451"),    # a scan cut short: no verdict
    ]
    for tests, action, code in rows:
        d = decide(tests, cfg)
        assert (d.action, d.reply and d.reply[0]) == (action, code), tests
        assert d.refused == (action != "accept")
    d = decide((verdict_rule,), cfg)
    assert d.points == big and d.rules == [verdict_rule]
    assert d.reply == ("550", "5.7.1", f"{cfg.reject_text} ({verdict_rule})")
    assert decide((SPAMD_TIME_LIMIT,), cfg).reason == NO_VERDICT
    assert decide((verdict_rule, LEDGER_UNAVAIL), cfg).reply == ("451", "4.7.1", cfg.tempfail_text)


def test_decide_adds_points_up_to_the_threshold(cfg):
    small = Settings(**{**cfg.__dict__, "scores": {"BG_A": 2.5, "BG_B": 2.5}, "threshold": 5.0})
    assert decide(("BG_A",), small).action == "accept"
    d = decide(("BG_B", "BG_A"), small)
    assert (d.action, d.points, d.rules) == ("reject", 5.0, ["BG_A", "BG_B"])


# -- the callbacks, through pymilter's test context --------------------------------------------------

class StandInSpamd:
    """A loopback listener that answers every SPAMC/1.5 SYMBOLS request with the given rules and
    keeps the requests it got (what the milter sent spamd). Stopped by the test that starts it."""

    def __init__(self, rules: tuple[str, ...]):
        self.rules = rules
        self.requests: list[bytes] = []
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                self.requests.append(data)
                body = ",".join(self.rules).encode()
                conn.sendall(b"SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\nSpam: True ; 9.0 / 5.0\r\n\r\n" % len(body) + body)

    def close(self):
        with contextlib.suppress(OSError):
            self.srv.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the serving thread
        self.srv.close()
        self.thread.join(5)
        assert not self.thread.is_alive()


@contextlib.contextmanager
def milter_with(cfg: Settings, rules: tuple[str, ...] | None):
    """A MilterContext (pymilter's TestCtx) whose factory makes bouncegen's milter, spamd the stand-in answering RULES
    (None: nothing listens on spamd's port: a refused connection)."""
    spamd = StandInSpamd(rules) if rules is not None else None
    if spamd is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again: a port where nothing listens
    else:
        port = spamd.port
    settings = Settings(**{**cfg.__dict__, "spamd_host": "127.0.0.1", "spamd_port": port, "timeout": 3.0})
    shared = mx.Shared(settings)
    Milter.factory = lambda: mx.BouncegenMilter(shared)
    ctx = MilterContext()
    ctx._setsymval("i", "4QTEST1")
    ctx._setsymval("j", "mx1.example.org")
    try:
        yield ctx, spamd
    finally:
        if spamd is not None:
            spamd.close()
        Milter.factory = Milter.Milter


BOUNCE = (b"From: MAILER-DAEMON@bouncer.example.net\r\nTo: alice@example.org\r\n"
          b"Subject: Undelivered Mail Returned to Sender\r\nX-Envelope-From: <forged@example.org>\r\n\r\n"
          b"This is the mail system at host bouncer.example.net.\r\n")


def connect(ctx, host, ip):
    assert ctx._negotiate() in (Milter.CONTINUE, Milter.ALL_OPTS)
    ctx._stage = Milter.M_CONNECT
    try:
        return Milter.connect_callback(ctx, host, socket.AF_INET, (ip, 25025))  # (address, port) as libmilter gives it
    finally:
        ctx._stage = None


def hello(ctx, helo):
    ctx._stage = Milter.M_HELO
    try:
        return ctx._priv.hello(helo)
    finally:
        ctx._stage = None


def session(ctx, *, host="bouncer.example.net", ip=FOREIGN, sender="", msg=BOUNCE):
    """One SMTP transaction through TestCtx's steps, in libmilter's order. A @noreply step
    answers NOREPLY (libmilter sends the next step without waiting), which TestCtx's own
    _connect and _feedFile take for a refusal: here both mean "go on"."""
    go_on = (Milter.CONTINUE, Milter.NOREPLY)
    head, body = msg.split(b"\r\n\r\n", 1)
    fields = [line.split(b":", 1) for line in head.split(b"\r\n")]
    steps = [lambda: connect(ctx, host, ip), lambda: hello(ctx, host),
             lambda: ctx._envfrom(f"<{sender}>"), lambda: ctx._envrcpt("<alice@example.org>"), ctx._data,
             *[lambda n=n, v=v: ctx._header(n.decode(), v.strip().decode()) for n, v in fields],
             ctx._eoh, lambda: ctx._feed_body(io.BytesIO(body))]
    for step in steps:
        rc = step()
        if rc not in go_on:
            return rc
    return ctx._eom()


def test_a_verdict_is_refused_with_550_and_its_rules(cfg, caplog):
    rule = max(cfg.scores, key=lambda r: cfg.scores[r])
    with milter_with(cfg, (rule, "BAYES_50")) as (ctx, spamd), caplog.at_level(logging.INFO, "bouncegen"):
        assert session(ctx) == Milter.REJECT
        assert ctx._reply[0:2] == ("550", "5.7.1") and rule in ctx._reply[2]
        sent = spamd.requests[0]
    # spamd saw the envelope sender from the session (the message's own copy dropped) and the hop
    head = sent.split(b"\r\n\r\n", 1)[1]
    assert head.startswith(b"X-Envelope-From: <>\r\nReceived: from bouncer.example.net (bouncer.example.net [198.51.100.7])")
    assert b"forged@example.org" not in sent
    assert any("4QTEST1" in r.message and "verdict=reject" in r.message for r in caplog.records)


def test_no_verdict_is_accepted(cfg):
    with milter_with(cfg, ("BAYES_99",)) as (ctx, _):
        assert session(ctx) == Milter.ACCEPT
        assert ctx._reply is None


def test_ledger_outage_with_a_verdict_is_a_tempfail(cfg):
    rule = max(cfg.scores, key=lambda r: cfg.scores[r])
    with milter_with(cfg, (rule, LEDGER_UNAVAIL)) as (ctx, _):
        assert session(ctx) == Milter.TEMPFAIL
        assert ctx._reply == ("451", "4.7.1", cfg.tempfail_text)


def test_spamd_down_is_a_tempfail_never_an_accept(cfg):
    with milter_with(cfg, None) as (ctx, _):
        assert session(ctx) == Milter.TEMPFAIL
        assert ctx._reply[0] == "451"


@pytest.mark.parametrize("host, ip, why", [
    ("smtp1.out.example.org", OURS, "our relay"),
    ("anything.example.com", "10.1.2.3", "exempt network"),
    ("localhost", "127.0.0.1", "local submission"),
])
def test_exempt_clients_are_accepted_at_mail_from_without_spamd(cfg, host, ip, why):
    with milter_with(cfg, None) as (ctx, _):  # spamd down: only an exemption accepts
        assert session(ctx, host=host, ip=ip) == Milter.ACCEPT, why


def test_authenticated_clients_are_accepted(cfg):
    with milter_with(cfg, None) as (ctx, _):
        ctx._setsymval("{auth_authen}", "alice")
        assert session(ctx) == Milter.ACCEPT


def test_only_scan_limit_bytes_go_to_spamd(cfg):
    small = Settings(**{**cfg.__dict__, "scan_limit": 1024})
    big = BOUNCE + b"x" * 70 + b"\r\n" + (b"y" * 998 + b"\r\n") * 40
    with milter_with(small, ("BAYES_50",)) as (ctx, spamd):
        assert session(ctx, msg=big) == Milter.ACCEPT
        sent = spamd.requests[0]
    message = sent.split(b"\r\n\r\n", 1)[1]
    prologue = message.index(b"From: MAILER-DAEMON")
    assert len(message) - prologue <= 1024 + 2  # headers and body kept, plus the blank line


def test_rcpt_and_data_events_only_with_batv(cfg):
    """pymilter negotiates the callbacks a class overrides: without [batv] the milter asks Postfix
    for no RCPT or DATA events (a round trip less per recipient); BatvMilter asks for both."""
    protocols = {}
    for kind in (mx.BouncegenMilter, mx.BatvMilter):
        shared = mx.Shared(cfg)
        Milter.factory = lambda kind=kind, shared=shared: kind(shared)
        try:
            ctx = MilterContext()
            ctx._negotiate()
            protocols[kind] = ctx._protocol
        finally:
            Milter.factory = Milter.Milter
    assert protocols[mx.BouncegenMilter] & Milter.P_NORCPT and protocols[mx.BouncegenMilter] & Milter.P_NODATA
    assert not protocols[mx.BatvMilter] & Milter.P_NORCPT and not protocols[mx.BatvMilter] & Milter.P_NODATA
