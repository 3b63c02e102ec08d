"""Ham: mail that must pass although much of it talks about, quotes or looks like bounces.

Read receipts, feedback and aggregate reports, list mail, calendar items titled 'Out of office',
transactional 'Delivery Status Notification' mail, human replies about bounces, forwarded DSNs,
cron and logwatch output full of SMTP errors, newsletters and a support ticket.
"""

from __future__ import annotations

import gzip
import io
import zipfile

from .common import (RNG, locale, qid_postfix, rfc_name, b64, display, hexid, hop_exim, hop_postfix, inbound, later, mail, msgid, multipart,
                     original, part, qp, rfc, when)
from .hops import foreign, genuine
from . import dsn as dsnmod
from .dsn import Spec


def strip_note(text: str) -> str:
    """Drop the X-Corpus-Note header (and its continuation lines) of a sample nested in another."""
    lines = text.split("\n")
    assert lines[0].startswith("X-Corpus-Note:")
    i = 1
    while lines[i][:1] in (" ", "\t"):
        i += 1
    return "\n".join(lines[i:])


def local_pickup(mx: str, sender: str, t) -> str:
    """Mail submitted on the MX itself (cron, logwatch): Postfix's pickup writes 'from userid'."""
    return (f"Return-Path: <{sender}>\nReceived: by {mx} (Postfix, from userid 0)\n\tid {qid_postfix()}; "
            f"{rfc_name(t)}")


def top(host, ip, rcpt, t, sender, **kw):
    return inbound(host, ip, rcpt, t, sender=sender, **kw)


def plain(headers: str, body: str, note: str, ctype="text/plain; charset=utf-8", cte="8bit") -> str:
    return mail(note, headers + f"\nMIME-Version: 1.0\nContent-Type: {ctype}\nContent-Transfer-Encoding: {cte}", body)


def _gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def _zip(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(name, date_time=(2026, 11, 21, 0, 0, 0)), data)
    return buf.getvalue()


# --- read receipts (RFC 8098) in several MUAs' shapes ------------------------------------------

def mdn(note, *, mua, reader, reader_name, ours, subject, t, null_sender=True, disposition="displayed",
        attach_headers=True):
    """reader read (or deleted) the message `ours` sent them; this is their MUA's receipt."""
    mid_ours = msgid(ours.split("@")[1])
    sent = later(t, -RNG.randrange(600, 20000))
    if mua == "thunderbird":
        text = (f"This is a Return Receipt for the mail that you sent to {reader}.\n\nNote: This Return Receipt only "
                f"acknowledges that the message was displayed on the recipient's computer. There is no guarantee "
                f"that the recipient has read or understood the message contents.\n")
        subj, ua, xm = f"Return Receipt (displayed) - {subject}", "Reporting-UA: mail.reader.test; Mozilla Thunderbird", "User-Agent: Mozilla Thunderbird"
    elif mua == "outlook":
        word = "Read" if disposition == "displayed" else "Not read"
        text = (f"Your message\n\n  To: {reader_name}\n  Subject: {subject}\n  Sent: {sent.strftime('%A, %B %d, %Y %I:%M %p')}\n\n"
                f"was {'read' if disposition == 'displayed' else 'deleted without being read'} on {t.strftime('%A, %B %d, %Y %I:%M %p')}.\n")
        subj, ua, xm = f"{word}: {subject}", "", "X-Mailer: Microsoft Outlook 16.0"
    elif mua == "roundcube":
        text = (f"This is a return receipt for the mail that you sent to {reader}.\n\nMessage: {subject}\n"
                f"Received: {rfc(sent)}\nDisplayed: {rfc(t)}\n")
        subj, ua, xm = f"Receipt (displayed): {subject}", "Reporting-UA: Roundcube Webmail", "User-Agent: Roundcube Webmail/1.6.9"
    elif mua == "gmail":
        text = f"Your message to {reader} was read on {t.strftime('%A, %B %d, %Y at %I:%M %p')} (UTC+01:00).\n"
        subj, ua, xm = f"Read: {subject}", "Reporting-UA: Gmail", ""
    elif mua == "notes":
        text = (f"Your document:\n\n  {subject}\n\nwas received by {reader_name} on {t.strftime('%d.%m.%Y %H:%M:%S')}.\n")
        subj, ua, xm = f"Return Receipt", "Reporting-UA: notes.acme.test; HCL Notes", "X-Mailer: HCL Notes Release 12.0.2"
    else:  # evolution / kmail
        text = f"The message sent on {rfc(sent)} to {reader} with subject \"{subject}\" has been displayed.\n"
        subj, ua, xm = f"Message Disposition Notification", "Reporting-UA: KMail", "User-Agent: KMail/6.2"
    disp = f"manual-action/MDN-sent-manually; {disposition}" if mua != "gmail" else "automatic-action/MDN-sent-automatically; displayed"
    report = (f"{ua + chr(10) if ua else ''}Final-Recipient: rfc822;{reader}\nOriginal-Message-ID: {mid_ours}\n"
              f"Disposition: {disp}\n")
    bnd = hexid(24)
    parts = [part("Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 7bit", text),
             part("Content-Type: message/disposition-notification", report)]
    if attach_headers:
        parts.append(part("Content-Type: text/rfc822-headers", original(
            [], display(ours), f"{reader_name} <{reader}>", subject, sent, mid=mid_ours, headers_only=True,
            extra=[f"Disposition-Notification-To: {display(ours)}"])))
    host = reader.split("@")[1]
    head = (f"{top('mail.' + host, '203.0.113.' + str(RNG.randrange(60, 90)), ours, t, '' if null_sender else reader)}\n"
            f"From: {reader_name} <{reader}>\nTo: {display(ours)}\nSubject: {subj}\nDate: {rfc(t)}\n"
            f"Message-ID: {msgid(host)}\nIn-Reply-To: {mid_ours}\nReferences: {mid_ours}\n"
            + (f"{xm}\n" if xm else "")
            + f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=disposition-notification;\n boundary=\"{bnd}\"")
    return mail(note, head, multipart(bnd, parts, "This is a MIME-encapsulated message."))


