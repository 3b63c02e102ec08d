"""BATV on the MX, inside bouncegen's milter (docs/batv.md): the decisions, as pure functions of
the settings, the keys and what the client said; service.py calls them from its callbacks.

- RCPT of a ``prvs=`` address of a BATV domain: a valid, unexpired tag is accepted (and the
  message is rescued: a spammer cannot write a valid tag, so the families' verdict is not asked
  for); an invalid or expired one is refused with 550 at RCPT, that recipient only. Postfix's
  recipient_canonical_maps (the rendered postfix/batv_recipients) lets a tagged address pass
  smtpd's recipient check and delivers to the plain address, keeping the tagged one as the
  original recipient (X-Original-To) for a post-queue SpamAssassin.
- DATA of a null-sender message whose recipients are all plain addresses of BATV domains (none
  exempt): refused with 550 at the DATA command, before a byte of the body is sent and without
  asking spamd. A real bounce of our mail comes back to a signed address; a sender-verification
  callout (MAIL FROM:<>, RCPT TO:, QUIT) never reaches DATA, so it always gets its 250.
- A key file that cannot be read is a 4xx wherever the keys decide (a tagged recipient, a
  refusal at DATA), never a 5xx and never an unchecked accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .. import batv

REJECT_RCPT_TEXT = "Invalid or expired bounce address tag (BATV): this address was never used as a sender by us"
REJECT_DATA_TEXT = ("Refused as backscatter: a bounce or notice to an address we never sent from "
                    "(our mail carries a BATV-signed envelope sender); a spammer forged our address")


class Kind(Enum):
    OTHER = "other"        # not a BATV domain, or an exempt recipient: BATV has nothing to say
    UNSIGNED = "unsigned"  # a plain address of a BATV domain that must be signed on a bounce
    VALID = "valid"        # a valid tag: rescue
    INVALID = "invalid"    # a bad, expired or foreign-key tag: 550 at RCPT


@dataclass(frozen=True)
class Rcpt:
    address: str  # as the client wrote it (without <>)
    kind: Kind
    plain: str    # the address without its tag
    why: str = ""


@dataclass(frozen=True)
class Gate:
    domains: frozenset[str]
    unsigned_ok: frozenset[str]  # exempt recipients and exempt senders: addresses or domains
    days: int
    keys: batv.KeyCache
    enforce: bool = True  # refuse at DATA; false during a roll-out

    @classmethod
    def from_table(cls, t: dict) -> "Gate":
        """From the [batv] table of the rendered milter settings (KeyError/TypeError if broken)."""
        return cls(domains=frozenset(str(d).lower() for d in t["domains"]),
                   unsigned_ok=frozenset(str(a).lower() for a in t.get("unsigned_recipients", [])),
                   days=int(t["days"]), keys=batv.KeyCache(t["key_file"]),
                   enforce=bool(t.get("enforce", True)))

    def rcpt(self, address: str, now: float | None = None) -> Rcpt:
        """Classify one recipient. BatvError when a tag needs the keys and they are unreadable."""
        address = address.strip().strip("<>")
        if batv.domain_of(address) not in self.domains:
            return Rcpt(address, Kind.OTHER, address)
        if batv.is_tagged(address):
            c = batv.check(address, self.keys.get(), self.days, now)
            if c.valid:
                return Rcpt(address, Kind.VALID, c.plain)
            if c.tagged:
                return Rcpt(address, Kind.INVALID, c.plain, c.why)
            # "prvs=" without the tag's shape: a plain local part that happens to start so.
        if batv.matches(address, self.unsigned_ok):
            return Rcpt(address, Kind.OTHER, address)
        return Rcpt(address, Kind.UNSIGNED, address)

    def refuse_at_data(self, sender: str, rcpts: list[Rcpt]) -> bool:
        """A null-sender message whose recipients are all unsigned addresses of BATV domains.
        Reads the keys (BatvError when unreadable): a site whose keys are broken cannot be sure
        its relays signed, so it must not refuse for good."""
        if (not self.enforce or sender.strip().strip("<>") or not rcpts
                or any(r.kind is not Kind.UNSIGNED for r in rcpts)):
            return False
        self.keys.get()
        return True


def rescued(rcpts: list[Rcpt]) -> bool:
    """A valid tag among the recipients: the message answers mail we sent."""
    return any(r.kind is Kind.VALID for r in rcpts)
