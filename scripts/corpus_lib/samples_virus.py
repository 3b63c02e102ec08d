"""Virus and content-filter notices sent to the (apparent) sender.

Backscatter: the 'infected' mail was spam or malware that forged one of our users; the notice
quotes foreign hops or nothing. Legit: the blocked mail really left through our relays (a user's
infected PC, a false alarm on a macro document...), and the notice quotes our relay.
"""

from __future__ import annotations

from .common import (RNG, USERS, b64, display, hexid, inbound, later, mail, msgid, multipart, original, part, qp,
                     rfc, rfc_name, when)
from .hops import foreign, genuine

MALWARE = ["Win.Trojan.Agent-1398742", "Doc.Downloader.Emotet-9876543", "Html.Phishing.Bank-112",
           "Troj/DocDl-AKQZ", "W97M.Downloader", "HEUR:Trojan-Downloader.Script.Generic", "Xls.Dropper.Agent-77351"]
ATTACH = ["invoice_7731.zip", "scan_2026-11-19.pdf.exe", "Payment advice.doc", "statement.xlsm", "order-details.html",
          "DHL_AWB_5521.iso"]


class V:
    def __init__(self, legit, hop_kind, rcpt, host, ip, *, env="", mode="return-path", internal=False):
        self.legit = legit
        self.t = when(3)
        self.sender = RNG.choice(USERS)
        self.rcpt = rcpt
        self.host = host
        self.ip = ip
        if legit:
            self.subject = RNG.choice(["Updated price list", "Signed contract", "Timesheet November", "Photos from Friday"])
        else:
            self.subject = RNG.choice(["Invoice overdue", "Payment advice", "Your parcel: customs form", "Scanned document"])
        th = later(self.t, -RNG.randrange(5, 90))
        self.t_orig = later(th, -3)
        self.hops = (genuine(hop_kind, host, th, rcpt=rcpt, internal=internal) if legit
                     else foreign(hop_kind, host, th, rcpt=rcpt))
        self.mid = msgid(self.sender.split("@")[1] if legit else "win-7a1c.local.test")
        self.malware = RNG.choice(MALWARE)
        self.attach = RNG.choice(ATTACH)
        self.top = inbound(host, ip, self.sender, self.t, sender=env, mode=mode)

    def orig(self, headers_only=True):
        bnd = "----=_NextPart_" + hexid(12)
        return original(self.hops, display(self.sender), f"<{self.rcpt}>", self.subject, self.t_orig, mid=self.mid,
                        headers_only=headers_only, ctype=f"multipart/mixed; boundary=\"{bnd}\"",
                        body=multipart(bnd, [part("Content-Type: text/plain", "Please see the attachment.\n")]))

    def client(self):
        """The first upstream client as a scanner logs it: the last hop's IP."""
        import re
        m = re.search(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]|\(([0-9.]+)\)", self.hops[-1])
        return (m.group(1) or m.group(2)) if m else "203.0.113.77"

    def summary(self, indent="  "):
        return f"{indent}From: {self.sender}\n{indent}To: {self.rcpt}\n{indent}Subject: {self.subject}\n{indent}Date: {rfc(self.t_orig)}"


