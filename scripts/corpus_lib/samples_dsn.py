"""Bounces: backscatter (foreign hops) and legitimate (genuine hops from our relays)."""

from __future__ import annotations

from .common import RNG, USERS, later, msgid, when
from . import dsn
from .dsn import Spec
from .hops import foreign, genuine

SPAM = [
    ("Your invoice #88213 is overdue", "Dear customer,\n\nplease open the attached invoice and pay within 24 hours.\n"),
    ("Re: payment confirmation", "Hi,\n\nthe transfer is done, confirm here: http://pay.scam.test/c?id=9913\n"),
    ("Exclusive offer: 80% off watches", "Best replica watches, shipped worldwide.\nhttp://watches.spamcannon.test/\n"),
    ("Account suspended - verify now", "Your mailbox will be closed today. Verify at http://verify.phish.test/\n"),
    ("Gewinnbenachrichtigung", "Herzlichen Glueckwunsch! Sie haben 250.000 EUR gewonnen.\nAntworten Sie mit Ihren Daten.\n"),
    ("DHL: parcel on hold", "Your parcel is on hold. Pay the customs fee: http://parcel-fee.scam.test/\n"),
    ("Cheap meds online", "No prescription needed. http://pharma.spamcannon.test/\n"),
    ("Business proposal", "Dear friend,\n\nI am a lawyer and I have a proposal of 14.5 million dollars.\n"),
    ("Re: Re: documents", "see attached documents\n\nhttp://docs.scam.test/open?d=71\n"),
    ("Crypto returns 40% a month", "Join now and double your savings: http://coin.scam.test/\n"),
]
LEGIT = [
    ("Quarterly report draft", "Hi,\n\nhere is the draft of the Q4 report, comments welcome by Friday.\n\nAlice\n"),
    ("Meeting on Thursday", "Hello,\n\ncan we move Thursday's meeting to 15:00?\n\nThanks, Bob\n"),
    ("Invoice 2026-1182", "Dear customer,\n\nplease find our invoice 2026-1182 attached.\n\nExample Sales\n"),
    ("Re: your application", "Dear applicant,\n\nthank you for your application; we will be in touch.\n"),
    ("Offerte voor project Noord", "Beste,\n\nhierbij onze offerte voor het project.\n\nMet vriendelijke groet, Lena\n"),
    ("Preventivo ordine 4471", "Gentile cliente,\n\nin allegato il preventivo richiesto.\n\nGiulia Rossi\n"),
    ("Lunch next week?", "Hey, are you free for lunch next week? Tuesday would suit me.\n"),
    ("Contract renewal", "Hello,\n\nyour contract renews on 1 January; nothing to do if you wish to continue.\n"),
]

FOREIGN_SITES = [
    ("mx.remote.example.com", "203.0.113.10"), ("mail.bouncer.test", "203.0.113.20"),
    ("relay.kunden.test", "198.51.100.44"), ("mail.oldhost.test", "203.0.113.35"),
    ("smtp.shop.example", "198.51.100.71"), ("mx2.univ.test", "203.0.113.120"),
]


def _spam():
    return RNG.choice(SPAM)


def _legit():
    return RNG.choice(LEGIT)


def _victim():
    return RNG.choice([f"{n}@{d}" for n in ("info", "kunde17", "j.doe", "office", "sales", "m.rossi", "admin")
                       for d in ("remote.example.com", "bouncer.test", "kunden.test", "shop.example", "univ.test")])


def bs(builder, name, note, host, ip, hop_kind, *, day=0, legit=False, attach="rfc822", mode="return-path",
       crlf=False, builder_kw=None, **kw):
    """One bounce sample: backscatter (foreign hop_kind) or legit (genuine hop_kind)."""
    t = when(day)
    th = later(t, -RNG.randrange(20, 400))   # the original passed the hops a little before the bounce
    rcpt = kw.pop("rcpt", None) or _victim()
    if legit:
        sender = kw.pop("sender", None) or RNG.choice(USERS)
        subject, body = _legit()
        hops = genuine(hop_kind, kw.pop("by", None) or f"mx.{rcpt.split('@')[1]}", th, rcpt=rcpt,
                       internal=kw.pop("internal", False))
        mid = msgid(sender.split("@")[1])
    else:
        sender = kw.pop("sender", None) or RNG.choice(USERS)
        subject, body = _spam()
        hops = foreign(hop_kind, kw.pop("by", None) or f"mx.{rcpt.split('@')[1]}", th, rcpt=rcpt)
        mid = msgid(RNG.choice(["dsl-203-0-113-77.dyn.isp.test", "user-pc", sender.split("@")[1] + ".mailer.test"]))
    s = Spec(note=note, sender=sender, rcpt=rcpt, host=host, ip=ip, hops=hops, subject=kw.pop("subject", subject),
             t=t, t_orig=later(th, -RNG.randrange(2, 60)), body=body, attach=attach, mode=mode, orig_mid=mid, crlf=crlf, **kw)
    folder = "legit/bounce" if legit else "backscatter/dsn"
    return (f"{folder}/{name}.eml", builder(s, **(builder_kw or {})), crlf)


