"""Delivery status notifications in the shapes of the common MTAs.

Each builder takes a Spec (who sent what to whom, which hops the original carried, how the
original is returned) and gives a whole message as our MX receives it. The same builders make the
backscatter (foreign hops) and the legitimate bounces (genuine hops from our relays).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .common import (RNG, b64, boundary, display, exim_id, hexid, inbound, later, mail, msgid, multipart,
                     original, part, qid_postfix, qid_sendmail, qp, rfc, rfc_name)


PST = dt.timezone(dt.timedelta(hours=-8))


@dataclass
class Spec:
    note: str
    sender: str                   # our user: the forged (backscatter) or real (legit) sender
    rcpt: str                     # the recipient that failed
    host: str                     # the reporting/bouncing MTA
    ip: str
    hops: list[str]               # Received hops of the original (newest first)
    subject: str
    t: object                     # time of the bounce
    t_orig: object = None
    mode: str = "return-path"     # 'return-path', 'x-envelope', 'both', 'none'
    env_sender: str = ""          # the envelope sender of the bounce ('' = null)
    attach: str = "rfc822"        # 'rfc822', 'headers', 'headers-b64', 'inline', 'none', 'quoted'
    body: str = "Hello,\n\nplease find the details below.\n"
    orig_from: str | None = None
    orig_mid: str | None = None
    status: str = "5.1.1"
    diag: str | None = None
    extra: list[str] = field(default_factory=list)   # extra top-level headers
    crlf: bool = False
    mx: str = "mx1.example.org"
    top_extra_hops: list[str] = field(default_factory=list)

    def orig(self, headers_only: bool = False) -> str:
        return original(self.hops, self.orig_from or display(self.sender), f"<{self.rcpt}>", self.subject,
                        self.t_orig or later(self.t, -RNG.randrange(30, 900)), mid=self.orig_mid, body=self.body,
                        headers_only=headers_only, return_path=self.sender if RNG.random() < 0.4 else None)

    def top(self) -> str:
        return inbound(self.host, self.ip, self.sender, self.t, sender=self.env_sender, mode=self.mode,
                       mx=self.mx, extra_hops=self.top_extra_hops)

    @property
    def local(self) -> str:
        return self.rcpt.split("@")[0]


def quote(text: str, prefix: str = "> ") -> str:
    return "\n".join(prefix + line if line else prefix.rstrip() for line in text.rstrip("\n").split("\n"))


def returned_part(s: Spec, label: str = "Undelivered Message", desc: bool = True) -> str:
    """The third part of a multipart/report: the original, its headers, or base64 headers."""
    d = f"Content-Description: {label}\n" if desc else ""
    if s.attach == "rfc822":
        return part(f"{d}Content-Type: message/rfc822", s.orig())
    if s.attach == "headers":
        return part(f"{d}Content-Type: text/rfc822-headers", s.orig(headers_only=True))
    if s.attach == "headers-b64":
        return part(f"{d}Content-Type: text/rfc822-headers; charset=us-ascii\nContent-Transfer-Encoding: base64",
                    b64(s.orig(headers_only=True)))
    raise ValueError(s.attach)


# --- Postfix ---------------------------------------------------------------------------------

def postfix(s: Spec, *, kind: str = "local") -> str:
    """Postfix bounce(8): kind local (unknown user), remote (rejected by the next hop), delay, global."""
    q = qid_postfix()
    bnd = f"{q}.{RNG.randrange(1763000000, 1765000000)}/{s.host}"
    arrival = rfc_name(later(s.t, -RNG.randrange(20, 4000)))
    if kind == "local":
        diag = s.diag or f'unknown user: "{s.local}"'
        human = f"<{s.rcpt}>: {diag}"
        diag_line = f"Diagnostic-Code: X-Postfix; {diag}"
        remote = ""
    else:
        rhost, rip = f"mailstore{RNG.randrange(1, 9)}.{s.rcpt.split('@')[1]}", f"203.0.113.{RNG.randrange(100, 130)}"
        diag = s.diag or f"550 5.1.1 <{s.rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"
        human = f"<{s.rcpt}>: host {rhost}[{rip}] said: {diag} (in reply to RCPT TO command)"
        diag_line = f"Remote-MTA: dns; {rhost}\nDiagnostic-Code: smtp; {diag}"
        remote = rhost
    subject = "Undelivered Mail Returned to Sender"
    intro = ("I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients. "
             "It's attached below.\n\nFor further assistance, please send mail to postmaster.\n\nIf you do so, please "
             "include this problem report. You can\ndelete your own text from the attached returned message.")
    action = "failed"
    if kind == "delay":
        subject = "Delayed Mail (still being retried)"
        intro = ("####################################################################\n"
                 "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
                 "####################################################################\n\n"
                 "Your message could not be delivered for more than 4 hour(s).\nIt will be retried until it is 5 day(s) old.\n\n"
                 "For further assistance, please send mail to postmaster.\n\nIf you do so, please include this problem "
                 "report. You can\ndelete your own text from the attached returned message.")
        human = f"<{s.rcpt}>: connect to {remote or 'mx.' + s.rcpt.split('@')[1]}[203.0.113.121]:25: Connection timed out"
        diag_line = f"Diagnostic-Code: X-Postfix; {human.split(': ', 1)[1]}"
        action = "delayed\nWill-Retry-Until: " + rfc_name(later(s.t, 4 * 86400))
    if kind == "success":
        subject = "Successful Mail Delivery Report"
        intro = ("Your message was successfully delivered to the destination(s)\nlisted below. If the message was "
                 "delivered to mailbox you will\nreceive no further notifications. Otherwise you may still receive "
                 "notifications\nof mail delivery errors from other systems.")
        rhost = f"mx.{s.rcpt.split('@')[1]}"
        human = f"<{s.rcpt}>: delivery via {rhost}[203.0.113.{RNG.randrange(100, 130)}]:25: 250 2.0.0 Ok: queued as {qid_postfix()}"
        diag_line = f"Remote-MTA: dns; {rhost}\nDiagnostic-Code: smtp; 250 2.0.0 Ok"
        action = "relayed"
    report_type = "global-delivery-status" if kind == "global" else "delivery-status"
    text = f"This is the mail system at host {s.host}.\n\n{intro}\n\n                   The mail system\n\n{human}\n"
    dsn = (f"Reporting-MTA: dns; {s.host}\nX-Postfix-Queue-ID: {q}\nX-Postfix-Sender: rfc822; {s.sender}\n"
           f"Arrival-Date: {arrival}\n\nFinal-Recipient: rfc822; {s.rcpt}\nOriginal-Recipient: rfc822;{s.rcpt}\n"
           f"Action: {action}\nStatus: {'4.4.1' if kind == 'delay' else '2.0.0' if kind == 'success' else s.status}\n{diag_line}\n")
    if kind in ("delay", "success"):
        label = "Message Headers" if kind == "success" else "Undelivered Message Headers"
        s.attach = "headers" if s.attach == "rfc822" else s.attach
    else:
        label = "Undelivered Message" if s.attach == "rfc822" else "Undelivered Message Headers"
    parts = [part("Content-Description: Notification\nContent-Type: text/plain; charset=us-ascii", text),
             part(f"Content-Description: Delivery report\nContent-Type: message/{report_type}"
                  + ("\nContent-Transfer-Encoding: 8bit" if kind == "global" else ""), dsn)]
    if kind == "global":
        parts.append(part(f"Content-Description: {label}\nContent-Type: message/global", s.orig()))
    else:
        parts.append(returned_part(s, label))
    head = (f"{s.top()}\nDate: {rfc_name(s.t)}\nFrom: MAILER-DAEMON@{s.host} (Mail Delivery System)\n"
            f"Subject: {subject}\nTo: {s.sender}\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type={report_type};\n\tboundary=\"{bnd}\"\n"
            f"Content-Transfer-Encoding: {'8bit' if kind == 'global' else '7bit'}\n"
            f"Message-Id: <{s.t.strftime('%Y%m%d%H%M%S')}.{qid_postfix()}@{s.host}>")
    head += "".join("\n" + e for e in s.extra)
    return mail(s.note, head, multipart(bnd, parts, "This is a MIME-encapsulated message."))


# --- Sendmail --------------------------------------------------------------------------------

def sendmail(s: Spec, *, warning: bool = False, client: str = "dsl-203-0-113-77.dyn.isp.test [203.0.113.77]") -> str:
    q = qid_sendmail()
    bnd = f"{q}.{RNG.randrange(1763000000, 1765000000)}/{s.host}"
    diag = s.diag or f"550 5.1.1 <{s.rcpt}>... User unknown"
    if warning:
        subject = "Warning: could not send message for past 4 hours"
        body = (f"    **********************************************\n    **      THIS IS A WARNING MESSAGE ONLY      **\n"
                f"    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\n    **********************************************\n\n"
                f"The original message was received at {rfc_name(later(s.t, -14500))}\nfrom {client}\n\n"
                f"   ----- Transcript of session follows -----\n<{s.rcpt}>... Deferred: Connection timed out with "
                f"mx.{s.rcpt.split('@')[1]}.\nWarning: message still undelivered after 4 hours\n"
                f"Will keep trying until message is 5 days old\n")
        action, status, dline = "delayed", "4.4.1", "Diagnostic-Code: SMTP; 451 4.4.1 reply: read error from mx"
    else:
        subject = "Returned mail: see transcript for details"
        body = (f"The original message was received at {rfc_name(later(s.t, -40))}\nfrom {client}\n\n"
                f"   ----- The following addresses had permanent fatal errors -----\n<{s.rcpt}>\n"
                f"    (reason: {diag})\n\n   ----- Transcript of session follows -----\n"
                f"... while talking to mailhost.{s.rcpt.split('@')[1]}.:\n>>> DATA\n<<< {diag}\n"
                f"{diag.split(' ', 1)[0]} {s.rcpt}... User unknown\n<<< 503 5.0.0 Need RCPT (recipient)\n")
        action, status, dline = "failed", s.status, f"Diagnostic-Code: SMTP; {diag}"
    dsn = (f"Reporting-MTA: dns; {s.host}\nReceived-From-MTA: DNS; {client.split(' ')[0]}\nArrival-Date: "
           f"{rfc_name(later(s.t, -40))}\n\nFinal-Recipient: RFC822; {s.rcpt}\nAction: {action}\nStatus: {status}\n"
           f"Remote-MTA: DNS; mailhost.{s.rcpt.split('@')[1]}\n{dline}\nLast-Attempt-Date: {rfc_name(s.t)}\n")
    parts = [part("Content-Type: text/plain; charset=us-ascii", body),
             part("Content-Type: message/delivery-status", dsn), returned_part(s, desc=False)]
    head = (f"{s.top()}\nDate: {rfc_name(s.t)}\nFrom: Mail Delivery Subsystem <MAILER-DAEMON@{s.host}>\n"
            f"Message-Id: <{s.t.strftime('%Y%m%d%H%M')}.{q}@{s.host}>\nTo: <{s.sender}>\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"{bnd}\"\n"
            f"Subject: {subject}\nAuto-Submitted: auto-generated (failure)")
    return mail(s.note, head, multipart(bnd, parts, "This is a MIME-encapsulated message"))


# --- Exim --------------------------------------------------------------------------------------

def exim(s: Spec, *, mime: bool = True) -> str:
    rhost = f"mx{RNG.randrange(1, 4)}.{s.rcpt.split('@')[1]}"
    diag = s.diag or "550 5.1.1 <{0}>: No such user here".format(s.rcpt)
    expl = (f"This message was created automatically by mail delivery software.\n\nA message that you sent could not "
            f"be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) "
            f"failed:\n\n  {s.rcpt}\n    host {rhost} [203.0.113.{RNG.randrange(40, 60)}]\n    SMTP error from "
            f"remote mail server after RCPT TO:<{s.rcpt}>:\n    {diag}\n")
    head = (f"{s.top()}\nX-Failed-Recipients: {s.rcpt}\nAuto-Submitted: auto-replied\n"
            f"From: Mail Delivery System <Mailer-Daemon@{s.host}>\nTo: {s.sender}\n")
    if not mime:
        body = expl + "\n------ This is a copy of the message, including all the headers. ------\n\n" + s.orig()
        head += (f"Subject: Mail delivery failed: returning message to sender\nMessage-Id: <E{exim_id()}@{s.host}>\n"
                 f"Date: {rfc(s.t)}")
        return mail(s.note, head, body)
    bnd = boundary("exim")
    dsn = (f"Reporting-MTA: dns; {s.host}\n\nAction: failed\nFinal-Recipient: rfc822;{s.rcpt}\nStatus: {s.status}\n"
           f"Remote-MTA: dns; {rhost}\nDiagnostic-Code: smtp; {diag}\n")
    parts = [part("Content-type: text/plain; charset=us-ascii", expl),
             part("Content-type: message/delivery-status", dsn),
             part("Content-type: message/rfc822", s.orig()) if s.attach == "rfc822" else returned_part(s, desc=False)]
    head += (f"Content-Type: multipart/report; report-type=delivery-status; boundary={bnd}\nMIME-Version: 1.0\n"
             f"Subject: Mail delivery failed: returning message to sender\nMessage-Id: <E{exim_id()}@{s.host}>\n"
             f"Date: {rfc(s.t)}")
    pre = ("This is a MIME-formatted message.  If you see this text it means that your\n"
           "E-mail software does not support MIME-formatted messages.")
    return mail(s.note, head, multipart(bnd, parts, pre))


# --- qmail -------------------------------------------------------------------------------------

def qmail(s: Spec, *, flavour: str = "classic") -> str:
    if flavour == "vpopmail":
        reason = "Sorry, no mailbox here by that name. vpopmail (#5.1.1)"
    elif flavour == "remote":
        reason = (f"203.0.113.{RNG.randrange(60, 70)} does not like recipient.\nRemote host said: 550 5.1.1 "
                  f"<{s.rcpt}>: Recipient address rejected: User unknown\nGiving up on 203.0.113.64.")
    else:
        reason = "Sorry, no mailbox here by that name. (#5.1.1)"
    body = (f"Hi. This is the qmail-send program at {s.host}.\nI'm afraid I wasn't able to deliver your message to "
            f"the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n"
            f"<{s.rcpt}>:\n{reason}\n\n--- Below this line is a copy of the message.\n\n{s.orig()}")
    head = (f"{s.top()}\nDate: {rfc_qmail_header(s.t)}\nFrom: MAILER-DAEMON@{s.host}\nTo: {s.sender}\n"
            f"Subject: failure notice\nMessage-ID: <{RNG.randrange(10**9, 2 * 10**9)}.{RNG.randrange(1000, 99999)}"
            f".qmail@{s.host}>")
    return mail(s.note, head, body)


def rfc_qmail_header(t) -> str:
    return t.strftime("%d %b %Y %H:%M:%S -0000").lstrip("0")


# --- Exchange / Office 365 ----------------------------------------------------------------------

def exchange(s: Spec, *, version: str = "2016", headers_inline: bool = True) -> str:
    """Exchange 2013-2019 NDR: text (QP) + HTML, delivery-status, and the original or its headers."""
    gen = f"EX{RNG.randrange(1, 4):02d}.{s.rcpt.split('@')[1]}"
    diag = s.diag or "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    text = (f"Delivery has failed to these recipients or groups:\n\n{s.rcpt}<mailto:{s.rcpt}>\nThe email address you "
            f"entered couldn't be found. Please check the recipient's email address and try to send the message again. "
            f"If the problem continues, please contact your email admin.\n\n\n\n\n\n\nDiagnostic information for "
            f"administrators:\n\nGenerating server: {gen}\n\n{s.rcpt}\nRemote Server returned '{diag}'\n\n")
    if headers_inline:
        text += "Original message headers:\n\n" + s.orig(headers_only=True)
    html = ("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=us-ascii\"></head>"
            f"<body><p><b><font color=\"#000066\" size=\"3\" face=\"Arial\">Delivery has failed to these recipients or "
            f"groups:</font></b></p><p><a href=\"mailto:{s.rcpt}\">{s.rcpt}</a><br>The email address you entered "
            f"couldn't be found.</p><p>Generating server: {gen}</p></body></html>\n")
    alt = boundary("outlook")
    inner = multipart(alt, [part("Content-Type: text/plain; charset=\"us-ascii\"\nContent-Transfer-Encoding: "
                                 "quoted-printable", qp(text)),
                            part("Content-Type: text/html; charset=\"us-ascii\"\nContent-Transfer-Encoding: "
                                 "quoted-printable", qp(html))])
    bnd = boundary("outlook")
    dsn = (f"Reporting-MTA: dns;{gen}\nReceived-From-MTA: dns;{s.host}\nArrival-Date: {rfc(later(s.t, -3))}\n\n"
           f"Final-recipient: RFC822;{s.rcpt}\nAction: failed\nStatus: 5.1.10\nDiagnostic-Code: smtp;{diag}\n"
           f"Remote-MTA: dns;{gen}\n")
    parts = [part(f"Content-Type: multipart/alternative; differences=Content-Type;\n\tboundary=\"{alt}\"", inner),
             part("Content-Type: message/delivery-status", dsn)]
    if s.attach != "none":
        parts.append(returned_part(s, desc=False))
    domain = s.rcpt.split("@")[1]
    head = (f"{s.top()}\nFrom: Microsoft Outlook\n <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@{domain}>\n"
            f"To: {display(s.sender)}\nDate: {s.t.strftime('%a, %d %b %Y %H:%M:%S %z')}\nContent-Type: multipart/report;"
            f" report-type=delivery-status;\n\tboundary=\"{bnd}\"\nX-MS-Exchange-Message-Is-Ndr:\nContent-Language: "
            f"en-US\nMessage-ID:\n <{hexid(32)}@{gen}>\nIn-Reply-To: {s.orig_mid or msgid(s.sender.split('@')[1])}\n"
            f"Subject: Undeliverable: {s.subject}\nMIME-Version: 1.0\nAuto-Submitted: auto-replied\n"
            f"X-MS-Exchange-Organization-SCL: -1\nX-MS-Exchange-Organization-AuthSource: {gen}")
    return mail(s.note, head, multipart(bnd, parts))


def office365(s: Spec) -> str:
    domain = s.rcpt.split("@")[1]
    gen = f"DB9PR0{RNG.randrange(1, 9)}MB{RNG.randrange(1000, 9999)}.eurprd0{RNG.randrange(1, 9)}.prod.outlook.test"
    diag = s.diag or "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    text = (f"Your message to {s.rcpt} couldn't be delivered.\n\n{s.local} wasn't found at {domain}.\n\n\n"
            f"{s.sender.split('@')[0]}\nOffice 365\t{s.local}\nAction Required\tRecipient\n\n\nUnknown To address\n\n\n"
            f"How to Fix It\nThe address may be misspelled or may not exist. Try one or more of the following:\n\n"
            f"  *   Send the message again following these steps: In Outlook, open this non-delivery report (NDR) and "
            f"choose Send Again from the Report ribbon.\n  *   Retype the entire address and then select Send.\n\n"
            f"Was this helpful? Send feedback to Microsoft<https://go.microsoft.test/fwlink/?LinkId=525921>.\n\n"
            f"________________________________\n\nMore Info for Email Admins\nStatus code: 550 5.1.10\n\n"
            f"This error occurs because the sender sent a message to an email address hosted by Office 365 but the "
            f"address is incorrect or doesn't exist at the destination domain.\n\nOriginal Message Details\n"
            f"Created Date:\t{later(s.t, -5).strftime('%m/%d/%Y %I:%M:%S %p')}\nSender Address:\t{s.sender}\n"
            f"Recipient Address:\t{s.rcpt}\nSubject:\t{s.subject}\n\nError Details\nReported error:\t{diag}\n"
            f"DSN generated by:\t{gen}\n\n")
    if s.attach == "inline":
        text += "Original Message Headers\n\n" + s.orig(headers_only=True)
    alt = boundary("outlook")
    inner = multipart(alt, [part("Content-Type: text/plain; charset=\"utf-8\"\nContent-Transfer-Encoding: base64",
                                 b64(text)),
                            part("Content-Type: text/html; charset=\"utf-8\"\nContent-Transfer-Encoding: base64",
                                 b64(f"<html><body><p>Your message to {s.rcpt} couldn't be delivered.</p>"
                                     f"<p>{s.local} wasn't found at {domain}.</p></body></html>\n"))])
    bnd = boundary("outlook")
    dsn = (f"Reporting-MTA: dns;{gen}\nReceived-From-MTA: dns;{s.host}\nArrival-Date: {rfc(later(s.t, -5))}\n\n"
           f"Original-Recipient: rfc822;{s.rcpt}\nFinal-Recipient: rfc822;{s.rcpt}\nAction: failed\nStatus: 5.1.10\n"
           f"Diagnostic-Code: smtp;{diag}\n")
    parts = [part(f"Content-Type: multipart/alternative; differences=Content-Type;\n\tboundary=\"{alt}\"", inner),
             part("Content-Type: message/delivery-status", dsn)]
    if s.attach != "inline":
        parts.append(returned_part(s, desc=False))
    head = (f"{s.top()}\nFrom: postmaster@{domain}\nTo: {s.sender}\nDate: {s.t.strftime('%a, %d %b %Y %H:%M:%S %z')}\n"
            f"Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"{bnd}\"\n"
            f"X-MS-Exchange-Message-Is-Ndr:\nContent-Language: en-US\nMessage-ID: <{hexid(32)}@{gen}>\n"
            f"Subject: Undeliverable: {s.subject}\nMIME-Version: 1.0\nAuto-Submitted: auto-replied\n"
            f"X-MS-Exchange-Organization-SCL: -1\nX-MS-PublicTrafficType: Email")
    return mail(s.note, head, multipart(bnd, parts))


# --- Gmail, Yahoo --------------------------------------------------------------------------------

def gmail(s: Spec, *, blocked: bool = False) -> str:
    if blocked:
        title, why = "** Message blocked **", (f"Your message to {s.rcpt} has been blocked. See technical details "
                                             f"below for more information.")
        resp = (f"552 5.7.0 This message was blocked because its content presents a potential\n"
                f"security issue. To review our message content and attachment content guidelines,\n"
                f"go to https://support.google.test/mail/?p=BlockedMessage {hexid(10)}.2 - gsmtp")
    else:
        title, why = "** Address not found **", (f"Your message wasn't delivered to {s.rcpt} because the address "
                                               f"couldn't be found, or is unable to receive mail.")
        resp = (f"550 5.1.1 The email account that you tried to reach does not exist. Please try\n"
                f"double-checking the recipient's email address for typos or\nunnecessary spaces. For more information, "
                f"go to\nhttps://support.google.test/mail/?p=NoSuchUser {hexid(10)}.3 - gsmtp")
    text = f"\n{title}\n\n{why}\n\nLearn more here: https://support.google.test/mail/answer/6596\n\nThe response was:\n\n{resp}\n"
    alt = hexid(28)
    inner = multipart(alt, [part("Content-Type: text/plain; charset=\"UTF-8\"", text),
                            part("Content-Type: text/html; charset=\"UTF-8\"",
                                 f"<html><body><h2>{title.strip('* ')}</h2><p>{why}</p></body></html>\n")])
    bnd = hexid(28)
    dsn = (f"Reporting-MTA: dns; googlemail.test\nArrival-Date: {rfc(later(s.t, -2))}\nX-Original-Message-ID: "
           f"{s.orig_mid or '<none>'}\n\nFinal-Recipient: rfc822; {s.rcpt}\nAction: failed\nStatus: {'5.7.0' if blocked else '5.1.1'}\n"
           f"Remote-MTA: dns; mx.{s.rcpt.split('@')[1]}. (203.0.113.{RNG.randrange(200, 220)}, the server for the domain "
           f"{s.rcpt.split('@')[1]}.)\nDiagnostic-Code: smtp; {resp.splitlines()[0]}\nLast-Attempt-Date: "
           f"{s.t.astimezone(PST).strftime('%a, %d %b %Y %H:%M:%S -0800 (PST)')}\n")
    parts = [part(f"Content-Type: multipart/related; boundary=\"{alt[:20]}\"",
                  multipart(alt[:20], [part(f"Content-Type: multipart/alternative; boundary=\"{alt}\"", inner)])),
             part("Content-Type: message/delivery-status", dsn), returned_part(s, desc=False)]
    head = (f"{s.top()}\nDelivered-To: {s.sender}\nX-Failed-Recipients: {s.rcpt}\nAuto-Submitted: auto-replied\n"
            f"From: Mail Delivery Subsystem <mailer-daemon@googlemail.test>\nTo: {s.sender}\n"
            f"Subject: Delivery Status Notification (Failure)\nReferences: {s.orig_mid or '<' + hexid(12) + '@spamhost.test>'}\n"
            f"In-Reply-To: {s.orig_mid or '<' + hexid(12) + '@spamhost.test>'}\nMessage-ID: <{hexid(24)}.{hexid(8)}@mx.google.test>\n"
            f"Date: {s.t.astimezone(PST).strftime('%a, %d %b %Y %H:%M:%S -0800 (PST)')}\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; boundary=\"{bnd}\"; report-type=delivery-status")
    return mail(s.note, head, multipart(bnd, parts))


def yahoo(s: Spec) -> str:
    body = (f"Sorry, we were unable to deliver your message to the following address.\n\n<{s.rcpt}>:\n"
            f"554: delivery error: dd This user doesn't have a {s.rcpt.split('@')[1]} account ({s.rcpt}) [0] - "
            f"mta{RNG.randrange(1000, 9999)}.mail.bf1.yahoo.test\n\n--- Below this line is a copy of the message.\n\n"
            + s.orig())
    head = (f"{s.top()}\nFrom: MAILER-DAEMON@yahoo.test\nTo: {s.sender}\nSubject: Failure Notice\n"
            f"Date: {rfc(s.t)}\nMessage-ID: <{RNG.randrange(10**9, 2 * 10**9)}.{RNG.randrange(100, 999)}@yahoo.test>\n"
            "X-Yahoo-Newman-Property: ymail-5\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii")
    return mail(s.note, head, body)


# --- Lotus Domino, GroupWise, MDaemon, Courier ---------------------------------------------------

def domino(s: Spec) -> str:
    user = s.local.replace(".", " ").title()
    text = (f"Your message\n\n  Subject: {s.subject}\n\nwas not delivered to:\n\n  {s.rcpt}\n\nbecause:\n\n"
            f"  User {s.local} ({s.rcpt}) not listed in Domino Directory\n")
    bnd = f"=_related 00{hexid(6).upper()}_="
    dsn = (f"Reporting-MTA: dns;{s.host}\n\nFinal-Recipient: rfc822;{s.rcpt}\nAction: failed\nStatus: 5.1.1\n"
           f"Diagnostic-Code: X-Notes; User {user} ({s.rcpt}) not listed in Domino Directory\n")
    parts = [part("Content-Type: text/plain; charset=\"US-ASCII\"", text),
             part("Content-Type: message/delivery-status", dsn)]
    if s.attach != "none":
        parts.append(returned_part(s, desc=False))
    head = (f"{s.top()}\nSubject: DELIVERY FAILURE: User {s.local} ({s.rcpt}) not listed in Domino Directory\n"
            f"From: Postmaster@{s.host}\nTo: {s.sender}\nDate: {rfc(s.t)}\nMessage-ID: "
            f"<OF{hexid(8).upper()}.{hexid(8).upper()}-ON{hexid(8).upper()}.{hexid(8).upper()}@{s.host.split('.', 1)[1]}>\n"
            f"X-MIMETrack: Serialize by Router on {s.host.split('.')[0]}/ACME(Release 12.0.2FP3|March 2026) at\n {s.t.strftime('%d.%m.%Y %H:%M:%S')}\n"
            f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=\"delivery-status\";\n\tboundary=\"{bnd}\"")
    return mail(s.note, head, multipart(bnd, parts))


def groupwise(s: Spec) -> str:
    bnd = f"=__Part{hexid(8).upper()}.0__="
    text = (f"The message that you sent was undeliverable to the following:\n\t{s.local} (user not found)\n\n"
            f"Possibly truncated original message follows:\n\n")
    head_orig = s.orig(headers_only=True)
    parts = [part("Content-Type: text/plain; charset=US-ASCII\nContent-Transfer-Encoding: 7bit", text + head_orig),
             part("Content-Type: message/delivery-status", f"Reporting-MTA: dns; {s.host}\n\nFinal-Recipient: "
                  f"rfc822;{s.rcpt}\nAction: failed\nStatus: 5.1.1 (user not found)\n")]
    head = (f"{s.top()}\nDate: {rfc(s.t)}\nFrom: Mail Delivery System <Postmaster@{s.host}>\nTo: <{s.sender}>\n"
            f"Subject: Message status - undeliverable\nMessage-ID: <{hexid(8).upper()}0200{hexid(4).upper()}000"
            f"{hexid(5).upper()}@{s.host}>\nX-Mailer: GroupWise Internet Agent 24.3.0\n"
            f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"{bnd}\"")
    return mail(s.note, head, multipart(bnd, parts))


def mdaemon(s: Spec, *, warning: bool = False) -> str:
    if warning:
        subject = "Warning: message " + hexid(6).upper() + " delayed 6 hours"
        text = (f"This message was created automatically by mail delivery software on {s.host}.\n\n"
                f"The attached message has not yet been delivered. It is being retried at regular intervals; "
                f"you will be told if it finally fails.\n\nThis is a warning only. YOU DO NOT NEED TO RESEND YOUR MESSAGE.\n\n"
                f"Undelivered recipient: {s.rcpt}\nLast error: 421 4.4.2 Connection dropped\n")
    else:
        subject = "Permanent Delivery Failure"
        text = (f"This message was created automatically by mail delivery software on {s.host}.\n\n"
                f"The attached message had PERMANENT fatal delivery errors!\n\nAfter one or more unsuccessful delivery "
                f"attempts the attached message has been removed from the mail queue on this server. Retries and "
                f"their frequency are set by this server's configuration.\n\n--- Session Transcript ---\n"
                f" {rfc(later(s.t, -4))} MDaemon Remote Queue: connecting to 203.0.113.75 ...\n"
                f" {rfc(later(s.t, -3))} >>> RCPT TO:<{s.rcpt}>\n {rfc(later(s.t, -3))} <<< 550 5.1.1 <{s.rcpt}>: "
                f"Mailbox unavailable\n--- End Transcript ---\n")
    bnd = hexid(20)
    parts = [part("Content-Type: text/plain; charset=us-ascii", text), returned_part(s, desc=False)]
    head = (f"{s.top()}\nFrom: MDaemon@{s.host}\nTo: {s.sender}\nDate: {rfc(s.t)}\nSubject: {subject}\n"
            f"Message-ID: <MDAEMON{hexid(16).upper()}@{s.host}>\nX-MDDSN-Message: Yes\nX-MDaemon-Deliver-To: {s.sender}\n"
            f"X-Actual-From: MDaemon@{s.host}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{bnd}\"")
    return mail(s.note, head, multipart(bnd, parts, "This is a multi-part message in MIME format."))


def courier(s: Spec, client: str = "dsl-203-0-113-77.dyn.isp.test ([::ffff:203.0.113.77])") -> str:
    bnd = f"=_courier-{RNG.randrange(10000, 99999)}-{RNG.randrange(1763000000, 1765000000)}-0001-2"
    text = (f"This is a delivery status notification from {s.host},\nrunning the Courier mail server, version 1.3.4.\n\n"
            f"The original message was received on {rfc(later(s.t, -60))}\nfrom {client}\n\n"
            f"---------------------------------------------------------------------------\n\n"
            f"                           UNDELIVERABLE MAIL\n\nYour message to the following recipients cannot be "
            f"delivered:\n\n<{s.rcpt}>:\n    mx.{s.rcpt.split('@')[1]} [203.0.113.82]:\n>>> RCPT TO:<{s.rcpt}>\n"
            f"<<< 550 5.1.1 mailbox unknown\n\n---------------------------------------------------------------------------\n\n"
            f"If your message was also sent to additional recipients, their delivery\nstatus is not included in this report.\n")
    dsn = (f"Reporting-MTA: dns; {s.host}\nArrival-Date: {rfc(later(s.t, -60))}\n\nFinal-Recipient: rfc822; {s.rcpt}\n"
           f"Action: failed\nStatus: 5.0.0\nRemote-MTA: dns; mx.{s.rcpt.split('@')[1]}\nDiagnostic-Code: smtp; 550 5.1.1 mailbox unknown\n")
    parts = [part("Content-Type: text/plain; charset=\"utf-8\"\nContent-Transfer-Encoding: 7bit", text),
             part("Content-Type: message/delivery-status\nContent-Transfer-Encoding: 7bit", dsn),
             returned_part(s, desc=False)]
    head = (f"{s.top()}\nFrom: \"Courier mail server at {s.host}\" <@>\nTo: {s.sender}\n"
            f"Subject: NOTICE: mail delivery status.\nMime-Version: 1.0\nContent-Type: multipart/report; "
            f"report-type=delivery-status;\n    boundary=\"{bnd}\"\nContent-Transfer-Encoding: 7bit\n"
            f"Message-ID: <courier.{hexid(16).upper()}.{hexid(8).upper()}@{s.host}>\nDate: {rfc(s.t)}")
    return mail(s.note, head, multipart(bnd, parts, "This is a MIME-formatted message."))


# --- groupware with a non-null sender; Sieve reject ------------------------------------------------

def groupware_nonnull(s: Spec, *, product: str = "SmarterMail") -> str:
    """Some groupware servers send bounces from a real mailbox, not from <>."""
    domain = s.host.split(".", 1)[1]
    if product == "SmarterMail":
        text = (f"Delivery has failed to these recipients or distribution lists:\n\n{s.rcpt}\n"
                f"   An error occurred while trying to deliver this message to the recipient's e-mail address. "
                f"The recipient's mailbox was not found on the server.\n\n\n"
                f"-------------------- Original message headers --------------------\n\n" + s.orig(headers_only=True))
        subject = f"Undeliverable: {s.subject}"
        xm = "X-Mailer: SmarterMail 100.0.9201"
    else:
        text = (f"Your message could not be delivered to the following recipient(s):\n\n  {s.rcpt}\n"
                f"  Reason: mailbox does not exist (5.1.1)\n\nThe message was rejected by {s.host}.\n\n"
                f"--- Headers of the original message ---\n\n" + s.orig(headers_only=True))
        subject = f"Delivery failure: {s.subject}"
        xm = "X-Mailer: Kerio Connect 10.0.7"
    head = (f"{s.top()}\nFrom: \"Postmaster\" <postmaster@{domain}>\nTo: {s.sender}\nSubject: {subject}\n"
            f"Date: {rfc(s.t)}\nMessage-ID: <{hexid(20)}@{s.host}>\n{xm}\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit")
    return mail(s.note, head, text)


def sieve_reject(s: Spec) -> str:
    """RFC 5429 reject: an MDN with disposition 'deleted' - a bounce, though shaped like a receipt."""
    bnd = f"{hexid(12)}/{s.host}"
    text = (f"Your message to <{s.rcpt}> was automatically rejected:\nThis address does not accept mail from "
            f"unknown senders. Please do not write again.\n")
    mdn = (f"Reporting-UA: {s.host}; Dovecot Mail Delivery Agent\nFinal-Recipient: rfc822; {s.rcpt}\n"
           f"Original-Message-ID: {s.orig_mid or msgid('spamhost.test')}\nDisposition: automatic-action/MDN-sent-automatically; deleted\n")
    parts = [part("Content-Type: text/plain; charset=utf-8\nContent-Disposition: inline\nContent-Transfer-Encoding: 8bit", text),
             part("Content-Type: message/disposition-notification", mdn), returned_part(s, desc=False)]
    head = (f"{s.top()}\nMessage-ID: <dovecot-sieve-{RNG.randrange(10**9, 2 * 10**9)}-{hexid(6)}@{s.host}>\n"
            f"Date: {rfc(s.t)}\nFrom: Mail Delivery Subsystem <MAILER-DAEMON@{s.host}>\nTo: <{s.sender}>\n"
            f"Subject: Automatically rejected mail\nAuto-Submitted: auto-replied (rejected)\nPrecedence: bulk\n"
            f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=disposition-notification;\n\tboundary=\"{bnd}\"")
    return mail(s.note, head, multipart(bnd, parts, "This is a MIME-encapsulated message"))
