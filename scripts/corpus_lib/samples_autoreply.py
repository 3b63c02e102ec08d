"""Auto-replies: vacation and out-of-office answers in seven languages and several shapes.

Backscatter: the reply answers spam that forged one of our users; its In-Reply-To (if any) names
the spam's Message-ID, never one of ours. Legit: In-Reply-To/References name a Message-ID whose
domain is exactly one of our domains or relay hosts, or a quoted original carries our relay hop.
"""

from __future__ import annotations

from .common import (RNG, locale, USERS, b64, display, hexid, inbound, later, mail, msgid, multipart, original, part, qp,
                     rfc, when)
from .hops import foreign, genuine
from .samples_dsn import LEGIT, SPAM

# (language, subject prefix as Outlook writes it, body) - the bodies are our own.
OOO = {
    "en": ("Automatic reply", "Out of Office",
           "Thank you for your email. I am out of the office until Monday 30 November with limited\n"
           "access to email. For urgent matters please contact our front desk on +1 555 0100.\n\nBest regards"),
    "de": ("Automatische Antwort", "Abwesenheitsnotiz",
           "Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich 4. Dezember nicht im Büro\n"
           "und lese meine E-Mails nur unregelmäßig. In dringenden Fällen wenden Sie sich bitte an\n"
           "meine Kollegin Frau Becker (becker@{dom}).\n\nMit freundlichen Grüßen"),
    "fr": ("Réponse automatique", "Absence du bureau",
           "Bonjour,\n\nJe suis absent du bureau jusqu'au 2 décembre inclus et je n'aurai qu'un accès\n"
           "limité à ma messagerie. Pour toute urgence, merci d'écrire à accueil@{dom}.\n\nCordialement"),
    "es": ("Respuesta automática", "Fuera de la oficina",
           "Gracias por su mensaje. Estaré fuera de la oficina hasta el lunes 30 de noviembre.\n"
           "Responderé a su correo a mi regreso. Para asuntos urgentes, contacte con recepcion@{dom}.\n\nSaludos"),
    "it": ("Risposta automatica", "Fuori sede",
           "Grazie per il messaggio. Sarò fuori ufficio fino al 1° dicembre e risponderò al mio\n"
           "rientro. Per questioni urgenti scrivete a segreteria@{dom}.\n\nCordiali saluti"),
    "nl": ("Automatisch antwoord", "Afwezig",
           "Bedankt voor uw bericht. Ik ben afwezig tot en met 27 november en heb beperkt toegang\n"
           "tot mijn e-mail. Voor dringende zaken kunt u terecht bij info@{dom}.\n\nMet vriendelijke groet"),
    "pt": ("Resposta automática", "Ausente do escritório",
           "Obrigado pela sua mensagem. Estarei ausente do escritório até 3 de dezembro, com acesso\n"
           "limitado ao e-mail. Em caso de urgência, contacte geral@{dom}.\n\nCumprimentos"),
}

PEOPLE = {
    "en": ("Mary Collins", "m.collins@remote.example.com"), "de": ("Jürgen Weber", "j.weber@kunden.test"),
    "fr": ("Sophie Laurent", "s.laurent@cabinet.test"), "es": ("Lucía Gómez", "lgomez@tienda.test"),
    "it": ("Marco Bianchi", "m.bianchi@ditta.test"), "nl": ("Pieter de Vries", "p.devries@bedrijf.test"),
    "pt": ("João Pereira", "joao.pereira@empresa.test"),
}


class R:
    def __init__(self, legit: bool, lang: str, *, irt: str = "ours", mode="return-path", env_sender: str = "",
                 hop_kind: str | None = None, sender: str | None = None):
        self.legit, self.lang = legit, lang
        self.t = when(2)
        self.sender = sender or RNG.choice(USERS)
        self.refs_only = irt == "ours-refs-only"
        self.name, self.me = PEOPLE[lang]
        self.dom = self.me.split("@")[1]
        self.subject, self.body = RNG.choice(LEGIT if legit else SPAM)
        ourdom = self.sender.split("@")[1]
        self.mid = {
            "ours": msgid(ourdom),
            "ours-refs-only": msgid(ourdom),
            "ours-relay": msgid("smtp1.out.example.org"),
            "ours-upper": msgid(ourdom.upper()),
            "spam": msgid("dsl-203-0-113-77.dyn.isp.test"),
            "spam-lookalike": msgid(ourdom + ".spamfactory.test"),
            "spam-relay-lookalike": msgid("smtp1.out.example.org.relay.test"),
            "none": None,
        }[irt]
        th = later(self.t, -RNG.randrange(10, 200))
        self.hops = (genuine if legit else foreign)(hop_kind, f"mx.{self.dom}", th, rcpt=self.me) if hop_kind else []
        self.t_orig = later(th, -5)
        self.top = inbound(f"mail.{self.dom}", f"203.0.113.{RNG.randrange(2, 60)}", self.sender, self.t,
                           sender=env_sender, mode=mode)
        self.text = OOO[lang][2].replace("{dom}", self.dom) + f"\n{self.name}\n"

    def threading(self, refs: bool = True) -> str:
        if not self.mid:
            return ""
        if self.refs_only:   # no In-Reply-To; ours is the last of several References
            return f"References: {msgid('list.partner.test')}\n {msgid('partner.test')}\n {self.mid}\n"
        return f"In-Reply-To: {self.mid}\n" + (f"References: {self.mid}\n" if refs else "")


