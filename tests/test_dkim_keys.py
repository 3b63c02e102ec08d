"""The [dkim] public key files as the inventory reads them (bouncegen.renderer.dkim), pure logic:
PEM and the DNS record give the same p=, and everything that is not an RSA public key of 1024 bits
or more is refused with a reason. The keys are fixed public keys written by openssl."""

from __future__ import annotations

import pytest

from bouncegen.renderer.dkim import parse_public_key

PEM = """\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAv7gccvxAWNnEtUwApko4
8kWzuYq8BpujCATEa5uJJXWLvH0B1nZQOfZm9jkkpi/htcY1AJIZxXdixPKA2ZUv
hmrV3TJjnLTB4ANsgWv7+bMXyrpv5EUByPOr/JIVB4ehoFjd0PC7LLuIUv6iJ8Vh
utdj/cAsNGCcomYxtNcx0pp4CgM1uuup/3NbYvSJ5swdBwf7QRe64dy/RCPqHwh0
gc13+l4gupiRvRzb0BhbR7OiDn1/sry9R6A50mFkhCaGOzXsfXVms31yv5TLXgrF
C1kV8k7w7fmFlRmt6zP9W7ZpeE3LeyN4nyqEBww0u9IpYkOH0yaBdcewib8EGEZF
LQIDAQAB
-----END PUBLIC KEY-----
"""
P = "".join(PEM.splitlines()[1:-1])
# opendkim-genkey's SELECTOR.txt: the record in quoted strings, split as in a zone file.
TXT = f'''mail2026._domainkey\tIN\tTXT\t( "v=DKIM1; h=sha256; k=rsa; "
\t  "p={P[:250]}"
\t  "{P[250:]}" )  ; ----- DKIM key mail2026 for example.org
'''
SHORT = ("MHwwDQYJKoZIhvcNAQEBBQADawAwaAJhAO5YSUZPaxStIxpQHPgkvuMI68nWOP5TMm+7lkk8rUtm7m0zX9++BvP1gEjeEyJ/"
         "VkfVkvWqmT2K4DVv+PxtC5fiCpymm9I8G8jy9q2j6vS8OgafV06uvCmlkFf7fNdxwQIDAQAB")  # RSA 768


@pytest.mark.parametrize("text", [PEM, TXT, f"v=DKIM1; k=rsa; p={P}", f"p={P}", PEM.replace("\n", "\r\n")],
                         ids=["pem", "opendkim-txt", "record", "p-only", "pem-crlf"])
def test_same_key_from_pem_and_dns_record(text):
    assert parse_public_key(text) == (P, 2048)


@pytest.mark.parametrize("text, why", [
    (PEM.replace("PUBLIC KEY", "RSA PUBLIC KEY"), "is PEM but not a '-----BEGIN PUBLIC KEY-----' block"),
    ("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "is PEM but not"),
    (PEM + PEM, "holds more than one PEM public key"),
    ("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "has k=ed25519: only RSA keys"),
    ("v=DKIM1; k=rsa; p=", "has an empty p= (a revoked key)"),
    ("v=DKIM2; p=" + P, "has v=DKIM2"),
    ("hello", "is neither a PEM public key nor a DKIM record"),
    ("p=" + P[:-3] + "!!=", "is not valid base64"),
    ("p=" + P[:200], "is not a usable RSA public key: trailing or missing bytes"),
    ("p=" + P[:-4], "is not a usable RSA public key: trailing or missing bytes"),
    ("p=" + SHORT, "is a 768-bit RSA key; at least 1024 bits are required (RFC 8301)"),
    ("p=MAA=", "is not a usable RSA public key: not an RSA key"),
])
def test_refused_with_a_reason(text, why):
    with pytest.raises(ValueError) as exc:
        parse_public_key(text)
    assert why in str(exc.value)