def samples():
    out = []

    def add(name, text, crlf=False):
        out.append((f"ham/{name}.eml", text, crlf))

    # --- ordinary human mail -------------------------------------------------------------------
    t = when(4)
    add("human-question-about-offer", plain(
        f"{top('mail.customer.test', '203.0.113.70', 'sales@example.org', t, 'peter.lang@customer.test')}\n"
        f"From: Peter Lang <peter.lang@customer.test>\nTo: sales@example.org\nSubject: Question about your offer\n"
        f"Date: {rfc(t)}\nMessage-ID: {msgid('customer.test')}\nUser-Agent: Mozilla Thunderbird",
        "Hello,\n\nthank you for the offer of last week. Two questions before we order:\n\n"
        "1. Is installation included in the price?\n2. Can you deliver before 15 December?\n\nKind regards,\nPeter Lang\n",
        "Ordinary human mail from a customer."))
    t = when(4)
    add("human-reply-my-mails-bounce", plain(
        f"{top('mail.partner.test', '198.51.100.121', 'bob.martin@example.org', t, 'nina@partner.test')}\n"
        f"From: Nina Vogel <nina@partner.test>\nTo: Bob Martin <bob.martin@example.org>\nSubject: Re: mails to your colleague\n"
        f"Date: {rfc(t)}\nMessage-ID: {msgid('partner.test')}\nIn-Reply-To: {msgid('example.org')}",
        "Hi Bob,\n\nmy mails to your colleague keep bouncing - I get \"Undelivered Mail Returned to Sender\"\n"
        "with \"User unknown\". Has her address changed? Could you forward this to her?\n\nThanks,\nNina\n\n"
        "> Hi Nina, did you get my mail about the workshop?\n> Bob\n",
        "A person who writes about bounces: 'Undelivered Mail Returned to Sender', 'User unknown'."))
    t = when(4)
    add("human-planning-absence-de", plain(
        f"{top('mail.kunden.test', '198.51.100.44', 'hans.mueller@example.org', t, 'j.weber@kunden.test')}\n"
        f"From: =?utf-8?q?J=C3=BCrgen_Weber?= <j.weber@kunden.test>\nTo: Hans Mueller <hans.mueller@example.org>\n"
        f"Subject: =?utf-8?q?Abwesenheit_n=C3=A4chste_Woche?=\nDate: {rfc(t)}\nMessage-ID: {msgid('kunden.test')}",
        "Hallo Herr Mueller,\n\nich bin nächste Woche nicht im Büro (Urlaub bis 4. Dezember). Meine Abwesenheitsnotiz\n"
        "ist eingerichtet; in dringenden Fällen erreichen Sie Frau Becker.\n\nKönnen wir den Termin auf den 7.12. legen?\n\n"
        "Viele Grüße\nJürgen Weber\n",
        "Human mail in German that talks about an absence and an 'Abwesenheitsnotiz'."))
    t = when(4)
    add("human-reponse-automatique-question-fr", plain(
        f"{top('mail.cabinet.test', '203.0.113.93', 'jules.bernard@example.org', t, 's.laurent@cabinet.test')}\n"
        f"From: Sophie Laurent <s.laurent@cabinet.test>\nTo: jules.bernard@example.org\n"
        f"Subject: =?utf-8?q?Question_sur_la_r=C3=A9ponse_automatique?=\nDate: {rfc(t)}\nMessage-ID: {msgid('cabinet.test')}",
        "Bonjour Jules,\n\nComment configure-t-on la réponse automatique d'absence dans le nouveau webmail ?\n"
        "Je serai absente du bureau à partir du 2 décembre et je voudrais prévenir mes clients.\n\nMerci,\nSophie\n",
        "Human mail in French asking how to set an out-of-office reply."))

    # --- mailing lists ---------------------------------------------------------------------------
    t = when(5)
    body = ("On 2026-11-20 someone wrote:\n> Since Monday we receive hundreds of bounces for mail we never sent.\n"
            "> They look like this:\n>\n>   <kunde17@remote.example.com>: host mx.remote.example.com said:\n"
            ">   550 5.1.1 <kunde17@remote.example.com>: Recipient address rejected: User unknown\n"
            ">   (in reply to RCPT TO command)\n\nThat is backscatter: spammers forge your address, and broken sites send\n"
            "their \"Undelivered Mail Returned to Sender\" to you. Read BACKSCATTER_README and reject\n"
            "bounces whose attached Received: headers do not show your own relays.\n\n-- \nWietse's fan club\n\n"
            "_______________________________________________\npostfix-users mailing list -- postfix-users@lists.listhost.test\n"
            "To unsubscribe send an email to postfix-users-leave@lists.listhost.test\n")
    add("mailing-list-postfix-users-backscatter", plain(
        f"{top('lists.listhost.test', '203.0.113.101', 'erik.svensson@example.org', t, 'postfix-users-bounces@lists.listhost.test')}\n"
        f"From: Tom Reed via Postfix-users <postfix-users@lists.listhost.test>\nReply-To: Tom Reed <tom@reed.test>\n"
        f"To: postfix-users@lists.listhost.test\nSubject: [pfx] Re: flood of bounces for mail we never sent\n"
        f"Date: {rfc(t)}\nMessage-ID: {msgid('reed.test')}\nIn-Reply-To: {msgid('isp.test')}\n"
        f"List-Id: Postfix users <postfix-users.lists.listhost.test>\nList-Post: <mailto:postfix-users@lists.listhost.test>\n"
        f"List-Unsubscribe: <mailto:postfix-users-leave@lists.listhost.test>\nPrecedence: list\nX-Mailman-Version: 3.3.9",
        body, "Mailing-list mail discussing backscatter, quoting a 550 5.1.1 bounce line."))
    t = when(5)
    add("mailing-list-digest", plain(
        f"{top('lists.listhost.test', '203.0.113.101', 'dave@example.net', t, 'sa-users-bounces@lists.listhost.test')}\n"
        f"From: sa-users-request@lists.listhost.test\nTo: sa-users@lists.listhost.test\n"
        f"Subject: sa-users Digest, Vol 214, Issue 9\nDate: {rfc(t)}\nMessage-ID: <mailman.{RNG.randrange(100, 999)}.{hexid(6)}.sa-users@lists.listhost.test>\n"
        f"List-Id: <sa-users.lists.listhost.test>\nPrecedence: list",
        "Today's Topics:\n\n   1. VBounce and out-of-office replies (Ann)\n   2. Re: Challenge-response mails (Raj)\n"
        "   3. Mail delivery failed: returning message to sender (Olu)\n\n----------------------------------------------------------------------\n\n"
        "Message: 1\nFrom: Ann <ann@list-member.test>\nSubject: VBounce and out-of-office replies\n\n"
        "Does VBounce flag Automatic reply: messages from Exchange, or only real bounces?\n\n"
        "Message: 3\nFrom: Olu <olu@list-member.test>\nSubject: Mail delivery failed: returning message to sender\n\n"
        "Our Exim prints \"This message was created automatically by mail delivery software\"; how do I\nwrite a rule for that?\n",
        "List digest whose topics are bounce and auto-reply phrases."))
    t = when(5)
    add("mailing-list-announcement-bulk", plain(
        f"{top('mx.projects.test', '198.51.100.130', 'carol@example.net', t, 'announce-bounces@projects.test')}\n"
        f"From: Release Team <announce@projects.test>\nTo: announce@projects.test\nSubject: [ANN] mailtool 4.2 released\n"
        f"Date: {rfc(t)}\nMessage-ID: {msgid('projects.test')}\nList-Id: Announcements <announce.projects.test>\n"
        f"List-Unsubscribe: <https://projects.test/unsub>, <mailto:announce-leave@projects.test>\n"
        f"List-Unsubscribe-Post: List-Unsubscribe=One-Click\nPrecedence: bulk",
        "mailtool 4.2 is out. Highlights:\n\n - delivery status notifications (RFC 3464) are parsed correctly\n"
        " - the vacation module honours Auto-Submitted\n - faster queue runs\n\nDownload: https://projects.test/mailtool/\n",
        "Announcement list mail (Precedence: bulk) that names DSNs and vacation features."))

    # --- read receipts ---------------------------------------------------------------------------
    for mua, reader, name, ours, kw in [
        ("thunderbird", "m.collins@remote.example.com", "Mary Collins", "alice@example.org", {}),
        ("outlook", "r.king@contoso.example", "Robert King", "bob.martin@example.org", {"null_sender": False}),
        ("outlook", "buyer@tailspin.example", "Ben Yates", "sales@example.org", {"disposition": "deleted"}),
        ("roundcube", "lgomez@tienda.test", "Lucía Gómez", "ines.costa@example.net", {}),
        ("gmail", "old.friend@gmail.test", "Sam Old", "k.tanaka@example.org", {"attach_headers": False}),
        ("notes", "p.smith@acme.test", "Paul Smith", "hans.mueller@example.org", {}),
        ("kmail", "p.devries@bedrijf.test", "Pieter de Vries", "lena.jansen@example.net", {"null_sender": False}),
    ]:
        label = f"{mua}-{kw.get('disposition', 'displayed')}"
        add(f"mdn-read-receipt-{label}", mdn(f"RFC 8098 read receipt ({mua}, {kw.get('disposition', 'displayed')}): not a bounce.",
                                               mua=mua, reader=reader, reader_name=name, ours=ours,
                                               subject="Offer for the new season", t=when(5), **kw),
            crlf=(mua == "roundcube"))

    # --- ARF feedback reports ---------------------------------------------------------------------
    def arf(name, note, ftype, orig_hops, orig_from, extra_fields="", attach="rfc822"):
        t = when(6)
        bnd = "ARF_" + hexid(20)
        fb = (f"Feedback-Type: {ftype}\nUser-Agent: FBL-Reporter/2.1\nVersion: 1\nOriginal-Mail-From: <{orig_from}>\n"
              f"Arrival-Date: {rfc(later(t, -7200))}\nReporting-MTA: dns; fbl.mailbox-provider.test\n"
              f"Source-IP: {'192.0.2.25' if ftype == 'abuse' else '203.0.113.77'}\n{extra_fields}")
        o = original(orig_hops, display(orig_from), "<someone@mailbox-provider.test>", "November newsletter",
                     later(t, -7300), body="Our November news...\n")
        parts = [part("Content-Type: text/plain; charset=\"US-ASCII\"\nContent-Transfer-Encoding: 7bit",
                      "This is an email abuse report for an email message received from IP "
                      f"{'192.0.2.25' if ftype == 'abuse' else '203.0.113.77'} on {rfc(later(t, -7200))}.\n"
                      "For more information about this format please see https://www.rfc-editor.test/rfc/rfc5965.\n"),
                 part("Content-Type: message/feedback-report", fb),
                 part("Content-Type: message/rfc822\nContent-Disposition: inline", o) if attach == "rfc822"
                 else part("Content-Type: text/rfc822-headers", o.split("\n\n")[0] + "\n")]
        head = (f"{top('fbl.mailbox-provider.test', '203.0.113.230', 'abuse@example.org', t, 'fbl-bounces@mailbox-provider.test')}\n"
                f"From: Feedback Loop <fbl@mailbox-provider.test>\nTo: abuse@example.org\n"
                f"Subject: {'FW: November newsletter' if ftype == 'abuse' else 'DMARC failure report for example.org'}\n"
                f"Date: {rfc(t)}\nMessage-ID: {msgid('mailbox-provider.test')}\nMIME-Version: 1.0\n"
                f"Content-Type: multipart/report; report-type=feedback-report;\n\tboundary=\"{bnd}\"")
        add(name, mail(note, head, multipart(bnd, parts, "This is a multi-part message in MIME format.")))

    tt = when(6)
    arf("arf-abuse-report-fbl", "ARF (RFC 5965) complaint about a newsletter we sent; quotes our relay hop.",
        "abuse", genuine("smtp1-name", "mx.mailbox-provider.test", tt), "news@example.org")
    arf("arf-auth-failure-forged-spam", "ARF auth-failure (DMARC forensic) report about spam forging us: foreign hops.",
        "auth-failure", foreign("zombie", "mx.mailbox-provider.test", tt), "alice@example.org",
        extra_fields="Auth-Failure: dmarc\nReported-Domain: example.org\nDelivery-Result: reject\n")
    arf("arf-abuse-headers-only", "ARF complaint carrying only text/rfc822-headers of the reported mail.",
        "abuse", genuine("smtp2-name", "mx.mailbox-provider.test", tt), "info@example.net", attach="headers")

    # --- DMARC aggregate and TLS-RPT reports ---------------------------------------------------------
    xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<feedback>\n  <report_metadata>\n    <org_name>receiver.test</org_name>\n"
           "    <email>dmarc-reports@receiver.test</email>\n    <report_id>{rid}</report_id>\n    <date_range><begin>1763596800</begin>"
           "<end>1763683199</end></date_range>\n  </report_metadata>\n  <policy_published><domain>example.org</domain><p>reject</p>"
           "<pct>100</pct></policy_published>\n  <record>\n    <row><source_ip>192.0.2.25</source_ip><count>412</count>"
           "<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>\n"
           "    <identifiers><header_from>example.org</header_from></identifiers>\n  </record>\n  <record>\n"
           "    <row><source_ip>203.0.113.77</source_ip><count>37</count><policy_evaluated><disposition>reject</disposition>"
           "<dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>\n    <identifiers><header_from>example.org</header_from>"
           "</identifiers>\n  </record>\n</feedback>\n")
    for kind, host in (("gzip", "receiver.test"), ("zip", "mailbox-provider.test")):
        t = when(6)
        rid = str(RNG.randrange(10**17, 10**18))
        data = xml.replace("{rid}", rid).encode()
        fname = f"{host}!example.org!1763596800!1763683199.xml" + (".gz" if kind == "gzip" else ".zip")
        blob = _gz(data) if kind == "gzip" else _zip(fname[:-4], data)
        ctype = "application/gzip" if kind == "gzip" else "application/zip"
        bnd = "dmarc_" + hexid(16)
        parts = [part("Content-Type: text/plain; charset=us-ascii",
                      f"This is an aggregate report from {host}.\n\nReport domain: example.org\nSubmitter: {host}\nReport-ID: {rid}\n"),
                 part(f"Content-Type: {ctype}; name=\"{fname}\"\nContent-Disposition: attachment; filename=\"{fname}\"\n"
                      f"Content-Transfer-Encoding: base64", b64(blob))]
        head = (f"{top('mx-out.' + host, '203.0.113.231', 'dmarc@example.org', t, 'dmarc-noreply@' + host)}\n"
                f"From: DMARC Aggregate Report <dmarc-noreply@{host}>\nTo: dmarc@example.org\n"
                f"Subject: Report domain: example.org Submitter: {host} Report-ID: <{rid}>\nDate: {rfc(t)}\n"
                f"Message-ID: <{rid}.{hexid(8)}@{host}>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{bnd}\"")
        add(f"dmarc-aggregate-report-{kind}", mail(f"DMARC aggregate report ({kind} attachment).", head, multipart(bnd, parts)))
    t = when(6)
    rpt = ('{"organization-name":"Receiver Test","date-range":{"start-datetime":"2026-11-20T00:00:00Z",'
           '"end-datetime":"2026-11-20T23:59:59Z"},"contact-info":"tlsrpt@receiver.test","report-id":"2026-11-20T00:00:00Z_example.org",'
           '"policies":[{"policy":{"policy-type":"sts","policy-domain":"example.org","mx-host":["mx1.example.org","mx2.example.org"]},'
           '"summary":{"total-successful-session-count":1532,"total-failure-session-count":2}}]}\n')
    bnd = "tlsrpt_" + hexid(16)
    parts = [part("Content-Type: text/plain; charset=us-ascii",
                  "This is an aggregate TLS report from receiver.test for example.org.\n"),
             part("Content-Type: application/tlsrpt+gzip; name=\"receiver.test!example.org!1763596800!1763683199.json.gz\"\n"
                  "Content-Disposition: attachment; filename=\"receiver.test!example.org!1763596800!1763683199.json.gz\"\n"
                  "Content-Transfer-Encoding: base64", b64(_gz(rpt.encode())))]
    head = (f"{top('mx-out.receiver.test', '203.0.113.232', 'tlsrpt@example.org', t, 'tlsrpt-noreply@receiver.test')}\n"
            f"From: TLS Reports <tlsrpt-noreply@receiver.test>\nTo: tlsrpt@example.org\n"
            f"Subject: Report Domain: example.org Submitter: receiver.test Report-ID: <2026-11-20T00:00:00Z_example.org>\n"
            f"Date: {rfc(t)}\nMessage-ID: <{hexid(20)}@receiver.test>\nTLS-Report-Domain: example.org\n"
            f"TLS-Report-Submitter: receiver.test\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=tlsrpt;\n\tboundary=\"{bnd}\"")
    add("tlsrpt-report", mail("SMTP TLS report (RFC 8460): multipart/report; report-type=tlsrpt.", head, multipart(bnd, parts)))

    # --- calendar invitations titled "Out of office" ------------------------------------------------
    def invite(name, note, summary, subject_prefix, organizer, org_name, attendee, method="REQUEST", lang="en",
               att_name=""):
        t = when(7)
        uid = hexid(32).upper()
        ics = ("BEGIN:VCALENDAR\nMETHOD:{m}\nPRODID:Microsoft Exchange Server 2019\nVERSION:2.0\nBEGIN:VEVENT\n"
               "ORGANIZER;CN={on}:mailto:{o}\nATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT={ps};RSVP=TRUE:mailto:{a}\n"
               "DESCRIPTION;LANGUAGE={l}:{s}\nUID:{u}\nSUMMARY;LANGUAGE={l}:{s}\nDTSTART;VALUE=DATE:20261130\n"
               "DTEND;VALUE=DATE:20261205\nCLASS:PUBLIC\nTRANSP:TRANSPARENT\nX-MICROSOFT-CDO-BUSYSTATUS:OOF\n"
               "DTSTAMP:20261121T091500Z\nSEQUENCE:0\nEND:VEVENT\nEND:VCALENDAR\n").format(
            m=method, on=org_name, o=organizer, a=attendee, l=lang, s=summary, u=uid,
            ps="ACCEPTED" if method == "REPLY" else "NEEDS-ACTION")
        alt = "_000_" + hexid(30).upper() + "_"
        text = f"{summary}\nWhen: 30 November - 4 December 2026\n" if method == "REQUEST" else f"{org_name} has accepted.\n"
        parts = [part("Content-Type: text/plain; charset=\"utf-8\"\nContent-Transfer-Encoding: quoted-printable", qp(text)),
                 part(f"Content-Type: text/calendar; charset=\"utf-8\"; method={method}\nContent-Transfer-Encoding: base64", b64(ics))]
        frm, to = (organizer, attendee) if method == "REQUEST" else (attendee, organizer)
        fname = org_name if method == "REQUEST" else att_name
        dom = frm.split("@")[1]
        head = (f"{top('mail.' + dom if not dom.startswith('example') else 'smtp1.out.example.org', '203.0.113.' + str(RNG.randrange(130, 140)) if not dom.startswith('example') else '192.0.2.25', to, t, frm)}\n"
                f"From: {fname} <{frm}>\nTo: {to}\nSubject: {subject_prefix}{summary}\nThread-Topic: {summary}\nDate: {rfc(t)}\n"
                f"Message-ID: {msgid(dom, 'outlook')}\nContent-Language: {locale(lang)}\nX-MS-Has-Attach:\n"
                f"MIME-Version: 1.0\nContent-Type: multipart/alternative;\n\tboundary=\"{alt}\"")
        add(name, mail(note, head, multipart(alt, parts)))

    invite("calendar-invitation-out-of-office", "Calendar invitation (text/calendar REQUEST) titled 'Out of office'.",
           "Out of office", "", "m.collins@remote.example.com", "Mary Collins", "alice@example.org")
    invite("calendar-invitation-abwesend-de", "German calendar invitation 'Abwesend - Urlaub' (BUSYSTATUS OOF).",
           "Abwesend - Urlaub", "", "j.weber@kunden.test", "Jürgen Weber", "hans.mueller@example.org", lang="de")
    invite("calendar-accepted-out-of-office", "Calendar reply 'Accepted: Out of Office - team coverage'.",
           "Out of Office - team coverage", "Accepted: ", "alice@example.org", "Alice Walker",
           "r.king@contoso.example", method="REPLY", att_name="Robert King")

    # --- transactional mail that looks like a DSN ---------------------------------------------------------
    t = when(7)
    add("fp-parcel-delivery-status", plain(
        f"{top('mta7.parcel-service.test', '198.51.100.155', 'fatima.haddad@example.org', t, 'bounce-8812@mail.parcel-service.test')}\n"
        f"From: Parcel Service <noreply@parcel-service.test>\nTo: fatima.haddad@example.org\n"
        f"Subject: Delivery Status Notification - parcel 00340434161094042557\nDate: {rfc(t)}\n"
        f"Message-ID: {msgid('mail.parcel-service.test')}\nList-Unsubscribe: <https://parcel-service.test/unsub?u=88121>\n"
        f"Auto-Submitted: auto-generated",
        "Hello Fatima Haddad,\n\nDelivery status of your parcel 00340434161094042557:\n\n  Status: out for delivery\n"
        "  Expected: today between 10:00 and 13:00\n\nWe attempted delivery yesterday but nobody was at home. If we\n"
        "cannot deliver it today, the parcel will be taken to your nearest parcel shop.\n\nTrack: https://parcel-service.test/t/00340434161094042557\n",
        "Transactional mail titled 'Delivery Status Notification' about a parcel; Auto-Submitted: auto-generated."))
    t = when(7)
    add("fp-parcel-undeliverable-notice", plain(
        f"{top('out.courier-express.test', '203.0.113.156', 'dave@example.net', t, 'notify@courier-express.test')}\n"
        f"From: Courier Express <notify@courier-express.test>\nTo: dave@example.net\n"
        f"Subject: Undeliverable: your shipment CX-7731-0042\nDate: {rfc(t)}\nMessage-ID: {msgid('courier-express.test')}",
        "Dear customer,\n\nyour shipment CX-7731-0042 was undeliverable: the address label was damaged.\n"
        "Please confirm your delivery address within 5 days at https://courier-express.test/fix/CX77310042\n",
        "A courier's 'Undeliverable:' notice about a shipment, not a mail bounce."))
    t = when(7)
    add("fp-shop-order-returned-to-sender", plain(
        f"{top('mail.shop.example', '198.51.100.71', 'g.rossi@example.net', t, 'orders@shop.example')}\n"
        f"From: Shop Example <orders@shop.example>\nTo: g.rossi@example.net\nSubject: Order 55120: returned to sender\n"
        f"Date: {rfc(t)}\nMessage-ID: {msgid('shop.example')}",
        "Hello Giulia,\n\nthe parcel for order 55120 was returned to sender by the carrier (recipient unknown at\n"
        "this address). We will refund the amount within 3 working days or ship again on request.\n\nShop Example\n",
        "Shop mail 'returned to sender' / 'recipient unknown' about a parcel."))
    t = when(7)
    add("fp-password-reset-auto-generated", plain(
        f"{top('o1.mailer.saas.test', '198.51.100.160', 'lena.jansen@example.net', t, 'bounces+88213-ab12@mailer.saas.test')}\n"
        f"From: SaaS Tool <no-reply@saas.test>\nTo: lena.jansen@example.net\nSubject: Reset your password\n"
        f"Date: {rfc(t)}\nMessage-ID: {msgid('saas.test')}\nAuto-Submitted: auto-generated\nX-Auto-Response-Suppress: All",
        "Hi Lena,\n\nsomeone asked to reset the password of your account. If it was you, open\n"
        "https://saas.test/reset?t=9f2a1c and choose a new one. The link expires in 1 hour.\n",
        "Notification with Auto-Submitted: auto-generated and X-Auto-Response-Suppress: not a reply."))
    t = when(7)
    add("fp-ticket-system-notification", plain(
        f"{top('tickets.vendor.test', '203.0.113.240', 'jules.bernard@example.org', t, 'support@vendor.test')}\n"
        f"From: Vendor Support <support@vendor.test>\nTo: jules.bernard@example.org\n"
        f"Subject: [Ticket #48213] Re: mails to you bounce with 550 5.1.1\nDate: {rfc(t)}\nMessage-ID: {msgid('vendor.test')}\n"
        f"In-Reply-To: {msgid('example.org')}\nAuto-Submitted: auto-generated",
        "Hello Jules,\n\nthank you for your report. Our engineer looked at the bounce you pasted:\n\n"
        "  \"host mx.vendor.test[203.0.113.240] said: 550 5.1.1 <billing@vendor.test>: Recipient\n   address rejected: User unknown in virtual mailbox table\"\n\n"
        "The mailbox billing@ was renamed; please write to invoices@vendor.test instead. We have\nadded an alias so the old address works again from tomorrow.\n\n"
        "Kind regards,\nVendor Support (Ticket #48213)\n",
        "Support ticket quoting a bounce in prose (550 5.1.1, User unknown)."))

    # --- human replies and forwards of bounces ---------------------------------------------------------
    t = when(8)
    add("human-re-undeliverable-reply", plain(
        f"{top('mail.contoso.example', '203.0.113.141', 'alice@example.org', t, 'r.king@contoso.example')}\n"
        f"From: Robert King <r.king@contoso.example>\nTo: Alice Walker <alice@example.org>\n"
        f"Subject: RE: Undeliverable: Quarterly report draft\nDate: {rfc(t)}\nMessage-ID: {msgid('contoso.example', 'outlook')}\n"
        f"In-Reply-To: {msgid('example.org')}\nThread-Topic: Undeliverable: Quarterly report draft\nX-Mailer: Microsoft Outlook 16.0",
        "Hi Alice,\n\nsorry about that - my old address was switched off. Please use r.king@contoso.example\nfrom now on.\n\n"
        "Robert\n\n-----Original Message-----\nFrom: Alice Walker <alice@example.org>\nSent: Friday, November 20, 2026 10:12 AM\n"
        "To: Robert King <r.king@contoso.example>\nSubject: FW: Undeliverable: Quarterly report draft\n\n"
        "Robert, this bounced from your old address - see below.\n\nDelivery has failed to these recipients or groups:\n"
        "robert.king@old.contoso.example\nThe email address you entered couldn't be found.\n",
        "A human 'RE: Undeliverable: ...' reply that quotes NDR text."))
    # a DSN a person forwards as an attachment: the attached DSN answers spam (foreign hops) and must still pass
    inner = dsnmod.postfix(Spec(note="(attached)", sender="info@customer.test", rcpt="kunde17@remote.example.com",
                                host="mx.remote.example.com", ip="203.0.113.10",
                                hops=foreign("zombie", "mx.remote.example.com", when(8), rcpt="kunde17@remote.example.com"),
                                subject="Your invoice #88213 is overdue", t=when(8), mx="mx.customer.test"))
    inner = strip_note(inner)
    t = when(8)
    bnd = "------------" + hexid(24)
    parts = [part("Content-Type: text/plain; charset=UTF-8; format=flowed\nContent-Transfer-Encoding: 7bit",
                  "Hello support,\n\nsince yesterday we get lots of bounces like the attached one for mails we\n"
                  "never sent. Is our account hacked? I attach one of them.\n\nRegards,\nIrene (Customer Ltd)\n"),
             part("Content-Type: message/rfc822; name=\"Undelivered Mail Returned to Sender.eml\"\n"
                  "Content-Disposition: attachment; filename=\"Undelivered Mail Returned to Sender.eml\"", inner)]
    head = (f"{top('mail.customer.test', '203.0.113.70', 'support@example.org', t, 'irene@customer.test')}\n"
            f"From: Irene Fox <irene@customer.test>\nTo: support@example.org\n"
            f"Subject: Fwd: Undelivered Mail Returned to Sender\nDate: {rfc(t)}\nMessage-ID: {msgid('customer.test')}\n"
            f"User-Agent: Mozilla Thunderbird\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{bnd}\"")
    add("fp-forwarded-dsn-as-attachment", mail(
        "A person forwards a backscatter DSN as a message/rfc822 attachment: the forward itself is ham.",
        head, multipart(bnd, parts, "This is a multi-part message in MIME format.")))
    t = when(8)
    add("fp-forwarded-dsn-inline", plain(
        f"{top('mail-sor-f10.googlemail.test', '198.51.100.110', 'support@example.org', t, 'tom.hill@gmail.test')}\n"
        f"From: Tom Hill <tom.hill@gmail.test>\nTo: support@example.org\nSubject: Fwd: Mail delivery failed: returning message to sender\n"
        f"Date: {rfc(t)}\nMessage-ID: <CA+{hexid(30)}@mail.gmail.test>",
        "Hi, I got this when writing to your sales team. Can you check?\n\n---------- Forwarded message ---------\n"
        "From: Mail Delivery System <Mailer-Daemon@relay.kunden.test>\nDate: Fri, 20 Nov 2026 at 09:14\n"
        "Subject: Mail delivery failed: returning message to sender\nTo: <tom.hill@gmail.test>\n\n\n"
        "This message was created automatically by mail delivery software.\n\nA message that you sent could not be "
        "delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n"
        "  saels@example.org\n    SMTP error from remote mail server after RCPT TO:<saels@example.org>:\n"
        "    550 5.1.1 <saels@example.org>: Recipient address rejected: User unknown\n",
        "A person forwards a bounce inline (Gmail 'Forwarded message'); Exim bounce text in the body."))

    # --- cron, logwatch, pflogsumm --------------------------------------------------------------------
    t = when(9)
    lines = "\n".join(
        f"Nov 20 0{h}:{m:02d}:{s:02d} mx1 postfix/smtpd[{RNG.randrange(1000, 9999)}]: NOQUEUE: reject: RCPT from "
        f"unknown[203.0.113.{RNG.randrange(2, 250)}]: 550 5.1.1 <{u}@example.org>: Recipient address rejected: "
        f"User unknown in virtual mailbox table; from=<> to=<{u}@example.org> proto=ESMTP helo=<mail.bouncer.test>"
        for h, m, s, u in [(1, 12, 3, "old.user"), (2, 44, 51, "webmaster"), (3, 3, 9, "jdoe"), (4, 31, 40, "sales2"),
                           (5, 2, 17, "admin1")])
    add("cron-bounce-report-550", plain(
        f"{local_pickup('mx1.example.org', 'root@mx1.example.org', t)}\n"
        f"From: root@mx1.example.org (Cron Daemon)\nTo: postmaster@example.org\n"
        f"Subject: Cron <root@mx1> /usr/local/bin/rejected-recipients --since yesterday\nDate: {rfc(t)}\n"
        f"Message-ID: <{t.strftime('%Y%m%d%H%M%S')}.{hexid(6).upper()}@mx1.example.org>\nX-Cron-Env: <SHELL=/bin/sh>\n"
        f"X-Cron-Env: <HOME=/root>\nAuto-Submitted: auto-generated\nPrecedence: bulk",
        f"Rejected recipients, last 24 hours (5 shown of 231):\n\n{lines}\n\nTop status codes:\n   212  550 5.1.1 User unknown\n"
        f"    14  550 5.7.1 Service unavailable\n     5  450 4.7.1 Helo command rejected\n",
        "Cron mail from our MX full of '550 5.1.1' and from=<> log lines.", ctype="text/plain; charset=us-ascii", cte="7bit"))
    t = when(9)
    add("logwatch-postfix-section", plain(
        f"{local_pickup('mx2.example.org', 'logwatch@mx2.example.org', t)}\n"
        f"From: logwatch@mx2.example.org\nTo: postmaster@example.org\nSubject: Logwatch for mx2.example.org (Linux)\n"
        f"Date: {rfc(t)}\nMessage-ID: <{hexid(16)}@mx2.example.org>\nAuto-Submitted: auto-generated",
        " ################### Logwatch 7.10 (07/22/23) ####################\n        Processing Initiated: "
        f"{t.strftime('%a %b %d %H:%M:%S %Y')}\n        Date Range Processed: yesterday\n        Detail Level of Output: 5\n"
        "        Logfiles for Host: mx2.example.org\n ##################################################################\n\n"
        " --------------------- Postfix Begin ------------------------\n\n"
        "    8.120M  Bytes accepted                           8,505,344\n       612   Accepted                       91.07%\n"
        "        60   Rejected                        8.93%\n\n****** Detail (10) ******\n\n        42   550 5.1.1 Recipient address "
        "rejected: User unknown in virtual mailbox table\n            12   <nobody@example.org>\n            30   <info2@example.net>\n"
        "        11   Bounced (remote) ... 550 5.1.1 The email account that you tried to reach does not exist\n"
        "         7   Delivery Status Notification (Failure) sent to <> (null sender)\n\n"
        " ---------------------- Postfix End -------------------------\n\n ###################### Logwatch End #########################\n",
        "Logwatch report with 550 5.1.1 lines and DSN phrases.", ctype="text/plain; charset=us-ascii", cte="7bit"))
    t = when(9)
    add("pflogsumm-daily-report", plain(
        f"{top('smtp1.out.example.org', '192.0.2.25', 'postmaster@example.org', t, 'root@smtp1.out.example.org')}\n"
        f"From: root@smtp1.out.example.org\nTo: postmaster@example.org\nSubject: Postfix log summary for smtp1.out.example.org\n"
        f"Date: {rfc(t)}\nMessage-ID: <{hexid(16)}@smtp1.out.example.org>",
        "Grand Totals\n------------\nmessages\n\n   4711   received\n   4702   delivered\n      3   deferred  (11  deferrals)\n"
        "     19   bounced\n      0   rejected (0%)\n\nmessage bounce detail (by relay)\n--------------------------------\n"
        "  mx.remote.example.com[203.0.113.10]:25 (total: 7)\n         5   550 5.1.1 <kunde17@remote.example.com>: Recipient "
        "address rejected: User unknown\n         2   552 5.2.2 Mailbox full\n  mail.bouncer.test[203.0.113.20]:25 (total: 4)\n"
        "         4   550 5.1.1 User unknown\n\nmessage deferral detail\n-----------------------\n  smtp (total: 11)\n"
        "        11   connect to mx.univ.test[203.0.113.122]:25: Connection timed out\n",
        "pflogsumm report from our relay: bounce detail with 550 5.1.1.", ctype="text/plain; charset=us-ascii", cte="7bit"))

    # --- newsletters ------------------------------------------------------------------------------------
    t = when(10)
    html = ("<html><body><h1>Deliverability Digest</h1><p>Why are your emails <b>undeliverable</b>? Five reasons your "
            "campaigns bounce - and how to fix them.</p><p>Plus: set up the perfect <i>out of office</i> message before "
            "the holidays.</p><p><a href=\"https://news.esp.test/unsub?u=1132\">Unsubscribe</a></p></body></html>\n")
    text = ("Deliverability Digest - November\n\nWhy are your emails undeliverable? Five reasons your campaigns bounce,\n"
            "from 'mailbox full' to '550 5.1.1 user unknown', and how to fix them.\n\nPlus: write the perfect out of office "
            "message before the holidays.\n\nUnsubscribe: https://news.esp.test/unsub?u=1132\n")
    bnd = "nl_" + hexid(20)
    parts = [part("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable", qp(text)),
             part("Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable", qp(html))]
    head = (f"{top('mta12.esp.test', '198.51.100.212', 'k.tanaka@example.org', t, 'bounce-1132-k.tanaka=example.org@esp.test')}\n"
            f"From: Deliverability Digest <news@esp.test>\nTo: k.tanaka@example.org\n"
            f"Subject: Undeliverable emails? 5 fixes + your out of office checklist\nDate: {rfc(t)}\n"
            f"Message-ID: {msgid('esp.test')}\nList-Unsubscribe: <https://news.esp.test/unsub?u=1132>\n"
            f"List-Unsubscribe-Post: List-Unsubscribe=One-Click\nPrecedence: bulk\nFeedback-ID: 1132:nov:esp\n"
            f"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"{bnd}\"")
    add("newsletter-undeliverable-out-of-office", mail("Newsletter whose subject says 'Undeliverable' and 'out of office'.",
                                                        head, multipart(bnd, parts)))
    t = when(10)
    add("newsletter-it-security-virus-warning", plain(
        f"{top('mail.security-news.test', '203.0.113.245', 'erik.svensson@example.org', t, 'list@security-news.test')}\n"
        f"From: Security Weekly <list@security-news.test>\nTo: erik.svensson@example.org\n"
        f"Subject: Virus alert: fake 'message blocked' notices in circulation\nDate: {rfc(t)}\nMessage-ID: {msgid('security-news.test')}\n"
        f"List-Id: <weekly.security-news.test>\nList-Unsubscribe: <mailto:leave@security-news.test>\nPrecedence: bulk",
        "This week: criminals send fake notices that read \"Our virus detector has been triggered by a\n"
        "message you sent\" or \"VIRUS IN MAIL FROM YOU\" with a link to a fake quarantine portal.\n"
        "Real scanners like amavisd-new, Sophos or Mimecast never ask for your password.\n",
        "Security newsletter quoting virus-notice phrases."))
    t = when(10)
    add("newsletter-hr-holiday-auto-reply-tips", plain(
        f"{top('smtp2.out.example.org', '198.51.100.6', 'all-staff@example.org', t, 'hr@example.org')}\n"
        f"From: HR Team <hr@example.org>\nTo: all-staff@example.org\nSubject: Before the holidays: set your automatic reply\n"
        f"Date: {rfc(t)}\nMessage-ID: {msgid('example.org')}\nPrecedence: bulk",
        "Dear colleagues,\n\nbefore you leave, please set an automatic reply (\"Out of Office\") in Outlook:\nFile > "
        "Automatic Replies > Send automatic replies. Suggested text:\n\n  \"Thank you for your email. I am out of the office "
        "until 4 January with\n  no access to email.\"\n\nHappy holidays!\nHR\n",
        "Internal HR mail explaining 'Automatic reply' / 'Out of Office' with a sample text."))

    t = when(10)
    add("monitoring-alert-mail-queue", plain(
        f"{top('monitor.example.org', '192.0.2.40', 'postmaster@example.org', t, 'nagios@monitor.example.org')}\n"
        f"From: Nagios <nagios@monitor.example.org>\nTo: postmaster@example.org\n"
        f"Subject: ** PROBLEM Service Alert: smtp1.out.example.org/mailq is WARNING **\nDate: {rfc(t)}\n"
        f"Message-ID: <{hexid(16)}@monitor.example.org>\nAuto-Submitted: auto-generated\nPrecedence: bulk",
        "***** Nagios *****\n\nNotification Type: PROBLEM\n\nService: mailq\nHost: smtp1.out.example.org\n"
        "Address: 192.0.2.25\nState: WARNING\n\nAdditional Info:\n\nWARNING: mailq is 412 (threshold w = 200); 388 deferred, "
        "mostly 'Undelivered Mail Returned to Sender' notices and '450 4.2.0 Greylisted'\n",
        "Monitoring alert about the relay's queue: mentions bounces and our relay, is neither.",
        ctype="text/plain; charset=us-ascii", cte="7bit"))

    # --- more human mail ---------------------------------------------------------------------------------
    t = when(11)
    add("human-it-asks-about-spam-notice", plain(
        f"{top('smtp1.out.example.org', '192.0.2.25', 'helpdesk@example.org', t, 'fatima.haddad@example.org')}\n"
        f"From: Fatima Haddad <fatima.haddad@example.org>\nTo: helpdesk@example.org\nSubject: Strange 'verify you are human' mail\n"
        f"Date: {rfc(t)}\nMessage-ID: {msgid('example.org')}",
        "Hi helpdesk,\n\ntoday I got three mails asking me to \"please verify you are a human\" and one saying\n"
        "my message \"requires that you verify that you are a real live human being\". I never wrote to\n"
        "those people. Should I click the links?\n\nFatima\n",
        "A colleague asks the helpdesk about challenge-response mails, quoting their phrases."))
    t = when(11)
    add("human-crlf-meeting-notes", plain(
        f"{top('mail.partner.test', '198.51.100.121', 'ines.costa@example.net', t, 'nina@partner.test')}\n"
        f"From: Nina Vogel <nina@partner.test>\nTo: ines.costa@example.net\nCc: carol@example.net\nSubject: Meeting notes 19 Nov\n"
        f"Date: {rfc(t)}\nMessage-ID: {msgid('partner.test')}",
        "Hi Ines,\n\nnotes from Thursday:\n- budget approved\n- next review 10 December\n- Carol sends the revised plan\n\nNina\n",
        "Ordinary human mail written with CRLF line endings."), crlf=True)
    t = when(11)
    add("human-reply-quoting-received-headers", plain(
        f"{top('mail.partner.test', '198.51.100.121', 'erik.svensson@example.org', t, 'admin@partner.test')}\n"
        f"From: Partner Admin <admin@partner.test>\nTo: erik.svensson@example.org\nSubject: Re: your mail arrived late\n"
        f"Date: {rfc(t)}\nMessage-ID: {msgid('partner.test')}",
        "Hi Erik,\n\nhere are the headers of your mail as we received it - the delay is on our side:\n\n"
        + "\n".join("> " + l for l in genuine("smtp1-name", "mx.partner.test", later(t, -9000))[0].split("\n"))
        + "\n\nOur virus scanner queue was stuck for 2 hours. Sorry!\n",
        "A human reply quoting our relay's Received line (must not be treated as a bounce)."))
    return out
