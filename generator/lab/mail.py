"""Sample messages for the SMTP tests and the bounce storm, written for this project.

Each builder returns the message as bytes with CRLF line ends, in the shape the named sender
software produces (structure only; all names and addresses are the example inventory's or
reserved test names). Quoted Received: lines are the evidence the front line and the ruleset
judge: ``hop_*`` helpers write them as Postfix and Exim do.
"""

from __future__ import annotations

FOREIGN_MX = "mx.foreign.test"


def hop_postfix(helo: str, rdns: str, addr: str, by: str = FOREIGN_MX) -> str:
    """A Received: line as Postfix writes it: from HELO (RDNS [ADDR]) by HOST ..."""
    lit = f"IPv6:{addr}" if ":" in addr else addr
    return (f"Received: from {helo} ({rdns} [{lit}])\r\n\tby {by} (Postfix) with ESMTPS id 4Q7Xk21Zz9;\r\n"
            "\tMon, 23 Nov 2026 09:14:02 +0000 (UTC)")


def hop_exim(helo: str, addr: str, by: str = FOREIGN_MX) -> str:
    return (f"Received: from [{addr}] (helo={helo})\r\n\tby {by} with esmtp (Exim 4.96)\r\n"
            "\tid 1t3abc-000XYZ-2Q; Mon, 23 Nov 2026 09:14:02 +0000")


def hop_submission(relay: str = "smtp1.out.example.org") -> str:
    """Our relay's own hop: the user's client handed the message to our relay (relay by name)."""
    return (f"Received: from [10.20.0.15] (unknown [10.20.0.15])\r\n\tby {relay} (Postfix) with ESMTPSA id 9F1C2801A4;\r\n"
            "\tMon, 23 Nov 2026 09:14:01 +0000 (UTC)")


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def dsn(hops: list[str], *, rcpt: str = "alice@example.org", reporter: str = FOREIGN_MX, n: int = 0) -> bytes:
    """An RFC 3464 bounce (as Postfix sends it) of a message 'from' rcpt, quoting its headers."""
    quoted = "\n".join(hops + [
        f"From: Alice <{rcpt}>",
        "To: <nobody@foreign.test>",
        "Subject: Invoice",
        f"Message-ID: <orig{n}.20261123@{rcpt.split('@')[1]}>",
        "Date: Mon, 23 Nov 2026 09:14:00 +0000",
    ])
    return _crlf(f"""\
From: MAILER-DAEMON@{reporter} (Mail Delivery System)
To: {rcpt}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 23 Nov 2026 09:14:05 +0000
Message-ID: <dsn{n}.20261123091405@{reporter}>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="B{n}.1700731245/{reporter}"

This is a MIME-encapsulated message.

--B{n}.1700731245/{reporter}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host {reporter}.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@foreign.test>: unknown user: "nobody"

--B{n}.1700731245/{reporter}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; {reporter}
Arrival-Date: Mon, 23 Nov 2026 09:14:02 +0000 (UTC)

Final-Recipient: rfc822; nobody@foreign.test
Original-Recipient: rfc822;nobody@foreign.test
Action: failed
Status: 5.1.1
Diagnostic-Code: X-Postfix; unknown user: "nobody"

--B{n}.1700731245/{reporter}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{quoted}

--B{n}.1700731245/{reporter}--
""")


def forged_dsn(n: int = 0) -> bytes:
    """Backscatter: a bounce of spam that never passed our relays (a foreign botnet hop)."""
    return dsn([hop_postfix("spam-bot.test", "unknown", "203.0.113.66")], n=n)


def plain_bounce(n: int = 0, hop: str = "") -> bytes:
    """A non-RFC-3464 bounce (qmail style): plain text, quoting the spam (its hop: ``hop``, by
    default a botnet's) after the report."""
    hop = hop or hop_postfix("spam-bot.test", "unknown", "203.0.113.67")
    return _crlf(f"""\
From: MAILER-DAEMON@{FOREIGN_MX}
To: alice@example.org
Subject: failure notice
Date: Mon, 23 Nov 2026 09:20:00 +0000
Message-ID: <qmail{n}.20261123@{FOREIGN_MX}>

Hi. This is the qmail-send program at {FOREIGN_MX}.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@foreign.test>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <alice@example.org>
{hop}
From: alice@example.org
To: nobody@foreign.test
Subject: Cheap watches

Buy now.
""")


# The joe-job's forged hop: the spammer's bot greeted the victim's MX as our relay.
FORGED_RELAY_HOP = hop_postfix("smtp1.out.example.org", "unknown", "203.0.113.99")