def amavis(v: V, note: str, *, kind="virus") -> str:
    ref = f"{RNG.randrange(10000, 99999)}-{RNG.randrange(1, 20):02d}"
    log_id = f"{ref}/{hexid(12)}"
    if kind == "virus":
        subj, what = f"VIRUS ({v.malware}) IN MAIL FROM YOU", f"    virus: {v.malware}"
    elif kind == "banned":
        subj, what = f"BANNED FILENAME ({v.attach}) IN MAIL FROM YOU", f"    a banned name: {v.attach}"
    else:
        subj, what = "SPAM FROM YOU", f"    spam, score {RNG.randrange(12, 40)}.{RNG.randrange(10)} (5.0)"
    text = (f"Our content checker found\n{what}\nin an email presumably from you <{v.sender}>\nto the following "
            f"recipient:\n-> {v.rcpt}\n\nOur internal reference code for your message is {log_id}\n\n"
            f"First upstream SMTP client IP address: [{v.client()}]\n\nAccording to a 'Received:' trace, the message "
            f"apparently originated at: [{v.client()}]\n\nReturn-Path: <{v.sender}>\nFrom: {display(v.sender)}\n"
            f"Message-ID: {v.mid}\nSubject: {v.subject}\n\nDelivery of the email was stopped!\n\n"
            f"Please check your system for viruses, or ask your system administrator\nto do so.\n")
    bnd = f"----------={hexid(26)}"
    dsn = (f"Reporting-MTA: dns; {v.host}\nReceived-From-MTA: smtp; {v.host} ([{v.ip}])\nArrival-Date: {rfc(v.t_orig)}\n\n"
           f"Original-Recipient: rfc822;{v.rcpt}\nFinal-Recipient: rfc822;{v.rcpt}\nAction: failed\nStatus: 5.7.0\n"
           f"Diagnostic-Code: smtp; 554 5.7.0 Reject, id={ref} - {'INFECTED: ' + v.malware if kind == 'virus' else kind.upper()}\n"
           f"Last-Attempt-Date: {rfc(v.t)}\nFinal-Log-ID: {log_id}\n")
    parts = [part("Content-Type: text/plain; charset=UTF-8\nContent-Disposition: inline\nContent-Transfer-Encoding: 7bit", text),
             part("Content-Type: message/delivery-status; name=\"dsn_status\"\nContent-Disposition: inline; filename=\"dsn_status\"\n"
                  "Content-Description: Delivery error report", dsn),
             part("Content-Type: text/rfc822-headers; name=\"header\"\nContent-Disposition: inline; filename=\"header\"\n"
                  "Content-Description: Undelivered-message header section", v.orig())]
    head = (f"{v.top}\nFrom: \"Content-filter at {v.host}\" <postmaster@{v.host.split('.', 1)[1]}>\nDate: {rfc(v.t)}\n"
            f"Subject: {subj}\nTo: <{v.sender}>\nMessage-ID: <VS{ref}-{hexid(6)}@{v.host}>\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=delivery-status;\n boundary=\"{bnd}\"")
    return mail(note, head, multipart(bnd, parts, "This is a multi-part message in MIME format..."))


def mailscanner(v: V, note: str, *, quote_headers=False) -> str:
    text = (f"Our virus detector has just been triggered by a message you sent:-\n{v.summary()}\n"
            f"Any infected parts of the message ({v.attach}) have not been delivered.\n\n"
            f"This message is simply to warn you that your computer system may have a\n"
            f"virus or worm on it. Please check it with an up-to-date virus scanner.\n\n"
            f"ClamAV reported:\n   {v.attach}: {v.malware} FOUND\n\n-- \nMailScanner\nEmail Virus Scanner\n"
            f"{v.host.split('.', 1)[1]}\n")
    if quote_headers:
        text += "\nThe headers of the message were:\n\n" + "\n".join("> " + l for l in v.orig().rstrip().split("\n")) + "\n"
    head = (f"{v.top}\nFrom: MailScanner <postmaster@{v.host.split('.', 1)[1]}>\nTo: {v.sender}\n"
            f"Subject: Warning: E-mail viruses detected\nDate: {rfc(v.t)}\nMessage-ID: <{hexid(12)}.{hexid(6)}@{v.host}>\n"
            f"X-{v.host.split('.')[1].title()}-MailScanner: generated\nX-MailScanner-ID: {hexid(10).upper()}.A{hexid(4).upper()}\n"
            f"MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii")
    return mail(note, head, text)


