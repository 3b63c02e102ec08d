"""Received paths of the quoted originals.

GENUINE(...) paths: the original really left through one of our relays (corpus/inventory.toml), so
the bounce or reply answering it is legitimate. Each kind tests one spelling of the evidence.
FOREIGN(...) paths: the original was spam with a forged sender; the hops never involve our
relays, though some try hard to look as if they did.
Every path is a list of complete Received headers, newest first.
"""

from __future__ import annotations

from .common import (RNG, qid_postfix, rfc_name, hop_exchange, hop_exim, hop_postfix, hop_qmail_invoked, hop_qmail_net,
                     hop_sendmail, later, hop_courier)

CLIENTS = [("alice-laptop", "203.0.113.201"), ("[192.0.2.130]", "192.0.2.130"), ("BOB-PC", "203.0.113.188"),
           ("macbook-carol.home.test", "203.0.113.61")]


def genuine(kind: str, by: str, t, *, rcpt: str | None = None, internal: bool = False) -> list[str]:
    """Hops of mail we really sent, as recorded by the receiving host `by`.

    internal=True also keeps our relay's own submission hop (many sites strip it).
    """
    t0 = later(t, -RNG.randrange(2, 9))
    hops: list[str] = []
    if kind == "smtp1-name":          # name + IPv4, Postfix format
        hops.append(hop_postfix("smtp1.out.example.org", "smtp1.out.example.org", "192.0.2.25", by, t, rcpt=rcpt))
    elif kind == "smtp1-name-trailing-dot":   # Gmail/Exchange style rDNS with a trailing dot
        hops.append(f"Received: from smtp1.out.example.org (smtp1.out.example.org. [192.0.2.25])\n"
                    f"        by {by} with ESMTPS id {RNG.randrange(10**9, 10**10)}\n        for <{rcpt}>; "
                    f"{t.strftime('%a, %d %b %Y %H:%M:%S %z')}")
    elif kind == "smtp1-upper":       # case does not matter in host names
        hops.append(hop_sendmail("SMTP1.OUT.EXAMPLE.ORG", "SMTP1.Out.Example.Org", "192.0.2.25", by, t, rcpt=rcpt))
    elif kind == "smtp1-ipv4-only":   # a misconfigured HELO; only the address identifies the relay
        hops.append(hop_postfix("localhost.localdomain", "unknown", "192.0.2.25", by, t, rcpt=rcpt))
    elif kind == "smtp2-name":
        hops.append(hop_postfix("smtp2.out.example.org", "smtp2.out.example.org", "198.51.100.6", by, t, rcpt=rcpt))
    elif kind == "smtp2-range":       # an address inside 198.51.100.0/28, HELO is a bare literal
        hops.append(hop_postfix("[198.51.100.13]", "unknown", "198.51.100.13", by, t, rcpt=rcpt))
    elif kind == "smtp2-range-exim":
        hops.append(hop_exim("outbound-node3", "198.51.100.3", by, t, rcpt=rcpt))
    elif kind == "exim-helo":         # Exim's '(port=... helo=...)' form: no reverse name, our IP and name
        hops.append(hop_exim("smtp1.out.example.org", "192.0.2.25", by, t, rcpt=rcpt))
    elif kind == "exim-rdns":         # Exim with a verified host name equal to the HELO: no helo= shown
        hops.append(hop_exim("smtp1.out.example.org", "192.0.2.25", by, t, rdns="smtp1.out.example.org", rcpt=rcpt))
    elif kind == "qmail-ipv4":        # qmail: IP in parentheses, no brackets
        hops.append(hop_qmail_net("smtp2.out.example.org", "198.51.100.6", by, t))
        hops.insert(0, hop_qmail_invoked(later(t, 1)))
    elif kind == "v6-postfix":        # IPv6: prefix, compressed
        hops.append(hop_postfix("smtp1.out.example.org", "smtp1.out.example.org", "2001:db8:25::25", by, t, rcpt=rcpt))
    elif kind == "v6-expanded":       # fully written out, as some Exchange versions log it
        hops.append(hop_exchange("smtp1.out.example.org", "2001:0db8:0025:0000:0000:0000:0000:0025", by,
                                 "203.0.113.140", t))
    elif kind == "v6-sendmail-zeros":  # Sendmail: IPv6: with the zero groups written out
        hops.append(hop_sendmail("mta.internal", "unknown", "2001:db8:25:0:0:0:0:25", by, t, rcpt=rcpt, v6=True))
    elif kind == "v6-upper-exim":     # upper-case hex, Exim bracket form
        hops.append(hop_exim("relay", "2001:DB8:25::25", by, t, rcpt=rcpt))
    elif kind == "v6-range":          # inside 2001:db8:26::/48
        hops.append(hop_postfix("smtp2.out.example.org", "smtp2.out.example.org", "2001:db8:26:4::1e", by, t, rcpt=rcpt))
    elif kind == "v6-range-ipv6only":
        hops.append(hop_postfix("[IPv6:2001:db8:26::a:25]", "unknown", "2001:db8:26::a:25", by, t, rcpt=rcpt))
    elif kind == "glob":              # mailout-?.example.net: no addresses declared, name only
        hops.append(hop_postfix("mailout-3.example.net", "mailout-3.example.net", "203.0.113.93", by, t, rcpt=rcpt))
    elif kind == "glob-exim":
        hops.append(hop_exim("mailout-7.example.net", "203.0.113.97", by, t, rdns="mailout-7.example.net", rcpt=rcpt))
    elif kind == "exchange-name":
        hops.append(hop_exchange("smtp1.out.example.org", "192.0.2.25", by, "203.0.113.141", t))
    elif kind == "courier":           # Courier prints IPv4-mapped IPv6: ::ffff:192.0.2.25
        hops.append(hop_courier("smtp1.out.example.org", "192.0.2.25", by, t))
    elif kind == "folded":            # the (rDNS [IP]) part on its own continuation line
        hops.append(f"Received: from smtp2.out.example.org\n\t(smtp2.out.example.org [IPv6:2001:db8:26::19])\n"
                    f"\tby {by} (Postfix) with ESMTPS id {qid_postfix()}\n\tfor <{rcpt}>; {rfc_name(t)}")
    elif kind == "by-only":           # only our relay's own hop (the bounce was made on our relay)
        internal = True
    else:
        raise ValueError(kind)
    if internal:
        helo, ip = RNG.choice(CLIENTS)
        relay = "smtp2.out.example.org" if kind.startswith("smtp2") else "smtp1.out.example.org"
        hops.append(hop_postfix(helo, "unknown", ip, relay, t0, auth=True))
    return hops