def forged_hop_bounce(n: int = 0) -> bytes:
    """Backscatter whose returned spam carries our relay's name at a foreign address: refused by
    the milter (no rescue), never by Postfix's body_checks (templates/postfix/body_checks.j2)."""
    return plain_bounce(n, hop=FORGED_RELAY_HOP)


def autoreply(n: int = 0) -> bytes:
    """An RFC 3834 out-of-office reply to spam that forged alice (no reference to our mail)."""
    return _crlf(f"""\
From: Dana Lee <dana@foreign.test>
To: alice@example.org
Subject: Automatic reply: Cheap watches
Date: Mon, 23 Nov 2026 09:21:00 +0000
Message-ID: <ooo{n}.20261123@foreign.test>
In-Reply-To: <spam{n}.1234@spam-bot.test>
Auto-Submitted: auto-replied
X-Autoreply: yes
Precedence: auto_reply

I am out of the office until 30 November with limited access to e-mail.
This is an automatic reply.
""")


def virus_notice(n: int = 0) -> bytes:
    """A content-filter notice (amavisd-new style) about a virus in mail 'from' alice."""
    return _crlf(f"""\
From: Content-filter at {FOREIGN_MX} <postmaster@foreign.test>
To: alice@example.org
Subject: VIRUS (Eicar-Signature) IN MAIL FROM YOU
Date: Mon, 23 Nov 2026 09:22:00 +0000
Message-ID: <VS{n}.20261123@{FOREIGN_MX}>
Auto-Submitted: auto-generated
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

VIRUS ALERT

Our content checker found
    virus: Eicar-Signature

in an email to a user at our site from you (alice@example.org):
  -> nobody@foreign.test

Please check your system for viruses.

Our internal reference code for your message is 12345-01/abcdEFGH

First upstream SMTP client IP address: [203.0.113.68] spam-bot.test
""")


def read_receipt(n: int = 0) -> bytes:
    """An RFC 8098 read receipt for mail alice sent: null sender, legitimate."""
    return _crlf(f"""\
From: Erin <erin@foreign.test>
To: alice@example.org
Subject: Read: Invoice
Date: Mon, 23 Nov 2026 10:00:00 +0000
Message-ID: <mdn{n}.20261123@foreign.test>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification;
\tboundary="MDN{n}"

--MDN{n}
Content-Type: text/plain; charset=us-ascii

Your message was displayed on Mon, 23 Nov 2026 10:00:00 +0000.

--MDN{n}
Content-Type: message/disposition-notification

Reporting-UA: foreign.test; Mail Client 9
Final-Recipient: rfc822; erin@foreign.test
Original-Message-ID: <orig{n}.20261123@example.org>
Disposition: manual-action/MDN-sent-manually; displayed

--MDN{n}--
""")


def forwarded_dsn(n: int = 0) -> bytes:
    """A person forwards a bounce they received, as an attachment (message/rfc822): legitimate."""
    inner = forged_dsn(n).decode("utf-8").replace("\r\n", "\n")
    return _crlf(f"""\
From: Frank <frank@foreign.test>
To: alice@example.org
Subject: Fwd: Undelivered Mail Returned to Sender
Date: Mon, 23 Nov 2026 11:00:00 +0000
Message-ID: <fwd{n}.20261123@foreign.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="FWD{n}"

--FWD{n}
Content-Type: text/plain; charset=us-ascii

Alice, I keep getting these bounces that claim to come from you. Is your account
sending spam? The bounce is attached.

Frank

--FWD{n}
Content-Type: message/rfc822
Content-Disposition: attachment

{inner}
--FWD{n}--
""")


def ordinary(n: int = 0, sender: str = "grace@foreign.test") -> bytes:
    return _crlf(f"""\
From: Grace <{sender}>
To: alice@example.org
Subject: Lunch on Thursday?
Date: Mon, 23 Nov 2026 12:00:00 +0000
Message-ID: <lunch{n}.20261123@foreign.test>

Hi Alice, are you free for lunch on Thursday? My last mail bounced, so I am
trying again; the "undeliverable" notice said 550 5.1.1, odd.

Grace
""")


def relay_bounce(n: int = 0) -> bytes:
    """A bounce our own relay generated for mail alice sent through it, handed to our MX."""
    return dsn([hop_submission()], reporter="smtp1.out.example.org", n=n)


# The storm mix: backscatter kinds (name, builder) and the legitimate trickle.
BACKSCATTER = (("rfc3464", forged_dsn), ("plain-bounce", plain_bounce), ("autoreply", autoreply),
               ("virus", virus_notice))
# Kinds a storm sends only when asked (--kinds): kept out of the default mix, so that its figures
# stay comparable from run to run.
OPTIONAL_BACKSCATTER = (("forged-hop", forged_hop_bounce),)
