"""Every default of bouncegen in one table: the inventory's optional keys, the ledger's limits and
time-out, the relay milter's socket, what the milter assumes for a key its settings file lacks.
The code imports them; the templates get them as ``defaults`` (render.py), so a rendered file
(the relay's settings, the SpamAssassin ledger settings, the Perl plugins' Defaults module)
carries the same value. Why each value
is what it is: docs/smtp-time.md, docs/deploying.md and docs/ledger.md."""

from __future__ import annotations

from typing import Any

# [policy]: docs/inventory.md.
POLICY: dict[str, Any] = {
    "dsn": "reject",
    "map_type": "pcre",
    "scores": "block",
    # The points one verdict adds post-queue under scores = "block": the host's level at which
    # it acts. SpamAssassin's required_score 5 (facts.THRESHOLD) for spamc/spamd; amavisd-new acts
    # at its $sa_kill_level_deflt, 6.31 as Debian 12 ships it. Never a threshold of the milter's
    # own: it refuses on one verdict whatever the points.
    "points": 5.0,
}

# [milter]: docs/smtp-time.md (ports, sizing) and docs/deploying.md (the socket).
MILTER: dict[str, Any] = {
    "socket": "inet:127.0.0.1:8897",  # no well-known milter uses 8897
    # The relay role's milter (bouncegen install --role relay): beside the MX milter's 8897, so
    # one host can run both (8894 is openarc's).
    "relay_socket": "inet:127.0.0.1:8898",
    "spamd": "127.0.0.1:10783",       # the dedicated lean spamd (bouncegen-spamd.service), not 783
    "timeout": 120,                   # seconds for spamd to answer before the milter tempfails
    # One child per core of a 2-core MX; fixed, not os.cpu_count(): rendered output must not
    # depend on the machine that renders it.
    "spamd_children": 2,
    "concurrency": 0,                 # scans in flight; 0 = as many as spamd has children
    "scan_limit_kb": 512,             # KB of a message spamd judges; a longer one on this prefix
    "exempt_networks": [],            # clients never checked besides our relays (e.g. mynetworks)
    # What the unit runs (ExecStart=): where the Debian package, the supported install, puts it.
    # Fixed, never the path of the running bouncegen: rendered output must not depend on the
    # machine or venv that renders it. A pip or venv install sets [milter] bouncegen.
    "bouncegen": "/usr/bin/bouncegen",
}

# The relay role's milter, by default ([milter] relay_socket).
RELAY_MILTER_SOCKET = MILTER["relay_socket"]

# [ledger]: docs/ledger.md.
LEDGER_DAYS = 30          # how long a recorded Message-ID counts
LEDGER_MAX_DAYS = 365
LEDGER_TIMEOUT = 2.0      # seconds for one store operation, connection included (Python and Perl)
REDIS_PORT = 6379
REDIS_PREFIX = "bouncegen:sent:"  # a Redis entry's key: this prefix and the entry's hex

# [batv]: docs/batv.md.
BATV_DAYS = 7             # how long a tag is valid: the draft's suggestion, Exim's fixed validity
BATV_MAX_DAYS = 30        # a tag replayable for longer than a month proves little

# [dkim]: docs/rescue.md.
DKIM_MAX_AGE_DAYS = 30    # how many days after its t= a returned signature of ours counts
DKIM_MAX_MAX_AGE_DAYS = 365


def for_templates() -> dict:
    return {"milter": dict(MILTER), "relay_milter_socket": RELAY_MILTER_SOCKET,
            "ledger_days": LEDGER_DAYS, "ledger_max_days": LEDGER_MAX_DAYS, "ledger_timeout": LEDGER_TIMEOUT,
            "redis_port": REDIS_PORT, "redis_prefix": REDIS_PREFIX, "batv_days": BATV_DAYS, "batv_max_days": BATV_MAX_DAYS,
            "dkim_max_age_days": DKIM_MAX_AGE_DAYS, "dkim_max_max_age_days": DKIM_MAX_MAX_AGE_DAYS}