ZOMBIES = [("dsl-203-0-113-77.dyn.isp.test", "203.0.113.77", "user-PC"),
           ("cable-203-0-113-152.home.test", "203.0.113.152", "DESKTOP-8F2KQ1"),
           ("static.198-51-100-200.hoster.test", "198.51.100.200", "ylmf-pc"),
           ("ppp-198-51-100-87.mobile.test", "198.51.100.87", "win-7a1c"),
           ("unknown", "203.0.113.9", "[203.0.113.9]")]


def foreign(kind: str, by: str, t, *, rcpt: str | None = None) -> list[str]:
    """Hops of spam that forged one of our addresses. None of them is evidence for our relays."""
    rdns, ip, helo = RNG.choice(ZOMBIES)
    if kind == "zombie":              # straight from an infected PC to the bouncing site
        return [hop_postfix(helo, rdns, ip, by, t, rcpt=rcpt)]
    if kind == "zombie-exim":
        return [hop_exim(helo, ip, by, t, rdns=None if rdns == "unknown" else rdns, rcpt=rcpt)]
    if kind == "zombie-sendmail":
        return [hop_sendmail(helo, rdns, ip, by, t, rcpt=rcpt)]
    if kind == "zombie-qmail":
        return [hop_qmail_invoked(later(t, 1)), hop_qmail_net(helo, ip, by, t)]
    if kind == "zombie-exchange":
        return [hop_exchange(helo, ip, by, "203.0.113.140", t)]
    if kind == "botnet-2hops":        # a bulk sender, then the bouncing site's filter
        return [hop_postfix("mailgate.remote-filter.test", "mailgate.remote-filter.test", "203.0.113.33", by, t, rcpt=rcpt),
                hop_postfix("bulk07.spamcannon.test", "bulk07.spamcannon.test", "198.51.100.190", "mailgate.remote-filter.test",
                            later(t, -3))]
    if kind == "forged-helo-smtp1":   # our relay's NAME as HELO, foreign address: not evidence
        return [hop_postfix("smtp1.out.example.org", "unknown", "203.0.113.66", by, t, rcpt=rcpt)]
    if kind == "forged-helo-smtp2-rdns":  # HELO ours, rDNS and address the spammer's
        return [hop_postfix("smtp2.out.example.org", "dsl-203-0-113-77.dyn.isp.test", "203.0.113.77", by, t, rcpt=rcpt)]
    if kind == "forged-helo-exim":
        return [hop_exim("smtp1.out.example.org", "198.51.100.87", by, t, rcpt=rcpt)]
    if kind == "forged-helo-qmail":
        return [hop_qmail_invoked(later(t, 1)), hop_qmail_net("smtp2.out.example.org", "203.0.113.152", by, t)]
    if kind == "forged-helo-v6":
        return [hop_postfix("smtp1.out.example.org", "unknown", "2001:db8:bad::66", by, t, rcpt=rcpt)]
    if kind == "lookalike-suffix":    # our relay's name followed by more labels
        return [hop_postfix("smtp1.out.example.org.relay.test", "smtp1.out.example.org.relay.test", "203.0.113.5",
                            by, t, rcpt=rcpt)]
    if kind == "lookalike-prefix":    # more in front: xsmtp1..., smtp1-out...
        return [hop_postfix("xsmtp1.out.example.org", "mail.spamcannon.test", "198.51.100.190", by, t, rcpt=rcpt)]
    if kind == "lookalike-glob":      # mailout-?: one character only; mailout-33 is not ours
        return [hop_postfix("mailout-33.example.net", "mailout-33.example.net", "203.0.113.133", by, t, rcpt=rcpt)]
    if kind == "lookalike-glob-suffix":
        return [hop_exim("mailout-3.example.net.bulk.test", "203.0.113.134", by, t,
                         rdns="mailout-3.example.net.bulk.test", rcpt=rcpt)]
    if kind == "ip-contains":         # 192.0.2.251 contains 192.0.2.25 as a string
        return [hop_postfix("mx.neighbour.test", "mx.neighbour.test", "192.0.2.251", by, t, rcpt=rcpt)]
    if kind == "ip-contains-qmail":
        return [hop_qmail_net("mail", "192.0.2.250", by, t)]
    if kind == "ip-out-of-range":     # 198.51.100.16 is just outside 198.51.100.0/28
        return [hop_postfix("mail.next-door.test", "mail.next-door.test", "198.51.100.16", by, t, rcpt=rcpt)]
    if kind == "ip-prefix-longer":    # 198.51.100.140 starts with 198.51.100.14
        return [hop_sendmail("host140.hoster.test", "host140.hoster.test", "198.51.100.140", by, t, rcpt=rcpt)]
    if kind == "v6-contains":         # 2001:db8:25::251 and 2001:db8:25::25:1 are not 2001:db8:25::25
        return [hop_postfix("vps.cloud.test", "vps.cloud.test", "2001:db8:25::251", by, t, rcpt=rcpt),
                hop_postfix("[IPv6:2001:db8:25::25:1]", "unknown", "2001:db8:25::25:1", "vps.cloud.test", later(t, -2))]
    if kind == "v6-out-of-range":     # 2001:db8:260::/48 and 2001:db8:2600::/40 are not 2001:db8:26::/48
        return [hop_postfix("v6.hoster.test", "v6.hoster.test", "2001:db8:260::26", by, t, rcpt=rcpt)]
    if kind == "folded-lookalike":    # folded like the genuine one, but the name only starts like ours
        return [f"Received: from smtp2.out.example.org.mx.spamcannon.test\n\t(smtp2.out.example.org.mx.spamcannon.test "
                f"[IPv6:2001:db8:bad::19])\n\tby {by} (Postfix) with ESMTPS id {qid_postfix()}\n\tfor <{rcpt}>; {rfc_name(t)}"]
    if kind == "rdns-contains-ip":    # a reverse name that spells our address
        return [hop_postfix("mail", "192.0.2.25.rev.isp.test", "203.0.113.25", by, t, rcpt=rcpt)]
    raise ValueError(kind)
