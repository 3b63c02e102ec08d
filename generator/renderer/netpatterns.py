"""Relay addresses and ranges as regex fragments, for the Postfix tables and the SpamAssassin rules.

A fragment matches exactly the addresses of the network in the textual forms MTAs write in
Received: lines, and nothing else; callers add the token boundaries (``[``…``]``, or a
non-address character on each side) so that 192.0.2.25 never matches inside 192.0.2.251.

- IPv4: any range of /16 or narrower (the inventory refuses wider): fixed octets, then the
  partial octet as an alternation of its decimal values, then free octets.
- IPv6: single addresses only, in the spellings seen in Received: lines (RFC 5952 compressed,
  fully written, and without leading zeros). A range cannot be matched robustly by a regex
  (``::`` may swallow any run of zero groups), so ipv6() returns None for it and the caller
  leaves that evidence to the SpamAssassin plugin, which parses addresses.
"""

from __future__ import annotations

import ipaddress

from . import escape

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_OCTET_ERE = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"


def ipv4(net: ipaddress.IPv4Network, dialect: str) -> str:
    lit = (lambda s: escape.re_for(s, dialect))
    octet = _OCTET_ERE if dialect == "regexp" else _OCTET
    group = "(" if dialect == "regexp" else "(?:"
    first = [int(o) for o in str(net.network_address).split(".")]
    last = [int(o) for o in str(net.broadcast_address).split(".")]
    parts = []
    for i in range(4):
        if first[i] == last[i]:
            parts.append(lit(str(first[i])))
        elif first[i] == 0 and last[i] == 255:
            parts.append(octet)
        else:
            parts.append(group + "|".join(str(v) for v in range(first[i], last[i] + 1)) + ")")
    return lit(".").join(parts)


def ipv6_spellings(addr: ipaddress.IPv6Address) -> list[str]:
    full = addr.exploded
    short = ":".join(g.lstrip("0") or "0" for g in full.split(":"))
    return sorted({addr.compressed, full, short})


def ipv6(net: ipaddress.IPv6Network, dialect: str) -> str | None:
    if net.num_addresses != 1:
        return None
    group = "(" if dialect == "regexp" else "(?:"
    return group + "|".join(escape.re_for(s, dialect) for s in ipv6_spellings(net.network_address)) + ")"


def address_fragment(net, dialect: str) -> str | None:
    return ipv4(net, dialect) if net.version == 4 else ipv6(net, dialect)