def samples():
    out = []
    B = out.append
    # ---------------- backscatter: one idea each -------------------------------------------------
    B(bs(dsn.postfix, "postfix-rfc3464-user-unknown", "Postfix local bounce; the spam came straight from a zombie PC.",
         "mx.remote.example.com", "203.0.113.10", "zombie", rcpt="kunde17@remote.example.com"))
    B(bs(dsn.postfix, "postfix-rfc3464-headers-only", "Postfix returns only the headers (text/rfc822-headers) of the spam.",
         "mail.bouncer.test", "203.0.113.20", "zombie", attach="headers"))
    B(bs(dsn.postfix, "postfix-remote-reject-550", "Postfix relay bounces after the next hop refused RCPT; botnet path.",
         "smtp.shop.example", "198.51.100.71", "botnet-2hops", builder_kw={"kind": "remote"}))
    B(bs(dsn.postfix, "postfix-spam-reject-571", "The next hop refused the spam as spam: classic joe-job backscatter.",
         "gw.univ.test", "203.0.113.121", "zombie", builder_kw={"kind": "remote"},
         diag="554 5.7.1 Service unavailable; Client host [203.0.113.77] blocked using zen.dnsbl.test"))
    B(bs(dsn.postfix, "postfix-delay-warning", "Postfix delay warning (Action: delayed) for spam that forged us.",
         "mx.remote.example.com", "203.0.113.10", "zombie-exim", builder_kw={"kind": "delay"}))
    B(bs(dsn.postfix, "postfix-global-delivery-status", "SMTPUTF8 bounce: message/global-delivery-status + message/global.",
         "mx.univ.test", "203.0.113.122", "zombie", builder_kw={"kind": "global"}))
    B(bs(dsn.postfix, "postfix-xenvelope-from-milter-view", "As a milter sees it: X-Envelope-From: <>, no Return-Path.",
         "mail.bouncer.test", "203.0.113.20", "zombie", mode="x-envelope"))
    B(bs(dsn.postfix, "postfix-forged-helo-smtp1", "Spam HELO'd as our smtp1 from a foreign IP: not evidence for us.",
         "mx.remote.example.com", "203.0.113.10", "forged-helo-smtp1"))
    B(bs(dsn.postfix, "postfix-forged-helo-smtp2-with-rdns", "HELO smtp2.out.example.org, rDNS and IP the zombie's.",
         "relay.kunden.test", "198.51.100.44", "forged-helo-smtp2-rdns", attach="headers"))
    B(bs(dsn.postfix, "postfix-forged-helo-ipv6", "Our relay name as HELO over a foreign IPv6 address.",
         "mx.univ.test", "203.0.113.122", "forged-helo-v6", crlf=True))
    B(bs(dsn.postfix, "postfix-lookalike-host-suffix", "smtp1.out.example.org.relay.test is not our relay.",
         "mx.remote.example.com", "203.0.113.10", "lookalike-suffix"))
    B(bs(dsn.postfix, "postfix-ip-contains-ours-192.0.2.251", "192.0.2.251 contains the string 192.0.2.25 but is not ours.",
         "mail.bouncer.test", "203.0.113.20", "ip-contains"))
    B(bs(dsn.postfix, "postfix-ip-just-outside-range", "198.51.100.16 lies just outside our 198.51.100.0/28.",
         "smtp.shop.example", "198.51.100.71", "ip-out-of-range", attach="headers"))
    B(bs(dsn.postfix, "postfix-ipv6-contains-ours", "2001:db8:25::251 and 2001:db8:25::25:1 are not 2001:db8:25::25.",
         "v6mx.univ.test", "2001:db8:77::25", "v6-contains"))
    B(bs(dsn.postfix, "postfix-ipv6-outside-range", "2001:db8:260::26 is outside our 2001:db8:26::/48.",
         "mx.remote.example.com", "203.0.113.10", "v6-out-of-range", mode="x-envelope"))
    B(bs(dsn.postfix, "postfix-rdns-spells-our-ip", "A reverse name 192.0.2.25.rev.isp.test over 203.0.113.25.",
         "relay.kunden.test", "198.51.100.44", "rdns-contains-ip"))
    B(bs(dsn.sendmail, "sendmail-user-unknown", "Sendmail 'Returned mail: see transcript for details'.",
         "mail.bouncer.test", "203.0.113.20", "zombie-sendmail", rcpt="j.doe@bouncer.test"))
    B(bs(dsn.sendmail, "sendmail-headers-only", "Sendmail returning text/rfc822-headers only; forged HELO of smtp1.",
         "mailhub.univ.test", "203.0.113.123", "forged-helo-smtp1", attach="headers"))
    B(bs(dsn.sendmail, "sendmail-warning-4h", "Sendmail 4-hour delay warning for spam.",
         "mail.bouncer.test", "203.0.113.20", "ip-prefix-longer", builder_kw={"warning": True}, attach="headers"))
    B(bs(dsn.exim, "exim-mime-user-unknown", "Exim multipart/report bounce of spam from a zombie.",
         "relay.kunden.test", "198.51.100.44", "zombie-exim"))
    B(bs(dsn.exim, "exim-mime-forged-helo", "Exim; the spam's Received shows helo=smtp1.out.example.org from a foreign IP.",
         "relay.kunden.test", "198.51.100.44", "forged-helo-exim", crlf=True))
    B(bs(dsn.exim, "exim-plain-copy-inline", "Old Exim plain-text bounce with the copy of the spam pasted inline.",
         "mail.oldhost.test", "203.0.113.35", "lookalike-glob-suffix", builder_kw={"mime": False}))
    B(bs(dsn.exim, "exim-plain-no-return-path", "Exim plain bounce as a milter sees it: X-Envelope-From: <> only.",
         "relay.kunden.test", "198.51.100.44", "zombie", builder_kw={"mime": False}, mode="x-envelope"))
    B(bs(dsn.qmail, "qmail-failure-notice", "qmail-send 'failure notice' with the spam copied below the line.",
         "mail.oldhost.test", "203.0.113.35", "zombie-qmail"))
    B(bs(dsn.qmail, "qmail-vpopmail-no-mailbox", "qmail/vpopmail; the spam came via a host that HELO'd as smtp2.",
         "mail.oldhost.test", "203.0.113.35", "forged-helo-qmail", builder_kw={"flavour": "vpopmail"}))
    B(bs(dsn.qmail, "qmail-remote-does-not-like-recipient", "qmail remote failure; IP 192.0.2.250 is not 192.0.2.25.",
         "mail.oldhost.test", "203.0.113.35", "ip-contains-qmail", builder_kw={"flavour": "remote"}))
    B(bs(dsn.exchange, "exchange-2016-ndr", "Exchange 2016 NDR with 'Original message headers' inline and attached.",
         "ex01.contoso.example", "203.0.113.140", "zombie-exchange", attach="headers"))
    B(bs(dsn.exchange, "exchange-2019-ndr-rfc822", "Exchange NDR returning the whole spam as message/rfc822.",
         "ex02.fabrikam.example", "203.0.113.142", "botnet-2hops", builder_kw={"headers_inline": False},
         rcpt="sales@fabrikam.example"))
    B(bs(dsn.exchange, "exchange-ndr-no-original", "Exchange NDR that returns nothing of the original: no hops at all.",
         "ex01.contoso.example", "203.0.113.140", "zombie", attach="none", builder_kw={"headers_inline": False},
         rcpt="m.dubois@contoso.example", crlf=True))
    B(bs(dsn.office365, "office365-ndr-recipient-not-found", "Office 365 NDR (base64 text) for spam that forged us.",
         "eur05-db8-obe.outbound.protection.outlook.test", "203.0.113.160", "zombie", attach="headers",
         rcpt="ap@tailspin.example"))
    B(bs(dsn.office365, "office365-ndr-inline-headers", "Office 365 NDR with the original headers inline (base64).",
         "eur05-am6-obe.outbound.protection.outlook.test", "203.0.113.161", "lookalike-prefix", attach="inline",
         rcpt="hr@tailspin.example", diag="550 5.4.1 Recipient address rejected: Access denied. AS(201806281)"))
    B(bs(dsn.gmail, "gmail-address-not-found", "Gmail 'Delivery Status Notification (Failure)' for spam.",
         "mail-sor-f69.googlemail.test", "198.51.100.169", "zombie", rcpt="no.such.person@gmail.test"))
    B(bs(dsn.gmail, "gmail-message-blocked", "Gmail 'Message blocked' for a phishing mail forging our address.",
         "mail-sor-f41.googlemail.test", "198.51.100.141", "botnet-2hops", builder_kw={"blocked": True},
         rcpt="someone@gmail.test", attach="headers"))
    B(bs(dsn.yahoo, "yahoo-failure-notice", "Yahoo 'Failure Notice', spam copied below the line.",
         "mta1004.mail.bf1.yahoo.test", "203.0.113.174", "zombie", rcpt="lonely.heart@yahoo.test"))
    B(bs(dsn.domino, "domino-not-listed-in-directory", "Lotus Domino 'DELIVERY FAILURE: ... not listed in Domino Directory'.",
         "notes01.acme.test", "203.0.113.180", "zombie", rcpt="p.smith@acme.test", attach="headers"))
    B(bs(dsn.groupwise, "groupwise-undeliverable", "GroupWise 'Message status - undeliverable' with truncated original.",
         "gwia.county.test", "203.0.113.190", "zombie-sendmail", rcpt="clerk@county.test"))
    B(bs(dsn.mdaemon, "mdaemon-permanent-failure", "MDaemon 'Permanent Delivery Failure' with the spam attached.",
         "mail.smallbiz.test", "198.51.100.210", "zombie"))
    B(bs(dsn.mdaemon, "mdaemon-delay-warning", "MDaemon delay warning; the spam's hop is a look-alike mailout-33.",
         "mail.smallbiz.test", "198.51.100.210", "lookalike-glob", builder_kw={"warning": True}, attach="headers"))
    B(bs(dsn.courier, "courier-undeliverable", "Courier 'NOTICE: mail delivery status.' with ::ffff: client notation.",
         "mail.courier-site.test", "203.0.113.199", "zombie"))
    B(bs(dsn.groupware_nonnull, "smartermail-nonnull-sender", "Groupware bounce sent from postmaster@ (non-null sender).",
         "mail.hosting.test", "203.0.113.213", "zombie", env_sender="postmaster@hosting.test", rcpt="team@hosting.test"))
    B(bs(dsn.groupware_nonnull, "kerio-nonnull-sender-xenvelope", "Non-null sender bounce, milter view (X-Envelope-From).",
         "mail.office-kerio.test", "203.0.113.214", "zombie-exim", env_sender="postmaster@office-kerio.test",
         mode="x-envelope", builder_kw={"product": "Kerio"}, rcpt="boss@office-kerio.test"))
    B(bs(dsn.sieve_reject, "sieve-reject-mdn-deleted", "Sieve reject (RFC 5429): an MDN 'deleted' - a bounce, not a receipt.",
         "imap.univ.test", "203.0.113.124", "zombie", rcpt="prof.x@univ.test"))
    B(bs(dsn.postfix, "postfix-mailbox-full-552", "Postfix remote bounce 552 5.2.2 mailbox full; spam from a zombie.",
         "mx.univ.test", "203.0.113.122", "zombie-exim", builder_kw={"kind": "remote"}, status="5.2.2",
         diag="552 5.2.2 <{r}>: Mailbox full; quota exceeded".replace("{r}", "student7@univ.test"), rcpt="student7@univ.test"))
    B(bs(dsn.exim, "exim-retry-timeout", "Exim bounce after retry timeout; X-Envelope-From <> and Return-Path both.",
         "relay.kunden.test", "198.51.100.44", "botnet-2hops", mode="both", diag="retry timeout exceeded", status="4.0.0"))
    B(bs(dsn.sendmail, "sendmail-milter-view", "Sendmail bounce as a milter sees it: X-Envelope-From: <> only.",
         "mail.bouncer.test", "203.0.113.20", "zombie-sendmail", mode="x-envelope", crlf=True))
    B(bs(dsn.postfix, "postfix-folded-lookalike-ipv6", "Folded hop from smtp2.out.example.org.mx.spamcannon.test (look-alike).",
         "mx.remote.example.com", "203.0.113.10", "folded-lookalike", attach="headers"))
    B(bs(dsn.postfix, "postfix-mx2-received", "Backscatter arriving at our second MX (mx2.example.org).",
         "mx.remote.example.com", "203.0.113.10", "lookalike-prefix", mx="mx2.example.org", attach="headers"))

    # ---------------- legitimate bounces: the original really left through our relays -----------------
    L = lambda *a, **k: B(bs(*a, legit=True, **k))  # noqa: E731
    L(dsn.postfix, "postfix-rfc3464-smtp1-name", "Postfix bounce; quoted hop from smtp1.out.example.org [192.0.2.25].",
      "mx.remote.example.com", "203.0.113.10", "smtp1-name")
    L(dsn.postfix, "postfix-headers-smtp2-name", "text/rfc822-headers; hop from smtp2.out.example.org [198.51.100.6].",
      "mail.bouncer.test", "203.0.113.20", "smtp2-name", attach="headers")
    L(dsn.postfix, "postfix-remote-smtp2-range-literal", "Only the address identifies the relay: [198.51.100.13] in /28.",
      "smtp.shop.example", "198.51.100.71", "smtp2-range", builder_kw={"kind": "remote"})
    L(dsn.postfix, "postfix-ipv4-only-bad-helo", "HELO localhost.localdomain, rDNS unknown, IP 192.0.2.25: ours by address.",
      "mx.univ.test", "203.0.113.122", "smtp1-ipv4-only", attach="headers")
    L(dsn.postfix, "postfix-ipv6-compressed", "Hop from [IPv6:2001:db8:25::25] (Postfix spelling).",
      "v6mx.univ.test", "2001:db8:77::25", "v6-postfix")
    L(dsn.postfix, "postfix-ipv6-range", "Hop from 2001:db8:26:4::1e, inside our 2001:db8:26::/48.",
      "mx.remote.example.com", "203.0.113.10", "v6-range", attach="headers", crlf=True)
    L(dsn.postfix, "postfix-ipv6-range-literal-helo", "IPv6-only evidence: [IPv6:2001:db8:26::a:25] with no name.",
      "mx.remote.example.com", "203.0.113.10", "v6-range-ipv6only", mode="x-envelope")
    L(dsn.postfix, "postfix-folded-hop-ipv6", "Folded hop: name on one line, '(smtp2... [IPv6:2001:db8:26::19])' on the next.",
      "mx.univ.test", "203.0.113.122", "folded", attach="headers")
    L(dsn.postfix, "postfix-glob-relay-mailout-3", "Relay glob mailout-?.example.net: hop from mailout-3.example.net.",
      "relay.kunden.test", "198.51.100.44", "glob")
    L(dsn.postfix, "postfix-delay-warning-smtp1", "Delay warning for mail we sent; headers quote smtp1.",
      "mx.remote.example.com", "203.0.113.10", "smtp1-name", builder_kw={"kind": "delay"})
    L(dsn.postfix, "postfix-global-smtp1", "message/global original carrying our smtp1 hop.",
      "mx.univ.test", "203.0.113.122", "smtp1-name", builder_kw={"kind": "global"})
    L(dsn.postfix, "postfix-headers-base64-smtp2", "text/rfc822-headers sent base64-encoded; hop from smtp2.",
      "mail.bouncer.test", "203.0.113.20", "smtp2-name", attach="headers-b64")
    L(dsn.postfix, "postfix-success-dsn-relayed", "NOTIFY=SUCCESS report (Action: relayed) for mail we sent via smtp1.",
      "mx.remote.example.com", "203.0.113.10", "smtp1-name", builder_kw={"kind": "success"})
    L(dsn.postfix, "postfix-bounce-made-on-our-relay", "Our own relay bounced it: only the 'by smtp1.out.example.org' hop.",
      "smtp1.out.example.org", "192.0.2.25", "by-only", by="smtp1.out.example.org", builder_kw={"kind": "remote"},
      rcpt="old.contact@remote.example.com")
    L(dsn.sendmail, "sendmail-smtp1-upper-case", "Sendmail bounce; the hop spells our relay in upper case.",
      "mail.bouncer.test", "203.0.113.20", "smtp1-upper",
      builder_kw={"client": "smtp1.out.example.org [192.0.2.25]"})
    L(dsn.sendmail, "sendmail-ipv6-zeros", "Sendmail; hop from [IPv6:2001:db8:25:0:0:0:0:25] (zeros written out).",
      "mailhub.univ.test", "203.0.113.123", "v6-sendmail-zeros", attach="headers",
      builder_kw={"client": "[IPv6:2001:db8:25:0:0:0:0:25]"})
    L(dsn.exim, "exim-helo-form-smtp1", "Exim bounce; hop 'from [192.0.2.25] (port=... helo=smtp1.out.example.org)'.",
      "relay.kunden.test", "198.51.100.44", "exim-helo")
    L(dsn.exim, "exim-rdns-smtp1", "Exim bounce; hop 'from smtp1.out.example.org ([192.0.2.25]:port)' (verified name).",
      "mx.univ.test", "203.0.113.122", "exim-rdns", attach="headers")
    L(dsn.exim, "exim-ipv6-upper-case", "Exim; hop from [2001:DB8:25::25] in upper-case hex.",
      "relay.kunden.test", "198.51.100.44", "v6-upper-exim", attach="headers")
    L(dsn.exim, "exim-plain-inline-smtp2-range", "Old Exim plain bounce, original pasted inline; hop from 198.51.100.3.",
      "mail.oldhost.test", "203.0.113.35", "smtp2-range-exim", builder_kw={"mime": False})
    L(dsn.exim, "exim-glob-mailout-7", "Exim; hop from mailout-7.example.net (relay glob).",
      "relay.kunden.test", "198.51.100.44", "glob-exim", crlf=True)
    L(dsn.qmail, "qmail-ipv4-no-brackets", "qmail bounce; hop 'from unknown (HELO smtp2.out.example.org) (198.51.100.6)'.",
      "mail.oldhost.test", "203.0.113.35", "qmail-ipv4")
    L(dsn.exchange, "exchange-2016-ndr-smtp1", "Exchange NDR; our hop in the QP-encoded inline headers and attachment.",
      "ex01.contoso.example", "203.0.113.140", "exchange-name", attach="headers", rcpt="r.king@contoso.example")
    L(dsn.exchange, "exchange-ipv6-expanded", "Exchange NDR; hop from 2001:0db8:0025:0000:0000:0000:0000:0025.",
      "ex02.fabrikam.example", "203.0.113.142", "v6-expanded", attach="headers-b64", rcpt="ops@fabrikam.example")
    L(dsn.office365, "office365-ndr-smtp1-trailing-dot", "Office 365 NDR; hop 'smtp1.out.example.org. [192.0.2.25]' (trailing dot).",
      "eur05-db8-obe.outbound.protection.outlook.test", "203.0.113.160", "smtp1-name-trailing-dot", attach="headers",
      rcpt="buyer@tailspin.example")
    L(dsn.office365, "office365-ndr-inline-base64", "Office 365 NDR, original headers inline in a base64 text part.",
      "eur05-am6-obe.outbound.protection.outlook.test", "203.0.113.161", "smtp2-name", attach="inline",
      rcpt="it@tailspin.example")
    L(dsn.gmail, "gmail-address-not-found-smtp1", "Gmail DSN for mail we sent; hop from smtp1 with trailing dot.",
      "mail-sor-f69.googlemail.test", "198.51.100.169", "smtp1-name-trailing-dot", rcpt="old.friend@gmail.test")
    L(dsn.domino, "domino-smtp2", "Lotus Domino bounce of mail we sent via smtp2.",
      "notes01.acme.test", "203.0.113.180", "smtp2-name", rcpt="c.meyer@acme.test")
    L(dsn.groupwise, "groupwise-smtp1-internal-hop", "GroupWise truncated original; both our hops (submission + relay).",
      "gwia.county.test", "203.0.113.190", "smtp1-name", internal=True, rcpt="planning@county.test")
    L(dsn.mdaemon, "mdaemon-smtp1", "MDaemon permanent failure of mail we sent via smtp1.",
      "mail.smallbiz.test", "198.51.100.210", "smtp1-name")
    L(dsn.courier, "courier-ffff-mapped", "Courier bounce; hop '[::ffff:192.0.2.25]' with our relay's name.",
      "mail.courier-site.test", "203.0.113.199", "courier",
      builder_kw={"client": "smtp1.out.example.org ([::ffff:192.0.2.25])"})
    L(dsn.yahoo, "yahoo-failure-smtp2", "Yahoo failure notice, original inline with our smtp2 hop.",
      "mta1004.mail.bf1.yahoo.test", "203.0.113.174", "smtp2-name", rcpt="gone.away@yahoo.test")
    L(dsn.groupware_nonnull, "smartermail-nonnull-smtp1", "Non-null-sender groupware bounce of mail we sent via smtp1.",
      "mail.hosting.test", "203.0.113.213", "smtp1-name", env_sender="postmaster@hosting.test", rcpt="x@hosting.test")
    return out
