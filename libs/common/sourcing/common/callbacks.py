"""Signed callback URLs, for vendors that can only call a URL back (Zeliq).

Such a vendor signs nothing, so the URL we hand it carries our signature instead: our request
id and the callback kind in the path, and ``?signature=`` = lowercase hex HMAC-SHA256 of
``"<requestId>:<kind>"`` keyed with the callback secret (the HMAC contract of our webhooks,
applied to what the URL names instead of a body). Whoever places the request signs with the
current secret; the receiver accepts the current or, during a rotation, the previous one.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable
from urllib.parse import urlencode

SIGNATURE_PARAM = "signature"


def callback_signature(secret: str, request_id: uuid.UUID, kind: str) -> str:
    """The signature of one callback URL (request id and kind)."""
    message = f"{request_id}:{kind}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_callback_url(base_url: str, request_id: uuid.UUID, kind: str, *, secret: str) -> str:
    """``<base_url>/<requestId>/<kind>?signature=<hex>``."""
    query = urlencode({SIGNATURE_PARAM: callback_signature(secret, request_id, kind)})
    return f"{base_url.rstrip('/')}/{request_id}/{kind}?{query}"


def callback_signature_valid(
    signature: str | None, request_id: uuid.UUID, kind: str, *, secrets: Iterable[str]
) -> bool:
    """True when ``signature`` was made with one of ``secrets`` for this request id and kind."""
    if not signature:
        return False
    given = signature.strip().lower().encode()
    return any(
        hmac.compare_digest(given, callback_signature(secret, request_id, kind).encode())
        for secret in secrets
    )
