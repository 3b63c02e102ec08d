"""Challenge-response requests: 'prove you are human before I accept your mail'.

Backscatter: the challenge answers spam that forged one of our users (foreign hops, or nothing
quoted at all). Legit: the challenge answers mail our user really sent through our relays.
"""

from __future__ import annotations

from .common import (RNG, USERS, b64, display, hexid, inbound, later, mail, msgid, multipart, original, part, rfc,
                     when)
from .hops import foreign, genuine
from .samples_dsn import LEGIT, SPAM


class C:
    """The context of one challenge: who is protected, who (apparently) wrote, what was quoted."""

    def __init__(self, legit: bool, hop_kind: str, protected: str, host: str, ip: str, *, env_sender: str,
                 mode: str = "return-path", sender: str | None = None):
        self.legit = legit
        self.t = when(1)
        self.sender = sender or RNG.choice(USERS)
        self.protected = protected
        self.subject, self.body = RNG.choice(LEGIT if legit else SPAM)
        th = later(self.t, -RNG.randrange(30, 300))
        by = f"mx.{protected.split('@')[1]}"
        self.hops = (genuine if legit else foreign)(hop_kind, by, th, rcpt=protected)
        self.mid = msgid(self.sender.split("@")[1] if legit else "dsl-203-0-113-77.dyn.isp.test")
        self.t_orig = later(th, -RNG.randrange(2, 30))
        self.top = inbound(host, ip, self.sender, self.t, sender=env_sender, mode=mode)

    def orig(self, headers_only=False):
        return original(self.hops, display(self.sender), f"<{self.protected}>", self.subject, self.t_orig,
                        mid=self.mid, body=self.body, headers_only=headers_only)

    def summary(self):
        return f"  From: {self.sender}\n  Subject: {self.subject}\n  Date: {rfc(self.t_orig)}"


def spamarrest(c: C, note: str) -> str:
    code = hexid(20)
    body = (f"Hello,\n\nI am protecting myself from unwanted junk mail with Spam Arrest. Your message is being held\n"
            f"until you confirm that you are a person and not an automated mailer. Please click the\nlink below; "
            f"you only have to do this once:\n\n  https://www.spamarrest.test/v?c={code}\n\n"
            f"After that, this and all your future messages go straight to my inbox.\n\n"
            f"Thank you,\n{c.protected}\n\n----------------------------------------------------------------\n"
            f"Spam Arrest: sender verification\n----------------------------------------------------------------\n\n"
            f"Your message awaiting verification:\n{c.summary()}\n")
    head = (f"{c.top}\nFrom: \"{c.protected} (via Spam Arrest)\" <verify@spamarrest.test>\nReply-To: verify@spamarrest.test\n"
            f"To: {c.sender}\nSubject: Re: {c.subject} [Spam Arrest sender verification]\nDate: {rfc(c.t)}\n"
            f"Message-ID: <sa.{code}@spamarrest.test>\nIn-Reply-To: {c.mid}\nX-SpamArrest-Verify: {code}\n"
            f"Auto-Submitted: auto-replied\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii")
    return mail(note, head, body)


def boxbe(c: C, note: str, *, quote_headers=False) -> str:
    name = c.protected.split("@")[0].replace(".", " ").title()
    body = (f"Hello {c.sender},\n\nYour message to {name} is waiting in {name}'s Boxbe Waiting List, which\n"
            f"{name} may not look at for a while.\n\nTo make sure {name} sees your mail, add yourself to {name}'s "
            f"Guest List:\n\n  https://www.boxbe.test/anno?tc={hexid(12)}_{RNG.randrange(10**6, 10**7)}\n\n"
            f"This notice is sent once. Future mail from guests goes straight to the inbox.\n\n"
            f"Boxbe | inbox management\n\nYour message:\n{c.summary()}\n")
    if quote_headers:
        body += "\n--- original message headers ---\n" + c.orig(headers_only=True)
    head = (f"{c.top}\nFrom: \"{name} via Boxbe\" <notification@boxbe.test>\nTo: {c.sender}\n"
            f"Subject: Request to join {name}'s Guest List (RE: {c.subject})\nDate: {rfc(c.t)}\n"
            f"Message-ID: <{hexid(16)}.boxbe-notice@boxbe.test>\nIn-Reply-To: {c.mid}\nReferences: {c.mid}\n"
            f"X-Boxbe-Notice: waitlist\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit")
    return mail(note, head, body)