def sophos(v: V, note: str) -> str:
    text = (f"Sophos Email Appliance detected a threat in a message sent from your address.\n\n"
            f"Message details:\n{v.summary()}\n\nThreat:   {v.malware.replace('Win.Trojan', 'Troj')}\n"
            f"Attachment: {v.attach}\nAction:   the message was quarantined and not delivered.\n\n"
            f"If you did not send this message, your address may have been forged; no action is needed.\n")
    head = (f"{v.top}\nFrom: Sophos Email Appliance <do-not-reply@{v.host.split('.', 1)[1]}>\nTo: {v.sender}\n"
            f"Subject: Message blocked: virus detected ({v.subject})\nDate: {rfc(v.t)}\n"
            f"Message-ID: <sea.{hexid(16)}@{v.host}>\nX-SEA-Notification: virus\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=us-ascii")
    return mail(note, head, text)


def symantec(v: V, note: str, *, attach_original=False) -> str:
    text = (f"Symantec Messaging Gateway detected a virus in a message you sent.\n\n"
            f"Subject of the message: {v.subject}\nRecipient of the message: {v.rcpt}\n"
            f"Virus: {v.malware} found in {v.attach}\n\nThe attachment was deleted and the message was not delivered.\n"
            f"Policy: Inbound virus policy\nSMG id: {hexid(8)}-{hexid(4)}-{hexid(4)}\n")
    head = (f"{v.top}\nFrom: Symantec Messaging Gateway <smg-notify@{v.host.split('.', 1)[1]}>\nTo: {v.sender}\n"
            f"Subject: Symantec Mail Security detected a virus based on a message you sent\nDate: {rfc(v.t)}\n"
            f"Message-ID: <{hexid(8)}-{hexid(4)}@{v.host}>\nX-Brightmail-Tracker: H4sIAAAAAAAAA{hexid(12)}\nMIME-Version: 1.0\n")
    if not attach_original:
        return mail(note, head + "Content-Type: text/plain; charset=us-ascii", text)
    bnd = "SMG_" + hexid(18)
    parts = [part("Content-Type: text/plain; charset=us-ascii", text), part("Content-Type: message/rfc822",
                                                                             v.orig(headers_only=False))]
    return mail(note, head + f"Content-Type: multipart/mixed; boundary=\"{bnd}\"", multipart(bnd, parts))


def trendmicro(v: V, note: str) -> str:
    text = (f"The InterScan Messaging Security Suite has detected a virus in the message you sent.\n\n"
            f"Date:      {rfc(v.t_orig)}\nSender:    {v.sender}\nRecipient: {v.rcpt}\nSubject:   {v.subject}\n"
            f"Virus:     {v.malware}\nFile:      {v.attach}\nAction:    Deleted\n\n"
            f"Please scan your computer with an up-to-date antivirus program.\n")
    head = (f"{v.top}\nFrom: \"InterScan MSS\" <imss@{v.host.split('.', 1)[1]}>\nTo: {v.sender}\n"
            f"Subject: [Virus Alert] Virus found in a message you sent\nDate: {rfc(v.t)}\n"
            f"Message-ID: <imss.{hexid(20)}@{v.host}>\nX-TM-AS-Product-Ver: IMSS-9.1.0.2090\nX-TMASE-Result: 10--0.000-5-2\n"
            f"MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii")
    return mail(note, head, text)


def mcafee(v: V, note: str) -> str:
    html = (f"<html><body><h3>McAfee Email Gateway: message blocked</h3><p>A message you sent was blocked because it "
            f"contains a virus.</p><table><tr><td>Subject</td><td>{v.subject}</td></tr><tr><td>Recipient</td>"
            f"<td>{v.rcpt}</td></tr><tr><td>Detection</td><td>{v.malware} ({v.attach})</td></tr></table></body></html>\n")
    text = (f"McAfee Email Gateway: message blocked\n\nA message you sent was blocked because it contains a virus.\n\n"
            f"Subject:   {v.subject}\nRecipient: {v.rcpt}\nDetection: {v.malware} ({v.attach})\n")
    bnd = "MEG_" + hexid(20)
    parts = [part("Content-Type: text/plain; charset=\"UTF-8\"\nContent-Transfer-Encoding: quoted-printable", qp(text)),
             part("Content-Type: text/html; charset=\"UTF-8\"\nContent-Transfer-Encoding: quoted-printable", qp(html))]
    head = (f"{v.top}\nFrom: McAfee Email Gateway <meg-alerts@{v.host.split('.', 1)[1]}>\nTo: {v.sender}\n"
            f"Subject: Virus detected in your message: {v.subject}\nDate: {rfc(v.t)}\nMessage-ID: <MEG.{hexid(16)}@{v.host}>\n"
            f"X-MEG-Alert: virus\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"{bnd}\"")
    return mail(note, head, multipart(bnd, parts))