def outlook(r: R, note: str, *, old=False, auto_submitted=True) -> str:
    prefix = "Out of Office AutoReply" if old else OOO[r.lang][0]
    alt = "_000_" + hexid(30).upper() + "_"
    html = f"<html><body><p>{r.text.replace(chr(10), '<br>')}</p></body></html>\n"
    parts = [part("Content-Type: text/plain; charset=\"utf-8\"\nContent-Transfer-Encoding: base64", b64(r.text)),
             part("Content-Type: text/html; charset=\"utf-8\"\nContent-Transfer-Encoding: base64", b64(html))]
    sep = " : " if r.lang == "fr" else ": "
    head = (f"{r.top}\nFrom: {r.name} <{r.me}>\nTo: {display(r.sender)}\nSubject: {prefix}{sep}{r.subject}\n"
            f"Thread-Topic: {r.subject}\nThread-Index: AQH{hexid(20)}\nDate: {rfc(r.t)}\n"
            f"Message-ID: {msgid(r.dom, 'outlook')}\n{r.threading()}Content-Language: {locale(r.lang)}\n"
            f"X-MS-Has-Attach:\nX-MS-TNEF-Correlator:\nX-Auto-Response-Suppress: All\n"
            f"X-MS-Exchange-Inbox-Rules-Loop: {r.me}\n"
            + ("Auto-Submitted: auto-generated\n" if auto_submitted else "")
            + f"MIME-Version: 1.0\nContent-Type: multipart/alternative;\n\tboundary=\"{alt}\"")
    return mail(note, head, multipart(alt, parts))


def sieve_vacation(r: R, note: str, *, subject: str | None = None) -> str:
    subj = subject or f"Auto: {r.subject}"
    head = (f"{r.top}\nMessage-ID: <dovecot-sieve-{RNG.randrange(10**9, 2 * 10**9)}-{hexid(6)}@{r.dom}>\nDate: {rfc(r.t)}\n"
            f"X-Sieve: Pigeonhole Sieve 0.5.21\nFrom: {r.name} <{r.me}>\nTo: <{r.sender}>\nSubject: {subj}\n"
            f"{r.threading()}Auto-Submitted: auto-replied (vacation)\nPrecedence: bulk\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable")
    return mail(note, head, qp(r.text))


def xautoreply(r: R, note: str, *, header: str = "X-Autoreply: yes", precedence: str | None = None,
               subject: str | None = None, quote: bool = False) -> str:
    subj = subject or f"{OOO[r.lang][1]}: {r.subject}"
    body = r.text
    if quote:
        body += "\n\n----- Original Message -----\n" + "\n".join(
            "> " + line if line else ">" for line in original(r.hops, display(r.sender), r.me, r.subject, r.t_orig,
                                                              mid=r.mid, body=r.body).rstrip("\n").split("\n"))
    head = (f"{r.top}\nDate: {rfc(r.t)}\nFrom: \"{r.name}\" <{r.me}>\nTo: {r.sender}\nSubject: {subj}\n"
            f"Message-ID: <{hexid(14)}.autoreply@{r.dom}>\n{r.threading(refs=False)}{header}\n"
            + (f"Precedence: {precedence}\n" if precedence else "")
            + "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit")
    return mail(note, head, body)


def plain_ooo(r: R, note: str, *, subject: str) -> str:
    """No marker header at all: only the subject and the words say it is an auto-reply."""
    head = (f"{r.top}\nDate: {rfc(r.t)}\nFrom: {r.name} <{r.me}>\nTo: {r.sender}\nSubject: {subject}\n"
            f"Message-ID: <{hexid(16)}@{r.dom}>\n{r.threading(refs=False)}MIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit")
    return mail(note, head, r.text)