def mailinblack(c: C, note: str, *, lang="fr") -> str:
    link = f"https://protect.mailinblack.test/auth/{hexid(24)}"
    if lang == "fr":
        subject = f"Votre message pour {c.protected} est en attente"
        body = (f"Bonjour,\n\nVous avez écrit à {c.protected}. Cette adresse est protégée par MailInBlack.\n\n"
                f"Pour que votre message soit délivré, merci de confirmer que vous n'êtes pas un robot\n"
                f"en cliquant sur le lien ci-dessous et en recopiant le code affiché :\n\n  {link}\n\n"
                f"Cette authentification n'est demandée qu'une seule fois.\n\nObjet de votre message : {c.subject}\n")
    else:
        subject = f"Your message to {c.protected} is waiting for authentication"
        body = (f"Hello,\n\nYou wrote to {c.protected}, whose mailbox is protected by MailInBlack.\n\n"
                f"To have your message delivered, please confirm you are not a robot: open the link\n"
                f"below and type the code shown in the picture.\n\n  {link}\n\nYou will be asked only once.\n\n"
                f"Subject of your message: {c.subject}\n")
    bnd = "----=_MIB_" + hexid(16)
    parts = [part("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64", b64(body)),
             part("Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64",
                  b64(f"<html><body><p>{body.replace(chr(10) + chr(10), '</p><p>')}</p></body></html>\n"))]
    head = (f"{c.top}\nFrom: MailInBlack <noreply@mailinblack.test>\nTo: {c.sender}\nSubject: {subject}\n"
            f"Date: {rfc(c.t)}\nMessage-ID: <{hexid(20)}@mailinblack.test>\nX-MailInBlack-Type: authentication-request\n"
            f"Auto-Submitted: auto-replied\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"{bnd}\"")
    return mail(note, head, multipart(bnd, parts))


def tmda(c: C, note: str) -> str:
    stamp = f"{RNG.randrange(1763000000, 1765000000)}.{RNG.randrange(10000, 99999)}.{hexid(6)}"
    user, dom = c.protected.split("@")
    confirm = f"{user}-confirm-{stamp}@{dom}"
    text = (f"Your message addressed to {c.protected} has been held, because\nthis address only accepts mail from "
            f"senders it knows.\n\nTo release your message for delivery, simply reply to this\nconfirmation request "
            f"(the address is {confirm}).\nYou will only need to do this once; afterwards your mail is\ndelivered "
            f"without delay.\n\nThe held message is attached below.\n\n-- \nTagged Message Delivery Agent (TMDA)\n")
    bnd = "===============" + str(RNG.randrange(10**18, 10**19)) + "=="
    parts = [part("Content-Type: text/plain; charset=\"us-ascii\"\nMIME-Version: 1.0\nContent-Transfer-Encoding: 7bit", text),
             part("Content-Type: message/rfc822\nMIME-Version: 1.0", c.orig())]
    head = (f"{c.top}\nFrom: {confirm}\nReply-To: {confirm}\nTo: {c.sender}\nSubject: Please confirm (re: {c.subject})\n"
            f"Date: {rfc(c.t)}\nMessage-ID: <{stamp}.TMDA@{dom}>\nIn-Reply-To: {c.mid}\nX-Delivery-Agent: TMDA/1.3.2 (Ricochet)\n"
            f"Precedence: bulk\nAuto-Submitted: auto-replied (confirm)\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/mixed; boundary=\"{bnd}\"")
    return mail(note, head, multipart(bnd, parts))


def boxtrapper(c: C, note: str) -> str:
    vid = hexid(16)
    body = (f"The message you sent requires that you verify that you\nare a real live human being and not a spam source.\n\n"
            f"To complete this verification, simply reply to this message and leave\nthe subject line intact, or visit:\n\n"
            f"  https://{c.protected.split('@')[1]}:2096/cgi-sys/bxd.cgi?a={c.protected}&id={vid}\n\n"
            f"The headers of the message sent from your address are shown below:\n\n" + c.orig(headers_only=True))
    head = (f"{c.top}\nFrom: {c.protected}\nTo: {c.sender}\nSubject: verify#{vid}\nDate: {rfc(c.t)}\n"
            f"Message-ID: <bxt.{vid}@{c.protected.split('@')[1]}>\nX-Boxtrapper: {vid}\nPrecedence: bulk\n"
            f"MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii")
    return mail(note, head, body)