def kaspersky(v: V, note: str) -> str:
    text = (f"Kaspersky Secure Mail Gateway has detected a malicious object in a message sent from your address.\n\n"
            f"Sender: {v.sender}\nRecipients: {v.rcpt}\nSubject: {v.subject}\nObject: {v.attach}\n"
            f"Detected: HEUR:Trojan.Script.Generic\nAction: message deleted\n")
    head = (f"{v.top}\nFrom: Kaspersky Secure Mail Gateway <ksmg@{v.host.split('.', 1)[1]}>\nTo: {v.sender}\n"
            f"Subject: =?UTF-8?B?{b64('Malicious object detected / Обнаружен вредоносный объект').replace(chr(10), '')}?=\n"
            f"Date: {rfc(v.t)}\nMessage-ID: <ksmg.{hexid(16)}@{v.host}>\nX-KSMG-Notification: virus\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit")
    return mail(note, head, text)


def barracuda(v: V, note: str) -> str:
    text = (f"Your message to: {v.rcpt}\nwas blocked by our Spam Firewall. The email you sent with the following subject "
            f"has NOT BEEN DELIVERED:\n\nSubject: {v.subject}\n\nReason: virus {v.malware} detected in {v.attach}\n\n"
            f"--\nBarracuda Email Security Gateway\n")
    head = (f"{v.top}\nFrom: Barracuda Email Security <postmaster@{v.host.split('.', 1)[1]}>\nTo: {v.sender}\n"
            f"Subject: Message you sent blocked by our virus filter\nDate: {rfc(v.t)}\n"
            f"Message-ID: <{hexid(10)}-{hexid(6)}-barracuda@{v.host}>\nX-Barracuda-Notification: virus\n"
            f"X-Barracuda-Connect: {v.host}[{v.ip}]\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii")
    return mail(note, head, text)


def mimecast(v: V, note: str, *, attach_headers=False) -> str:
    text = (f"Your message couldn't be delivered\n\nThe message you sent to {v.rcpt} was rejected because it contains "
            f"a virus.\n\nSubject: {v.subject}\nAttachment: {v.attach}\nReason: Virus Signature Detected "
            f"({v.malware})\n\nReference: {hexid(8).upper()}-{hexid(4).upper()}\n\nMimecast\n")
    bnd = "MC_" + hexid(22)
    parts = [part("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64", b64(text))]
    if attach_headers:
        parts.append(part("Content-Type: text/rfc822-headers\nContent-Disposition: attachment; filename=\"headers.txt\"",
                          v.orig()))
    head = (f"{v.top}\nFrom: Mimecast <postmaster@{v.host.split('.', 1)[1]}>\nTo: {v.sender}\n"
            f"Subject: Message Blocked: {v.subject}\nDate: {rfc(v.t)}\nMessage-ID: <{hexid(24)}@mimecast.test>\n"
            f"X-MC-Unique: {hexid(16)}-{RNG.randrange(10, 99)}\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/mixed; boundary=\"{bnd}\"")
    return mail(note, head, multipart(bnd, parts))


def proofpoint(v: V, note: str, *, quoted=False) -> str:
    text = (f"Proofpoint Protection Server blocked a message sent from your address.\n\n{v.summary()}\n\n"
            f"Reason: the message contains a virus ({v.malware}) and was discarded.\n"
            f"Queue ID: {hexid(10)}\n")
    if quoted:
        text += "\nOriginal message headers:\n" + "\n".join("> " + l for l in v.orig().rstrip().split("\n")) + "\n"
    head = (f"{v.top}\nFrom: Proofpoint Email Protection <pps-notify@{v.host.split('.', 1)[1]}>\nTo: {v.sender}\n"
            f"Subject: Message Delivery Failure: Blocked (virus)\nDate: {rfc(v.t)}\nMessage-ID: <pps.{hexid(18)}@{v.host}>\n"
            f"X-Proofpoint-Notification: virus\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii")
    return mail(note, head, text)