def notes_ooo(r: R, note: str, *, attach_original=False) -> str:
    away = {"de": f"{r.name} ist außer Haus.", "en": f"{r.name} is out of the office."}.get(r.lang, f"{r.name} is out of the office.")
    text = (f"Ich werde ab  23.11.2026 nicht im Büro sein. Ich kehre zurück am 04.12.2026.\n\n"
            if r.lang == "de" else "I will be out of the office starting 23/11/2026 and will not return until 04/12/2026.\n\n")
    text += r.text
    head = (f"{r.top}\nSubject: {away}\nFrom: {r.name} <{r.me}>\nTo: {r.sender}\nDate: {rfc(r.t)}\n"
            f"Message-ID: <OF{hexid(8).upper()}.{hexid(8).upper()}-ON{hexid(8).upper()}@{r.dom}>\n{r.threading(refs=False)}"
            f"Auto-Submitted: auto-generated\nX-Mailer: HCL Notes Release 12.0.2 FP3\nMIME-Version: 1.0\n")
    if not attach_original:
        return mail(note, head + "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit", text)
    bnd = "0__=" + hexid(40).upper()
    parts = [part("Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit", text),
             part("Content-Type: message/rfc822", original(r.hops, display(r.sender), r.me, r.subject, r.t_orig,
                                                           mid=r.mid, body=r.body))]
    return mail(note, head + f"Content-Type: multipart/mixed; boundary=\"{bnd}\"", multipart(bnd, parts))


def gmail_vacation(r: R, note: str, *, subject: str) -> str:
    alt = hexid(28)
    parts = [part("Content-Type: text/plain; charset=\"UTF-8\"", r.text),
             part("Content-Type: text/html; charset=\"UTF-8\"", f"<div dir=\"ltr\">{r.text.replace(chr(10), '<br>')}</div>\n")]
    head = (f"{r.top}\nMIME-Version: 1.0\nFrom: {r.name} <{r.me}>\nDate: {rfc(r.t)}\n"
            f"Message-ID: <CA+{hexid(30)}@mail.gmail.test>\nSubject: {subject}\nTo: {r.sender}\n{r.threading()}"
            f"Auto-Submitted: auto-replied\nContent-Type: multipart/alternative; boundary=\"{alt}\"")
    return mail(note, head, multipart(alt, parts))


def zimbra(r: R, note: str) -> str:
    head = (f"{r.top}\nDate: {rfc(r.t)}\nFrom: {r.name} <{r.me}>\nTo: {r.sender}\nMessage-ID: <{hexid(10)}.{RNG.randrange(100, 999)}.{RNG.randrange(10**12, 10**13)}.JavaMail.zimbra@{r.dom}>\n"
            f"{r.threading()}Subject: {OOO[r.lang][1]}: {r.subject}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
            f"Content-Transfer-Encoding: 7bit\nAuto-Submitted: auto-replied (zimbra; vacation)\nPrecedence: bulk\n"
            f"X-Mailer: Zimbra 10.1.2_GA_4518")
    return mail(note, head, r.text)


def helpdesk_ack(r: R, note: str) -> str:
    """A ticket system's automatic acknowledgement: a new ticket for every incoming mail."""
    n = RNG.randrange(100000, 999999)
    body = (f"Dear customer,\n\nthank you for contacting us. Your request has been received and a ticket has been\n"
            f"created: #{n}. One of our agents will answer within one working day.\n\nPlease keep [Ticket #{n}] in the "
            f"subject of any further mail about this request.\n\nYour message:\n  Subject: {r.subject}\n\n-- \n"
            f"Customer Care, {r.dom}\n")
    head = (f"{r.top}\nDate: {rfc(r.t)}\nFrom: Customer Care <care@{r.dom}>\nTo: {r.sender}\n"
            f"Subject: [Ticket #{n}] Re: {r.subject}\nMessage-ID: <ticket-{n}-{hexid(8)}@{r.dom}>\n{r.threading()}"
            f"Auto-Submitted: auto-replied\nX-Autoreply: yes\nX-Helpdesk-Ticket: {n}\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8")
    return mail(note, head, body)