def choicemail(c: C, note: str) -> str:
    body = (f"Hi,\n\nI am using ChoiceMail to keep junk out of my mailbox. You are not yet on my list of\n"
            f"approved senders, so your message is waiting.\n\nJust this one time, please open the link below and "
            f"fill in the short registration form.\nOnce I approve it, your messages will reach me directly.\n\n"
            f"  http://register.choicemail.test/r.aspx?k={hexid(18)}\n\nThe message waiting is:\n{c.summary()}\n\n"
            f"Thanks,\n{c.protected}\n")
    head = (f"{c.top}\nFrom: {c.protected}\nTo: {c.sender}\nSubject: Re: {c.subject} - registration request\n"
            f"Date: {rfc(c.t)}\nMessage-ID: <cm{hexid(14)}@{c.protected.split('@')[1]}>\n"
            f"X-ChoiceMail-Registration-Request: yes\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=us-ascii")
    return mail(note, head, body)


def generic(c: C, note: str, *, lang="en", attach=None) -> str:
    link = f"https://verify.mailguard.test/c/{hexid(22)}"
    texts = {
        "en": ("Please verify you are human",
               f"Hello,\n\nWe received a message from your address for {c.protected}. To keep spam out,\n"
               f"messages from new senders are delivered only after the sender proves to be a human.\n\n"
               f"Please verify you are a human by completing the short form at:\n{link}\n\n"
               f"Unverified messages are deleted after 7 days.\n\nMailGuard sender verification\n"),
        "de": ("Bitte bestätigen Sie, dass Sie ein Mensch sind",
               f"Guten Tag,\n\nIhre Nachricht an {c.protected} wurde zurückgehalten. Um Spam zu vermeiden,\n"
               f"stellen wir Nachrichten neuer Absender erst zu, wenn diese bestätigt haben, dass sie\nkein "
               f"Computerprogramm sind.\n\nBitte bestätigen Sie Ihre Nachricht einmalig hier:\n{link}\n\n"
               f"Nicht bestätigte Nachrichten werden nach 7 Tagen gelöscht.\n"),
        "es": ("Verificación de remitente: confirme que es una persona",
               f"Hola,\n\nSu mensaje para {c.protected} está retenido. Para evitar el correo no deseado,\n"
               f"solo entregamos mensajes de remitentes nuevos después de que confirmen que son personas.\n\n"
               f"Por favor, confirme su mensaje una única vez en:\n{link}\n\nLos mensajes no confirmados se "
               f"borran a los 7 días.\n"),
        "it": ("Conferma di essere una persona",
               f"Buongiorno,\n\nil suo messaggio per {c.protected} è in attesa. Per bloccare lo spam, i messaggi\n"
               f"dei nuovi mittenti vengono consegnati solo dopo una verifica.\n\nRisolva il breve controllo "
               f"(captcha) a questo indirizzo:\n{link}\n\nGrazie.\n"),
    }
    subject, body = texts[lang]
    headers = (f"{c.top}\nFrom: MailGuard Verification <no-reply@verify.mailguard.test>\nTo: {c.sender}\n"
               f"Subject: {subject}\nDate: {rfc(c.t)}\nMessage-ID: <{hexid(18)}@verify.mailguard.test>\n"
               f"Auto-Submitted: auto-replied\nMIME-Version: 1.0\n")
    if attach is None:
        return mail(note, headers + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit", body)
    bnd = "b1_" + hexid(20)
    parts = [part("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit", body)]
    if attach == "headers-b64":
        parts.append(part("Content-Type: text/rfc822-headers\nContent-Transfer-Encoding: base64\n"
                          "Content-Disposition: attachment; filename=\"held-message-headers.txt\"",
                          b64(c.orig(headers_only=True))))
    else:
        parts.append(part("Content-Type: text/rfc822-headers", c.orig(headers_only=True)))
    return mail(note, headers + f"Content-Type: multipart/mixed; boundary=\"{bnd}\"", multipart(bnd, parts))


def samples():
    out = []

    def add(name, fn, note, legit, hop, protected, host, ip, env, **kw):
        mode = kw.pop("mode", "return-path")
        crlf = kw.pop("crlf", False)
        c = C(legit, hop, protected, host, ip, env_sender=env, mode=mode)
        folder = "legit/challenge" if legit else "backscatter/challenge"
        out.append((f"{folder}/{name}.eml", fn(c, note, **kw), crlf))

    add("spamarrest-verification", spamarrest, "Spam Arrest verification request answering spam that forged us.",
        False, "zombie", "kim.park@shop.example", "mx3.spamarrest.test", "198.51.100.150", "bounce-v@spamarrest.test")
    add("boxbe-guest-list", boxbe, "Boxbe 'Request to join Guest List' for a spam with our address.",
        False, "botnet-2hops", "tom.hill@remote.example.com", "smtp.boxbe.test", "203.0.113.55", "")
    add("boxbe-guest-list-quoted-forged-helo", boxbe, "Boxbe notice quoting headers: HELO smtp1 forged from 203.0.113.66.",
        False, "forged-helo-smtp1", "sue@bouncer.test", "smtp.boxbe.test", "203.0.113.55", "", quote_headers=True)
    add("mailinblack-fr-authentification", mailinblack, "MailInBlack authentication request (French, base64).",
        False, "zombie", "contact@cabinet.test", "out.mailinblack.test", "203.0.113.57", "bounce@mailinblack.test")
    add("mailinblack-en-robot-check", mailinblack, "MailInBlack 'confirm you are not a robot' in English, milter view.",
        False, "zombie-exim", "support@startup.test", "out.mailinblack.test", "203.0.113.57", "bounce@mailinblack.test",
        lang="en", mode="x-envelope")
    add("tmda-confirm-request", tmda, "TMDA confirmation request with the held spam attached (message/rfc822).",
        False, "zombie-sendmail", "jan@tmda-user.test", "mail.tmda-user.test", "203.0.113.58", "")
    add("tmda-confirm-lookalike", tmda, "TMDA; the held spam came from smtp1.out.example.org.relay.test (look-alike).",
        False, "lookalike-suffix", "piet@tmda-user.test", "mail.tmda-user.test", "203.0.113.58", "", crlf=True)
    add("boxtrapper-verify", boxtrapper, "cPanel BoxTrapper 'verify#' request with the spam's headers.",
        False, "zombie", "owner@cpanel-site.test", "server12.hosting.test", "198.51.100.112", "owner@cpanel-site.test")
    add("boxtrapper-verify-ip-contains", boxtrapper, "BoxTrapper; spam hop from 192.0.2.251 (contains our 192.0.2.25).",
        False, "ip-contains", "shop@cpanel-site.test", "server12.hosting.test", "198.51.100.112", "shop@cpanel-site.test")
    add("choicemail-registration", choicemail, "ChoiceMail registration request; nothing of the spam's path quoted.",
        False, "zombie", "pat@choicemail-user.test", "mail.choicemail-user.test", "203.0.113.59", "pat@choicemail-user.test")
    add("generic-verify-human-en", generic, "Generic 'Please verify you are human' form.",
        False, "zombie", "anna@remote.example.com", "verify.mailguard.test", "203.0.113.61", "")
    add("generic-verify-human-de", generic, "Generic human check in German ('dass Sie ein Mensch sind').",
        False, "zombie", "info@kunden.test", "verify.mailguard.test", "203.0.113.61", "", lang="de")
    add("generic-verify-human-es", generic, "Generic human check in Spanish; headers of the spam attached.",
        False, "forged-helo-smtp2-rdns", "ventas@tienda.test", "verify.mailguard.test", "203.0.113.61", "",
        lang="es", attach="headers")
    add("generic-captcha-it", generic, "Generic captcha request in Italian, X-Envelope-From only.",
        False, "zombie-qmail", "ufficio@ditta.test", "verify.mailguard.test", "203.0.113.61", "", lang="it",
        mode="x-envelope")

    add("tmda-confirm-smtp1", tmda, "TMDA request for mail we really sent: attached original has our smtp1 hop.",
        True, "smtp1-name", "jan@tmda-user.test", "mail.tmda-user.test", "203.0.113.58", "")
    add("boxtrapper-verify-smtp2-range", boxtrapper, "BoxTrapper for mail we sent via 198.51.100.13 (in our /28).",
        True, "smtp2-range", "owner@cpanel-site.test", "server12.hosting.test", "198.51.100.112", "owner@cpanel-site.test")
    add("boxbe-quoted-ipv6", boxbe, "Boxbe notice quoting our headers: hop from [IPv6:2001:db8:25::25].",
        True, "v6-postfix", "tom.hill@remote.example.com", "smtp.boxbe.test", "203.0.113.55", "", quote_headers=True)
    add("generic-verify-headers-base64-glob", generic, "Human check with our headers base64-attached (mailout-3 hop).",
        True, "glob", "anna@remote.example.com", "verify.mailguard.test", "203.0.113.61", "", attach="headers-b64")
    add("generic-verify-de-exim-smtp1", generic, "German human check; attached headers: Exim hop helo=smtp1 [192.0.2.25].",
        True, "exim-helo", "info@kunden.test", "verify.mailguard.test", "203.0.113.61", "", lang="de", attach="headers")
    return out
