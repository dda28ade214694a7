"""The inbound webhooks' signature schemes against the providers' own definitions."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sourcing.api.routers.inbound import twilio_signature, verify_sendgrid
from sourcing.common.config import DEV_EMAIL_WEBHOOK_PUBLIC_KEY
from sourcing.sandbox.inbound import sign_sendgrid


def test_twilio_signature_matches_twilios_documented_example() -> None:
    # Twilio's request-validation example: auth token 12345, this URL and these parameters.
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(url, params, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio_signature(url, list(reversed(params)), "12345") == (
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )
    assert twilio_signature(url + "&x=1", params, "12345") != "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_sendgrid_signature_covers_timestamp_and_body() -> None:
    body = b'[{"event":"delivered","sg_event_id":"e1"}]'
    signature = sign_sendgrid(body, "1600112502")
    assert verify_sendgrid(body, signature, "1600112502", DEV_EMAIL_WEBHOOK_PUBLIC_KEY)
    pem = (
        "-----BEGIN PUBLIC KEY-----\n"
        + DEV_EMAIL_WEBHOOK_PUBLIC_KEY
        + "\n-----END PUBLIC KEY-----\n"
    )
    assert verify_sendgrid(body, signature, "1600112502", pem)
    assert not verify_sendgrid(body, signature, "1600112503", DEV_EMAIL_WEBHOOK_PUBLIC_KEY)
    assert not verify_sendgrid(body + b" ", signature, "1600112502", DEV_EMAIL_WEBHOOK_PUBLIC_KEY)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    other_key = base64.b64encode(
        other.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    assert not verify_sendgrid(body, signature, "1600112502", other_key)
    assert not verify_sendgrid(body, "not base64!", "1600112502", DEV_EMAIL_WEBHOOK_PUBLIC_KEY)
    assert not verify_sendgrid(body, None, "1600112502", DEV_EMAIL_WEBHOOK_PUBLIC_KEY)