def mailman_hold(r: R, note: str) -> str:
    """A list server's automatic answer to a post: held for moderation (answers mail we sent)."""
    listaddr = f"projekt@lists.{r.dom}"
    body = (f"Your mail to '{listaddr.split('@')[0]}' with the subject\n\n    {r.subject}\n\nIs being held until the list "
            f"moderator can review it for approval.\n\nThe message is being held because:\n\n    The message is not from a "
            f"list member\n\nEither the message will get posted to the list, or you will receive\nnotification of the "
            f"moderator's decision.\n")
    head = (f"{r.top}\nSubject: Your message to {listaddr.split('@')[0]} awaits moderator approval\nFrom: "
            f"{listaddr.replace('@', '-owner@')}\nTo: {r.sender}\nMessage-ID: <mailman.{RNG.randrange(1000, 9999)}."
            f"{RNG.randrange(1763000000, 1765000000)}.{RNG.randrange(1000, 9999)}.{listaddr.split('@')[0]}@lists.{r.dom}>\n"
            f"Date: {rfc(r.t)}\n{r.threading()}Precedence: bulk\nAuto-Submitted: auto-replied\nX-Mailman-Version: 3.3.9\n"
            f"List-Id: <{listaddr.replace('@', '.')}>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii")
    return mail(note, head, body)


