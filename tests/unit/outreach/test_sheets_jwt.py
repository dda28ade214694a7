"""The service-account JWT: RS256 over a PKCS#8 key, verifiable with the public key."""

from __future__ import annotations

import jwt
import pytest

from sourcing.common.kafka.retry import PermanentError
from sourcing.outreach.sheets import quote_tab, row_from_range, sign_assertion
from tests.factories_outreach import rsa_test_key


def test_assertion_is_a_verifiable_rs256_jwt() -> None:
    private, public = rsa_test_key()
    claims = {"iss": "svc@project.iam.gserviceaccount.com", "aud": "https://t", "iat": 1, "exp": 2}
    token = sign_assertion(claims, private, kid="key-1")
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
    decoded = jwt.decode(
        token, public, algorithms=["RS256"], audience="https://t", options={"verify_exp": False}
    )
    assert decoded == claims
    _, other_public = rsa_test_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other_public, algorithms=["RS256"], options={"verify_aud": False})


def test_pem_with_escaped_newlines_from_json_is_read() -> None:
    private, public = rsa_test_key()
    token = sign_assertion({"iss": "svc"}, private.replace("\n", "\\n"), kid=None)
    assert jwt.decode(token, public, algorithms=["RS256"]) == {"iss": "svc"}


def test_not_a_key_is_refused() -> None:
    with pytest.raises(PermanentError):
        sign_assertion({}, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", kid=None)


@pytest.mark.parametrize(
    ("updated", "row"),
    [("'Tab one'!A7:J7", 7), ("Sheet1!A12", 12), ("'It''s'!A2:J3", 2)],
)
def test_row_of_an_updated_range(updated: str, row: int) -> None:
    assert row_from_range(updated) == row


def test_tab_quoting() -> None:
    assert quote_tab("It's") == "'It''s'"
