"""The example site, defined once for the lab, the storm, the benchmarks and the tests.

It is the site of ``inventory.example.toml`` (a test checks that both describe the same domains,
relays and MX hosts): two domains, a relay with an IPv4 and an IPv6 address, a relay pool with
ranges, and a glob relay without addresses. A test that needs another policy, milter or ledger
asks for it with keyword overrides instead of writing an inventory of its own:

    example_site(policy={"dsn": "spamassassin"}, milter={"timeout": 5})
"""

from __future__ import annotations

import copy
import json

EXAMPLE: dict = {
    "site": {"domains": ["example.org", "example.net"]},
    "relay": [
        {"host": "smtp1.out.example.org", "addresses": ["192.0.2.25", "2001:db8:25::25"]},
        {"host": "smtp2.out.example.org", "addresses": ["198.51.100.0/28", "2001:db8:26::/48"]},
        {"host": "mailout-?.example.net"},
    ],
    "mx": {"hosts": ["mx1.example.org", "mx2.example.org"]},
}

# The narrower site many SMTP tests use: our first relay, known by its IPv4 address only.
ONE_RELAY = [{"host": "smtp1.out.example.org", "addresses": ["192.0.2.25"]}]
MX1 = {"hosts": ["mx1.example.org"]}

# A foreign MTA and our first relay as SMTP clients (address, verified name) in the lab.
FOREIGN = ("203.0.113.7", "mx.foreign.test")
OUR_RELAY = ("192.0.2.25", "smtp1.out.example.org")


def _value(v) -> str:
    # JSON's strings, numbers, booleans and arrays are valid TOML for the values an inventory holds.
    return json.dumps(v, ensure_ascii=False)


def example_site(**tables) -> str:
    """TOML text of the example site. Each keyword names a table: a dict is merged into the
    example's table of that name (``relay`` is replaced, it is an array of tables); None removes
    the table."""
    data = copy.deepcopy(EXAMPLE)
    for name, value in tables.items():
        if value is None:
            data.pop(name, None)
        elif isinstance(value, dict):
            data.setdefault(name, {}).update(value)
        else:
            data[name] = value
    lines: list[str] = []
    for name, table in data.items():
        rows = table if isinstance(table, list) else [table]
        for row in rows:
            lines.append(f"[[{name}]]" if isinstance(table, list) else f"[{name}]")
            lines += [f"{key} = {_value(val)}" for key, val in row.items()]
    return "\n".join(lines) + "\n"