def samples():
    out = []

    def add(name, fn, note, legit, lang, *, irt="spam", mode="return-path", env="", hop=None, crlf=False, sender=None,
            **kw):
        r = R(legit, lang, irt=irt, mode=mode, env_sender=env, hop_kind=hop, sender=sender)
        folder = "legit/autoreply" if legit else "backscatter/autoreply"
        out.append((f"{folder}/{name}.eml", fn(r, note, **kw), crlf))

    # ---------------- backscatter ----------------
    add("outlook-automatic-reply-en", outlook, "Exchange OOF 'Automatic reply:' to spam (X-Auto-Response-Suppress).", False, "en")
    add("outlook-automatische-antwort-de", outlook, "Outlook OOF in German 'Automatische Antwort:'.", False, "de")
    add("outlook-reponse-automatique-fr", outlook, "Outlook OOF in French 'Réponse automatique :'.", False, "fr",
        auto_submitted=False)
    add("outlook-respuesta-automatica-es", outlook, "Outlook OOF in Spanish, no Auto-Submitted header.", False, "es",
        auto_submitted=False, irt="none")
    add("outlook-risposta-automatica-it", outlook, "Outlook OOF in Italian.", False, "it", mode="x-envelope")
    add("outlook-automatisch-antwoord-nl", outlook, "Outlook OOF in Dutch.", False, "nl", crlf=True)
    add("outlook-resposta-automatica-pt", outlook, "Outlook OOF in Portuguese.", False, "pt")
    add("exchange-2010-out-of-office-autoreply", outlook, "Old Exchange 'Out of Office AutoReply:' subject.", False, "en",
        old=True, auto_submitted=False)
    add("sieve-vacation-rfc3834-en", sieve_vacation, "Sieve vacation, RFC 3834 Auto-Submitted: auto-replied.", False, "en")
    add("sieve-vacation-de-custom-subject", sieve_vacation, "Sieve vacation in German with its own subject.", False, "de",
        subject="Abwesend bis 4. Dezember", mode="x-envelope")
    add("sieve-vacation-lookalike-irt", sieve_vacation, "In-Reply-To domain example.org.spamfactory.test is not ours.",
        False, "fr", irt="spam-lookalike")
    add("x-autoreply-nl", xautoreply, "X-Autoreply: yes, Dutch text.", False, "nl")
    add("x-autorespond-cpanel-pt", xautoreply, "cPanel-style X-Autorespond + Precedence: auto_reply, Portuguese.", False, "pt",
        header="X-Autorespond: Ausente do escritório", precedence="auto_reply", env="joao.pereira@empresa.test")
    add("precedence-auto-reply-it", xautoreply, "Only Precedence: auto_reply marks it; Italian.", False, "it",
        header="X-Mailer: Webmail 3.2", precedence="auto_reply", env="m.bianchi@ditta.test")
    add("x-autoreply-es-relay-lookalike-irt", xautoreply, "In-Reply-To @smtp1.out.example.org.relay.test: a look-alike.",
        False, "es", irt="spam-relay-lookalike")
    add("x-autoreply-quoting-spam-en", xautoreply, "Auto-reply quoting the spam with '> '; the quoted hop is foreign.",
        False, "en", hop="forged-helo-smtp1", quote=True)
    add("plain-out-of-office-no-headers-en", plain_ooo, "No marker headers: subject 'Out of Office' and the words only.",
        False, "en", subject="Out of Office", irt="none", env="m.collins@remote.example.com")
    add("plain-abwesenheitsnotiz-de", plain_ooo, "No marker headers; German 'Abwesenheitsnotiz'.", False, "de",
        subject="Abwesenheitsnotiz", env="j.weber@kunden.test")
    add("plain-fuera-de-la-oficina-es", plain_ooo, "No marker headers; Spanish 'Fuera de la oficina'.", False, "es",
        subject="Fuera de la oficina", irt="none", env="")
    add("plain-absence-fr", plain_ooo, "No marker headers; French 'Absence du bureau'.", False, "fr",
        subject="Absence du bureau", env="s.laurent@cabinet.test", crlf=True)
    add("notes-ist-ausser-haus-de", notes_ooo, "Lotus/HCL Notes '... ist außer Haus.' auto-reply.", False, "de")
    add("notes-out-of-office-en", notes_ooo, "Notes 'is out of the office.' with the spam attached.", False, "en",
        hop="zombie", attach_original=True)
    add("gmail-vacation-en", gmail_vacation, "Gmail vacation responder (Auto-Submitted: auto-replied).", False, "en",
        subject="Away until Monday")
    add("gmail-vacation-it", gmail_vacation, "Gmail vacation responder in Italian.", False, "it",
        subject="Fuori ufficio fino al 1° dicembre", irt="none")

    add("zimbra-vacation-nl", zimbra, "Zimbra vacation reply (Auto-Submitted: auto-replied (zimbra; vacation)), Dutch.",
        False, "nl")
    add("helpdesk-ticket-ack", helpdesk_ack, "Ticket-system acknowledgement opening a ticket for a spam.", False, "en",
        mode="x-envelope")

    # ---------------- legit: answers to mail we really sent ----------------
    add("outlook-automatic-reply-irt-example-org", outlook, "Exchange OOF; In-Reply-To/References name our Message-ID.",
        True, "en", irt="ours", sender="alice@example.org")
    add("outlook-automatische-antwort-irt-ours", outlook, "German Outlook OOF answering our message.", True, "de", irt="ours")
    add("outlook-reponse-automatique-irt-ours", outlook, "French Outlook OOF answering our message (no Auto-Submitted).",
        True, "fr", irt="ours", auto_submitted=False, mode="x-envelope")
    add("sieve-vacation-irt-relay-host", sieve_vacation, "Message-ID domain smtp1.out.example.org (a relay host).",
        True, "nl", irt="ours-relay")
    add("sieve-vacation-irt-upper-case", sieve_vacation, "Our Message-ID domain in upper case (EXAMPLE.ORG).",
        True, "pt", irt="ours-upper")
    add("x-autoreply-irt-ours-es", xautoreply, "X-Autoreply answering our message (In-Reply-To only).", True, "es",
        irt="ours")
    add("x-autorespond-precedence-irt-ours-it", xautoreply, "X-Autorespond + Precedence: auto_reply; In-Reply-To ours.",
        True, "it", irt="ours", header="X-Autorespond: Fuori sede", precedence="auto_reply", env="m.bianchi@ditta.test")
    add("x-autoreply-quoted-original-smtp2", xautoreply, "No threading headers; '> '-quoted original with our smtp2 hop.",
        True, "en", irt="none", hop="smtp2-name", quote=True)
    add("notes-ausser-haus-attached-original-ipv6", notes_ooo, "Notes OOO, no threading; attached original has our IPv6 hop.",
        True, "de", irt="none", hop="v6-range", attach_original=True)
    add("notes-ausser-haus-irt-ours", notes_ooo, "German Notes OOO answering our message.", True, "de", irt="ours", crlf=True)
    add("gmail-vacation-irt-ours", gmail_vacation, "Gmail vacation answering our message.", True, "en", irt="ours",
        subject="Re: on leave")
    add("plain-ooo-irt-ours-pt", plain_ooo, "No marker headers; Portuguese OOO, In-Reply-To ours.", True, "pt",
        irt="ours", subject="Ausente do escritório")
    add("plain-afwezig-irt-ours-nl", plain_ooo, "No marker headers; Dutch 'Afwezig', In-Reply-To ours.", True, "nl",
        irt="ours", subject="Afwezig", env="p.devries@bedrijf.test")
    add("mailman-held-for-moderation-irt-ours", mailman_hold, "Mailman 'awaits moderator approval' answering our post.",
        True, "de", irt="ours", env="projekt-bounces@lists.kunden.test")
    add("zimbra-vacation-references-only", zimbra, "Zimbra vacation; no In-Reply-To, ours is the last References ID.",
        True, "nl", irt="ours-refs-only")
    add("helpdesk-ticket-ack-irt-example-net", helpdesk_ack, "Ticket acknowledgement answering mail from @example.net.",
        True, "en", irt="ours", sender="carol@example.net")
    add("outlook-automatic-reply-irt-example-net", outlook, "Exchange OOF answering our @example.net message.",
        True, "es", irt="ours", sender="ines.costa@example.net")
    return out