def defender(v: V, note: str, *, headers_b64=False) -> str:
    domain = v.rcpt.split("@")[1]
    text = (f"Your message to {v.rcpt} couldn't be delivered.\n\nMicrosoft Defender for Office 365 detected malware in "
            f"the message, so it was not delivered.\n\nAttachment: {v.attach}\nMalware: {v.malware}\n\n"
            f"More Info for Email Admins\nStatus code: 550 5.7.1\nReported error: 550 5.7.1 Message rejected: "
            f"malware detected\nDSN generated by: AM9PR0{RNG.randrange(1, 9)}MB{RNG.randrange(1000, 9999)}.eurprd0{RNG.randrange(1, 9)}.prod.outlook.test\n")
    bnd = "_000_" + hexid(32).upper() + "_"
    parts = [part("Content-Type: text/plain; charset=\"utf-8\"\nContent-Transfer-Encoding: base64", b64(text)),
             part("Content-Type: message/delivery-status", f"Reporting-MTA: dns;{v.host}\n\nFinal-Recipient: rfc822;{v.rcpt}\n"
                  "Action: failed\nStatus: 5.7.1\nDiagnostic-Code: smtp;550 5.7.1 Message rejected: malware detected\n")]
    if headers_b64:
        parts.append(part("Content-Type: text/rfc822-headers\nContent-Transfer-Encoding: base64", b64(v.orig())))
    head = (f"{v.top}\nFrom: Microsoft Outlook <postmaster@{domain}>\nTo: {v.sender}\nSubject: Undeliverable: {v.subject}\n"
            f"Date: {rfc(v.t)}\nMessage-ID: <{hexid(32)}@{v.host}>\nX-MS-Exchange-Message-Is-Ndr:\n"
            f"X-Forefront-Antispam-Report: CAT:MALW;SFV:SKN;\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"{bnd}\"")
    return mail(note, head, multipart(bnd, parts))


def samples():
    out = []

    def add(name, fn, note, legit, hop, rcpt, host, ip, *, env="", mode="return-path", crlf=False, internal=False, **kw):
        v = V(legit, hop, rcpt, host, ip, env=env, mode=mode, internal=internal)
        folder = "legit/virus" if legit else "backscatter/virus"
        out.append((f"{folder}/{name}.eml", fn(v, note, **kw), crlf))

    add("amavisd-new-virus-in-mail-from-you", amavis, "amavisd-new 'VIRUS (...) IN MAIL FROM YOU' for malware forging us.",
        False, "zombie", "accounts@remote.example.com", "filter.remote.example.com", "203.0.113.11")
    add("amavisd-new-banned-filename", amavis, "amavisd-new 'BANNED FILENAME' notice, milter view (X-Envelope-From).",
        False, "zombie-exim", "hr@kunden.test", "scan.kunden.test", "198.51.100.45", mode="x-envelope", kind="banned")
    add("amavisd-new-spam-from-you", amavis, "amavisd-new 'SPAM FROM YOU' content-filter notice.",
        False, "forged-helo-smtp1", "post@univ.test", "filter.univ.test", "203.0.113.125", kind="spam")
    add("mailscanner-clamav-warning", mailscanner, "MailScanner/ClamAV 'Warning: E-mail viruses detected'.",
        False, "zombie", "office@smallbiz.test", "mail.smallbiz.test", "198.51.100.210", env="postmaster@smallbiz.test")
    add("mailscanner-quoted-headers-lookalike", mailscanner, "MailScanner quoting headers; hop from a look-alike mailout-33.",
        False, "lookalike-glob", "lab@univ.test", "mail.univ.test", "203.0.113.126", env="postmaster@univ.test",
        quote_headers=True)
    add("sophos-email-appliance", sophos, "Sophos notice of a blocked threat in mail 'from' us.",
        False, "zombie", "finance@acme.test", "sea.acme.test", "203.0.113.181")
    add("symantec-messaging-gateway", symantec, "Symantec Messaging Gateway virus notice.",
        False, "zombie-sendmail", "buyer@shop.example", "smg.shop.example", "198.51.100.72", crlf=True)
    add("trendmicro-imss-virus-alert", trendmicro, "Trend Micro InterScan Messaging Security virus alert.",
        False, "zombie", "sales@tailspin.example", "imss.tailspin.example", "203.0.113.162", env="imss@tailspin.example")
    add("mcafee-email-gateway", mcafee, "McAfee Email Gateway virus notice (QP, text + HTML).",
        False, "botnet-2hops", "cfo@fabrikam.example", "meg.fabrikam.example", "203.0.113.143")
    add("kaspersky-secure-mail-gateway", kaspersky, "Kaspersky notice with an RFC 2047 encoded subject.",
        False, "zombie", "buh@firma.test", "ksmg.firma.test", "203.0.113.215")
    add("barracuda-virus-blocked", barracuda, "Barracuda 'blocked by our Spam Firewall' virus notice.",
        False, "ip-out-of-range", "info@county.test", "barracuda.county.test", "203.0.113.191")
    add("mimecast-message-blocked", mimecast, "Mimecast 'Message Blocked' virus notice (base64 text).",
        False, "zombie", "legal@lawfirm.test", "eu-smtp-1.mimecast.test", "203.0.113.216")
    add("proofpoint-delivery-failure", proofpoint, "Proofpoint 'Message Delivery Failure: Blocked' virus notice.",
        False, "zombie", "it@hospital.test", "pps.hospital.test", "203.0.113.217", mode="x-envelope")
    add("defender-office365-malware-ndr", defender, "Microsoft Defender for Office 365 malware NDR.",
        False, "zombie", "ceo@tailspin.example", "eur05-db8-obe.outbound.protection.outlook.test", "203.0.113.160",
        headers_b64=True)
    add("defender-office365-forged-helo-v6", defender, "Defender NDR; the malware's hop HELO'd smtp1 over foreign IPv6.",
        False, "forged-helo-v6", "ap@tailspin.example", "eur05-am6-obe.outbound.protection.outlook.test", "203.0.113.161",
        headers_b64=True)

    add("amavisd-new-virus-smtp1", amavis, "amavisd-new notice for a mail we sent: upstream client [192.0.2.25], our hop.",
        True, "smtp1-name", "accounts@remote.example.com", "filter.remote.example.com", "203.0.113.11")
    add("mailscanner-quoted-headers-smtp2", mailscanner, "MailScanner quoting our headers with '> ': smtp2 hop.",
        True, "smtp2-name", "office@smallbiz.test", "mail.smallbiz.test", "198.51.100.210", env="postmaster@smallbiz.test",
        quote_headers=True)
    add("symantec-attached-original-internal-hops", symantec, "Symantec notice with the original attached: both our hops.",
        True, "smtp1-name", "buyer@shop.example", "smg.shop.example", "198.51.100.72", attach_original=True, internal=True)
    add("mimecast-headers-ipv6-range", mimecast, "Mimecast notice with headers attached: hop from our IPv6 /48.",
        True, "v6-range", "legal@lawfirm.test", "eu-smtp-1.mimecast.test", "203.0.113.216", attach_headers=True)
    add("defender-headers-base64-glob", defender, "Defender NDR, base64 headers: hop from mailout-3.example.net.",
        True, "glob", "ceo@tailspin.example", "eur05-db8-obe.outbound.protection.outlook.test", "203.0.113.160",
        headers_b64=True)
    add("proofpoint-quoted-qmail-ipv4", proofpoint, "Proofpoint notice, '> '-quoted headers: qmail hop (198.51.100.6).",
        True, "qmail-ipv4", "it@hospital.test", "pps.hospital.test", "203.0.113.217", quoted=True, crlf=True)
    return out
